"""Sweeps: designs, reproducibility, crash safety, failures, Dask, bad sweep files, the report.

Every run here is tiny (150 residents, about 200 agents, 10 weeks) so the whole file stays fast.
The model factories below (`SlowModel`, `FlakyModel`, `CrashModel`) are what a sweep file's
`model:` key names; worker processes import them from this module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mesa
import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest

from abm import CommonPurposeModel
from abm.cli import main
from abm.sweep import (
    RUN_COLUMNS,
    SweepError,
    build_summary,
    group_rows,
    load_sweep,
    read_failures,
    read_run_meta,
    run_sweep,
)
from tests.conftest import dask_cluster, free_port

ROOT = Path(__file__).resolve().parent.parent
TINY = "set: {population.residents: 150, steps: 10}\n"
GRID = f"""
name: tiny
base: south_tees
{TINY}design: grid
parameters:
  effort.budget: [0, 40, 80, 120]
  national.structural_cap: [0.4, 0.7]
replicates: 3
seed: 11
outputs:
  final: [common_purpose_share, acting_share, inactive_share]
  series: {{every: 5, metrics: [acting_share]}}
  groups: {{kinds: [ward], metrics: [acting_share]}}
"""


# --- model factories used by sweep files (imported by worker processes) ----------------------------------


class SlowModel(CommonPurposeModel):
    """The real model, plus a pause per run: gives a sweep time to be killed part way."""

    def run(self, *args, **kwargs):
        time.sleep(0.15)
        return super().run(*args, **kwargs)


class FlakyModel(CommonPurposeModel):
    """Raises for effort.budget == 40 while the file named by $ABM_TEST_FAIL_FILE exists."""

    def run(self, *args, **kwargs):
        marker = os.environ.get("ABM_TEST_FAIL_FILE")
        if marker and Path(marker).exists() and self.config.effort.budget == 40:
            raise RuntimeError("deliberate test failure at budget 40")
        return super().run(*args, **kwargs)


class CrashModel(CommonPurposeModel):
    """Kills its worker process outright for effort.budget == 40 while $ABM_TEST_FAIL_FILE exists."""

    def run(self, *args, **kwargs):
        marker = os.environ.get("ABM_TEST_FAIL_FILE")
        if marker and Path(marker).exists() and self.config.effort.budget == 40:
            os._exit(17)
        return super().run(*args, **kwargs)


# --- helpers ---------------------------------------------------------------------------------------------


def write(tmp: Path, text: str, name: str = "sweep.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def quiet(_: str) -> None:
    pass


def summary(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "summary.parquet")


def assert_complete(out: Path) -> None:
    """Every planned run has exactly one run file and one summary row per plan row; no temp files."""
    plan = pd.read_parquet(out / "plan.parquet")
    files = sorted(p.stem for p in (out / "runs").glob("*.parquet"))
    assert files == sorted(plan["run_id"].unique())
    assert not list((out / "runs").glob(".*")), "temporary files left behind"
    s = summary(out)
    assert len(s) == len(plan)
    pd.testing.assert_frame_equal(
        s[["run_id", "point", "replicate", "seed"]], plan[["run_id", "point", "replicate", "seed"]]
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny grid sweep on the local process pool (2 workers)."""
    tmp = tmp_path_factory.mktemp("ref")
    out = tmp / "out"
    result = run_sweep(load_sweep(write(tmp, GRID)), out, workers=2, say=quiet)
    assert result.finished == result.unique_runs == 24 and result.failed == 0
    return out


# --- designs -----------------------------------------------------------------------------------------------


