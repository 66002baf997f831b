"""The `abm` command: run a scenario, benchmark the engine, describe a config, list presets, sweep.

Usage:
    abm run CONFIG [--network MAP] [--steps N] [--seed S] [--out DIR] [--set dotted.key=value ...]
    abm bench [--agents N] [--degree K] [--steps S] [--seed S]
    abm describe CONFIG [--network MAP] [--set dotted.key=value ...]
    abm network export RUN_DIR_OR_CONFIG --out PATH [--format F] [--network MAP] [--steps N] [--seed S] [--set ...]
    abm network check MAP [--config CONFIG] [--set ...]
    abm presets
    abm sweep SWEEP.yaml [--out DIR] [--workers K | --scheduler ADDRESS] [--window N] [--trust-model PKG]
    abm sweep report DIR [--out REPORT_DIR] [--outcome METRIC ...]

CONFIG is a YAML path or a preset name (`south_tees`, `patterns/p6_legacy`; see `abm presets`).
MAP is a stakeholder map (GraphML, GEXF, CSV, Kumu, PRSM; see docs/maps.md) used instead of the
synthetic network; a relative `network.source` in a config is looked up from the current
directory, then from the config file's directory. Fix-ups made to a map (default roles,
directed links, ...) print one line each starting `abm: warning: `.
Problems with the arguments or the config print one line starting `abm: error: ` and exit
with status 2, before anything is written. That includes a run that would need more memory
than the machine has available (the estimate and the limit are named; set ABM_MEMORY_LIMIT_MB
to use another limit, in megabytes), and files that are not plain YAML data (object tags,
alias bombs, duplicate keys, binary files, devices and pipes are refused). An unexpected
failure during a run prints one line and exits 1 (set ABM_DEBUG=1 for the traceback). Ctrl-C
during a run exits 130 and writes nothing. A full disk prints one line and exits 2 (`abm run`:
nothing written, an earlier run in --out untouched; `abm sweep`: finished runs kept, rerun to
resume). `abm run --out DIR` replaces an earlier run in DIR (saying so) and refuses a non-empty
DIR holding no run (no run.json); a run on a map pins the map's SHA-256 in its config.yaml
(`network.source_sha256`), so rerunning that config on an edited map is refused. A sweep
(docs/sweeps.md) keeps every finished run: Ctrl-C exits 130, a sweep with failed runs exits 1,
and running the same command again resumes it. A sweep file's `model:` may name only this
package's factories unless `--trust-model PACKAGE` is given.

Example:
    >>> main(["run", "south_tees", "--steps", "3", "--seed", "1", "--set", "population.residents=200",
    ...       "--out", "/tmp/abm-doctest"])  # doctest: +SKIP
    abm: wrote /tmp/abm-doctest (model.parquet, groups.parquet, config.yaml, run.json): 3 weeks, 405 agents, ...
    0
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import secrets
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import NoReturn

from abm import validate
from abm.config import (
    MAX_AGENTS,
    Config,
    ConfigError,
    ScenarioWarning,
    load_config,
    memory_estimate,
    presets,
    refuse_over_memory,
    resolve_path,
)
from abm.io import DATA_FILES, META_FILE, OutputError, check_out_dir, previous_run, write_run
from abm.mapio import CONFIG_SUFFIXES, FORMATS, MAP_FILES, SUFFIX_FORMATS

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


def _nonempty_arg(what: str) -> Callable[[str], str]:
    # `--out ''` would otherwise fall through to the default, silently
    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"must name {what}, got {text!r}")
        return text

    return parse


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


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
    network_help = "run on this stakeholder map instead of the synthetic network (sets network.source)"
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
    run.add_argument(
        "--out",
        metavar="DIR",
        type=_nonempty_arg("a directory (leave --out out for the default)"),
        help="output directory (default: runs/<config-stem>-seed<S>, or runs/<config-stem>-<map-stem>-seed<S> "
        "with --network); an earlier run there is replaced (a note says so), other files in it are kept; "
        "a non-empty directory holding no run (no run.json) is refused",
    )
    run.add_argument("--set", dest="sets", **sets)
    run.add_argument("--network", metavar="MAP", help=network_help)

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
    describe.add_argument("--network", metavar="MAP", help=network_help)

    network = sub.add_parser("network", help="export the model's network as a map file, or check a map")
    actions = network.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    export = actions.add_parser(
        "export", help="write a run's final network, or a config's network, as GraphML, GEXF, CSV, Kumu or PRSM"
    )
    export.add_argument(
        "source", metavar="RUN_DIR_OR_CONFIG", help="a run directory (from 'abm run'), or a YAML path or preset"
    )
    export.add_argument(
        "--out",
        metavar="PATH",
        required=True,
        type=_nonempty_arg("a file or directory"),
        help="the file (a directory for csv and kumu-csv)",
    )
    export.add_argument(
        "--format", choices=FORMATS, help="default: from --out's suffix (.graphml, .gexf, .xlsx: kumu-xlsx, .json)"
    )
    export.add_argument("--network", metavar="MAP", help="for a CONFIG: " + network_help)
    export.add_argument(
        "--steps",
        type=_int_arg(0, MAX_STEPS, "a whole number of weeks"),
        default=0,
        help="for a CONFIG: weeks to run first (default 0: the network as built)",
    )
    export.add_argument(
        "--seed",
        type=seed,
        help="for a CONFIG: random seed (default: the config's, else 0, so the same command gives the same "
        "network; unlike 'abm run', which draws a fresh seed)",
    )
    export.add_argument("--set", dest="sets", **sets)
    check = actions.add_parser("check", help="read a map, match it to a config and summarise it, without running")
    check.add_argument("map", metavar="MAP", help="the map file or directory")
    check.add_argument("--config", default="south_tees", help="YAML path or preset name (default south_tees)")
    check.add_argument("--set", dest="sets", **sets)

    sub.add_parser("presets", help="list the shipped scenario presets")
    validate.add_parser(sub)

    sweep = sub.add_parser(
        "sweep",
        help="run a parameter sweep from a sweep file ('abm sweep report DIR' writes its report)",
        description="Run or resume a parameter sweep (grid, Latin hypercube, Morris, Sobol); see docs/sweeps.md. "
        "'abm sweep report DIR' writes the figures and an HTML page for a sweep directory.",
    )
    sweep.add_argument("sweep_file", metavar="SWEEP.yaml", help="sweep file (e.g. configs/sweeps/demo.yaml)")
    sweep.add_argument(
        "--out",
        metavar="DIR",
        type=_nonempty_arg("a directory (leave --out out for the default)"),
        help="sweep directory, new or to resume (default: runs/sweep-<stem>)",
    )
    sweep.add_argument(
        "--workers",
        type=_int_arg(0, 4096, "a whole number"),
        metavar="K",
        help="local worker processes (default: the CPUs available; 0 runs in this process)",
    )
    sweep.add_argument(
        "--scheduler", type=_scheduler_arg, metavar="ADDRESS", help="a Dask scheduler, e.g. tcp://10.0.0.5:8786"
    )
    sweep.add_argument(
        "--trust-model",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="let the sweep file's 'model:' name a factory from PACKAGE (importing runs its code; repeatable)",
    )
    sweep.add_argument(
        "--window",
        type=_int_arg(1, 1_000_000, "a whole number"),
        metavar="N",
        help="runs in flight at most (default: 2 per worker)",
    )

    report = sub.add_parser("sweep-report", prog=f"{PROG} sweep report", description="Write a sweep's report.")
    report.add_argument("sweep_dir", metavar="DIR", help="a sweep directory written by 'abm sweep'")
    report.add_argument(
        "--out",
        metavar="REPORT_DIR",
        type=_nonempty_arg("a directory (leave --out out for the default)"),
        help="where the PNGs and index.html go (default: DIR/report)",
    )
    report.add_argument(
        "--outcome",
        dest="outcomes",
        action="append",
        default=[],
        metavar="METRIC",
        help="an output to report (repeatable; default: the sweep file's report.outcomes, else up to 3)",
    )
    return parser


def _scheduler_arg(text: str) -> str:
    if not re.fullmatch(r"(tcp|tls|ucx|inproc)://\S+|[\w.-]+:\d+", text.strip()):
        raise argparse.ArgumentTypeError(f"expected a scheduler address like tcp://HOST:PORT, got {text!r}")
    return text.strip()


def _load(config: str, sets: list[str], network: str | None = None) -> Config:
    """The config named on the command line with its --set overrides and --network map (raises ConfigError).

    The map's path is made absolute (a relative `network.source` is looked up from the current
    directory, then from the config file's), so the run's config.yaml repeats the run from anywhere.
    A --network map replaces the config's own, so the config's `network.source_sha256` (the hash
    of its own map) is dropped.
    """
    cfg = load_config(config, sets or None)
    source = network if network is not None else cfg.network.source
    if source is None:
        return cfg
    path = Path(source)
    if not path.is_absolute() and not path.exists() and network is None:
        beside = resolve_path(config).parent / path
        path = beside if beside.exists() else path
    changes: dict[str, str | None] = {"network.source": str(path.absolute())}
    if network is not None:
        changes["network.source_sha256"] = None
    return load_config(cfg, changes)


@contextlib.contextmanager
def _map_warnings() -> Iterator[None]:
    """Print the scenario's oddities (ScenarioWarning, a map's fix-ups included) as one line each,
    once the block succeeds."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ScenarioWarning)
        yield
    for w in caught:
        if issubclass(w.category, ScenarioWarning):
            print(f"{PROG}: warning: {_one_line(w.message)}", file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _cmd_run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    cfg = _load(args.config, args.sets, args.network)
    seed = args.seed if args.seed is not None else cfg.seed
    if seed is None:
        seed = secrets.randbelow(2**31)
    extra: dict[str, int] = {"seed": seed}
    if args.steps is not None:
        extra["steps"] = args.steps
    cfg = load_config(cfg, extra)
    stem = Path(args.config).stem + (f"-{Path(args.network).stem}" if args.network else "")
    out = Path(args.out) if args.out is not None else Path("runs") / f"{stem}-seed{seed}"
    check_out_dir(out)
    earlier = previous_run(out)

    from abm.model import CommonPurposeModel

    t0 = time.perf_counter()
    with _map_warnings():
        model = CommonPurposeModel(cfg, rng=seed)
    model.run(progress=sys.stderr.isatty())
    wall = time.perf_counter() - t0
    write_run(model, out, wall, command=[PROG, *argv])
    # The run is on disk now: a Ctrl-C from here on must not report "nothing written".
    with contextlib.suppress(KeyboardInterrupt):
        if earlier is not None:
            was = [f"seed {earlier['seed']}"] if "seed" in earlier else []
            was += [f"written {earlier['timestamp_utc']}"] if "timestamp_utc" in earlier else []
            said = f" ({', '.join(was)})" if was else ""
            print(f"{PROG}: note: replaced the earlier run in {out}{said}", file=sys.stderr)
        print(
            f"{PROG}: wrote {out} ({', '.join(DATA_FILES)}, {META_FILE}): "
            f"{_plural(model.week, 'week')}, {_plural(model.state.n, 'agent')}, seed {seed}, {wall:.1f} s"
        )
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from abm.bench import bench

    # before calibrating (which builds networks at the asked degree): agents and their ties, no outputs
    refuse_over_memory(memory_estimate(args.agents, args.agents * args.degree / 2), "--agents or --degree")
    try:
        result = bench(args.agents, args.degree, args.steps, seed=args.seed)
    except ConfigError:  # the degrees derived for this size are out of the generator's range
        raise UsageError(
            f"--degree {args.degree:g}: the generator cannot give {args.agents:,} agents a mean degree near that "
            "(its per-kind degrees would pass their limits); try a lower --degree or more --agents"
        ) from None
    print(json.dumps(result))
    return EXIT_OK


def _cmd_describe(args: argparse.Namespace) -> int:
    import numpy as np

    from abm.model import CommonPurposeModel

    cfg = _load(args.config, args.sets, args.network)
    with _map_warnings():
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
    if cfg.events:  # the schedule, so a late or mistyped week shows before a run
        shown = []
        for e in sorted(cfg.events, key=lambda e: e.week):
            detail = ", ".join(
                f"{k}={v}" for k, v in e.model_dump().items() if k not in ("type", "week") and v is not None
            )
            later = " (after the last week: never fires)" if e.week > cfg.steps else ""
            shown.append(f"week {e.week} {e.type} ({detail}){later}")
        print("events: " + "; ".join(shown))
    else:
        print("events: none")
    return EXIT_OK


def _cmd_sweep(args: argparse.Namespace) -> int:
    from abm.sweep import load_sweep, run_sweep

    sweep = load_sweep(args.sweep_file, trust_models=args.trust_model)
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{Path(args.sweep_file).stem}"
    with _map_warnings():
        result = run_sweep(sweep, out, workers=args.workers, scheduler=args.scheduler, window=args.window)
    done = f"{result.finished:,} of {result.unique_runs:,} runs finished"
    if result.interrupted:
        print(
            f"{PROG}: interrupted: {done}, kept in {out}; run the same command again to resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    ran = f"ran {result.ran:,} in {result.wall_seconds:.1f} s" if result.ran else "nothing left to run"
    print(f"{PROG}: sweep {sweep.name}: {done} ({ran}); wrote {out}/summary.parquet ({result.summary_rows:,} rows)")
    if result.failed:
        _error(f"{result.failed:,} run(s) failed (see {out}/failures.jsonl); run the same command again to retry them")
        return EXIT_FAILED
    return EXIT_OK


def _cmd_sweep_report(args: argparse.Namespace) -> int:
    from abm.report import write_report

    page = write_report(args.sweep_dir, out=args.out, outcomes=args.outcomes or None)
    print(f"{PROG}: wrote {page} and its figures")
    return EXIT_OK


def _cmd_network_export(args: argparse.Namespace) -> int:
    from abm.mapio import model_graph, run_graph, summary, write_map

    fmt = args.format or SUFFIX_FORMATS.get(Path(args.out).suffix.lower())
    if fmt is None:
        raise UsageError(f"--format: cannot tell the format from --out {args.out}; choose one of {', '.join(FORMATS)}")
    out = Path(args.out)
    if not out.absolute().parent.is_dir():
        raise OutputError(f"--out {args.out}: the directory '{out.absolute().parent}' does not exist")
    source = Path(args.source)
    if source.is_dir():
        given = (("--network", args.network), ("--seed", args.seed), ("--set", args.sets), ("--steps", args.steps))
        config_only = [flag for flag, value in given if value]
        if config_only:
            raise UsageError(f"{config_only[0]} applies to a CONFIG, not to a run directory ({args.source})")
        graph = run_graph(source)
        what = f"the final network of run {args.source}"
    else:
        from abm.model import CommonPurposeModel

        cfg = _load(args.source, args.sets, args.network)
        if args.steps > cfg.steps:  # the memory guard for the weeks actually run
            load_config(cfg, {"steps": args.steps})
        seed = args.seed if args.seed is not None else (cfg.seed if cfg.seed is not None else 0)
        with _map_warnings():
            model = CommonPurposeModel(cfg, rng=seed)
        model.run(args.steps)
        graph = model_graph(model)
        what = f"{cfg.name} at week {model.week} (seed {seed})"
    write_map(graph, out, fmt)
    print(f"{PROG}: wrote {out} ({fmt}): {what}: {summary(graph)}")
    return EXIT_OK


def _cmd_network_check(args: argparse.Namespace) -> int:
    import numpy as np

    from abm.mapio import read_map
    from abm.network import population_from_graph

    if Path(args.map).suffix.lower() in CONFIG_SUFFIXES:  # a scenario where the map goes: say where it goes
        raise UsageError(
            f"{args.map}: unknown map format '{Path(args.map).suffix}': a scenario config, not a map; to check "
            f"a map against this scenario, give it as --config: 'abm network check MAP --config {args.map}' "
            f"(a map is {MAP_FILES})"
        )
    cfg = _load(args.config, args.sets, args.map)
    with _map_warnings():
        graph = read_map(cfg.network.source or args.map, cfg.network.mapping, max_mb=cfg.network.source_max_mb)
        pop = population_from_graph(graph, cfg, np.random.default_rng(0))
    roles = np.bincount(pop.role, minlength=len(pop.role_names))
    shown = ", ".join(f"{name} {int(c):,}" for name, c in zip(pop.role_names, roles, strict=True) if c)
    print(
        f"{args.map}: {graph.graph.get('format')}, {pop.n_agents:,} people ({shown}), {pop.eu.size:,} tie(s) "
        f"(mean degree {2 * pop.eu.size / pop.n_agents:.1f}), {len(pop.org_names):,} organisation(s)"
    )
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
        0 on success, 1 on an unexpected failure, 2 on a usage or config problem or a full disk,
        130 on Ctrl-C.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["sweep", "report"]:  # 'abm sweep report DIR' (a sweep file named 'report': ./report)
        argv = ["sweep-report", *argv[2:]]
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help and --version exit through argparse
            return int(exc.code or 0) if isinstance(exc.code, int) or exc.code is None else EXIT_USAGE
        if args.command is None:
            raise UsageError(
                "choose a command: run, bench, describe, network, presets, sweep or validate (see 'abm --help')"
            )
        if args.command == "run":
            return _cmd_run(args, argv)
        if args.command == "bench":
            return _cmd_bench(args)
        if args.command == "describe":
            return _cmd_describe(args)
        if args.command == "network":
            if args.action == "export":
                return _cmd_network_export(args)
            if args.action == "check":
                return _cmd_network_check(args)
            raise UsageError("choose an action: export or check (see 'abm network --help')")
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "sweep-report":
            return _cmd_sweep_report(args)
        if args.command == "validate":
            return validate.run(args)
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
