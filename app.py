"""The Common Purpose workshop app: `make app`, or `solara run app.py --host 127.0.0.1 --port 8765`.

Every browser session builds its own model inside the `Page` component (see abm/app/): nothing
model-related lives at module level, so two people on the same server never see each other's
runs. Every front-end asset is served by this server (solara-assets; the network canvas is a Vue
component shipped in abm/app/network.vue), so the app works with no internet. Telemetry is off.

Vision + Value + Collective function = Common purpose.
"""

from __future__ import annotations

import os

os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")

import solara
import solara.server.settings

from abm.app.page import Page

# `solara run` reads the environment before it imports this file: switch telemetry off here too.
solara.server.settings.telemetry.mixpanel_enable = False


@solara.component
def Layout(children: list | None = None) -> None:
    """The app's frame: Solara's AppLayout in the project's colour (the title comes from the page)."""
    solara.AppLayout(children=children or [], color="#1d3557")


__all__ = ["Layout", "Page"]
