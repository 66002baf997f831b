"""Acting (performing a collective function) and the commitment ladder.

Acting probability this week:

    commitment c = vision x value x (0.5 + 0.5 skills)
    p_conscious  = smoothstep((c - threshold) / width)              # zero below the threshold
    p_structure  = structural_alignment ** structure_exponent       # structures can block
    p_routine    = embedded_action x legacy(organisation)           # action without subscription
    p            = 1 - (1 - p_conscious p_structure)(1 - p_routine)
    habit: someone acting last week keeps acting with extra chance `habit`, if p > 0.

Residents' structures are the local ones: the staff-weighted structural alignment of the
organisations working in their ward, weighted by `residents_structure`.

Ladder: unaware, engaged (aware), subscribed (vision), valuing (vision and value), acting,
common purpose (vision, value and action all held over a sustained period: a moving share of
recent weeks with time constant `sustain_weeks` at or above `sustain_level`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from abm.activities import legacy
from abm.state import clip01

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

STAGES = ("unaware", "engaged", "subscribed", "valuing", "acting", "common_purpose")
STAGE_LABELS = ("Unaware", "Engaged", "Subscribed", "Valuing", "Acting", "Common purpose")


class LadderWeek(NamedTuple):
    """The masks `update_ladder` computed this week, for the record to reuse (see `week_masks`).

    They describe the state the ladder saw; `stage` is the model's stage array they go with.
    """

    stage: np.ndarray
    subscribed: np.ndarray
    both: np.ndarray  # subscribed and valuing
    held: np.ndarray  # both and acting
    common: np.ndarray  # held long enough: stage 5


def week_masks(model: CommonPurposeModel) -> LadderWeek | None:
    """The ladder's masks if they go with `model.stage` (set by the last `update_ladder`), else None.

    In a step nothing changes between the ladder and the record, so the record can count them
    instead of comparing the state again; anyone who replaces `model.stage` (e.g. people joining)
    makes them stale, and the record then computes its own.
    """
    week = getattr(model, "ladder_week", None)
    return week if week is not None and week.stage is model.stage else None


def _structure_slot(model: CommonPurposeModel) -> np.ndarray:
    """Per person, their row in the tables `_by_person` builds (fixed while nobody joins).

    Staff read their organisation's row, residents row n_org + 1 + ward; staff without an
    organisation read row n_org (the `none` value).
    """
    s = model.state
    n_org = model.org_structure.size
    return np.where(s.staff, np.where(s.org >= 0, s.org, n_org), n_org + 1 + s.ward.astype(np.int64))


def _by_person(model: CommonPurposeModel, per_org: np.ndarray, per_ward: np.ndarray, none: float) -> np.ndarray:
    """Per person: their organisation's value for staff, their ward's for residents."""
    table = np.concatenate([per_org, [none], per_ward])
    return table.take(model.fixed("structure_slot", _structure_slot))  # take: cheaper than fancy indexing


def _resident_structure(model: CommonPurposeModel) -> np.ndarray:
    """Per ward, the structural alignment that bears on residents' acting."""
    wards = len(model.ward_names)
    staff = model.staff_index
    staff_org = model.fixed("staff_org", lambda m: m.state.org[m.staff_index])
    staff_ward = model.fixed("staff_ward", lambda m: m.state.ward[m.staff_index])
    structure = model.org_structure[staff_org]  # each staff member's organisation's
    ward_struct_sum = np.bincount(staff_ward, weights=structure, minlength=wards)
    ward_staff = model.fixed("ward_staff", lambda m: np.bincount(staff_ward, minlength=wards))
    overall = float(structure.sum()) / staff.size if staff.size else 1.0  # structure.mean(), without its overhead
    ward_struct = np.where(ward_staff > 0, ward_struct_sum / np.maximum(ward_staff, 1), overall)
    w = model.config.acting.residents_structure
    return 1.0 - w * (1.0 - ward_struct)


def local_structure(model: CommonPurposeModel) -> np.ndarray:
    """Per person, the structural alignment that bears on their acting."""
    return _by_person(model, model.org_structure, _resident_structure(model), 0.0)


def acting_probability(model: CommonPurposeModel) -> np.ndarray:
    cfg = model.config.acting
    s = model.state
    # the formulas above, evaluated in place in the same order (the same figures, fewer arrays)
    x = np.multiply(s.skills, 0.5)
    x += 0.5
    commitment = np.multiply(s.vision, s.value)
    x *= commitment
    x -= cfg.threshold
    x /= cfg.width
    x = clip01(x, out=x)
    p = np.multiply(x, x, out=commitment)
    x *= -2.0  # 3 - 2x as -2x + 3 (the same rounding)
    x += 3.0
    p *= x  # p_conscious
    # structures and routines per organisation and ward, then one look-up per person
    per_org = clip01(model.org_structure) ** cfg.structure_exponent
    per_ward = clip01(_resident_structure(model)) ** cfg.structure_exponent
    p *= _by_person(model, per_org, per_ward, 0.0)  # p_structure; no organisation: 0 ** exponent
    no_routine = np.subtract(1.0, cfg.embedded_action * legacy(model))  # 1 - p_routine per organisation
    np.subtract(1.0, p, out=p)
    p *= _by_person(model, no_routine, np.ones(per_ward.size), 1.0)
    np.subtract(1.0, p, out=p)  # p = 1 - (1 - p_conscious p_structure)(1 - p_routine)
    # habit: keep = habit where acting last week and p > 0, else 0; (1 - p)(1 - 0) needs no product
    keep = (p > 0) & s.acting if cfg.habit else None
    q = np.subtract(1.0, p, out=p)
    if keep is not None:
        np.multiply(q, 1.0 - cfg.habit, out=q, where=keep)
    return np.subtract(1.0, q, out=q)  # 1 - (1 - p)(1 - keep)


def decide_acting(model: CommonPurposeModel) -> None:
    s = model.state
    s.acting = model.rng.random(s.n) < acting_probability(model)


def update_ladder(model: CommonPurposeModel) -> None:
    """Sustained commitment, stage, and the week each person first reached each rung."""
    lad = model.config.ladder
    s = model.state
    subscribed = s.vision >= lad.vision_threshold
    valued = s.value >= lad.value_threshold
    both = subscribed & valued
    held = both & s.acting
    step = np.subtract(held, s.sustain)
    step /= lad.sustain_weeks
    s.sustain += step
    common = held & (s.sustain >= lad.sustain_level)
    # the highest rung whose condition holds (acting counts even without vision or value):
    # 2 where subscribed, else 1 where aware, as max(2 x subscribed, aware) on int8 codes
    stage = np.add(subscribed.view(np.int8), subscribed.view(np.int8))
    np.maximum(stage, s.aware.view(np.int8), out=stage)
    for code, reached in ((3, both), (4, s.acting), (5, common)):
        np.copyto(stage, np.int8(code), where=reached)
    model.stage = stage
    model.ladder_week = LadderWeek(stage, subscribed, both, held, common)
    week = model.week
    for first, now in ((s.first_subscribed, subscribed), (s.first_valued, valued), (s.first_acting, s.acting)):
        np.copyto(first, week, where=(first < 0) & now)
