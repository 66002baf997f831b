"""The compiled kernels (abm/kernels.py) give exactly what the plain numpy formulas give.

As in `test_stage_speedups`: two models in the same state, the stage's code (now a kernel) on
one and the plain formula on the other, compared bit for bit. The kernels replaced numpy code
that did the same arithmetic; these tests pin that down for the stages not covered there
(feedback, insight's culture shift, the ladder's sustain and first-passage weeks).
"""

from __future__ import annotations

import numpy as np

from abm import kernels
from abm.acting import update_ladder
from abm.activities import insight
from abm.influence import ACTING, WEIGHT, feedback, ward_results
from abm.state import by_ward
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
