"""Batch parameter sweeps: grids, Latin hypercubes, Morris and Sobol designs, crash-safe and resumable.

A sweep file (YAML, schema `SweepSpec`, unknown keys are errors) names a base scenario, the
parameters to vary (any config key), the design, the replicate seeds and the outputs to keep.
`load_sweep` validates everything up front, including every generated config; `run_sweep`
runs it on a local process pool (default), in this process (`workers=0`) or on a Dask
distributed cluster (`scheduler="tcp://host:port"`), with a bounded window of runs in flight.

Output directory::

    DIR/sweep.yaml        the sweep file as given
    DIR/base.yaml         the resolved base config (with `set` and the output switches applied)
    DIR/plan.parquet      one row per planned run: point, replicate, seed, run_id, parameters,
                          and the unit-cube coordinates (u:NAME) of sampled designs
    DIR/runs/ID.parquet   one file per finished run (long table, see `RUN_COLUMNS`; the run's
                          parameters, seed, final values and timings are in its Parquet metadata)
    DIR/failures.jsonl    one line per failed attempt: run id, parameters, seed, error, traceback
    DIR/summary.parquet   one row per finished planned run: run_id, point, replicate, seed,
                          parameters, final outputs (built by streaming the run files)
    DIR/sweep.json        spec, counts, timings, driver peak memory, history of invocations

Run ids are content addresses: a hash of the model factory, the resolved config (parameters
applied; `Config.digest`), the seed and the outputs spec. A run file is written under a temporary
name and renamed into place, so a killed sweep loses no finished run, and running the same
command again skips finished runs and retries failed or missing ones.

Example:
    >>> sweep = load_sweep("configs/sweeps/demo.yaml")  # doctest: +SKIP
    >>> result = run_sweep(sweep, "runs/demo", workers=2)  # doctest: +SKIP
    >>> result.finished == result.unique_runs  # doctest: +SKIP
    True
"""

from __future__ import annotations

import collections
import contextlib
import difflib
import errno
import fcntl
import functools
import hashlib
import importlib
import itertools
import json
import math
import os
import platform
import queue
import re
import resource
import signal
import socket
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as metadata_version
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from abm import designs
from abm.config import (
    Config,
    ConfigError,
    ScenarioWarning,
    allowed_keys,
    apply_overrides,
    estimate_memory,
    load_config,
    memory_limit,
    read_yaml_file,
    resolve_path,
    validate,
)
from abm.io import DiskFullError, check_out_dir, format_bytes, free_bytes, is_disk_full, versions
from abm.metrics import GROUP_METRICS, MODEL_COLUMNS

DEFAULT_MODEL = "abm.model:CommonPurposeModel"
#: Packages whose model factories a sweep file may name without `--trust-model`.
TRUSTED_MODEL_PACKAGES = ("abm",)
#: Final metrics available by default (every model column but the step).
FINAL_METRICS = tuple(c for c in MODEL_COLUMNS if c != "step")
GROUP_KINDS = ("role", "ward", "community", "organisation")
#: Columns of every run file (long table).
RUN_COLUMNS = ("run_id", "kind", "step", "group_kind", "group", "metric", "value")
#: Leading columns of plan.parquet and summary.parquet (then parameters, then outputs).
KEY_COLUMNS = ("run_id", "point", "replicate", "seed")
META_KEY = b"abm.sweep"
RUNS_DIR = "runs"
PLAN_FILE = "plan.parquet"
SUMMARY_FILE = "summary.parquet"
FAILURES_FILE = "failures.jsonl"
STATE_FILE = "sweep.json"
SPEC_FILE = "sweep.yaml"
BASE_FILE = "base.yaml"
LOCK_FILE = ".lock"
MAX_SEED = 2**63 - 1
HARD_MAX_RUNS = 10_000_000
#: Thread-pool variables set to 1 in every worker (one run per core; no oversubscription).
THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "BLIS_NUM_THREADS",
)
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 3}
SUMMARY_BATCH = 4096
#: A run lost with its worker (crash, SIGKILL, out of memory) is retried alone; lost this many
#: times alone, it is logged as failed (it is probably what kills its worker).
MAX_LOST_ALONE = 2


class SweepError(ConfigError):
    """A problem with a sweep file, its base config or the command: one line, nothing started."""


# --- the sweep file -------------------------------------------------------------------------------

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Parameter(_Strict):
    """One varied parameter: a value list or `{low, high, num}` (grid), or a range (sampled designs).

    A bare list in YAML is read as `values`. `keys` sets several config keys to the same value
    (default: the parameter's name is the key); a `*` part matches every entry of a mapping,
    e.g. `wards.*.cultural_alignment`.
    """

    values: list[Scalar] | None = Field(None, description="grid: the values to try")
    low: float | None = Field(None, allow_inf_nan=False, description="lowest value")
    high: float | None = Field(None, allow_inf_nan=False, description="highest value")
    num: int | None = Field(None, ge=2, le=1_000_000, description="grid: evenly spaced values from low to high")
    log: bool = Field(False, description="sample (or space) on a log scale (low > 0)")
    integer: bool = Field(False, description="whole numbers only")
    keys: list[str] | None = Field(None, min_length=1, description="config keys set to this value")

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        if isinstance(data, list):
            return {"values": data}
        if not isinstance(data, dict):
            raise ValueError("give a list of values (grid) or a range {low: ..., high: ...}")
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Parameter:
        if self.values is not None:
            extra = [k for k in ("low", "high", "num") if getattr(self, k) is not None]
            if extra or self.log or self.integer:
                raise ValueError("give either a list of values or a range {low, high}, not both")
            if not self.values:
                raise ValueError("the value list is empty")
            kinds = {_kind(v) for v in self.values}
            if len(kinds) > 1:
                raise ValueError(f"the values mix types ({', '.join(sorted(kinds))}); use one type per parameter")
            seen = set()
            for v in self.values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise ValueError(f"value {v} is not a finite number")
                key = json.dumps(v)
                if key in seen:
                    raise ValueError(f"value {v!r} is listed twice")
                seen.add(key)
            return self
        if self.low is None or self.high is None:
            raise ValueError("a range needs both low and high")
        if not self.low < self.high:
            raise ValueError(f"bad range: low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"bad range: a log scale needs low > 0 (got {self.low:g})")
        if self.integer and math.floor(self.high) - math.ceil(self.low) < 1:
            raise ValueError(f"bad range: fewer than two whole numbers from {self.low:g} to {self.high:g}")
        return self

    @property
    def is_range(self) -> bool:
        return self.values is None and self.num is None

    def grid_values(self) -> list[Any]:
        """The values a grid tries (the list, or `num` values from low to high)."""
        if self.values is not None:
            return list(self.values)
        assert self.low is not None and self.high is not None and self.num is not None
        space = np.geomspace if self.log else np.linspace
        raw = space(self.low, self.high, self.num)
        if self.integer:
            out = sorted({round(float(v)) for v in raw})
            return [int(v) for v in out]
        return [float(v) for v in raw]


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    return "text"


class GridDesign(_Strict):
    method: Literal["grid"]


class LHSDesign(_Strict):
    method: Literal["lhs"]
    samples: int = Field(ge=2, le=HARD_MAX_RUNS, description="design points")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="sampling seed (default: the sweep seed)")


class MorrisDesign(_Strict):
    method: Literal["morris"]
    trajectories: int = Field(10, ge=2, le=HARD_MAX_RUNS, description="r: runs = r (D + 1)")
    levels: int = Field(4, ge=2, le=1000, description="grid levels per parameter, an even number")
    seed: int | None = Field(None, ge=0, le=MAX_SEED)

    @field_validator("levels")
    @classmethod
    def _even(cls, p: int) -> int:
        # SALib's step is p / (2 (p - 1)) of the range: on the p-level grid only when p is even
        # (levels 3 gives steps of 0.75 on a 0, 0.5, 1 grid: a biased, degenerate design)
        if p % 2:
            raise ValueError(f"must be an even number for Morris sampling (got {p}; try {p - 1} or {p + 1})")
        return p


