"""Two people on one app server never see each other's run: model, parameters, seed or exports.

Session A changes the effort budget and the seed, steps, fires an event and plays; session B,
open on the same server all along, must still show its own week 0, its own defaults and its
own seed, and each session's downloads (the scenario YAML and the weekly CSV) must describe
that session's run only. A map uploaded in one session is used there only, and a second
session's own map does not replace it.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import networkx as nx
import pandas as pd
import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect

from abm.app.page import default_settings
from abm.app.testing import LOOPBACK

pytestmark = pytest.mark.browser

LOAD_TIMEOUT_MS = 60_000
TIMEOUT_MS = 20_000
UPLOAD_TIMEOUT_MS = 30_000
MAP_PANEL = "Your own map (GraphML, GEXF, Kumu, PRSM, CSV)"
CANVAS = ".cp-network canvas"
DEFAULTS = default_settings()
BUDGET = "Effort budget"
A_SEED = 7


def block_outside(route: Route) -> None:
    if (urlsplit(route.request.url).hostname or "") in LOOPBACK or route.request.url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        route.abort()


def open_page(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 1100}, accept_downloads=True)
    context.route("**/*", block_outside)
    page = context.new_page()
    page.goto(url + "/")
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=LOAD_TIMEOUT_MS)
    return context, page


@pytest.fixture
def two_pages(browser: Browser, app_url: str) -> Iterator[tuple[Page, Page]]:
    first, a = open_page(browser, app_url)
    second, b = open_page(browser, app_url)
    yield a, b
    first.close()
    second.close()


def week(page: Page) -> int:
    return int(page.locator(".cp-week").inner_text().split()[1])


def click(page: Page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()


def budget_label(page: Page) -> str:
    return page.locator(".cp-slider-label", has_text=BUDGET).first.locator("b").inner_text()


def download(page: Page, label: str) -> bytes:
    """Click a download on the Export tab and return the file's bytes."""
    with page.expect_download(timeout=TIMEOUT_MS) as info:
        page.get_by_text(label, exact=True).click()
    path = info.value.path()
    assert path is not None, f"the download {label!r} failed: {info.value.failure()}"
    return path.read_bytes()


def exported(page: Page) -> tuple[dict, pd.DataFrame]:
    """The session's scenario YAML and weekly CSV, as its Export tab serves them."""
    page.get_by_role("tab", name="Export").click()
    config = yaml.safe_load(download(page, "Scenario to repeat this run (YAML)"))
    weekly = pd.read_csv(io.BytesIO(download(page, "Weekly figures (CSV)")))
    page.get_by_role("tab", name="System").click()
    return config, weekly


