"""Charge when cheap, over real HTTP and a simulated 1.6 charger that follows the plan.

The charger's tariff is dynamic and its price source gives dear and cheap intervals seconds
apart (the meter runs 120 times faster than real time; the plan runs in real time). The driver
posts "ready by" a time a few seconds ahead and a small energy from the session page; Strom
plans it into the cheap interval before the deadline, the charger gets an Absolute TxProfile
with exactly the planned periods and follows it (no energy in the dear interval it waits
through, full power again after the deadline), and the bill, interval by interval, is exact.
A 2.0.1 charger (no smart charging in Strom) is not offered the option and its POST is refused.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import Transition
from tests.e2e.conftest import CHARGER, Stack
from tests.e2e.test_pay_charge_refund import claim_refund

DEAR, CHEAP = 400_000, 100_000  # msat per kWh


class DearAndCheap:
    """Dear until +4 s, cheap +4..+6 s, dear +6..+9 s, cheap from +9 s."""

    def __init__(self) -> None:
        self.start: datetime | None = None

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        self.start = start
        edges = [start - timedelta(hours=1)] + [start + timedelta(seconds=s) for s in (4, 6, 9)]
        edges.append(start + timedelta(hours=hours))
        prices = (DEAR, CHEAP, DEAR, CHEAP)
        return PriceSchedule(
            tuple(
                PriceInterval(a, b, p) for a, b, p in zip(edges, edges[1:], prices, strict=False)
            ),
            source="tou:profile",
            fetched_at=start,
        )


async def _dynamic(stack: Stack) -> DearAndCheap:
    profile = stack.strom.config.profile(CHARGER)
    windows = {"07:00-22:00": Decimal(400), "22:00-07:00": Decimal(100)}
    dynamic = profile.model_copy(
        update={"tariff": profile.tariff.model_copy(update={"time_of_use": windows})}
    )
    await stack.strom.apply_profile(dynamic)
    prices = DearAndCheap()
    stack.strom.payments.prices = prices
    return prices


async def _post_cheap(stack: Stack, page_url: str, by: str, kwh: str) -> httpx.Response:
    parts = urlsplit(page_url)
    secret = parse_qs(parts.query)["secret"][0]
    return await stack.http.post(
        f"{stack.base}{parts.path}/cheap", data={"secret": secret, "by": by, "kwh": kwh}
    )


@pytest.mark.parametrize("ocpp_version", ["1.6"])
async def test_a_deadline_plans_the_cheap_interval_the_charger_follows_it_and_the_bill_is_exact(
    stack: Stack,
) -> None:
    prices = await _dynamic(stack)
    status_url, page_url = await stack.pay(20_000_000)
    charging = await stack.wait_state(status_url, "charging")
    assert 'data-testid="cheap-form"' in (await stack.http.get(page_url)).text
    assert prices.start is not None
    # "ready by" a whole second at or after the last cheap interval began (+9 s)
    deadline = (prices.start + timedelta(seconds=10)).replace(microsecond=0)
    answer = await _post_cheap(stack, page_url, deadline.strftime("%H:%M:%S"), "0.003")
    assert answer.status_code == 303
    location = answer.headers["Location"]
    assert location.endswith("&cheap=planned")
    shown = (await stack.http.get(f"{stack.base}{location}")).text
    assert "your car charges in the cheapest hours" in shown
    assert shown.count('data-testid="plan-hour"') == 1
    assert "100 sat/kWh" in shown

    plan = await stack.strom.front.cheap.plan_in_force(charging["id"])  # type: ignore[union-attr]
    assert plan is not None
    assert plan.fits
    cheap_from = plan.start + timedelta(seconds=plan.periods[1].start_s)
    assert prices.start + timedelta(seconds=4) <= cheap_from < prices.start + timedelta(seconds=5)
    sent = [c for c in stack.charger.received_calls if c.action == "SetChargingProfile"][-1]
    schedule = sent.payload["csChargingProfiles"]["chargingSchedule"]
    assert [(p["startPeriod"], p["limit"]) for p in schedule["chargingSchedulePeriod"]] == [
        (p.start_s, float(p.limit_w)) for p in plan.periods
    ]
    assert [p.limit_w for p in plan.periods] == [0, 11_000, 0]
    assert schedule["duration"] == plan.duration_s

    after_deadline = asyncio.Event()  # energy metered in the last (cheap) interval, past it

    def watch(transition: Transition) -> None:
        if transition.session.id == charging["id"] and transition.session.interval_wh[3]:
            after_deadline.set()

    stack.strom.sessions.on_committed(watch)
    await asyncio.wait_for(after_deadline.wait(), 20)
    offer, before = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    # Intervals without energy are left out of the bill: the dear one it waited through may be.
    by_start = {i["start"]: (i["price_msat_per_kwh"], i["energy_wh"]) for i in final["intervals"]}
    edges = [(prices.start + timedelta(seconds=s)).isoformat() for s in (4, 6, 9)]
    (cheap, cheap_wh), (dear, waited_wh), (after, after_wh) = (
        by_start.get(edge, (price, 0))
        for edge, price in zip(edges, (CHEAP, DEAR, CHEAP), strict=True)
    )
    assert (cheap, dear, after) == (CHEAP, DEAR, CHEAP)
    # The dear interval it waited through: at full power it would take about 3 s x 367 Wh/s
    # (1,100 Wh); with the plan it gets at most a sliver of one meter reading (read once a
    # second, and billing splits a reading's energy linearly over the time since the last one,
    # across the interval's edge; more on a loaded machine, never a whole second's).
    assert cheap_wh > 150
    assert after_wh > 150
    assert waited_wh < 367
    bill = sum(i["cost_msat"] for i in final["intervals"])
    assert bill == sum(i["energy_wh"] * i["price_msat_per_kwh"] // 1000 for i in final["intervals"])
    assert bill - 1000 < final["consumed_msat"] <= bill
    assert final["refunded_msat"] == offer["maxWithdrawable"] == 20_000_000 - final["consumed_msat"]
    assert await stack.wallet.received_msat() - before == final["refunded_msat"]
    await stack.ledgers_balance()


@pytest.mark.parametrize("ocpp_version", ["2.0.1"])
async def test_without_smart_charging_the_option_is_not_shown_and_a_post_is_refused(
    stack: Stack,
) -> None:
    await _dynamic(stack)
    status_url, page_url = await stack.pay(20_000_000)
    await stack.wait_state(status_url, "charging")
    assert 'data-testid="cheap-form"' not in (await stack.http.get(page_url)).text
    answer = await _post_cheap(stack, page_url, "06:00", "")
    assert answer.headers["Location"].endswith("&cheap=not-offered")
    shown = (await stack.http.get(f"{stack.base}{answer.headers['Location']}")).text
    assert "at a charger with smart charging; this one cannot; nothing changed." in shown
    assert [c for c in stack.charger.received_calls if "ChargingProfile" in c.action] == []
