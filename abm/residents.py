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


def exposure(model: CommonPurposeModel, who: np.ndarray | slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
    """Per person in `who` (default everyone): exposure to acting professionals, and peers.

    Returns the saturating exposure 1 - exp(-trust-weighted acting professionals) and the acting
    share of their resident ties.
    """
    nb = model.snapshot()
    pro = 1.0 - np.exp(-nb[who, PRO_ACTING])
    residents = nb[who, RESIDENT]
    if residents.size and residents.min() >= 1e-12:  # (float32) no zeros and the floor changes nothing
        return pro, nb[who, RES_ACTING] / residents
    peers = np.where(residents > 0, nb[who, RES_ACTING] / np.maximum(residents, 1e-12), 0.0)
    return pro, peers


def _resident_rates(model: CommonPurposeModel) -> np.ndarray:
    """Per resident, baseline uptake: row 0 inactive->fairly active, row 1 fairly->active."""
    return np.ascontiguousarray(model.uptake_rates[model.state.ward[model.resident_index]].T)


def move_classes(model: CommonPurposeModel) -> None:
    """One week of class moves for every resident (one uniform draw each).

    A resident in class c moves up when r < up_c and down when up_c <= r < up_c + down_c, where
    up_2 = 0 (no class above active) and down_0 = 0 (none below inactive).
    """
    cfg = model.config.residents_activity
    s = model.state
    if model.resident_index.size == 0:
        return
    res = model.resident_rows  # a slice when residents are one block: views instead of gathers
    pro, peers = exposure(model, res)
    gate = 1.0 - cfg.culture_weight * (1.0 - s.culture[res] * model.national_culture)
    uplift = cfg.professional_effect * pro * gate * (1.0 + cfg.peer_effect * peers)
    cls = s.pa_class[res]
    rates = model.fixed("resident_rates", _resident_rates)
    up = (np.where(cls == 0, rates[0], rates[1]) + uplift) * (cls < 2)
    down = np.array([0.0, cfg.relapse_fairly, cfg.relapse_active])[cls.astype(np.intp)] * (1.0 - cfg.protection * pro)
    r = model.rng.random(cls.size)
    s.pa_class[res] = cls + (r < up) - ((r >= up) & (r < up + down))
