"""Validation: docking against canonical network models, and the evidence for patterns P1-P9.

`abm validate [--quick] [--out DIR] [--workers K]` runs two suites and prints one table
(check, expected, simulated, tolerance, pass), writes it as Markdown (`results.md`), the raw
numbers (`results.json`) and PNG figures into DIR (default `validation/`), and exits 0 only
if every check passes.

Docking: with activities, feedback, acting and turnover switched off (`configs/docking/`),
the engine's own weekly step, the same code path as every scenario, must reproduce:

- Watts (2002): frequency and mean size of global cascades against mean degree z, and the
  cascade window from the generating-function condition (`watts_window`);
- DeGroot (1974): the consensus equals the initial opinions weighted by the stationary
  distribution, (degree + self-weight) on an undirected graph (`degroot_consensus`);
- SIR / independent cascade (Newman 2002): the final size of large outbreaks solves
  S = 1 - exp(-z T S), and one seed starts a large outbreak with probability S (`sir_final_size`);
- Centola and Macy (2007): threshold-2 contagion spreads fully on a ring lattice and stalls
  as ties are rewired, while simple contagion does not stall.

Patterns: each of P1-P9 (`abm.patterns`) over replicate seeds, with its effect, 95% CI and
criterion; the tipping point (P9) as a curve.

Every run has a fixed seed (0, 1, 2, ... at each grid point), so the output is the same on
every machine and for any number of workers. Spreading runs stop once a week leaves everyone's
vision unchanged: under the threshold rule and the independent cascade nothing can change after
such a week, so the final state is the one `model.run()` would reach.

Example:
    >>> lo, hi = watts_window(0.18)
    >>> round(lo, 4), round(hi, 4)
    (1.0207, 5.7647)
    >>> round(sir_final_size(2.0), 4)
    0.7968
    >>> main(["--quick", "--out", "/tmp/abm-validation"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import multiprocessing
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

PROG = "abm validate"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

WATTS = "docking/watts2002"
DEGROOT = "docking/degroot"
SIR = "docking/sir"
CENTOLA = "docking/complex_contagion"

#: A cascade (or outbreak) is global (large) when it reaches more than this share of everyone.
GLOBAL = 0.10

#: Watts: z counts as inside the window (judged) from lo + INNER_LO to hi - INNER_HI, as outside
#: (judged) below lo - OUTER_LO or above hi + OUTER_HI; between these lie the edges, where
#: finite-size effects at N = 10,000 move the boundary (plotted and tabled, not judged).
INNER_LO, INNER_HI, OUTER_LO, OUTER_HI = 0.4, 0.5, 0.25, 0.5

SOURCES = {
    "watts": "Watts DJ (2002). A simple model of global cascades on random networks. PNAS 99(9):5766-5771.",
    "gleeson": "Gleeson JP, Cahalane DJ (2007). Seed size strongly affects cascades on random networks. "
    "Phys Rev E 75:056103.",
    "degroot": "DeGroot MH (1974). Reaching a consensus. J Am Stat Assoc 69(345):118-121.",
    "newman": "Newman MEJ (2002). Spread of epidemic disease on networks. Phys Rev E 66:016128.",
    "centola": "Centola D, Macy M (2007). Complex contagions and the weakness of long ties. Am J Sociol "
    "113(3):702-734.",
}


# --- analytic references ---------------------------------------------------------------------------


def vulnerable_degree(phi: float) -> int:
    """K* = floor(1/phi): a node of degree k <= K* adopts after one adopting neighbour."""
    return math.floor(1.0 / phi + 1e-12)


def watts_window(phi: float) -> tuple[float, float] | None:
    """The cascade window in mean degree z for a uniform threshold phi on Poisson (Erdos-Renyi) graphs.

    Watts (2002) eq. 3: global cascades are possible where sum_k k(k-1) rho_k p_k > z, with
    rho_k = 1 for vulnerable degrees 1 <= k <= K* = floor(1/phi). For Poisson p_k,
    k(k-1) p_k = z^2 p_{k-2}, so the condition reads z * P[Poisson(z) <= K* - 2] > 1.

    Returns:
        (lower z, upper z), or None when no window exists (phi > 1/4).
    """
    from scipy import optimize, stats

    k_star = vulnerable_degree(phi)
    if k_star < 2:
        return None

    def g(z: float) -> float:
        return z * float(stats.poisson.cdf(k_star - 2, z)) - 1.0

    top = optimize.minimize_scalar(lambda z: -g(z), bounds=(1e-6, 10.0 * k_star), method="bounded").x
    if g(top) <= 0:
        return None
    lo = optimize.brentq(g, 1e-9, top, xtol=1e-12)
    hi = optimize.brentq(g, top, 10.0 * k_star + 50.0, xtol=1e-12)
    return float(lo), float(hi)


def _poisson(z: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy import stats

    k = np.arange(int(z + 12 * math.sqrt(z + 1) + 30) + 1)
    return k, stats.poisson.pmf(k, z)


def watts_trigger_probability(z: float, phi: float) -> float:
    """Probability that one random seed starts a global cascade (the extended vulnerable cluster).

    u = 1 - sum_k (k p_k / z) rho_k (1 - u^(k-1)) is the chance that a random tie does not lead
    into the giant vulnerable cluster (smallest root, iterated from 0); the seed triggers a
    global cascade unless none of its ties does: P = 1 - sum_k p_k u^k. Zero outside the window.
    """
    if z <= 0:
        return 0.0
    k, p = _poisson(z)
    rho = (k >= 1) & (k <= vulnerable_degree(phi))
    q = k * p / z
    u = 0.0
    for _ in range(200_000):
        new = 1.0 - float(np.sum(q * rho * (1.0 - u ** np.maximum(k - 1, 0))))
        if abs(new - u) < 1e-14:
            break
        u = new
    return max(0.0, float(1.0 - np.sum(p * u**k)))


def watts_cascade_size(z: float, phi: float, rho0: float = 1e-4) -> float:
    """Final adopted share from a seed share rho0 (Gleeson and Cahalane 2007), uniform threshold phi.

    q = rho0 + (1 - rho0) sum_k (k p_k / z) P[Bin(k-1, q) >= m_k], iterated from q = rho0, and
    rho = rho0 + (1 - rho0) sum_k p_k P[Bin(k, q) >= m_k], with m_k = ceil(phi k) the fewest
    adopting neighbours that meet the threshold (degree-0 nodes never adopt).
    """
    from scipy import stats

    if z <= 0:
        return rho0
    k, p = _poisson(z)
    need = np.maximum(np.ceil(phi * k - 1e-12), 1).astype(int)
    has = k >= 1
    qk = k * p / z
    q = rho0
    for _ in range(200_000):
        new = rho0 + (1 - rho0) * float(np.sum(qk * has * stats.binom.sf(need - 1, np.maximum(k - 1, 0), q)))
        if abs(new - q) < 1e-14:
            break
        q = new
    return float(rho0 + (1 - rho0) * np.sum(p * has * stats.binom.sf(need - 1, k, q)))


def sir_final_size(zt: float) -> float:
    """The large-outbreak size S solving S = 1 - exp(-zT S) on Erdos-Renyi graphs (0 when zT <= 1)."""
    from scipy import optimize

    if zt <= 1.0:
        return 0.0
    return float(optimize.brentq(lambda s: s - 1.0 + math.exp(-zt * s), 1e-12, 1.0, xtol=1e-14))


def degroot_consensus(
    eu: np.ndarray, ev: np.ndarray, x0: np.ndarray, self_weight: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Each node's DeGroot limit on an undirected graph with W = row-normalise(A + self_weight I).

    On each connected component the limit is sum_i pi_i x0_i with pi_i proportional to
    degree_i + self_weight (the stationary distribution of W).

    Returns:
        (the limit for each node, the component label of each node).
    """
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    n = x0.size
    adj = sp.coo_matrix((np.ones(eu.size), (eu, ev)), shape=(n, n))
    _, label = connected_components(adj, directed=False)
    weight = np.bincount(eu, minlength=n) + np.bincount(ev, minlength=n) + self_weight
    num = np.bincount(label, weights=weight * x0)
    den = np.bincount(label, weights=weight)
    return (num / den)[label], label


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (95% by default) for k successes in n trials."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1.0 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


