"""Staff turnover: people leave, posts are refilled, and history goes with them.

A newcomer takes over the post (the same agent and index). What survives depends on the
organisation's legacy, 1 - exp(-embedded / legacy_half):
- vision and value: the post's starting values (the role's, or the organisation's override;
  0 for a newcomer who is not yet aware), lifted towards colleagues' current mean by the legacy;
- ties: colleagues stay (trust reset towards that of a new tie); outside ties are lost with
  probability tie_loss x (1 - legacy); kept ones keep trust in proportion to the legacy;
- structures: alignment gained above the starting level erodes in proportion to the share
  of staff who left and to (1 - legacy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from abm.activities import legacy
from abm.network import KIND
from abm.state import clip01

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


def replace_people(model: CommonPurposeModel, leavers: np.ndarray) -> None:
    """Refill the posts in `leavers` (agent indices) with newcomers."""
    leavers = np.unique(np.asarray(leavers, dtype=np.int64))
    if leavers.size == 0:
        return
    cfg = model.config
    s = model.state
    n_org = model.org_structure.size
    leg_org = legacy(model)
    leg = leg_org[s.org[leavers]]
    staff = model.staff_rows  # a slice when staff are one block: views, not gathers
    staff_org = model.fixed("staff_org", lambda m: m.state.org[m.staff_index])
    size = model.fixed("org_size", lambda m: np.maximum(np.bincount(staff_org, minlength=n_org), 1))
    mean_v = np.bincount(staff_org, weights=s.vision[staff], minlength=n_org) / size
    mean_u = np.bincount(staff_org, weights=s.value[staff], minlength=n_org) / size
    iv, iu, ia = s.init_vision[leavers], s.init_value[leavers], s.init_aware[leavers]
    o = s.org[leavers]
    # a newcomer starts like anyone new to the post, lifted towards colleagues by the legacy
    aware = model.rng.random(leavers.size) < np.maximum(ia, leg)
    noise = model.rng.normal(0, 0.1, (2, leavers.size))
    start_v = clip01(iv + noise[0] * (iv > 0))
    start_u = clip01(iu + noise[1] * (iu > 0))
    s.vision[leavers] = np.where(aware, start_v + leg * np.maximum(mean_v[o] - start_v, 0.0), 0.0)
    s.value[leavers] = np.where(aware, start_u + leg * np.maximum(mean_u[o] - start_u, 0.0), 0.0)
    s.aware[leavers] = aware
    s.acting[leavers] = False
    s.sustain[leavers] = 0.0
    s.insight[leavers] = 0.0
    skill_mean = model.role_initial["skills"][s.role[leavers]]
    s.skills[leavers] = clip01(skill_mean + model.rng.normal(0, 0.1, leavers.size))
    for first in (s.first_subscribed, s.first_valued, s.first_acting):
        first[leavers] = -1
    s.acted_after[leavers] = -1
    s.replaced[leavers] += 1

    # ties: the post's colleagues remain, outside relationships go unless embedded
    mask = np.zeros(s.n, dtype=bool)
    mask[leavers] = True
    ties = model.ties
    inc = ties.incident(mask, leavers)
    if inc.size:
        leaver_end = np.where(mask[ties.eu[inc]], ties.eu[inc], ties.ev[inc])
        keep_share = leg_org[s.org[leaver_end]]
        within = ties.kind[inc] == KIND["within_organisation"]
        lost = ~within & (model.rng.random(inc.size) < cfg.turnover.tie_loss * (1.0 - keep_share))
        t0 = cfg.network.trust.new_tie
        kept = inc[~lost]
        old = ties.trust[kept]
        ties.set_trust(kept, np.where(old > t0, t0 + keep_share[~lost] * (old - t0), old))
        if lost.any():
            ties.remove(inc[lost])

    # structures erode where people leave, unless the change is embedded
    left = np.bincount(s.org[leavers], minlength=n_org) / size
    gain = np.maximum(model.org_structure - model.org_structure_start, 0.0)
    model.org_structure -= gain * (1.0 - leg_org) * np.minimum(left, 1.0)
    model.leavers_total += int(leavers.size)


def staff_turnover(model: CommonPurposeModel) -> None:
    cfg = model.config.turnover
    s = model.state
    weekly = 1.0 - (1.0 - cfg.annual_rate) ** (1.0 / 52.0)
    can_leave = model.fixed("can_leave", lambda m: np.flatnonzero(m.state.staff & ~m.protected_roles[m.state.role]))
    draw = model.rng.random(s.n)  # one draw per person, so the stream does not depend on who can leave
    leavers = can_leave[draw[can_leave] < weekly]
    replace_people(model, leavers)
