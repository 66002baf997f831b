"""Each mechanism does what the ODD says, switched on against switched off (same seed)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from abm import CommonPurposeModel
from abm.config import ConfigError, LeaderLeaves, NationalPolicyChange, PartnerJoins, ScenarioWarning, load_config
from abm.events import apply_event
from abm.residents import baseline_rates
from abm.state import Ties
from tests.conftest import SMALL


def run(overrides=None, seed=3, steps=30):
    return CommonPurposeModel(rng=seed, overrides={**SMALL, "steps": steps, **(overrides or {})}).run()


def final(model, col):
    return float(model.model_frame()[col].iloc[-1])


# --- the sparse tie store ------------------------------------------------------------------------


def test_ties_match_a_dense_rebuild_after_adds_removes_and_trust_changes():
    rng = np.random.default_rng(0)
    n = 60
    u, v = rng.integers(0, n, 150), rng.integers(0, n, 150)
    keep = u < v
    key = np.unique(u[keep] * n + v[keep])
    ties = Ties(n, key // n, key % n, rng.random(key.size), np.zeros(key.size, np.int8))
    for _ in range(40):
        ties.add(rng.integers(0, n, 5), rng.integers(0, n, 5), 0.5, np.zeros(5, np.int8))
        ties.flush()  # staged ties join at the week's flush
        live = np.flatnonzero(ties.alive)
        ties.remove(live[rng.integers(0, live.size, 2)])
        live = np.flatnonzero(ties.alive)
        pick = live[rng.integers(0, live.size, 4)]
        ties.set_trust(pick, rng.random(4))
    live = ties.alive
    dense = sp.coo_matrix((ties.trust[live], (ties.eu[live], ties.ev[live])), shape=(n, n)).toarray()
    dense = dense + dense.T
    x = rng.random((n, 3))
    assert np.allclose(ties.matmul(x), dense @ x)
    assert ties.merges >= 1
    assert (ties.find(ties.eu[live], ties.ev[live]) >= 0).all()
    assert ties.degree().sum() == 2 * ties.count


def test_random_neighbour_is_a_real_neighbour():
    model = CommonPurposeModel(rng=1, overrides=SMALL)
    nodes = np.arange(model.state.n)
    nb, tie = model.ties.random_neighbour(nodes, model.rng)
    ok = nb >= 0
    assert ok.mean() > 0.95
    assert (model.ties.find(nodes[ok], nb[ok]) == tie[ok]).all()


# --- the five activities ---------------------------------------------------------------------------


def test_engagement_spreads_awareness_and_starts_relationships():
    on = run()
    off = run({"activities.engagement.enabled": False})
    assert final(on, "aware_share") > final(off, "aware_share") + 0.2
    assert final(on, "ties") > final(off, "ties")
    assert (
        run(
            {
                "activities.engagement.new_ties": False,
                "activities.collaborative.enabled": False,
                "activities.leadership.enabled": False,
                "turnover.enabled": False,
            }
        ).ties.count
        == CommonPurposeModel(rng=3, overrides=SMALL).ties.count
    )


def test_insight_narrows_cultural_misalignment():
    on = run({"effort.shares.insight": 2.0})
    off = run({"activities.insight.enabled": False})
    assert final(on, "cultural_alignment") > final(off, "cultural_alignment") + 0.02
    assert on.ward_insight.max() > 0 and off.ward_insight.max() == 0


def test_collaborative_working_builds_trust_and_crosses_sectors():
    base = {"activities.engagement.new_ties": False, "turnover.enabled": False, "activities.leadership.enabled": False}
    on = run({**base, "effort.shares.collaborative": 3.0}, steps=40)
    off = run({**base, "activities.collaborative.enabled": False}, steps=40)
    assert on.ties.trust[on.ties.alive].mean() > off.ties.trust[off.ties.alive].mean()
    cross = lambda m: int((m.ties.kind[m.ties.alive] == 2).sum())  # noqa: E731
    assert cross(on) > cross(off)


def test_collective_leadership_moves_structures_only_with_committed_seniors():
    base = {"activities.collaborative.enabled": False, "activities.embedding.enabled": False, "turnover.enabled": False}
    on = run({**base, "effort.shares.leadership": 3.0}, steps=40)
    off = run({**base, "activities.leadership.enabled": False}, steps=40)
    assert final(on, "structural_alignment") > final(off, "structural_alignment") + 0.01
    nobody = run(
        {
            **base,
            "effort.shares.leadership": 3.0,
            "roles.leader.initial_vision": 0.0,
            "organisations.pilot_team.initial_vision": 0.0,
            "influence.enabled": False,
            "activities.engagement.enabled": False,
        },
        steps=40,
    )
    assert final(nobody, "structural_alignment") == pytest.approx(
        final(off, "structural_alignment"), abs=1e-9
    ) or final(nobody, "structural_alignment") <= final(off, "structural_alignment")


def test_embedding_creates_processes_that_raise_structure():
    on = run({"effort.shares.embedding": 3.0}, steps=40)
    off = run({"activities.embedding.enabled": False}, steps=40)
    assert final(on, "embedded_processes") > 0 and final(off, "embedded_processes") == 0


def test_adaptive_policy_shifts_effort_towards_the_larger_misalignment():
    cultural = CommonPurposeModel(
        rng=1,
        overrides={
            **SMALL,
            "effort.policy": "adaptive",
            "national.cultural_alignment": 0.2,
            "national.structural_cap": 1.0,
        },
    ).run(1)
    structural = CommonPurposeModel(
        rng=1,
        overrides={
            **SMALL,
            "effort.policy": "adaptive",
            "national.cultural_alignment": 1.0,
            "organisations.council.structural_alignment": 0.0,
            "organisations.gp_practice.structural_alignment": 0.0,
        },
    ).run(1)
    fixed = CommonPurposeModel(rng=1, overrides=SMALL).run(1)
    assert cultural.last_allocation["insight"] > fixed.last_allocation["insight"]
    assert structural.last_allocation["leadership"] > cultural.last_allocation["leadership"]
    assert sum(cultural.last_allocation.values()) == pytest.approx(1.0)


def test_zero_budget_means_no_activity():
    model = run({"effort.budget": 0, "influence.enabled": False, "turnover.enabled": False})
    assert final(model, "embedded_processes") == 0
    assert final(model, "aware_share") == pytest.approx(float(model.model_frame()["aware_share"].iloc[0]))


# --- influence, feedback, acting ---------------------------------------------------------------------


def test_averaging_moves_people_towards_their_neighbours():
    quiet = {"effort.budget": 0, "feedback.enabled": False, "turnover.enabled": False}
    on = run({**quiet})
    off = run({**quiet, "influence.enabled": False})
    assert final(on, "mean_vision") != final(off, "mean_vision")
    v0 = CommonPurposeModel(rng=3, overrides=SMALL).state.vision
    assert np.std(on.state.vision) < np.std(v0)  # averaging pulls people together


def test_threshold_rule_needs_enough_holders():
    quiet = {"effort.budget": 0, "feedback.enabled": False, "turnover.enabled": False, "influence.rule": "threshold"}
    never = run({**quiet, "influence.threshold": 1.0, "roles.resident.initial_vision": 0.0})
    easy = run({**quiet, "influence.threshold": 0.05, "roles.resident.initial_vision": 0.0})
    assert final(easy, "subscribed_share") > final(never, "subscribed_share")


def test_culture_gates_influence():
    quiet = {"effort.budget": 0, "feedback.enabled": False, "turnover.enabled": False}
    aligned = run({**quiet, "national.cultural_alignment": 1.0})
    blocked = run({**quiet, "national.cultural_alignment": 0.0, "influence.insight_effect": 0.0})
    assert final(aligned, "mean_vision") > final(blocked, "mean_vision")


def test_feedback_raises_value():
    on = run({"feedback.forgetting": 0.0}, steps=60)
    off = run({"feedback.enabled": False}, steps=60)
    assert final(on, "mean_value") > final(off, "mean_value")


def test_structures_block_acting_and_embedded_routines_act_without_vision():
    committed = {
        "roles.gp.initial_vision": 1.0,
        "roles.gp.initial_value": 1.0,
        "roles.gp.initial_aware": 1.0,
        "effort.budget": 0,
        "turnover.enabled": False,
    }
    open_ = run(
        {**committed, "national.structural_cap": 1.0, "organisations.gp_practice.structural_alignment": 1.0}, steps=5
    )
    shut = run({**committed, "national.structural_cap": 0.0}, steps=5)
    gp = lambda m: m.state.role == m.role_names.index("gp")  # noqa: E731
    assert open_.state.acting[gp(open_)].mean() > 0.5
    assert shut.state.acting[gp(shut) & shut.state.staff].mean() == 0.0
    routine = run(
        {
            "effort.budget": 0,
            "influence.enabled": False,
            "organisations.gp_practice.embedded_processes": 20,
            "acting.embedded_action": 0.8,
            "roles.gp.initial_vision": 0.0,
        },
        steps=5,
    )
    acting_gps = routine.state.acting & gp(routine)
    assert acting_gps.sum() > 0 and (routine.state.vision[acting_gps] < 0.5).all()


# --- residents, turnover, events -----------------------------------------------------------------------


def test_baseline_uptake_keeps_each_ward_mix_stationary():
    mixes = np.array([[0.38, 0.10, 0.52], [0.30, 0.10, 0.60]])
    up = baseline_rates(mixes, 0.02, 0.006)
    p = mixes
    assert np.allclose(p[:, 0] * up[:, 0], p[:, 1] * 0.02)
    assert np.allclose(p[:, 1] * up[:, 1], p[:, 2] * 0.006)


def test_residents_become_active_only_near_acting_professionals():
    no_staff_action = run({"national.structural_cap": 0.0, "acting.embedded_action": 0.0}, steps=120, seed=5)
    committed = run(
        {
            "roles.gp.initial_vision": 1.0,
            "roles.gp.initial_value": 1.0,
            "roles.gp.initial_aware": 1.0,
            "roles.housing_officer.initial_vision": 1.0,
            "roles.housing_officer.initial_value": 1.0,
            "roles.housing_officer.initial_aware": 1.0,
            "national.structural_cap": 1.0,
            "organisations.gp_practice.structural_alignment": 1.0,
            "organisations.housing_provider.structural_alignment": 1.0,
        },
        steps=120,
        seed=5,
    )
    start = float(committed.model_frame()["inactive_share"].iloc[0])
    assert final(committed, "inactive_share") < start - 0.03
    assert abs(final(no_staff_action, "inactive_share") - start) < 0.05


def test_turnover_refills_posts_and_cuts_outside_ties():
    heavy = run({"turnover.annual_rate": 1.0, "effort.budget": 0, "activities.embedding.enabled": False}, steps=52)
    none = run({"turnover.enabled": False, "effort.budget": 0}, steps=52)
    assert heavy.state.replaced[heavy.state.staff].mean() > 0.5
    assert heavy.leavers_total > 0 and none.leavers_total == 0
    assert heavy.ties.count < none.ties.count
    protected = run({"turnover.annual_rate": 1.0, "turnover.protect_roles": ["leader"]}, steps=20)
    leaders = protected.state.role == protected.role_names.index("leader")
    assert protected.state.replaced[leaders].sum() == 0


def test_national_policy_change_clips_and_releases_structures(small_model):
    apply_event(small_model, NationalPolicyChange(type="national_policy_change", week=1, structural_cap=0.1))
    assert small_model.org_structure.max() <= 0.1
    apply_event(small_model, NationalPolicyChange(type="national_policy_change", week=1, structural_cap=0.9))
    assert small_model.national_cap == 0.9


def test_scheduled_events_fire_in_their_week():
    model = run(
        {
            "events": [
                {"week": 3, "type": "funding_cut", "factor": 0.5},
                {"week": 4, "type": "leader_leaves", "count": 2},
                {"week": 5, "type": "national_policy_change", "structural_cap": 0.2},
            ]
        },
        steps=6,
    )
    df = model.model_frame().set_index("step")
    assert df.loc[2, "effort_budget"] == 60 and df.loc[3, "effort_budget"] == 30
    assert df.loc[5, "national_cap"] == 0.2 and df.loc[4, "national_cap"] == 0.7
    assert [e["week"] for e in model.events_log if "left" in e["text"]] == [4]
    leaders = model.state.role == model.role_names.index("leader")
    assert model.state.replaced[leaders].sum() >= 2


def test_events_that_cannot_do_what_they_ask_are_said_or_refused():
    """An event after the last week never fires, more leavers than holders: a ScenarioWarning each;
    a partner named like an organisation already there would merge their group rows: refused."""
    late = {"week": 30, "type": "funding_cut", "factor": 0.5}
    many = {"week": 2, "type": "leader_leaves", "count": 500}
    with pytest.warns(ScenarioWarning) as said:
        model = CommonPurposeModel(rng=1, overrides={"steps": 10, "events": [late, many]})
    texts = [str(w.message) for w in said if issubclass(w.category, ScenarioWarning)]
    assert any("events.0 (funding_cut, week 30): after the run's last week (10)" in t for t in texts), texts
    assert any("events.1 (leader_leaves, week 2): asks for 500" in t and "all 12 will" in t for t in texts), texts
    model.run()
    assert model.model_frame()["effort_budget"].iloc[-1] == model.config.effort.budget  # never fired
    clash = {"week": 2, "type": "partner_joins", "name": "Council_1", "sector": "housing", "staff": {"gp": 1}}
    with pytest.raises(ConfigError, match=r"events\.0\.name = 'Council_1': an organisation of that name"):
        CommonPurposeModel(rng=1, overrides={"events": [clash]})


def test_partner_joins_adds_people_ties_and_mesa_agents(small_model):
    before_n, before_ties = small_model.state.n, small_model.ties.count
    text = apply_event(
        small_model,
        PartnerJoins(
            type="partner_joins", week=1, name="leisure_trust", sector="leisure", staff={"vcse_worker": 6, "manager": 1}
        ),
    )
    assert "leisure_trust" in text
    assert small_model.state.n == before_n + 7 == len(small_model.agents)
    assert small_model.ties.count > before_ties
    assert small_model.agent_at(before_n).organisation == "leisure_trust"
    small_model.run(3)  # the grown arrays step and record without trouble
    assert small_model.model_frame()["ties"].iloc[-1] > 0
    assert "leisure_trust" in set(small_model.groups_frame().group)


def test_leader_leaving_takes_the_best_connected(small_model):
    leaders = np.flatnonzero(small_model.state.role == small_model.role_names.index("leader"))
    top = leaders[np.argmax(small_model.ties.degree()[leaders])]
    apply_event(small_model, LeaderLeaves(type="leader_leaves", week=1))
    assert small_model.state.replaced[top] == 1


def test_event_log_says_who_started_acting():
    model = run(steps=60)
    lines = [e["text"] for e in model.events_log]
    assert any("started acting" in line for line in lines)


def test_group_outputs_of_a_kind_with_no_groups_are_empty_not_an_error():
    """Only `community` outputs asked for, in a scenario without communities (found by hypothesis)."""
    cfg = load_config("south_tees", {"communities": {}, "output.groups": ["community"], "steps": 2})
    model = CommonPurposeModel(cfg)
    model.run()
    assert model.groups_frame().empty
    assert len(model.model_frame()) == 3


@pytest.mark.parametrize(("n", "z"), [(200, 6.0), (200, 150.0), (200, 199.0)])
def test_erdos_renyi_is_g_n_p_sparse_or_dense(n, z):
    """G(n, p) at any density (a dense graph is drawn as the pairs left out: it used to take forever)."""
    from abm.generators import erdos_renyi_edges

    degrees = []
    for seed in range(20):
        u, v = erdos_renyi_edges(n, z, np.random.default_rng(seed))
        assert (u < v).all() and np.unique(u.astype(np.int64) * n + v).size == u.size  # simple graph
        degrees.append(2 * u.size / n)
    p = z / (n - 1)
    se = np.sqrt(n * (n - 1) / 2 * p * (1 - p) * 20) * 2 / n / 20  # of the mean degree over 20 graphs
    assert abs(np.mean(degrees) - z) <= 4 * se + 1e-9, (np.mean(degrees), z)
