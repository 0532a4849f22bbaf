"""The charger page's "Prices and energy sold", in Chromium, after a synthetic day of sessions.

A time-of-use charger, sessions billed on 2026-11-03 (:func:`write_sold_day`): the chart the page
shows has a bar per interval with the energy and revenue the API gives and the schedule's price
beside it, and the table lists the intervals in which something was sold. The screenshot lands
in ``test-artifacts/screenshots/admin-prices-sold.png``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from tests.browser.conftest import screenshot
from tests.browser.test_admin_charger_sections import open_charger_page
from tests.browser.test_admin_ui import cockpit, desk
from tests.cockpit.conftest import CHARGER, Cockpit
from tests.cockpit.synthetic_week import write_sold_day

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["cockpit", "desk"]

DAY = datetime(2026, 11, 3, tzinfo=UTC)


async def test_the_sold_chart_and_table_match_the_report(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    windows = {"per_kwh_sat": 250, "time_of_use": {"07:00-22:00": 450}}
    assert (await cockpit.call("PUT", f"/chargers/{CHARGER}/tariff", json=windows)).is_success
    await write_sold_day(cockpit.stack.strom.db, CHARGER, DAY)
    report = (
        await cockpit.call("GET", f"/chargers/{CHARGER}/reports/sold", params={"day": "2026-11-03"})
    ).json()
    assert report["energy_wh"] > 0

    await open_charger_page(cockpit, page, cockpit.admin_token)
    sold = page.locator("#sold")
    await sold.locator('input[name="sold_day"]').fill("2026-11-03")
    rows = sold.locator("#sold-intervals tbody tr")
    selling = [i for i in report["intervals"] if i["energy_wh"] > 0]
    await expect(rows).to_have_count(len(selling))
    await expect(sold.locator("#sold-total")).to_contain_text(
        f"Sold {report['energy_wh'] / 1000:.3f} kWh for {report['revenue_msat'] // 1000:,} sat"
    )
    chart = sold.locator('figure[data-chart="sold"] svg')
    await expect(chart.locator("rect[data-energy-wh]")).to_have_count(len(report["intervals"]))
    bars = await chart.locator("rect[data-energy-wh]").evaluate_all(
        "bars => bars.map(b => [Date.parse(b.dataset.start), Number(b.dataset.energyWh),"
        " Number(b.dataset.revenueMsat)])"
    )
    expected = [
        [
            int(datetime.fromisoformat(i["start"]).timestamp() * 1000),
            i["energy_wh"],
            i["revenue_msat"],
        ]
        for i in report["intervals"]
    ]
    assert bars == expected
    prices = await chart.locator("line[data-msat-per-kwh]").evaluate_all(
        "lines => lines.map(l => Number(l.dataset.msatPerKwh))"
    )
    assert prices == [i["schedule_msat_per_kwh"] for i in report["intervals"]]
    shown = await rows.evaluate_all("rows => rows.map(r => Number(r.dataset.energyWh))")
    assert shown == [i["energy_wh"] for i in selling]
    nine = sold.locator('#sold-intervals tr[data-start="2026-11-03T09:00:00Z"]')
    await expect(nine).to_contain_text("400 sat/kWh, 450 sat/kWh")  # an older price, visible
    await expect(nine).to_contain_text("3.500 kWh")
    await sold.scroll_into_view_if_needed()
    await screenshot(page, "admin-prices-sold")
    assert not trouble, trouble
