"""The operator's pictures in Chromium: after a week of synthetic sessions, the admin ledger's
charts and totals show what the ledger API returns, with human headers and units.

The week is written through the storage layer (``tests/cockpit/synthetic_week.py``) and ends
at today's UTC midnight. Screenshots: ``test-artifacts/screenshots/admin-reports*.png``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser.conftest import SCREENSHOTS, screenshot
from tests.browser.test_admin_ui import cockpit, desk
from tests.cockpit.conftest import CHARGER, Cockpit
from tests.cockpit.synthetic_week import midnight, write_week

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["cockpit", "desk"]  # the fixtures, used by name

RAW_NAMES = ("refund_fees", "energy_wh", "payment_hash", "paid_msat", "amount_msat", "_msat")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def bars(page: Page, chart: str) -> list[tuple[str, int]]:
    found: list[list[Any]] = await page.eval_on_selector_all(
        f'figure[data-chart="{chart}"] svg rect.bar',
        "bars => bars.map(b => [b.dataset.label, Number(b.dataset.value)])",
    )
    return [(label, value) for label, value in found]


async def test_admin_charts_after_a_week_of_sessions_match_the_ledger_api(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    today = midnight(datetime.now(UTC))
    week = await write_week(cockpit.stack.strom.db, CHARGER, today - timedelta(days=7))
    ledger = (
        await cockpit.call(
            "GET", "/ledger/totals", params={"since": iso(week.start), "until": iso(week.end)}
        )
    ).json()["totals"]
    by_day = {entry["period"]: entry for entry in ledger}
    assert sorted(by_day) == sorted(week.days)

    page, trouble = desk
    await page.goto(cockpit.base + "/admin/#/ledger")
    await page.fill("#token", cockpit.read_token)  # reading needs no admin rights
    await page.click("text=Sign in with token")
    reports = page.locator("#reports")
    await expect(reports.locator('figure[data-chart="availability"] svg')).to_be_visible()

    # Every day's bar is the ledger's number for that day; days without sessions are zero.
    for chart, key in (
        ("energy-daily", "energy_wh"),
        ("received-daily", "paid_msat"),
        ("refunded-daily", "refunded_msat"),
    ):
        drawn = dict(await bars(page, chart))
        assert len(drawn) == 30, chart
        for day, value in drawn.items():
            assert value == (by_day[day][key] if day in by_day else 0), (chart, day)
    revenue = dict(await bars(page, "revenue-daily"))
    for day, entry in by_day.items():
        assert revenue[day] == (
            entry["paid_msat"] - entry["refunded_msat"] - entry["refund_fees_msat"]
        )
    month_bars = dict(await bars(page, "energy-monthly"))
    assert sum(month_bars.values()) == sum(e["energy_wh"] for e in ledger)

    # The totals above the charts, in units, are the sums of the ledger's days.
    total_wh = sum(e["energy_wh"] for e in ledger)
    await expect(reports.locator('[data-total="energy_wh"]')).to_have_text(
        f"{total_wh / 1000:,.3f} kWh"
    )
    await expect(reports.locator('[data-total="sessions"]')).to_have_text(
        str(sum(e["sessions"] for e in ledger))
    )
    received = sum(e["paid_msat"] for e in ledger) // 1000
    await expect(reports.locator('[data-total="received_msat"]')).to_have_text(f"{received:,} sat")

    # Availability: the week's charging, fault and lost connection are drawn.
    states = await page.eval_on_selector_all(
        'figure[data-chart="availability"] svg rect.span',
        "spans => spans.map(s => s.dataset.state)",
    )
    assert {"charging", "faulted", "offline", "online"} <= set(states)

    # Human headers with units; no raw column names anywhere on the page.
    headers = await page.locator("#view th").all_text_contents()
    for wanted in ("Refund fees (sat)", "Energy (kWh)", "Payment hash", "Received (sat)"):
        assert wanted in headers
    text = await page.locator("#view").inner_text()
    for raw in RAW_NAMES:
        assert raw not in text, raw
    await screenshot(page, "admin-reports")
    await reports.locator('figure[data-chart="availability"]').screenshot(
        path=str(SCREENSHOTS / "admin-reports-availability.png")
    )

    # The charger's own page draws its availability too.
    await page.goto(f"{cockpit.base}/admin/#/chargers/{CHARGER}")
    figure = page.locator('#view figure[data-chart="availability"]')
    await expect(figure.locator("svg")).to_be_visible()
    own = await figure.locator("svg rect.span").evaluate_all(
        "spans => spans.map(s => s.dataset.state)"
    )
    assert own == states
    assert not trouble, trouble