class SobolDesign(_Strict):
    method: Literal["sobol"]
    samples: int = Field(ge=2, le=HARD_MAX_RUNS, description="N, a power of two: runs = N (2D + 2), or N (D + 2)")
    second_order: bool = Field(True, description="also estimate second-order indices")
    seed: int | None = Field(None, ge=0, le=MAX_SEED)

    @field_validator("samples")
    @classmethod
    def _power_of_two(cls, n: int) -> int:
        if n & (n - 1):
            lower = 1 << (n.bit_length() - 1)
            raise ValueError(f"must be a power of two for Sobol sampling (got {n}; try {lower} or {lower * 2})")
        return n


Design = Annotated[GridDesign | LHSDesign | MorrisDesign | SobolDesign, Field(discriminator="method")]


class SeriesSpec(_Strict):
    every: int = Field(1, ge=1, le=100_000, description="keep every k-th week (and the last)")
    metrics: list[str] | Literal["all"] = Field("all", description="model columns to keep")


class GroupsSpec(_Strict):
    kinds: list[Literal["role", "ward", "community", "organisation"]] = Field(min_length=1)
    metrics: list[str] | Literal["all"] = "all"
    every: int = Field(0, ge=0, le=100_000, description="keep every k-th week (0: final values only)")


class OutputsSpec(_Strict):
    final: list[str] | Literal["all"] = Field("all", description="model columns whose final value is kept")
    final_window: int = Field(1, ge=1, le=100_000, description="final value = mean over the last n weeks")
    series: SeriesSpec | None = None
    groups: GroupsSpec | None = None

    @model_validator(mode="after")
    def _known_metrics(self) -> OutputsSpec:
        for where, names, allowed in (
            ("final", self.final, FINAL_METRICS),
            ("series.metrics", self.series.metrics if self.series else "all", FINAL_METRICS),
            ("groups.metrics", self.groups.metrics if self.groups else "all", GROUP_METRICS),
        ):
            if names == "all":
                continue
            if not names:
                raise ValueError(f"{where}: the list is empty")
            for name in names:
                if name not in allowed:
                    close = difflib.get_close_matches(name, allowed, n=1)
                    hint = f" (did you mean '{close[0]}'?)" if close else f" (allowed: {', '.join(allowed)})"
                    raise ValueError(f"{where}: unknown metric '{name}'{hint}")
            if len(set(names)) != len(names):
                raise ValueError(f"{where}: a metric is listed twice")
        return self

    def final_metrics(self) -> list[str]:
        return list(FINAL_METRICS) if self.final == "all" else list(self.final)

    def series_metrics(self) -> list[str]:
        if self.series is None:
            return []
        return list(FINAL_METRICS) if self.series.metrics == "all" else list(self.series.metrics)

    def group_metrics(self) -> list[str]:
        if self.groups is None:
            return []
        return list(GROUP_METRICS) if self.groups.metrics == "all" else list(self.groups.metrics)


class ReportSpec(_Strict):
    outcomes: list[str] | None = Field(None, description="final outputs shown in the report (default: up to 3)")


