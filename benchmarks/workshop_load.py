"""A workshop room on one machine: N browser sessions press Play at once on one app server.

    python benchmarks/workshop_load.py                          # 10 sessions, 52 weeks each
    python benchmarks/workshop_load.py --sessions 30 --weeks 52
    python benchmarks/workshop_load.py --sessions 3 --weeks 20  # a quick check

It starts `solara run app.py` (production mode, as `make app` does) on a free loopback port and
opens N sessions in ONE headless chromium (Debian's, through Playwright): N browser contexts,
each one page, like N laptops. Every off-machine request is aborted (a workshop room may have
no internet) and counted. All sessions open at once; each then sets its own seed (101, 102, ...:
the default scenario with a different run per person, and a way to tell the sessions apart on
the server), sets the speed (default: the fastest, 12 weeks per second), and, once every
session is ready, all press Play together and play until week W.

What it measures:

- **update latency** (the headline figure): for every week w of every session, the time from
  the moment the server's model finished computing week w (a probe in the server, switched on
  by `CP_STEP_TRACE`, see `abm.app.testing.trace_steps`) to the moment that session's page
  shows it: its header reads "Week w" (or later) AND its network canvas has finished painting
  week w (or later), both seen by a MutationObserver in the page. Both clocks are this
  machine's wall clock; the browser's offset is measured and removed. It covers building the
  page's view of the run, rendering it on the server, the websocket, and the browser applying
  and painting the update. The header alone is also given ("header only").
- **update interval**: the time between two updates shown in a page; with Play at S weeks per
  second it cannot be below 1/S. When the pages cannot keep up, Play steps several weeks per
  frame (at most 4; `abm.app.pacing`) and redraws once: **weeks per frame** gives how many.
  A week skipped on screen still counts in the latency, from when the server finished it to
  when the page showed it or a later week. Also given: weeks per second per session.
- **server time per frame** from the probe: the model step(s) (`t1 - t0`), the page's redraw
  on the server (`t2 - t1`), and the CPU seconds of the stepping thread; and the server process's
  total CPU seconds per session-week while playing (machine-independent capacity: two cores
  give at most 2 / that many session-weeks per second).
- **errors**: page errors and console errors, error banners in the page, local requests that
  failed, off-machine requests, sessions that did not reach week W in time, a page showing a
  seed other than its own, and tracebacks in the server log.
- **server memory**: the resident set size of the server's process tree, sampled every 0.5 s
  from start-up (baseline, before any page) through play (peak) until `--settle` seconds after
  every page has closed (after): a closed tab tells the server at once (pagehide beacon), which
  drops its virtual kernel; a page that just vanishes is dropped after the kernel cull timeout
  (`SOLARA_KERNEL_CULL_TIMEOUT`, set by `--cull-timeout`).

The browsers run on the same machine as the server here, so they compete for its cores: the
figures are pessimistic for a room where every participant has a laptop. The machine's load
average is recorded. This is a benchmark, not a test: medians and 95th percentiles are reported.
Output: a table on stdout, and the run in benchmarks/workshop_load.json (or `--out`), which
keeps the latest run for each number of sessions: {"runs": {"10": {...}, "30": {...}}}.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright  # noqa: E402

from abm.app.page import default_settings  # noqa: E402
from abm.app.testing import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, STEP_TRACE_ENV, serve_process  # noqa: E402
from abm.app.ui import MAX_SPEED, MIN_SPEED  # noqa: E402

OUT = ROOT / "benchmarks" / "workshop_load.json"
FIRST_SEED = 101
SAMPLE_EVERY_S = 0.5
WARM_SETTLE_S = 8.0

#: Record (week, wall-clock ms) each time the header's week text changes, and each time the
#: network canvas finishes painting a new week (network.vue sets data-week after drawing).
OBSERVE_JS = """() => {
    if (window.__cpWeeks) return;
    window.__cpWeeks = [];
    window.__cpPaints = [];
    let lastText = null, lastPaint = null;
    const read = () => {
        const now = performance.timeOrigin + performance.now();
        const el = document.querySelector('.cp-week');
        const text = el ? el.textContent.trim() : '';
        if (text !== lastText) {
            lastText = text;
            const m = /^Week (\\d+)$/.exec(text);
            if (m) window.__cpWeeks.push([Number(m[1]), now]);
        }
        const canvas = document.querySelector('.cp-network canvas');
        const painted = canvas ? canvas.dataset.week : undefined;
        if (painted !== undefined && painted !== lastPaint) {
            lastPaint = painted;
            window.__cpPaints.push([Number(painted), now]);
        }
    };
    new MutationObserver(read).observe(document.body, {
        subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ['data-week'],
    });
    read();
}"""
#: Records why the page's websockets closed (code, reason, clean, seconds since the page began).
WS_CLOSES_JS = """(() => {
    window.__cpSocketCloses = [];
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener('close', e => window.__cpSocketCloses.push(
                [e.code, e.reason, e.wasClean, Math.round(performance.now() / 100) / 10]));
        }
    };
})()"""
WEEK_IS_JS = "w => { const e = document.querySelector('.cp-week'); return e && e.textContent.trim() === 'Week ' + w; }"
REACHED_JS = """w => [window.__cpWeeks, window.__cpPaints].every(seen => (seen || []).some(x => x[0] >= w))"""
CLOCK_JS = "() => performance.timeOrigin + performance.now()"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be 1 or more")
    return value


def speed_arg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not MIN_SPEED <= value <= MAX_SPEED:
        raise argparse.ArgumentTypeError(f"{value} is outside the app's speeds, {MIN_SPEED:g} to {MAX_SPEED:g}")
    return value


def duration_arg(text: str) -> str:
    if not re.fullmatch(r"\d+(\.\d+)?[smh]?", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 20s, 10m or 1h")
    return text


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear between closest ranks; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": max(values) if values else float("nan"),
    }


class MemorySampler:
    """Samples the RSS of a process and its children every `every` seconds, in a thread."""

    def __init__(self, pid: int, every: float = SAMPLE_EVERY_S) -> None:
        self.root = psutil.Process(pid)
        self.every = every
        self.samples: list[tuple[float, float, str]] = []  # (time, MB, phase)
        self.phase = "idle"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def tree(self) -> list[psutil.Process]:
        try:
            return [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def rss_mb(self) -> float:
        total = 0
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total / 2**20

    def cpu_s(self) -> float:
        """User + system CPU seconds of the server tree so far."""
        total = 0.0
        for proc in self.tree():
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def others_cpu_s(self) -> float:
        """CPU seconds of this script's other child processes: Playwright's driver and chromium."""
        server = {proc.pid for proc in self.tree()}
        total = 0.0
        for proc in psutil.Process().children(recursive=True):
            if proc.pid not in server:
                with contextlib.suppress(psutil.NoSuchProcess):
                    t = proc.cpu_times()
                    total += t.user + t.system
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((time.time(), self.rss_mb(), self.phase))

    def start(self) -> None:
        self.samples.append((time.time(), self.rss_mb(), self.phase))
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def of(self, phase: str) -> list[float]:
        return [mb for _, mb, p in self.samples if p == phase]


@dataclass
class Session:
    """One simulated participant: a browser context with one page, and what went wrong in it."""

    index: int
    seed: int
    context: BrowserContext | None = None
    page: Page | None = None
    load_s: float = float("nan")
    clock_offset_ms: float = 0.0
    weeks: list[tuple[int, float]] = field(default_factory=list)  # header: (week, server-clock seconds)
    paints: list[tuple[int, float]] = field(default_factory=list)  # canvas painted: (week, seconds)
    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    ws_bytes: int = 0  # received over the page's websockets while counting
    ws_in: int = 0  # messages received, and sent, while counting
    ws_out: int = 0
    counting: bool = False
    stage: str = "not started"  # how far opening got, with seconds since it began (for a stall)
    stage_log: list[tuple[str, float]] = field(default_factory=list)
    sockets: list[dict[str, Any]] = field(default_factory=list)  # the page's websockets (for a stall)
    leaving: bool = False

    def reached(self, stage: str, since: float) -> None:
        self.stage = stage
        self.stage_log.append((stage, round(time.perf_counter() - since, 2)))

    def on_websocket(self, ws: Any) -> None:
        self.sockets.append({"url": ws.url[-60:], "frames_in": 0, "closed": False})
        info = self.sockets[-1]

        def closed(_: Any) -> None:
            info["closed"] = True

        ws.on("close", closed)

        def received(payload: str | bytes) -> None:
            info["frames_in"] += 1
            if self.counting:
                self.ws_bytes += len(payload)
                self.ws_in += 1

        def sent(payload: str | bytes) -> None:
            if self.counting:
                self.ws_out += 1

        ws.on("framereceived", received)
        ws.on("framesent", sent)

    async def route(self, route: Route) -> None:
        url = route.request.url
        if (urlsplit(url).hostname or "") in LOOPBACK or url.startswith(("data:", "blob:")):
            await route.continue_()
        else:
            self.outside.append(url)
            await route.abort()

    def errors(self) -> list[str]:
        return [
            *(f"page error: {e}" for e in self.page_errors),
            *(f"console error: {e}" for e in self.console_errors),
            *(f"failed request: {e}" for e in self.failed),
            *(f"off-machine request: {e}" for e in self.outside),
            *self.problems,
        ]


async def open_session(browser: Browser, url: str, s: Session, speed: int, timeout_ms: float) -> None:
    """Open the page, wait for week 0, set this session's seed and the speed, start observing."""
    s.context = await browser.new_context(viewport={"width": 1280, "height": 900})
    await s.context.route("**/*", s.route)
    await s.context.add_init_script(WS_CLOSES_JS)
    page = s.page = await s.context.new_page()
    page.on("pageerror", lambda exc: s.page_errors.append(str(exc)[:300]))
    page.on("console", lambda msg: s.console_errors.append(msg.text[:300]) if msg.type == "error" else None)
    page.on("websocket", s.on_websocket)
    page.on("response", lambda r: s.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on(
        "requestfailed",
        lambda r: s.failed.append(f"{r.failure} {r.url}") if r.url.startswith(url) and not s.leaving else None,
    )
    page.set_default_timeout(timeout_ms)
    t0 = time.perf_counter()
    s.reached("loading the page", t0)
    await page.goto(url + "/", timeout=timeout_ms)
    s.reached("waiting for week 0", t0)
    await page.wait_for_function(WEEK_IS_JS, arg=0, timeout=timeout_ms)
    s.load_s = time.perf_counter() - t0
    s.reached("setting the seed", t0)
    seed_box = page.get_by_label("Seed")
    await seed_box.fill(str(s.seed))
    await seed_box.press("Enter")
    s.reached("waiting for the seed's run", t0)
    await page.locator(".cp-sub", has_text=f"seed {s.seed}").wait_for(timeout=timeout_ms)
    await page.wait_for_function(WEEK_IS_JS, arg=0, timeout=timeout_ms)
    s.reached("setting the speed", t0)
    slider = page.locator(".v-navigation-drawer [role=slider]").first  # the speed slider comes first
    await slider.focus()
    if speed == int(MAX_SPEED):
        await slider.press("End")  # one change (and one redraw) instead of eleven
    else:
        await slider.press("Home")
        for _ in range(speed - int(MIN_SPEED)):
            await slider.press("ArrowRight")
    label = page.locator(".cp-slider-label", has_text="Speed").first
    await label.locator("b", has_text=re.compile(rf"^{speed}$")).wait_for(timeout=timeout_ms)
    s.reached("reading the clock", t0)
    # the browser's clock against ours: the middle of the round trip
    before = time.time()
    js_ms = await page.evaluate(CLOCK_JS)
    after = time.time()
    s.clock_offset_ms = js_ms - 500.0 * (before + after)
    await page.evaluate(OBSERVE_JS)
    s.reached("ready", t0)
    s.counting = True


async def play(s: Session, weeks: int, timeout_ms: float) -> None:
    """Press Play, wait for week `weeks` (or the timeout), press Pause, collect the weeks seen."""
    page = s.page
    assert page is not None
    await page.get_by_role("button", name="Play", exact=True).click()
    try:
        await page.wait_for_function(REACHED_JS, arg=weeks, timeout=timeout_ms, polling=100)
    except Exception:
        shown = await page.locator(".cp-week").inner_text()
        s.problems.append(f"did not reach week {weeks} within {timeout_ms / 1000:.0f} s (showing {shown!r})")
    pause = page.get_by_role("button", name="Pause", exact=True)
    if await pause.count():
        await pause.click()
    s.counting = False
    raw = await page.evaluate("() => [window.__cpWeeks, window.__cpPaints]")
    s.weeks, s.paints = ([(int(w), (ms - s.clock_offset_ms) / 1000.0) for w, ms in part] for part in raw)
    sub = await page.locator(".cp-sub").inner_text()
    if f"seed {s.seed}" not in sub:
        s.problems.append(f"the header shows another seed: {sub!r}")
    if await page.locator(".v-alert.error").count():
        texts = await page.locator(".v-alert.error").all_inner_texts()
        s.problems.append(f"error banner: {' | '.join(t.strip()[:200] for t in texts)}")
    seen = [w for w, _ in s.weeks]
    if seen and any(b <= a for a, b in itertools.pairwise(seen)):
        s.problems.append(f"the weeks shown went backwards or repeated: {seen[:60]}")


async def close_session(s: Session, leave: str) -> None:
    """Leave the app: `close` navigates away as closing a tab does (the page's pagehide beacon
    tells the server, which drops the page's kernel at once); `vanish` just kills the browser
    context, like a laptop that sleeps or loses the network (the server drops the kernel after
    the cull timeout)."""
    s.leaving = True  # requests cut short by leaving are not failures
    if s.page is not None and leave == "close":
        try:
            await s.page.goto("about:blank")
            await asyncio.sleep(1.0)  # a closed tab's beacon still goes out; give this one time to
        except Exception as exc:  # a page that already crashed still counts as closed
            s.problems.append(f"leaving the page failed: {exc}")
    if s.context is not None:
        if leave == "vanish":
            await s.context.set_offline(True)  # no goodbye can get out, as with a dead network
        await s.context.close()


def read_trace(path: Path) -> tuple[dict[tuple[int, int], dict[str, float]], list[dict[str, float]]]:
    """The server's probe: steps by (seed, week) (a week stepped twice keeps its last step), and
    the census of live kernels and sessions."""
    steps: dict[tuple[int, int], dict[str, float]] = {}
    census: list[dict[str, float]] = []
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                if "kernels" in row:
                    census.append(row)
                else:
                    steps[(row["seed"], row["week"])] = row
    return steps, census


def first_at_least(seen: list[tuple[int, float]], week: int) -> float | None:
    """When the page first showed `week` or a later one (a busy page may skip a week), or None."""
    return next((t for w, t in seen if w >= week), None)


def server_errors(log: Path) -> list[str]:
    lines = log.read_text(errors="replace").splitlines()
    return [line[:300] for line in lines if "Traceback" in line or " ERROR " in line or line.startswith("ERROR")]


@dataclass
class Round:
    """One wave of participants: they open the app together, play, and leave."""

    sessions: list[Session]
    ready: list[Session]
    open_s: float
    play_s: float
    server_cpu_s: float
    browser_cpu_s: float
    t_close: float
    open_server_cpu_s: float
    open_browser_cpu_s: float


async def one_round(args: argparse.Namespace, browser: Browser, url: str, sampler: MemorySampler, r: int) -> Round:
    timeout_ms = args.timeout * 1000.0
    # each round its own seeds, so the server's probe tells every session of every round apart
    sessions = [Session(index=i, seed=FIRST_SEED + 1000 * r + i) for i in range(args.sessions)]
    sampler.phase = f"opening-{r}"
    open_cpu0, open_browser0 = sampler.cpu_s(), sampler.others_cpu_s()
    t_open = time.perf_counter()

    async def report_opening() -> None:
        # a stall shows where the pages wait (one line every 30 s while pages are opening)
        while True:
            await asyncio.sleep(30.0)
            stages = collections.Counter(s.stage for s in sessions)
            print(f"  opening, {time.perf_counter() - t_open:.0f} s: {dict(stages)}", flush=True)

    reporter = asyncio.create_task(report_opening())
    opened = await asyncio.gather(
        *(open_session(browser, url, s, args.speed, timeout_ms) for s in sessions), return_exceptions=True
    )
    reporter.cancel()
    open_s = time.perf_counter() - t_open
    open_cpu = (sampler.cpu_s() - open_cpu0, sampler.others_cpu_s() - open_browser0)
    for s, result in zip(sessions, opened, strict=True):
        if isinstance(result, BaseException):
            shows = "?"
            closes: Any = "?"
            with contextlib.suppress(Exception):
                assert s.page is not None
                shows = " ".join((await s.page.inner_text("body", timeout=5000)).split())[:200]
                closes = await s.page.evaluate("() => window.__cpSocketCloses")
            s.problems.append(
                f"could not open and prepare the page (stuck at: {s.stage}; stages and seconds: "
                f"{s.stage_log}; websockets: {s.sockets}; closes (code, reason, clean, s after load): {closes}; "
                f"the page shows: {shows!r}): "
                f"{type(result).__name__}: {str(result)[:300]}"
            )
            print(f"  session {s.index + 1} stuck: {s.problems[-1]}; {s.errors()[:-1]}", flush=True)
    ready = [s for s, result in zip(sessions, opened, strict=True) if not isinstance(result, BaseException)]
    print(
        f"round {r + 1}: {len(ready)} of {len(sessions)} sessions ready after {open_s:.1f} s; "
        f"playing {args.weeks} weeks",
        flush=True,
    )
    sampler.phase = f"playing-{r}"
    cpu0, browser0, t_play = sampler.cpu_s(), sampler.others_cpu_s(), time.perf_counter()
    play_timeout = timeout_ms + 1000.0 * args.weeks * 3.0
    await asyncio.gather(*(play(s, args.weeks, play_timeout) for s in ready))
    play_s, cpu_play = time.perf_counter() - t_play, sampler.cpu_s() - cpu0
    browser_play = sampler.others_cpu_s() - browser0
    sampler.phase = f"closing-{r}"
    t_close = time.time()
    await asyncio.gather(*(close_session(s, args.leave) for s in sessions))
    sampler.phase = f"after-{r}"
    print(f"round {r + 1}: all pages closed; watching the server's memory for {args.settle:.0f} s", flush=True)
    await asyncio.sleep(args.settle)
    return Round(sessions, ready, open_s, play_s, cpu_play, browser_play, t_close, *open_cpu)


async def run(args: argparse.Namespace, url: str, sampler: MemorySampler, trace: Path) -> dict[str, Any]:
    timeout_ms = args.timeout * 1000.0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # one page opened and closed first: the server's lazy imports and caches are then loaded,
        # so the baseline is the idle server a workshop sees between participants
        sampler.phase = "warm-up"
        warm = Session(index=-1, seed=FIRST_SEED - 1)
        await open_session(browser, url, warm, args.speed, timeout_ms)
        await close_session(warm, "close")
        await asyncio.sleep(WARM_SETTLE_S)
        sampler.phase = "warm"
        await asyncio.sleep(3.0)
        rounds = [await one_round(args, browser, url, sampler, r) for r in range(args.rounds)]
        await browser.close()
    sessions = [s for rnd in rounds for s in rnd.sessions]
    ready = [s for rnd in rounds for s in rnd.ready]
    open_s = statistics.median(rnd.open_s for rnd in rounds)
    play_s = sum(rnd.play_s for rnd in rounds)
    cpu_play = sum(rnd.server_cpu_s for rnd in rounds)
    browser_play = sum(rnd.browser_cpu_s for rnd in rounds)
    t_close = rounds[-1].t_close

    steps, census = read_trace(trace)
    latency, interval, rates, model_ms, redraw_ms, step_cpu_ms, kb_per_week = [], [], [], [], [], [], []
    msgs_in, msgs_out, header_latency = [], [], []
    frames: dict[tuple[int, float], dict[str, float]] = {}
    weeks_per_frame: list[float] = []
    weeks_done = 0
    for s in sessions:
        shown = [(w, t) for w, t in s.weeks if 1 <= w <= args.weeks]  # Pause may land one week late
        for w in range(1, args.weeks + 1):
            header = first_at_least(s.weeks, w)
            if header is None:
                break  # the session stopped before week w (reported as a problem by `play`)
            weeks_done += 1
            row = steps.get((s.seed, w))
            if row is None:
                s.problems.append(f"week {w} was shown but the server has no record of stepping it")
                continue
            painted = first_at_least(s.paints, w)
            if painted is None:
                s.problems.append(f"the network canvas never painted week {w}")
                continue
            latency.append(1000.0 * (max(header, painted) - row["t1"]))
            header_latency.append(1000.0 * (header - row["t1"]))
            # one frame (one step call of Play) may step several weeks: keep its last week's line
            key = (s.seed, row["t0"])
            if key not in frames or row["t1"] > frames[key]["t1"]:
                frames[key] = row
        interval += [1000.0 * (b[1] - a[1]) for a, b in itertools.pairwise(shown) if b[0] > a[0]]
        seen_max = max((w for w, _ in s.weeks), default=0)
        if seen_max:
            kb_per_week.append(s.ws_bytes / 1024.0 / seen_max)
            msgs_in.append(s.ws_in / seen_max)
            msgs_out.append(s.ws_out / seen_max)
        if len(shown) >= 2:
            rates.append((shown[-1][0] - shown[0][0]) / (shown[-1][1] - shown[0][1]))
    for row in frames.values():
        model_ms.append(1000.0 * (row["t1"] - row["t0"]))
        redraw_ms.append(1000.0 * (row["t2"] - row["t1"]))
        step_cpu_ms.append(1000.0 * row["cpu"])
        weeks_per_frame.append(row.get("weeks", 1))
    errors = {f"session {s.index + 1} (seed {s.seed})": s.errors() for s in sessions if s.errors()}
    log_errors = server_errors(args.log)
    cold = statistics.median(sampler.of("idle")) if sampler.of("idle") else float("nan")
    baseline = statistics.median(sampler.of("warm")) if sampler.of("warm") else float("nan")
    peak = max(mb for _, mb, _ in sampler.samples)
    per_round = []
    for r in range(len(rounds)):
        during = [mb for _, mb, p in sampler.samples if p.endswith(f"-{r}") and not p.startswith("after")]
        settled = [(t, mb) for t, mb, p in sampler.samples if p == f"after-{r}"]
        tail = [mb for t, mb in settled if t >= settled[-1][0] - 5.0] if settled else []
        per_round.append(
            {"peak": max(during, default=float("nan")), "after": statistics.median(tail) if tail else None}
        )
    after = per_round[-1]["after"] if per_round[-1]["after"] is not None else float("nan")
    live = [c for c in census if c["t"] >= t_close]
    gone_at = next((c["t"] - t_close for c in live if c["sessions"] == 0), None)
    freed_at = next(
        (
            t - t_close
            for t, mb, p in sampler.samples
            if p.startswith("after") and t >= t_close and mb <= baseline + 0.1 * (peak - baseline)
        ),
        None,
    )
    return {
        "sessions": args.sessions * args.rounds,
        "sessions_at_once": args.sessions,
        "rounds": args.rounds,
        "sessions_ready": len(ready),
        "weeks": args.weeks,
        "speed_weeks_per_s": args.speed,
        "browsers": "one headless chromium, one context (and page) per session",
        "steps_done": weeks_done,
        "steps_expected": args.sessions * args.rounds * args.weeks,
        "open_all_s": open_s,  # median over rounds
        "page_load_s": summary([s.load_s for s in ready]),
        "opening_cpu_s": {
            "server": sum(rnd.open_server_cpu_s for rnd in rounds),
            "browsers": sum(rnd.open_browser_cpu_s for rnd in rounds),
        },
        "play_wall_s": play_s,
        "update_latency_ms": summary(latency),
        "header_latency_ms": summary(header_latency),
        "update_interval_ms": summary(interval),
        "weeks_per_frame": summary(weeks_per_frame),
        "weeks_per_s_per_session": summary(rates),
        "server_model_step_ms": summary(model_ms),
        "server_redraw_ms": summary(redraw_ms),
        "server_step_thread_cpu_ms": summary(step_cpu_ms),
        "websocket_kb_per_week": summary(kb_per_week),
        "websocket_messages_per_week_to_page": summary(msgs_in),
        "websocket_messages_per_week_from_page": summary(msgs_out),
        "server_cpu_s_while_playing": cpu_play,
        "server_cpu_ms_per_session_week": 1000.0 * cpu_play / max(weeks_done, 1),
        "browser_cpu_s_while_playing": browser_play,
        "browser_cpu_ms_per_session_week": 1000.0 * browser_play / max(weeks_done, 1),
        "errors": sum(len(v) for v in errors.values()) + len(log_errors),
        "session_errors": errors,
        "server_log_errors": log_errors[:50],
        "memory_mb": {
            "server_started": cold,
            "baseline": baseline,
            "baseline_means": "idle, after one page was opened and closed (lazy imports and caches loaded)",
            "peak": peak,
            "after": after,
            "seconds_until_near_baseline": freed_at,
            "near_baseline_means": "baseline + 10% of (peak - baseline)",
            "rounds": per_round,
            "settle_s": args.settle,
            "sessions_left_by": args.leave,
            "kernel_cull_timeout": args.cull_timeout,
        },
        "server_objects": {
            "peak_kernels": max((c["kernels"] for c in census), default=None),
            "peak_sessions": max((c["sessions"] for c in census), default=None),
            "kernels_at_end": census[-1]["kernels"] if census else None,
            "sessions_at_end": census[-1]["sessions"] if census else None,
            "seconds_until_no_sessions": gone_at,
        },
        "memory_samples": [(round(t - sampler.samples[0][0], 1), round(mb, 1), p) for t, mb, p in sampler.samples],
    }


def save(out: Path, result: dict[str, Any]) -> None:
    """Keep the latest run for each number of sessions at once: {"runs": {"10": ..., "30": ...}}."""
    runs: dict[str, Any] = {}
    try:
        old = json.loads(out.read_text())
        if isinstance(old, dict) and isinstance(old.get("runs"), dict):
            runs = old["runs"]
    except (OSError, ValueError):
        pass  # no file yet, or not one of ours: start afresh
    runs[str(result["sessions_at_once"])] = result
    ordered = dict(sorted(runs.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0))
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps({"runs": ordered}, indent=2) + "\n")
    tmp.replace(out)