# --- what to run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Grid points and replicate counts for one suite size."""

    label: str
    watts_z: tuple[float, ...]
    watts_runs: int
    sir_points: tuple[tuple[float, float], ...]  # (z, T)
    sir_runs: int
    sir_single_runs: int
    degroot_runs: int
    centola_p: tuple[float, ...]
    centola_runs: int
    pattern_seeds: int
    p9_seeds: int
    sir_subcritical: tuple[float, float] = (4.0, 0.2)
    sir_single: tuple[float, float] = (4.0, 0.5)


QUICK = Settings(
    label="quick",
    watts_z=(0.5, 1.5, 3.0, 5.0, 8.0),
    watts_runs=60,
    sir_points=((4.0, 0.375), (4.0, 0.5), (8.0, 0.25), (3.0, 1.0)),
    sir_runs=10,
    sir_single_runs=100,
    degroot_runs=3,
    centola_p=(0.0, 0.01, 0.1, 1.0),
    centola_runs=5,
    pattern_seeds=8,
    p9_seeds=4,
)

FULL = Settings(
    label="full",
    watts_z=(0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 8.0),
    watts_runs=400,
    sir_points=((4.0, 0.3), (4.0, 0.375), (4.0, 0.5), (8.0, 0.25), (2.5, 0.8), (4.0, 0.75), (3.0, 1.0)),
    sir_runs=100,
    sir_single_runs=800,
    degroot_runs=20,
    centola_p=(0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
    centola_runs=30,
    pattern_seeds=20,
    p9_seeds=8,
)


@dataclass
class Check:
    """One row of the validation table."""

    suite: str
    name: str
    expected: str
    simulated: str
    tolerance: str
    passed: bool


@dataclass
class Section:
    """One docking model or the pattern suite: its checks, a detail table, figures and raw data."""

    key: str
    title: str
    source: str
    checks: list[Check] = field(default_factory=list)
    detail: list[dict[str, Any]] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


# --- running the engine (top-level functions, so they cross process boundaries) -----------------


@lru_cache(maxsize=64)
def _config(name: str, overrides: tuple[tuple[str, Any], ...]):
    from abm.config import load_config

    return load_config(name, dict(overrides) or None)


def run_to_rest(model) -> bool:
    """Step the model until a week leaves everyone's vision unchanged, or its steps run out.

    Returns:
        True if it came to rest (else it stopped at `config.steps`).
    """
    while model.running:
        before = model.state.vision.copy()
        model.step()
        if np.array_equal(before, model.state.vision):
            return True
    return False


def _spread(job: tuple[str, tuple[tuple[str, Any], ...], int]) -> dict[str, float]:
    """One spreading run: the final `adopted_share` (model frame), weeks taken, and whether it came to rest."""
    from abm.model import CommonPurposeModel

    name, overrides, seed = job
    model = CommonPurposeModel(_config(name, overrides), rng=seed)
    rest = run_to_rest(model)
    share = float(model.model_frame()["adopted_share"].iloc[-1])
    return {"share": share, "steps": float(model.week), "rest": float(rest)}


def _degroot(job: tuple[str, tuple[tuple[str, Any], ...], int]) -> dict[str, float]:
    """One averaging run to `config.steps`: its error against the stationary-weighted initial mean."""
    from abm.model import CommonPurposeModel

    name, overrides, seed = job
    model = CommonPurposeModel(_config(name, overrides), rng=seed)
    x0 = model.state.vision.copy()
    t = model.ties
    live = t.alive
    predicted, label = degroot_consensus(t.eu[live], t.ev[live], x0, model.config.influence.self_weight)
    model.run()
    x = model.state.vision
    big = label == np.bincount(label).argmax()
    return {
        "error": float(np.max(np.abs(x - predicted))),
        "spread": float(x[big].max() - x[big].min()),
        "predicted": float(predicted[big][0]),
        "simulated": float(x[big].mean()),
        "plain_mean_gap": float(abs(x0[big].mean() - predicted[big][0])),
        "components": float(label.max() + 1),
        "steps": float(model.week),
    }


Mapper = Callable[[Callable, list], list]


def _context() -> multiprocessing.context.BaseContext:
    """Forkserver where there is one: forking a process that has threads (Python 3.12 warns) can deadlock."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else methods[0])


def _mapper(pool: ProcessPoolExecutor | None, workers: int) -> Mapper:
    def pmap(fn: Callable, jobs: list) -> list:
        if pool is None:
            return [fn(j) for j in jobs]
        return list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (workers * 8))))

    return pmap


def _jobs(name: str, points: Sequence[dict[str, Any]], runs: int) -> list:
    return [(name, tuple(sorted(p.items())), seed) for p in points for seed in range(runs)]


def _chunks(results: list, size: int) -> list[list]:
    return [results[i : i + size] for i in range(0, len(results), size)]


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


# --- docking: Watts (2002) ------------------------------------------------------------------------


def dock_watts(st: Settings, pmap: Mapper) -> Section:
    from abm.config import load_config

    cfg = load_config(WATTS)
    phi, n = cfg.influence.threshold, cfg.network.agents
    window = watts_window(phi)
    if window is None:
        raise ValueError(f"{WATTS}: threshold {phi} has no cascade window")
    lo, hi = window
    sec = Section("watts", "Watts (2002): global cascades on random networks", SOURCES["watts"])
    runs = st.watts_runs
    results = pmap(_spread, _jobs(WATTS, [{"network.mean_degree": z} for z in st.watts_z], runs))
    for z, chunk in zip(st.watts_z, _chunks(results, runs), strict=True):
        shares = np.array([r["share"] for r in chunk])
        big = shares > GLOBAL
        k = int(big.sum())
        f_lo, f_hi = wilson(k, runs)
        p_trig = watts_trigger_probability(z, phi)
        if lo + INNER_LO <= z <= hi - INNER_HI:
            zone = "inside"
        elif z < lo - OUTER_LO or z > hi + OUTER_HI:
            zone = "outside"
        else:
            zone = "edge"
        sec.detail.append(
            {
                "z": z,
                "zone": zone,
                "runs": runs,
                "frequency": k / runs,
                "wilson_lo": f_lo,
                "wilson_hi": f_hi,
                "p_trigger": p_trig,
                "mean_size": float(shares[big].mean()) if k else float("nan"),
                "sd_size": float(shares[big].std()) if k > 1 else float("nan"),
                "analytic_size": watts_cascade_size(z, phi, 1.0 / n) if p_trig > 1e-9 else float("nan"),
                "largest_other": float(shares[~big].max()) if k < runs else float("nan"),
                "not_at_rest": int(sum(r["rest"] == 0 for r in chunk)),
            }
        )
    inside = [r for r in sec.detail if r["zone"] == "inside"]
    outside = [r for r in sec.detail if r["zone"] == "outside"]
    window_txt = f"{lo:.3f} < z < {hi:.3f}"
    ok_in = all(r["wilson_lo"] > 0.25 for r in inside)
    ok_out = all(r["frequency"] <= 0.01 for r in outside)
    sec.checks.append(
        Check(
            "docking",
            f"Watts 2002: cascade window (phi = {phi:g}, N = {n:,}, one seed)",
            f"global cascades (> {GLOBAL:.0%} of N) inside the analytic window {window_txt}, none outside",
            "frequency inside: "
            + ", ".join(f"z={r['z']:g}: {r['frequency']:.2f}" for r in inside)
            + "; outside: "
            + ", ".join(f"z={r['z']:g}: {r['frequency']:.3f}" for r in outside),
            f"inside (z in [lo+{INNER_LO:g}, hi-{INNER_HI:g}]): Wilson 95% lower bound > 0.25; "
            f"outside (z < lo-{OUTER_LO:g} or > hi+{OUTER_HI:g}): frequency <= 0.01; {runs} runs per z",
            bool(inside and outside and ok_in and ok_out),
        )
    )
    gaps = [abs(r["frequency"] - r["p_trigger"]) for r in inside]
    tols = [0.02 + 3 * math.sqrt(r["p_trigger"] * (1 - r["p_trigger"]) / runs) for r in inside]
    worst = int(np.argmax(np.array(gaps) / np.array(tols))) if inside else 0
    sec.checks.append(
        Check(
            "docking",
            "Watts 2002: frequency of global cascades against z",
            "the analytic probability that one seed triggers a global cascade (extended vulnerable cluster)",
            (
                f"largest |simulated - analytic| {gaps[worst]:.3f} at z = {inside[worst]['z']:g} "
                f"({inside[worst]['frequency']:.3f} vs {inside[worst]['p_trigger']:.3f})"
                if inside
                else "no z inside the window"
            ),
            "at each z inside the window: within 3 binomial SE + 0.02",
            bool(inside) and all(g <= t for g, t in zip(gaps, tols, strict=True)),
        )
    )
    size_gaps = [abs(r["mean_size"] - r["analytic_size"]) for r in inside]
    w = int(np.nanargmax(size_gaps)) if inside else 0
    sec.checks.append(
        Check(
            "docking",
            "Watts 2002: mean size of global cascades against z",
            "Gleeson-Cahalane final size with seed share 1/N",
            (
                f"largest |simulated - analytic| {size_gaps[w]:.4f} at z = {inside[w]['z']:g} "
                f"({inside[w]['mean_size']:.4f} vs {inside[w]['analytic_size']:.4f})"
                if inside
                else "no z inside the window"
            ),
            "at each z inside the window: within 0.02",
            bool(inside) and all(np.isfinite(g) and g <= 0.02 for g in size_gaps),
        )
    )
    sec.data = {"phi": phi, "agents": n, "window": [lo, hi], "global_share": GLOBAL, "runs_per_z": runs}
    return sec


# --- docking: DeGroot (1974) -------------------------------------------------------------------------


DEGROOT_TOL = 1e-4


def dock_degroot(st: Settings, pmap: Mapper) -> Section:
    from abm.config import load_config

    cfg = load_config(DEGROOT)
    sec = Section("degroot", "DeGroot (1974): consensus under averaging", SOURCES["degroot"])
    results = pmap(_degroot, _jobs(DEGROOT, [{}], st.degroot_runs))
    for seed, r in enumerate(results):
        sec.detail.append({"seed": seed, **r})
    err = max(r["error"] for r in results)
    gap = float(np.mean([r["plain_mean_gap"] for r in results]))
    net = cfg.network
    sec.checks.append(
        Check(
            "docking",
            f"DeGroot 1974: consensus ({net.generator.replace('_', ' ')}, N = {net.agents}, k = {net.mean_degree:g}, "
            f"rewire p = {net.rewire_p:g}, self-weight {cfg.influence.self_weight:g})",
            "every opinion ends at sum_i (d_i + 1) x_i(0) / sum_i (d_i + 1) (stationary distribution)",
            f"largest |x_i(T) - prediction| {err:.1e} over {len(results)} runs of {cfg.steps} weeks "
            f"(the unweighted initial mean is {gap:.4f} away on average)",
            f"<= {DEGROOT_TOL:g} for every person in every run",
            err <= DEGROOT_TOL,
        )
    )
    sec.data = {"tolerance": DEGROOT_TOL, "steps": cfg.steps, "agents": net.agents}
    return sec


def degroot_trace(seed: int = 0, people: int = 40) -> dict[str, Any]:
    """One DeGroot run, recording the vision of a sample of people each week (for the figure)."""
    from abm.model import CommonPurposeModel

    model = CommonPurposeModel(DEGROOT, rng=seed)
    t = model.ties
    x0 = model.state.vision.copy()
    predicted, _ = degroot_consensus(t.eu[t.alive], t.ev[t.alive], x0, model.config.influence.self_weight)
    pick = np.random.default_rng(seed).choice(model.state.n, size=min(people, model.state.n), replace=False)
    paths, worst = [model.state.vision[pick].copy()], [float(np.max(np.abs(x0 - predicted)))]
    while model.running:
        model.step()
        paths.append(model.state.vision[pick].copy())
        worst.append(float(np.max(np.abs(model.state.vision - predicted))))
    return {
        "paths": np.array(paths),
        "worst": np.array(worst),
        "predicted": float(np.median(predicted)),
        "plain_mean": float(x0.mean()),
    }


# --- docking: SIR / independent cascade --------------------------------------------------------------


SIR_SIZE_TOL = 0.02


def dock_sir(st: Settings, pmap: Mapper) -> Section:
    from abm.config import load_config

    cfg = load_config(SIR)
    n, seeds0 = cfg.network.agents, cfg.initial.adopters
    sec = Section("sir", "Independent cascade (SIR): final size against S = 1 - exp(-zTS)", SOURCES["newman"])
    points = [*st.sir_points, st.sir_subcritical]
    results = pmap(
        _spread,
        _jobs(SIR, [{"network.mean_degree": z, "influence.transmissibility": t} for z, t in points], st.sir_runs),
    )
    single = pmap(
        _spread,
        _jobs(
            SIR,
            [
                {
                    "network.mean_degree": st.sir_single[0],
                    "influence.transmissibility": st.sir_single[1],
                    "initial.adopters": 1,
                }
            ],
            st.sir_single_runs,
        ),
    )
    groups = [(z, t, seeds0, chunk) for (z, t), chunk in zip(points, _chunks(results, st.sir_runs), strict=True)]
    groups.append((*st.sir_single, 1, single))
    for z, t, k0, chunk in groups:
        shares = np.array([r["share"] for r in chunk])
        big = shares > GLOBAL
        sec.detail.append(
            {
                "z": z,
                "T": t,
                "zT": z * t,
                "seeds": k0,
                "runs": len(chunk),
                "analytic_S": sir_final_size(z * t),
                "large": int(big.sum()),
                "mean_size_large": float(shares[big].mean()) if big.any() else float("nan"),
                "sd_size_large": float(shares[big].std()) if big.sum() > 1 else float("nan"),
                "mean_size_all": float(shares.mean()),
                "largest": float(shares.max()),
                "not_at_rest": int(sum(r["rest"] == 0 for r in chunk)),
            }
        )
    main_rows, sub = sec.detail[: len(st.sir_points)], sec.detail[len(st.sir_points)]
    gaps = [abs(r["mean_size_large"] - r["analytic_S"]) for r in main_rows]
    sec.checks.append(
        Check(
            "docking",
            f"SIR: final size of large outbreaks (Erdos-Renyi, N = {n:,}, {seeds0} seeds)",
            "S(zT) = " + ", ".join(f"{r['analytic_S']:.3f} (zT={r['zT']:g})" for r in main_rows),
            ", ".join(f"{r['mean_size_large']:.3f}" for r in main_rows)
            + f"; largest |diff| {max(gaps):.4f}; {st.sir_runs} runs per point",
            f"each within {SIR_SIZE_TOL}",
            all(np.isfinite(g) and g <= SIR_SIZE_TOL for g in gaps),
        )
    )
    sec.checks.append(
        Check(
            "docking",
            f"SIR: no large outbreak below the threshold (z = {sub['z']:g}, T = {sub['T']:g}, zT = {sub['zT']:g})",
            "S = 0 (epidemic threshold zT = 1)",
            f"largest final share {sub['largest']:.4f} over {sub['runs']} runs",
            f"every run ends below {GLOBAL:.0%} of N",
            sub["large"] == 0,
        )
    )
    shares = np.array([r["share"] for r in single])
    z, t = st.sir_single
    s_exp = sir_final_size(z * t)
    k = int((shares > GLOBAL).sum())
    m = len(single)
    tol = 3 * math.sqrt(s_exp * (1 - s_exp) / m) + 0.01
    freq = k / m
    sec.checks.append(
        Check(
            "docking",
            f"SIR: chance that one seed starts a large outbreak (z = {z:g}, T = {t:g})",
            f"S(zT) = {s_exp:.3f} (on Erdos-Renyi graphs the outbreak probability equals its size)",
            f"{freq:.3f} ({k} of {m} runs; Wilson 95% {wilson(k, m)[0]:.3f} to {wilson(k, m)[1]:.3f})",
            f"within 3 binomial SE + 0.01 (= {tol:.3f})",
            abs(freq - s_exp) <= tol,
        )
    )
    sec.data = {
        "agents": n,
        "seeds": seeds0,
        "runs_per_point": st.sir_runs,
        "single_seed": {"z": z, "T": t, "runs": m, "large": k, "frequency": freq, "expected": s_exp},
        "single_seed_sizes": sorted(float(x) for x in shares[shares > GLOBAL]),
    }
    return sec


# --- docking: Centola and Macy (2007) ----------------------------------------------------------------


#: Complex contagion: the mean final share at rewiring p >= STALL_P must stay under STALL_SHARE.
STALL_P, STALL_SHARE = 0.1, 0.05


def dock_centola(st: Settings, pmap: Mapper) -> Section:
    from scipy import stats

    from abm.config import load_config

    cfg = load_config(CENTOLA)
    net = cfg.network
    theta = cfg.influence.threshold
    sec = Section("centola", "Centola and Macy (2007): complex contagion and long ties", SOURCES["centola"])
    runs = st.centola_runs
    grid = [(th, p) for th in (theta, 1.0) for p in st.centola_p]
    # Every week that changes anything adds an adopter, so N + 1 weeks always reach the final state;
    # the config's 600 weeks cut short slow single fronts at small p (one front can need ~N weeks).
    steps = max(cfg.steps, net.agents + 1)
    points = [{"influence.threshold": th, "network.rewire_p": p, "steps": steps} for th, p in grid]
    results = pmap(_spread, _jobs(CENTOLA, points, runs))
    all_shares: dict[float, list[tuple[float, float]]] = {}
    for (th, p), chunk in zip(grid, _chunks(results, runs), strict=True):
        shares = np.array([r["share"] for r in chunk])
        steps = np.array([r["steps"] for r in chunk])
        all_shares.setdefault(th, []).extend((p, s) for s in shares)
        sec.detail.append(
            {
                "threshold": th,
                "rewire_p": p,
                "runs": runs,
                "mean_share": float(shares.mean()),
                "sd_share": float(shares.std()),
                "min_share": float(shares.min()),
                "max_share": float(shares.max()),
                "mean_weeks": float(steps.mean()),
                "not_at_rest": int(sum(r["rest"] == 0 for r in chunk)),
            }
        )
    complex_rows = [r for r in sec.detail if r["threshold"] == theta]
    simple_rows = [r for r in sec.detail if r["threshold"] == 1.0]
    base = complex_rows[0]
    seed_share = cfg.initial.adopters / net.agents
    sec.checks.append(
        Check(
            "docking",
            f"Centola-Macy: threshold {theta:g} on a ring lattice (N = {net.agents}, k = {net.mean_degree:g}, "
            f"{cfg.initial.adopters} clustered seeds), p = 0",
            "complete spread",
            f"final share: min {base['min_share']:.3f} over {runs} runs (after {base['mean_weeks']:.0f} weeks)",
            "every run reaches 1.0",
            base["rewire_p"] == 0 and base["min_share"] == 1.0,
        )
    )
    ps = np.array([p for p, _ in all_shares[theta]])
    ys = np.array([s for _, s in all_shares[theta]])
    rho, pval = stats.spearmanr(ps, ys)
    means = [r["mean_share"] for r in complex_rows]
    rises = [b - a for a, b in itertools.pairwise(means)]
    worst_rise = max(rises) if rises else 0.0
    sec.checks.append(
        Check(
            "docking",
            f"Centola-Macy: threshold {theta:g}, spread against rewiring p",
            "final share falls as random rewiring replaces local ties with long ones",
            "mean share "
            + ", ".join(f"{r['mean_share']:.3f} (p={r['rewire_p']:g})" for r in complex_rows)
            + f"; Spearman rho {rho:.2f} (p-value {pval:.1g})",
            "Spearman rho < 0 with p-value < 0.01, and no rise of the mean above 0.02 from one p to the next",
            bool(rho < 0 and pval < 0.01 and worst_rise <= 0.02),
        )
    )
    stalled = [r for r in complex_rows if r["rewire_p"] >= STALL_P]
    sec.checks.append(
        Check(
            "docking",
            f"Centola-Macy: threshold {theta:g} stalls at p >= {STALL_P:g}",
            f"spread stalls near the seeds (seed share {seed_share:.3f})",
            "mean share " + ", ".join(f"{r['mean_share']:.3f} (p={r['rewire_p']:g})" for r in stalled),
            f"mean final share <= {STALL_SHARE} at every p >= {STALL_P:g}",
            bool(stalled) and all(r["mean_share"] <= STALL_SHARE for r in stalled),
        )
    )
    first, last = simple_rows[0], simple_rows[-1]
    sec.checks.append(
        Check(
            "docking",
            "Centola-Macy contrast: threshold 1 (simple contagion) at every p",
            "long ties do not stop simple contagion; they speed it up",
            f"lowest mean share {min(r['mean_share'] for r in simple_rows):.3f}; weeks "
            f"{first['mean_weeks']:.0f} (p={first['rewire_p']:g}) vs {last['mean_weeks']:.1f} (p={last['rewire_p']:g})",
            "mean share >= 0.95 at every p, and under a fifth of the weeks at the largest p than at p = 0",
            all(r["mean_share"] >= 0.95 for r in simple_rows) and last["mean_weeks"] < first["mean_weeks"] / 5,
        )
    )
    sec.data = {
        "threshold": theta,
        "agents": net.agents,
        "k": net.mean_degree,
        "seeds": cfg.initial.adopters,
        "steps": steps,
    }
    return sec


# --- patterns ------------------------------------------------------------------------------------------


#: Patterns in order of cost, so that a pool running one pattern per worker finishes evenly.
_COSTLY_FIRST = ("P3", "P9", "P4", "P5", "P8", "P2", "P6", "P7", "P1")


def _pattern(job: tuple[str, int]):
    """One pattern's check in this process (seeds 0 .. n-1), with its wall time."""
    from abm.patterns import check

    name, n = job
    t0 = time.perf_counter()
    return check(name, seeds=range(n), workers=1), time.perf_counter() - t0


def pattern_suite(st: Settings, workers: int, progress: Callable[[str], None]) -> Section:
    """P1-P9 via `abm.patterns.check`; with workers > 1, one pattern per worker process (forkserver)."""
    from abm.patterns import MIN_SEEDS, PATTERNS

    sec = Section("patterns", "Patterns P1-P9 (MODEL.md), pattern-oriented validation", "MODEL.md, abm.patterns")
    names = [n for n in _COSTLY_FIRST if n in PATTERNS] + [n for n in PATTERNS if n not in _COSTLY_FIRST]
    jobs = {
        name: (name, st.p9_seeds if name == "P9" else max(st.pattern_seeds, MIN_SEEDS.get(name, 0))) for name in names
    }
    done: dict[str, Any] = {}
    if workers > 1:
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=_context()) as pool:
            futures = {pool.submit(_pattern, job): name for name, job in jobs.items()}
            for future in as_completed(futures):
                res, seconds = future.result()
                progress(f"  {res.line()} ({seconds:.0f} s)")
                done[futures[future]] = res
    else:
        for name, job in jobs.items():
            res, seconds = _pattern(job)
            progress(f"  {res.line()} ({seconds:.0f} s)")
            done[name] = res
    results = {}
    for name in PATTERNS:
        res = done[name]
        seeds = range(jobs[name][1])
        results[name] = res
        lo, hi = res.ci
        if name == "P9":
            simulated = (
                f"logistic fit {res.effect:.1f}x better than linear (SSE); tipping region {lo:.0f} to {hi:.0f} "
                f"(budget); {len(seeds)} seeds x {len(res.values['budget'])} budgets"
            )
        else:
            simulated = f"effect {res.effect:+.4g} (95% CI {lo:+.4g} to {hi:+.4g}); {len(seeds)} seeds"
        sec.checks.append(
            Check("patterns", f"{name}: {res.claim}", res.statistic, simulated, res.criterion, res.passed)
        )
        sec.detail.append(
            {
                "pattern": name,
                "effect": res.effect,
                "ci_lo": lo,
                "ci_hi": hi,
                "passed": res.passed,
                "seeds": len(seeds),
                "means": _means(name, res.values),
            }
        )
        sec.data[name] = {
            "claim": res.claim,
            "statistic": res.statistic,
            "criterion": res.criterion,
            "values": res.values,
            "effect": res.effect,
            "ci": list(res.ci),
            "passed": res.passed,
            "extra": _jsonable(res.extra),
            "seeds": list(seeds),
        }
    sec.data["_results"] = results
    return sec