def test_grid_design_and_plan(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, GRID))
    assert len(sweep.points) == 8 and len(sweep.plan) == 24
    assert sweep.points[:3] == [(0, 0.4), (0, 0.7), (40, 0.4)]  # last parameter fastest
    assert len({r.run_id for r in sweep.plan}) == 24
    # common seeds: replicate r has the same seed at every point
    seeds = {(r.point, r.replicate): r.seed for r in sweep.plan}
    assert all(seeds[(p, r)] == seeds[(0, r)] for p in range(8) for r in range(3))
    assert len({seeds[(0, r)] for r in range(3)}) == 3
    # more replicates keep the earlier runs' ids (a sweep can be extended and resumed)
    more = load_sweep(write(tmp_path, GRID.replace("replicates: 3", "replicates: 5"), "more.yaml"))
    assert {r.run_id for r in sweep.plan} < {r.run_id for r in more.plan}
    # independent seeds differ across points; a different base changes every id
    indep = load_sweep(write(tmp_path, GRID + "common_seeds: false\n", "indep.yaml"))
    assert len({r.seed for r in indep.plan}) == 24
    other = load_sweep(write(tmp_path, GRID.replace("residents: 150", "residents: 160"), "other.yaml"))
    assert not {r.run_id for r in sweep.plan} & {r.run_id for r in other.plan}
    # {low, high, num}, integer and log spacing
    spaced = GRID.replace("[0, 40, 80, 120]", "{low: 0, high: 120, num: 4}")
    assert load_sweep(write(tmp_path, spaced, "spaced.yaml")).points == sweep.points


def sampled(method: str, extra: str, params: str) -> str:
    return f"""
base: south_tees
{TINY}design: {{method: {method}, {extra}}}
parameters:
{params}
outputs: {{final: [common_purpose_share, acting_share]}}
"""


PARAMS3 = """  effort.budget: {low: 0, high: 160}
  influence.rate: {low: 0.01, high: 0.3, log: true}
  network.resident_degree: {low: 2, high: 10, integer: true}
"""


def test_latin_hypercube(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, sampled("lhs", "samples: 20, seed: 3", PARAMS3)))
    assert len(sweep.points) == 20 and sweep.units is not None
    for j in range(3):  # one sample in each of the 20 strata of every axis
        assert sorted(np.floor(sweep.units[:, j] * 20).astype(int)) == list(range(20))
    budget, rate, degree = zip(*sweep.points, strict=True)
    assert min(budget) >= 0 and max(budget) <= 160
    assert min(rate) >= 0.01 and max(rate) <= 0.3
    assert all(isinstance(d, int) and 2 <= d <= 10 for d in degree)
    again = load_sweep(write(tmp_path, sampled("lhs", "samples: 20, seed: 3", PARAMS3), "again.yaml"))
    assert again.points == sweep.points


def test_morris_design(tmp_path: Path) -> None:
    sweep = load_sweep(write(tmp_path, sampled("morris", "trajectories: 5, levels: 4", PARAMS3)))
    d = 3
    assert len(sweep.points) == 5 * (d + 1)
    u = sweep.units
    assert u is not None
    for t in range(5):  # within a trajectory each step moves exactly one parameter
        block = u[t * (d + 1) : (t + 1) * (d + 1)]
        assert all(int(np.sum(~np.isclose(block[k + 1], block[k]))) == 1 for k in range(d))
        assert set(np.round(block.ravel() * 3, 9)) <= {0.0, 1.0, 2.0, 3.0}  # 4 levels


@pytest.mark.parametrize("second_order, per", [(True, 2 * 3 + 2), (False, 3 + 2)])
def test_sobol_design(tmp_path: Path, second_order: bool, per: int) -> None:
    extra = f"samples: 16, second_order: {str(second_order).lower()}"
    sweep = load_sweep(write(tmp_path, sampled("sobol", extra, PARAMS3)))
    assert len(sweep.points) == 16 * per
    assert len(sweep.plan) == 16 * per  # one replicate


# --- running: reproducible, resumable, crash safe ---------------------------------------------------------------


def test_summary_contents(reference: Path) -> None:
    s = summary(reference)
    assert list(s.columns[:6]) == ["run_id", "point", "replicate", "seed", "effort.budget", "national.structural_cap"]
    assert {"common_purpose_share", "acting_share", "inactive_share", "ward.grangetown.acting_share"} <= set(s.columns)
    assert_complete(reference)
    run = pq.read_table(next((reference / "runs").glob("*.parquet")))
    assert tuple(run.column_names) == RUN_COLUMNS
    df = run.to_pandas().astype({"kind": str, "group_kind": str, "metric": str})
    assert set(df["kind"]) == {"final", "series"}
    assert sorted(df.loc[df["kind"] == "series", "step"].unique()) == [0, 5, 10]
    ward_final = df[(df["kind"] == "final") & (df["group_kind"] == "ward")]
    assert len(ward_final) == 5 and set(ward_final["metric"]) == {"acting_share"}
    meta = read_run_meta(next((reference / "runs").glob("*.parquet")))
    assert meta["weeks"] == 10 and set(meta["params"]) == {"effort.budget", "national.structural_cap"}
    assert meta["versions"]["numpy"] == np.__version__ and "SALib" in meta["versions"]  # per run (Dask workers)
    state = json.loads((reference / "sweep.json").read_text())
    assert state["status"] == "complete" and state["finished_runs"] == 24
    last = state["history"][-1]
    assert last["versions"]["mesa"] == mesa.__version__ and last["platform"] and last["command"]


