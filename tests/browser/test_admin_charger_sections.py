"""The charger page's Power, Cards, Firmware and Certificates sections, in Chromium.

Against the running stack with its simulated OCPP 1.6 charger: an operator sets and removes a
site limit and sees the charger's composite schedule; adds cards (the charger's local list
gets them, Authorize accepts them), sees the API's refusal of a duplicate, removes one;
requests a security log and finds the uploaded file; installs a root certificate from pasted
PEM, sees a bad one refused, deletes it, and has the charger renew its client certificate. A
read-only token sees the same sections without a single change control. The screenshots land
in ``test-artifacts/screenshots/admin-*.png``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import TYPE_CHECKING, cast

import pytest

from ocpp_server.certificates import new_ca
from ocpp_server.v16.charge_point import SimulatedChargePoint
from tests.browser.conftest import screenshot
from tests.browser.test_admin_ui import cockpit, desk
from tests.cockpit.conftest import CHARGER, Cockpit
from tests.cockpit.test_charger_admin_api import leaf_pem

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["cockpit", "desk"]  # the fixtures, shared with the other admin UI tests


async def open_charger_page(cockpit: Cockpit, page: Page, token: str) -> None:
    from playwright.async_api import expect

    await page.goto(cockpit.base + "/admin/")
    await page.fill("#token", token)
    await page.click("text=Sign in with token")
    await expect(page.locator(f'[data-charger="{CHARGER}"]')).to_be_visible()
    await page.click(f'[data-charger="{CHARGER}"] h2 a')
    await expect(page.locator("#cards")).to_be_visible()


async def test_an_operator_manages_power_cards_logs_and_certificates_on_the_charger_page(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    sim = cast(SimulatedChargePoint, cockpit.stack.charger)
    local_lists = cockpit.stack.strom.cockpit.api.ctx.local_lists
    assert local_lists is not None
    await local_lists.settled()
    await open_charger_page(cockpit, page, cockpit.admin_token)

    # Power: the site limit reaches the charger; its composite schedule shows it.
    power = page.locator("#power")
    await expect(power.locator("#site-limit-now")).to_contain_text("Site limit: none")
    await power.locator('input[name="limit_kw"]').fill("7.4")
    await power.locator("text=Set limit").click()
    await expect(page.locator("#power-result")).to_contain_text("Accepted")
    await expect(power.locator("#site-limit-now")).to_contain_text("Site limit: 7.4 kW")
    await expect(power.locator('#schedule-chart rect[data-limit-w="7400"]')).to_have_count(1)
    assert sim.power_w(1) == 7_400
    # Enter submits from the field: live refreshes leave the page alone while it has the focus.
    await power.locator('input[name="limit_kw"]').fill("0.5")
    await power.locator('input[name="limit_kw"]').press("Enter")
    await expect(page.locator("#power-result.error")).to_contain_text("limit_kw")
    assert cockpit.stack.strom.config.profile(CHARGER).site_limit_w == 7_400
    await screenshot(page, "admin-charger-power")
    await page.click("#clear-limit")
    await expect(power.locator("#site-limit-now")).to_contain_text("Site limit: none")
    assert sim.power_w(1) == 11_000

    # Cards: added, sent to the charger's local list, refused by the API when doubled.
    cards = page.locator("#cards")
    rows = cards.locator("tbody tr")
    await page.click("#add-card")
    await expect(rows).to_have_count(1)
    row = rows.last  # a new row goes at the end
    await row.locator('input[name="id_tag"]').fill("STAFF-1")
    await row.locator('input[name="label"]').fill("Anna")
    await page.click("#save-cards")
    await expect(page.locator("#cards-result")).to_contain_text("Full update, version 1: Accepted")
    assert sim.local_list.tags() == ["STAFF-1"]
    assert (await sim.call("Authorize", {"idTag": "STAFF-1"}))["idTagInfo"] == {
        "status": "Accepted"
    }
    await page.click("#add-card")
    await expect(rows).to_have_count(2)
    row = rows.last
    await row.locator('input[name="id_tag"]').fill("FLEET-7")
    await row.locator('select[name="mode"]').select_option("account")
    await row.locator('input[name="account"]').fill("acme")
    await expect(page.locator("#cards-unsaved")).to_be_visible()
    await page.click("#save-cards")
    await expect(page.locator("#cards-result")).to_contain_text(
        "Differential update, version 2: Accepted"
    )
    assert sim.local_list.tags() == ["FLEET-7", "STAFF-1"]
    await page.click("#add-card")
    await expect(rows).to_have_count(3)
    await rows.last.locator('input[name="id_tag"]').fill("staff-1")
    await page.click("#save-cards")
    await expect(page.locator("#cards-result.error")).to_contain_text("listed twice")
    await screenshot(page, "admin-charger-cards")
    await cards.locator('tr[data-card="staff-1"] >> text=Remove').click()
    await cards.locator('tr[data-card="STAFF-1"] >> text=Remove').click()
    await page.click("#save-cards")
    await expect(page.locator("#cards-result")).to_contain_text("Accepted")
    assert sim.local_list.tags() == ["FLEET-7"]
    assert [c.id_tag for c in cockpit.stack.strom.config.profile(CHARGER).cards] == ["FLEET-7"]

    # Firmware and logs: a security log is uploaded and listed for download.
    firmware = page.locator("#firmware")
    await firmware.locator('select[name="log_type"]').select_option("security")
    await firmware.locator("text=Request log").click()
    await expect(page.locator("#firmware-result")).to_contain_text("Security log: Accepted")
    uploaded = firmware.locator('#uploads tr[data-file$="-security-log.txt"]')
    await expect(uploaded).to_have_count(1, timeout=20_000)
    await expect(page.locator("#firmware-status")).to_contain_text("Uploaded")
    async with page.expect_download() as downloading:
        await uploaded.locator("text=Download").click()
    download = await downloading.value
    assert download.suggested_filename.endswith("-security-log.txt")

    # Root certificates: a bad paste is refused; a root is installed, listed and deleted.
    certificates = page.locator("#certificates")
    await expect(certificates.locator("#certificates-status")).to_contain_text("NotFound")
    await certificates.locator('textarea[name="pem"]').fill(leaf_pem())
    await certificates.locator("text=Install certificate").click()
    await expect(page.locator("#certificates-result.error")).to_contain_text("must be a CA")
    assert sim.certificates.installed == {}
    root, _key = new_ca("Browser test root", now=dt.datetime.now(dt.UTC))
    await certificates.locator('textarea[name="pem"]').fill(root.decode())
    await certificates.locator("text=Install certificate").click()
    await expect(page.locator("#certificates-result")).to_contain_text("Accepted")
    listed = certificates.locator("#certificate-list tr[data-serial]")
    await expect(listed).to_have_count(1)
    assert sim.certificates.installed == {"CentralSystemRootCertificate": [root.decode()]}
    await screenshot(page, "admin-charger-certificates")
    page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await listed.locator("text=Delete").click()
    await expect(listed).to_have_count(0)
    assert sim.certificates.installed == {"CentralSystemRootCertificate": []}
    await page.click("#renew-certificate")
    await expect(page.locator("#certificates-result")).to_contain_text(
        "Client certificate renewal: Accepted"
    )
    # The refused inputs above log their 400 answers in the console, as they should; no more.
    assert [line for line in trouble if "status of 400" not in line] == []


async def test_a_read_only_token_sees_the_sections_without_change_controls(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    await cockpit.call("PUT", f"/chargers/{CHARGER}/cards", json={"cards": [{"id_tag": "A-1"}]})
    await open_charger_page(cockpit, page, cockpit.read_token)
    await expect(page.locator('#cards tr[data-card="A-1"]')).to_be_visible()
    await expect(page.locator("#certificates-status")).to_contain_text("NotFound")
    await expect(page.locator("#schedule-chart, #site-limit-now")).not_to_have_count(0)
    for control in (
        "#site-limit",
        "#clear-limit",
        "#cards-form",
        "#add-card",
        "#update-firmware",
        "#request-log",
        "#install-certificate",
        "#renew-certificate",
        "#certificates button.danger",
        "#uploads button",
    ):
        await expect(page.locator(control)).to_have_count(0)
    assert trouble == []
