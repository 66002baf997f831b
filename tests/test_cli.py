"""The `abm` command line: outputs, reproducibility, one-line errors that write nothing, Ctrl-C."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import networkx as nx
import pandas as pd
import pytest
import yaml

import abm.io
import abm.model
from abm.cli import main
from abm.config import load_config

SMALL = ["--set", "population.residents=200", "--steps", "5"]
ABM = Path(sys.executable).parent / "abm"
DATA = ("model.parquet", "groups.parquet", "people.parquet", "ties.parquet", "config.yaml")
MODEL_COLUMNS = {
    "step",
    "mean_vision",
    "mean_value",
    "acting_share",
    "common_purpose_share",
    "embedded_processes",
    "inactive_share",
}


def run_small(out: Path, seed: int = 1, *extra: str) -> int:
    return main(["run", "south_tees", "--seed", str(seed), "--out", str(out), *SMALL, *extra])


@pytest.fixture(scope="module")
def seed1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "seed1"
    assert run_small(out) == 0
    return out


def assert_one_line_error(err: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("abm: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, err)


# --- outputs -----------------------------------------------------------------------------------


def test_run_writes_the_four_files(seed1: Path) -> None:
    assert sorted(p.name for p in seed1.iterdir()) == sorted([*DATA, "run.json"])
    model = pd.read_parquet(seed1 / "model.parquet")
    assert set(model.columns) >= MODEL_COLUMNS
    assert model["step"].tolist() == list(range(6))
    counts = ["step", "ties", *(c for c in model.columns if c.startswith("stage_"))]
    assert all(model[c].dtype == "int64" for c in counts)  # counts are whole numbers, not floats
    assert all(model[c].dtype == "float64" for c in model.columns if c not in counts)
    groups = pd.read_parquet(seed1 / "groups.parquet")
    assert list(groups.columns) == ["step", "group_kind", "group", "metric", "value"]
    assert set(groups["group_kind"]) == {"role", "ward", "community", "organisation"}
    for g in ("gp", "housing_officer", "resident", "commissioner", "leader"):
        assert g in set(groups.loc[groups["group_kind"] == "role", "group"])
    for g in ("grangetown", "south_bank", "brambles_and_thorntree", "north_ormesby"):
        assert g in set(groups.loc[groups["group_kind"] == "ward", "group"])
    assert not list(seed1.parent.glob(".*tmp*"))


def test_run_json_records_seed_versions_and_hash(seed1: Path) -> None:
    meta = json.loads((seed1 / "run.json").read_text())
    assert meta["seed"] == 1
    assert len(meta["config_hash"]) == 16
    assert meta["steps"] == 5 and meta["agents"] > 200 and meta["ties"] > 0
    for pkg in (
        "common-purpose",
        "mesa",
        "numpy",
        "scipy",
        "numba",
        "pandas",
        "networkx",
        "pyarrow",
        "pydantic",
        "python",
    ):
        assert meta["versions"][pkg]
    assert meta["wall_seconds"] >= 0 and meta["build_seconds"] >= 0
    assert meta["timestamp_utc"].endswith("+00:00")
    assert meta["command"].startswith("abm run south_tees")
    run = abm.io.read_run(seed1)
    assert len(run.model) == 6 and run.config["seed"] == 1 and run.meta == meta


def test_same_seed_gives_identical_bytes(seed1: Path, tmp_path: Path) -> None:
    assert run_small(tmp_path / "again") == 0
    for name in DATA:
        assert (seed1 / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_config_yaml_repeats_the_run(seed1: Path, tmp_path: Path) -> None:
    assert main(["run", str(seed1 / "config.yaml"), "--out", str(tmp_path / "rerun")]) == 0
    for name in DATA:
        assert (seed1 / name).read_bytes() == (tmp_path / "rerun" / name).read_bytes(), name


def test_different_seed_gives_different_outputs(seed1: Path, tmp_path: Path) -> None:
    assert run_small(tmp_path / "seed2", seed=2) == 0
    for name in ("model.parquet", "groups.parquet"):
        assert (seed1 / name).read_bytes() != (tmp_path / "seed2" / name).read_bytes(), name
    meta1 = json.loads((seed1 / "run.json").read_text())
    meta2 = json.loads((tmp_path / "seed2" / "run.json").read_text())
    assert meta1["config_hash"] == meta2["config_hash"]  # the hash leaves out the seed


def test_default_out_dir_and_final_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["run", "south_tees", "--seed", "7", *SMALL]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and str(Path("runs") / "south_tees-seed7") in out[0]
    assert (tmp_path / "runs" / "south_tees-seed7" / "run.json").is_file()


def test_rerun_into_existing_dir_replaces_files(seed1: Path, tmp_path: Path) -> None:
    out = tmp_path / "twice"
    assert run_small(out, seed=3) == 0
    assert run_small(out) == 0
    for name in DATA:
        assert (seed1 / name).read_bytes() == (out / name).read_bytes(), name


def test_run_json_keeps_the_event_log(seed1: Path) -> None:
    events = json.loads((seed1 / "run.json").read_text())["events"]
    model = abm.model.CommonPurposeModel(load_config(seed1 / "config.yaml"), rng=1).run()
    assert events == model.events_log and events  # people start acting within 5 weeks
    assert all(set(e) == {"week", "text"} and isinstance(e["week"], int) and e["text"] for e in events)


def test_summary_line_says_1_week(tmp_path: Path, capsys) -> None:
    argv = ["run", "south_tees", "--seed", "1", "--steps", "1", "--set", "population.residents=200"]
    assert main([*argv, "--out", str(tmp_path / "one")]) == 0
    line = capsys.readouterr().out
    assert ": 1 week, " in line and "weeks" not in line


# --- an existing --out ---------------------------------------------------------------------------


def test_rerun_into_a_run_dir_says_it_replaced_it(tmp_path: Path, capsys) -> None:
    out = tmp_path / "twice"
    assert run_small(out, seed=3) == 0
    (out / "notes.txt").write_text("mine")
    assert "note" not in capsys.readouterr().err
    assert run_small(out) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"abm: note: replaced the earlier run in {out} (seed 3, written ")
    assert json.loads((out / "run.json").read_text())["seed"] == 1
    assert (out / "notes.txt").read_text() == "mine"


def test_out_holding_other_files_is_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    (out / "model.parquet").write_bytes(b"not ours")
    assert run_small(out) == 2
    assert_one_line_error(capsys.readouterr().err, f"--out {out}", "thesis.docx", "no run.json", "another --out")
    assert sorted(p.name for p in out.iterdir()) == ["model.parquet", "thesis.docx"]
    assert (out / "model.parquet").read_bytes() == b"not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temp dir either


def test_out_that_is_empty_or_an_unfinished_run_is_used(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert run_small(tmp_path / "empty") == 0
    (tmp_path / "unfinished").mkdir()
    (tmp_path / "unfinished" / "model.parquet").write_bytes(b"half")  # killed before run.json
    assert run_small(tmp_path / "unfinished") == 0
    assert (tmp_path / "unfinished" / "run.json").is_file()


@pytest.mark.parametrize("command", [["run", "south_tees", *SMALL], ["sweep", "configs/sweeps/demo.yaml"]])
@pytest.mark.parametrize("out", ["", " "])
def test_empty_out_is_an_error(command: list[str], out: str, tmp_path: Path, monkeypatch, capsys) -> None:
    root = Path(__file__).resolve().parent.parent
    command = [str(root / c) if c.startswith("configs/") else c for c in command]
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", out]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out", "must name a directory")
    assert list(tmp_path.iterdir()) == []


def test_run_help_gives_both_default_dirs_and_the_out_rules(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no wrapping inside the names
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "runs/<config-stem>-seed<S>" in text and "runs/<config-stem>-<map-stem>-seed<S> with --network" in text
    assert "an earlier run there is replaced" in text and "no run (no run.json) is refused" in text


def test_network_export_help_says_its_seed_is_0_not_fresh(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "1000")
    assert main(["network", "export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: the config's, else 0" in text and "unlike 'abm run', which draws a fresh seed" in text


# --- a run pins its map ----------------------------------------------------------------------------


def _karate(path: Path, drop: int = 0) -> str:
    """Write Zachary's karate club (less `drop` ties) as GraphML; return its SHA-256."""
    g = nx.karate_club_graph()
    g.remove_edges_from(list(g.edges)[:drop])
    nx.write_graphml(g, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _map_run(config: str, out: Path, *extra: str) -> int:
    return main(["run", config, "--out", str(out), *extra])


def test_config_yaml_pins_the_map_and_refuses_a_changed_one(tmp_path: Path, capsys) -> None:
    old = _karate(tmp_path / "k.graphml")
    first = tmp_path / "first"
    assert _map_run("south_tees", first, "--network", str(tmp_path / "k.graphml"), "--seed", "2", "--steps", "2") == 0
    saved = str(first / "config.yaml")
    assert yaml.safe_load(Path(saved).read_text())["network"]["source_sha256"] == old
    assert json.loads((first / "run.json").read_text())["network_source"]["sha256"] == old
    # the same map: the rerun repeats the run byte for byte, config hash included
    assert _map_run(saved, tmp_path / "again") == 0
    for name in DATA:
        assert (first / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    hashes = [json.loads((d / "run.json").read_text())["config_hash"] for d in (first, tmp_path / "again")]
    assert hashes[0] == hashes[1]
    # the map edited since: one line, exit 2, nothing written
    new = _karate(tmp_path / "k.graphml", drop=1)
    capsys.readouterr()
    assert _map_run(saved, tmp_path / "changed") == 2
    assert_one_line_error(
        capsys.readouterr().err,
        "changed since this config was written",
        old[:12],
        new[:12],
        "remove network.source_sha256 to run with the map as it is now",
    )
    assert not (tmp_path / "changed").exists()
    # without the key it runs on the map as it is now, and pins that
    assert _map_run(saved, tmp_path / "now", "--set", "network.source_sha256=null") == 0
    assert yaml.safe_load((tmp_path / "now" / "config.yaml").read_text())["network"]["source_sha256"] == new


def test_network_option_replaces_the_pinned_map(tmp_path: Path) -> None:
    _karate(tmp_path / "k.graphml")
    other = _karate(tmp_path / "other.graphml", drop=2)
    assert _map_run("south_tees", tmp_path / "first", "--network", str(tmp_path / "k.graphml"), "--steps", "1") == 0
    saved = str(tmp_path / "first" / "config.yaml")
    assert _map_run(saved, tmp_path / "second", "--network", str(tmp_path / "other.graphml")) == 0
    assert yaml.safe_load((tmp_path / "second" / "config.yaml").read_text())["network"]["source_sha256"] == other


# --- errors: one line, exit 2, nothing written ------------------------------------------------------

BAD_FILES = {
    "empty.yaml": b"",
    "binary.yaml": b"\x00\x01\x02\x03binary\x00",
    "latin1.yaml": b"name: caf\xe9\n",
    "malformed.yaml": b"name: [unclosed\nsteps: 3\n",
    "python_tag.yaml": b"!!python/object/apply:os.system ['touch PWNED']\n",
    "nested_tag.yaml": b"name: !!python/object/apply:os.system ['touch PWNED']\n",
    "list.yaml": b"- a\n- b\n",
}

BAD_ARGS = {
    "unknown key": (["south_tees", "--set", "effort.budgett=3"], "effort.budgett"),
    "out of range": (["south_tees", "--set", "effort.budget=-1"], "effort.budget"),
    "wrong type": (["south_tees", "--set", "effort.budget=abc"], "effort.budget"),
    "nan": (["south_tees", "--set", "effort.budget=.nan"], "finite"),
    "inf": (["south_tees", "--set", "effort.budget=.inf"], "finite"),
    "missing file": (["no_such_scenario.yaml"], "not found"),
    "set without =": (["south_tees", "--set", "effort.budget"], "dotted.key=value"),
    "set with empty key": (["south_tees", "--set", "=3"], "dotted.key=value"),
    "negative steps": (["south_tees", "--steps", "-1"], "--steps"),
    "zero steps": (["south_tees", "--steps", "0"], "--steps"),
    "steps not a number": (["south_tees", "--steps", "ten"], "--steps"),
    "negative seed": (["south_tees", "--seed", "-5"], "--seed"),
    "unknown option": (["south_tees", "--bogus"], "--bogus"),
    "no config": ([], "CONFIG"),
}


def _assert_nothing_written(where: Path) -> None:
    assert sorted(p.name for p in where.iterdir() if not p.name.endswith(".yaml")) == []


@pytest.mark.parametrize("case", sorted(BAD_ARGS))
def test_bad_arguments(case: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    args, word = BAD_ARGS[case]
    assert main(["run", *args, "--out", str(tmp_path / "out")]) == 2
    assert_one_line_error(capsys.readouterr().err, word)
    _assert_nothing_written(tmp_path)


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_config_files(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).write_bytes(BAD_FILES[name])
    assert main(["run", name]) == 2
    assert_one_line_error(capsys.readouterr().err, name)
    _assert_nothing_written(tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_directory_as_config(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    assert main(["run", "adir"]) == 2
    assert_one_line_error(capsys.readouterr().err, "directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir"]


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_out_is_an_existing_file(where: str, tmp_path: Path, capsys) -> None:
    (tmp_path / "taken").write_text("x")
    out = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "run"
    assert main(["run", "south_tees", "--out", str(out), *SMALL]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_out_on_a_system_file_system(capsys) -> None:
    """/proc reports no free space and refuses files (even root's): that is said, not 'disk full'."""
    assert main(["run", "south_tees", "--out", "/proc/abm_run", *SMALL]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, "system file system")
    assert "disk full" not in err


def test_write_refused_for_another_reason(tmp_path: Path, monkeypatch, capsys) -> None:
    """A write refused other than for room (a read-only mount, permissions): one line, nothing left."""

    def refuse(path: Path, data: bytes) -> None:
        raise PermissionError(1, "Operation not permitted", str(path))

    monkeypatch.setattr(abm.io, "_write_bytes", refuse)
    assert main(["run", "south_tees", "--out", str(tmp_path / "run"), *SMALL]) == 2
    assert_one_line_error(capsys.readouterr().err, "Operation not permitted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        ([], "command"),
        (["bogus"], "bogus"),
        (["bench", "--agents", "5"], "--agents"),
        (["bench", "--degree", "nan"], ""),
        (["bench", "--agents", "100", "--degree", "500"], "--degree 500"),
    ],
)
def test_usage_errors_are_one_line(argv: list[str], word: str, capsys) -> None:
    assert main(argv) == 2
    assert_one_line_error(capsys.readouterr().err, word)


def test_help_exits_zero(capsys) -> None:
    assert main(["run", "--help"]) == 0
    assert "--set" in capsys.readouterr().out


def test_unexpected_failure_is_one_line_exit_1(tmp_path: Path, monkeypatch, capsys) -> None:
    def boom(self, *args, **kwargs):
        raise RuntimeError("engine\nexploded")

    monkeypatch.setattr(abm.model.CommonPurposeModel, "run", boom)
    monkeypatch.delenv("ABM_DEBUG", raising=False)
    assert run_small(tmp_path / "out") == 1
    assert_one_line_error(capsys.readouterr().err, "RuntimeError", "exploded")
    assert not (tmp_path / "out").exists()


# --- Ctrl-C ------------------------------------------------------------------------------------------


def test_interrupt_during_run_writes_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(abm.model.CommonPurposeModel, "run", interrupted)
    assert run_small(tmp_path / "a" / "out") == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted: nothing written" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_interrupt_while_writing_leaves_nothing(tmp_path: Path, monkeypatch, capsys) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(abm.io, "_meta", interrupted)  # after the Parquet files are in the temp dir
    assert run_small(tmp_path / "a" / "b" / "out") == 130
    assert "interrupted: nothing written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no temp dir, no half run, no new parents


def test_sigint_real_signal(tmp_path: Path) -> None:
    """A real Ctrl-C while the progress bar (stderr is a terminal) is running: exit 130."""
    out = tmp_path / "out"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # tqdm draws nothing at width 0
    cmd = [str(ABM), "run", "south_tees", "--seed", "1", "--steps", "100000", "--set", "population.residents=200"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path
    )
    os.close(slave)
    seen = b""

    def drain(until: bytes, timeout: float) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while until not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    return

    try:
        drain(b"week", 60)  # the progress bar is up: the run has started
        assert b"week" in seen, seen
        proc.send_signal(signal.SIGINT)
        # keep reading while it stops: a full terminal buffer would block its last words (and it)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            drain(b"nothing written", 0.5)
        assert proc.wait(timeout=5) == 130
        drain(b"nothing written", 5)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"interrupted: nothing written" in seen
    assert b"Traceback" not in seen
    assert list(tmp_path.iterdir()) == []


# --- other commands --------------------------------------------------------------------------------


def test_bench_prints_one_json_line(capsys) -> None:
    assert main(["bench", "--agents", "2000", "--degree", "8", "--steps", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    keys = {"agents", "edges", "steps", "build_s", "seconds_per_step", "agent_steps_per_s", "peak_rss_mb"}
    assert keys <= set(result)
    assert 1800 <= result["agents"] <= 2300 and result["steps"] == 3
    assert 8 * 0.85 <= 2 * result["edges"] / result["agents"] <= 8 * 1.15


def test_describe_does_not_run(capsys) -> None:
    assert main(["describe", "south_tees", "--set", "population.residents=200"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Each week (one step), in this order:")
    assert "agents" in out and "ties" in out and "resident 200" in out
    assert out.rstrip().endswith("events: none")


def test_describe_lists_the_events_and_says_which_never_fire(capsys) -> None:
    late = "events=[{type: funding_cut, week: 300, factor: 0.5}, {type: leader_leaves, week: 20}]"
    assert main(["describe", "south_tees", "--set", "population.residents=200", "--set", late]) == 0
    captured = capsys.readouterr()
    line = captured.out.rstrip().splitlines()[-1]
    assert line.startswith("events: week 20 leader_leaves (count=1, role=leader, who=most_connected); week 300")
    assert line.endswith("funding_cut (factor=0.5) (after the last week: never fires)")
    assert "abm: warning: events.0 (funding_cut, week 300): after the run's last week (208)" in captured.err


def test_presets_in_process(capsys) -> None:
    assert main(["presets"]) == 0
    assert "south_tees" in capsys.readouterr().out.split()


def test_python_m_abm_presets() -> None:
    proc = subprocess.run([sys.executable, "-m", "abm", "presets"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "south_tees" in proc.stdout.split()


def test_console_script_run_matches_in_process(seed1: Path, tmp_path: Path) -> None:
    cmd = [str(ABM), "run", "south_tees", "--seed", "1", "--out", str(tmp_path / "cli"), *SMALL]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    assert len(proc.stdout.strip().splitlines()) == 1
    for name in DATA:  # another process (other hash seed) gives the same bytes
        assert (seed1 / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_console_script_error_is_one_line(tmp_path: Path) -> None:
    cmd = [str(ABM), "run", "south_tees", "--set", "effort.budgett=3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert proc.returncode == 2
    assert_one_line_error(proc.stderr, "effort.budgett")
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_dirs_of_dead_runs_are_removed(tmp_path: Path) -> None:
    pid = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".out.tmp-{pid}"
    stale.mkdir()
    (stale / "model.parquet").write_bytes(b"half")
    assert run_small(tmp_path / "out") == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
