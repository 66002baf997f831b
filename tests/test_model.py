"""The model as Mesa users meet it: construction, determinism, agents, DataCollector, batch_run."""

from __future__ import annotations

import mesa
import numpy as np
import pandas as pd
import pytest

from abm import STEP_ORDER, CommonPurposeModel
from abm.metrics import MODEL_COLUMNS
from tests.conftest import SMALL


def test_default_model_builds_with_keyword_parameters_only():
    model = CommonPurposeModel(rng=3)
    assert 1800 <= model.state.n <= 2200
    assert len(model.agents) == model.state.n
    assert model.config.steps == 208
    assert model.week == 0 and model.running


def test_same_seed_same_output_and_different_seed_differs():
    a = CommonPurposeModel(rng=11, overrides=SMALL).run()
    b = CommonPurposeModel(rng=11, overrides=SMALL).run()
    c = CommonPurposeModel(rng=12, overrides=SMALL).run()
    pd.testing.assert_frame_equal(a.model_frame(), b.model_frame())
    pd.testing.assert_frame_equal(a.groups_frame(), b.groups_frame())
    assert np.array_equal(a.ties.eu, b.ties.eu) and np.array_equal(a.state.vision, b.state.vision)
    assert not a.model_frame().equals(c.model_frame())


def test_seed_from_config_and_entropy_seed_is_recorded():
    assert CommonPurposeModel(overrides={**SMALL, "seed": 5}).seed == 5
    fresh = CommonPurposeModel(overrides=SMALL)
    assert isinstance(fresh.seed, int)
    again = CommonPurposeModel(rng=fresh.seed, overrides=SMALL)
    assert np.array_equal(again.state.vision, fresh.state.vision)
    assert CommonPurposeModel(rng="42", overrides=SMALL).seed == 42  # the app's text box gives a string


def test_run_stops_at_configured_steps_and_frames_have_a_row_per_week(small_model):
    small_model.run()
    assert small_model.week == 30 and not small_model.running
    df = small_model.model_frame()
    assert list(df.columns) == list(MODEL_COLUMNS)
    assert df["step"].tolist() == list(range(31))
    groups = small_model.groups_frame()
    assert set(groups.group_kind) == {"role", "ward", "community", "organisation"}
    assert {
        "gp",
        "housing_officer",
        "resident",
        "commissioner",
        "leader",
        "grangetown",
        "south_bank",
        "brambles_and_thorntree",
        "north_ormesby",
    } <= set(groups.group)


def test_state_stays_in_range_and_finite():
    model = CommonPurposeModel(rng=2, overrides={**SMALL, "steps": 60, "influence.rule": "threshold"}).run()
    s = model.state
    for arr in (s.vision, s.value, s.culture, s.insight, s.sustain, s.skills):
        assert np.isfinite(arr).all() and arr.min() >= 0 and arr.max() <= 1
    assert set(np.unique(s.pa_class[~s.staff])) <= {0, 1, 2}
    assert (model.org_structure <= model.national_cap + 1e-12).all()
    assert model.stage.min() >= 0 and model.stage.max() <= 5


def test_describe_step_lists_every_stage_in_order():
    model = CommonPurposeModel(rng=1, overrides={**SMALL, "turnover.enabled": False})
    text = model.describe_step()
    positions = [text.index(f". {stage.name}:") for stage in STEP_ORDER]
    assert positions == sorted(positions)
    assert "turnover: " in text and "[switched off]" in text.split("turnover:")[1].splitlines()[0]


