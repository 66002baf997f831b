"""Take the README's screenshots of the app (docs/img/*.png) in headless chromium.

    python docs/make_screenshots.py

Starts `solara run app.py` on a free loopback port (off-machine requests are aborted), plays
the default scenario for a while with the same seed every time, and saves the main views.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from abm.app.settings import scenario_title  # noqa: E402
from abm.app.testing import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, serve  # noqa: E402

OUT = ROOT / "docs" / "img"
TIMEOUT = 60_000


def goto_week(page: Page, target: int) -> None:
    while True:
        week = int(page.locator(".cp-week").inner_text().split()[1])
        if week >= target:
            return
        label = "+1 year" if target - week >= 52 else "Step"
        page.get_by_role("button", name=label, exact=True).click()
        expect(page.locator(".cp-week")).not_to_have_text(f"Week {week}", timeout=TIMEOUT)


def tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    page.wait_for_timeout(1200)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []

    def route(r) -> None:
        if (urlsplit(r.request.url).hostname or "") in LOOPBACK:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp) / "server.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1180}, device_scale_factor=1)
        context.route("**/*", route)
        page = context.new_page()
        page.goto(url + "/")
        expect(page.locator(".cp-network canvas")).to_have_attribute("data-week", "0", timeout=TIMEOUT)
        goto_week(page, 156)
        page.get_by_role("button", name="A new partner joins").click()
        expect(page.locator(".cp-log")).to_contain_text("joined", timeout=TIMEOUT)
        goto_week(page, 160)
        canvas = page.locator(".cp-network canvas")
        expect(canvas).to_have_attribute("data-week", "160", timeout=TIMEOUT)
        x, y = canvas.evaluate("c => c.cpPoint(40)")
        canvas.click(position={"x": x, "y": y})
        expect(page.locator(".cp-panel", has_text="Agent inspector")).to_contain_text("Person", timeout=TIMEOUT)
        page.mouse.move(10, 10)
        page.locator(".cp-week").scroll_into_view_if_needed()
        page.mouse.wheel(0, -3000)
        page.wait_for_timeout(1000)
        page.screenshot(path=str(OUT / "app.png"))

        tab(page, "Model")
        page.locator(".cp-diagram").screenshot(path=str(OUT / "model.png"))

        tab(page, "Trends")
        page.get_by_role("button", name="By ward", exact=True).click()
        page.wait_for_timeout(1200)
        page.screenshot(path=str(OUT / "trends.png"), full_page=True)

        tab(page, "Compare")
        field = page.locator(".v-select", has=page.locator("label", has_text="Scenario A")).first
        field.locator(".v-select__slot").click()
        menu = page.locator(".menuable__content__active")
        for _ in range(30):  # Vuetify adds long lists' items as the menu scrolls
            found = menu.get_by_role("option", name=scenario_title("workshop/w3_turnover_embedded"), exact=True)
            if found.count():
                found.click()
                break
            menu.evaluate("m => { m.scrollTop = m.scrollHeight; m.dispatchEvent(new Event('scroll')); }")
            page.wait_for_timeout(100)
        page.get_by_role("button", name="Run comparison").click()
        expect(page.locator(".cp-table")).to_be_visible(timeout=180_000)
        page.wait_for_timeout(800)
        page.screenshot(path=str(OUT / "compare.png"), full_page=True)

        tab(page, "System")
        page.get_by_role("button", name="Blocks", exact=True).click()
        page.wait_for_timeout(1200)
        page.locator(".cp-blocks").screenshot(path=str(OUT / "blocks.png"))
        browser.close()
    if outside:
        raise SystemExit(f"the page asked for off-machine resources: {outside}")
    print("saved:", ", ".join(sorted(p.name for p in OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