class SweepSpec(_Strict):
    """A sweep file."""

    name: str | None = Field(None, description="default: the file name")
    description: str = ""
    base: str = Field(description="base scenario: a path (relative to this file) or a preset name")
    set: dict[str, Any] = Field(default_factory=dict, description="fixed overrides for every run")
    model: str = Field(DEFAULT_MODEL, description="model factory 'module:attr' called as f(config, rng=seed)")
    design: Design = Field(default_factory=lambda: GridDesign(method="grid"))
    parameters: dict[str, Parameter] = Field(min_length=1)
    replicates: int = Field(1, ge=1, le=1_000_000, description="seeds per design point")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="sweep seed: replicate seeds derive from it")
    common_seeds: bool = Field(True, description="replicate r uses the same seed at every point")
    outputs: OutputsSpec = Field(default_factory=OutputsSpec)
    report: ReportSpec = Field(default_factory=ReportSpec)
    max_runs: int = Field(10_000, ge=1, le=HARD_MAX_RUNS, description="refuse designs needing more runs")

    @model_validator(mode="before")
    @classmethod
    def _design_shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("design"), str):
            data = {**data, "design": {"method": data["design"]}}
        return data

    @field_validator("model")
    @classmethod
    def _model_path(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*", v):
            raise ValueError(f"must be 'module:attribute' (e.g. {DEFAULT_MODEL})")
        return v


# --- a loaded, validated sweep ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedRun:
    point: int
    replicate: int
    seed: int
    run_id: str


@dataclass
class Sweep:
    """A validated sweep: spec, resolved base config data, design points and the run plan."""

    spec: SweepSpec
    path: Path
    text: str
    base_path: Path
    base: dict[str, Any]
    names: list[str]
    keys: dict[str, list[str]]
    points: list[tuple[Any, ...]]
    units: np.ndarray | None
    digests: list[str]
    plan: list[PlannedRun]
    outputs_key: str
    #: Estimated peak memory of the largest design point's run (bytes; see `abm.config.estimate_memory`).
    peak_bytes: int = 0

    @property
    def name(self) -> str:
        return self.spec.name or self.path.stem

    @property
    def method(self) -> str:
        return self.spec.design.method

    @property
    def unique_runs(self) -> list[PlannedRun]:
        """Planned runs with distinct ids, in execution order (replicate-major: early coverage)."""
        seen: set[str] = set()
        out = []
        for run in sorted(self.plan, key=lambda r: (r.replicate, r.point)):
            if run.run_id not in seen:
                seen.add(run.run_id)
                out.append(run)
        return out

    def overrides(self, point: int) -> dict[str, Any]:
        return {k: v for name, v in zip(self.names, self.points[point], strict=True) for k in self.keys[name]}

    def config_data(self, point: int) -> dict[str, Any]:
        """The full config (plain data) of a design point, seed not set."""
        return apply_overrides(self.base, self.overrides(point))

    def describe(self) -> str:
        n_points, reps = len(self.points), self.spec.replicates
        unique = len({r.run_id for r in self.plan})
        dup = f", {len(self.plan) - unique} repeated" if unique != len(self.plan) else ""
        return f"{len(self.plan):,} runs ({n_points:,} {self.method} points x {reps} replicate(s){dup})"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _format_validation(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
    for method in designs.METHODS:
        loc = loc.replace(f"design.{method}", "design")
    msg = err["msg"].removeprefix("Value error, ")
    more = f" ({len(exc.errors()) - 1} more problem(s) after this one)" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys([str(p) for p in err["loc"][:-1]], SweepSpec)
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        return f"{source}: unknown key '{loc}'{hint}{more}"
    if err["type"] == "missing":
        return f"{source}: missing required key '{loc}'{more}"
    value = err.get("input")
    shown = "" if isinstance(value, (dict, list)) or value is None else f" = {value!r}"
    where = f"'{loc}'{shown}: " if loc else ""
    return f"{source}: {where}{msg}{more}"


def _read_sweep_yaml(path: Path) -> tuple[str, dict[str, Any]]:
    return read_yaml_file(path, error=SweepError, kind="sweep file", missing="sweep file not found")


def _resolve_base(base: str, sweep_path: Path) -> Path:
    candidate = sweep_path.parent / base
    if candidate.is_file():
        return candidate
    for c in (resolve_path(base), Path(base)):
        if c.is_file():
            return c
    raise SweepError(
        f"{sweep_path}: base config '{base}' not found (looked beside the sweep file and among the presets; "
        "see 'abm presets')"
    )


def _walk(data: Any, parts: list[str]) -> Any:
    node = data
    for part in parts:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(part)
    return node


def _expand_key(key: str, base: dict[str, Any], where: str) -> list[str]:
    """Expand `*` parts against the base config; check every key names a setting of it."""
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise SweepError(f"{where}: '{key}' is not a dotted config key (e.g. effort.budget)")
    paths: list[list[str]] = [[]]
    for part in parts:
        nxt = []
        for prefix in paths:
            if part == "*":
                try:
                    node = _walk(base, prefix)
                except KeyError:
                    node = None
                if isinstance(node, dict):
                    nxt += [[*prefix, k] for k in node]
                elif isinstance(node, list):
                    nxt += [[*prefix, str(i)] for i in range(len(node))]
            else:
                nxt.append([*prefix, part])
        paths = nxt
    if not paths:
        raise SweepError(f"{where}: '{key}' matches no config key of the base")
    for p in paths:
        try:
            node = _walk(base, p)
        except KeyError as missing:
            depth = p.index(str(missing.args[0]))
            parent = _walk(base, p[:depth])
            options = list(parent) if isinstance(parent, dict) else []
            close = difflib.get_close_matches(str(missing.args[0]), options, n=1)
            hint = f" (did you mean '{'.'.join([*p[:depth], close[0]])}'?)" if close else ""
            at = ".".join(p[:depth]) or "the top level"
            name = missing.args[0]
            raise SweepError(f"{where}: '{'.'.join(p)}' is not a config key: no '{name}' under {at}{hint}") from None
        if isinstance(node, (dict, list)):
            raise SweepError(f"{where}: '{'.'.join(p)}' is a section, not a single setting")
        if p[0] == "seed":
            raise SweepError(f"{where}: the seed is set by the sweep (use 'replicates' and 'seed')")
    return [".".join(p) for p in paths]


def derive_seed(sweep_seed: int, replicate: int, point_key: tuple[int, ...] = ()) -> int:
    """A 63-bit model seed for a replicate (and, for independent seeds, a design point).

    numpy's SeedSequence hashing is stable across versions and platforms, and the seed of
    replicate r does not depend on how many replicates there are.
    """
    ss = np.random.SeedSequence(sweep_seed, spawn_key=(replicate, *point_key))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def make_run_id(model: str, digest: str, seed: int, outputs_key: str) -> str:
    """The run's content address: model factory, resolved config (seed excluded), seed, outputs."""
    blob = _canonical({"model": model, "config": digest, "seed": int(seed), "outputs": outputs_key})
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _trusted(module: str, trusted: Iterable[str]) -> bool:
    return any(module == t or module.startswith(t + ".") for t in trusted)


def _import_factory(path: str, trusted: Iterable[str] | None = TRUSTED_MODEL_PACKAGES) -> Callable[..., Any]:
    """The factory a sweep names, imported only from trusted packages (importing a module runs its code).

    `trusted=None` skips the check: workers import what `load_sweep` already vetted in the driver.
    """
    module, _, attr = path.partition(":")
    if trusted is not None:
        trusted = tuple(trusted)
        if not _trusted(module, trusted):
            raise PermissionError(f"module '{module}' is not in a trusted package ({', '.join(trusted)})")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        if trusted is not None and part.startswith("_"):
            raise PermissionError(f"'{part}' is private")
        obj = getattr(obj, part)
    # `abm.sweep:os.system` would resolve through a trusted module to an untrusted callable.
    if trusted is not None and not _trusted(getattr(obj, "__module__", None) or "", trusted):
        raise PermissionError(f"{path} is defined outside the trusted packages ({', '.join(trusted)})")
    if not callable(obj):
        raise TypeError(f"{path} is not callable")
    return obj


def _design_count(spec: SweepSpec) -> int:
    d = len(spec.parameters)
    design = spec.design
    if isinstance(design, GridDesign):
        return designs.grid_count([p.grid_values() for p in spec.parameters.values()])
    if isinstance(design, LHSDesign):
        return designs.lhs_count(design.samples)
    if isinstance(design, MorrisDesign):
        return designs.morris_count(d, design.trajectories)
    assert isinstance(design, SobolDesign)
    return designs.sobol_count(d, design.samples, design.second_order)


def _check_parameter_kinds(spec: SweepSpec, source: str) -> None:
    method = spec.design.method
    for name, p in spec.parameters.items():
        where = f"{source}: parameters.{name}"
        if method == "grid" and p.is_range:
            raise SweepError(f"{where}: a grid needs a value list or {{low, high, num}}, not a bare range")
        if method != "grid" and not p.is_range:
            what = "a value list" if p.values is not None else "'num'"
            raise SweepError(f"{where}: a {method} design samples a range {{low, high}}; {what} is for grid designs")


def load_sweep(path: str | Path, trust_models: Iterable[str] = ()) -> Sweep:
    """Read and validate a sweep file, its base config and every config the design generates.

    A sweep file's `model: module:attr` may only name this package's factories unless the caller
    trusts more packages (`trust_models`, the CLI's `--trust-model`): importing a module runs it.

    Raises:
        SweepError: one line naming the file, key and problem; nothing has been started or written.
    """
    path = Path(path)
    text, data = _read_sweep_yaml(path)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SweepError(_format_validation(exc, str(path))) from None
    source = str(path)
    _check_parameter_kinds(spec, source)
    if spec.replicates > spec.max_runs:
        raise SweepError(f"{source}: {spec.replicates:,} replicates is more than max_runs {spec.max_runs:,}")
    n_points = _design_count(spec)
    n_runs = n_points * spec.replicates
    if n_runs > spec.max_runs:
        raise SweepError(
            f"{source}: the design needs {n_runs:,} runs ({n_points:,} points x {spec.replicates} replicates), "
            f"more than max_runs {spec.max_runs:,}: shrink the design or raise max_runs"
        )
    if spec.design.method in ("morris", "sobol"):
        try:
            import SALib  # noqa: F401
        except ImportError:
            raise SweepError(
                f"{source}: {spec.design.method} designs need SALib: pip install 'common-purpose[sweep]'"
            ) from None
    trusted = (*TRUSTED_MODEL_PACKAGES, *trust_models)
    try:
        _import_factory(spec.model, trusted)
    except PermissionError as exc:
        top = spec.model.partition(":")[0].split(".")[0]
        raise SweepError(
            f"{source}: model '{spec.model}' refused: {exc}; a sweep file cannot make abm import other code. "
            f"If you trust it, run with --trust-model {top} (Python: load_sweep(path, trust_models=['{top}']))"
        ) from None
    except Exception as exc:
        raise SweepError(f"{source}: model '{spec.model}' cannot be imported: {type(exc).__name__}: {exc}") from None

    base_path = _resolve_base(spec.base, path)
    for key in spec.set:
        if key.split(".")[0] == "seed":
            raise SweepError(f"{source}: set.seed: the seed is set by the sweep (use 'replicates' and 'seed')")
        if key == "output.groups" or key.startswith("output.groups."):
            raise SweepError(f"{source}: set.output.groups: choose group outputs under outputs.groups")
    kinds = list(spec.outputs.groups.kinds) if spec.outputs.groups else []
    try:
        base_cfg = load_config(base_path, {**spec.set, "output.groups": kinds})
    except ConfigError as exc:
        raise SweepError(f"{source}: base {spec.base}: {exc}") from None
    base = base_cfg.to_dict()
    base["seed"] = None
    for key in spec.set:
        _expand_key(key, base, f"{source}: set")

    keys: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    reserved = set(KEY_COLUMNS) | set(spec.outputs.final_metrics())
    for name, p in spec.parameters.items():
        where = f"{source}: parameters.{name}"
        expanded: list[str] = []
        for key in p.keys or [name]:
            expanded += _expand_key(key, base, where)
        if name in reserved or name.startswith("u:"):
            raise SweepError(f"{where}: the name clashes with an output or key column; give it another name")
        for key in expanded:
            if key in owner:
                raise SweepError(f"{where}: config key '{key}' is also set by parameter '{owner[key]}'")
            if key in spec.set:
                raise SweepError(f"{where}: config key '{key}' is also fixed under 'set'")
            owner[key] = name
        keys[name] = expanded
    names = list(spec.parameters)

    # Ranges: check both ends first, for a message about the range rather than a sampled point.
    for name, p in spec.parameters.items():
        if p.values is not None:
            continue
        for end in ("low", "high"):
            value = getattr(p, end)
            if p.integer:
                value = math.ceil(value) if end == "low" else math.floor(value)
            try:
                validate(apply_overrides(base, dict.fromkeys(keys[name], value)), "config")
            except ConfigError as exc:
                msg = str(exc).removeprefix("config: ")
                raise SweepError(f"{source}: parameters.{name}: {end} = {value:g} is not allowed: {msg}") from None

    points, units = _generate_points(spec)
    digests: list[str] = []
    peak_bytes = 0
    for i, values in enumerate(points):
        overrides = {k: v for name, v in zip(names, values, strict=True) for k in keys[name]}
        try:
            cfg = validate(apply_overrides(base, overrides), "config")
        except ConfigError as exc:
            shown = ", ".join(f"{n}={_fmt(v)}" for n, v in zip(names, values, strict=True))
            msg = str(exc).removeprefix("config: ")
            fractional = [
                n
                for n, v in zip(names, values, strict=True)
                if isinstance(v, float) and not v.is_integer() and spec.parameters[n].values is None
            ]
            if fractional and "integer" in msg:  # a range sampled over a whole-number setting
                msg += f" (a range over whole numbers needs `integer: true`: parameters.{fractional[0]})"
            raise SweepError(f"{source}: design point {i} ({shown}): {msg}") from None
        digests.append(cfg.digest())
        peak_bytes = max(peak_bytes, estimate_memory(cfg).bytes)

    outputs_key = _canonical(spec.outputs.model_dump(mode="json"))
    plan: list[PlannedRun] = []
    for i, values in enumerate(points):
        point_key: tuple[int, ...] = ()
        if not spec.common_seeds:
            h = hashlib.sha256(_canonical([_jsonable(v) for v in values]).encode()).digest()
            point_key = tuple(int.from_bytes(h[j : j + 4], "little") for j in range(0, 16, 4))
        for r in range(spec.replicates):
            seed = derive_seed(spec.seed, r, point_key)
            plan.append(PlannedRun(i, r, seed, make_run_id(spec.model, digests[i], seed, outputs_key)))
    return Sweep(spec, path, text, base_path, base, names, keys, points, units, digests, plan, outputs_key, peak_bytes)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _generate_points(spec: SweepSpec) -> tuple[list[tuple[Any, ...]], np.ndarray | None]:
    params = list(spec.parameters.values())
    d = len(params)
    design = spec.design
    if isinstance(design, GridDesign):
        return [tuple(p) for p in designs.grid_points([p.grid_values() for p in params])], None
    seed = design.seed if design.seed is not None else spec.seed
    if isinstance(design, LHSDesign):
        unit = designs.lhs_unit(d, design.samples, seed)
    elif isinstance(design, MorrisDesign):
        unit = designs.morris_unit(d, design.trajectories, design.levels, seed)
    else:
        assert isinstance(design, SobolDesign)
        unit = designs.sobol_unit(d, design.samples, design.second_order, seed)
    points = [
        tuple(
            designs.to_value(float(u), p.low, p.high, log=p.log, integer=p.integer)  # type: ignore[arg-type]
            for u, p in zip(row, params, strict=True)
        )
        for row in unit
    ]
    return points, unit


# --- one run (in a worker) ---------------------------------------------------------------------------


#: Package modules that do not change a run's results (left out of the code fingerprint).
NOT_ENGINE = frozenset({"sweep.py", "report.py", "designs.py", "cli.py", "bench.py", "__main__.py"})


@functools.cache
def package_versions() -> dict[str, str]:
    """`abm.io.versions()` plus the sweep's own libraries (SALib, dask) where installed (cached)."""
    out = versions()
    for key, dist in (("SALib", "salib"), ("dask", "dask"), ("distributed", "distributed")):
        try:
            out[key] = metadata_version(dist)
        except PackageNotFoundError:
            out[key] = "not installed"
    return out


@functools.cache
def code_fingerprint() -> str:
    """A hash of the engine's source files (every abm module that can change a run's results)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).resolve().parent.glob("*.py")):
        if path.name not in NOT_ENGINE:
            h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@functools.cache
def _factory(path: str) -> Callable[..., Any]:
    return _import_factory(path, trusted=None)


def _set_thread_env() -> None:
    for var in THREAD_VARS:
        os.environ[var] = "1"


GROUP_COLUMNS = ("step", "group_kind", "group", "metric", "value")


def group_rows(model: Any, kinds: list[str], metrics: list[str]) -> dict[str, np.ndarray]:
    """The rows of `model.groups_frame()` for some kinds and metrics, as arrays by column.

    Reads the recorder's per-week blocks directly when they have the documented layout (rows:
    groups, columns: GROUP_METRICS): `groups_frame()` builds one DataFrame per week and kind,
    which costs more than a small model's whole run. Falls back to `groups_frame()` otherwise.
    Rows come by kind (recorder order), week, group, then metric (in `metrics` order).
    """
    blocks = getattr(getattr(model, "recorder", None), "blocks", None)
    m = len(GROUP_METRICS)
    cols = [GROUP_METRICS.index(x) for x in metrics]
    k = len(cols)
    parts: list[tuple[np.ndarray, ...]] = []
    fast = isinstance(blocks, dict)
    for kind in list(blocks) if fast else []:
        if kind not in kinds:
            continue
        for step, block, names in blocks[kind]:
            if not (isinstance(block, np.ndarray) and block.shape == (len(names), m)):
                fast = False
                break
            g = len(names)
            parts.append(
                (
                    np.full(g * k, step, dtype=np.int64),
                    np.full(g * k, kind, dtype=object),
                    np.repeat(np.array(names, dtype=object), k),
                    np.tile(np.array(metrics, dtype=object), g),
                    np.asarray(block[:, cols], dtype=np.float64).reshape(-1),
                )
            )
        if not fast:
            break
    if not fast:
        gf = model.groups_frame()
        gf = gf[gf["group_kind"].isin(kinds) & gf["metric"].isin(metrics)]
        return {c: gf[c].to_numpy(dtype=np.float64 if c == "value" else None) for c in GROUP_COLUMNS}
    if not parts:
        return {c: np.array([], dtype=np.float64 if c == "value" else object) for c in GROUP_COLUMNS}
    out = {c: np.concatenate([p[i] for p in parts]) for i, c in enumerate(GROUP_COLUMNS)}
    ok = ~np.isnan(out["value"])
    return {c: v[ok] for c, v in out.items()}


def collect(model: Any, outputs: OutputsSpec, run_id: str) -> tuple[pa.Table, dict[str, float]]:
    """A run's long table (finals, series, groups) and its final values by summary column."""
    mf = model.model_frame()
    steps = mf["step"].to_numpy(dtype=np.int64)
    last = int(steps[-1])
    w = outputs.final_window
    cols: dict[str, list[Any]] = {c: [] for c in RUN_COLUMNS[1:]}
    finals: dict[str, float] = {}

    def add(kind: str, step: np.ndarray, gkind: Any, group: Any, metric: Any, value: np.ndarray) -> None:
        n = len(value)
        cols["kind"].append(np.full(n, kind, dtype=object))
        cols["step"].append(np.asarray(step, dtype=np.int32))
        for key, v in (("group_kind", gkind), ("group", group), ("metric", metric)):
            cols[key].append(np.full(n, v, dtype=object) if isinstance(v, str) else np.asarray(v, dtype=object))
        cols["value"].append(np.asarray(value, dtype=np.float64))

    metrics = outputs.final_metrics()
    for m in metrics:
        finals[m] = float(np.mean(mf[m].to_numpy(dtype=np.float64)[-w:]))
    add("final", np.full(len(metrics), last), "", "", np.array(metrics, dtype=object), np.array(list(finals.values())))
    if outputs.series is not None:
        keep = (steps % outputs.series.every == 0) | (steps == last)
        for m in outputs.series_metrics():
            add("series", steps[keep], "", "", m, mf[m].to_numpy(dtype=np.float64)[keep])
    if outputs.groups is not None:
        g = group_rows(model, list(outputs.groups.kinds), outputs.group_metrics())
        tail_steps = set(np.unique(g["step"])[-w:].tolist())
        sums: dict[tuple[str, str, str], list[float]] = {}
        for st, gk, gr, me, v in zip(g["step"], g["group_kind"], g["group"], g["metric"], g["value"], strict=True):
            if st in tail_steps:
                acc = sums.setdefault((gk, gr, me), [0.0, 0])
                acc[0] += float(v)
                acc[1] += 1
        korder = {x: i for i, x in enumerate(outputs.groups.kinds)}
        morder = {x: i for i, x in enumerate(outputs.group_metrics())}
        keys = sorted(sums, key=lambda t: (korder[t[0]], morder[t[2]]))  # stable: groups keep their order
        for key in keys:
            finals[".".join(key)] = sums[key][0] / sums[key][1]
        add(
            "final",
            np.full(len(keys), last),
            np.array([t[0] for t in keys], dtype=object),
            np.array([t[1] for t in keys], dtype=object),
            np.array([t[2] for t in keys], dtype=object),
            np.array([finals[".".join(t)] for t in keys], dtype=np.float64),
        )
        if outputs.groups.every > 0:
            sel = (g["step"] % outputs.groups.every == 0) | (g["step"] == last)
            add("group", g["step"][sel], g["group_kind"][sel], g["group"][sel], g["metric"][sel], g["value"][sel])
    n = sum(len(v) for v in cols["value"])
    arrays = {"run_id": pa.array(np.full(n, run_id, dtype=object), pa.string()).dictionary_encode()}
    for key in RUN_COLUMNS[1:]:
        joined = np.concatenate(cols[key])
        if key == "step":
            arrays[key] = pa.array(joined, pa.int32())
        elif key == "value":
            arrays[key] = pa.array(joined, pa.float64())
        else:
            arrays[key] = pa.array(joined, pa.string()).dictionary_encode()
    return pa.table(arrays), finals


def execute(task: dict[str, Any]) -> dict[str, Any]:
    """Run one planned run and return its Parquet file as bytes (or the error). Runs in a worker.

    Never raises for a failing model: the error and the end of its traceback are returned, so a
    failing run is logged and the sweep carries on.
    """
    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    base = {"run_id": task["run_id"], "worker": worker}
    try:
        if os.environ.get("OMP_NUM_THREADS") != "1":
            _set_thread_env()
        outputs = OutputsSpec.model_validate(task["outputs"])
        cfg: Config = validate(task["config"], f"run {task['run_id']}")
        with warnings.catch_warnings(record=True) as caught:  # sent to the driver, which says each once
            warnings.simplefilter("always", ScenarioWarning)  # (a map's MapWarnings are ScenarioWarnings)
            model = _factory(task["model"])(cfg, rng=task["seed"])
        said: set[str] = set()
        for w in caught:
            if issubclass(w.category, ScenarioWarning):
                said.add(_one_line(str(w.message)))
            else:
                warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        model.run()
        t_model = time.perf_counter() - t0
        table, finals = collect(model, outputs, task["run_id"])
        meta = {
            "run_id": task["run_id"],
            "params": task["params"],
            "seed": task["seed"],
            "config_digest": cfg.digest(),
            "model": task["model"],
            "code": code_fingerprint(),
            "versions": package_versions(),  # per run: Dask workers may differ from the driver
            "weeks": int(getattr(model, "week", -1)),
            "agents": int(model.state.n) if hasattr(model, "state") else None,
            "finals": finals,
            "model_seconds": round(t_model, 6),
            "worker": worker,
        }
        table = table.replace_schema_metadata({META_KEY: json.dumps(meta, allow_nan=True).encode()})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, **PARQUET_OPTIONS)
        data = sink.getvalue().to_pybytes()
        return {
            **base,
            "ok": True,
            "data": data,
            "model_seconds": t_model,
            "task_seconds": time.perf_counter() - t0,
            "warnings": sorted(said),
        }
    except (Exception, SystemExit) as exc:  # a model calling sys.exit() fails its run, not the sweep
        tb = traceback.format_exc().strip().splitlines()
        return {
            **base,
            "ok": False,
            "error": _one_line(f"{type(exc).__name__}: {exc}")[:2000],
            "traceback": "\n".join(tb[-12:]),
            "task_seconds": time.perf_counter() - t0,
        }