def _means(name: str, values: dict[str, list[float]]) -> str:
    """Per-scenario means over seeds, in one cell (P9: mean common purpose at each budget)."""
    if name == "P9":
        pairs = zip(values["budget"], values["mean_cp"], strict=True)
        return "mean common purpose by budget: " + ", ".join(f"{b:g}: {m:.3f}" for b, m in pairs)
    return "; ".join(f"{k.removeprefix('patterns/')}: {float(np.nanmean(v)):.4g}" for k, v in values.items())


def _brief(x: Any) -> Any:
    """Long lists shortened to their count and mean (for the Markdown notes)."""
    if isinstance(x, dict):
        return {k: _brief(v) for k, v in x.items()}
    if isinstance(x, list | tuple) and len(x) > 6 and all(isinstance(v, int | float) for v in x):
        return f"{len(x)} values, mean {float(np.mean(x)):.4g}"
    if isinstance(x, list | tuple):
        return [_brief(v) for v in x]
    if isinstance(x, float):
        return float(f"{x:.4g}")
    return x


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer | int):
        return int(x)
    if isinstance(x, np.floating | float):
        return float(x) if math.isfinite(x) else None
    return x if isinstance(x, str | type(None)) else str(x)


# --- figures (matplotlib.figure.Figure, no pyplot state) -------------------------------------------------


