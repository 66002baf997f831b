"""Writing and reading a run's outputs: crash-safe, and byte-identical for the same config and seed.

A run directory holds six files:

- `model.parquet`: one row per week (`CommonPurposeModel.model_frame()`),
- `groups.parquet`: the long table step, group_kind, group, metric, value (`groups_frame()`),
- `people.parquet`: one row per person at the end (`abm.mapio.people_frame`: role, ward,
  organisation, community, vision, value, acting, stage, first-passage weeks, map id and label),
- `ties.parquet`: every tie at the end (source, target as person indices; trust; kind),
- `config.yaml`: the resolved configuration, seed included (`abm run DIR/config.yaml` repeats it),
- `run.json`: seed, config hash, sizes, package versions, platform, timings, command line.

Everything is written into a temporary sibling directory (`.DIR.tmp-<pid>`), synced to disk,
then moved into DIR with `os.replace`, `run.json` last: a directory with `run.json` is complete,
and an interrupted run leaves nothing that looks complete. Wall time and timestamp live only in
`run.json`; the Parquet files carry no timestamps or library metadata that could vary, so two
runs with the same config and seed give the same bytes.

Example:
    >>> import tempfile
    >>> from abm import CommonPurposeModel
    >>> model = CommonPurposeModel(rng=1, steps=3, residents=200).run()
    >>> out = write_run(model, Path(tempfile.mkdtemp()) / "demo", wall_seconds=0.1)
    >>> run = read_run(out)
    >>> len(run.model), run.meta["seed"]
    (4, 1)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

if TYPE_CHECKING:
    from abm.model import CommonPurposeModel

MODEL_FILE = "model.parquet"
GROUPS_FILE = "groups.parquet"
PEOPLE_FILE = "people.parquet"
TIES_FILE = "ties.parquet"
CONFIG_FILE = "config.yaml"
META_FILE = "run.json"
#: The data files, moved into place before `run.json` (whose presence marks a complete run).
DATA_FILES = (MODEL_FILE, GROUPS_FILE, PEOPLE_FILE, TIES_FILE, CONFIG_FILE)
#: Distributions whose versions are recorded in run.json (the key is the name shown).
PACKAGES = {
    "common-purpose": "common-purpose",
    "mesa": "mesa",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "networkx": "networkx",
    "pyarrow": "pyarrow",
    "pydantic": "pydantic",
}
#: Parquet settings: fixed compression and no pandas metadata (it records the pandas version).
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "use_dictionary": True}


class OutputError(ValueError):
    """The output directory cannot be used (an existing file, not writable, ...)."""


@dataclass
class RunData:
    """A run read back from disk by `read_run`."""

    path: Path
    model: pd.DataFrame
    groups: pd.DataFrame
    config: dict[str, Any]
    meta: dict[str, Any]
    people: pd.DataFrame | None = None  # None for runs written before people.parquet existed
    ties: pd.DataFrame | None = None


def versions() -> dict[str, str]:
    """Versions of this package, its main dependencies and Python."""
    out: dict[str, str] = {}
    for key, dist in PACKAGES.items():
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            out[key] = "not installed"
    out["python"] = platform.python_version()
    return out


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_out_dir(out_dir: str | Path) -> Path:
    """Check, without creating anything, that a run can be written to `out_dir`.

    Args:
        out_dir: the run directory (it may exist, as a directory, or be created later).

    Returns:
        The absolute path.

    Raises:
        OutputError: it is an existing file, a parent is a file, or it cannot be written.
    """
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out_dir}: is an existing file (give a directory, new or existing)")
    base = _nearest_existing(out.parent)
    if not base.is_dir():
        raise OutputError(f"--out {out_dir}: '{base}' is a file, so no directory can be made under it")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out_dir}: '{base}' is not writable (choose a directory you can write to)")
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out_dir}: the directory is not writable (choose one you can write to)")
    return out


def _table(df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata(None)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform or file system syncs directories
        _fsync_file(path)


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _makedirs(path: Path) -> list[Path]:
    """Create `path` and its missing parents; return the ones created (outermost first)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
    return list(reversed(missing))


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Hold off Ctrl-C while files are moved into place (a few milliseconds), then carry on.

    A Ctrl-C in that window is dropped: by the time it would act, the run is complete on disk.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is None:  # a handler not installed from Python: leave it alone
        yield
        return
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _remove_stale_temps(out: Path) -> None:
    """Remove temp dirs left beside `out` by runs that were killed outright (SIGKILL, power cut)."""
    for tmp in out.parent.glob(f".{out.name}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass  # alive, or someone else's process: leave it


def _meta(model: CommonPurposeModel, wall_seconds: float, command: Sequence[str] | str | None) -> dict[str, Any]:
    seed = model.seed
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        seed = str(seed)
    if command is not None and not isinstance(command, str):
        command = shlex.join(str(c) for c in command)
    return {
        "seed": seed,
        "config_hash": model.config.digest(),
        "config_name": model.config.name,
        "steps": int(model.week),
        "agents": int(model.state.n),
        "ties": int(model.ties.count),
        "versions": versions(),
        "platform": platform.platform(),
        "wall_seconds": round(float(wall_seconds), 4),
        "build_seconds": round(float(model.build_seconds), 4),
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        **({"network_source": source} if (source := model.population.meta.get("source")) else {}),
    }


def write_run(
    model: CommonPurposeModel,
    out_dir: str | Path,
    wall_seconds: float,
    command: Sequence[str] | str | None = None,
) -> Path:
    """Write a run's six files into `out_dir`, atomically (see the module docstring).

    Files of the same names already in `out_dir` are replaced (its `run.json` is removed first,
    so a crash part way never leaves an old `run.json` beside new data); other files are left.

    Args:
        model: a model that has been run.
        out_dir: the run directory, created (with its parents) if missing.
        wall_seconds: wall time of the run, recorded in run.json only.
        command: the command line (argv list or string), recorded in run.json.

    Returns:
        The run directory (absolute).

    Raises:
        OutputError: `out_dir` is an existing file or not writable.
        OSError: the disk refused a write (nothing that looks complete is left).
    """
    from abm.mapio import people_frame, ties_frame

    out = check_out_dir(out_dir)
    created = _makedirs(out.parent)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    made_out = False
    try:
        _remove_stale_temps(out)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        pq.write_table(_table(model.model_frame()), tmp / MODEL_FILE, **PARQUET_OPTIONS)
        pq.write_table(_table(model.groups_frame()), tmp / GROUPS_FILE, **PARQUET_OPTIONS)
        pq.write_table(_table(people_frame(model)), tmp / PEOPLE_FILE, **PARQUET_OPTIONS)
        pq.write_table(_table(ties_frame(model)), tmp / TIES_FILE, **PARQUET_OPTIONS)
        for name in (MODEL_FILE, GROUPS_FILE, PEOPLE_FILE, TIES_FILE):
            _fsync_file(tmp / name)
        _write_bytes(tmp / CONFIG_FILE, model.config.to_yaml().encode("utf-8"))
        meta = _meta(model, wall_seconds, command)
        meta["files"] = {
            name: {"sha256": _sha256(tmp / name), "bytes": (tmp / name).stat().st_size} for name in DATA_FILES
        }
        _write_bytes(tmp / META_FILE, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
        _fsync_dir(tmp)
        with _sigint_deferred():
            if not out.exists():
                out.mkdir()
                made_out = True
                _fsync_dir(out.parent)
            with contextlib.suppress(FileNotFoundError):
                (out / META_FILE).unlink()
            for name in DATA_FILES:
                os.replace(tmp / name, out / name)
            _fsync_dir(out)
            os.replace(tmp / META_FILE, out / META_FILE)
            _fsync_dir(out)
        tmp.rmdir()
        _fsync_dir(out.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if made_out and not (out / META_FILE).exists():
            shutil.rmtree(out, ignore_errors=True)
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty
        raise
    return out


def read_run(run_dir: str | Path) -> RunData:
    """Read a run written by `write_run`.

    Args:
        run_dir: the run directory.

    Returns:
        RunData with the model, groups, people and ties frames, the config (plain data) and run.json.

    Raises:
        FileNotFoundError: no `run.json` (not a run directory, or an incomplete run).
    """
    path = Path(run_dir)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(f"{path}: no {META_FILE} (not a run directory, or the run did not finish)")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    config = yaml.safe_load((path / CONFIG_FILE).read_text(encoding="utf-8"))
    return RunData(
        path=path,
        model=pq.read_table(path / MODEL_FILE).to_pandas(),
        groups=pq.read_table(path / GROUPS_FILE).to_pandas(),
        config=config,
        meta=meta,
        people=pq.read_table(path / PEOPLE_FILE).to_pandas() if (path / PEOPLE_FILE).is_file() else None,
        ties=pq.read_table(path / TIES_FILE).to_pandas() if (path / TIES_FILE).is_file() else None,
    )
