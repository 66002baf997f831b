"""Nothing lost: `abm run` and `abm sweep` killed at any moment (SIGKILL, of the driver or of a
worker) or stopped by a full disk keep every finished result and leave nothing that looks
finished but is not.

Kills are real SIGKILLs of real processes. The full-disk tests use a real, small tmpfs where this
machine allows mounting one (root), and otherwise skip; the `injected` tests always run: they
make one file write fail with ENOSPC part way (half the bytes written, then the error), at the
`open` the code under test calls.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

import abm.io
import abm.sweep
from abm import CommonPurposeModel
from abm.cli import main
from abm.io import DATA_FILES, META_FILE, read_run
from abm.sweep import load_sweep, read_failures, read_run_meta, run_sweep
from tests.conftest import dask_cluster

ROOT = Path(__file__).resolve().parent.parent
ABM = Path(sys.executable).parent / "abm"
SMALL = ["--steps", "5", "--set", "population.residents=200"]
SPEC = """
name: lost
base: south_tees
set: {population.residents: 150, steps: 10}
model: tests.test_nothing_lost:SlowModel
design: grid
parameters:
  effort.budget: [0, 40, 80, 120]
  national.structural_cap: [0.4, 0.7]
replicates: 3
seed: 11
outputs:
  final: [common_purpose_share, acting_share]
  series: {every: 5, metrics: [acting_share]}
"""
RUNS = 24
TEMP = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


class SlowModel(CommonPurposeModel):
    """The real model plus a pause per run, so a sweep can be hit while it is part way."""

    def run(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)
        return super().run(*args, **kwargs)


def quiet(_: str) -> None:
    pass


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- checks ----------------------------------------------------------------------------------------------


def assert_absent_or_complete(out: Path, others: tuple[str, ...] = ()) -> str | None:
    """`out` is missing, or one complete run: every file, each matching run.json's SHA-256.

    Returns the run's seed (None if there is no run directory). Anything else beside `out`
    must be a temporary directory named `.NAME.tmp-PID` (or be named in `others`).
    """
    for other in out.parent.iterdir():
        if other != out and other.name not in others:
            assert TEMP.match(other.name) and TEMP.match(other.name)["name"] == out.name, other
    if not out.exists():
        return None
    assert (out / META_FILE).is_file(), f"{out} has no run.json: {sorted(p.name for p in out.iterdir())}"
    meta = json.loads((out / META_FILE).read_text())
    for name in DATA_FILES:
        assert sha(out / name) == meta["files"][name]["sha256"], name
    read_run(out)  # every file parses
    return str(meta["seed"])


def assert_sweep_complete(out: Path, reference: Path) -> None:
    """Every planned run exactly once, no temporary files, and the reference's summary, byte for byte."""
    plan = pd.read_parquet(out / "plan.parquet")
    files = sorted(p.stem for p in (out / "runs").glob("*.parquet"))
    assert files == sorted(plan["run_id"].unique())
    assert not [p for d in (out, out / "runs") for p in d.glob(".*.tmp-*")], "temporary files left"
    assert read_failures(out) == []
    for p in (out / "runs").glob("*.parquet"):
        assert_same_run(p, reference / "runs" / p.name)
    assert (out / "summary.parquet").read_bytes() == (reference / "summary.parquet").read_bytes()


