"""The app in headless chromium: it draws offline, steps, resets, switches scenario, fires events,
compares, exports, inspects, and keeps sessions apart.

Every request to a host other than the loopback address is aborted and recorded; the page must
render without any (all front-end assets are served locally by solara-assets and the app).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest
import yaml
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page, Request, Response, Route, expect

from abm.app.pacing import MAX_WEEKS_PER_FRAME
from abm.app.settings import preset_names, scenario_title
from abm.app.testing import LOOPBACK
from abm.config import load_config

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 60_000
STEP_TIMEOUT_MS = 20_000
CANVAS = ".cp-network canvas"

#: Share of the canvas's pixels that are not the background, and a digest of all its pixels.
CANVAS_JS = """c => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0, blue = 0, h = 0;
    for (let i = 0; i < d.length; i += 4) {
        if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) inked++;
        // the Subscribed colour, #0072b2
        if (Math.abs(d[i] - 0) < 16 && Math.abs(d[i + 1] - 114) < 16 && Math.abs(d[i + 2] - 178) < 16) blue++;
        h = (h * 31 + d[i] + 3 * d[i + 1] + 7 * d[i + 2]) % 2147483647;
    }
    return {inked: inked / (d.length / 4), blue: blue, digest: h};
}"""


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
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    traffic = Traffic()
    context.route("**/*", traffic.route)
    page = context.new_page()
    page.on("response", traffic.response)
    page.on("requestfailed", traffic.request_failed)
    page.goto(url + "/")
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=LOAD_TIMEOUT_MS)
    expect(page.locator(CANVAS)).to_have_attribute("data-week", "0", timeout=LOAD_TIMEOUT_MS)
    return context, page, traffic


def week(page: Page) -> str:
    return page.locator(".cp-week").inner_text()


def click(page: Page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def step_to(page: Page, target: int) -> None:
    click(page, "Step")
    expect(page.locator(".cp-week")).to_have_text(f"Week {target}", timeout=STEP_TIMEOUT_MS)
    expect(page.locator(CANVAS)).to_have_attribute("data-week", str(target), timeout=STEP_TIMEOUT_MS)


def choose(page: Page, label: str, option: str) -> None:
    """Pick `option` in the Vuetify select labelled `label` (a scenario by its file name: the list
    shows its name)."""
    if option in preset_names():
        option = scenario_title(option)
    field = page.locator(".v-select", has=page.locator("label", has_text=label)).first
    field.locator(".v-select__slot").click()
    menu = page.locator(".menuable__content__active")
    expect(menu).to_be_visible(timeout=STEP_TIMEOUT_MS)
    for _ in range(30):  # Vuetify adds long lists' items as the menu scrolls
        found = menu.get_by_role("option", name=option, exact=True)
        if found.count():
            found.click()
            return
        menu.evaluate("m => { m.scrollTop = m.scrollHeight; m.dispatchEvent(new Event('scroll')); }")
        page.wait_for_timeout(100)
    raise AssertionError(f"no option {option!r} in {label!r}")


def tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def canvas(page: Page) -> dict:
    return page.locator(CANVAS).evaluate(CANVAS_JS)


def svg_digest(page: Page, selector: str) -> str:
    return hashlib.sha1(page.locator(selector).first.inner_html().encode()).hexdigest()


@pytest.fixture
def app(browser: Browser, app_url: str) -> Iterator[tuple[Page, Traffic]]:
    context, page, traffic = open_app(browser, app_url)
    yield page, traffic
    context.close()


def test_page_renders_offline_with_network_and_charts(app: tuple[Page, Traffic]) -> None:
    page, traffic = app
    drawn = page.locator(CANVAS)
    assert drawn.get_attribute("data-nodes") == "2005"
    assert int(drawn.get_attribute("data-ties") or 0) > 7000
    assert canvas(page)["inked"] > 0.05  # a drawn network, not a blank canvas
    ladder = page.locator(".cp-svg svg").first
    expect(ladder).to_be_visible()
    assert ladder.locator("rect").count() >= 6
    for words in ("Vision", "Value", "Collective function", "Common purpose"):
        expect(page.get_by_text(words, exact=True).first).to_be_visible()
    expect(page.locator(".cp-equation")).to_have_text("Vision + Value + Collective function = Common purpose")
    for label in ("Step", "Play", "Reset", "+1 year"):
        expect(page.get_by_role("button", name=label, exact=True)).to_be_visible()

    tab(page, "Trends")
    charts = page.locator(".cp-svg svg")
    expect(charts.nth(5)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    assert charts.count() >= 6
    assert page.locator(".cp-svg svg polyline").count() >= 4

    tab(page, "Model")
    diagram = page.locator(".cp-diagram svg")
    expect(diagram).to_be_visible(timeout=STEP_TIMEOUT_MS)
    for words in ("Cultural influences", "Structural influences", "Engagement", "Embedded processes"):
        assert words in diagram.inner_html()
    page.get_by_text("What happens each week, in order").click()
    expect(page.get_by_text("Each week (one step), in this order:")).to_be_visible()

    assert traffic.outside == [], f"the page asked for off-machine resources: {traffic.outside}"
    assert traffic.failed == [], f"local requests failed: {traffic.failed}"


def test_step_changes_week_charts_and_node_colours(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    tab(page, "Trends")
    expect(page.locator(".cp-svg svg").first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    trend_before = svg_digest(page, ".cp-svg")
    tab(page, "System")
    expect(page.locator(CANVAS)).to_have_attribute("data-week", "0", timeout=STEP_TIMEOUT_MS)
    before = canvas(page)
    ladder_before = svg_digest(page, ".cp-svg")
    step_to(page, 1)
    step_to(page, 2)
    click(page, "+1 year")
    expect(page.locator(".cp-week")).to_have_text("Week 54", timeout=STEP_TIMEOUT_MS)
    expect(page.locator(CANVAS)).to_have_attribute("data-week", "54", timeout=STEP_TIMEOUT_MS)
    after = canvas(page)
    assert after["digest"] != before["digest"]
    assert after["blue"] > before["blue"], (before, after)  # more people subscribed: more blue nodes
    assert svg_digest(page, ".cp-svg") != ladder_before
    tab(page, "Trends")
    expect(page.locator(".cp-svg svg").first).to_be_visible(timeout=STEP_TIMEOUT_MS)
    assert svg_digest(page, ".cp-svg") != trend_before


def test_reset_and_play_pause(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    step_to(page, 1)
    step_to(page, 2)
    click(page, "Reset")
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    expect(page.locator(CANVAS)).to_have_attribute("data-week", "0", timeout=STEP_TIMEOUT_MS)
    click(page, "Play")
    expect(page.locator(".cp-week")).not_to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    page.wait_for_timeout(800)
    click(page, "Pause")
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    paused_at = week(page)
    assert int(paused_at.split()[1]) >= 2
    page.wait_for_timeout(800)
    assert week(page) == paused_at


#: Keeps the page's main thread busy for `ms`, then reads the week shown before and after (once the
#: updates that arrived meanwhile have been applied).
BUSY_JS = """async ms => {
    const read = () => parseInt(document.querySelector('.cp-week').textContent.trim().split(' ')[1]);
    const before = read();
    const t0 = performance.now();
    while (performance.now() - t0 < ms) {}
    await new Promise(r => setTimeout(r, 60));
    return [before, read()];
}"""


def test_play_waits_while_the_page_is_busy(app: tuple[Page, Traffic]) -> None:
    """Play paces itself by what the page has painted: a page that is busy for 2 s (a slow laptop)
    gets the frame that was on its way and the next (at most 4 weeks each), not the 24 weeks
    that Play at 12 weeks/s would otherwise have sent meanwhile."""
    page, _ = app
    slider = page.locator(".v-navigation-drawer [role=slider]").first  # Speed comes first
    slider.focus()
    slider.press("End")
    expect(page.locator(".cp-slider-label", has_text="Speed").first.locator("b")).to_have_text("12")
    click(page, "Play")
    expect(page.locator(".cp-week")).not_to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    before, after = page.evaluate(BUSY_JS, 2000)
    click(page, "Pause")
    assert 0 <= after - before <= 2 * MAX_WEEKS_PER_FRAME, (before, after)


def test_preset_switch_rebuilds_with_its_values(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    step_to(page, 1)
    choose(page, "Scenario", "patterns/p5_national_tight")
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".cp-sub")).to_contain_text("P5 tight national constraint")
    page.get_by_text("Structures: local and national").click()
    expect(page.locator(".cp-slider-label", has_text="National constraint")).to_contain_text("0.35")
    tab(page, "Model")
    expect(page.locator(".cp-diagram svg")).to_contain_text("0.35", timeout=STEP_TIMEOUT_MS)


def test_event_buttons_change_the_run(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    step_to(page, 1)
    click(page, "A new partner joins")
    expect(page.locator(".cp-sub")).to_contain_text("2,012 people", timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".cp-log")).to_contain_text("joined with 7 staff")
    expect(page.locator(CANVAS)).to_have_attribute("data-nodes", "2012", timeout=STEP_TIMEOUT_MS)
    click(page, "Funding cut")
    expect(page.locator(".cp-log")).to_contain_text("Funding cut: effort budget cut to 50% of what it was, now 30.0")
    tab(page, "Model")
    expect(page.locator(".cp-diagram svg")).to_contain_text("Effort budget 30 per 1,000", timeout=STEP_TIMEOUT_MS)
    tab(page, "System")
    step_to(page, 2)
    expect(page.locator(".cp-log")).to_contain_text("(fired from the app)")


def test_comparison_with_replicate_bands(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    tab(page, "Compare")
    choose(page, "Scenario A", "patterns/p7_whole_system")
    choose(page, "Seeds", "3")
    weeks = page.get_by_label("Weeks")
    weeks.fill("20")
    weeks.press("Enter")
    click(page, "Run comparison")
    expect(page.get_by_text("Difference, B minus A", exact=False).first).to_be_visible(timeout=60_000)
    svgs = page.locator(".cp-compare .cp-svg svg")
    expect(svgs).to_have_count(2)
    for i in range(2):
        assert svgs.nth(i).locator("polygon").count() == 4  # a replicate band per line
    assert "P7 whole system" in svgs.nth(0).inner_html() and "P7 siloed" in svgs.nth(1).inner_html()
    rows = page.locator(".cp-table tr")
    expect(rows).to_have_count(7)  # a header, then six measures
    expect(page.locator(".cp-table")).to_contain_text("At week 20")
    tab(page, "System")  # the result survives a look at another tab
    expect(page.locator(CANVAS)).to_be_visible(timeout=STEP_TIMEOUT_MS)
    tab(page, "Compare")
    expect(page.locator(".cp-table")).to_contain_text("At week 20", timeout=STEP_TIMEOUT_MS)
    # pressed again with nothing changed: the cached result at once, not "Running… 0%" for ever
    click(page, "Run comparison")
    page.wait_for_timeout(1500)  # the click returns before the server has handled it (the old table is still up)
    expect(page.locator(".cp-table")).to_contain_text("At week 20", timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Run comparison", exact=True)).to_be_enabled(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Running…")).to_have_count(0)


def test_export_downloads_files_that_parse(app: tuple[Page, Traffic], tmp_path: Path) -> None:
    page, _ = app
    step_to(page, 1)
    step_to(page, 2)
    tab(page, "Export")

    def download(label: str) -> bytes:
        with page.expect_download(timeout=STEP_TIMEOUT_MS) as info:
            page.get_by_text(label, exact=True).click()
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        return path.read_bytes()

    weekly = pd.read_csv(io.BytesIO(download("Weekly figures (CSV)")))
    assert list(weekly["step"]) == [0, 1, 2]
    assert {"subscribed_share", "common_purpose_share"} <= set(weekly.columns)
    parquet = pd.read_parquet(io.BytesIO(download("Weekly figures (Parquet)")))
    pd.testing.assert_frame_equal(parquet[["step"]], weekly[["step"]])
    groups = pd.read_parquet(io.BytesIO(download("By group (Parquet)")))
    assert set(groups["group_kind"]) >= {"role", "ward"}
    for label in ("Trends (PNG)", "Network (PNG)"):
        image = Image.open(io.BytesIO(download(label)))
        assert image.format == "PNG" and image.width > 600
    config = yaml.safe_load(download("Scenario to repeat this run (YAML)"))
    assert config["seed"] == 1
    load_config(config)  # a valid scenario
    with zipfile.ZipFile(io.BytesIO(download("All of the above (ZIP)"))) as zf:
        assert {"weekly.csv", "groups.parquet", "trends.png", "config.yaml", "run.json"} <= set(zf.namelist())


def test_agent_inspector(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    click(page, "+1 year")
    expect(page.locator(CANVAS)).to_have_attribute("data-week", "52", timeout=STEP_TIMEOUT_MS)
    drawn = page.locator(CANVAS)
    x, y = drawn.evaluate("c => c.cpPoint(3)")  # a leader of the pilot team, in the middle
    drawn.click(position={"x": x, "y": y})
    inspector = page.locator(".cp-panel", has_text="Agent inspector")
    expect(inspector).to_contain_text("Person", timeout=STEP_TIMEOUT_MS)
    expect(drawn).not_to_have_attribute("data-selected", "-1", timeout=STEP_TIMEOUT_MS)
    selected = drawn.get_attribute("data-selected")
    expect(inspector).to_contain_text(f"Person {int(selected):,}")
    expect(inspector).to_contain_text("State history")
    expect(inspector).to_contain_text("Ties:")
    neighbours = inspector.locator(".cp-neighbour")
    assert neighbours.count() >= 1
    neighbours.first.click()
    expect(drawn).not_to_have_attribute("data-selected", selected, timeout=STEP_TIMEOUT_MS)
    # filters: only GPs drawn in full
    choose(page, "Roles", "GP")
    page.keyboard.press("Escape")
    expect(drawn).not_to_have_attribute("data-ties", "0", timeout=STEP_TIMEOUT_MS)


def test_block_view(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    page.get_by_role("button", name="Blocks", exact=True).click()
    blocks = page.locator(".cp-blocks svg")
    expect(blocks).to_be_visible(timeout=STEP_TIMEOUT_MS)
    assert blocks.locator("path").count() > 20  # pies and flows
    page.get_by_role("button", name="People", exact=True).click()
    expect(page.locator(CANVAS)).to_be_visible(timeout=STEP_TIMEOUT_MS)


def test_bad_seed_shows_a_message(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    seed = page.get_by_label("Seed")
    seed.fill("twelve")
    seed.press("Enter")
    expect(page.get_by_text("The seed must be a whole number")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    seed.fill("7")
    seed.press("Enter")
    expect(page.locator(".cp-sub")).to_contain_text("seed 7", timeout=STEP_TIMEOUT_MS)


def test_no_solara_badge_and_buttons_keep_their_labels_inside(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    expect(page.get_by_text("This website runs on")).to_have_count(0)
    button = page.get_by_role("button", name="National policy change", exact=True)
    fits = button.evaluate(
        "b => { const r = b.getBoundingClientRect(); return [...b.querySelectorAll('*')].every(e => {"
        " const c = e.getBoundingClientRect(); return c.width === 0 || (c.left >= r.left - 1 && c.right <= r.right + 1"
        " && c.top >= r.top - 1 && c.bottom <= r.bottom + 1); }); }"
    )
    assert fits, "the button's icon or label runs out of its border"


def test_compare_follows_the_sidebar_and_refuses_bad_weeks(app: tuple[Page, Traffic]) -> None:
    page, _ = app
    choose(page, "Scenario", "workshop/w1_grangetown_no_insight")
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    tab(page, "Compare")
    scenario_a = page.locator(".v-select", has=page.locator("label", has_text="Scenario A")).first
    expect(scenario_a).to_contain_text(scenario_title("workshop/w1_grangetown_no_insight"), timeout=STEP_TIMEOUT_MS)
    weeks = page.get_by_label("Weeks")
    for bad in ("abc", "-5", "100000"):
        weeks.fill(bad)
        expect(page.get_by_text("Weeks must be a whole number of weeks from 1 to 520")).to_be_visible(
            timeout=STEP_TIMEOUT_MS
        )
        expect(page.get_by_role("button", name="Run comparison", exact=True)).to_be_disabled()
    weeks.fill("20")
    expect(page.get_by_role("button", name="Run comparison", exact=True)).to_be_enabled(timeout=STEP_TIMEOUT_MS)


def test_two_sessions_are_independent(browser: Browser, app_url: str) -> None:
    first, page_a, _ = open_app(browser, app_url)
    second, page_b, _ = open_app(browser, app_url)
    try:
        step_to(page_a, 1)
        page_b.wait_for_timeout(800)  # give a shared model every chance to show up
        expect(page_b.locator(".cp-week")).to_have_text("Week 0")
        click(page_a, "A new partner joins")
        expect(page_a.locator(".cp-sub")).to_contain_text("2,012 people", timeout=STEP_TIMEOUT_MS)
        step_to(page_b, 1)
        step_to(page_a, 2)
        page_b.wait_for_timeout(500)
        expect(page_b.locator(".cp-week")).to_have_text("Week 1")
        expect(page_b.locator(".cp-sub")).to_contain_text("2,005 people")
    finally:
        first.close()
        second.close()
