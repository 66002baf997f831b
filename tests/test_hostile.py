"""Hostile and broken input through the real `abm` entry point.

Every case is answered with exit status 2 and exactly one line on stderr, `abm: error: ...`,
naming the problem and what is allowed: never a traceback, never a hang, never code run from
the input, and nothing written where the run's or sweep's output would go. Cases that could
hang or exhaust memory if the guard failed (alias bombs, pipes, huge populations) run in a
subprocess with a timeout and report their own peak memory.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import abm.model
import abm.network
from abm.cli import main
from abm.config import MAX_YAML_BYTES, MAX_YAML_NODES, MEMORY_LIMIT_ENV, ConfigError, load_config

#: A small base for sweep files, so a sweep that wrongly started would finish quickly.
SWEEP = """\
name: hostile
base: {base}
set: {{population.residents: 100, steps: 2}}
design: grid
parameters:
  effort.budget: [10, 20]
replicates: 1
"""
#: A sweep of a (broken) scenario as it stands: nothing under `set` that could hide the problem.
SWEEP_OF = """\
name: hostile
base: {base}
design: grid
parameters:
  effort.budget: [10, 20]
replicates: 1
"""
#: Peak memory (MB) a refused command may reach: the interpreter with numpy, scipy, pandas and
#: pydantic loaded is about 170 MB here; expanding a YAML bomb or allocating a huge population
#: would take gigabytes.
REFUSAL_PEAK_MB = 600
#: Generous: a refusal takes about 1.5 s (mostly imports); a hang is what this catches.
TIMEOUT_S = 120
PROBE = textwrap.dedent(
    """\
    import resource, sys
    from abm.cli import main
    rc = main(sys.argv[1:])
    print("peak_mb", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
    sys.exit(rc)
    """
)


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """'Billion laughs': `levels` anchors, each a list of `width` aliases of the one before (width**levels)."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def assert_refused(rc: int, err: str, *words: str) -> None:
    """Exit status 2 and one line `abm: error: ...` containing every word (case-insensitive)."""
    lines = err.strip().splitlines()
    assert rc == 2, (rc, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("abm: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w.lower() in lines[0].lower(), (w, err)


def run_probe(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, int]:
    """`abm ARGV` in a fresh interpreter with a timeout: (exit status, stderr, peak memory in MB)."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )
    peak = [int(line.split()[1]) for line in proc.stdout.splitlines() if line.startswith("peak_mb ")]
    assert peak, proc.stdout + proc.stderr
    return proc.returncode, proc.stderr, peak[0]


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if a refused command gets as far as building a population."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built for input that should have been refused")

    monkeypatch.setattr(abm.model.CommonPurposeModel, "__init__", refuse)
    monkeypatch.setattr(abm.network, "generate", refuse)


# --- files: the same broken YAML given as a scenario (run, describe) and as a sweep file --------------

#: id -> (file content, words the error must contain). `{marker}` is replaced by a path that
#: must never be created (it would mean the input ran a command).
YAML_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "malformed": ("steps: [1, 2\nname: x\n", ("not valid YAML", "line")),
    "bad_indent": ("name: x\n  steps: 3\n", ("not valid YAML", "line 2")),
    "tab_indent": ("name: x\n\tsteps: 3\n", ("not valid YAML", "line 2")),
    "python_apply": ("!!python/object/apply:os.system ['touch {marker}']\n", ("not allowed", "plain")),
    "python_object": ("name: !!python/object/new:os.system ['touch {marker}']\n", ("not allowed",)),
    "python_name": ("name: !!python/name:os.system\n", ("!!python/name:os.system", "not allowed")),
    "binary_tag": ("name: !!binary aGVsbG8=\n", ("!!binary", "not allowed")),
    "set_tag": ("name: !!set {a, b}\n", ("!!set", "not allowed")),
    "custom_tag": ("name: !shell 'rm -rf /'\n", ("!shell", "not allowed")),
    "alias_recursive": ("name: &a [*a]\n", ("refers to itself",)),
    "duplicate_key": ("name: x\nname: y\n", ("duplicate key 'name'", "line 2")),
    "two_documents": ("name: x\n---\nname: y\n", ("single document", "another document")),
    "too_deep": ("a: " + "[" * 50_000 + "\n", ("not valid YAML",)),
    "number_too_long": ("steps: 1" + "0" * 5000 + "\n", ("too many digits",)),
    "empty": ("", ("empty",)),
    "only_comments": ("# nothing here\n\n", ("empty",)),
    "top_level_list": ("- a\n- b\n", ("must be a mapping", "list")),
    "top_level_text": ("hello\n", ("must be a mapping", "str")),
    "binary_nul": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", ("binary file",)),
    "not_utf8": (b"name: caf\xe9\nsteps: \xff\xfe\n", ("UTF-8",)),
}
FILE_COMMANDS = ("run", "describe", "sweep")


def command(cmd: str, path: Path, out: Path) -> list[str]:
    if cmd == "run":
        return ["run", str(path), "--out", str(out), "--seed", "1"]
    if cmd == "sweep":
        return ["sweep", str(path), "--out", str(out), "--workers", "0"]
    return ["describe", str(path)]


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("cmd", FILE_COMMANDS)
@pytest.mark.parametrize("case", sorted(YAML_CASES))
def test_broken_yaml_files(case: str, cmd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, words = YAML_CASES[case]
    marker = tmp_path / "hacked"
    path = tmp_path / "input.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content.replace("{marker}", str(marker)), encoding="utf-8")
    out = tmp_path / "out"
    rc = main(command(cmd, path, out))
    assert_refused(rc, capsys.readouterr().err, str(path), *words)
    assert not out.exists() and not marker.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["input.yaml"]


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("cmd", FILE_COMMANDS)
@pytest.mark.parametrize("case", ["missing", "directory", "device", "too_big"])
def test_unusable_paths(case: str, cmd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if case == "missing":
        path, words = tmp_path / "nowhere.yaml", ("not found",)
    elif case == "directory":
        path, words = tmp_path / "folder", ("is a directory",)
        path.mkdir()
    elif case == "device":
        path, words = Path("/dev/zero"), ("not a regular file",)  # endless: reading it would never stop
        if not path.exists():
            pytest.skip("no /dev/zero here")
    else:
        path, words = tmp_path / "big.yaml", ("larger than", "MB")
        with path.open("w") as f:
            f.write("name: big\n")
            f.write(("# padding" + " " * 90 + "\n") * (MAX_YAML_BYTES // 100 + 10))
    out = tmp_path / "out"
    rc = main(command(cmd, path, out))
    assert_refused(rc, capsys.readouterr().err, str(path), *words)
    assert not out.exists()


@pytest.mark.usefixtures("no_model")
def test_too_many_values(tmp_path: Path, capsys) -> None:
    """A long flat list stops the parser at the limit (about 2 s of pure-Python parsing), not at the end."""
    path = tmp_path / "long.yaml"
    path.write_text("name: x\nvalues: [" + ",".join(["1"] * (MAX_YAML_NODES + 1)) + "]\n")
    rc = main(["describe", str(path)])
    assert_refused(rc, capsys.readouterr().err, str(path), f"more than {MAX_YAML_NODES:,} values")


@pytest.mark.parametrize("cmd", FILE_COMMANDS)
def test_alias_bomb_is_refused_quickly_and_small(cmd: str, tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(), encoding="utf-8")  # 9**9 = 387 million strings once expanded
    assert path.stat().st_size < 1000
    out = tmp_path / "out"
    rc, err, peak = run_probe(command(cmd, path, out), tmp_path)
    assert_refused(rc, err, "aliases", f"{MAX_YAML_NODES:,} values")
    assert peak < REFUSAL_PEAK_MB, peak
    assert not out.exists()


def test_alias_bomb_in_a_set_value(tmp_path: Path) -> None:
    bomb = "[" + ", ".join(f"&a{i} [" + ", ".join([f"*a{i - 1}" if i else "x"] * 9) + "]" for i in range(9)) + "]"
    rc, err, peak = run_probe(["describe", "south_tees", "--set", f"name={bomb}"], tmp_path)
    assert_refused(rc, err, "--set name", "aliases")
    assert peak < REFUSAL_PEAK_MB, peak


@pytest.mark.usefixtures("no_model")
def test_long_extends_chain(tmp_path: Path, capsys) -> None:
    for i in range(1, 400):
        (tmp_path / f"c{i}.yaml").write_text(f"extends: c{i + 1}.yaml\n")
    (tmp_path / "c400.yaml").write_text("extends: south_tees\n")
    rc = main(["describe", str(tmp_path / "c1.yaml")])
    assert_refused(rc, capsys.readouterr().err, "c1.yaml", "'extends' goes more than 20 files deep")


def test_named_pipe_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    rc, err, _ = run_probe(["run", str(fifo), "--out", str(tmp_path / "out")], tmp_path)
    assert_refused(rc, err, "not a regular file")
    assert not (tmp_path / "out").exists()


def test_map_that_is_a_named_pipe_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.graphml"
    os.mkfifo(fifo)
    rc, err, _ = run_probe(["describe", "south_tees", "--network", str(fifo)], tmp_path)
    assert_refused(rc, err, "pipe.graphml", "not a regular file")


# --- scenario values: wrong types, NaN and infinity, sizes, unknown keys ------------------------

#: id -> (YAML added to `extends: south_tees`, words the error must contain).
VALUE_CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "steps_word": ("steps: nine", ("'steps' = 'nine'", "integer")),
    "steps_bool": ("steps: true", ("'steps' = True", "not true/false")),
    "steps_fraction": ("steps: 3.5", ("'steps' = 3.5", "integer")),
    "steps_list": ("steps: [1, 2]", ("'steps'", "integer")),
    "roles_list": ("roles: [gp, resident]", ("'roles'", "dictionary")),
    "events_text": ("events: soon", ("'events' = 'soon'", "list")),
    "event_unknown_type": ("events: [{type: meteor, week: 3}]", ("events.0", "'funding_cut'")),
    "staff_bool": ("organisations: {charity: {staff: {vcse_worker: yes}}}", ("vcse_worker", "not true/false")),
    "key_not_text": ("1: 2", ("'1'",)),
    "budget_nan": ("effort: {budget: .nan}", ("effort.budget", "finite")),
    "budget_inf": ("effort: {budget: .inf}", ("effort.budget", "finite")),
    "trust_minus_inf": ("network: {trust: {noise: -.inf}}", ("network.trust.noise", "finite")),
    "budget_overflow": ("effort: {budget: 1e400}", ("effort.budget", "finite")),
    "residents_negative": ("population: {residents: -5}", ("population.residents", "greater than or equal to 0")),
    "residents_huge": ("population: {residents: 1.0e300}", ("population.residents",)),
    "steps_huge": ("steps: 100000000", ("'steps'", "less than or equal to 100000")),
    "agents_over_cap": ("population: {staff_scale: 10000}", ("more than the 2,000,000 allowed",)),
    "share_above_one": ("network: {trust: {noise: 2}}", ("network.trust.noise", "less than or equal to 1")),
    "unknown_top_key": ("stepz: 3", ("unknown key 'stepz'", "did you mean 'steps'")),
    "unknown_nested_key": ("effort: {budgett: 3}", ("unknown key 'effort.budgett'",)),
    "unknown_ward": ("effort: {ward_targeting: {atlantis: 2}}", ("unknown ward 'atlantis'", "allowed")),
    "extends_missing": ("extends: nowhere.yaml", ("nowhere.yaml", "not found")),
    "extends_list": ("extends: [a, b]", ("'extends' must be a file name",)),
    "terminal_escape": ('name: "\\e[2J\\e[31mhacked"', ("'name'", "control character")),
    "escape_in_key": ('roles: {"gp\\e[0m": {level: 1}}', ("control character",)),
    "memory_erdos_renyi": (
        "network: {generator: erdos_renyi, agents: 2000000, mean_degree: 10000}",
        ("memory", "agents", "ties", "available", MEMORY_LIMIT_ENV),
    ),
    "memory_group_outputs": (
        "steps: 100000\npopulation: {staff_scale: 3000, residents: 1000}",
        ("memory", "available"),
    ),
}


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("cmd", FILE_COMMANDS)
@pytest.mark.parametrize("case", sorted(VALUE_CASES))
def test_bad_scenario_values(case: str, cmd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    extra, words = VALUE_CASES[case]
    config = tmp_path / "scenario.yaml"
    config.write_text(("" if extra.startswith("extends") else "extends: south_tees\n") + extra + "\n")
    path = config
    if cmd == "sweep":  # the same scenario as a sweep's base
        path = tmp_path / "sweep.yaml"
        path.write_text(SWEEP_OF.format(base=config))
    out = tmp_path / "out"
    rc = main(command(cmd, path, out))
    assert_refused(rc, capsys.readouterr().err, *words)
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("replicates: -1", ("replicates",)),
        ("max_runs: 1.0e300", ("max_runs",)),
        ("seed: .nan", ("seed",)),
        ("parameters: {effort.budget: {low: 0, high: .inf}}", ("effort.budget",)),
        ("parameters: {effort.budgett: [1, 2]}", ("effort.budgett",)),
        ("set: {population.residents: -1}", ("population.residents",)),
        ("stepz: 3", ("stepz",)),
        ("base: nowhere.yaml", ("nowhere.yaml", "not found")),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
@pytest.mark.usefixtures("no_model")
def test_bad_sweep_values(extra: str, words: tuple[str, ...], tmp_path: Path, capsys) -> None:
    text = SWEEP.format(base="south_tees")
    key = extra.split(":")[0]
    kept = [line for line in text.splitlines() if not line.startswith(f"{key}:")]
    if key == "parameters":
        kept = [line for line in kept if not line.startswith("  effort.budget")]
    path = tmp_path / "sweep.yaml"
    path.write_text("\n".join([*kept, extra]) + "\n")
    out = tmp_path / "out"
    rc = main(["sweep", str(path), "--out", str(out), "--workers", "0"])
    assert_refused(rc, capsys.readouterr().err, str(path), *words)
    assert not out.exists()


# --- --set values -------------------------------------------------------------------------------

SET_CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "nan": ("effort.budget=.nan", ("effort.budget", "finite")),
    "nan_word": ("effort.budget=nan", ("effort.budget", "number")),
    "inf": ("effort.budget=.inf", ("effort.budget", "finite")),
    "minus_inf": ("influence.rate=-.inf", ("influence.rate", "finite")),
    "minus_one": ("population.residents=-1", ("population.residents", "greater than or equal to 0")),
    "huge_float": ("effort.budget=1.0e300", ("effort.budget", "less than or equal to 1000000")),
    "huge_int": ("population.residents=1e300", ("population.residents", "integer")),
    "wrong_type": ("steps=nine", ("'steps' = 'nine'", "integer")),
    "bool_for_number": ("steps=true", ("'steps' = True", "not true/false")),
    "list_for_number": ("effort.budget=[1, 2]", ("effort.budget", "number")),
    "unknown_key": ("effort.budgett=3", ("unknown key 'effort.budgett'",)),
    "unknown_section": ("nothing.here=3", ("unknown key 'nothing'",)),
    "into_a_value": ("steps.weeks=3", ("'steps' is a value, not a section",)),
    "no_equals": ("effort.budget", ("--set", "expected dotted.key=value")),
    "empty_key": ("=3", ("--set", "expected dotted.key=value")),
    "empty_part": ("effort..budget=3", ("empty part",)),
    "python_tag": ("name=!!python/object/apply:os.system ['true']", ("--set name", "not allowed")),
    "recursive_alias": ("name=&a [*a]", ("--set name", "refers to itself")),
    "number_too_long": ("steps=1" + "0" * 5000, ("--set steps", "too many digits")),
    "memory": (
        "network.resident_degree=1000",
        ("memory", "available", MEMORY_LIMIT_ENV),
    ),
}


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("cmd", ["run", "describe"])
@pytest.mark.parametrize("case", sorted(SET_CASES))
def test_bad_set_values(case: str, cmd: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setting, words = SET_CASES[case]
    # memory: 1.9 million residents with 1,000 neighbours each
    extra = ["--set", "population.residents=1900000"] if case == "memory" else []
    out = tmp_path / "out"
    argv = [cmd, "south_tees", "--set", setting, *extra]
    rc = main([*argv, "--out", str(out)] if cmd == "run" else argv)
    assert_refused(rc, capsys.readouterr().err, *words)
    assert not out.exists()


# --- the memory guard -----------------------------------------------------------------------------


def test_memory_limit_from_the_environment(tmp_path: Path, capsys, monkeypatch, no_model) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "50")
    out = tmp_path / "out"
    rc = main(["run", "south_tees", "--out", str(out)])
    assert_refused(rc, capsys.readouterr().err, "the run would need about", "MB", "50 MB set by " + MEMORY_LIMIT_ENV)
    assert not out.exists()


@pytest.mark.parametrize("value", ["lots", "-5", "0", "nan", "inf"])
def test_bad_memory_limit_variable(value: str, capsys, monkeypatch, no_model) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, value)
    rc = main(["describe", "south_tees"])
    assert_refused(rc, capsys.readouterr().err, MEMORY_LIMIT_ENV, "megabytes above 0")


def test_memory_guard_acts_before_allocating(tmp_path: Path) -> None:
    """Two million agents with 10,000 ties each would need terabytes: refused at about 170 MB."""
    config = tmp_path / "huge.yaml"
    config.write_text("extends: south_tees\nnetwork: {generator: erdos_renyi, agents: 2000000, mean_degree: 10000}\n")
    rc, err, peak = run_probe(["run", str(config), "--out", str(tmp_path / "out")], tmp_path)
    assert_refused(rc, err, "TB", "available on this machine")
    assert peak < REFUSAL_PEAK_MB, peak
    assert not (tmp_path / "out").exists()


def test_bench_is_refused_before_calibrating(capsys, monkeypatch) -> None:
    """`abm bench` builds calibration networks at the asked degree: the guard comes first."""
    import abm.bench

    monkeypatch.setattr(abm.bench, "scaled_overrides", lambda *a: pytest.fail("calibrated a refused bench"))
    rc = main(["bench", "--agents", "2000000", "--degree", "1000"])
    assert_refused(rc, capsys.readouterr().err, "memory", "1,000,000,000 ties", "--agents or --degree")


def test_network_export_checks_memory_for_the_weeks_it_runs(tmp_path: Path, capsys, monkeypatch, no_model) -> None:
    """`abm network export --steps N` runs N weeks whatever the config says: the guard sees N."""
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "400")  # the default scenario needs about 230 MB for 208 weeks
    out = tmp_path / "net.graphml"
    rc = main(["network", "export", "south_tees", "--out", str(out), "--steps", "100000"])
    assert_refused(rc, capsys.readouterr().err, "group-weeks", "400 MB set by")
    assert not out.exists()


def test_memory_guard_at_model_construction(monkeypatch) -> None:
    """Every face builds through `CommonPurposeModel(config)` (the app's session too), which validates again."""
    cfg = load_config("south_tees")
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "50")
    monkeypatch.setattr(abm.network, "generate", lambda *a: pytest.fail("built a refused population"))
    with pytest.raises(ConfigError, match="more than the 50 MB set by"):
        abm.model.CommonPurposeModel(cfg, rng=1)


def test_memory_guard_lets_a_raised_limit_through(monkeypatch) -> None:
    """The override works both ways: the same config passes with a limit above its estimate."""
    huge = {"network.generator": "erdos_renyi", "network.agents": 2_000_000, "network.mean_degree": 10_000}
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(10**9))  # a petabyte
    assert load_config("south_tees", huge).network.agents == 2_000_000


# --- validate and bench arguments (they read no user files) -----------------------------------


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["validate", "--workers", "-1"], ("--workers",)),
        (["validate", "--workers", "many"], ("--workers",)),
        (["validate", "--out", "{file}"], ("--out", "existing file", "directory")),
        (["bench", "--agents", "nan"], ("--agents",)),
        (["bench", "--degree", "inf"], ("--degree", "at most 1000")),
        (["bench", "--agents", "99999999999"], ("--agents", "2,000,000")),
        (["run", "south_tees", "--steps", "-3"], ("--steps",)),
        (["run", "south_tees", "--seed", "1e300"], ("--seed", "whole number")),
    ],
    ids=lambda v: "_".join(v) if isinstance(v, list) else "",
)
def test_bad_arguments(argv: list[str], words: tuple[str, ...], tmp_path: Path, capsys, no_model) -> None:
    existing = tmp_path / "a_file"
    existing.write_text("x")
    rc = main([a.replace("{file}", str(existing)) for a in argv])
    assert_refused(rc, capsys.readouterr().err, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_good_file_still_runs(tmp_path: Path) -> None:
    """The guards refuse the cases above, not ordinary scenarios: anchors and aliases still work."""
    config = tmp_path / "ok.yaml"
    config.write_text(
        "extends: south_tees\nsteps: 2\npopulation: {residents: 150}\n"
        "activities:\n  engagement: &on {enabled: true}\n  insight: *on\n"
    )
    out = tmp_path / "out"
    assert main(["run", str(config), "--out", str(out), "--seed", "3"]) == 0
    assert json.loads((out / "run.json").read_text())["seed"] == 3


# --- no code execution from input: the sources never use the unsafe calls ---------------------------

ROOT = Path(__file__).resolve().parent.parent
#: Qualified names whose use (call or reference) runs code or unpickles objects from data.
FORBIDDEN = {
    "pickle.load": "unpickling runs code from the file",
    "pickle.loads": "unpickling runs code from the data",
    "pickle.Unpickler": "unpickling runs code from the file",
    "dill.load": "unpickling runs code from the file",
    "dill.loads": "unpickling runs code from the data",
    "marshal.load": "marshal loads code objects",
    "marshal.loads": "marshal loads code objects",
    "shelve.open": "shelve unpickles",
    "builtins.eval": "eval runs text as code",
    "builtins.exec": "exec runs text as code",
    "yaml.load": "yaml.load can build any object (use yaml.safe_load or abm.config.parse_yaml)",
    "yaml.load_all": "yaml.load_all can build any object",
    "yaml.full_load": "yaml.full_load builds Python objects",
    "yaml.full_load_all": "yaml.full_load_all builds Python objects",
    "yaml.unsafe_load": "yaml.unsafe_load runs code",
    "yaml.unsafe_load_all": "yaml.unsafe_load_all runs code",
    "yaml.Loader": "the full yaml.Loader builds any object",
    "yaml.FullLoader": "yaml.FullLoader builds Python objects",
    "yaml.UnsafeLoader": "yaml.UnsafeLoader runs code",
    "pandas.read_pickle": "unpickling runs code from the file",
    "pandas.eval": "pandas.eval runs text as code",
    "numpy.load.allow_pickle": "np.load(..., allow_pickle=True) unpickles",
    "os.system": "a shell command",
    "os.popen": "a shell command",
    "subprocess.shell": "subprocess with shell=True runs a shell command line",
}


def _imports(tree: ast.Module) -> dict[str, str]:
    """Local name -> qualified name, from the module's imports (`import numpy as np`, `from x import y`)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def _qualified(node: ast.expr, names: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = names.get(node.id, f"builtins.{node.id}" if node.id in ("eval", "exec") else node.id)
    return ".".join([base, *reversed(parts)])


def unsafe_uses(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden use in `source`, as 'file:line: name (why)'."""
    tree = ast.parse(source, filename)
    names = _imports(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _qualified(node.func, names)
            kw = {k.arg: k.value for k in node.keywords if k.arg}
            truthy = lambda v: not (isinstance(v, ast.Constant) and not v.value)  # noqa: E731
            if name in ("numpy.load",) and "allow_pickle" in kw and truthy(kw["allow_pickle"]):
                found.append((node.lineno, "numpy.load.allow_pickle"))
            if name and name.startswith("subprocess.") and "shell" in kw and truthy(kw["shell"]):
                found.append((node.lineno, "subprocess.shell"))
        if isinstance(node, (ast.Attribute, ast.Name)) and isinstance(getattr(node, "ctx", None), ast.Load):
            name = _qualified(node, names)
            if name in FORBIDDEN:
                found.append((node.lineno, name))
    return sorted({f"{filename}:{line}: {name} ({FORBIDDEN[name]})" for line, name in found})


def _sources() -> list[Path]:
    return sorted([*(ROOT / "abm").rglob("*.py"), ROOT / "app.py"])


def test_no_code_execution_from_input_in_the_sources() -> None:
    files = _sources()
    assert len(files) > 20 and ROOT / "abm" / "config.py" in files
    problems = [p for f in files for p in unsafe_uses(f.read_text(encoding="utf-8"), str(f.relative_to(ROOT)))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "snippet",
    [
        "import pickle\npickle.load(open('x', 'rb'))",
        "import pickle as p\np.loads(b'')",
        "from pickle import loads\nloads(b'')",
        "import pandas as pd\npd.read_pickle('x')",
        "import pandas as pd\npd.eval('1 + 1')",
        "eval('1 + 1')",
        "exec('x = 1')",
        "import yaml\nyaml.load('a: 1')",
        "import yaml\nyaml.load('a: 1', Loader=yaml.SafeLoader)",
        "import yaml\nyaml.unsafe_load('a: 1')",
        "import yaml\nyaml.full_load('a: 1')",
        "from yaml import Loader\nLoader('a')",
        "import yaml\nclass L(yaml.UnsafeLoader):\n    pass",
        "import numpy as np\nnp.load('x.npy', allow_pickle=True)",
        "from numpy import load\nload('x.npy', allow_pickle=1)",
        "import subprocess\nsubprocess.run('ls', shell=True)",
        "import subprocess as sp\nsp.Popen(cmd, shell=flag)",
        "import os\nos.system('ls')",
        "import marshal\nmarshal.loads(b'')",
    ],
)
def test_the_scan_finds_each_unsafe_use(snippet: str) -> None:
    assert unsafe_uses(snippet), snippet


def test_the_scan_passes_safe_uses() -> None:
    safe = textwrap.dedent(
        """\
        import ast, subprocess, yaml
        import numpy as np
        yaml.safe_load("a: 1")
        yaml.safe_dump({"a": 1})
        np.load("x.npy")
        np.load("x.npy", allow_pickle=False)
        subprocess.run(["ls"], shell=False)
        subprocess.run(["ls"])
        ast.literal_eval("[1, 2]")
        model.eval = 3
        """
    )
    assert unsafe_uses(safe) == []


def test_sweep_files_cannot_import_arbitrary_modules(tmp_path: Path) -> None:
    """A sweep file's `model: module:attr` must not import any module it names (importing runs its code)."""
    marker = tmp_path / "imported"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef factory(config, rng=None): ...\n")
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(base="south_tees") + 'model: "evil:factory"\n')
    rc, err, _ = run_probe(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "0"], tmp_path)
    assert not marker.exists(), "the sweep file's model module was imported (its code ran)"
    assert_refused(rc, err, "model", "--trust-model evil")