def assert_same_run(a: Path, b: Path) -> None:
    """Two run files hold the same results (their metadata also records timings and worker ids)."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.replace_schema_metadata(None).equals(tb.replace_schema_metadata(None)), a.name
    ma, mb = read_run_meta(a), read_run_meta(b)
    assert {k: ma[k] for k in ("run_id", "params", "seed", "finals")} == {
        k: mb[k] for k in ("run_id", "params", "seed", "finals")
    }


def run_files(out: Path) -> list[Path]:
    return sorted((out / "runs").glob("*.parquet")) if (out / "runs").is_dir() else []


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"exited ({proc.returncode}) before {what}: {proc.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=30)


# --- abm run: SIGKILL at every file-system step --------------------------------------------------------------

# Runs `abm` with an audit hook that logs each file-system change made under PARENT (write opens,
# mkdir, rename, link, scandir, rmtree, ...) and SIGKILLs the process just before step KILL_AT.
HOOKED = textwrap.dedent(
    """
    import os, signal, sys
    log, parent, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    EVENTS = {"open", "os.rename", "os.mkdir", "os.rmdir", "os.remove", "os.link", "os.symlink",
              "shutil.rmtree", "os.scandir", "os.listdir"}
    seen = 0

    def hook(event, args):
        global seen
        if event not in EVENTS or parent not in repr(args):
            return
        if event == "open" and not (args[1] and ("w" in args[1] or "a" in args[1]) or
                                    args[1] is None and args[2] & (os.O_WRONLY | os.O_RDWR)):
            return
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        seen += 1
        os.write(fd, (event + "\\n").encode())

    sys.addaudithook(hook)
    from abm.cli import main
    sys.exit(main(sys.argv[4:]))
    """
)


def hooked_run(tmp_path: Path, parent: Path, kill_at: int, seed: int, tag: str) -> subprocess.Popen:
    script = tmp_path / "hooked.py"
    if not script.exists():
        script.write_text(HOOKED)
    log = tmp_path / f"{tag}.log"
    cmd = [sys.executable, str(script), str(log), str(parent), str(kill_at)]
    cmd += ["run", "south_tees", "--seed", str(seed), *SMALL, "--out", str(parent / "out")]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run_batches(procs: list[tuple[Any, Callable[[], subprocess.Popen]]], at_once: int = 3) -> list[tuple[Any, int]]:
    """Start the processes a few at a time (2 cores); return (key, exit status) for each."""
    done = []
    for i in range(0, len(procs), at_once):
        started = [(key, start()) for key, start in procs[i : i + at_once]]
        for key, proc in started:
            proc.communicate(timeout=120)
            done.append((key, proc.returncode))
    return done


@pytest.mark.parametrize("existing", [False, True], ids=["new-dir", "over-an-earlier-run"])
def test_abm_run_sigkill_at_every_step(tmp_path: Path, existing: bool) -> None:
    """Killed before each file-system step of writing, `abm run` leaves no run dir or a complete one.

    Over an earlier run (seed 3) the directory is always that complete run or the complete new
    one (seed 1), never a mix, and a file of the user's in it survives. The next run cleans the
    dead runs' temporary directories.
    """
    earlier = tmp_path / "earlier"
    assert main(["run", "south_tees", "--seed", "3", *SMALL, "--out", str(earlier / "out")]) == 0
    (earlier / "out" / "notes.txt").write_text("mine")

    def prepare(parent: Path) -> Path:
        parent.mkdir()
        if existing:
            shutil.copytree(earlier / "out", parent / "out")
        return parent

    # Calibrate: the same command, not killed, logs every step.
    calib = prepare(tmp_path / "calib")
    proc = hooked_run(tmp_path, calib, -1, 1, "calib")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    steps = (tmp_path / "calib.log").read_text().split()
    assert "os.rename" in steps and len(steps) >= 8, steps
    new = {name: sha(calib / "out" / name) for name in DATA_FILES}

    def start(k: int) -> Callable[[], subprocess.Popen]:
        return lambda: hooked_run(tmp_path, prepare(tmp_path / f"k{k}"), k, 1, f"k{k}")

    results = run_batches([(k, start(k)) for k in range(len(steps))])
    outcomes = {}
    for k, status in results:
        assert status == -signal.SIGKILL, (k, status)
        parent = tmp_path / f"k{k}"
        seed = assert_absent_or_complete(parent / "out")
        outcomes[k] = seed
        if existing:
            assert seed in ("3", "1"), (k, seed)
            assert (parent / "out" / "notes.txt").read_text() == "mine", k
        if seed == "1":
            assert {name: sha(parent / "out" / name) for name in DATA_FILES} == new
    if existing:  # killed before the swap: the earlier run; after it: the new one
        assert set(outcomes.values()) == {"3", "1"}, outcomes
    else:  # the run directory appears at the last step, whole
        assert set(outcomes.values()) == {None}, outcomes
    # The next run in one of them cleans the dead runs' temporaries and writes the run.
    parent = tmp_path / f"k{len(steps) // 2}"
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(parent / "out")]) == 0
    assert sorted(p.name for p in parent.iterdir()) == ["out"]
    assert assert_absent_or_complete(parent / "out") == "1"
    assert {name: sha(parent / "out" / name) for name in DATA_FILES} == new


def test_abm_run_sigkill_at_random_moments(tmp_path: Path) -> None:
    """The real console script killed at random times (start up, run, write): never a partial run."""
    cmd = [str(ABM), "run", "south_tees", "--seed", "1", *SMALL]
    t0 = time.monotonic()
    assert subprocess.run([*cmd, "--out", str(tmp_path / "timing" / "out")], check=False).returncode == 0
    took = time.monotonic() - t0
    rng = random.Random(7)
    for i in range(4):
        parent = tmp_path / f"r{i}"
        parent.mkdir()
        proc = subprocess.Popen([*cmd, "--out", str(parent / "out")], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0.5, 1.0) * took)
        kill(proc)
        assert_absent_or_complete(parent / "out")


# --- sweeps: SIGKILL of a worker, of the driver while it writes the summary -----------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sweep, undisturbed (local pool, 2 workers)."""
    tmp = tmp_path_factory.mktemp("reference")
    (tmp / "lost.yaml").write_text(SPEC)
    result = run_sweep(load_sweep(tmp / "lost.yaml", trust_models=["tests"]), tmp / "out", workers=2, say=quiet)
    assert result.finished == result.unique_runs == RUNS and result.failed == 0
    return tmp / "out"


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "lost.yaml"
    path.write_text(SPEC)
    return path


