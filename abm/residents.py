"""Residents' physical activity: moves between the Active Lives classes.

Classes: 0 inactive (< 30 min a week), 1 fairly active (30-149), 2 active (150+). Without
intervention each ward's class mix is stationary: relapse rates are parameters and the
matching uptake rates are solved from the ward's starting mix (birth-death balance:
up0 = relapse_fairly x p1 / p0, up1 = relapse_active x p2 / p1). Contact with acting
professionals (GPs, housing officers, community workers: roles with `resident_contact`)
adds uptake and cuts relapse, gated by culture and amplified by acting neighbours. So
inactivity falls only when professionals act (pattern P8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from abm.influence import PRO_ACTING, RES_ACTING, RESIDENT

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


def baseline_rates(mixes: np.ndarray, relapse_fairly: float, relapse_active: float) -> np.ndarray:
    """Uptake rates (per ward: inactive->fairly, fairly->active) that keep each mix stationary."""
    p0, p1, p2 = (np.maximum(mixes[:, k], 1e-9) for k in range(3))
    up0 = np.minimum(relapse_fairly * p1 / p0, 1.0)
    up1 = np.minimum(relapse_active * p2 / p1, 1.0)
    return np.stack([up0, up1], axis=1)


def exposure(model: CommonPurposeModel) -> tuple[np.ndarray, np.ndarray]:
    """Per resident: saturating exposure to acting professionals, and acting share of resident ties."""
    nb = model.snapshot()
    pro = 1.0 - np.exp(-nb[:, PRO_ACTING])
    peers = np.where(nb[:, RESIDENT] > 0, nb[:, RES_ACTING] / np.maximum(nb[:, RESIDENT], 1e-12), 0.0)
    return pro, peers


def move_classes(model: CommonPurposeModel) -> None:
    cfg = model.config.residents_activity
    s = model.state
    res = np.flatnonzero(~s.staff)
    if res.size == 0:
        return
    pro, peers = exposure(model)
    pro, peers = pro[res], peers[res]
    gate = 1.0 - cfg.culture_weight * (1.0 - s.culture[res] * model.national_culture)
    uplift = cfg.professional_effect * pro * gate * (1.0 + cfg.peer_effect * peers)
    base = model.uptake_rates[s.ward[res]]
    protect = 1.0 - cfg.protection * pro
    up0 = base[:, 0] + uplift
    up1 = base[:, 1] + uplift
    down1 = cfg.relapse_fairly * protect
    down2 = cfg.relapse_active * protect
    cls = s.pa_class[res]
    r = model.rng.random(res.size)
    new = cls.copy()
    new[(cls == 0) & (r < up0)] = 1
    new[(cls == 1) & (r < up1)] = 2
    new[(cls == 1) & (r >= up1) & (r < up1 + down1)] = 0
    new[(cls == 2) & (r < down2)] = 1
    s.pa_class[res] = new
