"""Bring your own system map: round trips, real networks end to end, the model's rules, bad files, the CLI."""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from abm.cli import main
from abm.config import ConfigError, load_config
from abm.mapio import (
    FORMATS,
    MapError,
    MapWarning,
    canonical_graph,
    graph_from_frames,
    model_graph,
    read_map,
    write_map,
)
from abm.model import CommonPurposeModel
from abm.network import KIND, TIE_KINDS, generate, population_from_graph

SUFFIX = {
    "graphml": ".graphml",
    "gexf": ".gexf",
    "csv": "",
    "edgelist": ".csv",
    "kumu-xlsx": ".xlsx",
    "kumu-csv": "",
    "kumu-json": ".json",
    "prsm-xlsx": ".xlsx",
}


def map_path(tmp: Path, name: str, fmt: str) -> Path:
    return tmp / f"{name}-{fmt}{SUFFIX[fmt]}"


def config(source: Path | str | None = None, **mapping: Any) -> Any:
    over: dict[str, Any] = {}
    if source is not None:
        over["network.source"] = str(source)
    if mapping:
        over["network.mapping"] = mapping
    return load_config("south_tees", over)


def quietly(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MapWarning)
        return fn(*args, **kwargs)


def same_value(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-12
    return a == b and type(a) is type(b)


def assert_attrs_equal(want: dict[str, Any], got: dict[str, Any], what: str) -> None:
    assert set(want) == set(got), (what, want, got)
    for k in want:
        assert same_value(want[k], got[k]), (what, k, want[k], got[k])


def sample_map() -> nx.Graph:
    """A small map with every model field, awkward text, mixed attribute types and an isolated person."""
    g = nx.Graph()
    people = [
        ("p1", {"label": "Dr Amir Khan", "role": "gp", "ward": "grangetown", "organisation": "Grange Surgery"}),
        ("p2", {"label": 'Sam, "the" nurse', "role": "gp", "ward": "grangetown", "organisation": "Grange Surgery"}),
        ("p3", {"label": "Zoë Ålund", "role": "housing_officer", "ward": "south_bank", "organisation": "Coast Homes"}),
        ("p4", {"label": "=SUM(A1:A9)", "role": "resident", "ward": "south_bank", "community": "type2_diabetes"}),
        ("p5", {"label": "Pat", "role": "resident", "ward": "rest_of_south_tees", "score": 3, "keen": True}),
        ("p6", {"label": "Lee", "role": "resident", "ward": "north_ormesby", "score": 7, "keen": False}),
        ("p7", {"label": "Alone", "role": "leader", "ward": "grangetown", "organisation": "council_1"}),
    ]
    g.add_nodes_from(people)
    g.nodes["p1"]["height"] = 1.75
    g.add_edge("p1", "p2", trust=0.8, note="same practice")
    g.add_edge("p1", "p4", trust=0.35)
    g.add_edge("p3", "p4")
    g.add_edge("p4", "p5", trust=0.5, note="neighbours")
    g.add_edge("p5", "p6", trust=0.123456789)
    g.add_edge("p2", "p3", trust=1.0)
    return g


# --- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_keeps_the_graph_and_its_attributes(tmp_path: Path, fmt: str) -> None:
    g = sample_map()
    path = write_map(g, map_path(tmp_path, "sample", fmt), fmt)
    h = read_map(path, fmt=fmt)
    want = canonical_graph(g)
    if fmt == "edgelist":  # one table of ties: people are the names in it, with no attributes
        want = nx.Graph(want.edges(data=True))
        nx.set_node_attributes(want, {n: n for n in want}, "label")
    assert h.graph["format"] == fmt and len(h.graph["sha256"]) == 64
    assert set(h.nodes) == set(want.nodes)
    u = nx.Graph(h)
    assert nx.utils.edges_equal(u.edges, want.edges)
    assert nx.is_isomorphic(u, want)
    for n in want:
        assert_attrs_equal(want.nodes[n], h.nodes[n], f"{fmt} node {n}")
    for a, b, d in want.edges(data=True):
        assert_attrs_equal(d, u.edges[a, b], f"{fmt} tie {a}-{b}")


@pytest.mark.parametrize("fmt", FORMATS)
def test_round_trip_through_the_model_is_the_same_population(tmp_path: Path, fmt: str) -> None:
    if fmt == "edgelist":
        pytest.skip("an edge list has no roles, wards or isolated people")
    g = sample_map()
    path = write_map(g, map_path(tmp_path, "sample", fmt), fmt)
    a = quietly(population_from_graph, g, config(), np.random.default_rng(5))
    b = quietly(generate, config(path), np.random.default_rng(5))
    for name in ("role", "ward", "org", "community", "pa_class", "skills", "culture", "eu", "ev", "trust", "kind"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.org_names == b.org_names and a.org_type == b.org_type
    assert b.meta["node_ids"] == [f"p{i}" for i in range(1, 8)]


# --- real networks nobody here made -------------------------------------------------------------------


def karate() -> tuple[nx.Graph, dict[str, Any]]:
    return nx.karate_club_graph(), {"columns": {"role": "club"}, "roles": {"Mr. Hi": "resident", "Officer": "gp"}}


def florentine() -> tuple[nx.Graph, dict[str, Any]]:
    return nx.florentine_families_graph(), {"default_role": "leader"}


def les_miserables() -> tuple[nx.Graph, dict[str, Any]]:
    g = nx.les_miserables_graph()
    for n in g:
        if g.degree(n) >= 10:
            g.nodes[n]["role"] = "vcse_worker"
    return g, {}


REAL = {"karate": karate, "florentine": florentine, "les_miserables": les_miserables}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(REAL))
def test_real_networks_run_end_to_end(tmp_path: Path, name: str, fmt: str) -> None:
    g, mapping = REAL[name]()
    if fmt == "edgelist":  # roles cannot travel in an edge list
        mapping = {"default_role": "vcse_worker"}
    path = write_map(g, map_path(tmp_path, name, fmt), fmt)
    back = read_map(path, fmt=fmt)
    assert nx.is_isomorphic(nx.Graph(back), g)
    assert set(back.nodes) == {str(n) for n in g}
    with pytest.warns(MapWarning):  # at least: nobody has a ward
        model = CommonPurposeModel(config(path, **mapping), rng=3, steps=3)
    model.run()
    assert model.week == 3 and model.state.n == g.number_of_nodes()
    assert model.population.eu.size == g.number_of_edges()
    people = model.people_frame()
    assert np.isfinite(people[["vision", "value"]].to_numpy()).all()
    assert set(model_graph(model).nodes) == {str(n) for n in g}


def test_karate_roles_weights_and_wards() -> None:
    g, mapping = karate()
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, config(**mapping), np.random.default_rng(1))
    text = [str(w.message) for w in caught]
    assert any("34 people have no ward" in t for t in text)
    assert any("runs up to 7" in t and "'weight'" in t for t in text)
    roles = np.array(pop.role_names)[pop.role]
    clubs = [g.nodes[n]["club"] for n in g]
    assert (roles == np.where(np.array(clubs) == "Mr. Hi", "resident", "gp")).all()
    assert (np.array(pop.ward_names)[pop.ward] == "rest_of_south_tees").all()
    assert pop.trust.min() >= 0.05 and pop.trust.max() == 1.0
    w = nx.get_edge_attributes(g, "weight")
    i, j = pop.eu.tolist().index(0), None
    j = int(pop.ev[i])
    assert pop.trust[i] == pytest.approx(max(w[(0, j)] / 7, 0.05))


