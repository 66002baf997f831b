"""Per-page UI state and the small building blocks every panel uses.

`Ui` holds one browser page's reactive values (playing, speed, selected person, filters, the
draft settings, the message shown at the top). It is created once per page, so nothing here is
shared between sessions. `guard` wraps every click handler: an exception becomes a readable
message on the page (and a log line on the server), never a traceback in the page.
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import solara

from abm.app.settings import Settings
from abm.config import ConfigError

log = logging.getLogger("abm.app")

#: Play speed limits, in weeks per second.
MIN_SPEED, MAX_SPEED, DEFAULT_SPEED = 1.0, 12.0, 4.0


def _same(a: Any, b: Any) -> bool:
    return a is b


@dataclass
class Ui:
    """One page's reactive state (created inside the page, so never shared between sessions)."""

    draft: solara.Reactive[Settings]
    seed_text: solara.Reactive[str]
    playing: solara.Reactive[bool] = field(default_factory=lambda: solara.reactive(False))
    speed: solara.Reactive[float] = field(default_factory=lambda: solara.reactive(DEFAULT_SPEED))
    message: solara.Reactive[str] = field(default_factory=lambda: solara.reactive(""))
    notice: solara.Reactive[str] = field(default_factory=lambda: solara.reactive(""))
    selected: solara.Reactive[int] = field(default_factory=lambda: solara.reactive(-1))
    tab: solara.Reactive[int] = field(default_factory=lambda: solara.reactive(0))
    roles: solara.Reactive[list[str]] = field(default_factory=lambda: solara.reactive([]))
    wards: solara.Reactive[list[str]] = field(default_factory=lambda: solara.reactive([]))
    orgs: solara.Reactive[list[str]] = field(default_factory=lambda: solara.reactive([]))
    show_ties: solara.Reactive[bool] = field(default_factory=lambda: solara.reactive(True))
    view_mode: solara.Reactive[str] = field(default_factory=lambda: solara.reactive("Automatic"))
    grouping: solara.Reactive[str] = field(default_factory=lambda: solara.reactive("Overall"))
    # the Compare tab's choices and its last result (kept here so they survive switching tabs)
    cmp_a: solara.Reactive[str] = field(default_factory=lambda: solara.reactive(""))
    cmp_b: solara.Reactive[str] = field(default_factory=lambda: solara.reactive(""))
    cmp_reps: solara.Reactive[int] = field(default_factory=lambda: solara.reactive(5))
    cmp_weeks: solara.Reactive[str] = field(default_factory=lambda: solara.reactive(""))  # as typed
    cmp_mine: solara.Reactive[bool] = field(default_factory=lambda: solara.reactive(False))
    cmp_request: solara.Reactive[Any] = field(default_factory=lambda: solara.reactive(None, equals=_same))
    cmp_progress: solara.Reactive[float] = field(default_factory=lambda: solara.reactive(0.0))
    cmp_state: solara.Reactive[str] = field(default_factory=lambda: solara.reactive("idle"))
    cmp_result: solara.Reactive[Any] = field(default_factory=lambda: solara.reactive(None, equals=_same))
    cmp_error: solara.Reactive[str] = field(default_factory=lambda: solara.reactive(""))
    #: Set by Pause before `playing` changes, so the Play thread takes no step after the click.
    stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def create(cls, settings: Settings) -> Ui:
        return cls(draft=solara.reactive(settings), seed_text=solara.reactive(str(settings.seed)))

    def set_playing(self, on: bool) -> None:
        if on:
            self.stop.clear()
        else:
            self.stop.set()
        self.playing.set(on)

    def clear_filters(self) -> None:
        self.roles.set([])
        self.wards.set([])
        self.orgs.set([])
        self.selected.set(-1)


def friendly(exc: BaseException) -> str:
    """A one-line message for the page (no traceback)."""
    if isinstance(exc, (ConfigError, ValueError)) and str(exc):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"Something went wrong: {type(exc).__name__}{': ' + text if text else ''}"


def guard(ui: Ui, action: Callable[..., Any], what: str = "") -> Callable[..., None]:
    """`action` as a click handler: failures are shown on the page, and the page stays usable."""

    def run(*args: Any) -> None:
        try:
            action(*args)
        except Exception as exc:
            log.warning("%s failed", what or getattr(action, "__name__", "action"), exc_info=True)
            prefix = f"{what}: " if what else ""
            ui.message.set(prefix + friendly(exc))

    return run


@solara.component
def Svg(svg: str, classes: list[str] | None = None) -> None:
    """An SVG string built by abm.app.svg (trusted: every text in it is escaped)."""
    solara.HTML(tag="div", unsafe_innerHTML=svg, classes=["cp-svg", *(classes or [])])


def title(text: str) -> None:
    """A panel's heading."""
    solara.HTML(tag="div", unsafe_innerHTML=html.escape(text), classes=["cp-panel-title"])


@solara.component
def Guarded(render: Callable[[], None], name: str) -> None:
    """Draws `render()`; if it raises, a readable message and a Try again button instead."""
    exc, clear = solara.use_exception()
    if exc is not None:
        log.warning("drawing the %s failed", name, exc_info=exc)
        with solara.Column():
            solara.Error(f"The {name} could not be drawn: {friendly(exc)}")
            solara.Button("Try again", on_click=clear, outlined=True)
        return
    Inner(render)


@solara.component
def Inner(render: Callable[[], None]) -> None:
    render()
