"""Uploading a map in headless chromium: networkx's karate club as GraphML, then a refused file.

The sidebar's "Your own map" panel has a real `<input type="file">` (Playwright sets its files as
a user choosing them would) and a drop zone (a `drop` event carrying a `DataTransfer`); the app
reads the files lazily from the browser, builds the model on the map, and draws it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import networkx as nx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_app_browser import CANVAS, STEP_TIMEOUT_MS, click, open_app, step_to

pytestmark = pytest.mark.browser

UPLOAD_TIMEOUT_MS = 30_000

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns"><graph><node id="&lol2;"/></graph></graphml>
"""


@pytest.fixture
def page(browser: Browser, app_url: str) -> Iterator[Page]:
    context, page, traffic = open_app(browser, app_url)
    yield page
    context.close()
    assert traffic.outside == [], traffic.outside


def upload_dirs() -> set[Path]:
    """The app server's per-session upload directories (same machine, same temp directory)."""
    return set(Path(tempfile.gettempdir()).glob("cp-map-*"))


def choose_file(page: Page, path: Path) -> None:
    """As a user picking the file in the file dialog."""
    page.locator(".cp-upload-input").set_input_files(str(path))


def drop_file(page: Page, name: str, text: str) -> None:
    """As a user dragging a file onto the drop zone."""
    transfer = page.evaluate_handle(
        "([name, text]) => { const dt = new DataTransfer(); dt.items.add(new File([text], name)); return dt; }",
        [name, text],
    )
    page.locator(".cp-upload").dispatch_event("drop", {"dataTransfer": transfer})


def test_upload_a_map_run_it_and_refuse_a_bad_one(page: Page, tmp_path: Path) -> None:
    karate = tmp_path / "karate.graphml"
    nx.write_graphml(nx.karate_club_graph(), karate)

    page.get_by_text("Your own map (GraphML, GEXF, Kumu, PRSM, CSV)").click()
    expect(page.locator(".cp-upload")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    before = upload_dirs()
    choose_file(page, karate)

    summary = page.locator(".cp-map-summary")
    expect(summary).to_contain_text("34 people, 78 ties", timeout=UPLOAD_TIMEOUT_MS)
    expect(summary).to_contain_text("Roles: resident 34")
    expect(summary).to_contain_text("34 of them had no role and got the default role 'resident'")
    expect(page.locator(".cp-sub")).to_contain_text("on your map karate.graphml")
    expect(page.locator(CANVAS)).to_have_attribute("data-nodes", "34", timeout=STEP_TIMEOUT_MS)
    for week in (1, 2, 3):
        step_to(page, week)

    drop_file(page, "lol.graphml", BILLION_LAUGHS)
    error = page.locator(".v-alert", has_text="Map not used")
    expect(error).to_contain_text("lol.graphml: refused: the XML declares a DTD", timeout=UPLOAD_TIMEOUT_MS)
    assert "/tmp" not in error.inner_text()
    # the run and the map are as they were
    expect(page.locator(".cp-week")).to_have_text("Week 3")
    expect(page.locator(".cp-sub")).to_contain_text("on your map karate.graphml")
    assert page.locator(CANVAS).get_attribute("data-nodes") == "34"
    step_to(page, 4)

    click(page, "Reset")  # the map survives a Reset
    expect(page.locator(".cp-week")).to_have_text("Week 0", timeout=STEP_TIMEOUT_MS)
    expect(page.locator(".cp-sub")).to_contain_text("on your map karate.graphml")
    page.get_by_role("button", name="Clear map: back to the scenario's network").click()
    expect(page.locator(CANVAS)).to_have_attribute("data-nodes", "2005", timeout=UPLOAD_TIMEOUT_MS)
    expect(page.locator(".cp-sub")).not_to_contain_text("on your map")

    # the session's upload directory on the server goes when the tab is closed
    mine = upload_dirs() - before
    assert len(mine) == 1, mine
    page.close(run_before_unload=True)
    deadline = time.monotonic() + 20
    while any(d.exists() for d in mine) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(d.exists() for d in mine), mine