def test_agents_are_views_over_the_arrays(small_model):
    agent = small_model.agent_at(0)
    assert agent.unique_id >= 1 and agent.index == 0
    agent.vision = 0.77
    assert small_model.state.vision[0] == pytest.approx(0.77)
    agent.vision = 3.0
    assert small_model.state.vision[0] == 1.0
    residents = small_model.agents.select(lambda a: a.role == "resident")
    assert len(residents) == int((~small_model.state.staff).sum())
    counts = small_model.agents.groupby("role").count()
    assert counts["gp"] == int((small_model.state.role == small_model.role_names.index("gp")).sum())
    assert all(a.activity_class in {"inactive", "fairly_active", "active"} for a in residents)
    assert all(a.organisation for a in small_model.agents.select(lambda a: a.is_staff))
    some = small_model.agent_at(int(np.argmax(small_model.ties.degree())))
    assert len(some.neighbours()) == small_model.ties.degree()[some.index]


def test_datacollector_model_and_agent_reporters():
    model = CommonPurposeModel(rng=4, overrides={**SMALL, "steps": 5}, collect_agents=True).run()
    mv = model.datacollector.get_model_vars_dataframe()
    assert len(mv) == 6
    assert mv["common_purpose_share"].tolist() == model.model_frame()["common_purpose_share"].tolist()
    av = model.datacollector.get_agent_vars_dataframe()
    assert len(av) == 6 * model.state.n
    assert set(av["stage"]) <= {"unaware", "engaged", "subscribed", "valuing", "acting", "common_purpose"}
    custom = mesa.DataCollector(agent_reporters={"v": "vision", "ward": "ward"})
    custom.collect(model)
    assert len(custom.get_agent_vars_dataframe()) == model.state.n


def test_a_users_datacollector_takes_figures_by_name():
    """`model_reporters={"cp": "common_purpose_share"}` as Mesa users write it: the model's figures
    read as attributes; anything else is still an AttributeError."""
    model = CommonPurposeModel(rng=4, overrides={**SMALL, "steps": 5})
    dc = mesa.DataCollector(model_reporters={"cp": "common_purpose_share", "vision": "mean_vision"})
    for _ in range(5):
        model.step()
        dc.collect(model)
    mv = dc.get_model_vars_dataframe()
    frame = model.model_frame()
    assert mv["cp"].tolist() == frame["common_purpose_share"].iloc[1:].tolist()
    assert mv["vision"].tolist() == frame["mean_vision"].iloc[1:].tolist()
    with pytest.raises(AttributeError, match="no attribute 'mean_visoin'"):
        _ = model.mean_visoin


def test_mesa_batch_run_sweeps_keyword_parameters():
    results = mesa.batch_run(
        CommonPurposeModel,
        parameters={"effort_budget": [0, 120], "residents": 200, "steps": 20},
        rng=[1, 2],
        max_steps=20,
        number_processes=1,
        display_progress=False,
    )
    df = pd.DataFrame(results)
    assert len(df) == 4
    assert set(df["effort_budget"]) == {0, 120}
    high = df[df.effort_budget == 120]["aware_share"].mean()
    low = df[df.effort_budget == 0]["aware_share"].mean()
    assert high > low


def test_networkx_export_has_people_and_ties(small_model):
    small_model.run(5)
    g = small_model.to_networkx()
    assert g.number_of_nodes() == small_model.state.n
    assert g.number_of_edges() == small_model.ties.count
    node = g.nodes[0]
    assert {"role", "ward", "organisation", "vision", "value", "acting", "stage"} <= set(node)
    _, _, data = next(iter(g.edges(data=True)))
    assert 0 < data["trust"] <= 1 and data["kind"]


def test_whole_population_scale_config_builds_quickly_enough_to_be_usable():
    # not a timing test: a size check that the generator copes with ~30k agents in one go
    model = CommonPurposeModel(
        rng=1, overrides={"population.residents": 30_000, "population.staff_scale": 15, "steps": 2}
    )
    model.run()
    assert model.state.n > 30_000 and model.ties.count > 3 * model.state.n


def test_run_again_after_the_end_says_how_to_go_on():
    model = CommonPurposeModel(rng=2, overrides={**SMALL, "steps": 3}).run()
    with pytest.warns(UserWarning, match=r"already at week 3 of the 3 configured; run\(steps=N\)"):
        model.run()
    assert model.run(2).week == 5
