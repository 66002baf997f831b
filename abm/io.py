"""Writing and reading a run's outputs: crash-safe, and byte-identical for the same config and seed.

A run directory holds six files:

- `model.parquet`: one row per week (`CommonPurposeModel.model_frame()`),
- `groups.parquet`: the long table step, group_kind, group, metric, value (`groups_frame()`),
- `people.parquet`: one row per person at the end (`abm.mapio.people_frame`: role, ward,
  organisation, community, vision, value, acting, stage, first-passage weeks, map id and label),
- `ties.parquet`: every tie at the end (source, target as person indices; trust; kind),
- `config.yaml`: the resolved configuration, seed included (`abm run DIR/config.yaml` repeats it);
  a run on a map also records the map's SHA-256 as `network.source_sha256`, so a rerun refuses
  a map edited since,
- `run.json`: seed, config hash, sizes, package versions, platform, timings, command line, each
  file's SHA-256, and the event log (`events`: week and plain-language text of each event fired
  and of people starting to act).

Everything, `run.json` included, is written into a temporary sibling directory
(`.DIR.tmp-<pid>`) and synced to disk, then renamed to DIR in one step: a run killed at any
moment (SIGINT, SIGKILL, power cut) leaves either no DIR or a complete one. When DIR already
holds a run, the two directories are swapped atomically (Linux `renameat2(RENAME_EXCHANGE)`):
DIR is always the complete earlier run or the complete new one, never a mix; other files in DIR
are carried over. A directory with `run.json` is complete (`run.json` records each file's
SHA-256); a leftover `.DIR.tmp-<pid>` of a dead process is removed by the next run there. A full
disk raises `DiskFullError` (one line: what failed, the space needed and free) and writes
nothing. Wall time and timestamp live only in `run.json`; the Parquet files carry no timestamps
or library metadata that could vary, so two runs with the same config and seed give the same
bytes.

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
import ctypes
import errno
import functools
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import sys
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
    "numba": "numba",  # compiles the step's kernels (abm/kernels.py)
    "pandas": "pandas",
    "networkx": "networkx",
    "pyarrow": "pyarrow",
    "pydantic": "pydantic",
}
#: Parquet settings: fixed compression and no pandas metadata (it records the pandas version).
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "use_dictionary": True}


#: errno values meaning the file system (or the user's quota) is full.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class OutputError(ValueError):
    """The output directory cannot be used (an existing file, not writable, ...)."""


class DiskFullError(OutputError):
    """The disk (or quota) filled up while writing; the message says what was kept and what to do."""


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether `exc` is a write refused because the file system or quota is full."""
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def free_bytes(path: str | Path) -> int | None:
    """Bytes free to this user on the file system holding `path` (or its nearest existing parent).

    None when unknown, and for pseudo file systems that report no size at all (`/proc`, `/sys`):
    their 0 free bytes say nothing about room, so the write itself reports what is wrong.
    """
    try:
        usage = shutil.disk_usage(_nearest_existing(Path(path).absolute()))
    except OSError:
        return None
    return usage.free if usage.total > 0 else None


def format_bytes(n: float | None) -> str:
    """A size for people: 850 bytes, 12.3 KB, 4.5 MB, 1.2 GB (powers of 1000); '?' if unknown."""
    if n is None:
        return "?"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} bytes"


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
    with contextlib.suppress(OSError):
        if shutil.disk_usage(base).total == 0:  # /proc, /sys: no files can be made there, even by root
            raise OutputError(
                f"--out {out_dir}: '{base}' is a system file system, not storage (choose a directory on a disk)"
            )
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"--out {out_dir}: the directory is not writable (choose one you can write to)")
    return out


