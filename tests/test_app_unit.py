"""The app without a browser: its pieces directly, and the Page rendered with `solara.render`.

The sidebar only exists inside an AppLayout (which `solara run` adds), so the Page is rendered
inside one here.
"""

from __future__ import annotations

import importlib.util
import io
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import ipyvue
import ipyvuetify as v
import numpy as np
import pandas as pd
import pytest
import solara
import yaml
from PIL import Image

import abm.model
from abm import CommonPurposeModel, ConfigError
from abm.app import charts, compare, export, pacing
from abm.app.diagram import diagram_svg
from abm.app.explain import MECHANISMS, explain_html
from abm.app.layout import blocks, extend_layout, grouped_layout
from abm.app.session import HISTORY_MAX_PEOPLE, Session, StepError, tie_keys
from abm.app.settings import MAX_AGENTS, Settings, parse_seed, preset_config, preset_names
from abm.app.svg import Line, line_chart
from abm.config import load_config

APP_PATH = Path(__file__).resolve().parents[1] / "app.py"


def load_app() -> ModuleType:
    """Import the repo-root app.py as the module `common_purpose_app`."""
    name = "common_purpose_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


app = load_app()


def session(preset: str = "south_tees", seed: int = 1, **changes: Any) -> Session:
    settings = Settings.for_preset(preset, seed).with_(**changes)
    s = Session(settings)
    s.reset(settings)
    return s


def parses(svg: str) -> ET.Element:
    return ET.fromstring(svg)


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seed"), [("1", 1), (" 42 ", 42), ("0", 0), (str(2**63 - 1), 2**63 - 1), (5, 5)])
def test_parse_seed_accepts_whole_numbers(text: Any, seed: int) -> None:
    assert parse_seed(text) == seed


@pytest.mark.parametrize("text", ["", "  ", None, "abc", "1.5", "-1", str(2**63), "1e3"])
def test_parse_seed_refuses_other_input_readably(text: str | None) -> None:
    with pytest.raises(ValueError, match="seed"):
        parse_seed(text)


def test_preset_list_has_every_scenario_file_but_sweeps() -> None:
    names = preset_names()
    assert names[0] == "south_tees"
    assert any(n.startswith("workshop/") for n in names)
    assert any(n.startswith("patterns/") for n in names)
    assert any(n.startswith("docking/") for n in names)
    assert not any(n.startswith("sweeps/") for n in names)
    workshop = [n for n in names if n.startswith("workshop/")]
    assert len(workshop) >= 4
    assert names.index(workshop[0]) < names.index(next(n for n in names if n.startswith("patterns/")))


def test_scenario_lists_show_names_and_keep_file_names_as_values() -> None:
    """The Scenario selects show what a room reads ("Workshop 2: ..."), and their value stays the file."""
    from abm.app.settings import preset_items

    items = preset_items()
    assert [i["value"] for i in items] == list(preset_names())
    titles = {i["value"]: i["text"] for i in items}
    assert titles["south_tees"] == "South Tees (default)"
    assert titles["workshop/w2_national_tight"].startswith("Workshop 2")
    assert len(set(titles.values())) == len(titles)  # every one can be told apart


def test_settings_start_at_the_scenario_and_override_only_changes() -> None:
    base = Settings.for_preset("patterns/p5_national_tight")
    assert base.national_cap == 0.35
    assert base.overrides() == {}
    changed = base.with_(budget=20.0, national_cap=0.5, ward_culture=(0.1, *base.ward_culture[1:]), scale=10)
    over = changed.overrides()
    assert over["effort.budget"] == 20.0
    assert over["national.structural_cap"] == 0.5
    assert over["wards.grangetown.cultural_alignment"] == 0.1
    assert over["population.residents"] == 18_000
    assert "effort.shares.engagement" not in over
    cfg = changed.resolved()
    assert cfg.effort.budget == 20.0 and cfg.national.structural_cap == 0.5
    assert changed.changes(base) == ["effort budget", "ward culture", "national constraint", "population"]


