"""The pilot's five core activities, paid for from a weekly effort budget.

Each week the budget (effort units per 1,000 agents) is split over the activities by the
allocation policy, each activity's share buys `share / cost` actions (a Poisson count), and
each action touches a person, a pair or an organisation:

- engagement: first awareness of the vision, a push towards it, and a new relationship;
- insight: the pilot understands a person and their ward; influence there works better and
  cultural misalignment narrows;
- collaborative working: a joint project on a tie (or brokered across sectors) builds trust
  and value and shifts the partners' structures a little;
- collective leadership: committed senior people share power; the capacity that moves
  structures towards the national cap;
- embedded processes: formalising new ways in an organisation, a legacy that raises
  structural alignment and outlasts the people who made it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from abm import kernels
from abm.config import ACTIVITIES
from abm.state import by_ward, clip01, ward_residents

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

ACTIVITY_CODE = {name: i for i, name in enumerate(ACTIVITIES)}


def legacy(model: CommonPurposeModel) -> np.ndarray:
    """Per organisation, the share of its ways of working that no longer depends on people."""
    half = model.config.activities.embedding.legacy_half
    return 1.0 - np.exp(-model.org_embedded / half)


def culture_gate(model: CommonPurposeModel, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
    """How well influence lands on each person: cultural fit, offset by the pilot's insight."""
    cfg = model.config.influence
    s = model.state
    if isinstance(idx, slice):
        ward_insight = by_ward(model, model.ward_insight)[idx]
    else:
        ward_insight = model.ward_insight[s.ward[idx]]
    culture = s.culture[idx]
    base = np.empty(0)  # computed in the kernel, unless raised to a power (numpy's, for its rounding)
    if cfg.culture_exponent != 1.0:
        base = clip01(culture * model.national_culture) ** cfg.culture_exponent
    return kernels.culture_gate(culture, model.national_culture, base, s.insight[idx], ward_insight, cfg.insight_effect)


def allocation(model: CommonPurposeModel) -> dict[str, float]:
    """Shares of this week's effort per activity (fixed, or tilted by measured misalignment)."""
    eff = model.config.effort
    shares = eff.shares.normalised()
    if eff.policy == "adaptive":
        s = model.state
        culture_gap = 1.0 - float(np.mean(s.culture)) * model.national_culture
        staff_org = s.org[s.staff]
        mean_structure = float(model.org_structure[staff_org].mean()) if staff_org.size else 1.0
        structure_gap = 1.0 - mean_structure / max(model.national_cap, 1e-9)
        structure_gap = float(np.clip(structure_gap, 0.0, 1.0))
        tilt = eff.adaptive_strength * (culture_gap - structure_gap)
        for a in ("engagement", "insight"):
            shares[a] *= max(0.0, 1.0 + 2.0 * tilt)
        for a in ("collaborative", "leadership"):
            shares[a] *= max(0.0, 1.0 - 2.0 * tilt)
        total = sum(shares.values())
        shares = {a: v / total if total > 0 else 0.0 for a, v in shares.items()}
    return shares


def _ward_weights(model: CommonPurposeModel) -> np.ndarray:
    eff = model.config.effort
    w = np.array([eff.ward_targeting.get(name, 1.0) for name in model.ward_names], dtype=float)
    if eff.policy == "adaptive":
        s = model.state
        counts = np.maximum(np.bincount(s.ward, minlength=w.size), 1)
        misfit = 1.0 - np.bincount(s.ward, weights=s.culture, minlength=w.size) / counts
        w = w * ((1 - eff.adaptive_strength) + eff.adaptive_strength * 2.0 * misfit)
    return w


def _sample(
    model: CommonPurposeModel,
    k: int,
    weight: np.ndarray,
    among: np.ndarray | None = None,
    cum: np.ndarray | None = None,
) -> np.ndarray:
    """k people drawn with probability proportional to weight (with replacement).

    `among` (indices) restricts the draw to those people; `weight` is then aligned with it.
    `cum`, if given, is `np.cumsum(weight)` already taken (weights that did not change).
    """
    if k <= 0 or weight.size == 0:
        return np.zeros(0, dtype=np.int64)
    if cum is None:
        cum = weight.cumsum()
    if cum[-1] <= 0:
        return np.zeros(0, dtype=np.int64)
    pick = np.minimum(cum.searchsorted(model.rng.random(k) * cum[-1], side="right"), weight.size - 1)
    return pick if among is None else among[pick]