# --- the model's rules for an imported map ----------------------------------------------------------------


def people_graph(*edges: tuple[str, str], directed: bool = False, **nodes: dict[str, Any]) -> nx.Graph:
    g = nx.DiGraph() if directed else nx.Graph()
    g.add_nodes_from(nodes.items())
    g.add_edges_from(edges)
    return g


def test_roles_match_case_insensitively_and_through_the_mapping() -> None:
    g = people_graph(
        ("a", "b"),
        a={"role": "GP", "organisation": "x"},
        b={"Type": "Practice nurse", "organisation": "x"},
        c={"ROLE": "Housing officer", "organisation": "y"},
        d={"role": "resident"},
    )
    pop = quietly(population_from_graph, g, config(roles={"Practice nurse": "gp"}), np.random.default_rng(0))
    assert list(np.array(pop.role_names)[pop.role]) == ["gp", "gp", "housing_officer", "resident"]


def test_people_with_no_role_get_the_default_with_one_counting_warning() -> None:
    g = people_graph(("a", "b"), a={"role": "gp"}, b={}, c={}, d={"role": ""})
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, config(), np.random.default_rng(0))
    about_roles = [str(w.message) for w in caught if "no role" in str(w.message)]
    assert len(about_roles) == 1 and "3 people have no role" in about_roles[0] and "'resident'" in about_roles[0]
    assert list(np.array(pop.role_names)[pop.role]) == ["gp", "resident", "resident", "resident"]
    pop = quietly(population_from_graph, g, config(default_role="manager"), np.random.default_rng(0))
    assert list(np.array(pop.role_names)[pop.role]) == ["gp", "manager", "manager", "manager"]


def test_wards_match_keys_labels_and_mapping_and_unknown_go_to_the_default() -> None:
    g = people_graph(
        a={"role": "gp", "ward": "South Bank"},
        b={"role": "gp", "ward": "GRANGETOWN"},
        c={"role": "gp", "ward": "Teesville"},
        d={"role": "gp", "ward": "Beechwood"},
        e={"role": "gp"},
    )
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, config(wards={"Beechwood": "north_ormesby"}), np.random.default_rng(0))
    text = " | ".join(str(w.message) for w in caught)
    assert "1 person has no ward and 1 person has an unknown ward ('Teesville'); placed in 'rest_of_south" in text
    assert list(np.array(pop.ward_names)[pop.ward])[:4] == ["south_bank", "grangetown", "rest_of_south_tees",
                                                            "north_ormesby"]  # fmt: skip
    pop = quietly(population_from_graph, g, config(), np.random.default_rng(0))
    assert list(np.array(pop.ward_names)[pop.ward]) == [
        "south_bank",
        "grangetown",
        "rest_of_south_tees",
        "rest_of_south_tees",
        "rest_of_south_tees",
    ]
    pop = quietly(population_from_graph, g, config(default_ward="grangetown"), np.random.default_rng(0))
    assert np.array(pop.ward_names)[pop.ward][-1] == "grangetown"