def test_structure_scale_multiplies_every_organisation_and_clips() -> None:
    over = Settings.for_preset("south_tees").with_(structure_scale=2.0).overrides()
    assert over["organisations.pilot_team.structural_alignment"] == 1.0  # 0.8 x 2, clipped
    assert over["organisations.council.structural_alignment"] == pytest.approx(0.6)


def test_too_big_a_model_is_refused_readably() -> None:
    settings = Settings.for_preset("south_tees").with_(scale=100)  # about 200,000 people
    assert MAX_AGENTS < 200_000
    with pytest.raises(ConfigError, match="more than this app allows per session"):
        settings.resolved()


# --- layout ------------------------------------------------------------------------------------


def test_layout_is_deterministic_groups_people_and_keeps_positions_when_people_join() -> None:
    model = CommonPurposeModel(rng=1)
    first, second = grouped_layout(model), grouped_layout(model)
    np.testing.assert_array_equal(first.x, second.x)
    points = np.round(np.column_stack([first.x, first.y]), 6)
    assert len(np.unique(points, axis=0)) == model.state.n  # nobody on top of anybody
    s = model.state
    # an organisation's staff sit close together; a ward's residents too
    for group in (s.org == 3, (~s.staff) & (s.ward == 0)):
        spread = np.hypot(first.x[group] - first.x[group].mean(), first.y[group] - first.y[group].mean()).max()
        whole = np.hypot(first.x - first.x.mean(), first.y - first.y.mean()).max()
        assert spread < 0.4 * whole
    assert {lab.text for lab in first.labels} >= {"Grangetown", "Rest of South Tees", "Health", "Pilot team"}
    from abm.config import PartnerJoins
    from abm.events import apply_event

    apply_event(model, PartnerJoins(type="partner_joins", week=1, name="P", sector="vcse", staff={"vcse_worker": 5}))
    grown = extend_layout(first, model)
    assert grown.n == model.state.n == 2010
    np.testing.assert_array_equal(grown.x[:2005], first.x)


def test_layout_is_fast_at_ten_thousand_people() -> None:
    model = CommonPurposeModel("docking/sir", rng=1)
    started = time.perf_counter()
    layout = grouped_layout(model)
    assert layout.n == 10_000
    assert time.perf_counter() - started < 2.0  # well under a second here; generous for a loaded CI


def test_blocks_count_everyone_and_every_tie() -> None:
    model = CommonPurposeModel(rng=2)
    b = blocks(model)
    assert b.count.sum() == model.state.n
    assert b.stages.sum() == model.state.n
    assert b.flow_ties.sum() == model.ties.count


# --- session -----------------------------------------------------------------------------------


def test_view_tie_deltas_rebuild_the_live_ties() -> None:
    s = session()
    s.advance(30)
    for _ in range(8):
        s.step()
        view = s.view()
        base = {tuple(p) for p in view.ties_base.reshape(-1, 2)}
        gone = {tuple(p) for p in view.ties_remove.reshape(-1, 2)}
        added = {tuple(p) for p in view.ties_add.reshape(-1, 2)}
        current = {(int(k >> 32), int(k & 0xFFFFFFFF)) for k in tie_keys(s.model)}
        assert (base - gone) | added == current
        assert len(view.stages) == view.people


def test_view_is_shared_until_the_run_changes() -> None:
    s = session()
    assert s.view() is s.view()
    before = s.view()
    s.step()
    after = s.view()
    assert after is not before and after.week == 1 and before.week == 0
    assert after.role_shares.shape == (2, len(after.role_names), 4)


@pytest.mark.parametrize("kind", ["funding_cut", "national_policy_change", "leader_leaves", "partner_joins"])
def test_events_fired_from_the_app_are_repeated_by_the_exported_config(kind: str) -> None:
    s = session(seed=4)
    s.advance(6)
    params = {"factor": 0.25} if kind == "funding_cut" else {"structural_cap": 0.2} if "policy" in kind else {}
    text = s.fire(kind, **params)
    assert text and s.model.events_log[-1]["text"].endswith("(fired from the app)")
    s.advance(6)
    exported = s.exported_config()
    again = CommonPurposeModel(load_config(exported), rng=exported["seed"]).run(12)
    pd.testing.assert_frame_equal(again.model_frame(), s.model.model_frame())