def test_a_session_never_sees_another_sessions_run(two_pages: tuple[Page, Page]) -> None:
    a, b = two_pages
    default_budget = f"{DEFAULTS.budget:g}"
    b_header = b.locator(".cp-sub").inner_text()
    assert f"seed {DEFAULTS.seed}" in b_header and "2,005 people" in b_header
    assert budget_label(b) == default_budget

    # A: a bigger effort budget (two slider steps of 5) and its own seed; Enter in the seed box
    # starts a run with both
    slider = a.locator(".v-navigation-drawer [role=slider]").nth(1)  # the speed slider is first
    slider.focus()
    slider.press("ArrowRight")
    slider.press("ArrowRight")
    a_budget = DEFAULTS.budget + 10
    expect(a.locator(".cp-slider-label", has_text=BUDGET).first.locator("b")).to_have_text(f"{a_budget:g}")
    seed_box = a.get_by_label("Seed")
    seed_box.fill(str(A_SEED))
    seed_box.press("Enter")
    expect(a.locator(".cp-sub")).to_contain_text(f"seed {A_SEED}", timeout=TIMEOUT_MS)
    for target in (1, 2):
        click(a, "Step")
        expect(a.locator(".cp-week")).to_have_text(f"Week {target}", timeout=TIMEOUT_MS)
    click(a, "A new partner joins")
    expect(a.locator(".cp-sub")).to_contain_text("2,012 people", timeout=TIMEOUT_MS)
    click(a, "Play")
    expect(a.locator(".cp-week")).not_to_have_text("Week 2", timeout=TIMEOUT_MS)
    click(a, "Pause")
    expect(a.get_by_role("button", name="Play", exact=True)).to_be_visible(timeout=TIMEOUT_MS)
    a.wait_for_timeout(300)  # a step already under way lands before the Play button comes back
    a_week = week(a)
    assert a_week >= 3

    # B saw none of it: its week, header, seed box, slider and log are its own
    b.wait_for_timeout(500)  # give a shared model every chance to show up
    expect(b.locator(".cp-week")).to_have_text("Week 0")
    assert b.locator(".cp-sub").inner_text() == b_header
    assert b.get_by_label("Seed").input_value() == str(DEFAULTS.seed)
    assert budget_label(b) == default_budget
    expect(b.get_by_text("Nothing yet: press Step or Play.")).to_be_visible()  # B's event log
    expect(b.get_by_text("joined with", exact=False)).to_have_count(0)

    # each session's downloads describe its own run
    a_config, a_weekly = exported(a)
    b_config, b_weekly = exported(b)
    assert a_config["seed"] == A_SEED
    assert a_config["effort"]["budget"] == pytest.approx(a_budget)
    assert [e["type"] for e in a_config.get("events", [])] == ["partner_joins"]
    assert list(a_weekly["step"]) == list(range(a_week + 1))
    assert b_config["seed"] == DEFAULTS.seed
    assert b_config["effort"]["budget"] == pytest.approx(DEFAULTS.budget)
    assert b_config.get("events", []) == []
    assert list(b_weekly["step"]) == [0]

    # and B's own run goes on from its own week 0 while A's stays where it was
    click(b, "Step")
    expect(b.locator(".cp-week")).to_have_text("Week 1", timeout=TIMEOUT_MS)
    expect(b.locator(".cp-sub")).to_contain_text(f"seed {DEFAULTS.seed}")
    assert week(a) == a_week
    expect(a.locator(".cp-sub")).to_contain_text(f"seed {A_SEED}")


def upload(page: Page, path: Path) -> None:
    """Pick a map file in the sidebar's map panel, as a user choosing it in the file dialog."""
    page.get_by_text(MAP_PANEL).click()
    page.locator(".cp-upload-input").set_input_files(str(path))


def test_a_map_uploaded_in_one_session_stays_there(two_pages: tuple[Page, Page], tmp_path: Path) -> None:
    a, b = two_pages
    karate, path = tmp_path / "karate.graphml", tmp_path / "path.graphml"
    nx.write_graphml(nx.karate_club_graph(), karate)
    nx.write_graphml(nx.path_graph(10), path)

    upload(a, karate)
    expect(a.locator(".cp-map-summary")).to_contain_text("34 people", timeout=UPLOAD_TIMEOUT_MS)
    expect(a.locator(CANVAS)).to_have_attribute("data-nodes", "34", timeout=TIMEOUT_MS)
    click(a, "Step")
    expect(a.locator(".cp-week")).to_have_text("Week 1", timeout=TIMEOUT_MS)

    b.wait_for_timeout(500)
    expect(b.locator(".cp-sub")).not_to_contain_text("on your map")
    expect(b.locator(".cp-sub")).to_contain_text("2,005 people")
    assert b.locator(CANVAS).get_attribute("data-nodes") == "2005"
    expect(b.locator(".cp-map-summary")).to_have_count(0)
    expect(b.get_by_text("karate.graphml", exact=False)).to_have_count(0)

    # B's own map does not replace A's
    upload(b, path)
    expect(b.locator(".cp-map-summary")).to_contain_text("10 people", timeout=UPLOAD_TIMEOUT_MS)
    expect(b.locator(".cp-sub")).to_contain_text("on your map path.graphml")
    a.wait_for_timeout(500)
    expect(a.locator(".cp-sub")).to_contain_text("on your map karate.graphml")
    expect(a.locator(".cp-map-summary")).to_contain_text("34 people")
    assert a.locator(CANVAS).get_attribute("data-nodes") == "34"
    expect(a.locator(".cp-week")).to_have_text("Week 1")
