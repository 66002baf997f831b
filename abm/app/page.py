"""The whole page: one model per browser session, built inside the page and never at module level."""

from __future__ import annotations

import solara

from abm.app.controller import Controller
from abm.app.controls import Sidebar
from abm.app.pacing import Player
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
from abm.app.settings import DEFAULT_PRESET, Settings, preset_names
from abm.app.theme import CSS
from abm.app.ui import Guarded

TABS = ("System", "Model", "Trends", "Compare", "Export")


def default_settings() -> Settings:
    names = preset_names()
    preset = DEFAULT_PRESET if DEFAULT_PRESET in names else names[0]
    return Settings.for_preset(preset)


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
