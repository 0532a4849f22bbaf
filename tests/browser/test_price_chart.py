"""The charger page's price chart in a real browser on a phone: the bars are the schedule.

The page takes its prices from one seam, ``FrontDoor.price_schedule``: a static tariff's energy
price as a flat schedule, a dynamic tariff's from the price source a payment freezes its prices
from (``FrontDoor.prices``, the same object as ``PaymentService.prices``). Both are shown here:
the stack's static tariff (a flat line) and an hourly schedule from a price source. The
screenshots are saved under ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceInterval, PriceSchedule
from tests.browser.conftest import Phone, screenshot
from tests.browser.test_pages import assert_fits_a_phone
from tests.e2e.conftest import CHARGER, Stack

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.peer


def expect(target: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


class HourlyPrices:
    """A price source of known hourly prices (what a spot-market provider would give)."""

    def __init__(self, prices: list[int]) -> None:
        self.prices = prices
        self.asked: list[tuple[str, datetime, int]] = []

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        self.asked.append((charger_id, start, hours))
        return PriceSchedule(
            intervals=tuple(
                PriceInterval(
                    start + timedelta(hours=i), start + timedelta(hours=i + 1), self.prices[i]
                )
                for i in range(hours)
            ),
            source="test:hourly",
            fetched_at=start,
        )


class NoPrices:
    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        raise NoPrice("no fresh BTC/EUR rate (newest 2 h old)")


async def price_from(stack: Stack, source: Any) -> None:
    """Make the charger's tariff dynamic and price it by ``source``, for payments and the page."""
    profile = stack.strom.config.profile(CHARGER)
    windows = {"07:00-22:00": Decimal(400), "22:00-07:00": Decimal(150)}
    dynamic = profile.model_copy(
        update={"tariff": profile.tariff.model_copy(update={"time_of_use": windows})}
    )
    await stack.strom.apply_profile(dynamic)
    stack.strom.front.prices = stack.strom.payments.prices = source


async def drawn_bars(page: Page) -> list[dict[str, Any]]:
    """Every bar of the price chart as the browser lays it out: price, height, marked now."""
    result: list[dict[str, Any]] = await page.eval_on_selector_all(
        "[data-testid=price-chart] svg rect.bar",
        """bars => bars.map(b => ({
            msat: Number(b.dataset.msatPerKwh),
            start: b.dataset.start,
            height: b.getBoundingClientRect().height,
            now: b.classList.contains("now"),
        }))""",
    )
    return result


async def test_charger_page_charts_the_static_price_as_a_flat_day_with_now_marked(
    stack: Stack, phone: Phone
) -> None:
    page = await phone(js=False)  # the chart needs no script
    await page.goto(f"{stack.base}/c/{CHARGER}")
    await expect(page.get_by_test_id("price")).to_have_text("250 sat/kWh")
    chart = page.get_by_test_id("price-chart")
    await expect(chart).to_be_visible()
    await expect(chart).to_contain_text("The same energy price all day.")
    bars = await drawn_bars(page)
    assert len(bars) == 24
    assert {bar["msat"] for bar in bars} == {250_000}
    assert len({round(bar["height"], 1) for bar in bars}) == 1  # a flat line
    assert [bar["now"] for bar in bars] == [True] + [False] * 23
    await expect(chart.locator("svg .now-marker")).to_have_count(1)
    box = await chart.locator("svg").bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= 390
    await assert_fits_a_phone(page)
    await screenshot(page, "charger-price-chart-static")


async def test_charger_page_charts_the_schedule_of_its_price_source_bar_for_bar(
    stack: Stack, phone: Phone
) -> None:
    prices = [200_000 + 10_000 * ((i * 7) % 24) for i in range(24)]
    source = HourlyPrices(prices)
    await price_from(stack, source)
    page = await phone()
    await page.goto(f"{stack.base}/c/{CHARGER}")
    (charger_id, start, hours), *_ = source.asked
    assert (charger_id, hours) == (CHARGER, 24)
    schedule = await source.schedule(CHARGER, start, hours)
    now = stack.strom.front.clock.now()
    current = schedule.price_at(now)
    assert current is not None
    await expect(page.get_by_test_id("price")).to_have_text(
        f"{current.energy_msat_per_kwh // 1000} sat/kWh"
    )
    chart = page.get_by_test_id("price-chart")
    await expect(chart).to_contain_text("changes by the hour")
    bars = await drawn_bars(page)
    assert [(bar["start"], bar["msat"]) for bar in bars] == [
        (i.start.isoformat(), i.energy_msat_per_kwh) for i in schedule.intervals
    ]
    # On screen, a dearer hour is a taller bar and equal prices are equal bars.
    by_price = sorted(bars, key=lambda bar: bar["msat"])
    for lower, higher in itertools.pairwise(by_price):
        assert lower["height"] <= higher["height"] + 0.01
        if lower["msat"] < higher["msat"]:
            assert lower["height"] < higher["height"]
    assert [bar["now"] for bar in bars].count(True) == 1
    label = await chart.locator("svg desc").text_content()
    assert f"Now: {current.energy_msat_per_kwh // 1000} sat/kWh" in (label or "")
    await assert_fits_a_phone(page)
    await screenshot(page, "charger-price-chart-hourly")


async def test_charger_page_says_why_when_no_price_can_be_given(stack: Stack, phone: Phone) -> None:
    await price_from(stack, NoPrices())
    page = await phone()
    await page.goto(f"{stack.base}/c/{CHARGER}")
    await expect(page.get_by_test_id("no-price")).to_contain_text(
        "no fresh BTC/EUR rate (newest 2 h old)"
    )
    await expect(page.get_by_test_id("price-chart")).to_have_count(0)
