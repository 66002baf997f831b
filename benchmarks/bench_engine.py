"""Engine benchmarks against the performance targets, each measurement in fresh processes.

Measurements (each repeated `--repeats` times, default 3, in a new process; medians reported):

- `model_100k`: `abm bench --agents 100000 --degree 10 --steps 30` (the full default model, scaled)
- `floor_100k`: `shared/bench/limit_kernel.py 100000 10 30` (the vectorised floor: 3 CSR mat-vecs)
- `model_10k`: `abm bench --agents 10000 --degree 10 --steps 30`
- `mesa_10k`: `shared/bench/mesa_peer.py 10000 10 10` (Mesa's own network example)
- `model_282k`: `abm bench --agents 282000 --degree 10 --steps 208` (the whole South Tees population)
- `default`: build + 208 steps of `CommonPurposeModel(rng=1)` after import, median of 5 per process
  (wall and CPU seconds; the build includes reading the preset's YAML)

The two measurements of a ratio take turns (model, peer, model, peer, ...), so a change in the
machine's load falls on both; the 10k ratio is also given turn by turn.

Each model measurement also reports CPU seconds (`cpu_seconds_per_step`, `cpu_seconds_208`),
which a busy machine disturbs less than wall time.

The shared scripts are looked up in `../shared/bench/` beside the repository, else in
`$ABM_SHARED` (the shared directory, or its `bench/` folder), else in `benchmarks/peers/`
(verbatim copies, so a clone alone reproduces every figure).

Targets: model within 4x the floor at 100k (floor s/step / model s/step >= 0.25); 282k agents,
208 steps in under 60 s and under 3 GB peak memory; the default 208 steps in under 1 s; at
least 20x Mesa's example in agent-steps/s at 10k; build under 5 s at 100k.

Usage:
    python benchmarks/bench_engine.py [--repeats 3] [--out benchmarks/results.json] [--only NAME ...]

With `--only`, the other measurements already in the output file are kept as they were.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 1800

DEFAULT_SCENARIO = """
import json, statistics, sys, time
from abm import CommonPurposeModel
runs, builds, cpu, cpu_builds = [], [], [], []
for _ in range(5):
    t, c = time.perf_counter(), time.process_time()
    m = CommonPurposeModel(rng=1)
    b, cb = time.perf_counter(), time.process_time()
    m.run()
    runs.append(time.perf_counter() - t)
    builds.append(b - t)
    cpu.append(time.process_time() - c)
    cpu_builds.append(cb - c)
print(json.dumps({"agents": m.state.n, "steps": m.week, "seconds_208": statistics.median(runs),
                  "build_s": statistics.median(builds), "cpu_seconds_208": statistics.median(cpu),
                  "cpu_build_s": statistics.median(cpu_builds), "runs": runs}))