def sweep_cmd(spec: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "abm", "sweep", str(spec), "--out", str(out), "--trust-model", "tests", *extra]


def pool_workers(driver: int) -> list[psutil.Process]:
    """The driver's pool workers: the children of its fork server (not the server, nor the resource tracker)."""
    out = []
    try:
        for child in psutil.Process(driver).children():
            cmdline = " ".join(child.cmdline())
            if "forkserver" in cmdline:
                out += child.children()
            elif "resource_tracker" not in cmdline:
                out.append(child)  # spawn start method: workers are the driver's children
    except psutil.NoSuchProcess:  # a worker came or went while we looked: look again
        return []
    return out


def test_sigkill_of_a_worker(reference: Path, spec: Path, tmp_path: Path) -> None:
    """Kill -9 a pool worker from outside, twice: the sweep finishes every run exactly once, same summary."""
    out = tmp_path / "out"
    proc = subprocess.Popen(sweep_cmd(spec, out, "--workers", "2"), cwd=ROOT, stdout=subprocess.PIPE, text=True)
    killed = []
    try:
        for at_least in (3, 10):
            wait_for(lambda n=at_least: len(run_files(out)) >= n and bool(pool_workers(proc.pid)), proc, "runs")
            victim = pool_workers(proc.pid)[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed.append(victim.pid)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        kill(proc)
    assert proc.returncode == 0, stdout
    assert len(run_files(out)) == RUNS and "24 of 24 runs finished" in stdout
    assert_sweep_complete(out, reference)
    last = json.loads((out / "sweep.json").read_text())["history"][-1]
    assert last["status"] == "complete" and last["ran"] == RUNS and last["failed"] == 0
    assert last["requeued"] >= 2  # the runs in flight on each killed worker's pool were run again
    assert not (out / "failures.jsonl").exists()
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in killed)


# Runs `abm sweep` with summary.parquet written slowly: four rows a batch, and after the first
# batch it touches MARKER and sleeps (the test SIGKILLs it then).
SLOW_SUMMARY = textwrap.dedent(
    """
    import pathlib, sys, time
    import pyarrow.parquet as pq
    import abm.sweep
    abm.sweep.SUMMARY_BATCH = 4
    marker = pathlib.Path(sys.argv[1])
    write_table, build_summary = pq.ParquetWriter.write_table, abm.sweep.build_summary

    def slow(self, *args, **kwargs):
        write_table(self, *args, **kwargs)
        marker.touch()
        time.sleep(120)

    def slow_summary(out):
        pq.ParquetWriter.write_table = slow  # only now: plan.parquet is written the same way
        return build_summary(out)

    abm.sweep.build_summary = slow_summary
    if __name__ == "__main__":  # pool workers import this script too
        from abm.cli import main
        sys.exit(main(sys.argv[2:]))
    """
)


