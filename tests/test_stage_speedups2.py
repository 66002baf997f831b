"""More fast paths of the per-person stages give exactly what the plain formulas give.

As in `test_stage_speedups`: two models in the same state, the stage's code on one and the
plain formula on the other (or on copies of the arrays), compared exactly.
"""

from __future__ import annotations

import numpy as np

from abm.acting import (
    STAGES,
    _resident_structure,
    _spread,
    _structure_slot,
    ladder_findings,
    update_ladder,
)
from abm.influence import ACTING, PRO_ACTING, RES_ACTING, VALUE, VISION, WEIGHT, neighbour_sums, social_influence
from abm.metrics import model_metrics
from abm.model import CommonPurposeModel
from abm.residents import move_classes
from abm.state import Runs
from tests.conftest import model_pair

SMALL = {"population.residents": 240}


def test_stage_counts_from_the_ladder_masks_equal_the_counted_codes() -> None:
    model = CommonPurposeModel(rng=7, overrides=SMALL, steps=60)
    seen = set()
    for _ in range(40):
        model.step()
        week = ladder_findings(model)
        assert week is not None  # the record ran straight after the ladder
        s = model.state
        assert week.counts == [np.count_nonzero(model.stage == code) for code in range(len(STAGES))]
        assert np.array_equal(week.common, model.stage == STAGES.index("common_purpose"))
        subscribed = s.vision >= model.config.ladder.vision_threshold
        both = subscribed & (s.value >= model.config.ladder.value_threshold)
        assert (week.subscribed, week.both) == (subscribed.sum(), both.sum())
        assert (week.subscribed_acting, week.held) == ((subscribed & s.acting).sum(), (both & s.acting).sum())
        assert (week.acting, week.aware) == (s.acting.sum(), s.aware.sum())
        seen.update(np.flatnonzero(week.counts).tolist())
    assert len(seen) >= 4  # the weeks reached several stages, so the algebra was exercised


def test_the_record_from_the_ladder_masks_equals_the_record_from_the_state() -> None:
    model = CommonPurposeModel(rng=3, overrides=SMALL, steps=60)
    model.run(30)
    fast = model_metrics(model)
    model.ladder_week = None  # no masks: compare the state and count the codes
    assert ladder_findings(model) is None
    assert model_metrics(model) == fast
    assert fast["stage_common_purpose"] + fast["stage_acting"] == fast["acting_share"] * model.state.n


def test_ladder_findings_go_stale_with_a_new_stage_array_acting_array_or_week() -> None:
    model = CommonPurposeModel(rng=3, overrides=SMALL, steps=60)
    model.run(3)
    assert ladder_findings(model) is not None
    model.stage = model.stage.copy()  # e.g. people joining replace the stage array
    assert ladder_findings(model) is None
    update_ladder(model)
    assert ladder_findings(model).stage is model.stage
    model.state.acting = model.state.acting.copy()  # as deciding who acts does
    assert ladder_findings(model) is None
    update_ladder(model)
    assert ladder_findings(model) is not None
    model.steps += 1  # a week with no ladder (as if it were left out of the step)
    assert ladder_findings(model) is None
    model.steps -= 1


def test_neighbour_sum_columns_equal_the_float64_products_rounded() -> None:
    model = CommonPurposeModel(rng=5, overrides=SMALL, steps=60)
    model.run(8)
    s = model.state
    assert 0 < s.acting.sum() < s.n
    nb = neighbour_sums(model)
    plain = np.zeros((s.n, 8), dtype=np.float32)
    plain[:, WEIGHT] = s.influence
    plain[:, VISION] = s.influence * s.vision
    plain[:, VALUE] = s.influence * s.value
    plain[:, ACTING] = s.influence * s.acting
    plain[:, PRO_ACTING] = s.resident_contact * s.staff * s.acting
    plain[:, RES_ACTING] = s.acting & ~s.staff
    plain[:, 6] = ~s.staff
    assert np.array_equal(nb, model.ties.matmul(plain))


def _plain_averaging(model: CommonPurposeModel) -> None:
    cfg = model.config.influence
    s = model.state
    nb = model.snapshot()
    gate = model.gate() * s.susceptibility
    weight = nb[:, WEIGHT].astype(float)
    has = weight > 0
    for x, col, gated in ((s.value, VALUE, True), (s.vision, VISION, False)):
        gap = np.where(has, nb[:, col] / np.where(has, weight, 1.0) - x, 0.0)
        up = np.maximum(gap, 0.0) * gate * (s.vision if gated else 1.0)
        down = np.minimum(gap, 0.0) * cfg.decline * s.susceptibility
        x += (up + down) * cfg.rate
    np.clip(s.vision, 0.0, 1.0, out=s.vision)
    np.clip(s.value, 0.0, 1.0, out=s.value)
    s.aware |= s.vision >= model.config.ladder.aware_threshold


def test_averaging_matches_the_plain_rule_with_and_without_people_with_no_ties() -> None:
    for untie in (False, True):
        a, b = model_pair(10, **{"influence.self_weight": 0.0})
        for m in (a, b):
            m.nb = m._gate = None
            if untie:  # someone whose ties all have zero weight: their views must not move
                m.snapshot()[3, :] = 0.0
        assert (a.snapshot()[:, WEIGHT].min() > 0) != untie
        before = a.state.vision[3], a.state.value[3]
        social_influence(a)
        _plain_averaging(b)
        assert np.array_equal(a.state.vision, b.state.vision)
        assert np.array_equal(a.state.value, b.state.value)
        assert np.array_equal(a.state.aware, b.state.aware)
        if untie:
            assert (a.state.vision[3], a.state.value[3]) == before


def test_residents_structure_with_no_staff_is_one() -> None:
    model = CommonPurposeModel(
        rng=2, overrides={"network.generator": "erdos_renyi", "network.agents": 300, "network.mean_degree": 6}, steps=5
    )
    assert model.staff_index.size == 0
    assert np.array_equal(_resident_structure(model), np.ones(len(model.ward_names)))
    model.run(5)  # every stage runs with no staff and no organisations
    assert model.week == 5


def test_tables_spread_by_runs_equal_a_gather_per_person() -> None:
    model = CommonPurposeModel(rng=4, overrides=SMALL, steps=5)
    table = np.random.default_rng(1).random(model.org_structure.size + 1 + len(model.ward_names))
    slots = Runs.of(_structure_slot(model))
    assert slots.length is not None and slots.row.size < model.state.n // 4  # as generated: runs
    assert np.array_equal(_spread(model, table), table[_structure_slot(model)])
    # residents in no ward order: too many runs, one gather per person
    res = model.resident_rows
    model.state.ward[res] = np.random.default_rng(2).permutation(model.state.ward[res])
    model._fixed.clear()
    assert Runs.of(_structure_slot(model)).length is None
    assert np.array_equal(_spread(model, table), table[_structure_slot(model)])


def test_class_moves_with_residents_in_no_ward_order_match_the_plain_formula() -> None:
    from tests.test_stage_speedups import _plain_move_classes

    a, b = (CommonPurposeModel(rng=11, overrides=SMALL, steps=60) for _ in range(2))
    for m in (a, b):
        res = m.resident_rows
        m.state.ward[res] = np.random.default_rng(3).permutation(m.state.ward[res])
        m._fixed.clear()
        m.run(6)
    before = a.state.pa_class.copy()
    for _ in range(3):
        move_classes(a)
        _plain_move_classes(b)
    assert np.array_equal(a.state.pa_class, b.state.pa_class)
    assert not np.array_equal(a.state.pa_class, before)