def _worker_init(driver_pid: int, environ: dict[str, str]) -> None:
    """Local pool worker: the driver's environment as of now (a fork server keeps the one it
    started with), one thread per BLAS/OpenMP pool, Ctrl-C left to the driver, and exit when the
    driver dies (even by SIGKILL) rather than linger as an orphan."""
    os.environ.clear()
    os.environ.update(environ)
    _set_thread_env()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()  # the driver, or the fork server it started

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(driver_pid, 0)
            except ProcessLookupError:
                os._exit(3)
            except OSError:
                pass
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, name="abm-sweep-parent-watch", daemon=True).start()


def _worker_probe() -> dict[str, str]:
    """Versions seen by a Dask worker (also proves it can import abm)."""
    import abm

    return {"abm": abm.__version__, "numpy": np.__version__, "python": platform.python_version()}


# --- backends ----------------------------------------------------------------------------------------


class _Backend:
    description = ""
    capacity = 1

    def submit(self, task: dict[str, Any]) -> Any:
        raise NotImplementedError

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        raise NotImplementedError

    def result(self, handle: Any) -> dict[str, Any]:
        raise NotImplementedError

    def close(self, cancel: bool = False) -> None:
        pass


class _Done:
    __slots__ = ("value",)

    def __init__(self, value: dict[str, Any]):
        self.value = value