def test_driver_sigkill_while_writing_the_summary(reference: Path, spec: Path, tmp_path: Path) -> None:
    """Kill -9 the driver part way through summary.parquet: no summary, or the earlier one intact."""
    script = tmp_path / "slow_summary.py"
    script.write_text(SLOW_SUMMARY)
    out = tmp_path / "out"
    marker = tmp_path / "summary-started"

    def killed_in_summary() -> None:
        marker.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            str(script),
            str(marker),
            "sweep",
            str(spec),
            "--out",
            str(out),
            "--workers",
            "2",
            "--trust-model",
            "tests",
        ]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the sweep's model is in tests/
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(marker.exists, proc, "the summary write")
            assert list(out.glob(".summary.parquet.tmp-*")), "no temporary summary being written"
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        finally:
            kill(proc)

    # 1. The first sweep, killed in its summary: every run is kept, there is no summary.
    killed_in_summary()
    assert len(run_files(out)) == RUNS
    assert not (out / "summary.parquet").exists()
    assert json.loads((out / "sweep.json").read_text())["status"] == "running"  # honest: it never finished
    rerun = subprocess.run(sweep_cmd(spec, out, "--workers", "2"), cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "nothing left to run" in rerun.stdout
    assert_sweep_complete(out, reference)

    # 2. A complete sweep run again (summary rebuilt), killed part way: the earlier summary is intact.
    before = (out / "summary.parquet").read_bytes()
    killed_in_summary()
    assert (out / "summary.parquet").read_bytes() == before
    rerun = subprocess.run(sweep_cmd(spec, out, "--workers", "0"), cwd=ROOT, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert_sweep_complete(out, reference)


# --- full disk -------------------------------------------------------------------------------------------


def on_disk(path: Path) -> int:
    """Bytes a file tree takes on disk (whole blocks)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_blocks * 512 for p in files)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 8 MB tmpfs mounted at tmp_path/disk (needs root); skipped where mounting is not allowed."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root and mount(8); the injected ENOSPC tests cover this")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected ENOSPC tests cover this")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill the file system at `disk` to leave about `leave` bytes free; returns the filler file."""
    filler = disk / "filler"
    free = shutil.disk_usage(disk).free
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(free - leave, 0))
    return filler


def assert_disk_full_message(err: str, *words: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("abm: error: ") and "disk full" in line and "Traceback" not in err, err
    for w in words:
        assert w in line, (w, line)
    return line


def test_sweep_fills_a_real_disk_then_resumes(reference: Path, small_disk: Path, tmp_path: Path) -> None:
    """A sweep on a tmpfs that fills part way: exit 2, one line, finished runs intact; resumes once freed."""
    spec = tmp_path / "lost.yaml"
    spec.write_text(SPEC)
    out = small_disk / "out"
    fixed = sum(on_disk(reference / n) for n in ("sweep.yaml", "base.yaml", "plan.parquet", "sweep.json"))
    runs = on_disk(reference / "runs")
    filler = fill(small_disk, fixed + runs // 2)
    full = subprocess.run(sweep_cmd(spec, out, "--workers", "2"), cwd=ROOT, capture_output=True, text=True)
    assert full.returncode == 2, (full.stdout, full.stderr)
    line = assert_disk_full_message(
        full.stderr, "No space left on device", "finished runs are kept", "rerun the same command to resume"
    )
    kept = run_files(out)
    assert 1 <= len(kept) < RUNS, line
    assert f"{len(kept)} of 24 runs finished" in line and "more (" in line  # the space still needed
    for p in kept:  # every kept run is whole: the reference's results
        assert_same_run(p, reference / "runs" / p.name)
    assert not list((out / "runs").glob(".*")), "a half-written run file was left"

    filler.unlink()  # free the space, then the same command finishes the sweep
    again = subprocess.run(sweep_cmd(spec, out, "--workers", "2"), cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    last = json.loads((out / "sweep.json").read_text())["history"][-1]
    assert last["already_finished"] == len(kept) and last["ran"] == RUNS - len(kept)
    assert_sweep_complete(out, reference)


def test_abm_run_on_a_full_disk(small_disk: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`abm run` on a full tmpfs: exit 2, one line with the space needed, nothing written, earlier run intact."""
    out = small_disk / "out"
    assert main(["run", "south_tees", "--seed", "3", *SMALL, "--out", str(out)]) == 0
    capsys.readouterr()
    earlier = {p.name: sha(p) for p in out.iterdir()}
    filler = fill(small_disk, 16 * 1024)
    # Checked before writing: the run needs more than is free.
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(out)]) == 2
    assert_disk_full_message(capsys.readouterr().err, "the run needs", "free there", "earlier run there is untouched")
    # Not caught by the check (free space unknown): the disk itself refuses a write part way.
    monkeypatch.setattr(abm.io, "free_bytes", lambda path: None)
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(out)]) == 2
    assert_disk_full_message(capsys.readouterr().err, "No space left on device", "nothing was written")
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(small_disk / "new")]) == 2
    capsys.readouterr()
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "out"]  # no temporaries, no new dir
    assert {p.name: sha(p) for p in out.iterdir()} == earlier
    filler.unlink()
    monkeypatch.undo()
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(out)]) == 0
    assert assert_absent_or_complete(out) == "1"


class DiskFillsAt:
    """An `open` for a module under test: the Nth write-open matching `match` gets a file whose
    first write puts half the bytes on disk and then raises ENOSPC, as a full disk does."""

    def __init__(self, n: int, match: Callable[[str], bool]):
        self.left, self.match = n, match
        self.torn: list[str] = []

    def __call__(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        fh = builtins.open(file, mode, *args, **kwargs)  # noqa: SIM115 - the caller closes it
        if ("w" in mode or "a" in mode) and self.match(str(file)):
            self.left -= 1
            if self.left == 0:
                self.torn.append(str(file))
                return _TornFile(fh)
        return fh


class _TornFile:
    def __init__(self, fh: Any):
        self.fh = fh

    def write(self, data: Any) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fh, name)

    def __enter__(self) -> _TornFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()


def test_sweep_disk_full_injected(reference: Path, spec: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """The 9th run file write fails half way with ENOSPC: exit 2, one line, 8 runs kept, clean resume."""
    out = tmp_path / "out"
    full = DiskFillsAt(9, lambda f: f"{os.sep}runs{os.sep}" in f)
    monkeypatch.setattr(abm.sweep, "open", full, raising=False)
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--trust-model", "tests"]) == 2
    line = assert_disk_full_message(
        capsys.readouterr().err, "writing runs/", "8 of 24 runs finished", "finished runs are kept", "to resume"
    )
    assert "the 16 run(s) left need about" in line
    assert len(full.torn) == 1 and not Path(full.torn[0]).exists()  # the torn temporary file is gone
    assert len(run_files(out)) == 8 and not list((out / "runs").glob(".*"))
    for p in run_files(out):
        assert_same_run(p, reference / "runs" / p.name)
    assert json.loads((out / "sweep.json").read_text())["status"] == "aborted"

    monkeypatch.undo()
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--trust-model", "tests"]) == 0
    assert_sweep_complete(out, reference)


def test_sweep_disk_full_at_the_end_injected(reference: Path, spec: Path, tmp_path: Path, capsys) -> None:
    """Every run finished, then the disk fills writing the final sweep.json: runs kept, one line, exit 2."""
    out = tmp_path / "out"
    assert run_sweep(load_sweep(spec, trust_models=["tests"]), out, workers=2, say=quiet).finished == RUNS
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(abm.sweep, "open", DiskFillsAt(2, lambda f: "sweep.json" in f), raising=False)  # the final state
        assert main(["sweep", str(spec), "--out", str(out), "--workers", "0", "--trust-model", "tests"]) == 2
    assert_disk_full_message(capsys.readouterr().err, "writing sweep.json", "24 of 24 runs finished")
    assert json.loads((out / "sweep.json").read_text())["status"] == "running"  # the earlier state, whole
    assert not list(out.glob(".*.tmp-*"))
    assert_sweep_complete(out, reference)


def test_abm_run_disk_full_injected(tmp_path: Path, monkeypatch, capsys) -> None:
    """The 3rd file of `abm run` fails half way with ENOSPC: exit 2, one line, nothing written or left."""
    out = tmp_path / "a" / "out"
    full = DiskFillsAt(3, lambda f: ".out.tmp-" in f)
    monkeypatch.setattr(abm.io, "open", full, raising=False)
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(out)]) == 2
    assert_disk_full_message(capsys.readouterr().err, "writing people.parquet", "nothing was written")
    assert list(tmp_path.iterdir()) == []  # no temp dir, no run dir, no new parents
    # Over an earlier run: that run is untouched.
    monkeypatch.undo()
    assert main(["run", "south_tees", "--seed", "3", *SMALL, "--out", str(out)]) == 0
    earlier = {p.name: sha(p) for p in out.iterdir()}
    monkeypatch.setattr(abm.io, "open", DiskFillsAt(6, lambda f: ".out.tmp-" in f), raising=False)  # run.json
    assert main(["run", "south_tees", "--seed", "1", *SMALL, "--out", str(out)]) == 2
    assert_disk_full_message(capsys.readouterr().err, "writing run.json", "earlier run there is untouched")
    assert {p.name: sha(p) for p in out.iterdir()} == earlier
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]


def test_torn_failure_log_line_is_skipped(tmp_path: Path) -> None:
    """A failures.jsonl whose last line was torn (full disk, kill) does not swallow the next record."""
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / "failures.jsonl").write_text('{"run_id": "a", "error": "x"}\n{"run_id": "b", "err')
    log = abm.sweep._FailureLog(out / "failures.jsonl")
    log.write({"run_id": "c", "error": "y"})
    log.close()
    assert [r["run_id"] for r in read_failures(out)] == ["a", "c"]


def test_report_disk_full_injected(reference: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """`abm sweep report` on a full disk: exit 2, one line, no page pointing at missing figures."""
    pytest.importorskip("matplotlib")
    report = tmp_path / "report"
    monkeypatch.setattr(abm.sweep, "open", DiskFillsAt(2, lambda f: "report" in f), raising=False)
    assert main(["sweep", "report", str(reference), "--out", str(report)]) == 2
    assert_disk_full_message(capsys.readouterr().err, "the report needs about", "the sweep is untouched")
    assert not (report / "index.html").exists() and not list(report.glob(".*"))
    monkeypatch.undo()
    assert main(["sweep", "report", str(reference), "--out", str(report)]) == 0
    assert (report / "index.html").is_file()


def test_sigkill_of_a_dask_worker(reference: Path, spec: Path, tmp_path: Path) -> None:
    """Kill -9 a Dask worker process mid-sweep: Dask reruns its tasks; same runs, same summary."""
    out = tmp_path / "out"
    with dask_cluster(workers=2) as (address, procs):  # each worker under a nanny, which restarts it
        driver = subprocess.Popen(
            sweep_cmd(spec, out, "--scheduler", address), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda: len(run_files(out)) >= 4, driver, "runs")
            victim = psutil.Process(procs[1].pid).children()[0]  # the worker process under the nanny
            victim.send_signal(signal.SIGKILL)
            assert len(run_files(out)) < RUNS  # killed part way
            _, stderr = driver.communicate(timeout=180)
        finally:
            kill(driver)
        assert driver.returncode == 0, stderr
        assert_sweep_complete(out, reference)
        assert json.loads((out / "sweep.json").read_text())["history"][-1]["failed"] == 0


# --- abm run: where the output directory already exists ------------------------------------------------------


def run_small(out: Path, seed: int) -> int:
    return main(["run", "south_tees", "--seed", str(seed), *SMALL, "--out", str(out)])


def test_rerun_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    assert run_small(tmp_path / "link", 3) == 0
    assert run_small(tmp_path / "link", 1) == 0
    assert (tmp_path / "link").is_symlink() and os.readlink(tmp_path / "link") == "real"
    assert assert_absent_or_complete(tmp_path / "real", others=("link",)) == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


@pytest.mark.parametrize("swap", [True, False], ids=["swapped", "file-by-file"])
def test_rerun_keeps_other_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap: bool) -> None:
    """Over an earlier run, with or without an atomic directory swap: the new run, the user's files kept."""
    out = tmp_path / "out"
    assert run_small(out, 3) == 0
    (out / "notes.txt").write_text("mine")
    (out / "exports").mkdir()
    (out / "exports" / "net.graphml").write_text("<graphml/>")
    if not swap:  # as on a system without renameat2
        monkeypatch.setattr(abm.io, "_exchange", lambda a, b: False)
    assert run_small(out, 1) == 0
    assert assert_absent_or_complete(out) == "1"
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "exports" / "net.graphml").read_text() == "<graphml/>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_run_into_a_directory_of_other_files(tmp_path: Path, capsys) -> None:
    """A non-empty directory that holds no run: `abm run` refuses it and writes nothing;
    `write_run` (from Python) adds the run's files and leaves the others alone."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "README").write_text("hello")
    assert run_small(out, 1) == 2
    assert "choose another --out" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and [p.name for p in out.iterdir()] == ["README"]
    abm.io.write_run(CommonPurposeModel(rng=1, steps=2, residents=200).run(), out, wall_seconds=0.0)
    assert assert_absent_or_complete(out) == "1"
    assert (out / "README").read_text() == "hello"
