"""app.py without a browser: the Page rendered with `solara.render`, its buttons clicked directly.

The sidebar only exists inside an AppLayout (which `solara run` adds), so the Page is rendered
inside one here.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import ipyvuetify as v
import ipywidgets as widgets
import pytest
import solara

import abm.model

APP_PATH = Path(__file__).resolve().parents[1] / "app.py"


def load_app() -> ModuleType:
    """Import the repo-root app.py as the module `common_purpose_app`."""
    name = "common_purpose_app"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, APP_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look the module up while the file runs
    spec.loader.exec_module(module)
    return module


app = load_app()


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


def week(rc: Any) -> str:
    (el,) = rc.find(v.Html, class_="cp-week").widgets
    return el.children[0]


def alerts(rc: Any) -> list[str]:
    return [str(a.children) for a in rc.find(v.Alert).widgets]


def wait_until(condition: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(("text", "seed"), [("1", 1), (" 42 ", 42), ("0", 0), (str(2**63 - 1), 2**63 - 1)])
def test_parse_seed_accepts_whole_numbers(text: str, seed: int) -> None:
    assert app.parse_seed(text) == seed


@pytest.mark.parametrize("text", ["", "  ", None, "abc", "1.5", "-1", str(2**63), "1e3"])
def test_parse_seed_refuses_other_input_readably(text: str | None) -> None:
    with pytest.raises(ValueError, match="seed"):
        app.parse_seed(text)


def test_page_shows_week_charts_and_words(rendered: Any) -> None:
    assert week(rendered) == "Week 0"
    images = rendered.find(widgets.Image).widgets
    assert len(images) == 2
    assert all(bytes(img.value).startswith(b"\x89PNG") and len(img.value) > 5_000 for img in images)
    labels = [el.children[0] for el in rendered.find(v.Html, class_="cp-card-label").widgets]
    assert labels == ["Vision", "Value", "Acting (Collective function)", "Common purpose"]
    equations = [w for w in rendered.find(solara.widgets.HTML).widgets if w.attributes.get("class") == "cp-equation"]
    assert len(equations) == 1
    assert "Collective function</span> = <span" in equations[0].unsafe_innerHTML
    assert button(rendered, "Step") and button(rendered, "Play") and button(rendered, "Reset")


def test_step_and_reset(rendered: Any) -> None:
    button(rendered, "Step").click()
    assert week(rendered) == "Week 1"
    button(rendered, "Step").click()
    assert week(rendered) == "Week 2"
    button(rendered, "Reset").click()
    assert week(rendered) == "Week 0"
    assert alerts(rendered) == []


def test_same_seed_same_run_and_seed_change_rebuilds(rendered: Any) -> None:
    (sub,) = rendered.find(v.Html, class_="cp-sub").widgets
    assert "seed 1" in sub.children[0]
    seed = rendered.find(v.TextField, label="Seed").widget
    seed.v_model = "9"
    seed.fire_event("keyup.enter", None)
    assert wait_until(lambda: "seed 9" in rendered.find(v.Html, class_="cp-sub").widgets[0].children[0])
    assert week(rendered) == "Week 0"


def test_bad_seed_shows_a_message_and_keeps_the_model(rendered: Any) -> None:
    button(rendered, "Step").click()
    seed = rendered.find(v.TextField, label="Seed").widget
    seed.v_model = "twelve"
    seed.fire_event("focusout", None)
    field = rendered.find(v.TextField, label="Seed").widget
    assert field.error is True
    assert any("whole number" in m for m in field.messages)
    assert button(rendered, "Reset").disabled
    assert week(rendered) == "Week 1"  # the running model is untouched
    button(rendered, "Step").click()
    assert week(rendered) == "Week 2"


def test_a_failing_step_shows_a_readable_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_step(self: abm.model.CommonPurposeModel) -> None:
        raise RuntimeError("boom")

    # Mesa wraps `step` when a model is built, so patch before the page builds its model
    monkeypatch.setattr(abm.model.CommonPurposeModel, "step", broken_step)
    _, rc = solara.render(Served(), handle_error=False)
    try:
        button(rc, "Step").click()
        messages = alerts(rc)
        assert any("failed during a step: RuntimeError: boom" in m for m in messages), messages
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


def test_play_waits_for_slow_drawing_and_still_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drawing slower than the Play delay must neither pile up redraws nor block Pause."""
    snapshot = app.Session.snapshot

    def slow_snapshot(self: Any) -> Any:
        time.sleep(0.4)  # every render pass takes longer than the 0.2 s default delay between weeks
        return snapshot(self)

    monkeypatch.setattr(app.Session, "snapshot", slow_snapshot)
    _, rc = solara.render(Served(), handle_error=False)
    try:
        button(rc, "Play").click()
        assert wait_until(lambda: week(rc) not in ("Week 0", "Week 1"))
        started = time.monotonic()
        button(rc, "Pause").click()
        assert time.monotonic() - started < 5
        assert wait_until(lambda: any("Play" in b.children for b in rc.find(v.Btn).widgets))
        time.sleep(0.5)
        paused_at = week(rc)
        time.sleep(1.0)
        assert week(rc) == paused_at
    finally:
        rc.close()


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


def test_describe_step_is_an_html_list() -> None:
    text = "Each week (one step), in this order:\n1. events: a <b>\n2. record: figures"
    html = app.describe_html(text)
    assert html.startswith("<p>Each week (one step), in this order:</p><ol>")
    assert "<li>events: a &lt;b&gt;</li><li>record: figures</li>" in html
