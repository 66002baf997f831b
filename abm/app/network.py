"""The network canvas: a Vue component (network.vue, served by the app) drawing on an HTML canvas.

All arguments are Vue properties; see network.vue for what each holds. `event_pick` is called
with a person's index when someone clicks them (-1 for a click on empty space).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import solara


@solara.component_vue("network.vue", vuetify=False)
def NetworkCanvas(
    layout_key: int,
    xy: str,
    shapes: str,
    unit: float,
    labels: list[dict[str, Any]],
    tips: dict[str, Any],
    ties_key: int,
    ties_base: str,
    ties_add: str,
    ties_remove: str,
    ties_wide: bool,
    stages: str,
    colours: list[str],
    mask: str,
    selected: int,
    week: int,
    show_ties: bool,
    aspect: float = 0.8,
    event_pick: Callable[[int], None] | None = None,
) -> None:
    pass