def test_same_sweep_twice_is_identical(reference: Path, tmp_path: Path) -> None:
    """In this process (workers=0) it gives the same bytes as the pool; a rerun runs nothing."""
    out = tmp_path / "again"
    sweep = load_sweep(write(tmp_path, GRID))
    run_sweep(sweep, out, workers=0, say=quiet)
    assert (out / "summary.parquet").read_bytes() == (reference / "summary.parquet").read_bytes()
    again = run_sweep(sweep, out, workers=0, say=quiet)
    assert again.ran == 0 and again.already == 24
    assert (out / "summary.parquet").read_bytes() == (reference / "summary.parquet").read_bytes()


def test_group_rows_match_groups_frame() -> None:
    model = CommonPurposeModel(rng=3, overrides={"population.residents": 150, "steps": 4}).run()
    kinds, metrics = ["ward", "organisation"], ["acting_share", "count", "structural_alignment"]
    fast = pd.DataFrame(group_rows(model, kinds, metrics))
    slow = model.groups_frame()
    slow = slow[slow["group_kind"].isin(kinds) & slow["metric"].isin(metrics)]
    key = ["step", "group_kind", "group", "metric"]
    a = fast.astype({k: str for k in key[1:]}).sort_values(key).reset_index(drop=True)
    b = slow.astype({k: str for k in key[1:]}).sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def wait_for_runs(proc: subprocess.Popen, out: Path, n: int) -> None:
    """Wait (at most 60 s) until the sweep running in `proc` has written `n` runs to `out`."""
    deadline = time.monotonic() + 60
    while len(list((out / "runs").glob("*.parquet"))) < n:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the sweep did not start"
        time.sleep(0.02)


def test_sigkill_mid_sweep_then_resume(reference: Path, tmp_path: Path) -> None:
    """SIGKILL the driver part way; its workers exit; the rerun completes with no run lost or repeated."""
    path = write(tmp_path, GRID + "model: tests.test_sweep:SlowModel\n")
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "abm",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "2",
        "--trust-model",
        "tests",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for_runs(proc, out, 4)
        workers = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done_before = len(list((out / "runs").glob("*.parquet")))
    assert 4 <= done_before < 24, done_before
    _, alive = psutil.wait_procs(workers, timeout=10)  # orphaned workers notice and exit
    assert not alive, alive

    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert_complete(out)
    last = json.loads((out / "sweep.json").read_text())["history"][-1]
    assert last["already_finished"] >= done_before and last["ran"] == 24 - last["already_finished"]
    # Same numbers as the uninterrupted sweep (the ids differ: they include the model factory).
    a, b = summary(out).drop(columns="run_id"), summary(reference).drop(columns="run_id")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_a_background_sweep(sig: int, tmp_path: Path) -> None:
    """SIGTERM, and SIGINT even when inherited as ignored (a sweep started with `&` from a script),
    stop the sweep like Ctrl-C: exit 130, finished runs kept, status 'interrupted'."""
    path = write(tmp_path, GRID + "model: tests.test_sweep:SlowModel\n")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "abm", "sweep", str(path), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(
        [*cmd, "--trust-model", "tests"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as a non-interactive shell's `&`
    )
    try:
        wait_for_runs(proc, out, 2)
        proc.send_signal(sig)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, proc.communicate()
    state = json.loads((out / "sweep.json").read_text())
    assert state["status"] == "interrupted" and 2 <= state["finished_runs"] < 24


def test_scenario_warnings_are_said_once_not_per_run(tmp_path: Path, capsys) -> None:
    """Warnings raised while each run builds (an event after the last week, a map's fix-ups) reach
    the driver and are printed once, with how many runs gave them, not as raw Python warnings per run."""
    write(tmp_path, "extends: south_tees\nevents: [{type: funding_cut, week: 26, factor: 0.5}]\n", "late.yaml")
    text = GRID.replace("base: south_tees", "base: late.yaml").replace("replicates: 3", "replicates: 1")
    out = tmp_path / "out"
    assert main(["sweep", str(write(tmp_path, text)), "--out", str(out), "--workers", "2"]) == 0
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if "warning" in line.lower()]
    assert said == [
        "abm: warning: events.0 (funding_cut, week 26): after the run's last week (10), so it never fires (in 8 runs)"
    ], err