def test_organisations_by_name_by_mapping_by_role_and_grouped_when_missing() -> None:
    cfg = config(organisations={"Acme Health": "hospital_trust"})
    g = people_graph(
        a={"role": "gp", "organisation": "gp practice"},
        b={"role": "manager", "organisation": "council_2"},
        c={"role": "gp", "organisation": "Acme Health"},
        d={"role": "housing_officer", "organisation": "Tees Homes"},
        e={"role": "gp", "ward": "grangetown"},
        f={"role": "gp", "ward": "grangetown"},
        g={"role": "resident", "organisation": "ignored"},
    )
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, cfg, np.random.default_rng(0))
    text = " | ".join(str(w.message) for w in caught)
    assert "2 staff have no organisation" in text and "1 resident names an organisation; ignored" in text
    assert "'Tees Homes' -> housing_provider" in text and "'gp_grangetown' -> gp_practice" in text
    assert pop.org_names == ["gp practice", "council_2", "Acme Health", "Tees Homes", "gp_grangetown"]
    assert pop.org_type == ["gp_practice", "council", "hospital_trust", "housing_provider", "gp_practice"]
    assert pop.org.tolist() == [0, 1, 2, 3, 4, 4, -1]
    spec = cfg.organisations["housing_provider"]
    assert pop.org_structure[3] == spec.structural_alignment and pop.org_culture[3] == spec.cultural_alignment
    assert pop.sector_names[pop.org_sector[3]] == "housing"
    assert pop.org_ward[4] == pop.ward_names.index("grangetown")


def test_tie_kinds_follow_the_generator_and_missing_trust_takes_the_kinds_mean() -> None:
    cfg = config()
    g = people_graph(
        ("a", "b"),  # same organisation
        ("a", "c"),  # same sector (health), another organisation
        ("a", "d"),  # other sector
        ("a", "e"),  # professional - resident
        ("e", "f"),  # resident - resident
        a={"role": "gp", "organisation": "gp_practice_1"},
        b={"role": "manager", "organisation": "gp_practice_1"},
        c={"role": "gp", "organisation": "hospital_trust"},
        d={"role": "housing_officer", "organisation": "housing_provider_1"},
        e={"role": "resident"},
        f={"role": "resident"},
    )
    pop = quietly(population_from_graph, g, cfg, np.random.default_rng(0))
    kinds = [TIE_KINDS[k] for k in pop.kind]
    assert kinds == ["within_organisation", "between_organisations", "cross_sector", "professional_resident",
                     "resident_resident"]  # fmt: skip
    t = cfg.network.trust
    want = [
        t.within_organisation,
        (t.within_organisation + t.cross_sector) / 2,
        t.cross_sector,
        t.professional_resident,
        t.resident_resident,
    ]
    np.testing.assert_allclose(pop.trust, want)
    assert pop.kind[0] == KIND["within_organisation"]


def test_directed_maps_are_symmetrised_self_loops_dropped_isolates_kept() -> None:
    g = people_graph(
        ("a", "b"),
        ("b", "a"),
        ("b", "c"),
        ("c", "c"),
        directed=True,
        a={"role": "gp", "organisation": "o"},
        b={"role": "gp", "organisation": "o"},
        c={"role": "resident"},
        d={"role": "resident"},
    )
    g.edges["a", "b"]["trust"] = 0.2
    g.edges["b", "a"]["trust"] = 0.6
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, config(), np.random.default_rng(0))
    text = " | ".join(str(w.message) for w in caught)
    assert "the map is directed; 3 links read as 2 undirected ties" in text
    assert "1 self-loop" in text
    assert pop.n_agents == 4 and pop.eu.tolist() == [0, 1] and pop.ev.tolist() == [1, 2]
    assert pop.trust[0] == pytest.approx(0.4)  # the two directions averaged
    assert not np.isin(3, np.concatenate([pop.eu, pop.ev]))  # d is isolated, and kept


def test_repeated_ties_are_merged_and_trust_rescaled_and_floored() -> None:
    g = nx.MultiGraph()
    g.add_nodes_from([("a", {"role": "gp", "organisation": "o"}), ("b", {"role": "resident"}), ("c", {})])
    g.add_edge("a", "b", Strength=4)
    g.add_edge("a", "b", Strength=8)
    g.add_edge("b", "c", Strength=-2)
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, config(), np.random.default_rng(0))
    text = " | ".join(str(w.message) for w in caught)
    assert "1 repeated tie between the same two people merged" in text
    assert "trust of 0 or less in 'Strength'" in text and "runs up to 6" in text
    np.testing.assert_allclose(pop.trust, [1.0, 0.05])


