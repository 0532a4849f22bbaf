"""What a driver sees in a real browser on a phone: the charger page, the live session page,
the same page without JavaScript, and a wrong link.

Chromium (Debian's, driven by Playwright) talks to a whole Strom on 127.0.0.1 (see
``tests/e2e/conftest.py``); the charger is simulated over a real OCPP websocket and its meter
runs 120 times faster than real time. Every test saves full-page screenshots under
``test-artifacts/screenshots/`` for a person to look at. QR codes are read back from the
screenshot pixels with a real barcode reader, as a wallet's camera would.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import lnurl
import pytest

from lnurl_server.pages import format_duration
from strom_core.units import format_kwh, format_sat
from tests.browser.conftest import Phone, screenshot
from tests.e2e.conftest import CHARGER, Stack
from tests.e2e.test_pay_charge_refund import claim_refund

if TYPE_CHECKING:
    from playwright.async_api import Locator, Page

pytestmark = pytest.mark.peer

SAT = re.compile(r"\d{1,3}(,\d{3})*(\.\d{3})? sat")
KWH = re.compile(r"\d+\.\d{3} kWh")


def expect(target: Locator | Page) -> Any:
    # Imported here so that a machine without Playwright skips (see conftest), not errors.
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


async def read_qr(locator: Locator) -> str:
    """Decode the QR code shown in ``locator`` from its on-screen pixels."""
    try:
        import zxingcpp
        from PIL import Image
    except ImportError as exc:
        from tests.conftest import peer_missing

        peer_missing(f"a QR reader is needed (zxing-cpp and pillow from PyPI): {exc}")
        raise
    image = Image.open(io.BytesIO(await locator.screenshot())).convert("L")
    found = zxingcpp.read_barcodes(
        image, formats=zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    )
    assert len(found) == 1, f"expected one readable QR code, found {len(found)}"
    return str(found[0].text)


def assert_connector_code(scanned: str, base: str, connector_id: int, lnurl_text: str) -> None:
    """A connector's QR code: its page on ``base``, with its LNURL-pay in ``?lightning=``."""
    parts = urlsplit(scanned)
    assert f"{parts.scheme}://{parts.netloc}" == base
    assert parts.path == f"/c/{CHARGER}/{connector_id}"
    assert parse_qs(parts.query) == {"lightning": [lnurl_text]}
    assert str(lnurl.decode(lnurl_text)) == f"{base}/lnurlp/{CHARGER}/{connector_id}"


async def assert_fits_a_phone(page: Page) -> None:
    overflow = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px on a phone"


async def test_charger_page_on_a_phone_shows_price_status_and_the_code_to_pay_until_in_use(
    stack: Stack, phone: Phone
) -> None:
    page = await phone()
    response = await page.goto(f"{stack.base}/c/{CHARGER}")
    assert response is not None
    assert response.status == 200
    await expect(page.get_by_test_id("fake-banner")).to_contain_text("NO REAL MONEY")
    await expect(page.get_by_test_id("name")).to_have_text("Example charger")
    await expect(page.get_by_test_id("address")).to_have_text("Alexanderplatz 1, 10178 Berlin")
    await expect(page.get_by_test_id("price")).to_have_text("250 sat/kWh")
    connector = page.get_by_test_id("connector-1")
    await expect(connector).to_contain_text("Type2")
    await expect(connector.get_by_test_id("status")).to_have_text("Free")

    link = connector.get_by_test_id("pay-link")
    await expect(link).to_be_visible()
    href = await link.get_attribute("href")
    assert href is not None
    assert href.startswith("lightning:LNURL1")
    pay_url = f"{stack.base}/lnurlp/{CHARGER}/1"
    assert str(lnurl.decode(href.removeprefix("lightning:"))) == pay_url

    qr = connector.get_by_test_id("pay-qr").locator("svg")
    await expect(qr).to_be_visible()
    box = await qr.bounding_box()
    assert box is not None
    assert box["width"] >= 250, f"QR code only {box['width']}px wide on a phone"
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    # The code is the connector's page with its LNURL in ?lightning= (LUD-01 fallback): a
    # camera opens the page on this host, a wallet pays the same LNURL as the button.
    assert_connector_code(await read_qr(qr), stack.base, 1, href.removeprefix("lightning:"))
    await assert_fits_a_phone(page)
    await screenshot(page, "charger-free")
    await screenshot(page, "charger-free-first-screen", full_page=False)

    status_url, _ = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    await page.reload()
    await expect(connector.get_by_test_id("status")).to_have_text("In use")
    await expect(connector.get_by_test_id("busy")).to_contain_text("in use by someone else")
    await expect(connector.locator("svg")).to_have_count(0)
    await expect(page.locator("a[href^='lightning:']")).to_have_count(0)
    await expect(page.get_by_test_id("price")).to_have_text("250 sat/kWh")
    await assert_fits_a_phone(page)
    await screenshot(page, "charger-in-use")


