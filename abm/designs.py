"""Experimental designs for sweeps: full grids, Latin hypercubes, Morris and Sobol (SALib).

Sampled designs (Latin hypercube, Morris, Sobol) are drawn in the unit cube [0, 1]^D and then
mapped onto each parameter's range (`to_value`: linear or log scale, optionally whole numbers).
The unit coordinates are kept with the plan: SALib's Morris and Sobol estimators are invariant
to that rescaling (Morris elementary effects are then per unit of the normalised range, which
makes them comparable across parameters).

Run counts (before replicates):

- grid: the product of the value-list lengths,
- Latin hypercube: `samples`,
- Morris: `trajectories * (D + 1)`,
- Sobol (Saltelli): `samples * (2D + 2)` with second-order indices, `samples * (D + 2)` without.

Example:
    >>> grid_count([[0, 1], ["a", "b", "c"]])
    6
    >>> morris_count(d=4, trajectories=10), sobol_count(d=3, samples=64, second_order=True)
    (50, 512)
    >>> unit = lhs_unit(d=2, samples=5, seed=1)
    >>> unit.shape, bool(((unit >= 0) & (unit < 1)).all())
    ((5, 2), True)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

METHODS = ("grid", "lhs", "morris", "sobol")


def grid_count(values: Sequence[Sequence[Any]]) -> int:
    """Points in the full factorial grid of these value lists."""
    return math.prod(len(v) for v in values)


def grid_points(values: Sequence[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """The full factorial grid, the last parameter varying fastest."""
    return itertools.product(*values)


def lhs_count(samples: int) -> int:
    return samples


def morris_count(d: int, trajectories: int) -> int:
    return trajectories * (d + 1)


def sobol_count(d: int, samples: int, second_order: bool) -> int:
    return samples * (2 * d + 2 if second_order else d + 2)


def lhs_unit(d: int, samples: int, seed: int) -> np.ndarray:
    """A Latin hypercube in [0, 1)^d: each of `samples` equal strata of each axis is hit once."""
    from scipy.stats import qmc

    return qmc.LatinHypercube(d=d, rng=np.random.default_rng(seed)).random(samples)


def _problem(d: int) -> dict[str, Any]:
    return {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}


def morris_unit(d: int, trajectories: int, levels: int, seed: int) -> np.ndarray:
    """Morris trajectories in [0, 1]^d (SALib), `trajectories * (d + 1)` rows, in trajectory order."""
    from SALib.sample import morris

    return np.asarray(morris.sample(_problem(d), trajectories, num_levels=levels, seed=seed), dtype=float)


def sobol_unit(d: int, samples: int, second_order: bool, seed: int) -> np.ndarray:
    """Saltelli's scheme on a scrambled Sobol sequence in [0, 1]^d (SALib), in SALib's row order."""
    from SALib.sample import sobol

    return np.asarray(sobol.sample(_problem(d), samples, calc_second_order=second_order, seed=seed), dtype=float)


def to_value(u: float, low: float, high: float, *, log: bool = False, integer: bool = False) -> float | int:
    """Map a unit coordinate onto [low, high] (log scale if `log`; whole numbers if `integer`).

    Whole numbers split the unit interval into equal parts, one per integer in [low, high].

    >>> to_value(0.5, 0, 10), round(to_value(0.5, 1, 100, log=True), 9), to_value(0.999, 0, 3, integer=True)
    (5.0, 10.0, 3)
    """
    if integer:
        lo, hi = math.ceil(low), math.floor(high)
        return int(min(hi, lo + math.floor(u * (hi - lo + 1))))
    if log:
        return float(math.exp(math.log(low) + u * (math.log(high) - math.log(low))))
    return float(low + u * (high - low))