def _save(fig, out: Path, name: str) -> str:
    fig.savefig(out / name, dpi=120, bbox_inches="tight", metadata={"Software": None})
    return name


def figure_watts(sec: Section, out: Path) -> str:
    from matplotlib.figure import Figure

    rows = sec.detail
    lo, hi = sec.data["window"]
    phi = sec.data["phi"]
    zs = np.linspace(0.3, max(r["z"] for r in rows) + 0.5, 300)
    ptrig = [watts_trigger_probability(z, phi) for z in zs]
    size = [
        watts_cascade_size(z, phi, 1.0 / sec.data["agents"]) if p > 0 else np.nan
        for z, p in zip(zs, ptrig, strict=True)
    ]
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    z = np.array([r["z"] for r in rows])
    f = np.array([r["frequency"] for r in rows])
    err = np.array([[r["frequency"] - r["wilson_lo"] for r in rows], [r["wilson_hi"] - r["frequency"] for r in rows]])
    for ax in axes:
        ax.axvspan(lo, hi, color="tab:orange", alpha=0.15, label=f"analytic window {lo:.2f} < z < {hi:.2f}")
        ax.set_xlabel("mean degree z")
        ax.set_ylim(-0.02, 1.05)
        ax.grid(alpha=0.3)
    axes[0].plot(zs, ptrig, color="black", lw=1.2, label="analytic P(trigger)")
    axes[0].errorbar(z, f, yerr=err, fmt="o", color="tab:blue", ms=4, capsize=2, label="simulated (Wilson 95%)")
    axes[0].set_ylabel(f"frequency of global cascades (> {GLOBAL:.0%} of N)")
    axes[0].set_title(f"Cascade frequency, phi = {phi:g}, N = {sec.data['agents']:,}")
    axes[0].legend(fontsize=8, loc="upper right")
    s = np.array([r["mean_size"] for r in rows])
    sd = np.array([r["sd_size"] for r in rows])
    axes[1].plot(zs, size, color="black", lw=1.2, label="analytic (Gleeson-Cahalane)")
    axes[1].errorbar(
        z, s, yerr=np.nan_to_num(sd), fmt="s", color="tab:red", ms=4, capsize=2, label="simulated (mean, SD)"
    )
    axes[1].set_ylabel("mean size of global cascades")
    axes[1].set_title(f"Cascade size ({sec.data['runs_per_z']} runs per z)")
    axes[1].legend(fontsize=8, loc="lower right")
    return _save(fig, out, "watts2002.png")


