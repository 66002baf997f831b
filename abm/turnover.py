"""Staff turnover: people leave, posts are refilled, and history goes with them.

A newcomer takes over the post (the same agent and index). What survives depends on the
organisation's legacy, 1 - exp(-embedded / legacy_half):
- vision and value: the role's starting values, lifted towards the organisation's current
  mean by the legacy;
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
    size = np.maximum(np.bincount(s.org[s.staff], minlength=n_org), 1)
    mean_v = np.bincount(s.org[s.staff], weights=s.vision[s.staff], minlength=n_org) / size
    mean_u = np.bincount(s.org[s.staff], weights=s.value[s.staff], minlength=n_org) / size
    iv, iu, ia = (model.role_initial[k][s.role[leavers]] for k in ("vision", "value", "aware"))
    o = s.org[leavers]
    s.vision[leavers] = iv + leg * np.maximum(mean_v[o] - iv, 0.0)
    s.value[leavers] = iu + leg * np.maximum(mean_u[o] - iu, 0.0)
    s.aware[leavers] = model.rng.random(leavers.size) < np.maximum(ia, leg)
    s.acting[leavers] = False
    s.sustain[leavers] = 0.0
    s.insight[leavers] = 0.0
    skill_mean = model.role_initial["skills"][s.role[leavers]]
    s.skills[leavers] = np.clip(skill_mean + model.rng.normal(0, 0.1, leavers.size), 0.0, 1.0)
    for first in (s.first_subscribed, s.first_valued, s.first_acting):
        first[leavers] = -1
    s.acted_after[leavers] = -1
    s.replaced[leavers] += 1

    # ties: the post's colleagues remain, outside relationships go unless embedded
    mask = np.zeros(s.n, dtype=bool)
    mask[leavers] = True
    ties = model.ties
    inc = ties.incident(mask)
    if inc.size:
        leaver_end = np.where(mask[ties.eu[inc]], ties.eu[inc], ties.ev[inc])
        keep_share = leg_org[s.org[leaver_end]]
        within = ties.kind[inc] == KIND["within_organisation"]
        lost = ~within & (model.rng.random(inc.size) < cfg.turnover.tie_loss * (1.0 - keep_share))
        t0 = cfg.network.trust.new_tie
        kept = inc[~lost]
        ties.set_trust(kept, t0 + keep_share[~lost] * np.maximum(ties.trust[kept] - t0, 0.0))
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
    can_leave = s.staff & ~model.protected_roles[s.role]
    leavers = np.flatnonzero(can_leave & (model.rng.random(s.n) < weekly))
    replace_people(model, leavers)
