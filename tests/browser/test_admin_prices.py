"""The charger page's Prices section, in Chromium: the intervals the prices API returns.

Against the running stack: a static tariff shows its price as one flat day; a dynamically
priced charger (its prices API answered from a price source with known hourly prices and a
provider health) shows each interval the API returns, bar for bar and row for row, and the
provider's health. The screenshot lands in ``test-artifacts/screenshots/admin-charger-prices.png``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from strom_core.prices import PriceInterval, PriceSchedule
from strom_prices import FeedHealth
from tests.browser.conftest import screenshot
from tests.browser.test_admin_charger_sections import open_charger_page
from tests.browser.test_admin_ui import cockpit, desk
from tests.cockpit.conftest import CHARGER, Cockpit

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.peer, pytest.mark.slow]

__all__ = ["cockpit", "desk"]

PRICES = [150_000 + 10_000 * (i % 7) - (40_000 if i == 3 else 0) for i in range(24)]
PRICES[5] = -2_000  # spot markets go below zero


class SpotPricing:
    """A provider-priced charger as the prices API sees it: a schedule and a health."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def health(self, charger_id: str) -> FeedHealth | None:
        if charger_id != CHARGER:
            return None
        return FeedHealth(
            source="awattar:DE-LU",
            last_success=self.now - timedelta(minutes=20),
            last_error="HTTP 503 from the provider",
            last_error_at=self.now - timedelta(minutes=50),
            known_until=self.now + timedelta(hours=30),
            next_attempt=self.now + timedelta(minutes=40),
        )

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        return PriceSchedule(
            intervals=tuple(
                PriceInterval(start + timedelta(hours=i), start + timedelta(hours=i + 1), price)
                for i, price in enumerate(PRICES[:hours])
            ),
            source="awattar:DE-LU",
            fetched_at=self.now - timedelta(minutes=20),
            rate_source="median of 3",
        )


async def test_the_prices_section_shows_the_intervals_the_api_returns(
    cockpit: Cockpit, desk: tuple[Page, list[str]]
) -> None:
    from playwright.async_api import expect

    page, trouble = desk
    strom = cockpit.stack.strom
    # The agents price the status event from the source the payments freeze prices from.
    assert strom.agents.services.prices is strom.payments.prices is not None
    await open_charger_page(cockpit, page, cockpit.admin_token)
    prices = page.locator("#prices")

    # A static tariff: its price in force, one flat day, no provider.
    static = (await cockpit.call("GET", f"/chargers/{CHARGER}/prices?hours=24")).json()
    assert not static["dynamic"]
    await expect(prices.locator("#prices-source")).to_contain_text("Static · source static")
    await expect(prices.locator("#price-intervals tbody tr")).to_have_count(
        len(static["intervals"])
    )
    flat = {str(i["energy_msat_per_kwh"]) for i in static["intervals"]}
    assert len(flat) == 1
    await expect(prices.locator(f'#price-chart rect[data-msat="{flat.pop()}"]')).to_have_count(
        len(static["intervals"])
    )
    await expect(prices.locator("#price-health")).to_have_count(0)

    # A dynamic one: each interval the API returns, and the provider's health.
    cockpit.stack.strom.cockpit.api.ctx.prices = SpotPricing()  # type: ignore[assignment]
    answer = (await cockpit.call("GET", f"/chargers/{CHARGER}/prices?hours=24")).json()
    assert answer["dynamic"]
    assert [i["energy_msat_per_kwh"] for i in answer["intervals"]] == PRICES
    await prices.locator("button.refresh").click()
    await expect(prices.locator("#prices-source")).to_contain_text(
        "Dynamic · source awattar:DE-LU · rate median of 3"
    )
    rows = prices.locator("#price-intervals tbody tr")
    await expect(rows).to_have_count(24)
    drawn = await prices.locator("#price-chart rect").evaluate_all(
        "bars => bars.map(b => [b.dataset.start, Number(b.dataset.msat)])"
    )
    assert drawn == [[i["start"], i["energy_msat_per_kwh"]] for i in answer["intervals"]]
    starts = await rows.evaluate_all("rows => rows.map(r => r.dataset.start)")
    assert starts == [i["start"] for i in answer["intervals"]]
    await expect(rows.nth(5)).to_contain_text("-2 sat/kWh")
    await expect(rows.nth(0)).to_contain_text(f"{PRICES[0] // 1000} sat/kWh")
    health = prices.locator("#price-health")
    await expect(health).to_contain_text("awattar:DE-LU")
    await expect(health).to_contain_text("HTTP 503 from the provider")
    for label in ("Last success", "Last error", "Known until", "Next attempt"):
        await expect(health).to_contain_text(label)
    await screenshot(page, "admin-charger-prices")
    assert not trouble, trouble
