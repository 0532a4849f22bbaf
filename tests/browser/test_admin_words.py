"""Every admin page speaks to people: headers and cells say what a value is, with its unit.

After a synthetic week of sessions (payments, refunds, energy) and an audited tariff change,
Chromium opens the dashboard, the sessions list, one session, the ledger, the audit log and
the charger page: no table header or cell, nor any other text outside code blocks (the OCPP
log and the status event are the wire's own words), holds an API field name (``energy_wh``,
``refund_fees``, ``payment_hash``, ``awaiting_payment``...). Money is shown in sat with
thousands separators, energy in kWh.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tests.browser.test_admin_charger_sections import open_charger_page
from tests.browser.test_admin_ui import cockpit, desk
from tests.cockpit.conftest import CHARGER, Cockpit
from tests.cockpit.synthetic_week import write_week

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["cockpit", "desk"]

SNAKE = re.compile(r"\b[a-z0-9]+(?:_[a-z0-9]+)+\b")  # energy_wh, refund_fees_msat, ...

# The page's words without what is quoted verbatim: code blocks, ids and hashes, form values.
WORDS = """() => {
  const view = document.querySelector('#view').cloneNode(true)
  const quoted = 'pre, code, .mono, input, textarea, select, option'
  for (const el of view.querySelectorAll(quoted)) el.remove()
  return view.innerText
}"""


async def words_of(page: Page) -> list[str]:
    text: str = await page.evaluate(WORDS)
    return SNAKE.findall(text)


async def test_no_admin_page_shows_an_api_field_name(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    await write_week(cockpit.stack.strom.db, CHARGER, datetime(2026, 11, 2, tzinfo=UTC))
    saved = await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json={"per_kwh_sat": 320})
    assert saved.is_success  # an audit row with money in its detail

    await open_charger_page(cockpit, page, cockpit.admin_token)
    await expect(page.locator("#sold")).to_be_visible()
    assert await words_of(page) == []

    checks = {  # each page's own heading and what it waits for
        "#/": ("Dashboard", "#stat-charging"),
        "#/sessions": ("Sessions", "tr[data-session]"),
        "#/sessions/wk52": ("Session wk52", "#session-state"),
        "#/ledger": ("Ledger", "#report-totals"),
        "#/audit": ("Audit log", "td"),
    }
    for route, (title, ready) in checks.items():
        await page.goto(f"{cockpit.base}/admin/{route}")
        await expect(page.locator("#view h1")).to_have_text(title)
        await expect(page.locator(ready).first).to_be_visible()
        assert await words_of(page) == [], route
        headers = await page.locator("#view th").all_text_contents()
        assert not [h for h in headers if SNAKE.search(h)], (route, headers)

    # A session's money and energy, in people's units.
    await page.goto(f"{cockpit.base}/admin/#/sessions/wk52")
    session = (await cockpit.call("GET", "/sessions/wk52")).json()
    paid = session["payments"][0]["amount_msat"] // 1000
    await expect(page.locator("#view table").nth(1)).to_contain_text(f"{paid:,}")
    assert paid >= 1000  # so the separator shows
    await page.goto(f"{cockpit.base}/admin/#/audit")
    await expect(page.locator("#view")).to_contain_text("energy per kwh: 320 sat")
    await expect(page.locator("#view td").first).not_to_contain_text("T")  # a time for people
    await page.goto(f"{cockpit.base}/admin/#/sessions?state=refunded")
    await expect(page.locator('tr[data-session="wk52"] [data-state]')).to_have_text("refunded")
    assert not trouble, trouble
