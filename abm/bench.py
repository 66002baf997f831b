"""Benchmark helpers: scale the default South Tees model to a size and a mean degree, and time it.

`scaled_overrides(agents, degree)` gives config overrides that make the full default model
(`south_tees`) about `agents` people (90% residents, 10% staff, as in the default) with a
generated mean degree (2 * ties / agents, at week 0) of about `degree`. `bench(...)` builds the
model with them, steps it and returns the measured figures (actual agents and ties, not the
requested ones).

Example:
    >>> ov = scaled_overrides(20_000, 10)
    >>> ov["population.residents"], ov["network.resident_degree"] % 2
    (18000, 0)
"""

from __future__ import annotations

import math
import resource
import sys
import time
from functools import lru_cache
from typing import Any

import numpy as np

from abm.config import Config, load_config

#: Share of the population that are residents (the rest are staff), as in the default scenario.
RESIDENT_SHARE = 0.9
#: Networks up to this size are generated to calibrate the degree settings (larger ones are
#: calibrated at this size: organisations keep their size when scaled, so the mix of ties per
#: person does not depend on the population size).
CALIBRATION_AGENTS = 20_000
#: The degree settings that are scaled, with their default values in `south_tees`.
SCALED_DEGREES = (
    "network.resident_degree",
    "network.frontline_resident_degree",
    "network.within_org_degree",
    "network.community_degree",
)


@lru_cache(maxsize=1)
def _default() -> Config:
    return load_config("south_tees")


def default_staff() -> int:
    """Staff in the default scenario at `population.staff_scale` 1 (about 205)."""
    cfg = _default()
    return cfg.agent_count() - cfg.population.residents


def _mean_degree(overrides: dict[str, Any]) -> float:
    """Mean degree (2 * ties / agents) of the network generated with these overrides (seed 0)."""
    from abm.network import generate

    pop = generate(load_config(_default(), overrides), np.random.default_rng(0))
    return 2.0 * pop.eu.size / max(pop.n_agents, 1)


def _size_overrides(agents: int) -> dict[str, Any]:
    return {
        "population.residents": round(RESIDENT_SHARE * agents),
        "population.staff_scale": (1.0 - RESIDENT_SHARE) * agents / default_staff(),
    }


def _degree_overrides(resident_degree: int, g: float) -> dict[str, Any]:
    net = _default().network
    return {
        "network.resident_degree": int(resident_degree),
        "network.frontline_resident_degree": round(net.frontline_resident_degree * g, 4),
        "network.within_org_degree": round(net.within_org_degree * g, 4),
        "network.community_degree": round(net.community_degree * g, 4),
    }


def scaled_overrides(agents: int, degree: float) -> dict[str, Any]:
    """Config overrides for about `agents` people with a generated mean degree of about `degree`.

    Residents are 90% of `agents`; `population.staff_scale` is set so staff are about 10% (the
    default has about 205 staff at scale 1; organisation counts are rounded, so small
    populations get a few more). The resident ring-lattice degree (an even integer) is scaled
    with the default ratio and rounded to the nearest even number (lowered if it alone would
    give more than 90% of `degree`); the frontline, within-organisation and community
    degrees are then multiplied by one common factor, found by secant steps on networks
    generated at up to `CALIBRATION_AGENTS` people (seed 0), so the mean degree lands near
    `degree`. Hierarchy, cross-sector and community-link ties keep their defaults.

    Args:
        agents: wanted population (residents plus staff), at least 100.
        degree: wanted mean degree at week 0 (2 * ties / agents), above 0.

    Returns:
        A `{dotted.key: value}` mapping for `load_config` or `CommonPurposeModel(overrides=...)`.

    Raises:
        ValueError: agents below 100 or degree not a positive finite number.
    """
    if agents < 100:
        raise ValueError(f"agents must be at least 100, got {agents}")
    if not (math.isfinite(degree) and degree > 0):
        raise ValueError(f"degree must be a positive number, got {degree}")
    size = _size_overrides(agents)
    calib = _size_overrides(min(agents, CALIBRATION_AGENTS))
    d0 = _mean_degree(calib)  # the default degree settings at this size
    rd_default = _default().network.resident_degree
    rd = max(0, 2 * round(rd_default * degree / d0 / 2))

    def measured(g: float) -> float:
        return _mean_degree({**calib, **_degree_overrides(rd, g)})

    g0, d_g0 = 0.0, measured(0.0)
    while rd >= 2 and d_g0 > 0.9 * degree:  # leave room for the other kinds of tie
        rd -= 2
        d_g0 = measured(0.0)
    g1 = max(degree / d0, 0.05)
    d_g1 = measured(g1)
    for _ in range(4):
        if abs(d_g1 - degree) <= 0.01 * degree or d_g1 == d_g0:
            break
        g2 = max(0.0, g1 + (degree - d_g1) * (g1 - g0) / (d_g1 - d_g0))
        g0, d_g0 = g1, d_g1
        g1, d_g1 = g2, measured(g2)
    return {**size, **_degree_overrides(rd, g1)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (from `resource.getrusage`)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KB on Linux


def bench(agents: int, degree: float, steps: int, seed: int = 1) -> dict[str, Any]:
    """Build the scaled default model, step it `steps` times, and measure.

    Args:
        agents: wanted population (see `scaled_overrides`).
        degree: wanted mean degree.
        steps: weeks to step (each timed on its own).
        seed: the model's seed.

    Returns:
        agents and edges actually built (ties at week 0), their mean degree, steps, build_s
        (config to ready model, as `model.build_seconds`), seconds_per_step (median over steps),
        cpu_seconds_per_step (median process CPU time per step: less affected by a busy machine),
        step_s_total (all steps), agent_steps_per_s (agents / seconds_per_step) and peak_rss_mb (this process).
    """
    from abm.model import CommonPurposeModel

    overrides = scaled_overrides(agents, degree)
    model = CommonPurposeModel("south_tees", rng=seed, overrides=overrides, steps=max(steps, 1))
    n, edges = model.state.n, model.ties.count
    times, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        model.step()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    per_step = float(np.median(times)) if times else float("nan")
    return {
        "agents": int(n),
        "edges": int(edges),
        "mean_degree": round(2.0 * edges / max(n, 1), 3),
        "steps": int(steps),
        "build_s": round(model.build_seconds, 4),
        "seconds_per_step": round(per_step, 6),
        "cpu_seconds_per_step": round(float(np.median(cpu)), 6) if cpu else None,
        "step_s_total": round(float(sum(times)), 4),
        "agent_steps_per_s": round(n / per_step, 1) if times and per_step > 0 else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
