"""``GET /chargers/{id}/prices`` for a dynamically priced charger: schedule, health, refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from cockpit.api.prices import PricesQuery, PricesResource
from strom_core.config import DynamicTariffConfig
from strom_prices import DynamicPricing, ProviderError, RateBook
from tests.prices.fixtures import fixture
from tests.prices.test_rates import Scripted


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


class Context:
    """The parts of the API context the resource reads."""

    def __init__(self, clock: Clock, prices: DynamicPricing) -> None:
        self.clock = clock
        self.prices = prices

    def profile(self, call: Any) -> Any:
        return SimpleNamespace(id="cp-1")


async def test_the_prices_answer_shows_the_schedule_then_the_reason_and_health() -> None:
    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    fetcher = Scripted(
        {
            "awattar": fixture("awattar_de_2025-03-30_23h.json"),
            "kraken": fixture("rate_kraken_xbteur.json"),
        }
    )
    rates = RateBook(fetcher, ["kraken"], now=clock.now)
    config = DynamicTariffConfig(provider="awattar", area="DE-LU", grid_fees=Decimal("0.1"))
    pricing = DynamicPricing({"cp-1": config}, rates, fetcher, now=clock.now)
    resource = PricesResource(Context(clock, pricing))  # type: ignore[arg-type]
    call = SimpleNamespace(query=PricesQuery(hours=3))

    answer = await resource.prices(call)  # type: ignore[arg-type]
    assert answer.dynamic
    assert answer.source == "awattar:DE-LU"
    assert [i.start for i in answer.intervals] == [
        "2025-03-30T05:00:00Z",
        "2025-03-30T06:00:00Z",
        "2025-03-30T07:00:00Z",
    ]
    assert answer.rate_source.startswith("median(kraken)=")
    assert answer.health is not None
    assert answer.health.last_success == "2025-03-30T05:10:00Z"
    assert answer.health.known_until == "2025-03-30T22:00:00Z"

    fetcher.answers["awattar"] = ProviderError("awattar: HTTP 503")
    clock.at = datetime(2025, 3, 30, 22, 30, tzinfo=UTC)
    fetcher.answers["kraken"] = fixture("rate_kraken_xbteur.json")
    answer = await resource.prices(call)  # type: ignore[arg-type]
    assert answer.intervals == []
    assert answer.error.startswith("no awattar:DE-LU price for 2025-03-30 22:00 UTC")
    assert answer.health is not None
    assert answer.health.last_error == "awattar: HTTP 503"


async def test_a_time_of_use_charger_answers_its_windows_as_its_payments_freeze_them() -> None:
    from strom_core.config import TariffConfig
    from strom_services.profile_prices import ProfilePrices

    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    tariff = TariffConfig(time_of_use={"07:00-22:00": Decimal(400), "22:00-07:00": Decimal(150)})
    profile = SimpleNamespace(id="cp-1", tariff=tariff)
    own = ProfilePrices(lambda charger_id: profile, clock)  # type: ignore[arg-type,return-value]
    context = Context(
        clock,
        DynamicPricing({}, RateBook(Scripted({}), [], now=clock.now), Scripted({}), now=clock.now),
    )
    context.payments = SimpleNamespace(prices=own)  # type: ignore[attr-defined]
    context.profile = lambda call: profile  # type: ignore[method-assign]
    resource = PricesResource(context)  # type: ignore[arg-type]

    answer = await resource.prices(SimpleNamespace(query=PricesQuery(hours=3)))  # type: ignore[arg-type]

    assert answer.dynamic
    assert answer.source == "tou:profile"
    assert answer.health is None  # no provider behind it
    assert [(i.start, i.energy_msat_per_kwh) for i in answer.intervals] == [
        ("2025-03-30T05:00:00Z", 150_000),
        ("2025-03-30T06:00:00Z", 150_000),
        ("2025-03-30T07:00:00Z", 400_000),
    ]
