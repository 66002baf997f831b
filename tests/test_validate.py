"""abm.validate: the analytic references, the engine's docking runs, the tables and `abm validate --quick`.

The analytic numbers are those of Watts (2002), Gleeson and Cahalane (2007), Newman (2002) and
DeGroot (1974) as recomputed in the project's domain notes. The quick suite (docking + P1-P9)
takes about two minutes on two cores, so it is marked slow; everything else runs in seconds.
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest

from abm import validate
from abm.validate import (
    DEGROOT,
    WATTS,
    Check,
    degroot_consensus,
    markdown_table,
    sir_final_size,
    text_table,
    watts_cascade_size,
    watts_trigger_probability,
    watts_window,
    wilson,
)

# --- analytic references -------------------------------------------------------------------------


def test_watts_window_phi_018():
    lo, hi = watts_window(0.18)
    assert lo == pytest.approx(1.0207, abs=1e-3)
    assert hi == pytest.approx(5.7647, abs=1e-3)


def test_watts_window_depends_on_phi_only_through_floor_of_its_inverse():
    assert watts_window(0.18) == watts_window(0.20)  # both have K* = 5
    lo, hi = watts_window(0.22)
    assert (lo, hi) == pytest.approx((1.1141, 3.8631), abs=1e-3)
    lo, hi = watts_window(0.10)
    assert (lo, hi) == pytest.approx((1.0000, 13.659), abs=1e-3)
    assert watts_window(0.26) is None  # K* = 3: z exp(-z)(1 + z) peaks below 1


def test_watts_window_boundary_solves_the_condition():
    from scipy import stats

    for z in watts_window(0.18):
        assert z * stats.poisson.cdf(3, z) == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(
    "z, p_trigger, size",
    [(1.5, 0.549, 0.580), (2.0, 0.754, 0.797), (3.0, 0.8735, 0.9405), (4.0, 0.865, 0.980), (5.0, 0.695, 0.993)],
)
def test_watts_trigger_probability_and_cascade_size(z, p_trigger, size):
    assert watts_trigger_probability(z, 0.18) == pytest.approx(p_trigger, abs=1.5e-3)
    assert watts_cascade_size(z, 0.18, 1e-4) == pytest.approx(size, abs=1.5e-3)


@pytest.mark.parametrize("z", [0.5, 0.9, 6.0, 8.0])
def test_no_trigger_outside_the_window(z):
    assert watts_trigger_probability(z, 0.18) == pytest.approx(0.0, abs=1e-9)


def test_sir_final_size():
    assert sir_final_size(2.0) == pytest.approx(0.7968, abs=1e-4)
    assert sir_final_size(1.2) == pytest.approx(0.3137, abs=1e-4)
    assert sir_final_size(3.0) == pytest.approx(0.9405, abs=1e-4)
    assert sir_final_size(0.8) == 0.0
    assert sir_final_size(1.0) == 0.0
    for zt in (1.1, 1.5, 2.5, 4.0):
        s = sir_final_size(zt)
        assert s == pytest.approx(1.0 - math.exp(-zt * s), abs=1e-12)


def test_degroot_consensus_star_and_components():
    # star: centre 0 holds 1, three leaves 0 -> pi = (0.4, 0.2, 0.2, 0.2), consensus 0.4
    limit, label = degroot_consensus(np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([1.0, 0, 0, 0]))
    assert limit == pytest.approx([0.4] * 4)
    # two components: a pair (0, 1) and an isolated node 2
    limit, label = degroot_consensus(np.array([0]), np.array([1]), np.array([1.0, 0.0, 0.7]))
    assert limit == pytest.approx([0.5, 0.5, 0.7])
    assert label[0] == label[1] != label[2]
    # self-weight 0: pi proportional to degree
    limit, _ = degroot_consensus(np.array([0, 0, 0]), np.array([1, 2, 3]), np.array([1.0, 0, 0, 0]), 0.0)
    assert limit == pytest.approx([0.5] * 4)


def test_wilson_interval():
    lo, hi = wilson(0, 60)
    assert lo == 0.0 and hi == pytest.approx(0.0602, abs=1e-3)
    lo, hi = wilson(50, 100)
    assert (lo, hi) == pytest.approx((0.4038, 0.5962), abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)


# --- the engine, through the docking configs (same code path as every scenario) --------------------


def test_degroot_engine_run_matches_the_stationary_weighted_mean():
    result = validate._degroot((DEGROOT, (), 1))
    assert result["error"] <= validate.DEGROOT_TOL
    assert result["spread"] <= validate.DEGROOT_TOL
    assert result["plain_mean_gap"] > 10 * validate.DEGROOT_TOL  # the check can tell the two means apart


def test_spreading_run_comes_to_rest_and_reads_adopted_share():
    inside = [validate._spread((WATTS, (("network.mean_degree", 3.0),), seed)) for seed in range(3)]
    assert all(r["rest"] == 1.0 and r["steps"] < 100 for r in inside)
    assert max(r["share"] for r in inside) > 0.9  # z = 3 sits well inside the window
    outside = [validate._spread((WATTS, (("network.mean_degree", 8.0),), seed)) for seed in range(3)]
    assert max(r["share"] for r in outside) < validate.GLOBAL


def test_run_to_rest_gives_the_same_final_state_as_run():
    from abm.model import CommonPurposeModel

    overrides = {"network.mean_degree": 2.0, "network.agents": 2000}
    a = CommonPurposeModel(WATTS, rng=4, overrides=overrides)
    assert validate.run_to_rest(a)
    b = CommonPurposeModel(WATTS, rng=4, overrides=overrides).run()
    assert np.array_equal(a.state.vision, b.state.vision)


# --- tables and the command line ------------------------------------------------------------------


def _checks() -> list[Check]:
    return [
        Check("docking", "a | b", "x", "0.5", "within 0.1", True),
        Check("patterns", "P0: a long claim " * 5, "y", "0.1", "CI > 0", False),
    ]


def test_markdown_table_escapes_pipes_and_marks_results():
    md = markdown_table(_checks())
    lines = md.splitlines()
    assert lines[0] == "| check | expected | simulated | tolerance | pass |"
    assert "a \\| b" in lines[2] and lines[2].endswith("**PASS** |")
    assert lines[3].endswith("**FAIL** |")


def test_text_table_wraps_cells():
    text = text_table(_checks())
    assert text.splitlines()[0].split() == ["CHECK", "EXPECTED", "SIMULATED", "TOLERANCE", "PASS"]
    assert "FAIL" in text and "PASS" in text
    assert max(len(line) for line in text.splitlines()) <= sum((34, 30, 36, 28, 4)) + 8


def test_add_parser_gives_the_validate_command():
    parser = argparse.ArgumentParser(prog="abm")
    validate.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["validate", "--quick", "--workers", "2"])
    assert (args.command, args.quick, args.out, args.workers) == ("validate", True, "validation", 2)
    args = parser.parse_args(["validate"])
    assert (args.quick, args.workers) == (False, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["validate", "--workers", "0"])


def test_out_that_is_a_file_is_a_usage_error_before_running(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("x")
    assert validate.main(["--quick", "--out", str(target)]) == validate.EXIT_USAGE
    assert "is an existing file" in capsys.readouterr().err


@pytest.mark.slow
def test_quick_suite_passes_and_writes_table_and_figures(tmp_path, capsys):
    out = tmp_path / "validation"
    status = validate.main(["--quick", "--out", str(out), "--workers", "2"])
    printed = capsys.readouterr().out
    assert "CHECK" in printed and "checks pass" in printed
    payload = json.loads((out / "results.json").read_text())
    failed = [c["name"] + ": " + c["simulated"] for c in payload["checks"] if not c["passed"]]
    assert status == 0, failed
    assert payload["passed"] and not failed
    names = {c["name"].split(":")[0] for c in payload["checks"]}
    assert {"Watts 2002", "SIR", "Centola-Macy"} <= names
    assert {f"P{i}" for i in range(1, 10)} <= names
    md = (out / "results.md").read_text()
    assert "| check | expected | simulated | tolerance | pass |" in md
    for png in ("watts2002.png", "degroot.png", "sir_final_size.png", "centola_macy.png", "p9_tipping.png"):
        assert (out / png).stat().st_size > 10_000
        assert f"]({png})" in md