class _InProcess(_Backend):
    """Runs each task at submission, in the driver (workers=0: debugging, tests, tiny sweeps)."""

    description = "this process"

    def submit(self, task: dict[str, Any]) -> Any:
        return _Done(execute(task))

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        return list(handles)

    def result(self, handle: Any) -> dict[str, Any]:
        return handle.value


def _check_main_importable() -> None:
    """Local workers re-import the driver's __main__ script; one read from stdin cannot be."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(main, "__spec__", None) is None and path is not None and not Path(path).is_file():
        raise SweepError(
            f"local worker processes cannot start from a script that is not a file ({path}): "
            "run the sweep from a file or a notebook, or use workers=0 (in this process)"
        )


class _LocalPool(_Backend):
    def __init__(self, workers: int):
        _check_main_importable()
        self.workers = workers
        self.capacity = workers
        self.description = f"{workers} local worker process{'es' if workers != 1 else ''}"
        self.generation = 0
        self._start()

    def _start(self) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # A fork server imports the model once and forks clean workers from it (no driver
        # threads inherited); a restarted pool reuses it, so it starts in milliseconds.
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["abm.sweep", "abm.model"])
        self.pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(), dict(os.environ)),
        )

    def submit(self, task: dict[str, Any]) -> Any:
        from concurrent.futures.process import BrokenProcessPool

        try:
            fut = self.pool.submit(execute, task)
        except BrokenProcessPool:  # a worker died since the last result: start a fresh pool
            self._restart()
            fut = self.pool.submit(execute, task)
        fut.abm_generation = self.generation  # type: ignore[attr-defined]
        return fut

    def _restart(self) -> None:
        self.close(cancel=True)
        self.generation += 1
        self._start()

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        from concurrent.futures import FIRST_COMPLETED, wait

        return list(wait(list(handles), return_when=FIRST_COMPLETED).done)

    def result(self, handle: Any) -> dict[str, Any]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return handle.result()
        except BrokenProcessPool:
            if handle.abm_generation == self.generation:  # restart once per breakage
                self._restart()
            raise

    def close(self, cancel: bool = False) -> None:
        # On cancel, stop the pool's own worker processes (by handle) rather than wait for them.
        procs = list((getattr(self.pool, "_processes", None) or {}).values()) if cancel else []
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)
        for p in procs:
            with contextlib.suppress(Exception):
                p.terminate()
        for p in procs:
            with contextlib.suppress(Exception):
                p.join(5)


class _Dask(_Backend):
    def __init__(self, address: str, timeout: float = 10.0):
        try:
            from distributed import Client
        except ImportError:
            raise SweepError("--scheduler needs dask[distributed]: pip install 'common-purpose[sweep]'") from None
        try:
            self.client = Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise SweepError(
                f"--scheduler {address}: cannot reach a Dask scheduler there within {timeout:g} s "
                f"({type(exc).__name__}; is 'dask scheduler' running and the address right?)"
            ) from None
        try:
            self.client.wait_for_workers(1, timeout=timeout)
        except (OSError, TimeoutError):
            self.client.close()
            raise SweepError(f"--scheduler {address}: no Dask workers joined within {timeout:g} s") from None
        try:
            probes = self.client.run(_worker_probe)
        except Exception as exc:
            self.client.close()
            raise SweepError(
                f"--scheduler {address}: the workers cannot import abm ({type(exc).__name__}: {exc}); "
                "install common-purpose in the workers' environment"
            ) from None
        mine = _worker_probe()
        self.mismatch = sorted({w for w, v in probes.items() if v != mine})
        threads = self.client.nthreads()
        self.capacity = max(1, sum(threads.values()))
        self.description = f"Dask at {address} ({len(threads)} worker(s), {self.capacity} thread(s))"
        self._n = itertools.count()
        self.live: set[Any] = set()
        self.done: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def submit(self, task: dict[str, Any]) -> Any:
        key = f"abm-sweep-{task['run_id']}-{os.getpid()}-{next(self._n)}"
        fut = self.client.submit(execute, task, key=key, pure=False, retries=0)
        self.live.add(fut)
        fut.add_done_callback(self.done.put)  # called from the client's thread
        return fut

    def wait(self, handles: Iterable[Any]) -> list[Any]:
        pending = set(handles)
        while True:
            try:
                first = self.done.get(timeout=0.5)  # a timeout keeps Ctrl-C responsive
                break
            except queue.Empty:
                continue
        ready = [first]
        while True:
            try:
                ready.append(self.done.get_nowait())
            except queue.Empty:
                break
        return [f for f in ready if f in pending]

    def result(self, handle: Any) -> dict[str, Any]:
        try:
            return handle.result()
        finally:
            self.live.discard(handle)
            handle.release()

    def cancel_all(self) -> None:
        with contextlib.suppress(Exception):
            self.client.cancel(list(self.live), force=True)
        self.live.clear()

    def close(self, cancel: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=5)


# --- the driver ----------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """What a call to `run_sweep` did."""

    out: Path
    planned: int
    unique_runs: int
    already: int
    ran: int
    finished: int
    failed: int
    wall_seconds: float
    interrupted: bool = False
    backend: str = ""
    summary_rows: int = 0
    failed_ids: list[str] = field(default_factory=list)
    model_seconds: float = 0.0
    worker_overhead_seconds: float = 0.0
    driver_cpu_seconds: float = 0.0
    driver_peak_rss_mb: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: the scenario's warnings (map fix-ups, events that never fire), each with how many runs gave it
    warnings: dict[str, int] = field(default_factory=dict)
    requeued: int = 0  # attempts lost with their worker and run again


def _utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, data: bytes, sync: bool = True) -> None:
    """Write `data` to a temporary sibling (`.NAME.tmp-PID`), sync it, then rename it into place."""
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if sync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            exc.filename = str(path)  # the file meant, not its temporary name (for the message)
        raise


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    fd = os.open(out / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise SweepError(f"--out {out}: another sweep (pid {holder}) is writing there; wait for it") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (batch schedulers, `kill`) and SIGINT stop the sweep like Ctrl-C: finished runs are kept.

    SIGINT gets the handler too: a sweep started in the background by a non-interactive shell
    (`abm sweep ... &` in a script) inherits SIGINT as ignored, and Python then installs no
    Ctrl-C handler of its own, so `kill -INT` would be ignored.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextlib.contextmanager
def _thread_env() -> Iterator[None]:
    """Set the thread variables while local workers are spawned (they inherit the environment)."""
    saved = {v: os.environ.get(v) for v in THREAD_VARS}
    _set_thread_env()
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def plan_table(sweep: Sweep) -> pa.Table:
    """plan.parquet: one row per planned run, in (point, replicate) order."""
    rows = sorted(sweep.plan, key=lambda r: (r.point, r.replicate))
    cols: dict[str, pa.Array] = {
        "run_id": pa.array([r.run_id for r in rows], pa.string()),
        "point": pa.array([r.point for r in rows], pa.int64()),
        "replicate": pa.array([r.replicate for r in rows], pa.int32()),
        "seed": pa.array([r.seed for r in rows], pa.int64()),
    }
    for j, name in enumerate(sweep.names):
        values = [sweep.points[r.point][j] for r in rows]
        if all(isinstance(v, bool) for v in values):
            cols[name] = pa.array(values, pa.bool_())
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            cols[name] = pa.array(values, pa.int64())
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            cols[name] = pa.array([float(v) for v in values], pa.float64())
        else:
            cols[name] = pa.array([str(v) for v in values], pa.string())
    if sweep.units is not None:
        for j, name in enumerate(sweep.names):
            cols[f"u:{name}"] = pa.array([float(sweep.units[r.point, j]) for r in rows], pa.float64())
    return pa.table(cols)


def _table_bytes(table: pa.Table, **options: Any) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, **{**PARQUET_OPTIONS, **options})
    return sink.getvalue().to_pybytes()


def run_path(out: Path, run_id: str) -> Path:
    return out / RUNS_DIR / f"{run_id}.parquet"


def read_run_meta(path: Path) -> dict[str, Any]:
    """A run file's metadata (parameters, seed, finals, timings), reading only its footer."""
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta[META_KEY])