def figure_sir(sec: Section, out: Path) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    zt = np.linspace(0, 4.5, 400)
    ax.plot(zt, [sir_final_size(x) for x in zt], color="black", lw=1.2, label="S = 1 - exp(-zT S)")
    points = sec.detail[:-1]  # the last row is the one-seed experiment, drawn below
    markers = itertools.cycle(("o", "s", "^", "v", "D", "P"))
    for i, z in enumerate(sorted({r["z"] for r in points})):
        rows = [r for r in points if r["z"] == z and r["large"]]
        if rows:  # hollow markers of falling size, so points at the same zT stay visible
            ax.errorbar(
                [r["zT"] for r in rows],
                [r["mean_size_large"] for r in rows],
                yerr=[np.nan_to_num(r["sd_size_large"]) for r in rows],
                fmt=next(markers),
                mfc="none",
                ms=max(11 - 2 * i, 4),
                capsize=2,
                label=f"z = {z:g}: mean size of large outbreaks",
            )
    for r in (r for r in points if not r["large"]):
        ax.plot(
            [r["zT"]],
            [r["mean_size_all"]],
            "x",
            color="black",
            ms=7,
            label=f"z = {r['z']:g}, T = {r['T']:g}: mean final share (none large)",
        )
    single = sec.data["single_seed"]
    ax.plot(
        [single["z"] * single["T"]],
        [single["frequency"]],
        marker="D",
        mfc="none",
        color="tab:purple",
        ls="none",
        ms=8,
        label=f"one seed: share of {single['runs']} runs that go large",
    )
    ax.axvline(1.0, color="grey", ls=":", lw=1)
    ax.set_xlabel("zT (mean degree x transmissibility)")
    ax.set_ylabel("final share adopted")
    ax.set_title(f"Independent cascade on Erdos-Renyi graphs, N = {sec.data['agents']:,}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, out, "sir_final_size.png")


def figure_centola(sec: Section, out: Path) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for th, color in ((sec.data["threshold"], "tab:red"), (1.0, "tab:blue")):
        rows = [r for r in sec.detail if r["threshold"] == th]
        p = [r["rewire_p"] for r in rows]
        label = f"threshold {th:g}" + (" (complex)" if th > 1 else " (simple)")
        axes[0].errorbar(
            p,
            [r["mean_share"] for r in rows],
            yerr=[r["sd_share"] for r in rows],
            fmt="o-",
            ms=4,
            capsize=2,
            color=color,
            label=label,
        )
        axes[1].plot(p, [r["mean_weeks"] for r in rows], "o-", ms=4, color=color, label=label)
    for ax in axes:
        ax.set_xscale("symlog", linthresh=1e-3)
        ax.set_xlim(-1e-4, 1.2)
        ax.set_xlabel("rewiring probability p")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].axvspan(STALL_P, 1.2, color="grey", alpha=0.12)
    axes[0].set_ylabel("final share adopted (mean, SD)")
    axes[0].set_title(
        f"Ring lattice N = {sec.data['agents']}, k = {sec.data['k']:g}, {sec.data['seeds']} clustered seeds"
    )
    axes[1].set_yscale("log")
    axes[1].set_ylabel("weeks until nothing changes (mean)")
    axes[1].set_title("Time to spread (or to stall)")
    return _save(fig, out, "centola_macy.png")


