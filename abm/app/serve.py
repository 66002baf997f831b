"""Serve the app to a room: `solara run app.py` with the settings a workshop needs.

    python -m abm.app.serve --host 127.0.0.1 --port 8765 --production

takes the same options as `solara run` (`make app` runs it). What it changes, and why:

- Websocket keep-alive: uvicorn closes a page's websocket when the browser has not answered a
  ping within 20 s. A browser answers only once it reads the socket, and a page that is still
  busy loading (30 laptops opening the app at once, or a slow one) may not, so its socket was
  closed in the middle of the app's first render, and Solara's page then waited for ever on
  "Loading app" (measured: 1 or 2 of 30 pages opened at once on one machine). Here the answer
  may take `WS_PING_TIMEOUT_S`; a page that has really gone is still noticed (and its run freed
  after the kernel cull timeout).
- Solara's warning that session cookies fall back to samesite=lax over plain http is silenced:
  that fallback is right for a room served on http://127.0.0.1 or a LAN address, and the
  warning (8 lines on every page load) buried any real error in the facilitator's terminal.
- A port already in use (the app running in another terminal) is said in one line before
  anything starts; Solara printed "server is starting" and then the error.
- Telemetry is off, the kernel cull timeout is 1 hour and the browser tab is named "Common purpose"
  from the first byte (30 tabs of "Solara" are hard to tell apart) unless the environment says
  otherwise (`SOLARA_TELEMETRY_MIXPANEL_ENABLE`, `SOLARA_KERNEL_CULL_TIMEOUT`, `SOLARA_THEME_TITLE`).
- Solara's "This website runs on Solara" badge, fixed at the bottom right over the charts' end
  labels and the inspector, is left out (`SOLARA_THEME_SHOW_BANNER=True` restores it).
- The model's compiled kernels are loaded (and, the first time on a machine, compiled: a few
  seconds, then cached on disk) before the server starts, by a year of the default scenario, so
  the first person to press Run does not wait for them.

`solara run app.py` still works; it just keeps Solara's defaults.
"""

from __future__ import annotations

import argparse
import errno
import os
import socket
import sys
import warnings
from pathlib import Path

#: Seconds a browser may take to answer the server's websocket ping (uvicorn's default: 20).
WS_PING_TIMEOUT_S = 180.0
APP = Path(__file__).resolve().parents[2] / "app.py"
#: The page's title before the app has drawn (the page then sets its own, longer one).
TAB_TITLE = "Common purpose"


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on host:port (binding it fails with 'address in use')."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as uvicorn binds: a port just closed (TIME_WAIT) counts as free
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def warm_up() -> float:
    """Run a year of the default scenario, so every kernel a run uses is compiled and loaded.

    Returns the seconds it took (a few the first time on a machine, a fraction after).
    """
    import time

    from abm import CommonPurposeModel

    start = time.perf_counter()
    CommonPurposeModel(rng=0, steps=52).run()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    """Run `solara run app.py ARGV...` with the settings above (never returns normally).

    A port already in use (the app running in another terminal, say) is said in one line before
    anything starts, rather than after a "server is starting" message.
    """
    args = sys.argv[1:] if argv is None else argv
    where = argparse.ArgumentParser(add_help=False, allow_abbrev=False)  # only the two options checked here
    where.add_argument("--host", default="localhost")
    where.add_argument("--port", default="8765")
    known = where.parse_known_args(args)[0]
    host, port = known.host, known.port
    if port.isdigit() and int(port) > 0 and port_in_use(host, int(port)):
        print(
            f"abm: error: port {port} on {host} is in use: is the app already running? Open "
            f"http://{host}:{port}, or serve on another port (make app PORT=8800)",
            file=sys.stderr,
        )
        raise SystemExit(2)
    took = warm_up()
    if took > 1.0:
        print(f"abm: compiled the model's kernels in {took:.1f} s (once per machine)", file=sys.stderr)
    os.environ.setdefault("SOLARA_TELEMETRY_MIXPANEL_ENABLE", "False")
    os.environ.setdefault("SOLARA_KERNEL_CULL_TIMEOUT", "1h")
    os.environ.setdefault("SOLARA_THEME_TITLE", TAB_TITLE)
    # no "This website runs on Solara" badge over the charts and the inspector
    os.environ.setdefault("SOLARA_THEME_SHOW_BANNER", "False")
    warnings.filterwarnings("ignore", message="Cookies with samesite=none require https", category=UserWarning)
    import solara.__main__ as solara_cli
    import uvicorn

    class RoomConfig(uvicorn.Config):
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("ws_ping_timeout", WS_PING_TIMEOUT_S)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    # `solara run` builds its server with `uvicorn.Config(**its options)`, none of which is the
    # ping timeout, so the default above applies
    uvicorn.Config = RoomConfig  # type: ignore[misc]
    solara_cli.cli(["run", str(APP), *args])


if __name__ == "__main__":
    main()
