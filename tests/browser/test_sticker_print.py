"""The SVG sticker as Chromium draws it: A6, its code read back from the pixels, and every line
inside the sticker in the font the browser really uses (Debian's DejaVu Sans here, wider than
the Helvetica the layout is measured with).

The PDF sticker is read back in ``tests/cockpit/test_sticker.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_pages import assert_connector_code, read_qr
from tests.cockpit.conftest import CHARGER, Cockpit, start_cockpit

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.peer

CSS_PX_PER_MM = 96 / 25.4


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path):
        yield running


async def test_the_svg_sticker_prints_at_a6_scans_to_the_page_and_every_line_fits(
    cockpit: Cockpit, browser: Browser
) -> None:
    answer = await cockpit.call(
        "GET", f"/chargers/{CHARGER}/sticker.svg", params={"connector": "1"}
    )
    assert answer.status_code == 200
    svg = answer.text.split("?>", 1)[1]  # inline in a page: without the XML declaration
    # About 300 dpi: three device pixels per CSS pixel.
    context = await browser.new_context(
        viewport={"width": 420, "height": 580}, device_scale_factor=3
    )
    try:
        page = await context.new_page()
        await page.set_content(f"<!doctype html><body style='margin:0'>{svg}</body>")
        sticker = page.locator("body > svg")
        box = await sticker.bounding_box()
        assert box is not None
        size_mm = (box["width"] / CSS_PX_PER_MM, box["height"] / CSS_PX_PER_MM)
        assert (round(size_mm[0]), round(size_mm[1])) == (105, 148)

        scanned = await read_qr(sticker)
        (lnurl_text,) = parse_qs(urlsplit(scanned).query)["lightning"]
        assert_connector_code(scanned, cockpit.base, 1, lnurl_text)

        lines = await page.evaluate(
            """[...document.querySelectorAll('body > svg > text')].map(t => {
                const b = t.getBBox(); return [t.textContent, b.x, b.x + b.width] })"""
        )
        host = urlsplit(cockpit.base).netloc
        assert [text for text, _, _ in lines][3:5] == ["Pay only at", host]
        for text, left, right in lines:
            where = f"{text!r} runs from {left:.1f} to {right:.1f} mm"
            assert left >= 2, where
            assert right <= 103, where
        await screenshot(page, "sticker", full_page=False)
    finally:
        await context.close()
