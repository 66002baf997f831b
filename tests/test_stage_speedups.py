"""The per-person stages' fast paths give exactly what the plain formulas give.

Each test builds two identical models (same seed, same weeks run), applies the stage's code to
one and the plain formula (the code before the speed-ups, kept here as the reference) to the
other, and compares the results exactly.
"""

from __future__ import annotations

import types

import numpy as np
import pytest
import scipy.sparse as sp

from abm.acting import _by_person, _resident_structure, acting_probability, update_ladder
from abm.activities import legacy
from abm.influence import PRO_ACTING, RES_ACTING, RESIDENT, _ward_runs, ward_class_counts, ward_inactive
from abm.labels import one_of, plain, plural
from abm.model import CommonPurposeModel
from abm.residents import move_classes
from abm.state import clip01
from abm.turnover import replace_people, staff_turnover
from tests.conftest import model_pair

SMALL = {"population.residents": 240}


def _plain_move_classes(model: CommonPurposeModel) -> None:
    cfg = model.config.residents_activity
    s = model.state
    res = model.resident_index
    nb = model.snapshot()
    pro = 1.0 - np.exp(-nb[res, PRO_ACTING])
    residents = nb[res, RESIDENT]
    peers = np.where(residents > 0, nb[res, RES_ACTING] / np.maximum(residents, 1e-12), 0.0)
    gate = 1.0 - cfg.culture_weight * (1.0 - s.culture[res] * model.national_culture)
    uplift = cfg.professional_effect * pro * gate * (1.0 + cfg.peer_effect * peers)
    cls = s.pa_class[res]
    rates = model.uptake_rates[s.ward[res]].T
    up = (np.where(cls == 0, rates[0], rates[1]) + uplift) * (cls < 2)
    down = np.array([0.0, cfg.relapse_fairly, cfg.relapse_active])[cls.astype(np.intp)] * (1.0 - cfg.protection * pro)
    r = model.rng.random(cls.size)
    s.pa_class[res] = cls + (r < up) - ((r >= up) & (r < up + down))


def test_class_moves_match_the_plain_formula() -> None:
    a, b = model_pair()
    before = a.state.pa_class.copy()
    for _ in range(3):
        move_classes(a)
        _plain_move_classes(b)
    assert np.array_equal(a.state.pa_class, b.state.pa_class)
    assert (a.state.pa_class != before).any()  # people did move
    assert a.state.pa_class.max() <= 2 and a.state.pa_class[a.resident_index].min() >= 0


def _plain_acting_probability(model: CommonPurposeModel) -> np.ndarray:
    cfg = model.config.acting
    s = model.state
    x = clip01((s.vision * s.value * (0.5 + 0.5 * s.skills) - cfg.threshold) / cfg.width)
    p = x * x * (3.0 - 2.0 * x)
    per_org = clip01(model.org_structure) ** cfg.structure_exponent
    per_ward = clip01(_resident_structure(model)) ** cfg.structure_exponent
    p = p * _by_person(model, per_org, per_ward, 0.0)
    routine = _by_person(model, cfg.embedded_action * legacy(model), np.zeros(per_ward.size), 0.0)
    p = 1.0 - (1.0 - p) * (1.0 - routine)
    keep = s.acting * cfg.habit * (p > 0)
    return 1.0 - (1.0 - p) * (1.0 - keep)


@pytest.mark.parametrize("habit", [0.6, 0.0])
def test_acting_probability_matches_the_plain_formula(habit: float) -> None:
    a, _ = model_pair(20, **{"acting.habit": habit})
    got = acting_probability(a)
    want = _plain_acting_probability(a)
    assert np.array_equal(got, want)
    assert (got > 0).any() and a.state.acting.any()
    if habit:  # the habit raises the chance of those acting last week
        assert (got[a.state.acting] >= _plain_acting_probability_without_habit(a)[a.state.acting]).all()


def _plain_acting_probability_without_habit(model: CommonPurposeModel) -> np.ndarray:
    saved = model.config.acting.habit
    model.config.acting.habit = 0.0
    try:
        return _plain_acting_probability(model)
    finally:
        model.config.acting.habit = saved


def test_ladder_codes_match_the_plain_rule() -> None:
    a, _ = model_pair(30)
    update_ladder(a)
    s, lad = a.state, a.config.ladder
    subscribed = s.vision >= lad.vision_threshold
    both = subscribed & (s.value >= lad.value_threshold)
    common = both & s.acting & (s.sustain >= lad.sustain_level)
    want = np.where(subscribed, 2, s.aware.astype(int))
    want[both], want[s.acting], want[common] = 3, 4, 5
    assert np.array_equal(a.stage, want)
    assert a.stage.dtype == np.int8 and len(np.unique(a.stage)) >= 3


def test_inactive_counts_from_ward_runs_match_the_full_count() -> None:
    model = CommonPurposeModel(rng=5, overrides=SMALL, steps=10)
    model.run(10)
    assert model.fixed("resident_ward_runs", _ward_runs)  # generated residents are sorted by ward
    assert np.array_equal(ward_inactive(model), ward_class_counts(model)[:, 0])
    # the general count when residents are not in ward order
    model._fixed["resident_ward_runs"] = ()
    assert np.array_equal(ward_inactive(model), ward_class_counts(model)[:, 0])


