"""The app in headless chromium: it draws offline, steps, resets, and keeps sessions apart.

Every request to a host other than the loopback address is aborted and recorded; the page must
render without any (all front-end assets are served locally by solara-assets).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, Route, expect

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "img" / "app.png"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOAD_TIMEOUT_MS = 60_000
STEP_TIMEOUT_MS = 20_000
PLAY_FOR_MS = 15_000
#: For each <img>: the share of its pixels that are visibly not white (drawn on a canvas).
INKED_SHARE_JS = """imgs => imgs.map(img => {
    const canvas = document.createElement("canvas");
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let inked = 0;
    for (let i = 0; i < data.length; i += 4) {
        if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200 || data[i + 2] < 200)) inked++;
    }
    return inked / (data.length / 4);
})"""


@dataclass
class Traffic:
    """What a browser context asked for: blocked off-machine requests and failed local ones."""

    outside: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if host in LOOPBACK or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed.append(f"{response.status} {response.url}")

    def request_failed(self, request: Request) -> None:
        if (urlsplit(request.url).hostname or "") in LOOPBACK:
            self.failed.append(f"{request.failure} {request.url}")


def open_app(browser: Browser, url: str) -> tuple[BrowserContext, Page, Traffic]:
    """A fresh browser session (context) on the app, with off-machine requests blocked."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    traffic = Traffic()
    context.route("**/*", traffic.route)
    page = context.new_page()
    page.on("response", traffic.response)
    page.on("requestfailed", traffic.request_failed)
    page.goto(url + "/")
    expect(page.get_by_text("Week 0", exact=True)).to_be_visible(timeout=LOAD_TIMEOUT_MS)
    return context, page, traffic


def week_text(page: Page) -> str:
    return page.locator(".cp-week").inner_text()


@pytest.fixture
def app(browser: Browser, app_url: str) -> Iterator[tuple[Page, Traffic]]:
    context, page, traffic = open_app(browser, app_url)
    yield page, traffic
    context.close()


def test_page_renders_offline_with_charts(app: tuple[Page, Traffic]) -> None:
    page, traffic = app
    figures = page.locator(".cp-figure img")
    expect(figures).to_have_count(2, timeout=LOAD_TIMEOUT_MS)
    for i in range(2):
        img = figures.nth(i)
        expect(img).to_be_visible()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
        size = img.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        assert size[0] > 300 and size[1] > 200, size
    # a drawn chart, not a blank image: some of its pixels are not white (a blank one has none)
    inked = figures.evaluate_all(INKED_SHARE_JS)
    assert all(share > 0.005 for share in inked), inked

    for words in ("Vision", "Value", "Common purpose", "Collective function"):
        expect(page.get_by_text(words, exact=True).first).to_be_visible()
    expect(page.locator(".cp-equation")).to_have_text("Vision + Value + Collective function = Common purpose")
    for label in ("Step", "Play", "Reset"):
        expect(page.get_by_role("button", name=label, exact=True)).to_be_visible()

    page.get_by_text("What happens each week").click()
    expect(page.get_by_text("Each week (one step), in this order:")).to_be_visible()

    assert traffic.outside == [], f"the page asked for off-machine resources: {traffic.outside}"
    assert traffic.failed == [], f"local requests failed: {traffic.failed}"


def test_step_then_reset(app: tuple[Page, Traffic]) -> None:
    page, traffic = app
    page.get_by_role("button", name="Step", exact=True).click()
    expect(page.locator(".cp-week")).to_have_text("Week 1", timeout=STEP_TIMEOUT_MS)
    page.get_by_role("button", name="Step", exact=True).click()
    expect(page.locator(".cp-week")).to_have_text("Week 2", timeout=STEP_TIMEOUT_MS)
    page.get_by_role("button", name="Reset", exact=True).click()
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    assert traffic.outside == []


def test_play_and_pause(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    page.get_by_role("button", name="Play", exact=True).click()
    expect(page.locator(".cp-week")).not_to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    paused_at = week_text(page)
    page.wait_for_timeout(1_000)
    assert week_text(page) == paused_at


def test_bad_seed_shows_a_message(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    seed = page.get_by_label("Seed")
    seed.fill("twelve")
    seed.press("Enter")
    expect(page.get_by_text("The seed must be a whole number")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    expect(page.get_by_role("button", name="Reset", exact=True)).to_be_disabled()
    seed.fill("7")
    seed.press("Enter")
    expect(page.locator(".cp-sub")).to_contain_text("seed 7", timeout=STEP_TIMEOUT_MS)


def test_two_sessions_are_independent(browser: Browser, app_url: str) -> None:
    first, page_a, _ = open_app(browser, app_url)
    second, page_b, _ = open_app(browser, app_url)
    try:
        page_a.get_by_role("button", name="Step", exact=True).click()
        expect(page_a.locator(".cp-week")).to_have_text("Week 1", timeout=STEP_TIMEOUT_MS)
        page_b.wait_for_timeout(1_000)  # give a shared model every chance to show up
        expect(page_b.locator(".cp-week")).to_have_text("Week 0")

        page_b.get_by_role("button", name="Step", exact=True).click()
        expect(page_b.locator(".cp-week")).to_have_text("Week 1", timeout=STEP_TIMEOUT_MS)
        page_a.get_by_role("button", name="Step", exact=True).click()
        expect(page_a.locator(".cp-week")).to_have_text("Week 2", timeout=STEP_TIMEOUT_MS)
        page_b.wait_for_timeout(500)
        expect(page_b.locator(".cp-week")).to_have_text("Week 1")
    finally:
        first.close()
        second.close()


def test_play_a_while_and_take_the_screenshot(app: tuple[Page, Traffic]) -> None:
    """Play at the shortest delay for a while, pause, and save docs/img/app.png."""
    page, traffic = app
    slider = page.get_by_role("slider")
    slider.focus()
    slider.press("Home")  # the shortest delay between weeks
    expect(slider).to_have_attribute("aria-valuenow", "100")
    page.get_by_role("button", name="Play", exact=True).click()
    page.wait_for_timeout(PLAY_FOR_MS)
    page.get_by_role("button", name="Pause", exact=True).click()
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    week = int(week_text(page).split()[1])
    assert week >= 10, f"only {week} weeks in {PLAY_FOR_MS / 1000:.0f} s of Play"
    page.wait_for_timeout(1_000)  # let the last images arrive
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert traffic.outside == [] and traffic.failed == []
