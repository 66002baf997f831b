"""Browser benchmark of the workshop app: page load, step-to-paint and Play rate, in real chromium.

    python benchmarks/bench_app.py              # prints a table, writes benchmarks/app_results.json
    python benchmarks/bench_app.py --steps 30   # more Step samples

It starts the app as `make app` does (production mode) on a free loopback port, drives Debian's chromium
headless with Playwright (every off-machine request is aborted), and measures, on the default
South Tees scenario (2,005 people):

- page load: from navigation until the network canvas has painted week 0;
- step-to-paint: from the Step click (dispatched in the page) until the canvas has painted the new
  week and the header shows it (the System tab: network, ladder, event log, header), after
  fast-forwarding two years so the network has more than 10,000 ties; and the same on the Trends
  tab (eight SVG charts);
- Play rate: weeks per second while playing at the fastest speed, over about 10 seconds.

This is a benchmark, not a test: the machine is shared and noisy; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from abm.app.testing import CHROMIUM, CHROMIUM_ARGS, LOOPBACK, serve  # noqa: E402

OUT = ROOT / "benchmarks" / "app_results.json"

#: Click Step in the page and resolve with the milliseconds until the new week is painted.
STEP_TO_PAINT_JS = """async ([target, canvasToo]) => {
    const button = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Step');
    const t0 = performance.now();
    button.click();
    await new Promise(resolve => {
        const check = () => {
            // looked up each time: the header's HTML (and so the .cp-week element) is replaced weekly
            const canvas = document.querySelector('.cp-network canvas');
            const week = document.querySelector('.cp-week');
            const painted = !canvasToo || (canvas && canvas.dataset.week === String(target));
            if (painted && week && week.textContent.trim() === 'Week ' + target) {
                requestAnimationFrame(() => resolve());  // the frame that shows it
            } else {
                requestAnimationFrame(check);
            }
        };
        check();
    });
    return performance.now() - t0;
}"""


def week_of(page: Page) -> int:
    return int(page.locator(".cp-week").inner_text().split()[1])


def open_page(browser, url: str) -> tuple[Page, float, list[str]]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    outside: list[str] = []

    def route(r):
        if (urlsplit(r.request.url).hostname or "") in LOOPBACK:
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url + "/")
    page.wait_for_function(
        "() => { const c = document.querySelector('.cp-network canvas'); return c && c.dataset.week === '0'; }",
        timeout=60_000,
    )
    return page, time.perf_counter() - t0, outside


def measure(url: str, steps: int, play_seconds: float) -> dict:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        loads = []
        for _ in range(3):
            page, load, outside = open_page(browser, url)
            loads.append(load)
            page.context.close()
        page, _, outside = open_page(browser, url)
        for _ in range(2):  # two years in: more than 10,000 ties
            page.get_by_role("button", name="+1 year").click()
            page.wait_for_timeout(200)
        page.wait_for_function("() => document.querySelector('.cp-week').textContent.trim() === 'Week 104'")
        system = []
        for _ in range(steps):
            target = week_of(page) + 1
            system.append(page.evaluate(STEP_TO_PAINT_JS, [target, True]))
            page.wait_for_timeout(150)
        ties = page.locator(".cp-sub").inner_text()
        canvas_ties = int(page.locator(".cp-network canvas").get_attribute("data-ties") or 0)
        nodes = int(page.locator(".cp-network canvas").get_attribute("data-nodes") or 0)
        page.get_by_role("tab", name="Trends").click()
        page.wait_for_timeout(1000)
        trends = []
        for _ in range(steps):
            target = week_of(page) + 1
            trends.append(page.evaluate(STEP_TO_PAINT_JS, [target, False]))
            page.wait_for_timeout(150)
        page.get_by_role("tab", name="System").click()
        page.wait_for_timeout(1000)
        # Play at the fastest speed, from week 104 again (the run ends at 208)
        page.get_by_role("button", name="Reset", exact=True).click()
        page.wait_for_function("() => document.querySelector('.cp-week').textContent.trim() === 'Week 0'")
        for _ in range(2):
            page.get_by_role("button", name="+1 year").click()
            page.wait_for_timeout(200)
        page.wait_for_function("() => document.querySelector('.cp-week').textContent.trim() === 'Week 104'")
        speed = page.locator(".v-navigation-drawer [role=slider]").first
        speed.focus()
        speed.press("End")
        start_week = week_of(page)
        page.get_by_role("button", name="Play", exact=True).click()
        page.wait_for_function(f"() => document.querySelector('.cp-week').textContent.trim() !== 'Week {start_week}'")
        w0, t0 = week_of(page), time.perf_counter()
        page.wait_for_timeout(play_seconds * 1000)
        w1, t1 = week_of(page), time.perf_counter()
        pause = page.get_by_role("button", name="Pause", exact=True)
        if pause.count():
            pause.click()
        browser.close()
    return {
        "page_load_s": {"median": statistics.median(loads), "all": loads},
        "people": nodes,
        "ties_drawn": canvas_ties,
        "header": ties,
        "step_to_paint_ms_system_tab": {
            "median": statistics.median(system),
            "p90": sorted(system)[int(0.9 * (len(system) - 1))],
            "max": max(system),
        },
        "step_to_paint_ms_trends_tab": {
            "median": statistics.median(trends),
            "p90": sorted(trends)[int(0.9 * (len(trends) - 1))],
            "max": max(trends),
        },
        "play_weeks_per_s": (w1 - w0) / (t1 - t0),
        "outside_requests": outside,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="Step samples per tab")
    parser.add_argument("--play-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp) / "server.log") as url:
        result = measure(url, args.steps, args.play_seconds)
    result["machine"] = {"platform": platform.platform(), "python": platform.python_version()}
    result["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"people {result['people']:,}, ties drawn {result['ties_drawn']:,} ({result['header']})")
    print(f"page load               {result['page_load_s']['median']:.2f} s (median of 3)")
    s, t = result["step_to_paint_ms_system_tab"], result["step_to_paint_ms_trends_tab"]
    print(f"step-to-paint, System   {s['median']:.0f} ms median, {s['p90']:.0f} ms p90, {s['max']:.0f} ms max")
    print(f"step-to-paint, Trends   {t['median']:.0f} ms median, {t['p90']:.0f} ms p90, {t['max']:.0f} ms max")
    print(f"Play                    {result['play_weeks_per_s']:.1f} weeks per second")
    if result["outside_requests"]:
        print(f"WARNING: off-machine requests: {result['outside_requests']}")
    print(f"written to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
