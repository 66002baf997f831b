"""Serving the app for browser tests, the benchmarks and the screenshots: a real `solara run`
(through `abm.app.serve`, as `make app` does) on a free loopback port, and Debian's chromium for
Playwright (it cannot download its own here).

`trace_steps` is the load benchmark's server-side probe: with `CP_STEP_TRACE=<file>` in the
server's environment, app.py installs it and every step of every session appends one JSON line
(seed, week, and when the step began, when the model finished it, and when the page's redraw
was handed to the websocket). Nothing is traced otherwise.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
#: Solara keeps a page's virtual kernel (and so its model) this long after the page's websocket
#: drops without the page saying goodbye (a closed tab says goodbye and is freed at once).
#: Solara's own default is 24 h; servers started here use this unless told otherwise.
TEST_CULL_TIMEOUT = "30s"
STEP_TRACE_ENV = "CP_STEP_TRACE"


@dataclass(frozen=True)
class Served:
    """A running app server: its URL, the process id of `solara run`, and its log file."""

    url: str
    pid: int
    log: Path


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
    """Serve the app as `make app` does (production mode) on a free loopback port; yield its URL; stop it."""
    with serve_process(log, timeout, extra_env) as served:
        yield served.url


@contextmanager
def serve_process(log: Path, timeout: float = 120.0, extra_env: dict[str, str] | None = None) -> Iterator[Served]:
    """Like `serve`, but yield the server's URL, process id and log (for memory sampling).

    Args:
        log: where the server's output goes.
        timeout: seconds to wait for the server to answer.
        extra_env: extra environment for the server (e.g. `SOLARA_KERNEL_CULL_TIMEOUT`,
            `CP_STEP_TRACE`); the kernel cull timeout defaults to `TEST_CULL_TIMEOUT`.
    """
    env = {
        **os.environ,
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        "SOLARA_KERNEL_CULL_TIMEOUT": os.environ.get("SOLARA_KERNEL_CULL_TIMEOUT", TEST_CULL_TIMEOUT),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    command = [
        sys.executable,
        "-m",
        "abm.app.serve",  # `solara run app.py` with the settings `make app` uses
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
        assert url is not None
        yield Served(url=url, pid=process.pid, log=log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


def trace_steps(path: Path, census_every: float = 0.5) -> None:
    """Log every session step to `path` as JSON lines (the load benchmark's server-side probe).

    Each line: `seed`, `week` (the week just stepped to), `t0` (the step was asked for), `t1` (the
    model finished the week and its history was recorded), `t2` (the step returned: the page's
    redraw was computed and queued for the websocket), `cpu` (this thread's CPU seconds from t0
    to t2), `weeks` (how many weeks that call stepped: Play steps several per redraw when the
    page cannot keep up; each gets its own line, with the call's t0, t2 and cpu); times are
    `time.time()` seconds, comparable with the browser's clock on this machine.
    Every `census_every` seconds a census line follows: `t`, `kernels` (Solara's live virtual
    kernels, one per open page until it is closed or culled), `sessions` (Session objects not
    yet freed) and `blocks` (`sys.getallocatedblocks()`: whether Python still holds objects, as
    opposed to the allocator keeping freed memory). Installing it twice does nothing more.
    """
    import weakref

    from solara.server import kernel_context

    from abm.app.session import Session

    if getattr(Session, "_traced", False):
        return
    out = path.open("a", buffering=1)
    write_lock = threading.Lock()
    local = threading.local()
    step, after_step, init = Session.step, Session._after_step, Session.__init__
    alive: weakref.WeakSet[Session] = weakref.WeakSet()

    def traced_init(self: Session, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)
        alive.add(self)

    def census() -> None:
        while True:
            line = {
                "t": time.time(),
                "kernels": len(kernel_context.contexts),
                "sessions": len(alive),
                "blocks": sys.getallocatedblocks(),  # Python objects' memory blocks in use
            }
            with write_lock:
                out.write(json.dumps(line) + "\n")
            time.sleep(census_every)

    def traced_after_step(self: Session) -> None:
        after_step(self)
        # read under the session lock (the caller holds it), where the week cannot move on
        assert self.model is not None
        entries = getattr(local, "entries", None)
        if entries is not None:
            entries.append((time.time(), int(self.model.seed), int(self.model.week)))

    def traced_step(self: Session, *args: object, **kwargs: object) -> int:
        local.entries = entries = []
        t0, c0 = time.time(), time.thread_time()
        try:
            stepped = step(self, *args, **kwargs)
        finally:
            local.entries = None
        t2, c2 = time.time(), time.thread_time()
        # one line per week stepped (a frame may step several weeks and redraw once)
        lines = [
            {"seed": seed, "week": week, "t0": t0, "t1": t1, "t2": t2, "cpu": c2 - c0, "weeks": len(entries)}
            for t1, seed, week in entries
        ]
        if stepped and lines:
            with write_lock:
                out.write("".join(json.dumps(line) + "\n" for line in lines))
        return stepped

    Session.__init__ = traced_init  # type: ignore[method-assign]
    Session.step = traced_step  # type: ignore[method-assign]
    Session._after_step = traced_after_step  # type: ignore[method-assign]
    Session._traced = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=census, daemon=True, name="cp-step-trace-census")
    # Solara's Thread captures the current page's kernel at creation: this one must not keep a
    # page (app.py may be imported while the first page renders) alive for ever
    thread.current_context = None  # type: ignore[attr-defined]
    thread.start()
