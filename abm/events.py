"""Scenario events that fire at the start of a given week.

- national_policy_change: a new national structural cap and/or national cultural alignment
  (tightening clips local alignment at once; relaxing lets it grow again);
- funding_cut: the effort budget is multiplied by `factor`;
- leader_leaves: the best connected (or a random) holder of a role leaves and is replaced;
- partner_joins: a new organisation with its staff joins, tied into the system.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

from abm.config import ConfigError, FundingCut, LeaderLeaves, NationalPolicyChange, PartnerJoins, ScenarioWarning
from abm.labels import count_of, plain, plural
from abm.network import dedupe
from abm.state import State, tie_kinds
from abm.turnover import replace_people

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


def check_events(model: CommonPurposeModel) -> None:
    """Check the scheduled events against the population just built.

    Raises:
        ConfigError: a partner would join under the name of an organisation already there (its
            group rows would merge with that organisation's).

    Warns (`ScenarioWarning`, one line each): an event after the run's last week (it never fires),
    and a `leader_leaves` asking for more people than hold the role (all of them leave) or for a
    role nobody holds (nothing happens).
    """
    cfg = model.config
    taken = {name.casefold() for name in model.org_names}
    for i, event in enumerate(cfg.events):
        where = f"events.{i} ({event.type}, week {event.week})"
        if isinstance(event, PartnerJoins) and event.name.casefold() in taken:
            raise ConfigError(
                f"events.{i}.name = '{event.name}': an organisation of that name is already in the system "
                "(each organisation needs its own name)"
            )
        if event.week > cfg.steps:
            warnings.warn(
                ScenarioWarning(f"{where}: after the run's last week ({cfg.steps}), so it never fires"), stacklevel=2
            )
        elif isinstance(event, LeaderLeaves) and event.role in model.role_names:
            holders = int(np.count_nonzero(model.state.role == model.role_names.index(event.role)))
            if holders < event.count:
                what = "nobody holds that role: nothing happens" if holders == 0 else f"all {holders} will"
                text = f"{where}: asks for {event.count} people in role {event.role} to leave; {what}"
                warnings.warn(ScenarioWarning(text), stacklevel=2)


def fire_events(model: CommonPurposeModel) -> None:
    for event in model.config.events:
        if event.week == model.week:
            text = apply_event(model, event)
            model.log_event(text)


def apply_event(model: CommonPurposeModel, event) -> str:
    """Apply one event now (also used by the app's buttons); returns a plain-language line."""
    if isinstance(event, NationalPolicyChange):
        parts = []
        if event.structural_cap is not None:
            model.national_cap = event.structural_cap
            np.minimum(model.org_structure, model.national_cap, out=model.org_structure)
            parts.append(f"national structural cap now {event.structural_cap:.2f}")
        if event.cultural_alignment is not None:
            model.national_culture = event.cultural_alignment
            parts.append(f"national cultural alignment now {event.cultural_alignment:.2f}")
        return "National policy change: " + (", ".join(parts) or "no change")
    if isinstance(event, FundingCut):
        model.effort_budget *= event.factor
        if model.effort_budget <= 0:
            return "Funding cut: the effort budget is gone; no more effort is spent on the five activities"
        return (
            f"Funding cut: effort budget cut to {100 * event.factor:.0f}% of what it was, "
            f"now {model.effort_budget:,.1f} per 1,000 people a week"
        )
    if isinstance(event, LeaderLeaves):
        return _leader_leaves(model, event)
    if isinstance(event, PartnerJoins):
        return _partner_joins(model, event)
    raise TypeError(f"unknown event {event!r}")


def _leader_leaves(model: CommonPurposeModel, event: LeaderLeaves) -> str:
    s = model.state
    holders = np.flatnonzero(s.role == model.role_names.index(event.role))
    if holders.size == 0:
        return f"No {plural(plain(event.role))} to leave"
    if event.who == "most_connected":
        order = holders[np.argsort(-model.ties.degree()[holders], kind="stable")]
    else:
        order = model.rng.permutation(holders)
    leaving = order[: event.count]
    replace_people(model, leaving)
    if len(leaving) == 1:
        return f"1 {plain(event.role)} left; the post was refilled by a newcomer"
    return f"{count_of(len(leaving), event.role)} left; their posts were refilled by newcomers"


def _partner_joins(model: CommonPurposeModel, event: PartnerJoins) -> str:
    cfg = model.config
    s = model.state
    rng = model.rng
    roles = np.concatenate([np.full(k, model.role_names.index(r)) for r, k in event.staff.items()] or [[]]).astype(
        np.int16
    )
    k = roles.size
    if k == 0:
        return f"{event.name} joined with no staff"
    if event.sector not in model.sector_names:
        model.sector_names.append(event.sector)  # appended, so existing codes stay valid
    sector = model.sector_names.index(event.sector)
    o = model.org_structure.size
    model.org_names.append(event.name)
    model.org_type.append(event.name)
    model.org_sector = np.append(model.org_sector, sector)
    model.org_ward = np.append(model.org_ward, -1)
    start = min(event.structural_alignment, model.national_cap)
    model.org_structure = np.append(model.org_structure, start)
    model.org_structure_start = np.append(model.org_structure_start, start)
    model.org_embedded = np.append(model.org_embedded, 0.0)
    served = model.ward_names if event.wards == "all" else list(event.wards)
    ward = np.array([model.ward_names.index(served[j % len(served)]) for j in range(k)], dtype=np.int16)
    ward_culture = np.array([w.cultural_alignment for w in cfg.wards.values()])
    level = np.array([cfg.roles[r].level for r in model.role_names], dtype=np.int8)[roles]
    init = model.role_initial
    aware = rng.random(k) < init["aware"][roles]
    community = np.full(k, -1, dtype=np.int16)
    for c, spec in enumerate(cfg.communities.values()):
        if spec.members == "staff":
            community[np.isin(roles, [model.role_names.index(r) for r in spec.roles])] = c
    new = State(
        role=roles,
        org=np.full(k, o, dtype=np.int32),
        ward=ward,
        community=community,
        sector=np.full(k, sector, dtype=np.int16),
        level=level,
        staff=np.ones(k, dtype=bool),
        age_band=np.full(k, -1, dtype=np.int8),
        deprivation=np.full(k, 5, dtype=np.int8),
        skills=np.clip(init["skills"][roles] + rng.normal(0, 0.1, k), 0, 1),
        culture=np.clip(0.5 * event.cultural_alignment + 0.5 * ward_culture[ward] + rng.normal(0, 0.1, k), 0, 1),
        influence=init["influence"][roles],
        susceptibility=init["susceptibility"][roles],
        resident_contact=init["resident_contact"][roles],
        aware=aware,
        vision=np.where(aware, init["vision"][roles], 0.0),
        value=np.where(aware, init["value"][roles], 0.0),
        acting=np.zeros(k, dtype=bool),
        sustain=np.zeros(k),
        insight=np.zeros(k),
        pa_class=np.full(k, -1, dtype=np.int8),
        first_subscribed=np.full(k, -1, dtype=np.int32),
        first_valued=np.full(k, -1, dtype=np.int32),
        first_acting=np.full(k, -1, dtype=np.int32),
        acted_after=np.full(k, -1, dtype=np.int8),
        replaced=np.zeros(k, dtype=np.int32),
        init_vision=init["vision"][roles],
        init_value=init["value"][roles],
        init_aware=init["aware"][roles],
    )
    first = s.n
    s.append(new)
    model.stage = np.concatenate([model.stage, np.where(aware, 1, 0).astype(np.int8)])
    model.adopted_before = np.concatenate([model.adopted_before, np.zeros(k, dtype=bool)])
    model.ties.grow(s.n)
    ids = np.arange(first, s.n)
    # colleagues, partners in other sectors, and residents of the wards served
    per = round(event.ties_per_staff)
    src = np.repeat(ids, max(min(k - 1, 4), 0))
    u, v = [src], [first + rng.integers(0, k, src.size)]
    others = np.flatnonzero(s.staff[:first] & (s.sector[:first] != sector))
    if others.size and per:
        src = np.repeat(ids, per)
        u.append(src)
        v.append(others[rng.integers(0, others.size, src.size)])
    front = ids[level == 1]
    residents = np.flatnonzero(~s.staff)
    if front.size and residents.size:
        m = round(cfg.network.frontline_resident_degree)
        src = np.repeat(front, m)
        pool_by_ward = [residents[s.ward[residents] == w] for w in range(len(model.ward_names))]
        dst = np.empty(src.size, dtype=np.int64)
        for w in np.unique(s.ward[src]):
            pool = pool_by_ward[w] if pool_by_ward[w].size else residents
            pick = s.ward[src] == w
            dst[pick] = pool[rng.integers(0, pool.size, int(pick.sum()))]
        u.append(src)
        v.append(dst)
    a, b = dedupe(np.concatenate(u), np.concatenate(v), s.n)
    model.ties.add(a, b, cfg.network.trust.new_tie, tie_kinds(s, a, b))
    model.ties.flush()  # the partner arrives with its ties (not staged until the week's flush)
    model.add_agents(ids)
    return f"{event.name} ({plain(event.sector)}) joined with {k} staff"