def figure_degroot(trace: dict[str, Any], out: Path) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    paths = trace["paths"]
    weeks = np.arange(paths.shape[0])
    axes[0].plot(weeks, paths, color="tab:blue", lw=0.6, alpha=0.5)
    axes[0].axhline(
        trace["predicted"], color="black", lw=1.2, label=f"sum (d+1) x0 / sum (d+1) = {trace['predicted']:.4f}"
    )
    axes[0].axhline(
        trace["plain_mean"], color="tab:red", lw=1, ls="--", label=f"plain mean of x0 = {trace['plain_mean']:.4f}"
    )
    axes[0].set_xlim(0, min(150, weeks[-1]))
    axes[0].set_xlabel("week")
    axes[0].set_ylabel("vision (40 people)")
    axes[0].set_title("Averaging with self-weight: opinions reach consensus")
    axes[0].legend(fontsize=8)
    axes[1].semilogy(weeks, np.maximum(trace["worst"], 1e-12), color="black")
    axes[1].axhline(DEGROOT_TOL, color="tab:green", ls=":", label=f"tolerance {DEGROOT_TOL:g}")
    axes[1].axhline(abs(trace["plain_mean"] - trace["predicted"]), color="tab:red", ls="--", label="plain mean's gap")
    axes[1].set_xlabel("week")
    axes[1].set_ylabel("max |x_i - stationary-weighted mean|")
    axes[1].set_title("Distance from the DeGroot prediction")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    return _save(fig, out, "degroot.png")


