"""Uploading a map of one's own in the app (issue 6's app part, issue 7's upload rules).

The Controller and Session are driven directly, as the page's file drop would drive them: a
successful upload runs the scenario on the map, survives Reset and seed changes and is exported
honestly; every refused upload leaves the session's model, settings and previous map as they
were, with one message naming the file and the problem; sessions never see each other's uploads.
"""

from __future__ import annotations

import io
import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pytest
import solara
import yaml

import abm.app.controller
import abm.app.controls
import abm.app.export
import abm.app.page
import abm.app.upload
from abm import CommonPurposeModel
from abm.app import export
from abm.app.controller import Controller
from abm.app.controls import MapDropZone
from abm.app.settings import MAX_UPLOAD_MB, Settings, preset_names
from abm.app.upload import Upload
from abm.cli import main as cli_main
from abm.mapio import MapWarning

LIMIT = int(MAX_UPLOAD_MB * 1e6)


def karate_graphml() -> bytes:
    buf = io.BytesIO()
    nx.write_graphml(nx.karate_club_graph(), buf)
    return buf.getvalue()


def graphml(edges: list[tuple[str, str]], roles: dict[str, str]) -> bytes:
    g = nx.Graph(edges)
    nx.set_node_attributes(g, roles, "role")
    buf = io.BytesIO()
    nx.write_graphml(g, buf)
    return buf.getvalue()


def up(name: str, data: bytes, size: int | None = None) -> Upload:
    return Upload(name, len(data) if size is None else size, io.BytesIO(data))


