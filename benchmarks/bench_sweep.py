"""Sweep benchmarks: throughput and per-run overhead of the local pool, and driver memory.

Measurements (each `abm sweep` runs as its own process, like a user's command):

- `default`: N runs (default 1,000) of the default scenario (about 2,000 agents, 208 weeks;
  10 effort budgets x N/10 replicate seeds; final values of every model column) on the local
  pool with K workers (default 2). Reports the wall time, runs per second, the model's own time
  per run (construction + 208 steps, timed inside the worker), the overhead per run beyond the
  model (wall x workers / runs - model time per run, so pool start-up, task transfer, output
  collection, Parquet writing and the driver's bookkeeping are all counted), and, for
  comparison, the model's time per run measured alone in this process before the sweep.
- `memory`: a 10,000-run sweep of a tiny model (Latin hypercube: 10,000 distinct points, so
  10,000 configs are validated and planned) with weekly series and ward outputs; reports the
  driver's peak RSS (its own `ru_maxrss`, recorded in sweep.json, and the peak seen by polling
  the driver process alone, children excluded) and the throughput.

Targets: 1,000 default runs in under 3 minutes on 2 cores with under 50 ms overhead per run;
the driver under 500 MB for 10,000 runs. The machine's load average is recorded before and
after: other work on the machine slows every figure here.

Usage:
    python benchmarks/bench_sweep.py [--runs 1000] [--workers 2] [--tiny-runs 10000]
        [--only default|memory] [--out benchmarks/sweep_results.json] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_SWEEP = """
name: bench-default
base: {base}
design: grid
parameters:
  effort.budget: [20, 40, 60, 80, 100, 120, 140, 160, 180, 200]
replicates: {replicates}
seed: 1
outputs:
  final: all
max_runs: 1000000
"""

TINY_SWEEP = """
name: bench-memory
base: {base}
set: {{population.residents: 40, population.staff_scale: 0.05, steps: 3}}
design: {{method: lhs, samples: {runs}, seed: 1}}
parameters:
  effort.budget: {{low: 0, high: 160}}
  influence.rate: {{low: 0.02, high: 0.2}}
replicates: 1
outputs:
  final: all
  series: {{every: 1, metrics: [common_purpose_share, acting_share]}}
  groups: {{kinds: [ward], metrics: [acting_share]}}
max_runs: {runs}
"""


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def run_cli(sweep: Path, out: Path, workers: int) -> dict[str, Any]:
    """Run `abm sweep` as a process; poll the driver's RSS (the driver alone, not its workers)."""
    cmd = [sys.executable, "-m", "abm", "sweep", str(sweep), "--out", str(out), "--workers", str(workers)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    driver = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            peak = max(peak, driver.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.1)
    stdout, stderr = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"abm sweep failed ({proc.returncode}): {stderr.strip()}")
    state = json.loads((out / "sweep.json").read_text())
    return {
        "process_wall_s": round(wall, 2),
        "driver_peak_rss_mb_polled": round(peak / 2**20, 1),
        "state": state,
        "stdout": stdout.strip(),
    }


def model_seconds(out: Path) -> list[float]:
    from abm.sweep import RUNS_DIR, read_run_meta

    return [read_run_meta(p)["model_seconds"] for p in sorted((out / RUNS_DIR).glob("*.parquet"))]


