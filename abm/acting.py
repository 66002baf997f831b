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

from abm import kernels
from abm.activities import legacy
from abm.state import Runs, clip01

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

STAGES = ("unaware", "engaged", "subscribed", "valuing", "acting", "common_purpose")
STAGE_LABELS = ("Unaware", "Engaged", "Subscribed", "Valuing", "Acting", "Common purpose")


class LadderWeek(NamedTuple):
    """What `update_ladder` found this week, for the record to reuse (see `ladder_findings`).

    It describes the state the ladder saw: `week`, and the model's `stage` and `state.acting`
    arrays it goes with (both are replaced, not changed in place, when they change).
    """

    week: int
    stage: np.ndarray
    acting_flags: np.ndarray
    common: np.ndarray  # stage 5
    subscribed: int  # how many hold the vision
    both: int  # hold the vision and value it
    subscribed_acting: int  # hold the vision and act
    held: int  # hold and value the vision, and act
    counts: list[int]  # people at each stage
    acting: int  # how many act
    aware: int  # how many are aware


def ladder_findings(model: CommonPurposeModel) -> LadderWeek | None:
    """What the last `update_ladder` found, if it is this week's and still goes with the model's
    stage and acting arrays; else None.

    In a step nothing changes between the ladder and the record, so the record can use these
    instead of comparing the state again; a new week, new stage array (e.g. people joining) or new
    acting flags make them stale, and the record then computes its own.
    """
    week = getattr(model, "ladder_week", None)
    if week is None or week.stage is not model.stage or week.acting_flags is not model.state.acting:
        return None
    return week if week.week == model.week else None


def _structure_slot(model: CommonPurposeModel) -> np.ndarray:
    """Per person, their row in the tables `_by_person` builds (fixed while nobody joins).

    Staff read their organisation's row, residents row n_org + 1 + ward; staff without an
    organisation read row n_org (the `none` value).
    """
    s = model.state
    n_org = model.org_structure.size
    return np.where(s.staff, np.where(s.org >= 0, s.org, n_org), n_org + 1 + s.ward.astype(np.int64))


def _spread(model: CommonPurposeModel, table: np.ndarray) -> np.ndarray:
    """`table[_structure_slot(model)]`: each person's row of a table `_by_person` builds (by runs)."""
    return model.fixed("structure_slots", lambda m: Runs.of(_structure_slot(m))).spread(table)


def _by_person(model: CommonPurposeModel, per_org: np.ndarray, per_ward: np.ndarray, none: float) -> np.ndarray:
    """Per person: their organisation's value for staff, their ward's for residents."""
    return _spread(model, np.concatenate([per_org, [none], per_ward]))


class _StaffWards(NamedTuple):
    """Who works where, for the residents' structures (fixed while nobody joins)."""

    org: np.ndarray  # each staff member's organisation (intp: faster to take with)
    ward: np.ndarray  # and ward
    count: np.ndarray  # staff per ward, at least 1
    empty: np.ndarray | None  # wards with no staff, None if every ward has some


def _staff_wards(model: CommonPurposeModel) -> _StaffWards:
    s, staff = model.state, model.staff_index
    ward = s.ward[staff].astype(np.intp)
    count = np.bincount(ward, minlength=len(model.ward_names))
    empty = count == 0
    return _StaffWards(s.org[staff].astype(np.intp), ward, np.maximum(count, 1), empty if empty.any() else None)


def _resident_structure(model: CommonPurposeModel) -> np.ndarray:
    """Per ward, the structural alignment that bears on residents' acting."""
    f = model.fixed("staff_wards", _staff_wards)
    structure = model.org_structure.take(f.org)  # each staff member's organisation's
    ward_struct = np.bincount(f.ward, weights=structure, minlength=f.count.size) / f.count
    if f.empty is not None:  # wards with no staff: the overall mean (1 with no staff at all)
        ward_struct[f.empty] = float(structure.sum()) / structure.size if structure.size else 1.0
    w = model.config.acting.residents_structure
    return 1.0 - w * (1.0 - ward_struct)


def local_structure(model: CommonPurposeModel) -> np.ndarray:
    """Per person, the structural alignment that bears on their acting."""
    return _by_person(model, model.org_structure, _resident_structure(model), 0.0)


def acting_probability(model: CommonPurposeModel) -> np.ndarray:
    cfg = model.config.acting
    s = model.state
    # structures and routines per organisation and ward, then spread over people (by runs)
    n_org = model.org_structure.size
    table = np.concatenate((model.org_structure, [0.0], _resident_structure(model)))
    clip01(table, out=table)
    table **= cfg.structure_exponent
    table[n_org] = 0.0  # no organisation: 0 ** exponent
    structure = _spread(model, table)  # p_structure
    table = np.ones(table.size)  # 1 - p_routine: per organisation; 1 with none, and for residents
    np.subtract(1.0, cfg.embedded_action * legacy(model), out=table[:n_org])
    # the formulas above, person by person (see `kernels.acting_probability`)
    return kernels.acting_probability(
        s.skills,
        s.vision,
        s.value,
        cfg.threshold,
        cfg.width,
        structure,
        _spread(model, table),
        float(cfg.habit),
        s.acting,
    )


def decide_acting(model: CommonPurposeModel) -> None:
    s = model.state
    s.acting = model.rng.random(s.n) < acting_probability(model)


def update_ladder(model: CommonPurposeModel) -> None:
    """Sustained commitment, stage, and the week each person first reached each rung."""
    lad = model.config.ladder
    s = model.state
    model.stage, common, c = kernels.ladder(
        s.vision,
        s.value,
        s.acting,
        s.aware,
        s.sustain,
        lad.vision_threshold,
        lad.value_threshold,
        float(lad.sustain_weeks),
        lad.sustain_level,
        model.week,
        s.first_subscribed,
        s.first_valued,
        s.first_acting,
    )
    n_sub, n_both, n_held, n_acting, n_common, n_sub_acting, n_aware, engaged = c.tolist()
    valuing = n_both - n_held
    counts = [0, engaged, n_sub - n_sub_acting - valuing, valuing, n_acting - n_common, n_common]
    counts[0] = s.n - sum(counts)
    model.ladder_week = LadderWeek(
        model.week, model.stage, s.acting, common, n_sub, n_both, n_sub_acting, n_held, counts, n_acting, n_aware
    )
