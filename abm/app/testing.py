"""Serving the app for browser tests, the benchmark and the screenshots: a real `solara run`
on a free loopback port, and Debian's chromium for Playwright (it cannot download its own here)."""

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
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _server_url(log: Path) -> str | None:
    match = re.search(r"http://127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
    return f"http://127.0.0.1:{match.group(1)}" if match else None


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def serve(log: Path, timeout: float = 120.0, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `solara run app.py` (production mode) on a free loopback port; yield its URL; stop it."""
    env = {
        **os.environ,
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
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
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, so we stop it and its children
        )
    try:
        deadline = time.monotonic() + timeout
        url = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"the app server exited with code {process.returncode}:\n{log.read_text()}")
            url = url or _server_url(log)
            if url and _answers(url + "/"):
                break
            time.sleep(0.25)
        else:
            raise RuntimeError(f"the app server did not answer within {timeout:.0f} s:\n{log.read_text()}")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)