def _read_state(out: Path) -> dict[str, Any]:
    try:
        return json.loads((out / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) == b"\n"


class _FailureLog:
    """DIR/failures.jsonl, opened for appending at the first failure (one JSON object a line)."""

    def __init__(self, path: Path):
        self.path = path
        self.fh: Any = None

    def write(self, record: dict[str, Any]) -> None:
        if self.fh is None:
            self.fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
            if self.fh.tell() and not _ends_with_newline(self.path):
                self.fh.write("\n")  # a torn last line (full disk, kill): start a fresh one
        self.fh.write(json.dumps(record) + "\n")
        self.fh.flush()

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


class _Progress:
    """tqdm bar with ETA on a terminal; otherwise a plain line at most every `every` seconds."""

    def __init__(self, total: int, initial: int, desc: str, enabled: bool, every: float = 60.0):
        self.total, self.done, self.failed = total, initial, 0
        self.start, self.initial, self.desc = time.monotonic(), initial, desc
        self.every, self.last = every, time.monotonic()
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="run", dynamic_ncols=True, smoothing=0.05)

    def update(self, ok: bool) -> None:
        self.done += 1
        self.failed += 0 if ok else 1
        if self.bar is not None:
            self.bar.update(1)
            if not ok:
                self.bar.set_postfix(failed=self.failed, refresh=False)
        elif self.enabled and time.monotonic() - self.last >= self.every:
            self.last = time.monotonic()
            rate = (self.done - self.initial) / max(time.monotonic() - self.start, 1e-9)
            eta = (self.total - self.done) / rate if rate > 0 else math.inf
            print(
                f"abm: sweep {self.desc}: {self.done:,}/{self.total:,} runs ({self.failed} failed), "
                f"{rate:.2f} runs/s, ETA {_duration(eta)}",
                file=sys.stderr,
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = round(seconds)
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


def _clean_temps(runs: Path) -> int:
    n = 0
    for tmp in runs.glob(".*.tmp-*"):
        with contextlib.suppress(OSError):
            tmp.unlink()
            n += 1
    return n


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    window: int | None = None,
    progress: bool = True,
    sync: bool = True,
    say: Callable[[str], None] | None = None,
    connect_timeout: float = 10.0,
) -> SweepResult:
    """Run (or resume) a sweep into `out`.

    Args:
        sweep: from `load_sweep`.
        out: the sweep directory (created; an existing one is resumed).
        workers: local worker processes (default: the CPUs available; 0 runs in this process).
        scheduler: a Dask scheduler address (tcp://host:port); then `workers` must be None.
        window: runs in flight at most (default: twice the workers or Dask threads).
        progress: show a progress bar with ETA on a terminal (a line a minute otherwise).
        sync: fsync each run file before renaming it into place (durable across power loss).
        say: where one-line messages go (default: print).
        connect_timeout: seconds to wait for the Dask scheduler and its first worker.

    Returns:
        A SweepResult; `failed` > 0 if runs failed (see DIR/failures.jsonl), `interrupted` on
        Ctrl-C or SIGTERM (finished runs are kept either way).

    Raises:
        SweepError: the output directory or scheduler cannot be used (nothing written).
    """
    say = say or print
    out = check_out_dir(out)
    if scheduler is not None and workers is not None:
        raise SweepError("give --workers or --scheduler, not both (a Dask cluster's size is set by its workers)")
    if workers is None and scheduler is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if scheduler is None and workers:
        workers = _workers_that_fit(sweep, workers, say)
        _check_main_importable()  # before anything is written
    notes: list[str] = []
    dask: _Dask | None = None
    if scheduler is not None:  # connect before writing anything: a bad address writes nothing
        dask = _Dask(scheduler, timeout=connect_timeout)
        if dask.mismatch:
            notes.append(f"package versions on {len(dask.mismatch)} Dask worker(s) differ from the driver's")
    try:
        return _drive(sweep, out, dask, workers or 0, window, progress, sync, say, notes)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFullError(_disk_full_message(sweep, out, exc)) from None
        raise
    finally:
        if dask is not None:
            dask.close()


