"""Fixtures for the browser tests: Debian's chromium for pytest-playwright, and a live app server.

Playwright cannot download its own browser here (no internet), so the tests use the system
chromium (`apt-get install -y chromium`, done by `make test`). The app server is `solara run
app.py` in production mode on a free loopback port (`abm.app.testing.serve`), one per xdist
worker, started once per session and stopped afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from abm.app.testing import CHROMIUM, CHROMIUM_ARGS, serve

STARTUP_TIMEOUT_S = 120.0


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Launch Debian's chromium (headless) instead of a Playwright-downloaded browser."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get update && apt-get install -y chromium`")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start `solara run app.py` on a free loopback port and yield its URL; stop it afterwards."""
    log = tmp_path_factory.mktemp("app_server") / "solara.log"
    try:
        with serve(log, timeout=STARTUP_TIMEOUT_S) as url:
            yield url
    except RuntimeError as exc:
        pytest.fail(str(exc))
