"""Fixtures for the browser tests: Debian's chromium for pytest-playwright, and a live app server.

Playwright cannot download its own browser here (no internet), so the tests use the system
chromium (`apt-get install -y chromium`, done by `make test`). The app server is `solara run
app.py` in production mode on a free loopback port, one per xdist worker, started once per
session and stopped afterwards.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
STARTUP_TIMEOUT_S = 120.0
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's chromium (headless) instead of a Playwright-downloaded browser."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium`")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


def _server_url(log: Path) -> str | None:
    match = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return f"http://127.0.0.1:{match.group(1)}" if match else None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `solara run app.py` on a free loopback port and yield its URL; stop it afterwards."""
    log = tmp_path_factory.mktemp("app_server") / "solara.log"
    env = {**os.environ, "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False", "PYTHONUNBUFFERED": "1"}
    command = [
        sys.executable,
        "-m",
        "solara",
        "run",
        str(ROOT / "app.py"),
        "--host",
        "127.0.0.1",
        "--port",
        "0",  # solara picks a free port and prints it
        "--production",
        "--no-open",
        "--no-check-version",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so teardown stops it and its children
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        url = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the app server exited with code {process.returncode}:\n{log.read_text(errors='replace')}")
            url = url or _server_url(log)
            if url and _answers(url + "/"):
                break
            time.sleep(0.25)
        else:
            output = log.read_text(errors="replace")
            pytest.fail(f"the app server did not answer within {STARTUP_TIMEOUT_S:.0f} s:\n{output}")
        assert url is not None
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