def _workers_that_fit(sweep: Sweep, workers: int, say: Callable[[str], None]) -> int:
    """Fewer local workers when that many copies of the largest run would not fit in memory.

    Each config was checked alone when the sweep was loaded; K workers hold K runs at once.
    """
    limit = memory_limit()
    if limit is None or workers <= 1 or sweep.peak_bytes <= 0 or workers * sweep.peak_bytes <= limit[0]:
        return workers
    fit = max(1, limit[0] // sweep.peak_bytes)
    say(
        f"abm: note: {workers} workers would each need up to {format_bytes(sweep.peak_bytes)} "
        f"({format_bytes(workers * sweep.peak_bytes)} in all, more than the {format_bytes(limit[0])} {limit[1]}): "
        f"using {fit} worker{'s' if fit > 1 else ''}"
    )
    return int(fit)


def _disk_full_message(sweep: Sweep, out: Path, exc: OSError) -> str:
    """One line for a full disk: what failed, space left and needed, what is kept, what to do."""
    where = Path(exc.filename) if exc.filename else None
    if where is not None:
        with contextlib.suppress(ValueError):
            where = where.relative_to(out)
    unique = sweep.unique_runs
    sizes = [p.stat().st_size for r in unique if (p := run_path(out, r.run_id)).exists()]
    left = len(unique) - len(sizes)
    need = ""
    if sizes and left:
        each = sum(sizes) / len(sizes)
        need = f"; the {left:,} run(s) left need about {format_bytes(each * left)} more ({format_bytes(each)} each)"
    return (
        f"disk full ({os.strerror(exc.errno or errno.ENOSPC)}) writing {where or 'the sweep directory'}: "
        f"{format_bytes(free_bytes(out))} free{need}; {len(sizes):,} of {len(unique):,} runs finished; "
        f"finished runs are kept (in {out}): free some space, then rerun the same command to resume"
    )


def _drive(
    sweep: Sweep,
    out: Path,
    dask: _Dask | None,
    workers: int,
    window: int | None,
    progress: bool,
    sync: bool,
    say: Callable[[str], None],
    notes: list[str],
) -> SweepResult:
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    out.mkdir(parents=True, exist_ok=True)
    runs_dir = out / RUNS_DIR
    runs_dir.mkdir(exist_ok=True)
    with _lock(out), _sigterm_as_interrupt():
        _clean_temps(runs_dir)
        _clean_temps(out)
        state = _read_state(out)
        spec_json = sweep.spec.model_dump(mode="json")
        if state.get("spec") not in (None, spec_json):
            notes.append("this directory held a different sweep spec: runs with the same id are reused")
        codes = {h.get("code") for h in state.get("history", []) if h.get("ran")} - {None}
        if codes - {code_fingerprint()}:
            notes.append(
                "the abm engine code changed since earlier runs in this directory; their results are reused: "
                "use a new --out to rerun everything with this code"
            )
        write_atomic(out / SPEC_FILE, sweep.text.encode("utf-8"))
        write_atomic(out / BASE_FILE, yaml.safe_dump(sweep.base, sort_keys=False, allow_unicode=True).encode())
        write_atomic(out / PLAN_FILE, _table_bytes(plan_table(sweep)))
        unique = sweep.unique_runs
        todo = [r for r in unique if not run_path(out, r.run_id).exists()]
        already = len(unique) - len(todo)
        history = list(state.get("history", []))
        started = _utc()

        backend: _Backend = dask or _InProcess()
        if dask is None and workers > 0 and todo:
            with _thread_env():
                backend = _LocalPool(min(workers, len(todo)))
        win = 1 if isinstance(backend, _InProcess) else (window or max(2, 2 * backend.capacity))
        result = SweepResult(
            out, len(sweep.plan), len(unique), already, 0, already, 0, 0.0, backend=backend.description
        )
        result.notes = notes
        _write_state(out, sweep, result, history, started, status="running")
        for note in notes:
            say(f"abm: note: {note}")
        if todo:
            say(
                f"abm: sweep {sweep.name}: {sweep.describe()}; {already:,} finished already, "
                f"{len(todo):,} to run on {backend.description}, at most {win} in flight"
            )
        bar = _Progress(len(unique), already, sweep.name, progress)
        failures = _FailureLog(out / FAILURES_FILE)
        aborted: BaseException | None = None
        try:
            _loop(sweep, out, backend, todo, win, bar, failures, result, sync)
        except KeyboardInterrupt:
            result.interrupted = True
        except Exception as exc:  # keep what finished, then report the problem
            aborted = exc
            result.interrupted = True
        finally:
            bar.close()
            failures.close()
            if isinstance(backend, _LocalPool):
                backend.close(cancel=result.interrupted)
            elif isinstance(backend, _Dask) and result.interrupted:
                backend.cancel_all()
        _fsync_dir(runs_dir)
        try:
            result.summary_rows = build_summary(out)
        except KeyboardInterrupt:
            result.interrupted = True
        except OSError as exc:  # a full disk: the run files are what matter; report the first problem
            if not is_disk_full(exc):
                raise
            aborted = aborted or exc
        for text, runs in result.warnings.items():  # once each, not once per run (the CLI prints them as lines)
            warnings.warn(ScenarioWarning(f"{text} (in {runs:,} run{'s' if runs != 1 else ''})"), stacklevel=3)
        result.wall_seconds = time.perf_counter() - t0
        result.driver_cpu_seconds = _cpu_seconds() - cpu0
        result.driver_peak_rss_mb = _peak_rss_mb()
        try:
            _write_state(out, sweep, result, history, started, status="aborted" if aborted else _status(result))
        except OSError as exc:
            if not is_disk_full(exc):
                raise
            aborted = aborted or exc
        if aborted is not None:
            raise aborted
        return result


def _status(result: SweepResult) -> str:
    if result.interrupted:
        return "interrupted"
    return "complete" if result.finished == result.unique_runs else "incomplete"


def _loop(
    sweep: Sweep,
    out: Path,
    backend: _Backend,
    todo: list[PlannedRun],
    window: int,
    bar: _Progress,
    failures: Any,
    result: SweepResult,
    sync: bool,
) -> None:
    outputs = sweep.spec.outputs.model_dump(mode="json")
    pending = iter(todo)
    in_flight: dict[Any, PlannedRun] = {}
    # Runs lost with a worker. A dying local worker breaks the whole pool, so every run in
    # flight is lost with it. Lost once (a kill, a one-off), a run goes back in the queue; lost
    # again, it is retried alone, which finishes the innocent ones and pins the blame on a run
    # that kills its worker.
    again: collections.deque[PlannedRun] = collections.deque()
    retry: collections.deque[PlannedRun] = collections.deque()
    alone: set[Any] = set()
    lost: dict[str, int] = {}
    lost_alone: dict[str, int] = {}

    def task_for(run: PlannedRun) -> dict[str, Any]:
        return {
            "run_id": run.run_id,
            "model": sweep.spec.model,
            "config": sweep.config_data(run.point),
            "seed": run.seed,
            "outputs": outputs,
            "params": {n: _jsonable(v) for n, v in zip(sweep.names, sweep.points[run.point], strict=True)},
        }

    def drain(runs: collections.deque[PlannedRun]) -> Iterator[PlannedRun]:
        while runs:
            yield runs.popleft()

    def fill() -> None:
        if retry:
            if not in_flight:  # let the others drain, then one at a time
                run = retry.popleft()
                handle = backend.submit(task_for(run))
                in_flight[handle] = run
                alone.add(handle)
            return
        for run in itertools.islice(itertools.chain(drain(again), pending), max(window - len(in_flight), 0)):
            in_flight[backend.submit(task_for(run))] = run

    broken_streak = 0
    fill()
    while in_flight:
        for handle in backend.wait(in_flight):
            run = in_flight.pop(handle)
            was_alone = handle in alone
            alone.discard(handle)
            try:
                res = backend.result(handle)
            except Exception as exc:  # the worker itself died (crash, SIGKILL, out of memory, lost connection)
                error = _one_line(f"worker lost ({type(exc).__name__}: {exc}): a crash, a kill or out of memory?")
                broken_streak += 1
                if broken_streak > 3 * max(window, 1) + MAX_LOST_ALONE:
                    raise RuntimeError(f"workers keep dying ({error}); stopping the sweep") from None
                lost[run.run_id] = lost.get(run.run_id, 0) + 1
                if was_alone:
                    lost_alone[run.run_id] = lost_alone.get(run.run_id, 0) + 1
                if lost_alone.get(run.run_id, 0) < MAX_LOST_ALONE:
                    (again if lost[run.run_id] == 1 else retry).append(run)
                    result.requeued += 1
                    continue
                res = {"ok": False, "run_id": run.run_id, "worker": "?", "error": error, "traceback": ""}
            result.ran += 1
            if res["ok"]:
                broken_streak = 0
                write_atomic(run_path(out, run.run_id), res["data"], sync=sync)
                result.finished += 1
                result.model_seconds += float(res.get("model_seconds", 0.0))
                result.worker_overhead_seconds += float(res["task_seconds"]) - float(res.get("model_seconds", 0.0))
                for text in res.get("warnings", ()):
                    result.warnings[text] = result.warnings.get(text, 0) + 1
            else:
                result.failed += 1
                result.failed_ids.append(run.run_id)
                record = {
                    "run_id": run.run_id,
                    "point": run.point,
                    "replicate": run.replicate,
                    "seed": run.seed,
                    "params": {n: _jsonable(v) for n, v in zip(sweep.names, sweep.points[run.point], strict=True)},
                    "error": res["error"],
                    "traceback": res.get("traceback", ""),
                    "worker": res.get("worker", "?"),
                    "time_utc": _utc(),
                }
                failures.write(record)
            bar.update(res["ok"])
        fill()


def _write_state(
    out: Path, sweep: Sweep, result: SweepResult, history: list[dict[str, Any]], started: str, status: str
) -> None:
    entry = {
        "started_utc": started,
        "ended_utc": _utc() if status != "running" else None,
        "backend": result.backend,
        "already_finished": result.already,
        "ran": result.ran,
        "succeeded": result.finished - result.already,
        "failed": result.failed,
        "requeued": result.requeued,
        "wall_seconds": round(result.wall_seconds, 3),
        "model_seconds_total": round(result.model_seconds, 3),
        "worker_overhead_seconds_total": round(result.worker_overhead_seconds, 3),
        "driver_cpu_seconds": round(result.driver_cpu_seconds, 3),
        "driver_peak_rss_mb": round(result.driver_peak_rss_mb, 1),
        "status": status,
        "code": code_fingerprint(),
        "versions": package_versions(),
        "platform": platform.platform(),
        "command": sys.argv,
    }
    state = {
        "name": sweep.name,
        "sweep_file": str(sweep.path.resolve()),
        "base_config": str(sweep.base_path.resolve()),
        "spec": sweep.spec.model_dump(mode="json"),
        "parameters": {n: sweep.keys[n] for n in sweep.names},
        "method": sweep.method,
        "points": len(sweep.points),
        "planned_runs": result.planned,
        "unique_runs": result.unique_runs,
        "finished_runs": result.finished,
        "status": status,
        "history": [*history, entry],
        "python": platform.python_version(),
    }
    write_atomic(out / STATE_FILE, (json.dumps(state, indent=2) + "\n").encode())


# --- the summary -----------------------------------------------------------------------------------------


def _iter_plan(out: Path) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(out / PLAN_FILE).iter_batches(batch_size=SUMMARY_BATCH)


def _log_unreadable(out: Path, run_id: str, exc: Exception) -> None:
    path = run_path(out, run_id)
    with contextlib.suppress(OSError):
        os.replace(path, path.with_suffix(".corrupt"))
    record = {
        "run_id": run_id,
        "error": _one_line(f"unreadable run file ({type(exc).__name__}: {exc}); set aside, rerun the sweep"),
        "time_utc": _utc(),
    }
    with open(out / FAILURES_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def build_summary(out: str | Path) -> int:
    """Write DIR/summary.parquet from plan.parquet and the run files, streaming (bounded memory).

    One row per planned run that has finished, in (point, replicate) order: run_id, point,
    replicate, seed, the parameters, then the final outputs (model metrics, then group metrics
    as KIND.GROUP.METRIC). Returns the number of rows.
    """
    out = Path(out)
    plan_schema = pq.read_schema(out / PLAN_FILE)
    plan_cols = [n for n in plan_schema.names if not n.startswith("u:")]
    # Pass 1 (footers only): which runs are readable, and the union of their output columns.
    columns: dict[str, None] = {}
    seen: set[str] = set()
    for batch in _iter_plan(out):
        for run_id in batch.column("run_id").to_pylist():
            if run_id in seen:
                continue
            seen.add(run_id)
            path = run_path(out, run_id)
            if not path.exists():
                continue
            try:
                finals = read_run_meta(path)["finals"]
            except Exception as exc:
                _log_unreadable(out, run_id, exc)
                continue
            for key in finals:
                if key not in columns:
                    columns[key] = None
    del seen
    out_cols = list(columns)
    fields = [plan_schema.field(c) for c in plan_cols] + [pa.field(c, pa.float64()) for c in out_cols]
    schema = pa.schema(fields)
    tmp = out / f".{SUMMARY_FILE}.tmp-{os.getpid()}"
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, **PARQUET_OPTIONS) as writer:
            for batch in _iter_plan(out):
                ids = batch.column("run_id").to_pylist()
                keep: list[int] = []
                values: dict[str, list[float | None]] = {c: [] for c in out_cols}
                cache: dict[str, dict[str, float]] = {}
                for i, run_id in enumerate(ids):
                    path = run_path(out, run_id)
                    if run_id not in cache:
                        if not path.exists():
                            continue
                        try:
                            cache[run_id] = read_run_meta(path)["finals"]
                        except Exception:
                            continue
                    finals = cache[run_id]
                    keep.append(i)
                    for c in out_cols:
                        v = finals.get(c)
                        values[c].append(None if v is None else float(v))
                if not keep:
                    continue
                taken = batch.select(plan_cols).take(pa.array(keep, pa.int64()))
                arrays = [taken.column(c) for c in plan_cols] + [pa.array(values[c], pa.float64()) for c in out_cols]
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(keep)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out / SUMMARY_FILE)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not exc.filename:
            exc.filename = str(out / SUMMARY_FILE)  # pyarrow's errors name no file
        raise
    return rows


