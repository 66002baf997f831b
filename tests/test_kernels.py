"""The compiled kernels (abm/kernels.py) give exactly what the plain numpy formulas give.

As in `test_stage_speedups`: two models in the same state, the stage's code (now a kernel) on
one and the plain formula on the other, compared bit for bit. The kernels replaced numpy code
that did the same arithmetic; these tests pin that down for the stages not covered there
(feedback, insight's culture shift, the ladder's sustain and first-passage weeks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from abm import CommonPurposeModel, kernels
from abm.acting import update_ladder
from abm.activities import culture_gate, insight
from abm.influence import ACTING, WEIGHT, feedback, ward_results
from abm.state import Ties, by_ward
from tests.conftest import model_pair


def _plain_feedback(model) -> None:
    cfg = model.config.feedback
    s = model.state
    nb = model.snapshot()
    weight = nb[:, WEIGHT]
    has = weight > 0
    visible = np.where(has, nb[:, ACTING] / np.where(has, weight, 1.0), 0.0)
    pull = cfg.action * visible + by_ward(model, cfg.results * ward_results(model))
    s.value += pull * s.vision * model.gate() * (1.0 - s.value)
    acting = s.acting.astype(float)
    s.value += (1.0 - s.value) * acting * cfg.doing
    idle = 1.0 - acting
    s.value -= s.value * cfg.forgetting * idle
    s.vision -= s.vision * (0.5 * cfg.forgetting) * idle
    np.clip(s.value, 0.0, 1.0, out=s.value)


def test_feedback_matches_the_plain_formula_with_and_without_people_with_no_ties() -> None:
    for untie in (False, True):
        a, b = model_pair(10)
        for m in (a, b):
            m.nb = m._gate = None
            if untie:  # no weight: nothing visible, and no division by zero
                m.snapshot()[3, :] = 0.0
        feedback(a)
        _plain_feedback(b)
        assert np.array_equal(a.state.value, b.state.value)
        assert np.array_equal(a.state.vision, b.state.vision)
        assert a.state.acting.any() and (~a.state.acting).any()  # both branches ran


def test_insight_shifts_culture_as_the_plain_formula() -> None:
    a, b = model_pair(10)
    spec = b.config.activities.insight
    s = b.state
    culture, held = s.culture.copy(), s.insight.copy()
    insight(a, 0.0)  # no effort this week: only the shift and the fading
    q = np.maximum(held, by_ward(b, b.ward_insight))
    want = culture + spec.culture_shift * q * (1.0 - culture)
    assert np.array_equal(a.state.culture, want)
    assert np.array_equal(a.state.insight, held * (1.0 - spec.decay))
    assert (a.state.culture > culture).any()


def test_ladder_sustain_and_first_weeks_match_the_plain_rule() -> None:
    a, _ = model_pair(30)
    s, lad = a.state, a.config.ladder
    sustain = s.sustain.copy()
    firsts = [x.copy() for x in (s.first_subscribed, s.first_valued, s.first_acting)]
    a.state.first_acting[:5] = -1  # some who act have not yet been recorded as acting
    firsts[2][:5] = -1
    update_ladder(a)
    subscribed = s.vision >= lad.vision_threshold
    valued = s.value >= lad.value_threshold
    held = subscribed & valued & s.acting
    assert np.array_equal(s.sustain, sustain + (held - sustain) / lad.sustain_weeks)
    for got, before, now in zip(
        (s.first_subscribed, s.first_valued, s.first_acting), firsts, (subscribed, valued, s.acting), strict=True
    ):
        assert np.array_equal(got, np.where((before < 0) & now, a.week, before))
    assert (s.first_acting[:5][s.acting[:5]] == a.week).all()


def test_kernels_follow_numpy_on_division_by_zero() -> None:
    # numpy's error model: a zero weight gives no exception; the guarded branches give 0
    x = np.array([0.0, 0.5, 2.0, -1.0])
    kernels.clip01_inplace(x)
    assert x.tolist() == [0.0, 0.5, 1.0, 0.0]
    nb = np.zeros((2, 8), dtype=np.float32)
    vision, value = np.array([0.4, 0.6]), np.array([0.3, 0.2])
    aware = np.zeros(2, dtype=bool)
    ones = np.ones(2)
    kernels.averaging(
        nb.ravel(), 8, 0, 1, 2, 0.0, ones, ones, ones, 0.5, 0.1, 0.5, vision, value, aware
    )  # nobody has ties: nobody moves
    assert vision.tolist() == [0.4, 0.6] and value.tolist() == [0.3, 0.2]
    assert aware.tolist() == [False, True]


def test_the_apps_warm_up_compiles_every_kernel() -> None:
    """`abm.app.serve.warm_up` (run before the server starts) leaves no kernel for the first run to
    compile: in a fresh process, every public kernel has a compiled signature after it."""
    import subprocess
    import sys

    check = (
        "import numba\n"
        "from abm.app.serve import warm_up\n"
        "from abm import kernels\n"
        "warm_up()\n"
        "missing = [n for n in dir(kernels) if not n.startswith('_')\n"
        "           and isinstance(getattr(kernels, n), numba.core.registry.CPUDispatcher)\n"
        "           and not getattr(kernels, n).signatures]\n"
        "print(missing)\n"
    )
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# --- edge cases the scenario hashes do not reach: numpy's semantics, kept (review, 2026-11-27) ---


def _ties(n: int = 10) -> Ties:
    return Ties(n, np.array([0, 1, 2]), np.array([1, 2, 3]), np.array([0.5, 0.6, 0.7]), np.zeros(3, np.int8), _no_kind)


def _no_kind(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return np.zeros(lo.size, np.int8)


def test_maximum_and_clip_follow_numpy_for_nan_infinities_and_signed_zeros() -> None:
    vals = np.array([np.nan, 0.0, -0.0, 0.5, -1.0, np.inf, -np.inf, 2.0])
    a, b = np.repeat(vals, vals.size), np.tile(vals, vals.size)
    culture = np.zeros(a.size)
    kernels.insight_shifts_culture(a.copy(), b, 1.0, 0.0, culture)  # culture += max(a, b) x 1 x (1 - 0)
    want = np.maximum(a, b) * 1.0 * (1.0 - 0.0) + 0.0
    assert np.array_equal(culture, want, equal_nan=True)
    assert np.array_equal(np.signbit(culture), np.signbit(want))
    x = vals.copy()
    kernels.clip01_inplace(x)
    clipped = np.clip(vals, 0.0, 1.0) + 0.0
    assert np.array_equal(x, clipped, equal_nan=True) and np.array_equal(np.signbit(x), np.signbit(clipped))


def test_set_trust_broadcasts_one_value_and_refuses_ids_that_are_not_ties() -> None:
    t = _ties()
    t.set_trust(np.array([0, 1, 2]), np.array([0.9]))
    assert t.trust.tolist() == [0.9, 0.9, 0.9]
    assert t.main.data.tolist() == [np.float32(0.9)] * 6
    with pytest.raises(ValueError):  # as numpy's assignment: two values for three ties
        t.set_trust(np.array([0, 1, 2]), np.array([0.1, 0.2]))
    for bad in ([7], [3], [-1]):
        with pytest.raises(IndexError):
            t.set_trust(np.array(bad), np.array([0.9]))


def test_random_neighbour_and_incident_refuse_nodes_out_of_range() -> None:
    t = _ties()
    with pytest.raises(IndexError):
        t.random_neighbour(np.array([12]), np.random.default_rng(0))
    with pytest.raises(IndexError):
        t.incident(np.zeros(10, bool), np.array([11]))
    with pytest.raises(IndexError):
        t.incident(np.zeros(10, bool), np.array([-1]))


def test_a_pairs_trust_is_numpys_maximum_over_its_calls_nan_included() -> None:
    t = _ties()
    t.add(np.array([4]), np.array([5]), 0.3)
    t.add(np.array([4]), np.array([5]), float("nan"))
    t.flush()
    assert np.isnan(t.trust[-1])


def test_the_culture_gate_carries_a_nan_ward_insight_as_numpy_does() -> None:
    m = CommonPurposeModel(rng=1, steps=1)
    i = int(np.flatnonzero(m.state.ward == 0)[0])
    m.ward_insight[0] = np.nan
    assert np.isnan(culture_gate(m)[i])


def test_incident_find_and_random_neighbour_match_plain_references() -> None:
    rng = np.random.default_rng(0)
    n = 300
    u, v = rng.integers(0, n, 900), rng.integers(0, n, 900)
    ok = u != v
    key = np.unique(np.minimum(u, v)[ok] * n + np.maximum(u, v)[ok])
    t = Ties(n, key // n, key % n, rng.random(key.size), np.zeros(key.size, np.int8), _no_kind)
    t.remove(rng.choice(t.m, 50, replace=False))
    t.add(rng.integers(0, n, 200), rng.integers(0, n, 200), 0.3)
    t.flush()
    assert t.side is not None and t._dead  # side ties and removed ties both in play
    mask = rng.random(n) < 0.2
    np.testing.assert_array_equal(t.incident(mask), np.flatnonzero(t.alive & (mask[t.eu] | mask[t.ev])))
    a, b = rng.integers(0, n, 500).astype(np.int32), rng.integers(0, n, 500).astype(np.int16)  # unsorted keys
    lookup = {(int(x), int(y)): i for i, (x, y) in enumerate(zip(t.eu, t.ev, strict=True)) if t.alive[i]}
    want = [lookup.get((min(x, y), max(x, y)), -1) for x, y in zip(a.tolist(), b.tolist(), strict=True)]
    assert t.find(a, b).tolist() == want
    nb, tie = t.random_neighbour(np.arange(n), np.random.default_rng(1))
    hit = tie >= 0
    ends = np.stack([t.eu[tie[hit]], t.ev[tie[hit]]])
    assert t.alive[tie[hit]].all() and ((ends == np.arange(n)[hit]).any(0) & (ends == nb[hit]).any(0)).all()
    assert (nb[~hit] == -1).all() and hit.mean() > 0.5


_RUN = (
    "import hashlib, warnings; warnings.simplefilter('ignore'); from abm import CommonPurposeModel;"
    "m = CommonPurposeModel(rng=1, steps=6, overrides={'turnover.annual_rate': 0.9}).run();"
    "print(hashlib.sha1(m.model_frame().to_csv().encode() + m.groups_frame().to_csv().encode()"
    " + m.state.vision.tobytes() + m.ties.trust.tobytes()).hexdigest())"
)


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["NUMBA_DISABLE_JIT", "NUMBA_BOUNDSCHECK"])
def test_a_run_is_the_same_interpreted_and_bounds_checked(flag: str, tmp_path: Path) -> None:
    """The kernels as plain Python (NUMBA_DISABLE_JIT) and compiled with bounds checks give the
    same run as the compiled kernels: no kernel relies on reading or writing out of bounds."""

    def run(extra: dict[str, str]) -> str:
        env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / ("on" if extra else "off")), **extra}
        out = subprocess.run([sys.executable, "-c", _RUN], env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    assert run({flag: "1"}) == run({})


def test_kernels_compile_without_a_disk_cache_where_none_can_be_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba refuses `cache=True` at import when neither `abm/__pycache__` nor the user's cache
    directory is writable; the kernels then compile in each process instead of failing."""
    real = kernels.numba.njit

    def refusing(*args: object, cache: bool = False, **options: object) -> object:
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(*args, **options)

    monkeypatch.setattr(kernels.numba, "njit", refusing)

    def plus_one(x: int) -> int:
        return x + 1

    assert kernels.njit(error_model="numpy")(plus_one)(1) == 2