def figure_p9(sec: Section, out: Path) -> str | None:
    from matplotlib.figure import Figure

    from abm.patterns import logistic

    res = sec.data.get("_results", {}).get("P9")
    if res is None:
        return None
    x = np.array(res.values["budget"])
    y = np.array(res.values["mean_cp"])
    fig = Figure(figsize=(6, 4.2))
    ax = fig.subplots()
    xs = np.linspace(x.min(), x.max(), 300)
    par = res.extra.get("logistic")
    lo, hi = res.extra.get("tipping_region", (np.nan, np.nan))
    if par is not None and np.all(np.isfinite(par)):
        ax.plot(xs, logistic(xs, *par), color="black", lw=1.2, label="logistic fit")
        ax.axvspan(
            max(lo, x.min()), min(hi, x.max()), color="tab:orange", alpha=0.15, label="tipping region (mid +/- 2 scale)"
        )
    ax.plot(xs, np.polyval(np.polyfit(x, y, 1), xs), color="grey", ls="--", lw=1, label="linear fit")
    ax.plot(x, y, "o", color="tab:blue", label=f"mean over {len(sec.data['P9']['seeds'])} seeds")
    ax.set_xlabel("effort budget (per week)")
    ax.set_ylabel("common purpose share at week 208")
    ax.set_title("P9: common purpose against effort budget")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out, "p9_tipping.png")


def figure_patterns(sec: Section, out: Path) -> str | None:
    from matplotlib.figure import Figure

    from abm.patterns import EQUIVALENCE

    rows = [r for r in sec.detail if r["pattern"] != "P9"]
    if not rows:
        return None
    fig = Figure(figsize=(8, 0.8 * len(rows) + 1.2))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    for ax, r in zip(axes, rows, strict=True):
        color = "tab:green" if r["passed"] else "tab:red"
        lo, hi, eff = r["ci_lo"], r["ci_hi"], r["effect"]
        ax.errorbar([eff], [0], xerr=[[eff - lo], [hi - eff]], fmt="o", color=color, capsize=4)
        ax.axvline(0, color="black", lw=0.8)
        span = max(abs(lo), abs(hi), 1e-9) * 1.3
        left, right = (-0.25 * span, span) if eff >= 0 else (-span, 0.25 * span)
        blocked = sec.data.get(r["pattern"], {}).get("extra", {}).get("blocked_change")
        if blocked is not None:  # P8: with professionals blocked, the change must be equivalent to 0
            m, (b_lo, b_hi) = blocked
            ax.axvspan(-EQUIVALENCE, EQUIVALENCE, ymin=0.0, ymax=0.5, color="grey", alpha=0.2)
            ax.errorbar([m], [-1], xerr=[[m - b_lo], [b_hi - m]], fmt="s", color="grey", capsize=4)
            ax.text(EQUIVALENCE * 1.1, -1, "professionals blocked: CI must lie in the band", fontsize=7, va="center")
            left = min(left, b_lo * 1.3, -EQUIVALENCE * 1.3)
            ax.set_ylim(-1.6, 0.6)
        ax.set_xlim(left, right)
        ax.set_yticks([])
        ax.set_ylabel(r["pattern"], rotation=0, ha="right", va="center")
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(alpha=0.3, axis="x")
    axes[0].set_title(
        "Pattern effects with 95% CI, each on its own scale (green: every criterion met; red: one is not)",
        fontsize=10,
    )
    fig.subplots_adjust(hspace=1.0)
    return _save(fig, out, "patterns.png")


# --- the suite ------------------------------------------------------------------------------------------


def rest_check(sections: Sequence[Section]) -> Check:
    """Every spreading run reached its final state (a week with no change) within the config's weeks."""
    counts = {
        s.title.split(":")[0]: (sum(r.get("not_at_rest", 0) for r in s.detail), sum(r.get("runs", 0) for r in s.detail))
        for s in sections
        if any("not_at_rest" in r for r in s.detail)
    }
    bad = sum(c[0] for c in counts.values())
    return Check(
        "docking",
        "Spreading runs reach their final state within the configured weeks",
        "a week with no change before `steps` runs out (else the final share would be cut short)",
        "; ".join(f"{name}: {k} of {n:,} runs cut short" for name, (k, n) in counts.items()),
        "none cut short",
        bad == 0,
    )


@dataclass
class Report:
    settings: Settings
    sections: list[Section]
    seconds: float
    workers: int
    started: str

    @property
    def checks(self) -> list[Check]:
        return [c for s in self.sections for c in s.checks]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)