def test_ward_runs_refuse_residents_out_of_ward_order() -> None:
    model = CommonPurposeModel(rng=5, overrides=SMALL, steps=2)
    res = model.resident_rows
    model.state.ward[res] = model.state.ward[res][::-1].copy()  # descending: not in ward order
    assert _ward_runs(model) == ()


def test_replacing_people_takes_any_order_and_repeats() -> None:
    a, b = model_pair()
    staff = a.staff_index
    posts = np.array([staff[5], staff[3], staff[5], staff[9], staff[3]])
    left, replaced = a.leavers_total, a.state.replaced.copy()
    replace_people(a, posts)
    replace_people(b, np.unique(posts))
    for name in ("vision", "value", "aware", "skills", "replaced", "first_acting", "sustain"):
        assert np.array_equal(getattr(a.state, name), getattr(b.state, name)), name
    assert np.array_equal(a.org_structure, b.org_structure)
    assert a.ties.count == b.ties.count
    assert a.leavers_total - left == 3
    assert (a.state.replaced - replaced)[np.unique(posts)].tolist() == [1, 1, 1]
    assert (a.state.replaced - replaced).sum() == 3


def test_turnover_draws_only_for_staff_who_can_leave() -> None:
    model = CommonPurposeModel(
        rng=3, overrides={**SMALL, "turnover.annual_rate": 0.9, "turnover.protect_roles": ["leader"]}, steps=60
    )
    can_leave = model.staff_index[model.state.role[model.staff_index] != model.role_names.index("leader")]
    for _ in range(30):
        staff_turnover(model)
    replaced = model.state.replaced
    assert replaced[model.resident_index].sum() == 0
    assert replaced[model.state.role == model.role_names.index("leader")].sum() == 0
    weekly = 1.0 - 0.1 ** (1.0 / 52.0)
    expected = 30 * can_leave.size * weekly
    assert abs(model.leavers_total - expected) < 5 * np.sqrt(expected)


def test_group_sums_equal_the_product_by_rows() -> None:
    model = CommonPurposeModel(rng=4, overrides=SMALL, steps=20)
    model.run(20)
    recorder = model.recorder
    groups = recorder._groups[1]
    block = groups.block(model)
    s = model.state
    weights = np.zeros((s.n, 7), dtype=np.float32)
    weights[:, :5] = np.column_stack([s.vision, s.value, s.acting, model.stage == 5, s.pa_class == 0])
    staff = s.org >= 0
    weights[staff, 5:] = np.column_stack([model.org_structure, model.org_embedded]).astype(np.float32)[s.org[staff]]
    # by rows in float32, each group adds its members in the same order: the same sums, bit for bit
    sums = sp.csr_matrix(groups.members, dtype=np.float32) @ weights
    assert np.array_equal(block[:, 1:5], sums[:, 0:4] / groups.denom)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_staff = sums[:, 5:] / groups.divisor[:, 5:]
    has_staff = ~np.isnan(block[:, 6])
    assert has_staff.any() and np.array_equal(block[has_staff, 6:8], per_staff[has_staff])
    # and float32 sums are within rounding of float64 ones over the float64 state
    exact = sp.csr_matrix(groups.members) @ np.column_stack([s.vision, s.value])
    assert np.allclose(block[:, 1:3], exact / groups.denom, rtol=1e-5, atol=1e-7)
    assert np.array_equal(block[:, 0], groups.count)
    assert np.nansum(block[:, 3]) > 0  # someone acts in some group


def _plain_log_transitions(self: CommonPurposeModel) -> None:
    s = self.state
    started = s.acting & ~self._prev_acting & (s.first_acting == self.week)
    self._prev_acting = s.acting.copy()
    k = int(started.sum())
    if k == 0:
        return
    after = s.acted_after[started]
    known = after[after >= 0]
    names = {0: "engagement", 1: "insight", 2: "collaborative working", 3: "leadership", 4: "embedding"}
    activity = names[int(np.bincount(known).argmax())] if known.size else "influence from others"
    ward = self.ward_labels[int(np.bincount(s.ward[started]).argmax())]
    role = self.role_names[int(np.bincount(s.role[started]).argmax())]
    if k == 1:
        self.log_event(f"1 started acting for the first time: {one_of(role)}, after {activity}, in {ward}")
        return
    self.log_event(
        f"{k} started acting for the first time, mostly {plural(plain(role))}, most often after {activity}, "
        f"most in {ward}"
    )


def test_event_log_lines_match_the_plain_rule() -> None:
    from abm.activities import ACTIVITY_CODE

    assert ACTIVITY_CODE == {"engagement": 0, "insight": 1, "collaborative": 2, "leadership": 3, "embedding": 4}
    a, b = (CommonPurposeModel(rng=9, overrides=SMALL, steps=60) for _ in range(2))
    b.log_transitions = types.MethodType(_plain_log_transitions, b)
    a.run(60)
    b.run(60)
    started = [e for e in a.events_log if "started acting" in e["text"]]
    assert started and len(started) < 60  # some weeks log a line, some do not
    assert a.events_log == b.events_log
