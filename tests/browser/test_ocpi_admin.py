"""The admin UI's Roaming page in Chromium: a partner offered, its bill overdue, written off.

Strom runs with ``[ocpi]`` on. The operator offers a partner on the page (the token A is shown
once, and it really opens Strom's OCPI versions endpoint), gives it 0 days to pay, and after a
partner session is billed and invoiced sees the receivable highlighted as overdue and the
partner blocked by it, then writes it off. The page speaks to people (no API field names).
Screenshots land in ``test-artifacts/screenshots/admin-roaming-*.png``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from ocpi_server.protocol import authorization_header
from strom_core.roaming import ReceivableState
from tests.browser.conftest import screenshot
from tests.browser.test_admin_ui import desk
from tests.browser.test_admin_words import words_of
from tests.cockpit.conftest import Cockpit, start_cockpit
from tests.cockpit.test_ocpi_receivables import partner_bill, roaming_of
from tests.ocpi.test_api import OCPI_ON
from tests.waits import until

if TYPE_CHECKING:
    from playwright.async_api import Dialog, Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["desk"]


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path, OCPI_ON):
        yield running


async def test_an_operator_offers_a_partner_sees_its_overdue_bill_and_writes_it_off(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    await page.goto(cockpit.base + "/admin/")
    await page.fill("#token", cockpit.admin_token)
    await page.click("text=Sign in with token")
    await page.click("nav >> text=Roaming")
    await expect(page.locator("#view h1")).to_have_text("Roaming (OCPI)")

    await page.click("#add-partner summary")
    await page.fill('#add-partner input[name="name"]', "Roaming One")
    await page.click("#add-partner >> text=Add partner")
    dialog = page.locator("#token-a")
    await expect(dialog).to_be_visible()
    token_a = await page.locator("#token-a-value").inner_text()
    versions_url = await page.locator("#token-a-url").inner_text()
    assert versions_url == f"{cockpit.base}/ocpi/versions"
    versions = await cockpit.http.get(
        versions_url, headers={"Authorization": authorization_header(token_a)}
    )
    assert versions.status_code == 200  # the token shown is the partner's real token A
    await screenshot(page, "admin-roaming-token-a", full_page=False)
    await page.click("#token-a >> text=I have copied it")
    await expect(dialog).to_have_count(0)

    card = page.locator('[data-partner="1"]')
    await expect(card.locator("[data-partner-state]")).to_have_text("offered")
    await card.locator('input[name="payment_terms_days"]').fill("0")
    await card.locator("form.terms >> text=Save").click()
    await expect(card).to_contain_text("0 days to pay")
    assert (await roaming_of(cockpit).terms("1")).payment_terms_days == 0

    session_id = await partner_bill(cockpit, 1)
    await page.click("#roaming-filters >> text=Show")  # the operator looks again
    row = page.locator('tr[data-receivable="1"]')
    await expect(row).to_contain_text(session_id)
    await expect(row).to_contain_text("Roaming One")
    await row.locator("[data-invoice]").click()
    await expect(row.locator("[data-bolt11]")).to_have_count(1)
    stored = await roaming_of(cockpit).receivable_of(session_id)
    assert stored is not None
    assert stored.due_at is not None
    due: datetime = stored.due_at
    await until(lambda: cockpit.stack.strom.clock.now() > due, "the invoice is past due")

    await page.check('#roaming-filters input[name="overdue"]')
    await page.click("#roaming-filters >> text=Show")
    await expect(page).to_have_url(f"{cockpit.base}/admin/#/roaming?overdue=true")
    await expect(row).to_have_class("overdue")
    await expect(row.locator("[data-overdue]")).to_have_text("overdue")
    await expect(card.locator("[data-overdue-blocked]")).to_have_text("blocked: invoice overdue")
    assert await words_of(page) == []
    await screenshot(page, "admin-roaming-overdue")

    async def accept(confirmation: Dialog) -> None:
        assert "Write off" in confirmation.message
        await confirmation.accept()

    page.once("dialog", accept)
    await row.locator("[data-write-off]").click()
    await expect(page.locator("#receivables")).to_have_text("Nothing here.")  # none overdue
    await expect(card.locator("[data-overdue-blocked]")).to_have_count(0)
    written = await roaming_of(cockpit).receivable_of(session_id)
    assert written is not None
    assert written.state is ReceivableState.WRITTEN_OFF
    await page.select_option('#roaming-filters select[name="state"]', "written_off")
    await page.uncheck('#roaming-filters input[name="overdue"]')
    await page.click("#roaming-filters >> text=Show")
    await expect(page).to_have_url(f"{cockpit.base}/admin/#/roaming?state=written_off")
    await expect(row.locator(".badge").first).to_have_text("written off")
    await expect(page.locator("#ocpi-log")).to_contain_text("received")  # the versions GET
    assert await words_of(page) == []
    await screenshot(page, "admin-roaming-written-off")
    assert not trouble, trouble
