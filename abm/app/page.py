"""The whole page: one model per browser session, built inside the page and never at module level."""

from __future__ import annotations

import threading
import time

import solara

from abm.app.controller import Controller
from abm.app.controls import Sidebar
from abm.app.panels import (
    CompareRunner,
    CompareTab,
    ExportTab,
    Header,
    Messages,
    ModelTab,
    SystemTab,
    TrendsTab,
)
from abm.app.session import StepError
from abm.app.settings import DEFAULT_PRESET, Settings, preset_names
from abm.app.theme import CSS
from abm.app.ui import Guarded

TABS = ("System", "Model", "Trends", "Compare", "Export")


def default_settings() -> Settings:
    names = preset_names()
    preset = DEFAULT_PRESET if DEFAULT_PRESET in names else names[0]
    return Settings.for_preset(preset)


@solara.component
def Player(ctl: Controller) -> None:
    """Steps the model in a thread while Play is on, at the chosen speed, paced by the drawing.

    After each step the thread waits until the page has drawn that week (an effect runs once the
    render is committed), so a slow machine plays slower instead of piling up redraws; Pause sets
    `ui.stop` first, and the step checks it under the session lock, so no step lands after Pause.
    """
    ui = ctl.ui
    session = ctl.session
    version = session.changed.value
    drawn = solara.use_memo(threading.Event, [])

    def mark_drawn() -> None:
        drawn.set()

    solara.use_effect(mark_drawn, [version])
    playing = ui.playing.value
    speed = max(0.5, float(ui.speed.value))
    generation = session.generation

    def loop(cancel: threading.Event) -> None:
        if not playing:
            return
        period = 1.0 / speed
        last = 0.0
        while not cancel.is_set():
            while not drawn.wait(0.05):
                if cancel.is_set():
                    return
            wait = period - (time.monotonic() - last)
            if wait > 0 and cancel.wait(wait):
                return
            drawn.clear()
            last = time.monotonic()
            try:
                stepped = session.step(generation, ui.stop)
            except StepError as exc:
                ui.set_playing(False)
                ui.message.set(str(exc))
                return
            if not stepped:
                if not ui.stop.is_set():
                    ui.set_playing(False)
                return

    solara.use_thread(loop, dependencies=[playing, generation, speed], intrusive_cancel=False)


@solara.component
def Page() -> None:
    ctl = solara.use_memo(lambda: Controller(default_settings()), [])
    ui = ctl.ui
    # when the session ends (the page closes and its kernel shuts down), delete its uploaded maps
    solara.use_effect(lambda: ctl.close, [])
    solara.Title("Common purpose: how a whole system comes to share a purpose")
    solara.Style(CSS)
    with solara.Sidebar():
        Guarded(lambda: Sidebar(ctl), "controls")
    with solara.Column(classes=["cp-page"], gap="10px"):
        Messages(ctl)
        Guarded(lambda: Header(ctl), "header")
        with solara.lab.Tabs(value=ui.tab, lazy=True, color="#1d3557", slider_color="#c0398c"):
            with solara.lab.Tab("System", icon_name="mdi-graph-outline"):
                SystemTab(ctl)
            with solara.lab.Tab("Model", icon_name="mdi-sitemap-outline"):
                ModelTab(ctl)
            with solara.lab.Tab("Trends", icon_name="mdi-chart-line"):
                TrendsTab(ctl)
            with solara.lab.Tab("Compare", icon_name="mdi-compare-horizontal"):
                Guarded(lambda: CompareTab(ctl), "comparison")
            with solara.lab.Tab("Export", icon_name="mdi-download"):
                Guarded(lambda: ExportTab(ctl), "downloads")
    Player(ctl)
    CompareRunner(ctl)