#: Engagement's weight on people already aware, relative to the unaware (the unaware come first).
AWARE_WEIGHT = 0.3


class _ByWard:
    """One kind of people (staff or residents) grouped by ward, for draws weighted by ward.

    A person's targeting weight is their ward's, so a weighted draw is a ward drawn by its total
    weight (a few wards: a short running sum) and then a member of that ward uniformly: no running
    sum over everyone, and no binary search over thousands of people for each draw.
    """

    def __init__(self, people: np.ndarray, ward: np.ndarray, n_wards: int):
        wards = ward[people]
        self.members = people[np.argsort(wards, kind="stable")]
        self.count = np.bincount(wards, minlength=n_wards)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])
        self._weight: np.ndarray | None = None
        self._cached: tuple[np.ndarray, float, int] = (self.count, 0.0, 0)
        #: share of candidates kept at the last unaware-first draw (at least AWARE_WEIGHT): sizes the next round
        self.kept_share = AWARE_WEIGHT

    def _plan(self, ward_weight: np.ndarray) -> tuple[np.ndarray, float, int]:
        """Running sum of the wards' total weights, the total, and the last ward that can be drawn."""
        if ward_weight is self._weight:  # the same (fixed) weights as last time
            return self._cached
        mass = ward_weight * self.count
        cum = np.cumsum(mass)
        last = int(np.flatnonzero(mass > 0)[-1]) if cum[-1] > 0 else 0  # a draw rounding up stays in a ward
        self._weight, self._cached = ward_weight, (cum, float(cum[-1]), last)
        return self._cached

    def draw(self, rng: np.random.Generator, k: int, ward_weight: np.ndarray) -> np.ndarray:
        """k members drawn with probability proportional to their ward's weight (with replacement)."""
        cum, total, last = self._plan(ward_weight)
        if k <= 0 or total <= 0:
            return np.zeros(0, dtype=np.int64)
        u = rng.random((2, k))  # row 0 picks the ward, row 1 the member
        w = np.minimum(cum.searchsorted(u[0] * total, side="right"), last)
        u[1] *= self.count[w]
        return self.members[self.start[w] + u[1].astype(np.intp)]

    def draw_unaware_first(
        self, rng: np.random.Generator, k: int, ward_weight: np.ndarray, aware: np.ndarray
    ) -> np.ndarray:
        """k members drawn with probability proportional to ward weight x (AWARE_WEIGHT if aware, else 1).

        By thinning: candidates drawn by ward weight alone, each kept with probability AWARE_WEIGHT
        if aware (else always), until k are kept. Kept draws follow exactly the weighted distribution
        however many candidates a round draws; a round draws enough for the share kept last time
        (which changes slowly, as awareness spreads), with a margin, so one round nearly always does.
        """
        kept: list[np.ndarray] = []
        need = k
        while need > 0:
            cand = self.draw(rng, int(need / self.kept_share * 1.25) + 16, ward_weight)
            if cand.size == 0:
                break
            accepted = cand[~aware[cand] | (rng.random(cand.size) < AWARE_WEIGHT)]
            self.kept_share = max(accepted.size / cand.size, AWARE_WEIGHT)
            keep = accepted[:need]
            kept.append(keep)
            need -= keep.size
        if len(kept) == 1:
            return kept[0]
        return np.concatenate(kept) if kept else np.zeros(0, dtype=np.int64)


def _by_ward(model: CommonPurposeModel) -> tuple[_ByWard, _ByWard]:
    """Staff and residents grouped by ward (fixed while nobody joins)."""
    s, wards = model.state, len(model.ward_names)
    return _ByWard(model.staff_index, s.ward, wards), _ByWard(model.resident_index, s.ward, wards)


def _targets(model: CommonPurposeModel, k: int, prefer_unaware: bool) -> np.ndarray:
    """k people the pilot reaches this week: staff or residents (by `staff_focus`), weighted by ward."""
    staff, residents = model.fixed("by_ward", _by_ward)
    if model.config.effort.policy == "adaptive":
        ward_w = _ward_weights(model)
    else:
        ward_w = model.fixed("ward_weights", _ward_weights)
    k_staff = int(model.rng.binomial(k, model.config.effort.staff_focus)) if k else 0
    if residents.members.size == 0:
        k_staff = k
    rng = model.rng
    if prefer_unaware:
        aware = model.state.aware
        parts = (
            staff.draw_unaware_first(rng, k_staff, ward_w, aware),
            residents.draw_unaware_first(rng, k - k_staff, ward_w, aware),
        )
    else:
        parts = staff.draw(rng, k_staff, ward_w), residents.draw(rng, k - k_staff, ward_w)
    return np.concatenate(parts)