def read_failures(out: str | Path) -> list[dict[str, Any]]:
    """The latest failure of each planned run that has no run file now (skips torn lines)."""
    out = Path(out)
    latest: dict[str, dict[str, Any]] = {}
    path = out / FAILURES_FILE
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                rec = json.loads(line)
                if isinstance(rec, dict) and "run_id" in rec:
                    latest[rec["run_id"]] = rec
    return [r for rid, r in latest.items() if not run_path(out, rid).exists()]


def read_series(out: str | Path, metrics: list[str], run_ids: Iterable[str], kind: str = "series") -> pa.Table:
    """Series rows (run_id, step, metric, value) of some runs, read file by file."""
    out = Path(out)
    parts = []
    for run_id in run_ids:
        path = run_path(out, run_id)
        if not path.exists():
            continue
        t = pq.read_table(path, columns=["run_id", "kind", "step", "metric", "value"])
        mask = pc.and_(
            pc.equal(t.column("kind").cast(pa.string()), kind),
            pc.is_in(t.column("metric").cast(pa.string()), pa.array(metrics, pa.string())),
        )
        t = t.filter(mask).drop_columns(["kind"])
        parts.append(
            pa.table(
                {
                    "run_id": t.column("run_id").cast(pa.string()),
                    "step": t.column("step"),
                    "metric": t.column("metric").cast(pa.string()),
                    "value": t.column("value"),
                }
            )
        )
    if not parts:
        return pa.table({"run_id": [], "step": [], "metric": [], "value": []})
    return pa.concat_tables(parts)


__all__ = [
    "RUN_COLUMNS",
    "Parameter",
    "Sweep",
    "SweepError",
    "SweepResult",
    "SweepSpec",
    "build_summary",
    "collect",
    "derive_seed",
    "execute",
    "load_sweep",
    "make_run_id",
    "read_failures",
    "read_run_meta",
    "read_series",
    "run_sweep",
]
