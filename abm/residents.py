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

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from abm import kernels
from abm.influence import PRO_ACTING, RES_ACTING, RESIDENT

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel


def baseline_rates(mixes: np.ndarray, relapse_fairly: float, relapse_active: float) -> np.ndarray:
    """Uptake rates (per ward: inactive->fairly, fairly->active) that keep each mix stationary."""
    p0, p1, p2 = (np.maximum(mixes[:, k], 1e-9) for k in range(3))
    up0 = np.minimum(relapse_fairly * p1 / p0, 1.0)
    up1 = np.minimum(relapse_active * p2 / p1, 1.0)
    return np.stack([up0, up1], axis=1)


class _Uptake(NamedTuple):
    """Each resident's ward's baseline uptake from inactive and from fairly active (fixed while
    nobody joins: per resident, so the weekly loop reads them in order instead of by ward)."""

    inactive: np.ndarray
    fairly: np.ndarray


def _uptake(model: CommonPurposeModel) -> _Uptake:
    ward = model.state.ward[model.resident_index].astype(np.intp)
    return _Uptake(*(np.ascontiguousarray(model.uptake_rates[ward, k]) for k in range(2)))


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
    nb = model.snapshot()
    saturation = np.negative(nb[res, PRO_ACTING])  # exp(-x) (float32, as the sums), in place
    np.exp(saturation, out=saturation)
    flat, k, rows = nb.ravel(), nb.shape[1], model.resident_index
    cls = s.pa_class[res]
    uptake = model.fixed("resident_uptake", _uptake)
    kernels.class_moves(
        saturation,
        kernels.column(flat, k, RESIDENT, rows),
        kernels.column(flat, k, RES_ACTING, rows),
        s.culture[res],
        model.national_culture,
        cfg.culture_weight,
        cfg.professional_effect,
        cfg.peer_effect,
        cfg.protection,
        uptake.inactive,
        uptake.fairly,
        cfg.relapse_fairly,
        cfg.relapse_active,
        model.rng.random(cls.size),
        cls,
    )
    s.pa_class[res] = cls  # (a no-op when `cls` is a view)