class NeverRead(io.RawIOBase):
    """A file that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the upload was read although its reported size is over the limit")


@pytest.fixture
def ctl() -> Iterator[Controller]:
    c = Controller(Settings.for_preset("south_tees", 3))
    yield c
    c.close()


def slots(c: Controller) -> list[str]:
    root = c.session.maps.root
    return sorted(p.name for p in root.iterdir()) if root is not None and root.exists() else []


# --- success ----------------------------------------------------------------------------------


def test_upload_runs_the_scenario_on_the_map(ctl: Controller) -> None:
    data = karate_graphml()
    assert ctl.upload_map([up("karate.graphml", data)]), ctl.ui.message.value
    s = ctl.session
    m = s.map
    assert m is not None and s.model is not None
    assert (m.people, m.ties, m.format, m.size) == (34, 78, "graphml", len(data))
    assert m.roles == (("resident", 34),) and (m.defaulted, m.default_role) == (34, "resident")
    assert any("34 people have no role" in w for w in m.warnings)
    assert any("divided by 7" in w for w in m.warnings)  # karate's weights are tie counts
    assert not any(str(s.maps.root) in w or "upload1" in w for w in m.warnings), m.warnings
    assert s.model.state.n == 34 and s.model.ties.count == 78
    assert s.model.config.effort.budget == Settings.for_preset("south_tees").budget  # the scenario's settings
    view = s.view()
    assert view is not None and view.map_name == "karate.graphml" and view.people == 34
    assert s.network_static() is not None  # drawn person by person in the network view
    assert "karate.graphml" in ctl.ui.notice.value and ctl.ui.message.value == ""
    ctl.jump(3)
    assert s.view().week == 3


def test_map_survives_reset_seed_and_scenario_changes_until_cleared(ctl: Controller) -> None:
    synthetic = ctl.session.model.state.n
    assert ctl.upload_map([up("karate.graphml", karate_graphml())])
    ctl.reset()
    assert ctl.session.model.state.n == 34 and ctl.session.map is not None
    ctl.apply_seed("11")
    assert (ctl.session.model.state.n, ctl.session.model.seed) == (34, 11)
    ctl.ui.draft.set(ctl.ui.draft.value.with_(scale=10))  # the population multiplier does not apply to a map
    assert ctl.reset() and ctl.session.model.state.n == 34
    ctl.choose_preset("workshop/w4_siloed")  # another scenario, same map
    assert (ctl.session.model.state.n, ctl.session.settings.preset) == (34, "workshop/w4_siloed")
    slot = ctl.session.map.source.parent
    assert ctl.clear_map()
    assert ctl.session.map is None and ctl.session.view().map_name == ""
    assert ctl.session.model.state.n != 34
    assert not slot.exists()  # the cleared map's file is deleted
    ctl.ui.draft.set(ctl.ui.draft.value.with_(scale=1))
    ctl.choose_preset("south_tees")
    assert ctl.session.model.state.n == synthetic


def test_summary_reports_directed_links_and_self_loops(ctl: Controller) -> None:
    g = nx.DiGraph([("a", "b"), ("b", "a"), ("b", "c"), ("c", "c")])
    nx.set_node_attributes(g, {"a": "gp", "b": "resident", "c": "Resident"}, "role")
    buf = io.BytesIO()
    nx.write_graphml(g, buf)
    assert ctl.upload_map([up("directed.graphml", buf.getvalue())]), ctl.ui.message.value
    m = ctl.session.map
    assert (m.people, m.ties, m.self_loops, m.directed, m.defaulted) == (3, 2, 1, True, 0)
    assert any("1 self-loop (a person tied to themselves) dropped" in w for w in m.warnings), m.warnings
    assert any("the map is directed; 3 links read as 2 undirected ties" in w for w in m.warnings), m.warnings


def test_csv_pair_upload_and_its_export(ctl: Controller) -> None:
    nodes = b"Id,Label,Role\na,Ann,gp\nb,Bo,resident\nc,Cy,resident\n"
    edges = b"Source,Target,Weight\na,b,0.8\nb,c,0.4\n"
    assert ctl.upload_map([up("edges.csv", edges), up("nodes.csv", nodes)]), ctl.ui.message.value
    m = ctl.session.map
    assert m is not None and (m.people, m.ties, m.format, m.defaulted) == (3, 2, "csv", 0)
    assert dict(m.roles) == {"resident": 2, "gp": 1}
    assert yaml.safe_load(export.config_yaml(ctl.session))["network"]["source"] == "uploaded_map"
    with zipfile.ZipFile(io.BytesIO(export.everything_zip(ctl.session))) as zf:
        assert zf.read("uploaded_map/nodes.csv") == nodes and zf.read("uploaded_map/edges.csv") == edges


def test_export_names_the_map_and_the_zip_repeats_the_run(ctl: Controller, tmp_path: Path) -> None:
    data = karate_graphml()
    assert ctl.upload_map([up("karate.graphml", data)])
    ctl.jump(4)
    text = export.config_yaml(ctl.session).decode()
    assert text.startswith("# This run used a map uploaded in the app: karate.graphml")
    assert ctl.session.map.sha256 in text and str(ctl.session.maps.root) not in text
    cfg = yaml.safe_load(text)
    assert cfg["network"]["source"] == "karate.graphml"
    with zipfile.ZipFile(io.BytesIO(export.everything_zip(ctl.session))) as zf:
        zf.extractall(tmp_path / "unzipped")
        about = yaml.safe_load(zf.read("run.json"))
    assert (tmp_path / "unzipped" / "karate.graphml").read_bytes() == data
    assert about["map"]["sha256"] == ctl.session.map.sha256 and about["map"]["people"] == 34
    # the exported config, run by the command line from the unzipped folder, repeats the app's run
    out = tmp_path / "run"
    code = cli_main(["run", str(tmp_path / "unzipped" / "config.yaml"), "--steps", "4", "--out", str(out)])
    assert code == 0
    cli_weekly = pd.read_parquet(out / "model.parquet")
    app_weekly = export.weekly(ctl.session)
    assert len(cli_weekly) == len(app_weekly) == 5
    pd.testing.assert_frame_equal(cli_weekly.reset_index(drop=True), app_weekly.reset_index(drop=True))


def test_exported_config_pins_the_map_as_abm_run_does(ctl: Controller, tmp_path: Path, capsys) -> None:
    assert ctl.upload_map([up("karate.graphml", karate_graphml())])
    network = yaml.safe_load(export.config_yaml(ctl.session))["network"]
    assert network["source_sha256"] == ctl.session.map.sha256
    assert list(network)[list(network).index("source") + 1] == "source_sha256"  # where abm run writes it
    with zipfile.ZipFile(io.BytesIO(export.everything_zip(ctl.session))) as zf:
        zf.extractall(tmp_path / "unzipped")
    edited = graphml([("a", "b")], {"a": "gp", "b": "resident"})
    (tmp_path / "unzipped" / "karate.graphml").write_bytes(edited)
    capsys.readouterr()
    code = cli_main(["run", str(tmp_path / "unzipped" / "config.yaml"), "--out", str(tmp_path / "run")])
    assert code == 2 and "remove network.source_sha256" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


# --- refusals -----------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph edgedefault="undirected">
<node id="a"><data key="d0">&lol3;</data></node></graph></graphml>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE graphml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph><node id="&xxe;"/></graph></graphml>"""

