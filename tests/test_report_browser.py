"""report.html in real headless Chromium (Debian's ``chromium``, driven by playwright through
``executable_path``: no browser is downloaded): the page loads with no console error, every
<img> decodes, a picker change redraws the explorer's charts, sorting the full grid changes
its first row, and filtering hides rows.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_report import tiny_study  # noqa: E402  (the tiny study, rendered once per session)

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).is_file()), None)
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (CI installs the Debian package "
                                                        "'chromium' in .ci/run)")


@pytest.fixture(scope="module")
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = []
        pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: errors.append(str(e)))
        requests = []
        pg.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        pg.goto((tiny_study() / "report.html").as_uri())
        pg.wait_for_load_state("load")
        pg.errors, pg.outside = errors, requests
        yield pg
        browser.close()


def test_loads_without_console_errors_or_requests(page):
    assert page.errors == []
    assert page.outside == []  # offline: nothing fetched
    n_png = len(list((tiny_study() / "figures").glob("*.png")))
    decoded = page.evaluate("Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length")
    assert page.evaluate("document.images.length") == n_png and decoded == n_png


def test_picker_change_redraws_the_charts(page):
    root = page.locator("#explorer")
    assert root.get_attribute("data-renders") == "1"
    canvases = page.locator("#explorer canvas")
    assert canvases.count() >= 1
    before = page.evaluate("document.querySelector('#explorer canvas').toDataURL()")
    legend_before = page.locator("#explorer .u-legend").first.inner_text()
    page.select_option("#pick-lr", "0.1")  # every cell at lr 0.1 instead of its selected lr
    assert root.get_attribute("data-renders") == "2"
    after = page.evaluate("document.querySelector('#explorer canvas').toDataURL()")
    legend_after = page.locator("#explorer .u-legend").first.inner_text()
    assert "lr 0.1" in legend_after and legend_after != legend_before
    assert after != before
    page.select_option("#pick-seed", "1")
    assert root.get_attribute("data-renders") == "3"
    assert page.errors == []


def test_sorting_and_filtering_the_grid(page):
    table = page.locator("table.sortable")
    first = lambda: table.locator("tbody tr").first.inner_text()  # noqa: E731
    header = table.locator("thead th", has_text="val %")
    start = first()
    header.click()
    ascending = first()
    header.click()
    descending = first()
    assert ascending != descending and (ascending != start or descending != start)
    assert "sorted-desc" in header.get_attribute("class")
    col = page.evaluate("Array.from(document.querySelector('table.sortable').tHead.rows[0].cells)"
                        ".findIndex(th => th.textContent.startsWith('val %'))")
    values = page.evaluate(f"Array.from(document.querySelector('table.sortable').tBodies[0].rows)"
                           f".map(r => parseFloat(r.cells[{col}].textContent))")
    assert values == sorted(values, reverse=True)
    page.fill("input.table-filter", "gaussian")
    shown = table.locator("tbody tr:visible")
    assert shown.count() == 2 and all("gaussian" in shown.nth(i).inner_text() for i in range(shown.count()))
    assert "2 of 4 rows" in page.locator(".table-count").inner_text()