@pytest.mark.parametrize("model", ["abm.sweep:os.system", "abm.sweep:importlib.import_module", "abm.model:_private"])
def test_sweep_files_cannot_reach_outside_through_abm(model: str, tmp_path: Path, capsys) -> None:
    """A trusted module's attributes that lead elsewhere (imported modules, private names) are refused too."""
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(base="south_tees") + f'model: "{model}"\n')
    rc = main(["sweep", str(path), "--out", str(tmp_path / "out"), "--workers", "0"])
    assert_refused(rc, capsys.readouterr().err, "refused")
    assert not (tmp_path / "out").exists()


def test_trusted_model_package_is_imported_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`trust_models` (the CLI's --trust-model) is the researcher's explicit opt-in for their own factory."""
    from abm.sweep import SweepError, load_sweep

    marker = tmp_path / "imported"
    (tmp_path / "my_variants.py").write_text(
        f"open({str(marker)!r}, 'w').close()\nfrom abm.model import CommonPurposeModel as Variant\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.format(base="south_tees") + 'model: "my_variants:Variant"\n')
    with pytest.raises(SweepError, match="--trust-model my_variants"):
        load_sweep(path)
    assert not marker.exists()
    sweep = load_sweep(path, trust_models=["my_variants"])
    assert marker.exists() and sweep.spec.model == "my_variants:Variant"