def table(r: dict[str, Any]) -> str:
    def ms(key: str) -> str:
        v = r[key]
        return f"{v['p50']:8.0f} {v['p95']:8.0f} {v['max']:8.0f}"

    m = r["memory_mb"]
    freed = m["seconds_until_near_baseline"]
    o = r["server_objects"]
    gone = o["seconds_until_no_sessions"]
    rounds = "; ".join(
        f"round {i + 1}: peak {x['peak']:.0f}, after {x['after']:.0f}" for i, x in enumerate(m["rounds"]) if x["after"]
    )
    rows = [
        f"sessions                   {r['sessions_ready']} of {r['sessions']} ready"
        + (f" ({r['rounds']} rounds of {r['sessions_at_once']} at once)" if r["rounds"] > 1 else "")
        + ", "
        f"Play at {r['speed_weeks_per_s']} weeks/s",
        f"steps done                 {r['steps_done']} of {r['steps_expected']} ({r['weeks']} weeks each)",
        f"errors                     {r['errors']}",
        f"page load (s)              p50 {r['page_load_s']['p50']:.1f}, p95 {r['page_load_s']['p95']:.1f} "
        f"(all opened at once; all ready after {r['open_all_s']:.1f} s; CPU server "
        f"{r['opening_cpu_s']['server']:.0f} s, browsers {r['opening_cpu_s']['browsers']:.0f} s)",
        "                                p50      p95      max",
        f"update latency (ms)        {ms('update_latency_ms')}",
        f"  header only (ms)         {ms('header_latency_ms')}",
        f"update interval (ms)       {ms('update_interval_ms')}",
        f"weeks per frame            {r['weeks_per_frame']['p50']:8.0f} {r['weeks_per_frame']['p95']:8.0f} "
        f"{r['weeks_per_frame']['max']:8.0f}",
        f"server: model step(s) (ms) {ms('server_model_step_ms')}",
        f"server: redraw (ms)        {ms('server_redraw_ms')}",
        f"server: frame thread CPU   {ms('server_step_thread_cpu_ms')}",
        f"websocket per week         {r['websocket_kb_per_week']['p50']:.1f} kB in "
        f"{r['websocket_messages_per_week_to_page']['p50']:.0f} messages to each page, "
        f"{r['websocket_messages_per_week_from_page']['p50']:.0f} back (medians)",
        f"weeks/s per session        {r['weeks_per_s_per_session']['p50']:8.2f} (median)",
        f"CPU per session-week       server {r['server_cpu_ms_per_session_week']:.0f} ms, "
        f"browsers {r['browser_cpu_ms_per_session_week']:.0f} ms (while playing)",
        f"server memory (MB)         baseline {m['baseline']:.0f}, peak {m['peak']:.0f}, "
        f"{m['settle_s']:.0f} s after closing {m['after']:.0f}"
        + (f" (near baseline after {freed:.0f} s)" if freed is not None else " (not back near baseline)"),
        *([f"  by round (MB)            {rounds}"] if r["rounds"] > 1 else []),
        f"server kernels / sessions  peak {o['peak_kernels']} / {o['peak_sessions']}, at the end "
        f"{o['kernels_at_end']} / {o['sessions_at_end']}"
        + (f" (no session left {gone:.0f} s after closing)" if gone is not None else " (sessions still alive)"),
        f"machine                    {r['machine']['cpus']} CPUs, load average {r['machine']['load_before']} "
        f"before, {r['machine']['load_after']} after",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sessions", type=positive_int, default=10, help="browser sessions (default 10)")
    parser.add_argument("--weeks", type=positive_int, default=52, help="weeks each session plays (default 52)")
    parser.add_argument(
        "--speed", type=speed_arg, default=int(MAX_SPEED), help=f"Play speed, weeks per second (default {MAX_SPEED:g})"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="seconds allowed to open the pages (default 120 + 30 per session: each page costs "
        "chromium about 17 CPU seconds to load here, so 30 pages need minutes on 2 cores)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=90.0,
        help="seconds to watch memory after closing (default 90; keep it above the cull timeout for --leave vanish)",
    )
    parser.add_argument(
        "--cull-timeout",
        type=duration_arg,
        default="60s",
        help="the server's SOLARA_KERNEL_CULL_TIMEOUT (default 60s: shorter ones can drop a page "
        "whose websocket reconnects slowly on an overloaded machine)",
    )
    parser.add_argument(
        "--rounds",
        type=positive_int,
        default=1,
        help="waves of N sessions, one after another (2 or more shows whether memory is reused or leaks)",
    )
    parser.add_argument(
        "--leave",
        choices=("close", "vanish"),
        default="close",
        help="how sessions end: close the tab (default) or vanish (the server waits for the cull timeout)",
    )
    parser.add_argument("--keep", type=Path, default=None, help="keep the server's log and step trace here (a folder)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON output (default {OUT.relative_to(ROOT)})")
    args = parser.parse_args()
    if args.timeout is None:
        args.timeout = 120.0 + 30.0 * args.sessions
    elif args.timeout <= 0:
        parser.exit(2, f"error: --timeout {args.timeout:g}: must be more than 0 seconds\n")
    if args.settle < 0:
        parser.exit(2, f"error: --settle {args.settle:g}: must be 0 seconds or more\n")
    if not CHROMIUM.exists():
        parser.exit(2, f"error: {CHROMIUM} is missing: install it with `apt-get install -y chromium`\n")
    length = default_settings().config.steps
    if args.weeks > length:
        why = f"the default scenario runs {length} weeks (allowed: 1 to {length})"
        parser.exit(2, f"error: --weeks {args.weeks}: {why}\n")
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            folder = args.keep
            (folder / "steps.jsonl").unlink(missing_ok=True)
        trace = folder / "steps.jsonl"
        args.log = folder / "server.log"
        env = {STEP_TRACE_ENV: str(trace), "SOLARA_KERNEL_CULL_TIMEOUT": args.cull_timeout}
        with serve_process(args.log, extra_env=env) as served:
            sampler = MemorySampler(served.pid)
            sampler.start()
            time.sleep(3.0)  # the idle baseline
            try:
                result = asyncio.run(run(args, served.url, sampler, trace))
            finally:
                sampler.stop()
    result["machine"] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_before": load_before,
        "load_after": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    result["command"] = "python benchmarks/workshop_load.py " + " ".join(sys.argv[1:])
    save(args.out, result)
    print(table(result))
    for who, problems in result["session_errors"].items():
        print(f"  {who}: {'; '.join(problems[:3])}")
    for line in result["server_log_errors"][:5]:
        print(f"  server: {line}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