async def test_a_phone_camera_on_the_code_opens_the_connector_page_on_the_operators_host(
    stack: Stack, phone: Phone
) -> None:
    charger_page = await phone()
    await charger_page.goto(f"{stack.base}/c/{CHARGER}")
    code = charger_page.get_by_test_id("connector-1").get_by_test_id("pay-qr").locator("svg")
    scanned = await read_qr(code)

    camera = await phone(expect_not_found=True)
    response = await camera.goto(scanned)  # a camera app opens the URL it reads
    assert response is not None
    assert response.status == 200
    assert camera.url == scanned
    await expect(camera.get_by_test_id("name")).to_have_text("Example charger")
    await expect(camera.get_by_test_id("price")).to_have_text("250 sat/kWh")
    connector = camera.get_by_test_id("connector-1")
    await expect(connector.get_by_test_id("status")).to_have_text("Free")
    # The page offers the same code and the same LNURL as the sticker.
    assert await read_qr(connector.get_by_test_id("pay-qr").locator("svg")) == scanned
    href = await connector.get_by_test_id("pay-link").get_attribute("href")
    assert href is not None
    assert_connector_code(scanned, stack.base, 1, href.removeprefix("lightning:"))
    await assert_fits_a_phone(camera)
    await screenshot(camera, "connector-page", full_page=False)

    response = await camera.goto(scanned.replace(f"/c/{CHARGER}/1", f"/c/{CHARGER}/2"))
    assert response is not None
    assert response.status == 404
    await expect(camera.locator("body")).to_contain_text("This charger has no connector 2.")


async def test_session_page_follows_the_charge_live_and_ends_with_the_receipt(
    stack: Stack, phone: Phone
) -> None:
    status_url, session_url = await stack.pay(2_000_000)
    status = await stack.wait_state(status_url, "charging")
    page = await phone()
    polled: list[str] = []
    sockets: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if ".json" in r.url else None)
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await page.goto(session_url)
    state = page.get_by_test_id("state")
    await expect(state).to_have_text("Charging")
    await expect(page.get_by_test_id("liveness")).to_have_text("Updates live.")
    await expect(page.get_by_test_id("paid")).to_have_text("2,000 sat")
    await expect(page.get_by_test_id("cost")).to_have_text(SAT)
    await expect(page.get_by_test_id("refundable")).to_have_text(SAT)
    energy = page.get_by_test_id("energy")
    first = await energy.inner_text()
    assert KWH.fullmatch(first), first

    # The page's own script updates the numbers: the document is never reloaded meanwhile.
    await page.evaluate("window.stillTheSameDocument = true")
    await expect(energy).not_to_have_text(first, timeout=6_000)
    await expect(energy).to_have_text(KWH)
    await expect(page.get_by_test_id("cost")).to_have_text(SAT)
    assert await page.evaluate("window.stillTheSameDocument === true")
    # The numbers came over the session's own websocket stream, not by polling.
    assert sockets == [stack.base.replace("http://", "ws://") + "/api/v1/ws"]
    assert polled == []

    # The script shows numbers exactly as the server renders them.
    for amount in (0, 1, 999, 1_000, 1_001, 203_500, 1_796_500, 2_000_000, 123_456_789_012):
        assert await page.evaluate(f"stromFormat.sat({amount})") == format_sat(amount)
    for wh in (0, 1, 999, 1_000, 1_291, 123_456):
        assert await page.evaluate(f"stromFormat.kwh({wh})") == format_kwh(wh)
    for seconds in (0, 59, 60, 3_599, 3_600, 3_660, 86_400):
        assert await page.evaluate(f"stromFormat.duration({seconds})") == format_duration(seconds)

    withdraw = page.get_by_test_id("withdraw")
    link = withdraw.get_by_test_id("withdraw-link")
    await expect(link).to_have_attribute("href", re.compile(r"^lightning:LNURL1"))
    assert await link.get_attribute("href") == "lightning:" + status["withdraw_lnurl"]
    assert await read_qr(withdraw.get_by_test_id("withdraw-qr").locator("svg")) == (
        "LIGHTNING:" + status["withdraw_lnurl"]
    )
    await expect(page.get_by_test_id("fake-banner")).to_be_visible()
    await assert_fits_a_phone(page)
    await screenshot(page, "session-charging")
    await screenshot(page, "session-charging-first-screen", full_page=False)

    offer, _ = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    await expect(state).to_have_text("Done — refund paid", timeout=10_000)
    refunded = format_sat(final["refunded_msat"])
    assert final["refunded_msat"] == offer["maxWithdrawable"]
    await expect(page.get_by_test_id("refunded")).to_have_text(refunded)
    receipt = page.get_by_test_id("receipt")
    await expect(receipt.get_by_test_id("paid")).to_have_text(format_sat(final["paid_msat"]))
    await expect(receipt.get_by_test_id("cost")).to_have_text(format_sat(final["consumed_msat"]))
    await expect(receipt.get_by_test_id("energy")).to_have_text(format_kwh(final["energy_wh"]))
    await expect(receipt.get_by_test_id("receipt-refunded")).to_have_text(refunded)
    await expect(page.locator("a[href^='lightning:']")).to_have_count(0)
    await assert_fits_a_phone(page)
    await screenshot(page, "session-receipt")


