"""The `abm` command: run a scenario, benchmark the engine, describe a config, list presets.

Usage:
    abm run CONFIG [--steps N] [--seed S] [--out DIR] [--set dotted.key=value ...]
    abm bench [--agents N] [--degree K] [--steps S] [--seed S]
    abm describe CONFIG [--set dotted.key=value ...]
    abm presets

CONFIG is a YAML path or a preset name (`south_tees`, `patterns/p6_legacy`; see `abm presets`).
Problems with the arguments or the config print one line starting `abm: error: ` and exit
with status 2, before anything is written. An unexpected failure during a run prints one line
and exits 1 (set ABM_DEBUG=1 for the traceback). Ctrl-C during a run exits 130 and writes
nothing.

Example:
    >>> main(["run", "south_tees", "--steps", "3", "--seed", "1", "--set", "population.residents=200",
    ...       "--out", "/tmp/abm-doctest"])  # doctest: +SKIP
    abm: wrote /tmp/abm-doctest (model.parquet, groups.parquet, config.yaml, run.json): 3 weeks, 405 agents, ...
    0
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from abm.config import MAX_AGENTS, Config, ConfigError, load_config, presets
from abm.io import GROUPS_FILE, META_FILE, MODEL_FILE, OutputError, check_out_dir, write_run

PROG = "abm"
MAX_SEED = 2**63 - 1
MAX_STEPS = 100_000
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A problem with the command line or the config: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block) and exit 2 through `main`."""

    def error(self, message: str) -> NoReturn:
        hint = f" (see '{self.prog} --help')"
        raise UsageError(" ".join(message.split()) + hint)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _int_arg(low: int, high: int, what: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text.strip().replace("_", ""))
        except ValueError:
            value = None
        if value is None or not (low <= value <= high):
            raise argparse.ArgumentTypeError(f"must be {what} from {low:,} to {high:,}, got {text!r}")
        return value

    return parse


def _float_arg(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and low < value <= high):
            raise argparse.ArgumentTypeError(f"must be a number above {low:g} and at most {high:g}, got {text!r}")
        return value

    return parse


def _set_arg(text: str) -> str:
    if "=" not in text or not text.split("=", 1)[0].strip():
        raise argparse.ArgumentTypeError(f"expected dotted.key=value (e.g. effort.budget=30), got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `abm` (errors raise `UsageError`)."""
    parser = _Parser(
        prog=PROG,
        description="The Common Purpose Model: an agent-based model of a whole system coming to share a purpose.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    steps = _int_arg(1, MAX_STEPS, "a whole number of weeks")
    seed = _int_arg(0, MAX_SEED, "a whole number")
    sets = {
        "action": "append",
        "type": _set_arg,
        "default": [],
        "metavar": "KEY=VALUE",
        "help": "override a config value, e.g. --set effort.budget=30 (repeatable)",
    }

    run = sub.add_parser("run", help="run a scenario and write its outputs")
    run.add_argument("config", metavar="CONFIG", help="YAML path or preset name (see 'abm presets')")
    run.add_argument("--steps", type=steps, help="weeks to simulate (default: the config's steps)")
    run.add_argument(
        "--seed", type=seed, help="random seed (default: the config's seed, else a fresh one, recorded in run.json)"
    )
    run.add_argument("--out", metavar="DIR", help="output directory (default: runs/<config-stem>-seed<S>)")
    run.add_argument("--set", dest="sets", **sets)

    bench = sub.add_parser("bench", help="time the full default model scaled to a size and mean degree")
    bench.add_argument(
        "--agents", type=_int_arg(100, MAX_AGENTS, "a whole number"), default=100_000, help="about N agents"
    )
    bench.add_argument("--degree", type=_float_arg(0, 1000), default=10.0, help="mean degree about K")
    bench.add_argument("--steps", type=steps, default=30, help="steps to time (default 30)")
    bench.add_argument("--seed", type=seed, default=1, help="model seed (default 1)")

    describe = sub.add_parser("describe", help="print what happens each week and the system's size, without running")
    describe.add_argument("config", metavar="CONFIG", help="YAML path or preset name")
    describe.add_argument("--set", dest="sets", **sets)

    sub.add_parser("presets", help="list the shipped scenario presets")
    return parser


def _load(config: str, sets: list[str]) -> Config:
    """The config named on the command line with its --set overrides (raises ConfigError)."""
    return load_config(config, sets or None)


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    cfg = _load(args.config, args.sets)
    seed = args.seed if args.seed is not None else cfg.seed
    if seed is None:
        seed = secrets.randbelow(2**31)
    extra: dict[str, int] = {"seed": seed}
    if args.steps is not None:
        extra["steps"] = args.steps
    cfg = load_config(cfg, extra)
    out = Path(args.out) if args.out else Path("runs") / f"{Path(args.config).stem}-seed{seed}"
    check_out_dir(out)

    from abm.model import CommonPurposeModel

    t0 = time.perf_counter()
    model = CommonPurposeModel(cfg, rng=seed)
    model.run(progress=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    write_run(model, out, wall, command=[PROG, *argv])
    print(
        f"{PROG}: wrote {out} ({MODEL_FILE}, {GROUPS_FILE}, config.yaml, {META_FILE}): "
        f"{model.week} weeks, {model.state.n:,} agents, seed {seed}, {wall:.1f} s"
    )
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from abm.bench import bench

    result = bench(args.agents, args.degree, args.steps, seed=args.seed)
    print(json.dumps(result))
    return EXIT_OK


def _cmd_describe(args: argparse.Namespace) -> int:
    import numpy as np

    from abm.model import CommonPurposeModel

    cfg = _load(args.config, args.sets)
    model = CommonPurposeModel(cfg, rng=cfg.seed if cfg.seed is not None else 0)
    s = model.state
    print(model.describe_step())
    print()
    print(f"{cfg.name}: {s.n:,} agents ({int(s.staff.sum()):,} staff), {model.ties.count:,} ties", end="")
    print(f" (mean degree {2 * model.ties.count / max(s.n, 1):.1f}), {cfg.steps} weeks")
    counts = np.bincount(s.role, minlength=len(model.role_names))
    print("roles: " + ", ".join(f"{name} {int(c):,}" for name, c in zip(model.role_names, counts, strict=True)))
    wards = np.bincount(s.ward, minlength=len(model.ward_names))
    print("wards: " + ", ".join(f"{name} {int(c):,}" for name, c in zip(model.ward_names, wards, strict=True)))
    print(f"organisations: {len(model.org_names):,}; communities: {len(model.community_names)}")
    return EXIT_OK


def _cmd_presets() -> int:
    for name in presets():
        print(name)
    return EXIT_OK


def _error(message: object) -> None:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `abm` command line.

    Args:
        argv: arguments without the program name (default: `sys.argv[1:]`).

    Returns:
        0 on success, 1 on an unexpected failure, 2 on a usage or config problem, 130 on Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version exit through argparse
            return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else EXIT_USAGE
        if args.command is None:
            raise UsageError("choose a command: run, bench, describe or presets (see 'abm --help')")
        if args.command == "run":
            return _cmd_run(args, argv)
        if args.command == "bench":
            return _cmd_bench(args)
        if args.command == "describe":
            return _cmd_describe(args)
        return _cmd_presets()
    except (UsageError, ConfigError, OutputError) as exc:
        _error(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted: nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        debug = os.environ.get("ABM_DEBUG") == "1"
        if debug:
            traceback.print_exc()
        _error(f"{type(exc).__name__}: {exc}" + ("" if debug else " (set ABM_DEBUG=1 for the traceback)"))
        return EXIT_FAILED