def test_population_is_deterministic_for_a_seed_and_the_synthetic_generator_ignores_mapping() -> None:
    g, mapping = karate()
    cfg = config(**mapping)
    a = quietly(population_from_graph, g, cfg, np.random.default_rng(9))
    b = quietly(population_from_graph, g, cfg, np.random.default_rng(9))
    for name in ("pa_class", "age_band", "deprivation", "skills", "culture", "trust"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    plain = load_config("south_tees", ["population.residents=300"])
    mapped = load_config(plain, {"network.mapping": mapping})
    x, y = generate(plain, np.random.default_rng(2)), generate(mapped, np.random.default_rng(2))
    for name in ("role", "org", "ward", "eu", "ev", "trust", "skills"):
        np.testing.assert_array_equal(getattr(x, name), getattr(y, name))


def test_residents_get_active_lives_classes_from_their_wards_mix() -> None:
    g = nx.Graph()
    g.add_node("staff", role="gp", organisation="o")
    g.add_nodes_from((f"r{i}", {"role": "resident", "ward": "grangetown"}) for i in range(4000))
    pop = quietly(population_from_graph, g, config(), np.random.default_rng(4))
    res = pop.pa_class[1:]
    mix = config().wards["grangetown"].activity
    assert pop.pa_class[0] == -1 and (res >= 0).all()
    assert abs((res == 0).mean() - mix.inactive) < 0.03 and abs((res == 2).mean() - mix.active) < 0.03


# --- formats: Kumu and PRSM specifics ---------------------------------------------------------------------


def test_kumu_json_export_form_and_blueprint_labels(tmp_path: Path) -> None:
    export = {
        "elements": [
            {"_id": "e1", "attributes": {"label": "Ann", "element type": "GP", "tags": ["a", "b"]}},
            {"_id": "e2", "attributes": {"label": "Bob", "element type": "Resident", "ward": "South Bank"}},
        ],
        "connections": [{"_id": "c1", "from": "e1", "to": "e2", "attributes": {"strength": 0.7}}],
    }
    path = tmp_path / "kumu.json"
    path.write_text(json.dumps(export))
    g = read_map(path)
    assert g.nodes["e1"] == {"label": "Ann", "role": "GP", "tags": "a|b"}
    assert g.nodes["e2"]["ward"] == "South Bank" and g.edges["e1", "e2"] == {"trust": 0.7}
    blueprint = {
        "elements": [{"label": "A", "type": "gp"}, {"label": "B"}, {"label": "C"}],
        "connections": [{"from": "A", "to": "B|C", "direction": "mutual"}],
    }
    path.write_text(json.dumps(blueprint))
    g = read_map(path)
    assert not g.is_directed() and sorted(g.edges) == [("A", "B"), ("A", "C")]


def test_kumu_connections_are_directed_unless_said(tmp_path: Path) -> None:
    d = tmp_path / "kumu"
    d.mkdir()
    (d / "Elements.csv").write_text("Label,Type\nA,gp\nB,resident\nC,resident\n")
    (d / "Connections.csv").write_text("From,To,Direction,Strength\nA,B,,2\nB,C,undirected,\n")
    g = read_map(d)
    assert g.graph["format"] == "kumu-csv" and g.is_directed()
    assert set(g.edges) == {("A", "B"), ("B", "C"), ("C", "B")}
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, config(), np.random.default_rng(0))
    assert any("the map is directed; 3 links read as 2 undirected ties" in str(w.message) for w in caught)
    assert pop.eu.size == 2 and pop.trust[0] == 1.0  # Strength 2 is the largest: rescaled to 1


def test_csv_pair_with_gephi_columns_bom_and_semicolons(tmp_path: Path) -> None:
    d = tmp_path / "gephi"
    d.mkdir()
    (d / "nodes.csv").write_bytes("\ufeffId;Label;Role\n1;Ann;gp\n2;Bob;resident\n".encode())
    (d / "edges.csv").write_text("Source;Target;Type;Weight\n1;2;Undirected;0.5\n")
    g = read_map(d)
    assert g.nodes["1"] == {"label": "Ann", "role": "gp"} and g.edges["1", "2"] == {"trust": 0.5}
    assert not g.is_directed()