def alone(n: int) -> float:
    """Median time of the default model (build + 208 steps) alone in this process."""
    from abm import CommonPurposeModel

    times = []
    for i in range(n):
        t = time.perf_counter()
        CommonPurposeModel(rng=1000 + i, overrides={"output.groups": []}).run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_default(tmp: Path, runs: int, workers: int) -> dict[str, Any]:
    base = ROOT / "configs" / "south_tees.yaml"
    sweep = tmp / "default.yaml"
    sweep.write_text(DEFAULT_SWEEP.format(base=base, replicates=max(1, runs // 10)))
    before = loadavg()
    alone_s = alone(5)
    res = run_cli(sweep, tmp / "default", workers)
    after = loadavg()
    last = res["state"]["history"][-1]
    ms = model_seconds(tmp / "default")
    n = len(ms)
    wall = res["process_wall_s"]
    model_mean = statistics.fmean(ms)
    return {
        "runs": n,
        "workers": workers,
        "process_wall_s": wall,
        "sweep_wall_s": last["wall_seconds"],
        "runs_per_s": round(n / wall, 2),
        "model_s_per_run_in_sweep_mean": round(model_mean, 4),
        "model_s_per_run_in_sweep_median": round(statistics.median(ms), 4),
        "model_s_per_run_alone_median": round(alone_s, 4),
        "overhead_ms_per_run": round((wall * workers / n - model_mean) * 1000, 1),
        "overhead_ms_per_run_excluding_startup": round((last["wall_seconds"] * workers / n - model_mean) * 1000, 1),
        "worker_ms_per_run_beyond_model": round(last["worker_overhead_seconds_total"] / n * 1000, 2),
        "driver_cpu_ms_per_run": round(last["driver_cpu_seconds"] / n * 1000, 2),
        "driver_peak_rss_mb": last["driver_peak_rss_mb"],
        "driver_peak_rss_mb_polled": res["driver_peak_rss_mb_polled"],
        "target_wall_s": 180,
        "target_overhead_ms": 50,
        "loadavg_before": before,
        "loadavg_after": after,
    }


def bench_memory(tmp: Path, runs: int, workers: int) -> dict[str, Any]:
    sweep = tmp / "memory.yaml"
    sweep.write_text(TINY_SWEEP.format(base=ROOT / "configs" / "south_tees.yaml", runs=runs))
    before = loadavg()
    res = run_cli(sweep, tmp / "memory", workers)
    after = loadavg()
    last = res["state"]["history"][-1]
    out = tmp / "memory"
    ms = model_seconds(out)
    files = list((out / "runs").glob("*.parquet"))
    return {
        "runs": len(files),
        "workers": workers,
        "process_wall_s": res["process_wall_s"],
        "runs_per_s": round(len(files) / res["process_wall_s"], 1),
        "model_s_per_run_mean": round(statistics.fmean(ms), 4),
        "worker_ms_per_run_beyond_model": round(last["worker_overhead_seconds_total"] / len(files) * 1000, 2),
        "driver_cpu_ms_per_run": round(last["driver_cpu_seconds"] / len(files) * 1000, 2),
        "driver_peak_rss_mb": last["driver_peak_rss_mb"],
        "driver_peak_rss_mb_polled": res["driver_peak_rss_mb_polled"],
        "run_files_mb": round(sum(p.stat().st_size for p in files) / 2**20, 1),
        "summary_mb": round((out / "summary.parquet").stat().st_size / 2**20, 2),
        "target_driver_rss_mb": 500,
        "loadavg_before": before,
        "loadavg_after": after,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--tiny-runs", type=int, default=10_000)
    ap.add_argument("--only", choices=["default", "memory"], action="append")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "sweep_results.json"))
    ap.add_argument("--keep", metavar="DIR", help="keep the sweep directories here (default: a temp dir, removed)")
    args = ap.parse_args()
    only = args.only or ["default", "memory"]
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="abm-bench-sweep-"))
    tmp.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "measurements": {},
    }
    try:
        stamp = results["when_utc"]
        if "default" in only:
            r = bench_default(tmp, args.runs, args.workers)
            results["measurements"]["default"] = {**r, "when_utc": stamp}
            print(json.dumps({"default": r}), flush=True)
        if "memory" in only:
            r = bench_memory(tmp, args.tiny_runs, args.workers)
            results["measurements"]["memory"] = {**r, "when_utc": stamp}
            print(json.dumps({"memory": r}), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    # --only keeps the other measurements of an earlier run (each says when it was taken)
    out = Path(args.out)
    if out.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            kept = json.loads(out.read_text())["measurements"]
            results["measurements"] = {**kept, **results["measurements"]}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
