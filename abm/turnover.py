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

from abm import kernels
from abm.activities import legacy
from abm.network import KIND
from abm.state import sorted_unique

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


def replace_people(model: CommonPurposeModel, leavers: np.ndarray) -> None:
    """Refill the posts in `leavers` (agent indices, in any order, repeats allowed) with newcomers."""
    _refill(model, sorted_unique(np.asarray(leavers, dtype=np.int64)))


def _refill(model: CommonPurposeModel, leavers: np.ndarray) -> None:
    """`replace_people` for sorted, distinct `leavers`."""
    if leavers.size == 0:
        return
    cfg = model.config
    s = model.state
    rng = model.rng
    n_org = model.org_structure.size
    leg_org = legacy(model)
    o = s.org[leavers]
    leg = leg_org[o]
    staff_org = model.fixed("staff_org", lambda m: m.state.org[m.staff_index])
    size = model.fixed("org_size", lambda m: np.maximum(np.bincount(staff_org, minlength=n_org), 1))
    # the draws, in the order the steps below use them: aware, starting vision and value, skills
    aware_draw = rng.random(leavers.size)
    start_noise = rng.normal(0, 0.1, (2, leavers.size))
    skill_noise = rng.normal(0, 0.1, leavers.size)
    # a newcomer starts like anyone new to the post, lifted towards colleagues' mean by the legacy
    kernels.refill_posts(
        leavers, o, leg, model.staff_index, s.org, size, s.init_aware, s.init_vision, s.init_value,
        aware_draw, start_noise, model.role_initial["skills"][s.role[leavers]], skill_noise,
        s.vision, s.value, s.aware, s.acting, s.sustain, s.insight, s.skills,
        s.first_subscribed, s.first_valued, s.first_acting, s.acted_after, s.replaced,
    )  # fmt: skip

    # ties: the post's colleagues remain, outside relationships go unless embedded
    mask = np.zeros(s.n, dtype=bool)
    mask[leavers] = True
    ties = model.ties
    inc = ties.incident(mask, leavers)
    if inc.size:
        eu = ties.eu[inc]
        leaver_end = np.where(mask[eu], eu, ties.ev[inc])
        keep_share = leg_org[s.org[leaver_end]]
        within = ties.kind[inc] == KIND["within_organisation"]
        lost = ~within & (rng.random(inc.size) < cfg.turnover.tie_loss * (1.0 - keep_share))
        t0 = cfg.network.trust.new_tie
        old = ties.trust[inc]
        trust = np.where(old > t0, t0 + keep_share * (old - t0), old)
        trust[lost] = 0.0  # one write for kept and lost ties (incident ties are distinct)
        ties.set_trust(inc, trust)
        if lost.any():
            ties.remove(inc[lost], zero_trust=False)

    # structures erode where people leave, unless the change is embedded
    left = np.bincount(o, minlength=n_org) / size
    gain = np.maximum(model.org_structure - model.org_structure_start, 0.0)
    model.org_structure -= gain * (1.0 - leg_org) * np.minimum(left, 1.0)
    model.leavers_total += int(leavers.size)


def staff_turnover(model: CommonPurposeModel) -> None:
    cfg = model.config.turnover
    weekly = 1.0 - (1.0 - cfg.annual_rate) ** (1.0 / 52.0)
    can_leave = model.fixed("can_leave", lambda m: np.flatnonzero(m.state.staff & ~m.protected_roles[m.state.role]))
    # one draw per person who can leave (a tenth of everyone at scale: residents never leave)
    _refill(model, can_leave[model.rng.random(can_leave.size) < weekly])  # sorted and distinct already
