"""The HTML report in Chromium (issue 14, item 14), at a desktop size and on a 390x844 phone,
made by a real `bastion threats report` process from the shipped example: a contents list whose
links land on their sections, filters by status and risk that hide the other rows (radio
buttons and CSS, no script), a DREAD column kept on one line, the per-element sections folded so
the page is a few screens long, and no sideways scrolling of the page on the phone. Screenshots
go to test-artifacts/threat-report/ to be looked at."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import _services
from tests.cli._run import bastion
from tests.server.test_browser_flow import CHROMIUM_ARGS
from tests.threatmodel.conftest import EXAMPLE

pytestmark = pytest.mark.anyio
ARTIFACTS = _services.ROOT / "test-artifacts" / "threat-report"
SIZES = {"desktop": (1366, 900), "phone": (390, 844)}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "shop.html"
    result = bastion("threats", "report", str(EXAMPLE), "--format", "html", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return path


async def _visible_rows(page, status: str | None = None) -> list[str]:
    """The classes of the register rows that are displayed."""
    return await page.eval_on_selector_all(
        "#register tr.threat", "rows => rows.filter(r => r.offsetParent !== null).map(r => r.className)"
    )


@pytest.mark.parametrize("size", list(SIZES))
async def test_report_contents_filters_and_layout(report, size) -> None:
    """Contents links land on their sections; the status and risk filters hide the other rows;
    DREAD stays on one line; the page does not scroll sideways; the folded page is short."""
    chromium = _services.need_chromium()
    from playwright.async_api import async_playwright

    shots = ARTIFACTS / size
    shots.mkdir(parents=True, exist_ok=True)
    width, height = SIZES[size]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": width, "height": height})).new_page()
            await page.goto(report.as_uri())
            await page.screenshot(path=str(shots / "1-top.png"))
            await page.screenshot(path=str(shots / "0-full.png"), full_page=True)
            assert await page.evaluate("document.documentElement.scrollWidth") <= width
            full_height = await page.evaluate("document.documentElement.scrollHeight")
            # ~20,000 px before: the per-element sections are folded, the register scrolls inside.
            assert full_height < 12_000

            everything = await _visible_rows(page)
            assert len(everything) == 98  # open 40 + mitigated 56 + accepted 2

            await page.click("nav.contents a[href='#register']")
            assert await page.evaluate("location.hash") == "#register"
            top = await page.evaluate("document.getElementById('register').getBoundingClientRect().top")
            assert 0 <= top < height

            await page.click("label[for=status-open]")
            open_rows = await _visible_rows(page)
            assert len(open_rows) == 40
            assert all("st-row-open" in row for row in open_rows)
            await page.click("label[for=band-high]")
            high_open = await _visible_rows(page)
            assert 0 < len(high_open) < 40
            assert all("band-row-critical" in r or "band-row-high" in r for r in high_open)
            await page.screenshot(path=str(shots / "2-open-high-and-above.png"))
            await page.click("label[for=status-all]")
            await page.click("label[for=band-all]")
            assert len(await _visible_rows(page)) == 98

            cells = await page.eval_on_selector_all(
                "#register td.dread", "cells => cells.map(c => [c.scrollWidth <= c.clientWidth, c.innerText])"
            )
            assert all(fits and len(text.split()) == 5 for fits, text in cells)
            lines = await page.eval_on_selector_all(
                "#register td.dread",
                "cells => cells.map(c => { const r = document.createRange(); r.selectNodeContents(c);"
                " return r.getClientRects().length; })",
            )
            assert set(lines) == {1}  # each on one line, not five numbers stacked in a squashed column

            await page.click("nav.contents a[href='#el-users-service']")
            section = page.locator("#el-users-service")
            await section.locator("summary").click()
            assert await section.get_attribute("open") is not None
            await page.screenshot(path=str(shots / "3-element-open.png"))

            assert await page.locator("script").count() == 0
        finally:
            await browser.close()
