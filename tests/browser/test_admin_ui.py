"""The admin UI in Debian's Chromium: sign in with a token, watch a charge start live, stop it.

The UI never polls: what changes on screen after sign-in comes from the websocket. The
screenshots land in ``test-artifacts/screenshots/admin-*.png``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import lnurl
import pytest

from strom_nostr.event import sign_event
from strom_nostr.keys import encode_npub, public_key_hex
from tests.browser.conftest import Phone, screenshot, watch_csp
from tests.browser.test_pages import read_qr
from tests.cockpit.conftest import ADMIN_SECRET, CHARGER, Cockpit, simulated, start_cockpit

if TYPE_CHECKING:
    from playwright.async_api import Browser, ConsoleMessage, Page, Route

pytestmark = [pytest.mark.peer, pytest.mark.slow]


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path):
        yield running


@pytest.fixture
async def desk(browser: Browser) -> AsyncIterator[tuple[Page, list[str]]]:
    """A desktop-sized page that may reach only 127.0.0.1; the list collects its errors."""
    trouble: list[str] = []
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")

    async def keep_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in {"127.0.0.1", "localhost"} or url.startswith("blob:"):
            await route.continue_()
        else:
            trouble.append(f"outside request {route.request.url}")
            await route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            trouble.append(message.text)

    await watch_csp(context)  # a violation is a console error, so it lands in trouble
    await context.route("**/*", keep_local)
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: trouble.append(str(exc)))
    yield page, trouble
    await context.close()


async def test_an_operator_signs_in_watches_a_charge_start_live_and_stops_it(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    await page.goto(cockpit.base + "/admin/")
    await expect(page.locator("#signin")).to_be_visible()
    await page.fill("#token", "strom_wrong")
    await page.click("text=Sign in with token")
    await expect(page.locator("#signin-error")).to_contain_text("no longer valid")
    trouble.clear()  # the refused sign-in logs its 401 to the console, as it should

    await page.fill("#token", cockpit.admin_token)
    await page.click("text=Sign in with token")
    card = page.locator(f'[data-charger="{CHARGER}"]')
    await expect(card).to_be_visible()
    await expect(page.locator("#live")).to_have_text("live")
    status = card.locator('tr[data-connector="1"] [data-status]')
    await expect(status).not_to_have_text("Charging")
    await expect(page.locator("#who")).to_have_text("token:ops")
    await screenshot(page, "admin-dashboard-before", full_page=False)

    status_url, _ = await cockpit.stack.pay(20_000_000)  # a driver pays with a wallet
    await expect(status).to_have_text("Charging", timeout=20_000)
    await expect(page.locator("#stat-charging")).to_have_text("1")
    await expect(page.locator("#toast")).to_contain_text("Payment received")
    stop = card.locator("button[data-stop]")
    await expect(stop).to_be_visible()
    await screenshot(page, "admin-dashboard-charging", full_page=False)

    await stop.click()
    stopped = await cockpit.stack.wait_state(status_url, "stopped")
    assert stopped["stop_reason"] == "admin"
    await expect(card.locator("button[data-stop]")).to_have_count(0)
    await expect(status).not_to_have_text("Charging")
    await screenshot(page, "admin-dashboard-stopped", full_page=False)

    # The charger page: sticker, tariff editor with what a driver pays before saving.
    fetched: list[str] = []
    page.on(
        "request",
        lambda r: fetched.append(r.url) if "sticker" in r.url or "status-event" in r.url else None,
    )
    await card.locator("h2 a").click()
    await expect(page.locator("#tariff")).to_be_visible()
    await expect(page.locator("#ocpp-version")).to_have_text("OCPP 1.6")
    for only_201 in ("#device-model", "#security-events", "[data-security]"):
        await expect(page.locator(only_201)).to_have_count(0)
    sticker = page.locator(".sticker img").first
    await expect(sticker).to_be_visible()
    scanned = await read_qr(sticker)  # what a wallet's camera reads off the printed sticker
    assert scanned.startswith(f"{cockpit.base}/c/{CHARGER}/1?lightning=LNURL1")
    assert str(lnurl.decode(scanned.split("lightning=")[1])) == cockpit.stack.pay_url
    await page.fill('#tariff input[name="per_kwh_sat"]', "400")
    await expect(page.locator("#quote")).to_contain_text("10 kWh: 4,000 sat")
    await expect(page.locator("#quote")).to_contain_text("30 kWh: 12,000 sat")
    await screenshot(page, "admin-charger")
    await page.click("text=Save tariff")
    await expect(page.locator("#toast")).to_have_text("Tariff saved")
    offer = await cockpit.stack.get(cockpit.stack.pay_url)
    assert "400 sat/kWh" in offer["metadata"]

    # A new charge while the page is open: its connectors follow live, and what does not
    # change with events (sticker, status event from the relays) is not fetched again.
    fetched.clear()
    status_url, _ = await cockpit.stack.pay(5_000_000)
    row = page.locator('tr[data-connector="1"] [data-status]')
    await expect(row).to_have_text("Charging", timeout=20_000)
    await cockpit.stack.wait_state(status_url, "charging")
    await page.wait_for_timeout(2_500)  # a few meter readings' worth of live refreshes
    assert [url for url in fetched if "status-event" in url] == []
    assert len([url for url in fetched if "sticker" in url]) <= 1  # once: the price changed

    await page.click("nav >> text=Sessions")
    session_id = stopped["id"]
    await expect(page.locator(f'tr[data-session="{session_id}"] [data-state]')).to_have_text(
        "stopped"
    )
    await screenshot(page, "admin-sessions")
    await page.click("nav >> text=Ledger")
    await expect(page.locator("#view h1")).to_have_text("Ledger")
    await screenshot(page, "admin-ledger")
    assert trouble == []


async def test_an_admin_signs_in_with_a_nostr_extension_and_every_request_is_nip98(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    """A NIP-07 extension (here: a page script backed by the admin's key in the test) signs a
    NIP-98 event for every API call and the websocket; changes are audited by npub."""
    from playwright.async_api import expect

    page, trouble = desk
    signed: list[dict[str, Any]] = []

    def sign(template: dict[str, Any]) -> dict[str, Any]:
        event = sign_event(
            ADMIN_SECRET,
            template["kind"],
            template["tags"],
            template["content"],
            template["created_at"],
        ).to_dict()
        signed.append(event)
        return event

    await page.expose_function("testSigner", sign)
    await page.add_init_script(
        "window.nostr = {signEvent: (event) => window.testSigner(event),"
        " getPublicKey: async () => ''}"
    )
    await page.goto(cockpit.base + "/admin/")
    await page.click("text=Sign in with a nostr extension")
    npub = encode_npub(public_key_hex(ADMIN_SECRET))
    await expect(page.locator("#who")).to_have_text(npub)
    await expect(page.locator("#live")).to_have_text("live")
    await page.goto(cockpit.base + f"/admin/#/chargers/{CHARGER}")
    await page.fill('#tariff input[name="per_kwh_sat"]', "333")
    await expect(page.locator("#quote")).to_contain_text("10 kWh: 3,330 sat")
    await page.click("text=Save tariff")
    await expect(page.locator("#toast")).to_have_text("Tariff saved")

    # The same request twice in one second: two events (a nonce tag each), neither a replay.
    twice = await page.evaluate(
        "Promise.all([api('GET', '/chargers'), api('GET', '/chargers')]).then((a) => a.length)"
    )
    assert twice == 2
    assert {e["kind"] for e in signed} == {27235}
    assert len({e["id"] for e in signed}) == len(signed)
    put = [e for e in signed if ["method", "PUT"] in e["tags"]]
    assert len(put) == 1
    assert any(tag[0] == "payload" for tag in put[0]["tags"])
    audit = (await cockpit.call("GET", "/audit")).json()["items"]
    assert (audit[0]["actor"], audit[0]["action"]) == (npub, "api.tariff.set")
    assert trouble == []


async def test_an_operator_adds_a_charger_that_is_waiting_for_approval(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    charger = simulated(cockpit, "garage-2", connectors=2)
    running = asyncio.create_task(charger.run())
    try:

        async def waiting() -> None:
            while True:
                if (await cockpit.call("GET", "/pending-chargers")).json()["items"]:
                    return
                await asyncio.sleep(0.05)

        await asyncio.wait_for(waiting(), 20)
        await page.goto(cockpit.base + "/admin/")
        await page.fill("#token", cockpit.admin_token)
        await page.click("text=Sign in with token")
        card = page.locator('[data-pending="garage-2"]')
        await expect(card).to_contain_text("Strom Simulator")
        await card.locator('input[name="name"]').fill("Garage, second box")
        await card.locator('input[name="address"]').fill("Hofweg 2")
        await card.locator('input[name="lat"]').fill("48.137")
        await card.locator('input[name="lon"]').fill("11.575")
        await card.locator('input[name="connectors"]').fill("2")
        await card.locator('input[name="max_power_kw"]').fill("22")
        await card.locator('input[name="per_kwh_sat"]').fill("280")
        await screenshot(page, "admin-approve-charger")
        await card.locator("text=Add charger").click()

        # Its OCPP password is shown once, with the note to copy it now; live refreshes of
        # the dashboard behind it do not take it away.
        shown = page.locator("#ocpp-password")
        await expect(shown).to_be_visible()
        await expect(shown).to_contain_text("Copy it now")
        key = await page.locator("#ocpp-password-key").text_content()
        assert key is not None
        assert len(key) == 20
        await expect(shown).to_contain_text(key.encode().hex())
        await screenshot(page, "admin-charger-password", full_page=False)
        await page.keyboard.press("Escape")
        await expect(shown).to_be_visible()
        await shown.locator("text=I have copied it").click()
        await expect(shown).to_have_count(0)

        # The operator enters it in the charger, which comes back with it.
        running.cancel()
        charger = simulated(cockpit, "garage-2", connectors=2, password=key)
        running = asyncio.create_task(charger.run())
        added = page.locator('[data-charger="garage-2"]')
        await expect(added).to_be_visible()
        await expect(added.locator(".badge").first).to_have_text("online", timeout=20_000)
        await expect(added.locator("[data-unauthenticated]")).to_have_count(0)
        await expect(page.locator("#pending")).to_have_count(0)
        await screenshot(page, "admin-charger-added", full_page=False)
        assert key not in await page.content()  # gone from the page once copied
        offer = await cockpit.stack.get(f"{cockpit.base}/lnurlp/garage-2/2")  # while connected
        assert "280 sat/kWh" in offer["metadata"]
    finally:
        running.cancel()
    assert trouble == []


async def test_a_charger_without_a_password_is_flagged_and_gets_one_on_the_charger_page(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    from strom_core.config import OcppProfileConfig

    page, trouble = desk
    strom = cockpit.stack.strom
    open_profile = strom.config.profile(CHARGER).model_copy(
        update={"ocpp": OcppProfileConfig(allow_unauthenticated=True)}
    )
    await strom.apply_profile(open_profile)  # as if its profile had no password
    await page.goto(cockpit.base + "/admin/")
    await page.fill("#token", cockpit.admin_token)
    await page.click("text=Sign in with token")
    flag = page.locator(f'[data-charger="{CHARGER}"] [data-unauthenticated]')
    await expect(flag).to_have_text("no OCPP password")
    assert "allow_unauthenticated" in (await flag.get_attribute("title") or "")

    await page.click(f'[data-charger="{CHARGER}"] h2 a')
    await expect(page.locator("h1 [data-unauthenticated]")).to_be_visible()
    await screenshot(page, "admin-charger-no-password", full_page=False)
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await page.click("text=New OCPP password")
    key = await page.locator("#ocpp-password-key").text_content()
    assert key is not None
    await page.locator("text=I have copied it").click()
    await expect(page.locator("h1 [data-unauthenticated]")).to_have_count(0)
    on_file = strom.config.profile(CHARGER).ocpp.password_hash
    assert on_file.startswith("hmac-sha256$")
    assert trouble == []


async def test_the_dashboard_says_when_the_lightning_node_is_down_and_why_until_it_is_back(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    from strom_lightning import FakeBackend

    page, trouble = desk
    strom = cockpit.stack.strom
    backend = strom.backend
    assert isinstance(backend, FakeBackend)
    strom.node.retry_initial_s = strom.node.retry_max_s = 0.1
    await page.goto(cockpit.base + "/admin/")
    await page.fill("#token", cockpit.admin_token)
    await page.click("text=Sign in with token")
    await expect(page.locator("#stat-lightning")).to_have_text("up")
    await expect(page.locator("#lightning-down")).to_have_count(0)

    async with backend.outage():
        strom.node.check_soon()  # as when an invoice could not be made
        banner = page.locator("#lightning-down")  # arrives over the websocket, no reload
        await expect(banner).to_contain_text("Lightning node unreachable since")
        await expect(banner).to_contain_text("simulated outage")
        await expect(banner).to_contain_text("Payments and refunds are refused")
        await expect(page.locator("#stat-lightning")).to_have_text("down")
        await screenshot(page, "admin-lightning-down")
    await expect(page.locator("#lightning-down")).to_have_count(0)  # back by itself
    await expect(page.locator("#stat-lightning")).to_have_text("up")
    assert trouble == []


@pytest.fixture
async def cockpit201(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path, ocpp_version="2.0.1"):
        yield running


async def reported(cockpit: Cockpit, key: str) -> dict[str, str]:
    """The charger's reported variables, once they include ``key``."""
    while True:
        answer = await cockpit.call("GET", f"/chargers/{CHARGER}")
        variables: dict[str, str] = answer.json()["variables"]
        if key in variables:
            return variables
        await asyncio.sleep(0.05)


async def test_an_operator_sees_a_201_chargers_security_event_and_sets_a_variable_on_a_phone(
    cockpit201: Cockpit, phone: Phone
) -> None:
    """On a phone: the new security event flags the charger on the dashboard, its page lists
    the reported device model (filterable), and a variable set through the form is reported
    back after a full report."""
    from playwright.async_api import expect

    cockpit = cockpit201
    charger = cockpit.stack.charger
    await charger.call(
        "SecurityEventNotification",
        {
            "type": "TamperDetectionActivated",
            "timestamp": "2025-03-14T09:26:53Z",
            "techInfo": "housing opened",
        },
    )
    timeout = "TxCtrlr/EVConnectionTimeOut"
    variables = await asyncio.wait_for(reported(cockpit, timeout), 20)  # after its boot
    page = await phone()
    await page.goto(cockpit.base + "/admin/")
    await page.fill("#token", cockpit.admin_token)
    await page.click("text=Sign in with token")
    card = page.locator(f'[data-charger="{CHARGER}"]')
    await expect(card).to_contain_text("OCPP 2.0.1")
    flag = card.locator("[data-security]")
    await expect(flag).to_have_text("security event")
    assert "TamperDetectionActivated" in (await flag.get_attribute("title") or "")
    await screenshot(page, "admin-201-dashboard", full_page=False)

    await card.locator("h2 a").click()
    await expect(page.locator("#ocpp-version")).to_have_text("OCPP 2.0.1")
    await expect(page.locator("h1 [data-security]")).to_have_text("1 new security event")
    event = page.locator('#security-events tr[data-security-event="TamperDetectionActivated"]')
    await expect(event).to_contain_text("housing opened")
    await expect(event).to_contain_text("new")
    await expect(page.locator("#variable-count")).to_have_text(f"{len(variables)} variables")
    await expect(page.locator("#variables details")).to_have_count(
        len({key.split("/")[0] for key in variables})
    )
    await screenshot(page, "admin-201-charger")

    await page.fill("#variable-filter", "connectiontime")
    await expect(page.locator("#variable-count")).to_have_text(f"1 of {len(variables)} variables")
    row = page.locator(f'#variables tr[data-variable="{timeout}"]')
    await expect(row).to_contain_text("60")
    await row.locator("button").click()  # into the form
    await expect(page.locator('#variable-form input[name="component"]')).to_have_value("TxCtrlr")
    await page.fill('#variable-form input[name="value"]', "soon")
    await page.click('#variable-form button[value="set"]')
    result = page.locator('#variable-results tr[data-variable="TxCtrlr/EVConnectionTimeOut"]')
    await expect(result.locator("[data-result]")).to_have_text("Rejected")  # not an integer
    await page.fill('#variable-form input[name="value"]', "45")
    await page.click('#variable-form button[value="set"]')
    await expect(result.locator("[data-result]")).to_have_text("Accepted")
    await page.click('#variable-form button[value="get"]')
    await expect(page.locator("#variable-results")).to_contain_text("GetVariables: Accepted")
    await expect(result).to_contain_text("45")

    await page.click("#request-report")
    await expect(row).to_contain_text("45")  # the report's pages arrived
    await screenshot(page, "admin-201-variable-set")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways
    audit = (await cockpit.call("GET", "/audit")).json()["items"]
    assert [e["action"] for e in audit[:4]] == [
        "api.charger.get_base_report",
        "api.charger.get_variables",
        "api.charger.set_variables",
        "api.charger.set_variables",
    ]

    await page.click("nav >> text=Dashboard")  # seen: no longer flagged
    await expect(card).to_be_visible()
    await expect(card.locator("[data-security]")).to_have_count(0)