def _actions(model: CommonPurposeModel, share: float, cost: float) -> int:
    units = model.effort_budget * model.state.n / 1000.0 * share
    return int(model.rng.poisson(units / cost)) if units > 0 else 0


def engagement(model: CommonPurposeModel, share: float) -> None:
    spec = model.config.activities.engagement
    s = model.state
    t = _targets(model, _actions(model, share, spec.cost), prefer_unaware=True)
    if t.size == 0:
        return
    s.aware[t] = True
    s.vision[t] += spec.vision_gain * culture_gate(model, t) * (1.0 - s.vision[t])
    s.acted_after[t] = ACTIVITY_CODE["engagement"]
    if spec.new_ties:
        staff, rows = model.staff_index, model.staff_rows
        ambassadors = staff[s.vision[rows] >= model.config.ladder.vision_threshold]
        if ambassadors.size == 0:
            ambassadors = np.flatnonzero(s.staff & (s.level == s.level.max()))
        if ambassadors.size:
            partner = ambassadors[(model.rng.random(t.size) * ambassadors.size).astype(np.intp)]
            model.ties.add(t, partner, model.config.network.trust.new_tie)


def insight(model: CommonPurposeModel, share: float) -> None:
    spec = model.config.activities.insight
    s = model.state
    t = _targets(model, _actions(model, share, spec.cost), prefer_unaware=False)
    if t.size:
        s.insight[t] += spec.gain * (1.0 - s.insight[t])
        s.acted_after[t] = ACTIVITY_CODE["insight"]
        residents = model.fixed("ward_residents", ward_residents)
        touched = np.bincount(s.ward[t[~s.staff[t]]], minlength=len(model.ward_names))
        model.ward_insight += spec.ward_gain * np.minimum(touched / residents, 1.0) * (1.0 - model.ward_insight)
        np.minimum(model.ward_insight, 1.0, out=model.ward_insight)
    # insight keeps narrowing misalignment where it is held, and fades unless renewed
    kernels.insight_shifts_culture(
        s.insight, by_ward(model, model.ward_insight), spec.culture_shift, spec.decay, s.culture
    )
    model.ward_insight *= 1.0 - spec.decay


def _shift_structure(model: CommonPurposeModel, orgs: np.ndarray, gain: np.ndarray) -> None:
    """Move organisations' structural alignment towards the national cap (never past it)."""
    if orgs.size == 0:  # nothing moves (structures are never above the cap, so the clip is a no-op too)
        return
    weights = gain if isinstance(gain, np.ndarray) else np.full(orgs.size, float(gain))
    kernels.shift_structure(orgs, weights, float(model.national_cap), model.org_structure)


def collaborative(model: CommonPurposeModel, share: float) -> None:
    spec = model.config.activities.collaborative
    s = model.state
    k = _actions(model, share, spec.cost)
    staff, rows = model.staff_index, model.staff_rows  # rows: a view of staff when one block
    w = np.where(s.aware[rows], 0.05 + s.vision[rows], 0.0)
    if model.config.effort.policy == "adaptive":
        w = w * (1.0 - model.org_structure[s.org[rows]] + 0.05)
    a = _sample(model, k, w, staff)
    if a.size == 0:
        return
    brokered = model.rng.random(a.size) < spec.brokered_share
    b, _ = model.ties.random_neighbour(a, model.rng)
    pool = staff[s.aware[rows]]
    if brokered.any() and pool.size:
        cand = pool[(model.rng.random(int(brokered.sum())) * pool.size).astype(np.intp)]
        b[brokered] = np.where(s.sector[cand] != s.sector[a[brokered]], cand, -1)
    ok = b >= 0
    a, b = a[ok], b[ok]
    if a.size == 0:
        return
    # trust grows on ties that exist; brokered pairs without one start one (both at the week's flush)
    t0 = model.config.network.trust.new_tie
    model.ties.work_on(a, b, spec.trust_gain, t0 + spec.trust_gain * (1.0 - t0))
    # insight has run: culture and insight no longer change this week, so this is influence's gate too
    gates = model.gate()
    for p in (a, b):
        s.value[p] += spec.value_gain * s.vision[p] * gates[p] * (1.0 - s.value[p])
        s.acted_after[p] = ACTIVITY_CODE["collaborative"]
    # partners in different organisations each move their own organisation, by their own commitment
    cross = s.staff[a] & s.staff[b] & (s.org[a] != s.org[b])
    ends = np.concatenate([a[cross], b[cross]])
    _shift_structure(model, s.org[ends], spec.structure_gain * s.vision[ends] * s.value[ends])


