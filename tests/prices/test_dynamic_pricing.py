"""DynamicPricing end to end: a local HTTP server serves the recorded answers (no internet)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aiohttp import web

from strom_core.config import DynamicTariffConfig
from strom_core.ports.prices import NoPrice, PriceSource
from strom_prices import DynamicPricing, HttpFetcher, RateBook, to_msat_per_kwh
from strom_prices.providers import Awattar
from tests.prices.fixtures import fixture


@dataclass
class Upstream:
    """What the local server answers, and what it was asked."""

    awattar: str = "awattar_de_2025-03-30_23h.json"
    awattar_status: int = 200
    entsoe: str = "entsoe_a44_de-lu_2025-10-26_25h.xml"
    asked: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    state = Upstream()

    async def awattar(request: web.Request) -> web.Response:
        state.asked.append("awattar")
        if state.awattar_status != 200:
            return web.Response(status=state.awattar_status, text="down")
        return web.Response(body=fixture(state.awattar), content_type="application/json")

    async def entsoe(request: web.Request) -> web.Response:
        state.asked.append("entsoe")
        state.tokens.append(request.query.get("securityToken", ""))
        return web.Response(body=fixture(state.entsoe), content_type="application/xml")

    async def octopus(request: web.Request) -> web.Response:
        state.asked.append("octopus")
        return web.Response(body=fixture("octopus_agile_c_2025-10-26.json"))

    async def kraken(request: web.Request) -> web.Response:
        return web.Response(body=fixture("rate_kraken_xbteur.json"))

    async def coinbase(request: web.Request) -> web.Response:
        return web.Response(body=fixture("rate_coinbase_btc-eur.json"))

    async def bitstamp(request: web.Request) -> web.Response:
        return web.Response(body=fixture("rate_bitstamp_btceur.json"))

    app = web.Application()
    app.router.add_get("/v1/marketdata", awattar)
    app.router.add_get("/api", entsoe)
    app.router.add_get(
        "/v1/products/AGILE-24-10-01/electricity-tariffs/E-1R-AGILE-24-10-01-C/standard-unit-rates/",
        octopus,
    )
    app.router.add_get("/0/public/Ticker", kraken)
    app.router.add_get("/v2/prices/BTC-EUR/spot", coinbase)
    app.router.add_get("/api/v2/ticker/btceur/", bitstamp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


AWATTAR = DynamicTariffConfig(
    provider="awattar",
    area="DE-LU",
    grid_fees=Decimal("0.10"),
    taxes=Decimal("0.03"),
    margin=Decimal("0.20"),
    min=Decimal("0.15"),
    max=Decimal("0.80"),
)


def _pricing(
    base: str, clock: Clock, tariffs: dict[str, DynamicTariffConfig], fetcher: HttpFetcher
) -> DynamicPricing:
    rates = RateBook(
        fetcher,
        ["kraken", "coinbase", "bitstamp"],
        now=clock,
        base_urls={"kraken": base, "coinbase": base, "bitstamp": base},
    )
    return DynamicPricing(
        tariffs,
        rates,
        fetcher,
        now=clock,
        tokens=lambda ref: {"env:ENTSOE_TOKEN": "t0ken"}.get(ref, ""),
        base_urls={"awattar": base, "entsoe": base + "/api"},
    )


@pytest.fixture
async def fetcher() -> AsyncIterator[HttpFetcher]:
    client = HttpFetcher(timeout_s=5)
    yield client
    await client.aclose()


async def test_the_schedule_is_the_formula_over_the_spot_prices_at_the_median_rate(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    state, base = upstream
    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    pricing = _pricing(base, clock, {"cp-1": AWATTAR}, fetcher)
    assert isinstance(pricing, PriceSource)
    schedule = await pricing.schedule("cp-1", clock.at, 24)

    spot = Awattar().parse(fixture("awattar_de_2025-03-30_23h.json"), "DE-LU")
    rate = Decimal("91234.50000")  # median of kraken 91234.5, coinbase 91250.12, bitstamp 91201
    expected = [
        to_msat_per_kwh(
            min(
                max((row.per_kwh + Decimal("0.13")) * Decimal("1.2"), Decimal("0.15")),
                Decimal("0.80"),
            ),
            rate,
        )
        for row in spot
        if row.end > clock.at
    ]
    assert [i.energy_msat_per_kwh for i in schedule.intervals] == expected
    assert schedule.intervals[0].start == datetime(2025, 3, 30, 5, tzinfo=UTC)
    assert schedule.price_at(clock.at) == schedule.intervals[0]
    # the market has not published beyond the day: the schedule says how far it goes
    assert schedule.valid_until == datetime(2025, 3, 30, 22, tzinfo=UTC)
    assert schedule.source == "awattar:DE-LU"
    assert schedule.fetched_at == clock.at
    assert schedule.rate_source == "median(bitstamp,coinbase,kraken)=91234.50000 EUR/BTC"
    # negative spot hours are billed at the minimum, never below
    floor = to_msat_per_kwh(Decimal("0.15"), rate)
    assert min(expected) == floor
    assert state.asked == ["awattar"]


async def test_provider_down_keeps_the_last_prices_then_refuses_with_the_reason(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    state, base = upstream
    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    pricing = _pricing(base, clock, {"cp-1": AWATTAR}, fetcher)
    first = await pricing.schedule("cp-1", clock.at, 2)

    state.awattar_status = 503
    clock.at = datetime(2025, 3, 30, 20, 30, tzinfo=UTC)
    later = await pricing.schedule("cp-1", clock.at, 4)  # asks beyond 22:00: fetch fails
    assert later.fetched_at == first.fetched_at
    assert later.valid_until == datetime(2025, 3, 30, 22, tzinfo=UTC)
    health = pricing.health("cp-1")
    assert health is not None
    assert health.last_error == "awattar: HTTP 503"
    assert health.known_until == datetime(2025, 3, 30, 22, tzinfo=UTC)
    asked = len(state.asked)

    # within the backoff (1 min after the first failure) nobody is asked again
    clock.at += timedelta(seconds=30)
    await pricing.schedule("cp-1", clock.at, 4)
    assert len(state.asked) == asked

    clock.at = datetime(2025, 3, 30, 22, 0, 30, tzinfo=UTC)
    with pytest.raises(
        NoPrice,
        match=r"no awattar:DE-LU price for 2025-03-30 22:00 UTC "
        r"\(prices known until 2025-03-30 22:00 UTC\): awattar: HTTP 503",
    ):
        await pricing.schedule("cp-1", clock.at, 1)
    assert len(state.asked) == asked + 1


async def test_the_provider_is_asked_again_after_the_daily_refresh_time(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    state, base = upstream
    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    pricing = _pricing(base, clock, {"cp-1": AWATTAR}, fetcher)
    await pricing.schedule("cp-1", clock.at, 2)
    clock.at = datetime(2025, 3, 30, 9, 0, tzinfo=UTC)
    schedule = await pricing.schedule("cp-1", clock.at, 24)
    # the next day is not published before noon: asking beyond 22:00 does not chase it
    assert schedule.valid_until == datetime(2025, 3, 30, 22, tzinfo=UTC)
    assert state.asked == ["awattar"]
    clock.at = datetime(2025, 3, 30, 12, 20, tzinfo=UTC)  # after 12:15 UTC
    await pricing.schedule("cp-1", clock.at, 2)
    assert state.asked == ["awattar", "awattar"]


async def test_entsoe_quarter_hours_with_the_token_from_its_reference(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    state, base = upstream
    clock = Clock(datetime(2025, 10, 26, 1, 20, tzinfo=UTC))
    config = DynamicTariffConfig(provider="entsoe", area="DE-LU", token="env:ENTSOE_TOKEN")
    pricing = _pricing(base, clock, {"cp-2": config}, fetcher)
    schedule = await pricing.schedule("cp-2", clock.at, 3)
    assert state.tokens == ["t0ken"]
    assert schedule.intervals[0].start == datetime(2025, 10, 26, 1, 15, tzinfo=UTC)
    assert {i.end - i.start for i in schedule.intervals} == {timedelta(minutes=15)}
    assert schedule.valid_until == datetime(2025, 10, 26, 4, 30, tzinfo=UTC)  # covers 04:20


async def test_no_fresh_rate_refuses_even_with_prices_known(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    _, base = upstream
    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    rates = RateBook(fetcher, ["kraken"], now=clock, base_urls={"kraken": base + "/gone"})
    pricing = DynamicPricing(
        {"cp-1": AWATTAR}, rates, fetcher, now=clock, base_urls={"awattar": base}
    )
    with pytest.raises(NoPrice, match=r"no fresh BTC/EUR rate \(no source answered\)"):
        await pricing.schedule("cp-1", clock.at, 1)


async def test_a_charger_without_dynamic_tariff_is_refused(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    _, base = upstream
    clock = Clock(datetime(2025, 3, 30, 5, 10, tzinfo=UTC))
    pricing = _pricing(base, clock, {"cp-1": AWATTAR}, fetcher)
    with pytest.raises(NoPrice, match="charger cp-9 has no dynamic tariff"):
        await pricing.schedule("cp-9", clock.at, 1)


async def test_octopus_agile_in_pounds_at_a_fixed_gbp_rate_on_the_25_hour_day(
    upstream: tuple[Upstream, str], fetcher: HttpFetcher
) -> None:
    state, base = upstream
    clock = Clock(datetime(2025, 10, 26, 0, 40, tzinfo=UTC))
    config = DynamicTariffConfig(
        provider="octopus",
        area="AGILE-24-10-01/E-1R-AGILE-24-10-01-C",
        currency="GBP",
        margin=Decimal("0.1"),
    )
    rates = RateBook(None, [], now=clock, fixed={"GBP": Decimal(80_000)})
    pricing = DynamicPricing(
        {"cp-3": config}, rates, fetcher, now=clock, base_urls={"octopus": base}
    )
    schedule = await pricing.schedule("cp-3", clock.at, 48)
    assert state.asked == ["octopus"]
    assert schedule.intervals[0].start == datetime(2025, 10, 26, 0, 30, tzinfo=UTC)
    assert {i.end - i.start for i in schedule.intervals} == {timedelta(minutes=30)}
    assert schedule.valid_until == datetime(2025, 10, 27, 0, 0, tzinfo=UTC)
    assert schedule.rate_source == "fixed=80000 GBP/BTC"
    # the two negative half hours bill zero (no minimum set)
    assert sorted(i.energy_msat_per_kwh for i in schedule.intervals)[:2] == [0, 0]