async def test_session_page_without_javascript_shows_state_amounts_and_the_refund_link(
    stack: Stack, phone: Phone
) -> None:
    status_url, session_url = await stack.pay(2_000_000)
    status = await stack.wait_state(status_url, "charging")
    page = await phone(js=False)
    await page.goto(session_url)
    await expect(page.get_by_test_id("state")).to_have_text("Charging")
    await expect(page.get_by_test_id("energy")).to_have_text(KWH)
    await expect(page.get_by_test_id("paid")).to_have_text("2,000 sat")
    await expect(page.get_by_test_id("cost")).to_have_text(SAT)
    await expect(page.get_by_test_id("refundable")).to_have_text(SAT)
    link = page.get_by_test_id("withdraw-link")
    await expect(link).to_be_visible()
    assert await link.get_attribute("href") == "lightning:" + status["withdraw_lnurl"]
    await expect(page.get_by_test_id("withdraw-qr").locator("svg")).to_be_visible()
    # Without a script the page offers a refresh link, and refreshes itself in a browser that
    # has scripts off (a <noscript> meta refresh; Playwright's switch does not render those).
    await expect(page.get_by_test_id("liveness")).to_have_text("Refresh for the latest figures.")
    html = await page.content()
    assert '<noscript><meta http-equiv="refresh" content="10"></noscript>' in html
    await assert_fits_a_phone(page)
    await screenshot(page, "session-no-javascript")


async def test_a_wrong_secret_gets_a_404_page_not_the_session(stack: Stack, phone: Phone) -> None:
    status_url, session_url = await stack.pay(2_000_000)
    status = await stack.wait_state(status_url, "paid", "starting", "charging")
    secret = session_url.split("secret=", 1)[1]
    wrong = session_url.replace(secret, ("A" if secret[0] != "A" else "B") + secret[1:])
    page = await phone(expect_not_found=True)
    for url in (wrong, session_url.split("?", 1)[0]):
        response = await page.goto(url)
        assert response is not None
        assert response.status == 404
        text = await page.locator("body").inner_text()
        assert "no such charging session" in text.lower()
        html = await page.content()
        assert status["withdraw_lnurl"] not in html
        assert "lightning:" not in html.lower()
        assert " sat" not in text
        answer = await page.request.get(wrong.replace("?", ".json?", 1))
        assert answer.status == 404
    await screenshot(page, "session-wrong-secret")


async def test_an_offline_charger_shows_why_and_no_code_to_pay_on_a_phone(
    stack: Stack, phone: Phone
) -> None:
    from tests.e2e.test_offline_refusal import back_online, take_offline

    await take_offline(stack)
    page = await phone()
    await page.goto(f"{stack.base}/c/{CHARGER}")
    connector = page.get_by_test_id("connector-1")
    await expect(connector.get_by_test_id("status")).to_have_text("Offline")
    await expect(connector.get_by_test_id("busy")).to_contain_text("not connected right now")
    await expect(connector.get_by_test_id("pay-qr")).to_have_count(0)
    await expect(connector.get_by_test_id("pay-link")).to_have_count(0)
    await assert_fits_a_phone(page)
    await screenshot(page, "charger-offline")
    async with back_online(stack):
        await page.reload()  # what the page's own refresh does
        await expect(connector.get_by_test_id("status")).to_have_text("Free")
        await expect(connector.get_by_test_id("pay-qr").locator("svg")).to_be_visible()
