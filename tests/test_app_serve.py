"""`make app`'s server (`abm.app.serve`): a page that is slow to read its websocket keeps it.

uvicorn closes a websocket whose browser has not answered a ping within 20 s (code 1011,
"keepalive ping timeout"); a page still busy loading does not read its socket, so with 30 pages
opening at once some were cut off in the middle of the first render and stayed on "Loading app"
(benchmarks/workshop_load.py). The test connects a websocket that never reads or answers, like
such a page, and checks the server still holds it after the point where uvicorn's defaults drop it.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import uuid
from pathlib import Path

import pytest
import uvicorn

from abm.app import serve
from abm.app.testing import serve as serving


def silent_websocket(url: str) -> socket.socket:
    """Open a kernel websocket on the app, then never read from it or answer its pings."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    path = f"/jupyter/api/kernels/{uuid.uuid4()}/channels?session_id={uuid.uuid4()}"
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return sock


def everything_received(sock: socket.socket) -> tuple[bytes, bool]:
    """What the server sent so far, and whether it has closed the connection."""
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
        return data, True
    except BlockingIOError:
        return data, False


@pytest.mark.slow  # it waits out uvicorn's default ping interval and timeout (40 s)
def test_a_page_slow_to_answer_pings_keeps_its_websocket(tmp_path: Path) -> None:
    with serving(tmp_path / "server.log") as url:
        sock = silent_websocket(url)
        try:
            time.sleep(50.0)  # uvicorn's defaults close it after 40 s (20 s ping interval + 20 s timeout)
            data, closed = everything_received(sock)
        finally:
            sock.close()
    assert data.startswith(b"HTTP/1.1 101")  # the websocket was accepted
    assert b"\x89" in data  # and pinged
    assert b"keepalive ping timeout" not in data and not closed


def test_the_ping_timeout_applies_to_the_server_solara_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    import solara.__main__ as solara_cli

    seen: list[list[str]] = []
    monkeypatch.setattr(solara_cli, "cli", seen.append)
    monkeypatch.setattr(uvicorn, "Config", uvicorn.Config)  # undone after the test
    monkeypatch.setattr(os, "environ", {"SOLARA_KERNEL_CULL_TIMEOUT": "10m"})
    serve.main(["--port", "0", "--production"])
    assert seen == [["run", str(serve.APP), "--port", "0", "--production"]]
    assert os.environ == {
        "SOLARA_KERNEL_CULL_TIMEOUT": "10m",
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        "SOLARA_THEME_TITLE": serve.TAB_TITLE,
        "SOLARA_THEME_SHOW_BANNER": "False",  # no "This website runs on Solara" over the charts
    }
    assert uvicorn.Config(app="app:app").ws_ping_timeout == serve.WS_PING_TIMEOUT_S
    assert uvicorn.Config(app="app:app", ws_ping_timeout=5.0).ws_ping_timeout == 5.0


def test_the_tab_is_named_before_the_app_draws(tmp_path: Path) -> None:
    """The HTML the server sends first (shown while the app loads) names the tab after the model."""
    import urllib.request

    log = tmp_path / "server.log"
    with serving(log) as url:
        for _ in range(3):  # three page loads
            with urllib.request.urlopen(url, timeout=60) as page:
                html = page.read().decode()
    assert f"<title>{serve.TAB_TITLE}</title>" in html
    # Solara's cookie warning (8 lines a page load over http) is not in the facilitator's terminal
    assert "samesite" not in log.read_text().lower()


def test_a_port_in_use_is_said_in_one_line_before_anything_starts(capsys: pytest.CaptureFixture[str]) -> None:
    """A second `make app` (the app already running) says so, instead of 'server is starting' then an error."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as stop:
            serve.main(["--host", "127.0.0.1", f"--port={port}", "--production"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"abm: error: port {port} on 127.0.0.1 is in use") and len(err.splitlines()) == 1
    assert not serve.port_in_use("127.0.0.1", port)  # free again once closed
