"""The Common Purpose workshop app: `make app`, or `solara run app.py --host 127.0.0.1 --port 8765`.

Every browser session builds its own model inside the `Page` component (see abm/app/): nothing
model-related lives at module level, so two people on the same server never see each other's
runs. Every front-end asset is served by this server (solara-assets; the network canvas is a Vue
component shipped in abm/app/network.vue), so the app works with no internet. Telemetry is off.

Vision + Value + Collective function = Common purpose.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import threading

os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")

from pathlib import Path

import solara
import solara.server.settings

from abm.app.page import Page
from abm.app.testing import STEP_TRACE_ENV, trace_steps

# `solara run` reads the environment before it imports this file: switch telemetry off here too.
solara.server.settings.telemetry.mixpanel_enable = False
# Solara's "This website runs on Solara" badge is fixed at the bottom right of every page, over
# the charts' end labels and the inspector: leave it out (SOLARA_THEME_SHOW_BANNER=True restores it).
if "SOLARA_THEME_SHOW_BANNER" not in os.environ:
    solara.server.settings.theme.show_banner = False

#: Seconds after a page's kernel closes before freed memory is handed back (Solara collects the
#: closed kernel's reference cycles about a second after the close).
TRIM_DELAY_S = 3.0
_trim_lock = threading.Lock()
_trim_pending = False


def _libc_malloc_trim():
    """glibc's `malloc_trim`, or None elsewhere (macOS, musl)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_malloc_trim = _libc_malloc_trim()


def _hand_back_memory() -> None:
    global _trim_pending
    with _trim_lock:
        _trim_pending = False
    gc.collect()
    _malloc_trim(0)


def _after_page_closed() -> None:
    """Hand the memory of a closed page back to the system, once for a burst of closes.

    glibc keeps freed memory in the server's malloc arenas (one per thread that allocated), so
    without this the server's size never goes down after participants leave a workshop.
    """
    global _trim_pending
    if _malloc_trim is None:
        return
    with _trim_lock:
        if _trim_pending:
            return
        _trim_pending = True
    timer = threading.Timer(TRIM_DELAY_S, _hand_back_memory)
    timer.daemon = True
    # Solara's threads carry the page's kernel; this one must not keep the closed page alive
    timer.current_context = None  # type: ignore[attr-defined]
    timer.start()


@solara.lab.on_kernel_start
def _per_page() -> object:
    """Runs when a page's kernel starts; what it returns runs when that kernel closes."""
    return _after_page_closed


# The load benchmark (benchmarks/workshop_load.py) times each step on the server; off otherwise.
if os.environ.get(STEP_TRACE_ENV):
    trace_steps(Path(os.environ[STEP_TRACE_ENV]))


@solara.component
def Layout(children: list | None = None) -> None:
    """The app's frame: Solara's AppLayout in the project's colour (the title comes from the page)."""
    solara.AppLayout(children=children or [], color="#1d3557")


__all__ = ["Layout", "Page"]
