"""A session on a dynamic tariff crosses a price change: billed per interval, refunded exactly.

Over real HTTP and a real OCPP websocket with the simulated charger (both OCPP versions). The
charger's tariff is dynamic and its price source gives two prices, the second from a few
seconds after the payment (the meter runs 120 times faster than real time, so the change falls
in the middle of the charge). The session JSON and page list each interval's energy, price and
cost; the bill is their sum, the refund the rest, to the msat, and the ledger journals each
interval with the schedule's source.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import Transition
from strom_storage.schema import ledger_intervals
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack
from tests.e2e.test_pay_charge_refund import claim_refund

pytestmark = BOTH_VERSIONS

DAY, NIGHT = 400_000, 150_000  # msat per kWh


class TwoPrices:
    """A price source whose price changes ``after`` from the start it is asked for."""

    def __init__(self, after: timedelta) -> None:
        self.after = after
        self.change: datetime | None = None

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        self.change = start + self.after
        return PriceSchedule(
            (
                PriceInterval(start - timedelta(hours=1), self.change, DAY),
                PriceInterval(self.change, start + timedelta(hours=hours), NIGHT),
            ),
            source="tou:profile",
            fetched_at=start,
        )


async def test_a_session_across_a_price_change_is_billed_per_interval_and_refunded_exactly(
    stack: Stack,
) -> None:
    profile = stack.strom.config.profile(CHARGER)
    windows = {"07:00-22:00": Decimal(400), "22:00-07:00": Decimal(150)}
    dynamic = profile.model_copy(
        update={"tariff": profile.tariff.model_copy(update={"time_of_use": windows})}
    )
    await stack.strom.apply_profile(dynamic)
    prices = TwoPrices(timedelta(seconds=3))
    stack.strom.payments.prices = prices
    status_url, page_url = await stack.pay(20_000_000)
    both_prices = asyncio.Event()  # set once energy is metered at both prices

    def watch(transition: Transition) -> None:
        if sum(1 for wh in transition.session.interval_wh if wh) == 2:
            both_prices.set()

    stack.strom.sessions.on_committed(watch)
    await asyncio.wait_for(both_prices.wait(), 20)
    offer, before = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    day, night = final["intervals"]
    assert (day["price_msat_per_kwh"], night["price_msat_per_kwh"]) == (DAY, NIGHT)
    assert day["energy_wh"] > 0
    assert night["energy_wh"] > 0
    assert day["energy_wh"] + night["energy_wh"] == final["energy_wh"]
    for interval in (day, night):
        assert (
            interval["cost_msat"] == interval["energy_wh"] * interval["price_msat_per_kwh"] // 1000
        )
    bill = day["cost_msat"] + night["cost_msat"]
    # the bill, less the sub-sat remainder given to the driver so the refund is whole sats
    assert bill - 1000 < final["consumed_msat"] <= bill
    assert final["refunded_msat"] == offer["maxWithdrawable"] == 20_000_000 - final["consumed_msat"]
    assert await stack.wallet.received_msat() - before == final["refunded_msat"]
    page = (await stack.http.get(page_url)).text
    assert page.count('data-testid="interval"') == 2
    assert "400 sat/kWh" in page
    assert "150 sat/kWh" in page
    async with stack.strom.db.reader() as conn:
        rows = (await conn.execute(select(ledger_intervals))).mappings().all()
    assert sorted((r["energy_wh"], r["cost_msat"], r["source"]) for r in rows) == sorted(
        (i["energy_wh"], i["cost_msat"], "tou:profile") for i in (day, night)
    )
    await stack.ledgers_balance()


async def test_without_a_price_the_payment_is_refused_and_nothing_is_created(stack: Stack) -> None:
    profile = stack.strom.config.profile(CHARGER)
    dynamic = profile.model_copy(
        update={
            "tariff": profile.tariff.model_copy(update={"time_of_use": {"07:00-22:00": Decimal(1)}})
        }
    )
    await stack.strom.apply_profile(dynamic)

    class Down:
        async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
            raise NoPrice("the price provider is down")

    stack.strom.payments.prices = Down()
    offer = await stack.get(stack.pay_url)
    assert "sat/kWh now, changing by the hour" in offer["metadata"]
    answer = await stack.get(offer["callback"], amount="2000000")
    assert answer["status"] == "ERROR"
    assert "the price provider is down" in answer["reason"]
    assert "pr" not in answer


async def test_the_car_finishing_starts_the_idle_clock_of_the_session(stack: Stack) -> None:
    profile = stack.strom.config.profile(CHARGER)
    idle = profile.model_copy(
        update={
            "tariff": profile.tariff.model_copy(
                update={"idle_per_minute_sat": Decimal(5), "idle_grace_minutes": 10}
            )
        }
    )
    await stack.strom.apply_profile(idle)
    status_url, _ = await stack.pay(20_000_000)
    charging = await stack.wait_state(status_url, "charging")
    idled = asyncio.Event()

    def watch(transition: Transition) -> None:
        session = transition.session
        if session.id == charging["id"] and session.idle_since is not None and session.idle_seconds:
            idled.set()

    stack.strom.sessions.on_committed(watch)
    charger: Any = stack.charger
    if hasattr(charger, "set_charging_state"):  # OCPP 2.0.1: the TransactionEvent's chargingState
        await charger.set_charging_state(1, "SuspendedEV")
    else:  # OCPP 1.6: StatusNotification
        await charger.set_status(1, "SuspendedEV")
    await asyncio.wait_for(idled.wait(), 20)
    status = await stack.get(status_url)
    assert status["idle_s"] > 0
    assert status["idle_msat"] == 0  # within the 10 free minutes
    offer, _ = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert final["refunded_msat"] == offer["maxWithdrawable"]
    await stack.ledgers_balance()
