"""Where a step's time goes: CPU time per stage of `STEP_ORDER`, and a cProfile of a whole run.

For each population size, builds the scaled default model (`abm.bench.scaled_overrides`), runs a
few warm-up weeks, then times each stage of the step (and each activity, the ties flush and the
Mesa DataCollector) with `time.process_time` over `--steps` weeks. CPU time is used because the
machine may be shared. `--cprofile` also profiles one whole default run (build + 208 weeks) and
prints the top functions by cumulative and by own time.

Usage:
    python benchmarks/profile_stages.py [--agents 100000 10000 2000] [--steps 30] [--cprofile]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from abm import activities
from abm.bench import scaled_overrides
from abm.model import CommonPurposeModel

DEGREE = 10


def _timed(name: str, fn: Callable[..., Any], totals: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.process_time() - t

    return wrapper


def profile_stages(agents: int, steps: int, warmup: int = 5, seed: int = 1) -> tuple[int, dict[str, float]]:
    """CPU ms per step for each stage (and sub-stage) of the scaled default model.

    Returns:
        The actual number of agents, and {stage: ms per step}; `step` is the whole step and
        `  activity.*`, `  ties.flush`, `  datacollector` are parts of the stages above them.
    """
    overrides = None if agents <= 2_005 else scaled_overrides(agents, DEGREE)
    model = CommonPurposeModel("south_tees", rng=seed, overrides=overrides, steps=warmup + steps + 1)
    model.run(warmup)
    totals: dict[str, float] = defaultdict(float)
    model.stages = tuple(replace(st, run=_timed(st.name, st.run, totals)) for st in model.stages)
    saved_funcs = dict(activities.ACTIVITY_FUNCS)
    for name, fn in saved_funcs.items():
        activities.ACTIVITY_FUNCS[name] = _timed(f"  activity.{name}", fn, totals)
    ties = model.ties
    ties.flush = _timed("  ties.flush", ties.flush, totals)  # type: ignore[method-assign]
    dc = model.datacollector
    dc.collect = _timed("  datacollector", dc.collect, totals)  # type: ignore[method-assign]
    try:
        t0 = time.process_time()
        model.run(steps)
        totals["step"] = time.process_time() - t0
    finally:
        activities.ACTIVITY_FUNCS.update(saved_funcs)
    return model.state.n, {k: 1000.0 * v / steps for k, v in totals.items()}


def default_run_profile(top: int = 25) -> None:
    """cProfile of one default run: build plus 208 weeks."""
    CommonPurposeModel(rng=1, steps=2).run()  # warm imports and caches
    prof = cProfile.Profile()
    t = time.process_time()
    prof.enable()
    model = CommonPurposeModel(rng=1)
    built = time.process_time()
    model.run()
    prof.disable()
    end = time.process_time()
    print(f"\ndefault run: build {built - t:.3f} s CPU, 208 steps {end - built:.3f} s CPU (under cProfile)")
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def default_run_cpu(repeats: int = 5) -> tuple[float, float]:
    """Median CPU seconds of a default run's build and of its 208 steps (no profiler)."""
    CommonPurposeModel(rng=1, steps=2).run()
    builds, runs = [], []
    for _ in range(repeats):
        t = time.process_time()
        model = CommonPurposeModel(rng=1)
        b = time.process_time()
        model.run()
        builds.append(b - t)
        runs.append(time.process_time() - b)
    return sorted(builds)[repeats // 2], sorted(runs)[repeats // 2]


def main(argv: list[str] | None = None) -> int:
    """Print per-stage CPU ms per step for each size, the default run's CPU, and optionally cProfile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[100_000, 10_000, 2_000])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--cprofile", action="store_true", help="also cProfile a whole default run")
    args = parser.parse_args(argv)
    results = {}
    for agents in args.agents:
        results[agents] = profile_stages(agents, args.steps)
    names = list(dict.fromkeys(k for _, r in results.values() for k in r))
    order = ["step"] + [n for n in names if n != "step"]
    print(f"CPU ms per step ({args.steps} steps after 5 warm-up; 2000 = the default scenario)")
    print(f"{'stage':<26}" + "".join(f"{n:>12,}" for n, _ in results.values()))
    for name in order:
        print(f"{name:<26}" + "".join(f"{r.get(name, 0.0):>12.3f}" for _, r in results.values()))
    build, run = default_run_cpu()
    print(f"\ndefault run (median of 5): build {build:.3f} s CPU, 208 steps {run:.3f} s CPU, total {build + run:.3f}")
    if args.cprofile:
        default_run_profile()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