"""


def shared_bench_dir() -> Path | None:
    """`../shared/bench` beside the repository, else `$ABM_SHARED` (or its `bench/`), else `benchmarks/peers`."""
    candidates = [ROOT.parent / "shared" / "bench"]
    env = os.environ.get("ABM_SHARED")
    if env:
        candidates += [Path(env) / "bench", Path(env)]
    candidates.append(ROOT / "benchmarks" / "peers")
    for c in candidates:
        if (c / "limit_kernel.py").is_file() or (c / "mesa_peer.py").is_file():
            return c
    return None


def measurements() -> dict[str, list[str] | None]:
    """Name -> command (None when the script it needs is missing)."""
    py = sys.executable
    shared = shared_bench_dir()

    def script(name: str, *args: str) -> list[str] | None:
        if shared is None or not (shared / name).is_file():
            return None
        return [py, str(shared / name), *args]

    def abm_bench(agents: int, steps: int) -> list[str]:
        return [py, "-m", "abm", "bench", "--agents", str(agents), "--degree", "10", "--steps", str(steps)]

    return {
        "model_100k": abm_bench(100_000, 30),
        "floor_100k": script("limit_kernel.py", "100000", "10", "30"),
        "model_10k": abm_bench(10_000, 30),
        "mesa_10k": script("mesa_peer.py", "10000", "10", "10"),
        "model_282k": abm_bench(282_000, 208),
        "default": [py, "-c", DEFAULT_SCENARIO],
    }


#: Measurements run together, taking turns (a model and what it is compared with), then the rest.
PAIRED = (("model_100k", "floor_100k"), ("model_10k", "mesa_10k"), ("model_282k",), ("default",))


def run_once(cmd: list[str]) -> dict[str, Any]:
    """Run one measurement process; its last stdout line is JSON. Adds the process wall time."""
    t = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"{' '.join(cmd[1:4])}... exited {proc.returncode}: {tail[0]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = round(wall, 3)
    return out


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {k: statistics.median(r[k] for r in runs if r.get(k) is not None) for k in keys}


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print a table of medians, ratios and targets, write results.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="processes per measurement (default 3)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these measurements")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    results: dict[str, Any] = {}
    if args.only and args.out.is_file():
        # keep the measurements not re-run, each with its own time and load (compare ratios only
        # between rows measured together: model_10k with mesa_10k, model_100k with floor_100k)
        try:
            results = dict(json.loads(args.out.read_text(encoding="utf-8")).get("measurements", {}))
        except (OSError, ValueError, AttributeError):
            results = {}
    commands = measurements()
    measured_now: set[str] = set()
    for group in PAIRED:
        names = [name for name in group if not args.only or name in args.only]
        for name in names:
            if commands[name] is None:
                print(f"{name}: skipped (shared bench script not found; set ABM_SHARED)", file=sys.stderr)
                results[name] = {"skipped": True}
        names = [name for name in names if commands[name] is not None]
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        failed: set[str] = set()
        # the measurements of a pair take turns, so both see the same machine (load drifts)
        for i in range(args.repeats):
            for name in names:
                if name in failed:
                    continue
                print(f"{name}: run {i + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
                try:
                    runs[name].append(run_once(commands[name]))
                except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
                    print(f"{name}: failed: {exc}", file=sys.stderr)
                    results[name] = {"error": str(exc), "runs": runs[name]}
                    failed.add(name)
        for name in names:
            if name in failed:
                continue
            cmd = commands[name]
            shown = ["python", *(["-c", "<default scenario script>"] if name == "default" else cmd[1:])]
            results[name] = {
                "command": shlex.join(shown),
                "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "load_average_1min": round(os.getloadavg()[0], 2),
                "median": _median(runs[name]),
                "runs": runs[name],
            }
            measured_now.add(name)

    def med(name: str, key: str) -> float | None:
        return results.get(name, {}).get("median", {}).get(key)

    ratios: dict[str, float | None] = {}
    m100, f100 = med("model_100k", "seconds_per_step"), med("floor_100k", "seconds_per_step")
    ratios["floor_over_model_100k"] = f100 / m100 if m100 and f100 else None
    m10, p10 = med("model_10k", "agent_steps_per_s"), med("mesa_10k", "agent_steps_per_s")
    ratios["model_over_mesa_10k"] = m10 / p10 if m10 and p10 else None
    # each turn's own ratio (the pair ran back to back): the spread says how much the machine moved
    if {"model_10k", "mesa_10k"} <= measured_now:
        turns = zip(results["model_10k"]["runs"], results["mesa_10k"]["runs"], strict=True)
        ratios["model_over_mesa_10k_by_turn"] = [
            round(a["agent_steps_per_s"] / b["agent_steps_per_s"], 2) for a, b in turns
        ]
    full_steps = med("model_282k", "step_s_total")
    full_build = med("model_282k", "build_s")
    full_total = full_build + full_steps if full_steps is not None and full_build is not None else None
    targets = {
        "100k within 4x floor (ratio >= 0.25)": (ratios["floor_over_model_100k"], lambda v: v >= 0.25),
        "build at 100k < 5 s": (med("model_100k", "build_s"), lambda v: v < 5),
        "282k x 208 steps < 60 s (build + steps)": (full_total, lambda v: v < 60),
        "282k peak memory < 3 GB (MB)": (med("model_282k", "peak_rss_mb"), lambda v: v < 3072),
        "default 208 steps < 1 s": (med("default", "seconds_208"), lambda v: v < 1),
        ">= 20x Mesa example at 10k": (ratios["model_over_mesa_10k"], lambda v: v >= 20),
    }
    target_rows = {k: {"value": v, "met": (ok(v) if v is not None else None)} for k, (v, ok) in targets.items()}

    print(f"\nMedians over {args.repeats} process(es) each")
    cols = [
        "agents",
        "edges",
        "build_s",
        "seconds_per_step",
        "cpu_seconds_per_step",
        "agent_steps_per_s",
        "peak_rss_mb",
        "process_wall_s",
    ]
    print(f"{'measurement':<12} " + " ".join(f"{c:>17}" for c in cols))
    for name, r in results.items():
        m = r.get("median")
        if m is None:
            print(f"{name:<12} {'skipped' if r.get('skipped') else 'FAILED: ' + r.get('error', '')}")
            continue
        if name == "default":
            m = {**m, "seconds_per_step": m["seconds_208"] / max(m["steps"], 1)}
            if "cpu_seconds_208" in m:
                m["cpu_seconds_per_step"] = m["cpu_seconds_208"] / max(m["steps"], 1)
            m["agent_steps_per_s"] = m["agents"] / m["seconds_per_step"]
        print(f"{name:<12} " + " ".join(f"{_fmt(m.get(c, '')):>17}" for c in cols))
    print()
    for k, v in ratios.items():
        print(f"{k}: {v if isinstance(v, list) else _fmt(v) if v is not None else 'n/a'}")
    print()
    for k, row in target_rows.items():
        mark = {True: "PASS", False: "MISS", None: "n/a "}[row["met"]]
        print(f"[{mark}] {k}: {_fmt(row['value']) if row['value'] is not None else 'n/a'}")

    payload = {
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "repeats": args.repeats,
        "measurements": results,
        "ratios": ratios,
        "targets": target_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