def previous_run(out_dir: str | Path) -> dict[str, Any] | None:
    """The earlier run in `out_dir` that a new run there would replace, refusing anything else.

    A re-run into the same directory is normal; a directory of other files is most likely a
    mistyped --out, and the run's files would be mixed in among them.

    Args:
        out_dir: the run directory (missing, empty, or holding an earlier run are all fine).

    Returns:
        The earlier run's run.json (`{}` if unreadable), or None when there is none.

    Raises:
        OutputError: `out_dir` holds entries other than a run's files and no run.json.
    """
    out = Path(out_dir)
    if not out.is_dir():
        return None
    meta = out / META_FILE
    if meta.is_file():
        try:
            return dict(json.loads(meta.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return {}
    try:
        # Run files without run.json are an unfinished earlier run: replacing them is fine.
        others = sorted(name for name in os.listdir(out) if name not in DATA_FILES)
    except OSError as exc:
        raise OutputError(f"--out {out_dir}: cannot list the directory ({exc.strerror or exc})") from None
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3:,} more" if len(others) > 3 else "")
        raise OutputError(
            f"--out {out_dir}: the directory is not empty ({shown}) and holds no earlier run (no {META_FILE}); "
            "choose another --out: a new or empty directory, or an earlier run's"
        )
    return None


def _table(df: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    return table.replace_schema_metadata(None)


def _parquet_bytes(df: pd.DataFrame) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(_table(df), sink, **PARQUET_OPTIONS)
    return sink.getvalue().to_pybytes()


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


def _makedirs(path: Path, created: list[Path]) -> None:
    """Create `path` and its missing parents, appending each one made to `created` (outermost first)."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        d.mkdir()
        created.append(d)


#: renameat2 flag: swap two paths atomically (Linux 3.15+; ext4, xfs, btrfs, tmpfs, ...).
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@functools.cache
def _renameat2() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2  # glibc 2.28+, musl 1.2.2+
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func


def _exchange(a: Path, b: Path) -> bool:
    """Swap directories `a` and `b` in one atomic step; False where the system cannot."""
    func = _renameat2()
    if func is None:
        return False
    if func(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False  # an old kernel, or a file system (NFS, some FUSE) without the flag
    raise OSError(err, os.strerror(err), str(b))


def _link_extras(out: Path, tmp: Path) -> bool:
    """Hard-link the entries of `out` that are not run files into `tmp` (kept across the swap)."""
    ours = {*DATA_FILES, META_FILE}
    try:
        for entry in os.scandir(out):
            if entry.name in ours:
                continue
            src, dst = Path(entry.path), tmp / entry.name
            if entry.is_symlink():
                os.symlink(os.readlink(src), dst)
            elif entry.is_dir():
                shutil.copytree(src, dst, symlinks=True, copy_function=os.link)
            else:
                os.link(src, dst)
    except OSError as exc:
        if is_disk_full(exc):
            raise
        return False  # no hard links here (some network or FUSE file systems): replace file by file
    return True


def _replace_files(tmp: Path, out: Path) -> None:
    """Fallback: move the files one by one, run.json removed first and put back last."""
    with contextlib.suppress(FileNotFoundError):
        (out / META_FILE).unlink()
    _fsync_dir(out)
    for name in DATA_FILES:
        os.replace(tmp / name, out / name)
    _fsync_dir(out)
    os.replace(tmp / META_FILE, out / META_FILE)
    _fsync_dir(out)
    shutil.rmtree(tmp)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Make the complete run in `tmp` appear as `out`, in one step wherever the system allows."""
    # Where a directory cannot be renamed or swapped (a mount point, EBUSY/EXDEV; no renameat2),
    # fall back to replacing file by file.
    fallback = (errno.ENOTEMPTY, errno.EEXIST, errno.EBUSY, errno.EXDEV, errno.ENOTDIR)
    try:
        os.rename(tmp, out)  # `out` missing (or an empty directory): atomic
        _fsync_dir(out.parent)
        return
    except OSError as exc:
        if exc.errno not in fallback or not out.is_dir():
            raise
    if (out / META_FILE).is_file() and _link_extras(out, tmp):
        try:
            swapped = _exchange(tmp, out)
        except OSError as exc:
            if exc.errno not in fallback:
                raise
            swapped = False
        if swapped:
            _fsync_dir(out.parent)
            shutil.rmtree(tmp)  # the earlier run, now under the temporary name
            return
    for name in os.listdir(tmp):  # undo _link_extras (if it ran) before the fallback
        if name not in DATA_FILES and name != META_FILE:
            target = tmp / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink()
    _replace_files(tmp, out)


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


def _config_yaml(model: CommonPurposeModel) -> str:
    """The run's resolved config, with the map's SHA-256 as `network.source_sha256` when a map was used.

    config.yaml holds only the map's path: pinning its hash makes a rerun refuse an edited map
    instead of quietly giving other results.
    """
    cfg = model.config
    sha = (model.population.meta.get("source") or {}).get("sha256")
    if sha and cfg.network.source:
        cfg = cfg.model_copy(deep=True)
        cfg.network.source_sha256 = sha  # validated on assignment
    return cfg.to_yaml()


def write_run(
    model: CommonPurposeModel,
    out_dir: str | Path,
    wall_seconds: float,
    command: Sequence[str] | str | None = None,
) -> Path:
    """Write a run's six files into `out_dir`, atomically (see the module docstring).

    A new `out_dir` appears complete in one rename. An `out_dir` holding an earlier run is
    swapped for the new one in one step (other files in it are hard-linked across); where the
    system cannot swap directories, or `out_dir` holds no complete run, files of the same names
    are replaced one by one, `run.json` removed first and written last. Either way a directory
    with `run.json` is always one complete run.

    Args:
        model: a model that has been run.
        out_dir: the run directory, created (with its parents) if missing.
        wall_seconds: wall time of the run, recorded in run.json only.
        command: the command line (argv list or string), recorded in run.json.

    Returns:
        The run directory (absolute).

    Raises:
        OutputError: `out_dir` is an existing file or not writable.
        DiskFullError: not enough space (checked first, and on any refused write); nothing is
            left behind, and an earlier run in `out_dir` is untouched.
        OSError: another refusal by the disk (nothing that looks complete is left).
    """
    from abm.mapio import people_frame, ties_frame

    given = check_out_dir(out_dir)
    out = given.resolve() if given.is_symlink() else given  # write where the link points
    # Serialise everything first: the size is known before the disk is touched, and nothing
    # half-serialised ever reaches it.
    files = {
        MODEL_FILE: _parquet_bytes(model.model_frame()),
        GROUPS_FILE: _parquet_bytes(model.groups_frame()),
        PEOPLE_FILE: _parquet_bytes(people_frame(model)),
        TIES_FILE: _parquet_bytes(ties_frame(model)),
        CONFIG_FILE: _config_yaml(model).encode("utf-8"),
    }
    meta = _meta(model, wall_seconds, command)
    meta["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)} for name, data in files.items()
    }
    # The event log is small (a line or two a week), so it rides in run.json rather than a new file.
    meta["events"] = [{"week": int(e["week"]), "text": str(e["text"])} for e in model.events_log]
    files[META_FILE] = (json.dumps(meta, indent=2) + "\n").encode("utf-8")
    needed = sum(len(data) for data in files.values())
    had_run = (out / META_FILE).is_file()
    free = free_bytes(out)
    if free is not None and free < needed + 64 * 1024:  # a margin for blocks and directory entries
        raise DiskFullError(_disk_full_message(out_dir, "the run's files", needed, free, had_run))
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    created: list[Path] = []
    writing = "the run directory"
    try:
        _makedirs(out.parent, created)
        _remove_stale_temps(out)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        for name, data in files.items():
            writing = name
            _write_bytes(tmp / name, data)
        _fsync_dir(tmp)
        writing = "the run directory"
        with _sigint_deferred():
            _move_into_place(tmp, out)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()  # only if still empty
        if is_disk_full(exc):
            raise DiskFullError(
                _disk_full_message(out_dir, writing, needed, free_bytes(out), had_run, os.strerror(exc.errno))
            ) from None
        if isinstance(exc, OSError):  # refused for another reason (permissions, a read-only mount, ...)
            kept = "; the earlier run there is untouched" if had_run else ""
            raise OutputError(
                f"--out {out_dir}: could not write {writing} ({exc.strerror or exc}); nothing was written{kept}"
            ) from None
        raise
    return given


def _disk_full_message(
    out_dir: str | Path, what: str, needed: int, free: int | None, had_run: bool, reason: str | None = None
) -> str:
    kept = "; the earlier run there is untouched" if had_run else ""
    return (
        f"--out {out_dir}: disk full ({reason or 'not enough free space'}) writing {what}: "
        f"the run needs {format_bytes(needed)}, {format_bytes(free)} free there; nothing was written{kept}; "
        "free some space (or choose another --out) and run again"
    )


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