def test_failing_run_is_logged_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    marker = tmp_path / "fail-now"
    marker.touch()
    monkeypatch.setenv("ABM_TEST_FAIL_FILE", str(marker))
    path = write(tmp_path, GRID + "model: tests.test_sweep:FlakyModel\n")
    out = tmp_path / "out"
    args = ["sweep", str(path), "--out", str(out), "--workers", "2", "--trust-model", "tests"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "6 run(s) failed" in err and "failures.jsonl" in err
    failures = read_failures(out)
    assert len(failures) == 6  # budget 40: 2 caps x 3 replicates; every other run finished
    assert {f["params"]["effort.budget"] for f in failures} == {40}
    assert all("deliberate test failure" in f["error"] and "Traceback" in f["traceback"] for f in failures)
    assert len(summary(out)) == 18

    marker.unlink()
    assert main(args) == 0
    last = json.loads((out / "sweep.json").read_text())["history"][-1]
    assert last["ran"] == 6 and last["already_finished"] == 18
    assert read_failures(out) == []
    assert_complete(out)


def test_crashed_worker_does_not_stop_the_sweep(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that kills its worker process: the pool is restarted and the runs lost with it retried,
    then alone, so the others all finish and only the culprits (lost alone twice) fail."""
    marker = tmp_path / "crash-now"
    marker.touch()
    monkeypatch.setenv("ABM_TEST_FAIL_FILE", str(marker))
    text = GRID.replace("replicates: 3", "replicates: 1") + "model: tests.test_sweep:CrashModel\n"
    sweep = load_sweep(write(tmp_path, text), trust_models=["tests"])
    out = tmp_path / "out"
    result = run_sweep(sweep, out, workers=2, say=quiet)
    assert result.failed == 2 and result.finished == 6 and result.requeued >= 2
    failures = read_failures(out)
    assert {f["params"]["effort.budget"] for f in failures} == {40}
    assert all("worker lost" in f["error"] for f in failures)
    marker.unlink()
    again = run_sweep(sweep, out, workers=2, say=quiet)
    assert again.failed == 0 and again.finished == 8
    assert_complete(out)


def test_dask_cluster_matches_local_pool(reference: Path, tmp_path: Path) -> None:
    with dask_cluster(workers=2) as (address, _):
        out = tmp_path / "dask"
        result = run_sweep(load_sweep(write(tmp_path, GRID)), out, scheduler=address, say=quiet)
        assert result.finished == 24 and "2 worker(s)" in result.backend
        assert (out / "summary.parquet").read_bytes() == (reference / "summary.parquet").read_bytes()
        workers_used = {read_run_meta(p)["worker"] for p in (out / "runs").glob("*.parquet")}
        assert len(workers_used) == 2  # both workers took part


def test_unreachable_scheduler_writes_nothing(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    sweep = load_sweep(write(tmp_path, GRID))
    with pytest.raises(SweepError, match="cannot reach a Dask scheduler"):
        run_sweep(sweep, out, scheduler=f"tcp://127.0.0.1:{free_port()}", connect_timeout=1, say=quiet)
    assert not out.exists()


# --- bad sweep files: one line, exit 2, nothing written -------------------------------------------------------

BAD = {
    "unknown top-level key": (GRID + "replicatez: 2\n", ["unknown key 'replicatez'"]),
    "unknown key in a parameter": (
        GRID.replace("[0, 40, 80, 120]", "{low: 0, hgh: 9, num: 3}"),
        ["unknown key", "hgh"],
    ),
    "bad range": (sampled("lhs", "samples: 4", "  effort.budget: {low: 50, high: 10}\n"), ["bad range"]),
    "log range from zero": (sampled("lhs", "samples: 4", "  influence.rate: {low: 0, high: 1, log: true}\n"), ["log"]),
    "too many runs": (GRID + "max_runs: 20\n", ["24 runs", "max_runs 20"]),
    "missing base config": (GRID.replace("base: south_tees", "base: no_such_scenario.yaml"), ["not found"]),
    "not a config key": (GRID.replace("effort.budget:", "effort.budgett:"), ["effort.budgett", "effort.budget"]),
    "value outside the config's range": (
        GRID.replace("[0.4, 0.7]", "[0.4, 1.5]"),
        ["design point 1", "national.structural_cap", "1.5"],
    ),
    "range end outside the config's range": (
        sampled("lhs", "samples: 4", "  influence.rate: {low: 0.1, high: 2}\n"),
        ["high = 2", "influence.rate"],
    ),
    "sobol N not a power of two": (sampled("sobol", "samples: 12", PARAMS3), ["power of two"]),
    "whole-number setting sampled without integer": (
        sampled("lhs", "samples: 4", "  network.resident_degree: {low: 2, high: 10}\n"),
        ["network.resident_degree", "integer: true"],
    ),
    "odd morris levels": (sampled("morris", "trajectories: 4, levels: 3", PARAMS3), ["levels", "even", "try 2 or 4"]),
    "range in a grid": (GRID.replace("[0, 40, 80, 120]", "{low: 0, high: 120}"), ["a grid needs"]),
    "value list in a morris design": (sampled("morris", "trajectories: 4", "  effort.budget: [1, 2]\n"), ["range"]),
    "the seed as a parameter": (GRID.replace("effort.budget:", "seed:"), ["seed is set by the sweep"]),
    "mixed value types": (GRID.replace("[0, 40, 80, 120]", "[0, fast]"), ["mix types"]),
    "duplicate value": (GRID.replace("[0, 40, 80, 120]", "[0, 40, 40]"), ["listed twice"]),
    "unknown output metric": (GRID.replace("inactive_share]", "inactiv_share]"), ["unknown metric", "inactive_share"]),
    "unknown design": (GRID.replace("design: grid", "design: factorial"), ["design"]),
    "a section, not a setting": (GRID.replace("effort.budget:", "effort:"), ["section"]),
    "bad fixed override": (GRID.replace("steps: 10", "steps: -3"), ["base", "steps"]),
    "unknown model factory": (GRID + "model: abm.no_such_module:Model\n", ["cannot be imported"]),
    "untrusted model factory": (GRID + "model: no_such_module:Model\n", ["refused", "--trust-model no_such_module"]),
    "not a mapping": ("- just\n- a list\n", ["mapping"]),
    "empty file": ("", ["empty"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_sweep_file(case: str, tmp_path: Path, capsys) -> None:
    text, words = BAD[case]
    out = tmp_path / "out"
    assert main(["sweep", str(write(tmp_path, text)), "--out", str(out), "--workers", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("abm: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert not out.exists()


def test_cli_usage_errors(tmp_path: Path, capsys) -> None:
    path = write(tmp_path, GRID)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["sweep", str(path), "--scheduler", "nonsense"]) == 2
    assert main(["sweep", "report", str(tmp_path)]) == 2
    assert "not a sweep directory" in capsys.readouterr().err
    assert not out.exists()


# --- the report ---------------------------------------------------------------------------------------------------


def test_report_grid(reference: Path, capsys) -> None:
    assert main(["sweep", "report", str(reference)]) == 0
    page = (reference / "report" / "index.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "<script" not in page and "http" not in page
    assert (reference / "report" / "outcome_common_purpose_share.png").stat().st_size > 1000
    assert (reference / "report" / "series.png").exists()
    assert main(["sweep", "report", str(reference), "--outcome", "nope"]) == 2
    assert "outcome 'nope'" in capsys.readouterr().err


MORRIS = """
base: south_tees
set: {population.residents: 150, steps: 10}
design: {method: morris, trajectories: 4, levels: 4}
parameters:
  effort.budget: {low: 0, high: 160}
  influence.rate: {low: 0.02, high: 0.2}
  target_culture:
    {low: 0.2, high: 0.7, keys: [wards.grangetown.cultural_alignment, wards.south_bank.cultural_alignment]}
replicates: 2
outputs: {final: [mean_vision, acting_share]}
"""


def test_report_morris_and_sobol(tmp_path: Path) -> None:
    morris = load_sweep(write(tmp_path, MORRIS, "morris.yaml"))
    assert morris.keys["target_culture"] == [
        "wards.grangetown.cultural_alignment",
        "wards.south_bank.cultural_alignment",
    ]
    run_sweep(morris, tmp_path / "morris", workers=0, say=quiet)
    page = tmp_path / "morris" / "report" / "index.html"
    from abm.report import write_report

    assert write_report(tmp_path / "morris") == page
    text = page.read_text()
    assert "Morris screening" in text and "mu* 95% CI" in text and "noise floor" in text.lower()
    assert (tmp_path / "morris" / "report" / "morris_mean_vision.png").exists()
    indices = pd.read_csv(tmp_path / "morris" / "report" / "morris_mean_vision.csv")  # for papers: the figures as data
    assert list(indices.columns[:3]) == ["parameter", "mu_star", "mu_star_conf95"] and len(indices) == 3
    assert indices["mu_star"].is_monotonic_decreasing

    sobol_text = MORRIS.replace("{method: morris, trajectories: 4, levels: 4}", "{method: sobol, samples: 8}")
    sobol = load_sweep(write(tmp_path, sobol_text.replace("replicates: 2", "replicates: 1"), "sobol.yaml"))
    assert len(sobol.plan) == 8 * (2 * 3 + 2)
    run_sweep(sobol, tmp_path / "sobol", workers=0, say=quiet)
    text = write_report(tmp_path / "sobol").read_text()
    assert "Sobol indices" in text and "ST 95% CI" in text and "second-order" in text
    indices = pd.read_csv(tmp_path / "sobol" / "report" / "sobol_mean_vision.csv")
    assert {"parameter", "ST", "ST_conf95", "S1", "S1_conf95", "S2", "S2_conf95"} <= set(indices.columns)
    assert len(indices) == 3 + 3  # three parameters, then their three pairs


def test_tipping_fit_recovers_a_known_curve() -> None:
    from abm.report import fit_tipping

    rng = np.random.default_rng(1)
    x = np.repeat(np.arange(0, 161, 10.0), 6)
    y = 0.05 + 0.5 / (1 + np.exp(-(x - 80) / 9)) + rng.normal(0, 0.02, x.size)
    fit = fit_tipping(x, y)
    assert fit is not None and fit["x0_low"] < 80 < fit["x0_high"] and abs(fit["x0"] - 80) < 3
    assert fit["rise_from"] < 80 < fit["rise_to"] and fit["r2"] > 0.9
    assert fit_tipping(x, rng.normal(0, 1, x.size)) is None  # no S-curve in noise


def test_summary_rebuild_is_streaming_and_identical(reference: Path, tmp_path: Path) -> None:
    before = (reference / "summary.parquet").read_bytes()
    assert build_summary(reference) == 24
    assert (reference / "summary.parquet").read_bytes() == before


def test_mesa_batch_run_still_works() -> None:
    import mesa

    rows = mesa.batch_run(
        CommonPurposeModel,
        parameters={"effort_budget": [20, 60], "residents": 150, "steps": 5},
        rng=[1, 2],
        max_steps=5,
        number_processes=1,
        display_progress=False,
    )
    assert len(rows) == 4 * 1 or len(rows) == 4  # one row per run at the last step (period -1)
    assert {r["effort_budget"] for r in rows} == {20, 60} and all(r["Step"] == 5 for r in rows)
    assert all(0.0 <= r["acting_share"] <= 1.0 for r in rows)


def test_fewer_workers_when_their_runs_would_not_fit_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each config is checked alone when loaded; K workers hold K runs at once, so K is cut to what fits."""
    sweep = load_sweep(write(tmp_path, GRID.replace("replicates: 3", "replicates: 1")))
    assert sweep.peak_bytes > 0
    limit_mb = 1.5 * sweep.peak_bytes / 2**20  # one run fits, two do not
    monkeypatch.setenv("ABM_MEMORY_LIMIT_MB", f"{limit_mb:.3f}")
    said: list[str] = []
    result = run_sweep(sweep, tmp_path / "out", workers=2, say=said.append)
    assert result.failed == 0 and result.finished == len(sweep.plan)
    notes = [line for line in said if "workers would each need" in line]
    assert len(notes) == 1 and "using 1 worker" in notes[0], said