def test_a_failed_step_is_readable_and_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    s = session()

    def broken(model: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(s.model, "step", lambda: broken(s.model))
    with pytest.raises(StepError, match=r"failed during week 1: RuntimeError: boom\. Press Reset"):
        s.step()
    assert s.broken and not s.step() and not s.view().running
    with pytest.raises(ValueError, match="press Reset"):
        s.fire("funding_cut")


def test_inspector_person_has_history_and_ties() -> None:
    s = session()
    s.advance(10)
    person = s.person(3)
    assert person is not None and person.role == "leader" and person.organisation == "pilot_team"
    assert person.weeks.tolist() == list(range(11))
    assert person.degree == s.model.ties.neighbours(3).size and len(person.neighbours) <= 12
    trusts = [n[4] for n in person.neighbours]
    assert trusts == sorted(trusts, reverse=True)
    assert s.person(10**6) is None and s.person(-1) is None


def test_big_models_are_drawn_as_blocks_without_history() -> None:
    s = session(scale=10)
    view = s.view()
    assert view.people > 12_000 and view.mode == "blocks" and s.layout is None
    assert view.block_data is not None and view.block_data.count.sum() == view.people
    assert s.network_static() is None
    assert s.history.on == (view.people <= HISTORY_MAX_PEOPLE)
    parses(charts.blocks_svg(view))


def test_network_static_payload() -> None:
    s = session()
    static = s.network_static()
    assert static is not None and static is s.network_static()
    import base64

    assert len(base64.b64decode(static.xy)) == 4 * static.n
    assert len(static.shapes) == static.n and set(static.shapes) <= set("012345678")
    assert static.tips["roles"][3] == "GP"


def test_session_status_changes_only_with_a_new_run_or_its_end() -> None:
    s = session()
    changes: list[tuple[int, bool]] = []
    s.status.subscribe(changes.append)
    first = s.status.value
    assert first[1] is True
    assert s.step()
    assert s.model is not None
    s.advance(int(s.model.config.steps) - 2)
    assert changes == []  # weekly steps leave the sidebar's status alone
    assert s.step()
    assert changes == [(first[0], False)]  # the run finished
    s.reset(s.settings)
    assert changes[-1] == (first[0] + 1, True)


# --- drawings ----------------------------------------------------------------------------------


def test_every_chart_and_the_diagram_are_valid_svg() -> None:
    s = session()
    s.advance(20)
    s.fire("funding_cut", factor=0.5)
    s.advance(3)
    view = s.view()
    drawings = [
        charts.trend_svg(view),
        charts.ladder_svg(view),
        charts.ladder_time_svg(view),
        charts.active_lives_svg(view),
        charts.inactive_time_svg(view),
        charts.structures_svg(view),
        charts.embedded_svg(view),
        charts.blocks_svg(s.view().__class__(**{**view.__dict__, "block_data": blocks(s.model)})),
        diagram_svg(view),
        *charts.group_svgs(view, "By role"),
        *charts.group_svgs(view, "By ward"),
    ]
    for svg in drawings:
        root = parses(svg)
        assert root.tag.endswith("svg")
    assert "funding cut" in charts.trend_svg(view)  # the event is marked on the time charts
    assert "Effort budget 30 per 1,000" in diagram_svg(view)


def test_svg_text_is_escaped() -> None:
    x = np.arange(3)
    svg = line_chart([Line("<b>bold</b> & co", x, x / 10, "#000")], title="a < b")
    parses(svg)
    assert "<b>" not in svg and "&lt;b&gt;" in svg


@pytest.mark.parametrize("preset", ["south_tees", "docking/degroot", "patterns/p4_structure_worked"])
def test_explanations_fill_in_for_any_scenario(preset: str) -> None:
    cfg = preset_config(preset)
    for m in MECHANISMS:
        html = explain_html(m, cfg)
        assert "{" not in html and "In this model" in html


# --- comparison and export -----------------------------------------------------------------------


def test_comparison_pairs_seeds_and_is_cached() -> None:
    a = Settings.for_preset("patterns/p7_whole_system")
    b = Settings.for_preset("patterns/p7_siloed")
    progress: list[float] = []
    result = compare.run_comparison(a, b, (1, 2), 6, progress=progress.append)
    assert result.series["common_purpose_share"].shape == (2, 2, 7)
    assert progress[-1] == 1.0
    assert compare.run_comparison(a.with_(seed=9), b, (1, 2), 6) is result  # cached
    # the same seed and scenario as a plain run
    alone = CommonPurposeModel("patterns/p7_siloed", rng=2, steps=6).run().model_frame()
    np.testing.assert_allclose(result.series["acting_share"][1, 1], alone["acting_share"].to_numpy())
    rows = compare.summary_rows(result)
    assert [r["measure"] for r in rows][:4] == ["Vision", "Value", "Collective function", "Common purpose"]
    assert [r["measure"] for r in rows][4:] == ["Inactive residents, target wards", "Common purpose among staff"]
    for svg in (*compare.side_svgs(result), compare.difference_svg(result)):
        parses(svg)


def test_comparison_refuses_a_bad_scenario_readably() -> None:
    a = Settings.for_preset("south_tees").with_(scale=100)
    with pytest.raises(ConfigError):
        compare.run_comparison(a, Settings.for_preset("south_tees"), (1,), 3)


def test_every_export_parses() -> None:
    s = session()
    s.advance(4)
    for name, (_, make, _) in export.FILES.items():
        data = make(s)
        if name.endswith(".csv"):
            assert len(pd.read_csv(io.BytesIO(data))) > 0
        elif name.endswith(".parquet"):
            assert len(pd.read_parquet(io.BytesIO(data))) > 0
        elif name.endswith(".png"):
            assert Image.open(io.BytesIO(data)).format == "PNG"
        elif name.endswith(".yaml"):
            load_config(yaml.safe_load(data))
    with zipfile.ZipFile(io.BytesIO(export.everything_zip(s))) as zf:
        assert set(export.FILES) <= set(zf.namelist())
    assert export.file_name(s.view(), "weekly.csv") == "south_tees_seed1_week4_weekly.csv"


# --- the page, rendered without a browser ------------------------------------------------------


@solara.component
def Served() -> None:
    """The Page as `solara run` serves it: inside an AppLayout, which holds the sidebar."""
    with solara.AppLayout():
        app.Page()


@pytest.fixture
def rendered() -> Iterator[Any]:
    _, rc = solara.render(Served(), handle_error=False)
    yield rc
    rc.close()


def button(rc: Any, label: str) -> v.Btn:
    (found,) = [b for b in rc.find(v.Btn).widgets if label in b.children]
    return found


def header_part(rc: Any, part: str) -> str:
    """The text of the header's `cp-week` or `cp-sub` (both live in the one `cp-head` widget)."""
    (el,) = [w for w in rc.find(solara.widgets.HTML).widgets if w.attributes.get("class") == "cp-head"]
    (text,) = re.findall(rf'<div class="{part}">(.*?)</div>', el.unsafe_innerHTML)
    return text


def week(rc: Any) -> str:
    return header_part(rc, "cp-week")


def alerts(rc: Any) -> list[str]:
    return [str(a.children) for a in rc.find(v.Alert).widgets]


def wait_until(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_page_steps_resets_and_jumps(rendered: Any) -> None:
    assert week(rendered) == "Week 0"
    button(rendered, "Step").click()
    assert week(rendered) == "Week 1"
    button(rendered, "+1 year").click()
    assert week(rendered) == "Week 53"
    button(rendered, "Reset").click()
    assert week(rendered) == "Week 0"
    assert alerts(rendered) == []


def test_page_event_button_and_message(rendered: Any) -> None:
    button(rendered, "A new partner joins").click()
    assert "2,012 people" in header_part(rendered, "cp-sub")


def test_a_failing_step_shows_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_step(self: abm.model.CommonPurposeModel) -> None:
        raise RuntimeError("boom")

    # Mesa wraps `step` when a model is built, so patch before the page builds its model
    monkeypatch.setattr(abm.model.CommonPurposeModel, "step", broken_step)
    _, rc = solara.render(Served(), handle_error=False)
    try:
        button(rc, "Step").click()
        messages = alerts(rc)
        assert any("failed during week 1: RuntimeError: boom" in m for m in messages), messages
        assert "Traceback" not in " ".join(messages)
        assert button(rc, "Step").disabled and button(rc, "Play").disabled  # until a Reset
        assert not button(rc, "Reset").disabled
    finally:
        rc.close()


def test_play_steps_in_a_thread_until_paused(rendered: Any) -> None:
    button(rendered, "Play").click()
    assert wait_until(lambda: week(rendered) not in ("Week 0", "Week 1"))
    button(rendered, "Pause").click()
    assert wait_until(lambda: any("Play" in b.children for b in rendered.find(v.Btn).widgets))
    time.sleep(0.5)  # a thread still running would step again
    paused_at = week(rendered)
    time.sleep(0.6)
    assert week(rendered) == paused_at


def test_each_page_has_its_own_model() -> None:
    _, first = solara.render(Served(), handle_error=False)
    _, second = solara.render(Served(), handle_error=False)
    try:
        button(first, "Step").click()
        button(first, "Step").click()
        assert week(first) == "Week 2"
        assert week(second) == "Week 0"
        button(second, "Step").click()
        assert (week(first), week(second)) == ("Week 2", "Week 1")
    finally:
        first.close()
        second.close()


def test_app_module_has_no_model_and_telemetry_is_off() -> None:
    import solara.server.settings

    assert solara.server.settings.telemetry.mixpanel_enable is False
    assert not [name for name, value in vars(app).items() if isinstance(value, (CommonPurposeModel, Session))]


# --- Play's pacing (abm.app.pacing) ------------------------------------------------------------


def test_weeks_per_frame_keep_up_with_the_speed_within_limits() -> None:
    assert pacing.weeks_for_frame(0.25, 4.0) == 1  # on time: one week per frame
    assert pacing.weeks_for_frame(0.0, 12.0) == 1  # never fewer than one
    assert pacing.weeks_for_frame(0.26, 12.0) == 3  # three periods late: three weeks
    assert pacing.weeks_for_frame(60.0, 12.0) == pacing.MAX_WEEKS_PER_FRAME


def test_frame_shown_waits_for_the_page_or_gives_up() -> None:
    shown, cancel = pacing.FrameShown(), threading.Event()
    t0 = time.monotonic()
    assert not shown.wait_for(3, 0.2, cancel)  # nothing reported: times out
    assert time.monotonic() - t0 >= 0.2
    threading.Timer(0.1, shown.report, args=(4,)).start()
    assert shown.wait_for(3, 5.0, cancel)  # a later frame counts too
    assert shown.wait_for(4, 0.0, cancel) and not shown.wait_for(5, 0.0, cancel)
    for junk in ("9", None, 9.5, True, [9]):  # what a tampered page might send
        shown.report(junk)  # type: ignore[arg-type]
    assert not shown.wait_for(5, 0.0, cancel)
    threading.Timer(0.1, cancel.set).start()
    t0 = time.monotonic()
    assert not shown.wait_for(9, 5.0, cancel)  # Pause does not wait out the timeout
    assert time.monotonic() - t0 < 2.0


def test_a_frame_can_step_several_weeks_and_stops_at_the_end() -> None:
    s = session()
    version = s.version
    assert s.step(weeks=4) == 4 and s.model.week == 4
    assert s.version == version + 1  # one redraw for the four weeks
    assert len(s.series.role) == 5  # every week recorded (weeks 0 to 4), not only the last
    assert s.person(3).weeks.tolist() == [0, 1, 2, 3, 4]
    assert s.step(generation=s.generation + 1, weeks=2) == 0  # an older Play thread: nothing
    stop = threading.Event()
    stop.set()
    assert s.step(stop=stop) == 0  # Pause pressed: nothing
    end = int(s.model.config.steps)
    assert s.advance(end - 6) == end - 6
    assert s.step(weeks=4) == 2 and s.model.week == end  # the run ends on its last week
    assert s.step(weeks=4) == 0


def test_the_frame_gate_lets_one_in_and_stops_waiting_for_a_stuck_frame() -> None:
    gate, cancel = pacing.FrameGate(patience=0.5), threading.Event()
    first = gate.enter(cancel)
    threading.Timer(0.1, gate.leave, args=(first,)).start()
    t0 = time.monotonic()
    second = gate.enter(cancel)  # the first frame leaves after 0.1 s: the next goes in then
    assert second is not None and 0.05 <= time.monotonic() - t0 < 0.45
    t0 = time.monotonic()
    third = gate.enter(cancel)  # the second never leaves (stuck): the next goes in after 0.5 s
    assert third is not None and 0.45 <= time.monotonic() - t0 < 3.0
    assert gate.busy()
    time.sleep(0.6)  # both stuck: still no more than two frames at once
    assert not gate.busy()
    threading.Timer(0.5, cancel.set).start()
    assert gate.enter(cancel) is None  # waited until Pause, then gave up
    gate.leave(third)
    assert gate.enter(cancel) is not None  # one of the two left: the next goes in


def acknowledge_frames(rc: Any, stop: threading.Event) -> threading.Thread:
    """A browser that paints at once: report every frame the page's `Shown` widget is given."""

    def run() -> None:
        while not stop.is_set():
            for w in rc.find(ipyvue.VueTemplate).widgets:
                if hasattr(w, "vue_shown"):
                    w.vue_shown(w.frame)
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_play_waits_for_the_page_to_show_each_frame(rendered: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pacing, "SHOWN_TIMEOUT_S", 30.0)
    button(rendered, "Play").click()
    assert wait_until(lambda: week(rendered) == "Week 1")
    time.sleep(1.0)  # at 4 weeks/s an unpaced Play would be at week 5 by now
    assert week(rendered) == "Week 1"
    stop = threading.Event()
    acknowledge_frames(rendered, stop)
    try:
        assert wait_until(lambda: int(week(rendered).split()[1]) >= 4)  # frames shown: Play goes on
    finally:
        stop.set()
        button(rendered, "Pause").click()


def test_only_one_page_steps_and_redraws_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    busy, most, lock = [0], [0], threading.Lock()
    step = Session.step

    def counted(self: Session, *args: Any, **kwargs: Any) -> int:
        with lock:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        try:
            time.sleep(0.01)  # widen the window in which an overlap would show
            return step(self, *args, **kwargs)
        finally:
            with lock:
                busy[0] -= 1

    monkeypatch.setattr(Session, "step", counted)
    monkeypatch.setattr(pacing.FRAMES, "patience", 60.0)  # a slow frame on a busy machine still blocks
    pages = [solara.render(Served(), handle_error=False)[1] for _ in range(3)]
    stop = threading.Event()
    for rc in pages:
        acknowledge_frames(rc, stop)
    try:
        for rc in pages:
            button(rc, "Play").click()
        # generous: three pages share the gate, and CI machines can be very busy
        assert wait_until(lambda: all(int(week(rc).split()[1]) >= 5 for rc in pages), timeout=90.0)
        assert most[0] == 1
    finally:
        stop.set()
        for rc in pages:
            button(rc, "Pause").click()
            rc.close()


def compare_tab(rc: Any, seeds: int, weeks: int) -> None:
    """Open the Compare tab and choose the number of seeds and the weeks (as typed in the page)."""
    (tabs,) = rc.find(v.Tabs).widgets
    tabs.v_model = 3  # Compare
    assert wait_until(lambda: any("Run comparison" in b.children for b in rc.find(v.Btn).widgets))
    (seeds_box,) = [s for s in rc.find(v.Select).widgets if s.label == "Seeds"]
    seeds_box.v_model = seeds
    (weeks_box,) = [t for t in rc.find(v.TextField).widgets if t.label == "Weeks"]
    weeks_box.v_model = str(weeks)


def compare_done(rc: Any) -> bool:
    """The comparison's table is shown and the button can be pressed again."""
    tables = [w for w in rc.find(solara.widgets.HTML).widgets if w.attributes.get("class") == "cp-table"]
    return bool(tables) and not button(rc, "Run comparison").disabled


@pytest.mark.parametrize(("first", "second"), [(3, 3), (3, " 03")], ids=["same-request", "same-after-retyping"])
def test_a_repeated_comparison_shows_its_result_again(rendered: Any, first: int, second: int | str) -> None:
    # pressing Run comparison again with nothing changed (or with Weeks typed differently but the
    # same number; Weeks out of range are refused now, not clamped) used to leave the tab at
    # "Running… 0%" with the button disabled until a reload
    compare_tab(rendered, 3, first)
    button(rendered, "Run comparison").click()
    assert wait_until(lambda: compare_done(rendered), timeout=60.0)
    (weeks_box,) = [t for t in rendered.find(v.TextField).widgets if t.label == "Weeks"]
    weeks_box.v_model = str(second)
    button(rendered, "Run comparison").click()
    assert wait_until(lambda: compare_done(rendered), timeout=10.0)  # from the cache: no runs
    assert alerts(rendered) == []
    # and a new request still runs
    (seeds_box,) = [s for s in rendered.find(v.Select).widgets if s.label == "Seeds"]
    seeds_box.v_model = 5
    button(rendered, "Run comparison").click()
    assert wait_until(lambda: compare_done(rendered), timeout=60.0)
    assert "Seeds 1, 2, 3, 4, 5." in " ".join(w.unsafe_innerHTML for w in rendered.find(solara.widgets.HTML).widgets)


# --- polish: labels, messages and axes as people read them --------------------------------------


def test_ids_are_shown_as_human_labels() -> None:
    from abm.app.theme import org_label, role_label
    from abm.labels import count_of, plain, plural

    assert [org_label(o) for o in ("pilot_team", "council_1", "gp_practice_4")] == [
        "Pilot team",
        "Council 1",
        "GP practice 4",
    ]
    assert org_label("Middlesbrough Council") == "Middlesbrough Council"  # an uploaded map's own name
    assert [role_label(r, plural=True) for r in ("gp", "vcse_worker", "business")] == [
        "GPs",
        "VCSE workers",
        "Business",
    ]
    assert plural(plain("housing_officer")) == "housing officers" and plain("vcse_worker") == "VCSE worker"
    assert count_of(1, "leader") == "1 leader" and count_of(3, "gp") == "3 GPs"


def test_event_log_speaks_plain_words() -> None:
    s = session()
    s.advance(120)
    s.fire("funding_cut", factor=0.0)
    s.fire("leader_leaves")
    lines = [e["text"] for e in s.model.events_log]
    started = [t for t in lines if "started acting" in t]
    assert started and not any(re.search(r"_|\bgps\b|\bvcse\b|\(s\)", t) for t in started), started
    assert (
        "Funding cut: the effort budget is gone; no more effort is spent on the five activities (fired from the app)"
        in lines
    )
    assert not any("x0.00" in t or "agents a week" in t or "(s)" in t for t in lines), lines
    assert "1 leader left; the post was refilled by a newcomer (fired from the app)" in lines, lines


def test_inspector_and_filters_show_organisation_labels() -> None:
    s = session()
    static = s.network_static()
    assert static is not None
    assert "Pilot team" in static.tips["orgs"] and not any("_" in o for o in static.tips["orgs"])
    view = s.view()
    rungs = charts.ladder_rungs_svg(view)
    assert not re.search(r"[1-9][\d,]* \(0%\)", rungs)  # 10 of 2,005 people read "<1%", never "0%"
    assert "10 (&lt;1%)" in rungs or "10 (<1%)" in rungs


def test_small_shares_never_read_zero_or_full() -> None:
    from abm.app.charts import share_text

    assert [share_text(c, 2005) for c in (0, 10, 30, 870, 2000, 2005)] == ["0%", "<1%", "1.5%", "43%", ">99%", "100%"]


def test_share_axes_stop_at_100_percent_and_differences_are_points() -> None:
    x = np.arange(10)
    svg = line_chart([Line("Ward", x, np.linspace(0, 0.98, 10), "#000")], title="t", legend=False)
    assert "100%" in svg and "125%" not in svg and "120%" not in svg
    s = session()
    s.advance(5)
    for chart in charts.group_svgs(s.view(), "By ward"):
        assert "125%" not in chart
    diff = line_chart(
        [Line("B − A: Common purpose", x, np.linspace(0, 0.038, 10), "#000")],
        title="d",
        y_label="Difference (points)",
        y_max=0.05,
        y_min=-0.05,
        legend=False,
        points=True,
    )
    assert "+3.8 points B − A" in diff and ">+4<" in diff and ">-4<" in diff and "%<" not in diff


def test_ladder_legend_keeps_every_stage_name_whole() -> None:
    s = session()
    svg = charts.ladder_time_svg(s.view())
    assert ">Common purpose<" in svg
    xs = [float(m) for m in re.findall(r'<text x="([\d.]+)"[^>]*>Common purpose<', svg)]
    assert xs and all(x + 6.4 * len("Common purpose") <= 520 for x in xs)


@pytest.mark.parametrize("text", ["abc", "-5", "0", "100000", "", "2.5"])
def test_weeks_refuses_what_is_not_a_number_of_weeks(text: str) -> None:
    with pytest.raises(ValueError, match=r"Weeks must be a whole number of weeks from 1 to 520"):
        compare.parse_weeks(text)
    assert compare.parse_weeks(" 208 ") == 208 and compare.parse_weeks("520") == 520


def test_compare_scenario_a_follows_the_sidebar_until_changed_by_hand() -> None:
    from abm.app.controller import Controller

    ctl = Controller(Settings.for_preset("south_tees", 1))
    try:
        ctl.choose_preset("workshop/w1_grangetown_no_insight")
        assert ctl.ui.cmp_a.value == "workshop/w1_grangetown_no_insight"
        assert ctl.ui.cmp_b.value == "workshop/w1_grangetown_insight"
        ctl.ui.cmp_a.set("patterns/p7_whole_system")  # chosen in the Compare tab
        ctl.choose_preset("workshop/w0_baseline")
        assert ctl.ui.cmp_a.value == "patterns/p7_whole_system"
    finally:
        ctl.close()


def test_no_effort_note_and_help_texts() -> None:
    from abm.app.controls import INFLUENCE_HELP, POLICY_HELP, no_effort_note

    base = Settings.for_preset("south_tees", 1)
    assert no_effort_note(base) == ""
    assert "no effort is spent" in no_effort_note(base.with_(shares=(0.0,) * 5))
    assert "no effort is spent" in no_effort_note(base.with_(budget=0.0))
    assert "Adaptive" in POLICY_HELP and "Independent cascade" in INFLUENCE_HELP


def test_the_weeks_box_shows_its_message_and_holds_the_button(rendered: Any) -> None:
    (tabs,) = rendered.find(v.Tabs).widgets
    tabs.v_model = 3  # Compare
    assert wait_until(lambda: any("Run comparison" in b.children for b in rendered.find(v.Btn).widgets))
    (weeks_box,) = [t for t in rendered.find(v.TextField).widgets if t.label == "Weeks"]
    weeks_box.v_model = "abc"
    assert wait_until(lambda: button(rendered, "Run comparison").disabled)
    (weeks_box,) = [t for t in rendered.find(v.TextField).widgets if t.label == "Weeks"]
    assert "Weeks must be a whole number" in " ".join(weeks_box.messages or [])
    weeks_box.v_model = "12"
    assert wait_until(lambda: not button(rendered, "Run comparison").disabled)


def test_solara_badge_is_off() -> None:
    import solara.server.settings

    assert solara.server.settings.theme.show_banner is False
