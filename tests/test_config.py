"""Config schema: presets load, overrides apply, bad input gets one clear line."""

from __future__ import annotations

import pytest

from abm.config import (
    MEMORY_LIMIT_ENV,
    ConfigError,
    check_memory,
    estimate_memory,
    load_config,
    memory_limit,
    parse_override,
    presets,
)

ORGANISATIONS = list(load_config("south_tees").organisations)


def test_every_preset_loads_and_default_is_about_2000_agents():
    names = presets()
    assert "south_tees" in names
    assert sum(n.startswith("patterns/p") for n in names) >= 9
    for name in names:
        cfg = load_config(name)
        assert cfg.steps >= 1
    assert 1800 <= load_config("south_tees").agent_count() <= 2200


def test_extends_merges_sections_and_keeps_the_rest():
    base = load_config("south_tees")
    low = load_config("patterns/p3_culture_low")
    assert low.wards["grangetown"].cultural_alignment == 0.10
    assert low.wards["south_bank"] == base.wards["south_bank"]
    assert low.effort == base.effort


def test_overrides_as_strings_and_mapping():
    cfg = load_config("south_tees", ["effort.budget=12.5", "influence.rule=threshold", "wards.grangetown.target=false"])
    assert cfg.effort.budget == 12.5 and cfg.influence.rule == "threshold"
    assert cfg.wards["grangetown"].target is False
    assert load_config("south_tees", {"national.structural_cap": 0.2}).national.structural_cap == 0.2


def test_digest_ignores_seed_but_not_parameters():
    a = load_config("south_tees", {"seed": 1})
    b = load_config("south_tees", {"seed": 2})
    c = load_config("south_tees", {"effort.budget": 1})
    assert a.digest() == b.digest() != c.digest()


SHA = "0123456789abcdef" * 4


def test_source_sha256_is_64_hex_characters_lower_cased():
    assert load_config("south_tees", {"network.source_sha256": SHA.upper()}).network.source_sha256 == SHA
    for bad in ("abc", "g" * 64, SHA + "0", 12, ["x"]):
        with pytest.raises(ConfigError, match=r"network\.source_sha256.*64 hexadecimal characters") as info:
            load_config("south_tees", {"network.source_sha256": bad})
        assert "\n" not in str(info.value)