def test_short_csv_rows_are_blank_filled_and_long_ones_refused(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("Source,Target,Weight\na,b\nb,c,2,,\n")  # missing and blank extra fields are blank
    g = read_map(path)
    assert g.edges["a", "b"] == {} and g.edges["b", "c"] == {"trust": 2.0}
    path.write_text("Source,Target,Weight\na,b\nb,c,2,extra\n")
    with pytest.raises(MapError) as err:
        read_map(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ragged.csv row 3: 4 fields, more than the header's 3 (Source, Target, Weight)")
    assert "\n" not in message and "quote values that contain ','" in message
    d = tmp_path / "pair"
    d.mkdir()
    (d / "nodes.csv").write_text("Id;Label\np1;Ann\np2;Bob\n")
    (d / "edges.csv").write_text("Source,Target,Type,Weight\np1,p2,Undirected,3,extra,more\n")
    with pytest.raises(MapError, match=r"pair: edges.csv row 2: 6 fields, more than the header's 4 \(Source, "):
        read_map(d)
    (d / "edges.csv").write_text("Source,Target\np1,p2\n")
    (d / "nodes.csv").write_text("Id;Label\np1;Ann;gp\np2;Bob\n")
    with pytest.raises(MapError, match=r"nodes.csv row 2: 3 fields, more than the header's 2 .*contain ';'"):
        read_map(d)


def test_mapping_renames_columns(tmp_path: Path) -> None:
    path = tmp_path / "staff.csv"
    path.write_text("Who,Whom,Closeness\nann,bob,3\n")
    g = read_map(path, config(columns={"source": "Who", "target": "Whom", "trust": "Closeness"}).network.mapping)
    assert g.edges["ann", "bob"]["trust"] == 3.0


# --- bad files: one line naming the file, the row or element, and the problem ---------------------------------

GRAPHML_HEAD = '<?xml version="1.0"?>\n<graphml xmlns="http://graphml.graphdrawing.org/xmlns">'
BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<{root} xmlns="{ns}"><graph edgedefault="undirected"><node id="&lol9;"/></graph></{root}>
"""
XXE = """<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected">
<node id="&xxe;"/></graph></graphml>
"""

BAD_FILES: dict[str, tuple[str, str | bytes, tuple[str, ...]]] = {
    "malformed_graphml": (
        "bad.graphml",
        GRAPHML_HEAD + "<graph><node id='a'></graph>",
        ("not well-formed XML", "line"),
    ),
    "malformed_gexf": ("bad.gexf", "<gexf><graph><nodes><node id='a'/></nodes></graph>", ("not well-formed XML",)),
    "billion_laughs_graphml": (
        "lol.graphml",
        BILLION_LAUGHS.format(root="graphml", ns="http://graphml.graphdrawing.org/xmlns"),
        ("refused", "DTD", "billion laughs"),
    ),
    "billion_laughs_gexf": (
        "lol.gexf",
        BILLION_LAUGHS.format(root="gexf", ns="http://gexf.net/1.3"),
        ("refused", "DTD", "entity-expansion"),
    ),
    "external_entity": ("xxe.graphml", XXE, ("refused", "DTD", "external-entity")),
    "duplicate_id_graphml": (
        "dup.graphml",
        GRAPHML_HEAD + "<graph edgedefault='undirected'><node id='a'/><node id='a'/></graph></graphml>",
        ("<node id='a'>", "duplicate id"),
    ),
    "unknown_node_graphml": (
        "edge.graphml",
        GRAPHML_HEAD + "<graph edgedefault='undirected'><node id='a'/><edge source='a' target='zz'/></graph></graphml>",
        ("<edge> number 1", "'zz' is not a node"),
    ),
    "empty_graphml": (
        "empty.graphml",
        GRAPHML_HEAD + "<graph edgedefault='undirected'></graph></graphml>",
        ("the map is empty",),
    ),
    "empty_graphml_no_namespace": (
        "empty.graphml",
        "<graphml><graph edgedefault='undirected'/></graphml>",  # networkx's fallback needed text
        ("the map is empty",),
    ),
    "no_graph_gexf": ("nograph.gexf", '<gexf xmlns="http://gexf.net/1.3"></gexf>', ("no <graph> element",)),
    "empty_edgelist": ("empty.csv", "Source,Target\n", ("the map is empty",)),
    "missing_target_column": ("ties.csv", "Source,Weight\na,1\n", ("ties.csv", "missing required column 'Target'")),
    "blank_end": ("ties.csv", "Source,Target\na,b\nc,\n", ("ties.csv row 3", "no 'Target'")),
    "bad_trust": ("ties.csv", "Source,Target,Weight\na,b,1\nb,c,high\n", ("ties.csv row 3", "'high'", "not a number")),
    "kumu_json_no_elements": ("k.json", '{"connections": []}', ('"elements" list',)),
    "kumu_json_duplicate": (
        "k.json",
        '{"elements": [{"id": "x", "label": "A"}, {"id": "x", "label": "B"}]}',
        ("elements[1]", "duplicate id 'x'", "elements[0]"),
    ),
    "kumu_json_unknown": (
        "k.json",
        '{"elements": [{"label": "A"}], "connections": [{"from": "A", "to": "Q"}]}',
        ("connections[0]", "'Q'", "unknown node"),
    ),
    "bad_json": ("k.json", '{"elements": [', ("not valid JSON", "line 1")),
    "not_utf8": ("ties.csv", b"Source,Target\ncaf\xe9,b\n", ("not UTF-8",)),
    "binary": ("ties.csv", b"\x00\x01\x02", ("binary",)),
    "unknown_suffix": ("map.docx", "x", ("unknown map format '.docx'", ".graphml, .gexf", "directory of CSV")),
    "scenario_given_as_a_map": (
        "myplace.yaml",
        "extends: south_tees\n",
        ("a .yaml file is a scenario config", ".gexf"),
    ),
    "old_excel": ("map.xls", "x", (".xls", "save it as .xlsx")),
    "not_a_workbook": ("map.xlsx", "plain text", ("not a valid .xlsx workbook",)),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_give_one_clear_line(tmp_path: Path, case: str) -> None:
    name, content, words = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(MapError) as err:
        read_map(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for w in words:
        assert w in message, (w, message)
    assert isinstance(err.value, ConfigError)


def test_xml_with_a_dtd_never_reaches_networkx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("networkx parsed an unsafe file")

    monkeypatch.setattr(nx, "parse_graphml", boom)
    monkeypatch.setattr(nx, "read_gexf", boom)
    for name, root, ns in (("a.graphml", "graphml", "http://graphml.graphdrawing.org/xmlns"), ("a.gexf", "gexf", "")):
        path = tmp_path / name
        path.write_text(BILLION_LAUGHS.format(root=root, ns=ns))
        with pytest.raises(MapError, match=r"refused"):
            read_map(path)


def test_duplicate_ids_and_unknown_nodes_in_table_formats(tmp_path: Path) -> None:
    d = tmp_path / "pair"
    d.mkdir()
    (d / "nodes.csv").write_text("Id,Label\n1,A\n2,B\n1,C\n")
    (d / "edges.csv").write_text("Source,Target\n1,2\n")
    with pytest.raises(MapError, match=r"nodes.csv row 4: duplicate id '1' \(also at nodes.csv row 2\)"):
        read_map(d)
    (d / "nodes.csv").write_text("Id,Label\n1,A\n2,B\n")
    (d / "edges.csv").write_text("Source,Target\n1,2\n2,9\n")
    with pytest.raises(MapError, match=r"edges.csv row 3: 'Target' = '9' is not an id or label .*unknown node"):
        read_map(d)
    (d / "nodes.csv").write_text("Name,Role\nA,gp\n")
    with pytest.raises(MapError, match=r"edges.csv row 2: 'Source' = '1'"):
        read_map(d)


def test_missing_required_columns_in_workbooks(tmp_path: Path) -> None:
    g = sample_map()
    for fmt, sheet, column in (("kumu-xlsx", "Elements", "Label"), ("prsm-xlsx", "Links", "To")):
        path = write_map(g, tmp_path / f"{fmt}.xlsx", fmt)
        import openpyxl

        wb = openpyxl.load_workbook(path)
        ws = wb[sheet]
        for cell in ws[1]:
            if cell.value == column:
                cell.value = "Something else"
        wb.save(path)
        with pytest.raises(MapError, match=f"sheet '{sheet}': missing required column '{column}'"):
            read_map(path)
    path = write_map(g, tmp_path / "renamed.xlsx", "kumu-xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Elements"].title = "People"
    wb.save(path)
    with pytest.raises(MapError, match=r"renamed.xlsx: no sheet named 'Elements'"):
        read_map(path)
    wb["Connections"].title = "Ties"
    wb.save(path)
    with pytest.raises(MapError, match=r"no Kumu sheets .* or PRSM sheets .*it has: 'people', 'ties'"):
        read_map(path)


def test_unknown_role_with_no_mapping(tmp_path: Path) -> None:
    path = tmp_path / "roles.csv"
    d = tmp_path / "roles"
    d.mkdir()
    (d / "nodes.csv").write_text("Id,Role\na,gp\nb,Practice nurse\nc,Porter\nd,Porter\n")
    (d / "edges.csv").write_text("Source,Target\na,b\n")
    with pytest.raises(MapError) as err:
        generate(config(d), np.random.default_rng(0))
    message = str(err.value)
    assert message.startswith(str(d)) and "nodes.csv row 3: unknown role 'Practice nurse'" in message
    assert "2 more people with unknown roles ('Porter')" in message and "network.mapping.roles" in message
    with pytest.raises(MapError, match=r"unknown role 'Porter'"):
        quietly(generate, config(d, roles={"Practice nurse": "gp"}), np.random.default_rng(0))
    pop = quietly(generate, config(d, roles={"Practice nurse": "gp", "porter": "manager"}), np.random.default_rng(0))
    assert pop.n_agents == 4
    assert not path.exists()


def test_mapping_mistakes_and_maps_the_model_cannot_use(tmp_path: Path) -> None:
    g = people_graph(("a", "b"), a={"role": "gp"}, b={"role": "resident"})
    rng = np.random.default_rng(0)
    with pytest.raises(MapError, match=r"network.mapping.roles: 'nurse' maps to 'nurse', which is not one of"):
        population_from_graph(g, config(roles={"nurse": "nurse"}), rng)
    with pytest.raises(MapError, match=r"network.mapping.default_ward 'nowhere' is not a ward"):
        population_from_graph(g, config(default_ward="nowhere"), rng)
    with pytest.raises(MapError, match=r"network.mapping.columns.role = 'Job': no such attribute"):
        population_from_graph(g, config(columns={"role": "Job"}), rng)
    residents = people_graph(("a", "b"), a={}, b={})
    pop = quietly(population_from_graph, residents, config(), rng)  # a map of residents only runs too
    assert pop.n_agents == 2 and (pop.org < 0).all()
    with pytest.raises(MapError, match=r"the map is empty"):
        population_from_graph(nx.Graph(), config(), rng)


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("Source,Target\n" + "".join(f"a{i},b{i}\n" for i in range(20_000)))
    with pytest.raises(MapError, match=r"big.csv: the file is 257.8 KB, more than the 100.0 KB allowed"):
        read_map(path, max_mb=0.1)
    with pytest.raises(MapError, match=r"network.source_max_mb"):
        generate(load_config(config(path), {"network.source_max_mb": 0.1}), np.random.default_rng(0))
    d = tmp_path / "pair"
    d.mkdir()
    (d / "nodes.csv").write_text("Id\n" + "".join(f"n{i}\n" for i in range(10_000)))
    (d / "edges.csv").write_text("Source,Target\n" + "".join(f"n{i},n{i + 1}\n" for i in range(9_999)))
    with pytest.raises(MapError, match=r"the files are 176.7 KB together, more than the 100.0 KB allowed"):
        read_map(d, max_mb=0.1)
    assert read_map(d).number_of_nodes() == 10_000


def test_size_limit_messages_never_round_to_zero_or_to_the_limit(tmp_path: Path) -> None:
    d = tmp_path / "pair"
    d.mkdir()
    (d / "nodes.csv").write_text("Id\n" + "".join(f"n{i}\n" for i in range(1_000)))
    (d / "edges.csv").write_text("Source,Target\n" + "x" * (21_644 - (d / "nodes.csv").stat().st_size - 14))
    assert sum(f.stat().st_size for f in d.iterdir()) == 21_644
    with pytest.raises(MapError) as err:
        read_map(d, max_mb=0.001)  # it said "the files are 0.0 MB together, more than the 0.001 MB allowed"
    assert "the files are 21.6 KB together, more than the 1.0 KB allowed (network.source_max_mb = 0.001)" in str(
        err.value
    )
    path = tmp_path / "just_over.csv"
    path.write_text("Source,Target\n" + "x" * (100_040 - 14))
    with pytest.raises(
        MapError, match=r"just_over.csv: the file is 100,040 bytes, more than the 100,000 bytes allowed"
    ):
        read_map(path, max_mb=0.1)


def test_workbooks_that_unpack_too_far_are_refused(tmp_path: Path) -> None:
    path = write_map(sample_map(), tmp_path / "bomb.xlsx", "kumu-xlsx")
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("xl/padding.xml", "<a>" + "a" * 2_000_000 + "</a>")
    assert path.stat().st_size < 100_000
    with pytest.raises(MapError, match=r"bomb.xlsx: the workbook unpacks to 2.0 MB, more than the 500.0 KB allowed"):
        read_map(path, max_mb=0.1)


# --- export from the model ------------------------------------------------------------------------------


def test_model_graph_carries_role_place_and_final_state(tmp_path: Path) -> None:
    g, mapping = karate()
    path = write_map(g, tmp_path / "karate.gexf")
    model = quietly(CommonPurposeModel, config(path, **mapping), rng=1, steps=4).run()
    out = model_graph(model)
    assert set(out.nodes) == {str(n) for n in g} and out.number_of_edges() == model.ties.count
    node = out.nodes["0"]
    assert node["role"] == "resident" and node["ward"] == "rest_of_south_tees" and node["label"] == "0"
    assert {"vision", "value", "acting", "stage"} <= set(node)
    staff = next(n for n in out if out.nodes[n]["role"] == "gp")
    assert out.nodes[staff]["organisation"] == "gp_rest_of_south_tees"
    for fmt in ("graphml", "kumu-xlsx"):
        back = read_map(write_map(out, map_path(tmp_path, "export", fmt), fmt))
        assert nx.is_isomorphic(nx.Graph(back), out)
        assert back.nodes["0"]["stage"] == node["stage"] and back.nodes["0"]["vision"] == pytest.approx(node["vision"])
        assert back.nodes["0"]["role"] == "resident"


# --- the command line ------------------------------------------------------------------------------------


def test_cli_run_with_network_warns_in_one_line_each_and_export_round_trips(tmp_path: Path, capsys) -> None:
    g, _ = les_miserables()
    path = write_map(g, tmp_path / "lesmis.graphml")
    out = tmp_path / "run"
    assert main(["run", "south_tees", "--network", str(path), "--steps", "3", "--seed", "4", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert lines and all(line.startswith("abm: warning: ") for line in lines)
    assert any("55 people have no role" in line for line in lines)
    meta = json.loads((out / "run.json").read_text())
    assert meta["agents"] == 77 and meta["network_source"]["format"] == "graphml"
    people = pd.read_parquet(out / "people.parquet")
    assert people["id"].tolist() == list(g.nodes)
    final = graph_from_frames(people, pd.read_parquet(out / "ties.parquet"))  # engagement adds ties
    assert final.number_of_edges() == meta["ties"]
    for fmt, target in (("graphml", "net.graphml"), ("csv", "netdir"), ("kumu-json", "net.json")):
        dest = tmp_path / target
        assert main(["network", "export", str(out), "--format", fmt, "--out", str(dest)]) == 0
        assert "abm: wrote" in capsys.readouterr().out
        back = read_map(dest)
        assert set(back.nodes) == set(g.nodes) and nx.utils.edges_equal(nx.Graph(back).edges, final.edges)
        assert {"role", "ward", "vision", "value", "acting", "stage"} <= set(back.nodes["Valjean"])


def test_cli_export_from_a_config_and_check(tmp_path: Path, capsys) -> None:
    dest = tmp_path / "st.xlsx"
    args = ["network", "export", "south_tees", "--set", "population.residents=100", "--out", str(dest), "--steps", "2"]
    assert main(args) == 0
    assert "kumu-xlsx" in capsys.readouterr().out
    back = read_map(dest)
    assert back.graph["format"] == "kumu-xlsx" and back.number_of_nodes() > 100
    assert main(["network", "check", str(dest)]) == 0
    out, err = capsys.readouterr()
    assert "kumu-xlsx" in out and "people (" in out and err == ""  # organisations matched by name: no warnings


def test_cli_config_source_is_found_beside_the_config(tmp_path: Path, monkeypatch, capsys) -> None:
    g, _ = florentine()
    sub = tmp_path / "scenario"
    sub.mkdir()
    write_map(g, sub / "families.gexf")
    (sub / "families.yaml").write_text(
        "extends: south_tees\nnetwork:\n  source: families.gexf\n  mapping:\n    default_role: leader\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(sub / "families.yaml"), "--steps", "2", "--seed", "1", "--out", "r"]) == 0
    saved = load_config(tmp_path / "r" / "config.yaml")
    assert saved.network.source == str(sub / "families.gexf")
    assert "abm: warning:" in capsys.readouterr().err


def test_cli_bad_map_is_one_error_line_and_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "lol.graphml"
    bad.write_text(BILLION_LAUGHS.format(root="graphml", ns="http://graphml.graphdrawing.org/xmlns"))
    out = tmp_path / "out"
    assert main(["run", "south_tees", "--network", str(bad), "--steps", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("abm: error: ") and "lol.graphml" in err[0] and "refused" in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["lol.graphml"]
    assert main(["network", "export", "south_tees", "--network", str(bad), "--out", str(tmp_path / "x.gexf")]) == 2
    assert main(["network", "check", str(tmp_path / "missing.graphml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "file not found" in err[1]
    assert main(["network", "export", "south_tees", "--out", str(tmp_path / "x.txt")]) == 2
    assert "--format: cannot tell the format" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lol.graphml"]


def test_cli_export_of_a_run_refuses_config_options(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["run", "south_tees", "--set", "population.residents=50", "--steps", "1", "--seed", "1",
                 "--out", str(run)]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["network", "export", str(run), "--steps", "3", "--out", str(tmp_path / "a.gexf")]) == 2
    assert "--steps applies to a CONFIG" in capsys.readouterr().err
    (run / "people.parquet").unlink()
    assert main(["network", "export", str(run), "--out", str(tmp_path / "a.gexf")]) == 2
    assert "has no people.parquet" in capsys.readouterr().err
    assert not (tmp_path / "a.gexf").exists()


def test_graphml_without_its_namespace_reads(tmp_path: Path) -> None:
    """Hand-written GraphML often leaves out the xmlns; networkx adds it, given text."""
    path = tmp_path / "plain.graphml"
    path.write_text(
        "<graphml><graph edgedefault='undirected'><node id='a'/><node id='b'/>"
        "<edge source='a' target='b'/></graph></graphml>"
    )
    g = read_map(path)
    assert g.number_of_nodes() == 2 and g.number_of_edges() == 1


def test_a_map_of_residents_only_runs_as_the_docs_say(tmp_path: Path, capsys) -> None:
    """docs/maps.md once said such a map is refused (Rules) and that it runs (Limits); it runs."""
    d = tmp_path / "residents"
    d.mkdir()
    (d / "nodes.csv").write_text("Id,Label,Role,Ward\n1,Ann,Resident,grangetown\n2,Bob,Resident,grangetown\n")
    (d / "edges.csv").write_text("Source,Target\n1,2\n")
    args = ["run", "south_tees", "--network", str(d), "--set", "events=[]", "--steps", "2", "--seed", "1"]
    assert main([*args, "--out", str(tmp_path / "run")]) == 0
    assert "abm: error" not in capsys.readouterr().err
    docs = " ".join((Path(__file__).resolve().parent.parent / "docs" / "maps.md").read_text().split())
    assert "everyone is a resident runs" in docs and "resident is refused" not in docs


def test_cli_check_given_a_scenario_says_to_pass_it_as_config(tmp_path: Path, capsys) -> None:
    scenario = tmp_path / "myplace.yaml"
    scenario.write_text("extends: south_tees\n")
    assert main(["network", "check", str(scenario)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"abm: error: {scenario}: unknown map format '.yaml'"), err
    assert "scenario config, not a map" in err[0] and f"'abm network check MAP --config {scenario}'" in err[0]
    assert ".graphml, .gexf" in err[0] and ".xlsx (Kumu or PRSM)" in err[0]
    assert main(["run", "south_tees", "--network", str(scenario), "--out", str(tmp_path / "r")]) == 2
    assert "a .yaml file is a scenario config, not a map" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_mapping_entries_that_match_nothing_in_the_map_are_warned_about_one_each() -> None:
    g = people_graph(
        ("a", "b"),
        a={"role": "Practice nurse", "ward": "Teesville", "organisation": "Acme Homes"},
        b={"role": "gp", "organisation": "Grange Surgery_2"},
    )
    cfg = config(
        roles={"Practice nurse": "gp", "Nurse": "gp", "Practise nurse": "gp"},
        wards={"Teesville": "south_bank", "Teesvile": "south_bank"},
        organisations={"Acme Hoomes": "housing_provider", "Grange Surgery": "gp_practice", "Nowhere": "council"},
    )
    with pytest.warns(MapWarning) as caught:
        pop = population_from_graph(g, cfg, np.random.default_rng(0))
    unused = [str(w.message) for w in caught if str(w.message).startswith("graph: network.mapping.")]
    assert unused == [
        "graph: network.mapping.roles: 'Nurse' matches no role in the map",
        "graph: network.mapping.roles: 'Practise nurse' matches no role in the map (did you mean 'Practice nurse'?)",
        "graph: network.mapping.wards: 'Teesvile' matches no ward in the map (did you mean 'Teesville'?)",
        "graph: network.mapping.organisations: 'Acme Hoomes' matches no organisation in the map "
        "(did you mean 'Acme Homes'?)",
        "graph: network.mapping.organisations: 'Nowhere' matches no organisation in the map",
    ]
    assert pop.org_type[pop.org_names.index("Grange Surgery_2")] == "gp_practice"  # used, through its instance
    used = config(roles={"Practice nurse": "gp"}, wards={"Teesville": "south_bank"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MapWarning)
        population_from_graph(g, used, np.random.default_rng(0))
    assert not [w for w in caught if str(w.message).startswith("graph: network.mapping.")]