def leadership(model: CommonPurposeModel, share: float) -> None:
    """Committed senior people share power with senior partners elsewhere; both organisations' structures move."""
    spec = model.config.activities.leadership
    s = model.state
    k = _actions(model, share, spec.cost)
    staff, rows = model.staff_index, model.staff_rows
    senior = s.level[rows] >= spec.min_level
    v = s.vision[rows]
    w_lead = np.where(senior & (v >= model.config.ladder.vision_threshold), v * s.value[rows], 0.0)
    w_partner = np.where(senior & s.aware[rows], 0.05 + v, 0.0)
    if model.config.effort.policy == "adaptive":
        w_partner = w_partner * (1.0 - model.org_structure[s.org[rows]] + 0.05)
    cum_partner = w_partner.cumsum() if k > 0 else None  # drawn from twice
    a, b = _sample(model, k, w_lead, staff), _sample(model, k, w_partner, staff, cum_partner)
    if a.size == 0 or b.size == 0:
        return
    same = s.org[a] == s.org[b]  # partners come from elsewhere: one redraw, then drop the rest
    b[same] = _sample(model, int(same.sum()), w_partner, staff, cum_partner)
    pair = s.org[a] != s.org[b]
    a, b = a[pair], b[pair]
    if a.size == 0:
        return
    strength = spec.structure_gain * s.vision[a] * s.value[a]  # the leader's commitment moves both
    ends = np.concatenate([a, b])
    _shift_structure(model, s.org[ends], np.concatenate([strength, strength]))
    for p in (a, b):
        s.value[p] += spec.value_gain * s.vision[p] * (1.0 - s.value[p])
    s.acted_after[ends] = ACTIVITY_CODE["leadership"]
    model.ties.work_on(a, b, spec.trust_gain, model.config.network.trust.new_tie)


def embedding(model: CommonPurposeModel, share: float) -> None:
    spec = model.config.activities.embedding
    s = model.state
    k = _actions(model, share, spec.cost)
    if k == 0 or model.org_embedded.size == 0:
        return
    lad = model.config.ladder
    rows = model.staff_rows
    committed = (s.vision[rows] >= lad.vision_threshold) & (s.value[rows] >= lad.value_threshold)
    n_org = model.org_embedded.size
    staff_org = model.fixed("staff_org", lambda m: m.state.org[m.staff_index])
    size = model.fixed("staff_org_size", lambda m: np.maximum(np.bincount(staff_org, minlength=n_org), 1))
    n_committed = np.bincount(staff_org[committed], minlength=n_org)
    # effort goes where committed people can formalise it, with diminishing returns per organisation
    w = n_committed * (1.0 - legacy(model))
    if model.config.effort.policy == "adaptive":
        w = w * (1.0 - model.org_structure + 0.05)
    orgs = _sample(model, k, w)
    if orgs.size == 0:
        return
    success = model.rng.random(orgs.size) < spec.success * n_committed[orgs] / size[orgs]
    done = orgs[success]
    np.add.at(model.org_embedded, done, 1.0)
    _shift_structure(model, done, spec.structure_gain)


ACTIVITY_FUNCS = {
    "engagement": engagement,
    "insight": insight,
    "collaborative": collaborative,
    "leadership": leadership,
    "embedding": embedding,
}


def run_activities(model: CommonPurposeModel) -> None:
    """Spend this week's effort: allocate, then run each enabled activity in a fixed order."""
    shares = allocation(model)
    model.last_allocation = shares
    for name in ACTIVITIES:
        if getattr(model.config.activities, name).enabled:
            ACTIVITY_FUNCS[name](model, shares[name])
    kernels.clip01_inplace(model.state.vision)
    kernels.clip01_inplace(model.state.value)
    model.ties.flush()  # this week's new ties (staged until now) carry influence from this week's update on