REFUSED = {
    "too big (reported size)": ([Upload("big.graphml", LIMIT + 1, NeverRead())], "big.graphml: 10.0 MB is more than"),
    "too big (size misreported)": ([up("big.csv", b"a,b\n" * (LIMIT // 4 + 1), size=100)], "big.csv: more than the"),
    "wrong type": ([up("notes.docx", b"PK\x03\x04 a word file")], "notes.docx: '.docx' files are not map files"),
    "old excel": ([up("map.xls", b"\xd0\xcf\x11\xe0")], "save it as .xlsx"),
    "no suffix": ([up("map", b"a,b\n")], "map: files without a suffix are not map files"),
    "content is not xml": ([up("map.graphml", b"PK\x03\x04\x00\x00")], "map.graphml: not an XML file"),
    "xml but not a map": ([up("map.xml", b"<html><body/></html>")], "map.xml: XML, but not a map"),
    "xlsx that is text": ([up("map.xlsx", b"Label,Type\na,gp\n")], "map.xlsx: not an Excel .xlsx workbook"),
    "json that is not": ([up("map.json", b"Label,Type\n")], "map.json: not a Kumu JSON map"),
    "binary csv": ([up("map.csv", b"a,b\x00\x01")], "map.csv: a binary file"),
    "empty file": ([up("map.graphml", b"  \n")], "map.graphml: the file is empty"),
    "three files": ([up(f"m{i}.csv", b"a,b\n") for i in range(3)], "3 files received (m0.csv, m1.csv, m2.csv); upload"),
    "six files": (
        [up(f"m{i}.csv", b"a,b\n") for i in range(6)],
        "6 files received (m0.csv, m1.csv, m2.csv and 3 more)",
    ),
    "edge list without its columns": (
        [up("weird.csv", b"foo,bar\n1,2\n")],
        "Map not used: weird.csv: missing required column 'Source'",
    ),
    "two files, not a pair": ([up("a.csv", b"a,b\n"), up("b.csv", b"a,b\n")], "must be a CSV pair"),
    "malformed xml": (
        [up("bad.graphml", b"<graphml><graph><node id='a'></graph></graphml>")],
        "bad.graphml: not well-formed XML at line 1",
    ),
    "entity expansion": ([up("lol.graphml", BILLION_LAUGHS)], "lol.graphml: refused: the XML declares a DTD"),
    "external entity": ([up("xxe.graphml", EXTERNAL_ENTITY)], "xxe.graphml: refused: the XML declares a DTD"),
    "unknown role": (
        [up("roles.graphml", graphml([("a", "b")], {"a": "wizard", "b": "gp"}))],
        "roles.graphml: <node id='a'>: unknown role 'wizard'; the config's roles are leader",
    ),
    "no people": ([up("empty.graphml", graphml([], {}))], "empty.graphml: the map is empty"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_refused_upload_leaves_the_session_as_it_was(ctl: Controller, case: str) -> None:
    uploads, expected = REFUSED[case]
    # a first map in use, a run under way, and a slider moved but not applied
    assert ctl.upload_map([up("karate.graphml", karate_graphml())])
    ctl.jump(2)
    ctl.ui.draft.set(ctl.ui.draft.value.with_(budget=77.0))
    before = (ctl.session.model, ctl.session.settings, ctl.session.map, ctl.session.generation, slots(ctl))
    draft = ctl.ui.draft.value
    assert not ctl.upload_map(uploads)
    message = ctl.ui.message.value
    assert message.startswith("Map not used: ") and expected in message, message
    assert "\n" not in message and "Traceback" not in message
    assert str(ctl.session.maps.root) not in message and not re.search(r"upload\d+/", message)
    assert not re.search(r"(\S+): \1: ", message), message  # the file named once, not "a.csv: a.csv: ..."
    after = (ctl.session.model, ctl.session.settings, ctl.session.map, ctl.session.generation, slots(ctl))
    assert after == before  # same model object, settings, map and files; nothing left behind
    assert ctl.ui.draft.value == draft
    assert ctl.session.view().week == 2


def test_too_many_people_is_refused(ctl: Controller, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(abm.app.upload, "MAX_AGENTS", 30)
    before = ctl.session.model
    assert not ctl.upload_map([up("karate.graphml", karate_graphml())])
    assert "karate.graphml: 34 people is more than this app allows per session (30)" in ctl.ui.message.value
    assert ctl.session.model is before and ctl.session.map is None and slots(ctl) == []


def test_a_bad_seed_box_refuses_the_upload_readably(ctl: Controller) -> None:
    ctl.ui.seed_text.set("abc")
    assert not ctl.upload_map([up("karate.graphml", karate_graphml())])
    assert "seed must be a whole number" in ctl.ui.message.value and ctl.session.map is None


def test_switching_to_a_scenario_the_map_does_not_fit_keeps_the_run(ctl: Controller) -> None:
    assert ctl.upload_map([up("roles.graphml", graphml([("a", "b")], {"a": "gp", "b": "leader"}))])
    before = ctl.session.model
    docking = next(p for p in preset_names() if p.startswith("docking/"))
    ctl.choose_preset(docking)  # its only role is not gp: the map cannot be matched
    assert ctl.session.model is before and ctl.session.map is not None
    assert "unknown role" in ctl.ui.message.value and str(ctl.session.maps.root) not in ctl.ui.message.value


# --- sessions apart -----------------------------------------------------------------------------


def test_each_session_keeps_its_own_uploads() -> None:
    a = Controller(Settings.for_preset("south_tees", 1))
    b = Controller(Settings.for_preset("south_tees", 1))
    try:
        assert a.upload_map([up("karate.graphml", karate_graphml())])
        assert b.session.map is None and b.session.maps.root is None
        assert b.session.model.state.n != 34
        assert "map" not in yaml.safe_load(
            zipfile.ZipFile(io.BytesIO(export.everything_zip(b.session))).read("run.json")
        )
        assert b.upload_map([up("pair.graphml", graphml([("x", "y")], {"x": "gp", "y": "resident"}))])
        root_a, root_b = a.session.maps.root, b.session.maps.root
        assert root_a != root_b and root_a.parent == root_b.parent
        assert (a.session.map.people, b.session.map.people) == (34, 2)
        a.reset()
        assert a.session.model.state.n == 34  # B's upload did not replace A's map
        a.close()
        assert not root_a.exists() and root_b.exists()  # a session's end deletes its uploads only
    finally:
        a.close()
        b.close()
    assert not root_b.exists()


def test_fixups_keep_only_lines_about_their_own_map(tmp_path: Path) -> None:
    mine, theirs = tmp_path / "a" / "mine.graphml", tmp_path / "b" / "theirs.graphml"
    with abm.app.upload.fixups(mine) as notes:
        warnings.warn(MapWarning(f"{theirs}: 5 people have no role"), stacklevel=1)
        warnings.warn(MapWarning(f"{mine}: 3 people have no ward"), stacklevel=1)
    assert notes == [f"{mine}: 3 people have no ward"]


def test_nothing_upload_related_lives_at_module_level() -> None:
    from abm.app.session import Session
    from abm.app.upload import MapStore, UploadedMap

    for module in (abm.app.upload, abm.app.page, abm.app.controller, abm.app.controls, abm.app.export):
        held = [n for n, v in vars(module).items() if isinstance(v, (MapStore, UploadedMap, Session, bytes))]
        assert held == [], (module.__name__, held)


def test_the_page_shows_the_map_and_deletes_it_when_the_session_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Controller] = []

    class Recorded(Controller):
        def __init__(self, settings: Settings) -> None:
            super().__init__(settings)
            made.append(self)

    monkeypatch.setattr(abm.app.page, "Controller", Recorded)

    @solara.component
    def Served() -> None:
        with solara.AppLayout():
            abm.app.page.Page()

    _, rc = solara.render(Served(), handle_error=False)
    try:
        (ctl,) = made

        def texts() -> str:
            return " ".join(str(w.unsafe_innerHTML) for w in rc.find(solara.widgets.HTML).widgets)

        (zone,) = rc.find(MapDropZone).widgets
        assert "Drop a map here" in zone.label and ".graphml" in zone.accept and zone.multiple
        assert "had no role" not in texts()
        assert ctl.upload_map([up("karate.graphml", karate_graphml())])
        assert "on your map karate.graphml" in texts()
        assert "34 of them had no role" in texts()
        root = ctl.session.maps.root
        assert root is not None and root.exists()
    finally:
        rc.close()
    assert not root.exists()  # the page's cleanup deleted the session's uploads


def test_model_built_from_the_upload_matches_one_built_from_the_file(ctl: Controller, tmp_path: Path) -> None:
    data = karate_graphml()
    assert ctl.upload_map([up("karate.graphml", data)])
    (tmp_path / "karate.graphml").write_bytes(data)
    with pytest.warns(MapWarning) as fixes:
        direct = CommonPurposeModel("south_tees", rng=3, overrides={"network.source": str(tmp_path / "karate.graphml")})
    assert any("34 people have no role" in str(w.message) for w in fixes)
    assert (direct.state.role == ctl.session.model.state.role).all()
    assert direct.ties.count == ctl.session.model.ties.count
