"""Social influence on vision and value through ties, and feedback from visible action.

One sparse product per step gives every neighbour sum the step needs (a snapshot taken
before anyone moves, so the update is synchronous). Weights are w_ij = trust_ij x influence
of j's role; the receiving side is gated by its susceptibility and by cultural fit (offset by
the pilot's insight).

- averaging (simple contagion): x_i moves a step `rate` towards the weighted mean of its
  neighbours, faster up than down (`decline`);
- threshold (complex contagion): x_i jumps towards 1 once the weighted share of neighbours
  holding it reaches `threshold`.
Value only grows as far as a person subscribes to the vision (it is gated by vision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

# columns of the neighbour-sum snapshot
WEIGHT, VISION, VALUE, ACTING, PRO_ACTING, RES_ACTING, RESIDENT, HOLD_VISION, HOLD_VALUE = range(9)


def neighbour_sums(model: CommonPurposeModel) -> np.ndarray:
    """All trust-weighted neighbour sums for this step, from one CSR x dense product.

    Computed once per step, before anyone moves (`model.snapshot()` caches it), in float32:
    the threshold columns only under the threshold rule.
    """
    s = model.state
    lad = model.config.ladder
    threshold = model.config.influence.rule == "threshold"
    w = s.influence
    cols = np.empty((s.n, 9 if threshold else 7), dtype=np.float32)
    cols[:, WEIGHT] = w
    cols[:, VISION] = w * s.vision
    cols[:, VALUE] = w * s.value
    np.multiply(w, s.acting, out=cols[:, ACTING], casting="unsafe")
    np.multiply(s.resident_contact, s.acting & s.staff, out=cols[:, PRO_ACTING], casting="unsafe")
    cols[:, RES_ACTING] = s.acting & ~s.staff
    cols[:, RESIDENT] = ~s.staff
    if threshold:
        cols[:, HOLD_VISION] = w * (s.vision >= lad.vision_threshold)
        cols[:, HOLD_VALUE] = w * (s.value >= lad.value_threshold)
    return model.ties.matmul(cols)


def social_influence(model: CommonPurposeModel) -> None:
    cfg = model.config.influence
    s = model.state
    nb = model.snapshot()
    weight = nb[:, WEIGHT]
    has = weight > 0
    safe = np.where(has, weight, 1.0)
    gate = model.gate() * s.susceptibility
    if cfg.rule == "averaging":
        for attr, col, gated_by_vision in (("vision", VISION, False), ("value", VALUE, True)):
            x = getattr(s, attr)
            gap = np.where(has, nb[:, col] / safe - x, 0.0)
            up = np.maximum(gap, 0.0) * gate * (s.vision if gated_by_vision else 1.0)
            down = np.minimum(gap, 0.0) * cfg.decline * s.susceptibility
            x += cfg.rate * (up + down)
    else:
        for attr, col, gated_by_vision in (("vision", HOLD_VISION, False), ("value", HOLD_VALUE, True)):
            x = getattr(s, attr)
            met = has & (nb[:, col] / safe >= cfg.threshold)
            push = cfg.jump * gate * (s.vision if gated_by_vision else 1.0) * (1.0 - x)
            x += np.where(met, push, 0.0)
    np.clip(s.vision, 0.0, 1.0, out=s.vision)
    np.clip(s.value, 0.0, 1.0, out=s.value)
    s.aware |= s.vision >= model.config.ladder.aware_threshold


def results_signal(model: CommonPurposeModel) -> np.ndarray:
    """Per person, how far inactivity has fallen where they work or live (0 none, 1 gone)."""
    s = model.state
    wards = len(model.ward_names)
    res = ~s.staff
    counts = np.maximum(np.bincount(s.ward[res], minlength=wards), 1)
    inactive = np.bincount(s.ward[res], weights=(s.pa_class[res] == 0), minlength=wards) / counts
    base = np.maximum(model.ward_inactive_baseline, 1e-9)
    by_ward = np.clip((model.ward_inactive_baseline - inactive) / base, 0.0, 1.0)
    overall = float(np.clip((model.inactive_baseline - inactive.mean()) / max(model.inactive_baseline, 1e-9), 0, 1))
    return 0.5 * by_ward[s.ward] + 0.5 * overall


def feedback(model: CommonPurposeModel) -> None:
    """Visible action and results raise others' value; acting raises one's own; idle value fades."""
    cfg = model.config.feedback
    s = model.state
    nb = model.snapshot()
    weight = nb[:, WEIGHT]
    visible = np.where(weight > 0, nb[:, ACTING] / np.where(weight > 0, weight, 1.0), 0.0)
    pull = cfg.action * visible + cfg.results * results_signal(model)
    s.value += pull * s.vision * model.gate() * (1.0 - s.value)
    s.value += cfg.doing * s.acting * (1.0 - s.value)
    # without action, other priorities crowd the vision out: value fades, vision more slowly
    idle = ~s.acting
    s.value -= cfg.forgetting * s.value * idle
    s.vision -= 0.5 * cfg.forgetting * s.vision * idle
    np.clip(s.value, 0.0, 1.0, out=s.value)
