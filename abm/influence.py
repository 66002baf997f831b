"""Social influence on vision and value through ties, and feedback from visible action.

One sparse product per step gives every neighbour sum the step needs (a snapshot taken
before anyone moves, so the update is synchronous). Weights are w_ij = trust_ij x influence
of j's role; the receiving side is gated by its susceptibility and by cultural fit (offset by
the pilot's insight).

- averaging (simple contagion): x_i moves a step `rate` towards the weighted mean of its
  neighbours, faster up than down (`decline`);
- threshold (complex contagion): x_i jumps towards 1 once the weighted share (or, with
  `threshold_mode: count`, the count weighted by trust x influence) of neighbours holding it reaches `threshold`;
- independent cascade (simple contagion, SIR-like): each person who newly holds the vision
  gets one chance to pass it to each neighbour, with probability 1 - (1 - T)^trust.
Value only grows as far as a person subscribes to the vision (it is gated by vision).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from abm import kernels
from abm.state import by_ward, clip01, ward_residents

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

# columns of the neighbour-sum snapshot (the last ones only under the rules that need them)
WEIGHT, VISION, VALUE, ACTING, PRO_ACTING, RES_ACTING, RESIDENT = range(7)
HOLD_VISION, HOLD_VALUE = 7, 8  # threshold rule
NEW_ADOPTERS = 7  # independent cascade


def _columns(model: CommonPurposeModel, k: int) -> np.ndarray:
    """The (n, k) float32 block the neighbour sums are taken of, with its fixed columns filled in.

    Columns past the ones in use stay zero: the product is faster on 8 columns than on 7
    (and on 12 than on 9), and each column's sums do not depend on the others.
    """
    s = model.state
    cols = np.zeros((s.n, k), dtype=np.float32)
    cols[:, WEIGHT] = s.influence
    cols[:, RESIDENT] = ~s.staff
    return cols


def _acting_factors(model: CommonPurposeModel) -> np.ndarray:
    """Per person, in float32, what acting adds to the ACTING, PRO_ACTING and RES_ACTING columns:
    their influence, their resident contact if staff, and 1 if a resident (one row per column)."""
    s = model.state
    return np.stack([s.influence, s.resident_contact * s.staff, ~s.staff]).astype(np.float32)


def neighbour_sums(model: CommonPurposeModel) -> np.ndarray:
    """All trust-weighted neighbour sums for this step, from one CSR x dense product.

    Computed once per step, before anyone moves (`model.snapshot()` caches it), in float32.
    The weight and resident columns depend only on who is here: they are filled in once.
    """
    s = model.state
    lad = model.config.ladder
    rule = model.config.influence.rule
    w = s.influence
    k = 12 if rule == "threshold" else 8  # columns in use: 9 for threshold, 8 cascade, else 7
    cols = model.fixed(f"sum_columns_{k}", lambda m: _columns(m, k))
    # float32 copies of the fixed factors of the acting columns: multiplying them by the 0/1 flags
    # as float32 gives the same figures as in float64 then rounded, with no casts in the loops
    per_act = model.fixed("acting_factors", _acting_factors)
    kernels.fill_sums_block(
        cols, VISION, VALUE, (ACTING, PRO_ACTING, RES_ACTING), w, s.vision, s.value, s.acting, per_act
    )
    if rule == "threshold":
        cols[:, HOLD_VISION] = w * (s.vision >= lad.vision_threshold)
        cols[:, HOLD_VALUE] = w * (s.value >= lad.value_threshold)
    elif rule == "independent_cascade":
        adopted = s.vision >= lad.vision_threshold
        cols[:, NEW_ADOPTERS] = adopted & ~model.adopted_before  # each adopter gets one chance to pass it on
        model.adopted_before = adopted
    return model.ties.matmul(cols)


def social_influence(model: CommonPurposeModel) -> None:
    cfg = model.config.influence
    s = model.state
    nb = model.snapshot()
    gate = model.gate() * s.susceptibility
    if cfg.rule == "averaging":
        # value first: it is gated by last week's vision (a synchronous update); then the clip
        kernels.averaging(
            nb.ravel(),
            nb.shape[1],
            WEIGHT,
            VISION,
            VALUE,
            float(cfg.self_weight or 0.0),
            s.influence,
            gate,
            s.susceptibility,
            cfg.decline,
            cfg.rate,
            model.config.ladder.aware_threshold,
            s.vision,
            s.value,
            s.aware,
        )
        return
    if cfg.rule == "threshold":
        vision_before = s.vision.copy()  # value is gated by last week's vision (a synchronous update)
        weight = nb[:, WEIGHT]
        has = weight > 0
        for attr, col, gated in (("vision", HOLD_VISION, False), ("value", HOLD_VALUE, True)):
            x = getattr(s, attr)
            held = nb[:, col] / np.where(has, weight, 1.0) if cfg.threshold_mode == "fraction" else nb[:, col]
            met = has & (held >= cfg.threshold)
            push = cfg.jump * gate * (vision_before if gated else 1.0) * (1.0 - x)
            x += np.where(met, push, 0.0)
    else:  # independent cascade: caught with chance 1 - (1 - T) ** (trust-weighted new adopters), ~T x trust
        exposure = nb[:, NEW_ADOPTERS].astype(float)
        p = 1.0 - (1.0 - cfg.transmissibility) ** exposure
        caught = (model.rng.random(s.n) < p) & (s.vision < model.config.ladder.vision_threshold)
        s.vision += np.where(caught, cfg.jump * gate * (1.0 - s.vision), 0.0)
    clip01(s.vision, out=s.vision)
    clip01(s.value, out=s.value)
    s.aware |= s.vision >= model.config.ladder.aware_threshold


def ward_class_counts(model: CommonPurposeModel) -> np.ndarray:
    """Residents per ward (rows) and activity class (columns: inactive, fairly active, active).

    One count of ward * 3 + class: cheaper than picking out each class's residents.
    """
    wards = len(model.ward_names)
    code = model.fixed("resident_ward3", lambda m: 3 * m.state.ward[m.resident_index].astype(np.intp))
    return np.bincount(code + model.state.pa_class[model.resident_rows], minlength=3 * wards).reshape(wards, 3)


def _ward_runs(model: CommonPurposeModel) -> tuple[np.ndarray, ...]:
    """Where each ward's run of residents starts, and its ward, when residents are one block of rows
    sorted by ward (as generated); else () (not None, which `model.fixed` would not keep)."""
    s = model.state
    if not isinstance(model.resident_rows, slice) or model.resident_index.size == 0:
        return ()
    ward = s.ward[model.resident_rows]
    if np.any(ward[1:] < ward[:-1]):
        return ()
    starts = np.flatnonzero(np.concatenate(([True], ward[1:] != ward[:-1])))
    return starts, ward[starts].astype(np.intp)


def ward_inactive(model: CommonPurposeModel) -> np.ndarray:
    """Inactive residents per ward (the first column of `ward_class_counts`).

    When residents are sorted by ward, one sum per ward's run of rows: several times cheaper than
    counting every class of every resident.
    """
    runs = model.fixed("resident_ward_runs", _ward_runs)
    if not runs:
        return ward_class_counts(model)[:, 0]
    starts, ward = runs
    per_run = np.add.reduceat(model.state.pa_class[model.resident_rows] == 0, starts, dtype=np.int32)  # exact
    if ward.size == len(model.ward_names) and ward[-1] == ward.size - 1:  # one run per ward, in order
        return per_run
    counts = np.zeros(len(model.ward_names), dtype=np.intp)
    counts[ward] = per_run
    return counts


def ward_results(model: CommonPurposeModel) -> np.ndarray:
    """Per ward, how far inactivity has fallen there and overall (0 none, 1 gone)."""
    counts = model.fixed("ward_residents", ward_residents)
    inactive = ward_inactive(model) / counts
    mean = float(inactive.sum()) / inactive.size  # as inactive.mean(), without its overhead
    baseline = model.ward_inactive_baseline
    fallen = np.subtract(baseline, inactive, out=inactive)  # (in place: the same figures, fewer arrays)
    fallen /= np.maximum(baseline, 1e-9)
    clip01(fallen, out=fallen)
    fall = (model.inactive_baseline - mean) / max(model.inactive_baseline, 1e-9)
    overall = min(max(fall, 0.0), 1.0)
    fallen *= 0.5
    fallen += 0.5 * overall
    return fallen


def results_signal(model: CommonPurposeModel) -> np.ndarray:
    """Per person, how far inactivity has fallen where they work or live (0 none, 1 gone)."""
    return by_ward(model, ward_results(model))


def feedback(model: CommonPurposeModel) -> None:
    """Visible action and results raise others' value; acting raises one's own; idle value fades."""
    cfg = model.config.feedback
    s = model.state
    nb = model.snapshot()
    # visible action (the acting share of one's ties) and results where one works or lives pull
    # value up, gated by vision and culture; acting raises one's own; idle value and vision fade
    results = by_ward(model, cfg.results * ward_results(model))  # spread first: gathers in a loop are slow
    kernels.feedback(
        nb.ravel(),
        nb.shape[1],
        WEIGHT,
        ACTING,
        cfg.action,
        results,
        model.gate(),
        cfg.doing,
        cfg.forgetting,
        s.acting,
        s.vision,
        s.value,
    )
