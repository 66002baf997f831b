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
    pro = np.negative(nb[who, PRO_ACTING])  # 1 - exp(-x), in place (float32, as the sums)
    np.exp(pro, out=pro)
    np.subtract(1.0, pro, out=pro)
    residents = nb[who, RESIDENT]
    if residents.size and residents.min() >= 1e-12:  # (float32) no zeros and the floor changes nothing
        return pro, nb[who, RES_ACTING] / residents
    peers = np.where(residents > 0, nb[who, RES_ACTING] / np.maximum(residents, 1e-12), 0.0)
    return pro, peers


class _RateTables(NamedTuple):
    """Residents' rows in the rate tables (ward x 3 + class), and the baseline uptake per row.

    Rows are ward x 3 + class: uptake inactive->fairly active, fairly->active, and 0 for the active
    (who have no class above; their uplift is masked off too). Residents come in runs of one ward
    (as generated), so 3 x ward is kept per run and repeated: cheaper than reading it per resident.
    """

    ward3: np.ndarray  # 3 x ward per run of residents; per resident when they are in no ward order
    length: np.ndarray | None  # each run's length; None when `ward3` is per resident
    up: np.ndarray


def _rate_tables(model: CommonPurposeModel) -> _RateTables:
    ward = model.state.ward[model.resident_index].astype(np.intp)
    up = np.column_stack([model.uptake_rates, np.zeros(len(model.uptake_rates))]).ravel()
    starts = np.flatnonzero(np.concatenate(([True], ward[1:] != ward[:-1]))) if ward.size else ward
    if starts.size > ward.size // 4:
        return _RateTables(3 * ward, None, up)
    return _RateTables(3 * ward[starts], np.diff(np.append(starts, ward.size)), up)


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
    # uplift = professional_effect x pro x culture gate x (1 + peer_effect x peers), in place
    uplift = np.multiply(s.culture[res], model.national_culture)
    np.subtract(1.0, uplift, out=uplift)
    uplift *= cfg.culture_weight
    np.subtract(1.0, uplift, out=uplift)  # the culture gate
    uplift *= np.multiply(pro, cfg.professional_effect)
    peers *= cfg.peer_effect  # (exposure's arrays are fresh: safe to change in place)
    peers += 1.0
    uplift *= peers
    cls = s.pa_class[res]
    tables = model.fixed("resident_rate_tables", _rate_tables)
    if tables.length is None:
        row = tables.ward3 + cls
    else:
        row = tables.ward3.repeat(tables.length)
        row += cls
    up_rate = tables.up
    up = up_rate.take(row)
    up += uplift
    up *= cls < 2  # the active cannot move up
    # relapse by class, looked up by `row` too: taking by the int8 classes would convert them first
    down = np.array([0.0, cfg.relapse_fairly, cfg.relapse_active] * (up_rate.size // 3)).take(row)
    cut = np.multiply(pro, cfg.protection, out=pro)
    down *= np.subtract(1.0, cut, out=cut)
    r = model.rng.random(cls.size)
    rise = r < up
    # down >= 0 (protection is at most 1), so r < up implies r < up + down: those who move
    # down are the ones with r < up + down but not r < up
    fall = np.less(r, np.add(up, down, out=down))
    fall ^= rise
    cls += rise
    cls -= fall
    s.pa_class[res] = cls