def test_source_sha256_leaves_configs_and_digests_as_they_were():
    plain = load_config("south_tees", {"seed": 1})
    pinned = load_config(plain, {"network.source_sha256": SHA})
    assert "source_sha256" not in plain.to_yaml() and "source_sha256" not in plain.to_dict()["network"]
    assert f"source_sha256: {SHA}" in pinned.to_yaml()
    assert pinned.digest() == plain.digest()  # a run and its rerun from the config it wrote match
    assert load_config(pinned, {"network.source_sha256": None}).to_yaml() == plain.to_yaml()


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["effort.budgett=3"], "unknown key 'effort.budgett'; did you mean 'budget'?"),
        (["effort.budgett=3"], "allowed here: adaptive_strength, budget, policy, shares, staff_focus, ward_targeting"),
        (["wards.grangetown.sharee=0.2"], "did you mean 'share'?"),  # inside a ward the user named
        (["wards.grangtown.cultural_alignment=0.3"], "'grangtown' is a new entry in wards; did you mean 'grangetown'?"),
        (
            ["events=[{type: funding_cut, week: 3, factor: 0.5, fator: 1}]"],
            "did you mean 'factor'?; allowed here: factor, type, week",
        ),
        (["effort.budget=-1"], "'effort.budget' = -1"),
        (["effort.budget=lots"], "'effort.budget' = 'lots'"),
        (["effort.budget=.nan"], "must be a finite number"),
        (["effort.budget=.inf"], "must be a finite number"),
        (["influence.rule=majority"], "'influence.rule'"),
        (["wards.grangetown.activity.inactive=0.9"], "must sum to 1"),
        (["organisations.charity.staff.wizard=3"], "unknown staff role 'wizard'"),
        (["population.residents=100000000"], "population.residents"),
        (["population.staff_scale=10000"], "more than the 2,000,000 allowed"),
        (["effort.ward_targeting.atlantis=2"], "unknown ward 'atlantis'"),
        (["roles.gp.staff=false"], "exactly one role must have staff: false"),
        (
            ["network.generator=erdos_renyi", "network.agents=1000", "network.mean_degree=5000"],
            "more than network.agents - 1 = 999",
        ),
        (["network.generator=ring_lattice", "network.mean_degree=5"], "needs an even whole number"),
        (
            [
                "events=[{type: partner_joins, week: 2, name: x, sector: housing, staff: {gp: 1}},"
                " {type: partner_joins, week: 3, name: x, sector: housing, staff: {gp: 1}}]"
            ],
            "events.0 already brings in a partner of that name",
        ),
        (
            ["population.residents=0", *(f"organisations.{o}.count=0" for o in ORGANISATIONS)],
            "the population is empty",
        ),
    ],
)
def test_bad_values_give_one_line_naming_the_key(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        load_config("south_tees", overrides)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message and "Traceback" not in message


def test_override_without_equals_is_refused():
    with pytest.raises(ConfigError, match=r"expected dotted\.key=value"):
        parse_override("effort.budget")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ("steps: [1, 2\n", "not valid YAML"),
        ("!!python/object/apply:os.system ['echo hacked']\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("a: &a [x, x, x]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\nsteps: nine\n", "bad.yaml: "),
    ],
)
def test_bad_files(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_config(path)


def test_missing_directory_and_binary_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\x00\x01\x02\xff")
    with pytest.raises(ConfigError, match=r"binary|UTF-8"):
        load_config(binary)


def test_extends_loop_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="loop"):
        load_config(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    "overrides",
    [
        {"population.residents": 3000, "steps": 20},
        {"population.residents": 500, "population.staff_scale": 4, "network.resident_degree": 20, "steps": 10},
        {"network.generator": "erdos_renyi", "network.agents": 2000, "network.mean_degree": 12, "steps": 5},
        {"effort.budget": 5000, "effort.policy": "adaptive", "population.residents": 800, "steps": 10},
    ],
)
def test_memory_estimate_covers_what_the_model_builds(overrides):
    """The estimate counts at least the agents, ties and group rows a run really has (it is an upper end)."""
    from abm import CommonPurposeModel

    cfg = load_config("south_tees", overrides)
    est = estimate_memory(cfg)
    model = CommonPurposeModel(cfg, rng=1)
    model.run()
    assert est.agents == model.state.n
    assert model.ties.count <= est.ties <= 4 * model.ties.count + 1000
    groups = model.groups_frame()
    rows = groups.groupby(["step", "group_kind", "group"]).ngroups
    assert rows <= est.group_weeks
    assert est.bytes > model.state.n * 100


def test_memory_limit_comes_from_the_machine_or_the_variable(monkeypatch):
    monkeypatch.delenv(MEMORY_LIMIT_ENV, raising=False)
    cfg = load_config("south_tees")
    limit = memory_limit()
    assert limit is not None and limit[0] > 2**27 and "available" in limit[1]
    assert check_memory(cfg).bytes < limit[0]
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "50")
    assert memory_limit() == (50 * 2**20, f"set by {MEMORY_LIMIT_ENV}")
    with pytest.raises(ConfigError, match=r"^south_tees: the run would need about \d+ MB .* than the 50 MB set by"):
        load_config("south_tees")
    with pytest.raises(ConfigError, match="more than the 50 MB"):
        check_memory(cfg)


def test_config_reference_is_current():
    """docs/config_reference.md is generated from the schema: a changed field must regenerate it."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "docs" / "make_config_reference.py"
    proc = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr + " (run: python docs/make_config_reference.py)"


def test_a_missing_scenario_suggests_the_closest_preset(tmp_path):
    with pytest.raises(ConfigError, match=r"did you mean 'south_tees'\? `abm presets` lists them"):
        load_config("south_teez")
    child = tmp_path / "mine.yaml"
    child.write_text("extends: south_teez\nsteps: 3\n")
    with pytest.raises(ConfigError, match=r"mine.yaml: extends 'south_teez': file not found .*'south_tees'"):
        load_config(child)