def run_suite(
    settings: Settings = QUICK,
    workers: int = 1,
    docking: bool = True,
    patterns: bool = True,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Run the docking suite and the pattern suite; figures are made by `write_report`."""
    say = progress or (lambda _msg: None)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    t_all = time.perf_counter()
    sections: list[Section] = []
    pool = ProcessPoolExecutor(workers, mp_context=_context()) if workers > 1 and docking else None
    try:
        pmap = _mapper(pool, workers)
        if docking:
            for label, fn in (
                ("Watts 2002", dock_watts),
                ("DeGroot", dock_degroot),
                ("SIR", dock_sir),
                ("Centola-Macy", dock_centola),
            ):
                t0 = time.perf_counter()
                say(f"{PROG}: docking: {label} ...")
                sec = fn(settings, pmap)
                sec.seconds = time.perf_counter() - t0
                sections.append(sec)
                for c in sec.checks:
                    say(f"  {'PASS' if c.passed else 'FAIL'}: {c.name}: {c.simulated}")
                say(f"  ({sec.seconds:.0f} s)")
        if docking:
            sections[-1].checks.append(rest_check(sections))
    finally:
        if pool is not None:
            pool.shutdown()
    if patterns:
        t0 = time.perf_counter()
        say(f"{PROG}: patterns P1-P9 ({settings.pattern_seeds} seeds, P9 {settings.p9_seeds}) ...")
        sec = pattern_suite(settings, workers, say)
        sec.seconds = time.perf_counter() - t0
        sections.append(sec)
    return Report(settings, sections, time.perf_counter() - t_all, workers, started)


# --- tables ---------------------------------------------------------------------------------------------

COLUMNS = ("check", "expected", "simulated", "tolerance", "pass")


def _cells(c: Check) -> list[str]:
    return [c.name, c.expected, c.simulated, c.tolerance, "PASS" if c.passed else "FAIL"]


def text_table(checks: Sequence[Check], widths: Sequence[int] = (34, 30, 36, 28, 4)) -> str:
    """The table for a terminal: fixed-width columns, cells wrapped."""
    sep = "  "
    lines = [sep.join(h.upper().ljust(w) for h, w in zip(COLUMNS, widths, strict=True)).rstrip()]
    lines.append(sep.join("-" * w for w in widths))
    for c in checks:
        wrapped = [textwrap.wrap(text, w) or [""] for text, w in zip(_cells(c), widths, strict=True)]
        for i in range(max(len(x) for x in wrapped)):
            lines.append(
                sep.join((x[i] if i < len(x) else "").ljust(w) for x, w in zip(wrapped, widths, strict=True)).rstrip()
            )
    return "\n".join(lines)


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(checks: Sequence[Check]) -> str:
    """The table as GitHub Markdown."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for c in checks:
        cells = [_md(x) for x in _cells(c)]
        cells[-1] = "**PASS**" if c.passed else "**FAIL**"
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


_PARAMS = {"z", "T", "zT", "threshold", "rewire_p"}
_SCIENTIFIC = {"error", "spread"}


def _detail_md(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    keys = list(rows[0])
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = []
        for k in keys:
            v = r.get(k)
            if isinstance(v, float) and k in _PARAMS:
                cells.append(f"{v:g}")
            elif isinstance(v, float) and k in _SCIENTIFIC:
                cells.append(f"{v:.1e}")
            elif isinstance(v, float):
                cells.append(_fmt(v, 2 if k in ("mean_weeks", "steps", "components") else 4))
            else:
                cells.append(_md(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def write_report(report: Report, out: Path, command: str) -> dict[str, Path]:
    """Write results.md, results.json and the PNG figures into `out`; returns what was written."""
    from abm.io import versions

    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    by_key = {s.key: s for s in report.sections}
    figure_error = None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        figure_error = "matplotlib is not installed (pip install matplotlib): no figures"
    if figure_error is None:
        makers: list[tuple[str, Callable[[], str | None]]] = []
        if "watts" in by_key:
            makers.append(("watts", lambda: figure_watts(by_key["watts"], out)))
        if "degroot" in by_key:
            rows = by_key["degroot"].detail
            seed = max(rows, key=lambda r: r["plain_mean_gap"])["seed"] if rows else 0
            makers.append(("degroot", lambda: figure_degroot(degroot_trace(seed), out)))
        if "sir" in by_key:
            makers.append(("sir", lambda: figure_sir(by_key["sir"], out)))
        if "centola" in by_key:
            makers.append(("centola", lambda: figure_centola(by_key["centola"], out)))
        if "patterns" in by_key:
            makers.append(("patterns", lambda: figure_p9(by_key["patterns"], out)))
            makers.append(("patterns", lambda: figure_patterns(by_key["patterns"], out)))
        for key, make in makers:
            name = make()
            if name:
                by_key[key].figures.append(name)
                written[name] = out / name
    st = report.settings
    checks = report.checks
    n_pass = sum(c.passed for c in checks)
    vers = versions()
    lines = [
        f"# Validation results ({st.label} suite)",
        "",
        f"`{command}`: {n_pass} of {len(checks)} checks pass"
        + (" (all)." if n_pass == len(checks) else f"; **{len(checks) - n_pass} fail**."),
        "",
        f"Run {report.started} on {report.workers} worker(s), {report.seconds / 60:.1f} minutes; "
        f"commit {_git_commit()}; "
        + ", ".join(f"{k} {v}" for k, v in vers.items() if k in ("common-purpose", "mesa", "numpy", "scipy", "python"))
        + ". Every run has a fixed seed (0, 1, 2, ... at each grid point), so the numbers repeat exactly. "
        "See [../validation.md](../validation.md) for what each check shows, its source and its limits.",
        "",
    ]
    if figure_error:
        lines += [f"Note: {figure_error}.", ""]
    lines += ["## Summary", "", markdown_table(checks), ""]
    for sec in report.sections:
        lines += [f"## {sec.title}", "", f"Source: {sec.source} ({sec.seconds:.0f} s)", ""]
        lines += [f"![{Path(name).stem}]({name})" for name in sec.figures]
        if sec.figures:
            lines.append("")
        lines += [_detail_md(sec.detail), ""]
        if sec.key == "patterns":
            for name, d in sec.data.items():
                if name.startswith("_"):
                    continue
                lines += [f"- **{name}** ({'pass' if d['passed'] else 'FAIL'}): {_md(d['criterion'])}"]
                extra = {k: v for k, v in d["extra"].items() if k not in ("also",)}
                if extra:
                    lines += [f"  details: `{_md(json.dumps(_brief(extra)))}`"]
            lines.append("")
    md = out / "results.md"
    md.write_text("\n".join(lines).rstrip() + "\n")
    written["results.md"] = md
    payload = {
        "command": command,
        "started": report.started,
        "seconds": report.seconds,
        "workers": report.workers,
        "commit": _git_commit(),
        "versions": vers,
        "settings": asdict(st),
        "passed": report.passed,
        "checks": [asdict(c) for c in checks],
        "sections": {
            s.key: {
                "title": s.title,
                "source": s.source,
                "seconds": s.seconds,
                "detail": _jsonable(s.detail),
                "data": _jsonable({k: v for k, v in s.data.items() if not k.startswith("_")}),
                "figures": s.figures,
            }
            for s in report.sections
        },
    }
    js = out / "results.json"
    js.write_text(json.dumps(payload, indent=1) + "\n")
    written["results.json"] = js
    return written


# --- command line ------------------------------------------------------------------------------------


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 4,096, got {text!r}")
    return value


def _cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the small suite for CI (under a minute on 2 cores); default: the full suite (about 4 minutes on 2)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default="validation",
        help="where results.md, results.json and the PNGs go (default: validation/)",
    )
    parser.add_argument(
        "--workers", type=_workers, metavar="K", default=None, help="worker processes (default: the CPUs available)"
    )
    return parser


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `validate` to the `abm` command's subparsers."""
    parser = subparsers.add_parser(
        "validate",
        help="run the docking and pattern suites; print and write the validation table",
        description="Docking against Watts 2002, DeGroot, SIR and Centola-Macy, and the patterns P1-P9; prints a "
        "table (check, expected, simulated, tolerance, pass), writes it as Markdown with PNG figures into DIR, and "
        "exits 0 only if every check passes. See docs/validation.md.",
    )
    return add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run `abm validate` from parsed arguments; returns the exit status (0 all pass, 1 a check failed)."""
    from abm.io import OutputError, check_out_dir

    try:
        out = check_out_dir(args.out)
    except OutputError as exc:
        print(f"abm: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    workers = args.workers or _cpus()
    settings = QUICK if args.quick else FULL
    command = "abm validate" + (" --quick" if args.quick else "") + f" --out {args.out} --workers {workers}"

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    report = run_suite(settings, workers=workers, progress=say)
    written = write_report(report, out, command)
    print(text_table(report.checks))
    checks = report.checks
    n_pass = sum(c.passed for c in checks)
    print(
        f"\n{PROG}: {n_pass} of {len(checks)} checks pass in {report.seconds / 60:.1f} min; wrote "
        f"{out}/results.md, results.json and {sum(p.suffix == '.png' for p in written.values())} figure(s)"
    )
    return EXIT_OK if report.passed else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m abm.validate [--quick] [--out DIR] [--workers K]` (the same as `abm validate`)."""
    parser = add_arguments(argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
