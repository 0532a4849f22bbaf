"""The price parts as Strom builds them from its configuration, and the pages' fiat estimate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pytest

from lnurl_server.pages import Pages
from strom.config import load_config
from strom.prices import build_prices
from strom.scaffold import initialise_if_empty
from strom_core.clock import Clock
from strom_core.config import (
    DynamicTariffConfig,
    RatesConfig,
    ServerConfig,
    StromConfig,
    TariffConfig,
)


class FixedClock:
    def __init__(self) -> None:
        self.at = datetime(2025, 10, 25, 12, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at

    def unix(self) -> float:
        return self.at.timestamp()

    def monotonic(self) -> float:
        return self.at.timestamp()


def _clock() -> Clock:
    return FixedClock()


def test_the_deprecated_server_rate_is_read_as_the_fixed_rate() -> None:
    config = StromConfig(server=ServerConfig(fiat_per_btc=Decimal(90_000), fiat_currency="CHF"))
    prices = build_prices(config, _clock())
    assert prices.estimate_rate() == Decimal(90_000)
    assert prices.currency == "CHF"
    assert not prices.busy  # a fixed rate and no dynamic tariff: nothing is fetched


def test_rates_fixed_wins_over_the_deprecated_key() -> None:
    config = StromConfig(
        server=ServerConfig(fiat_per_btc=Decimal(90_000)),
        rates=RatesConfig(fixed=Decimal(80_000), currency="EUR"),
    )
    assert build_prices(config, _clock()).estimate_rate() == Decimal(80_000)


def test_without_rates_nothing_is_estimated_or_fetched() -> None:
    prices = build_prices(StromConfig(), _clock())
    assert prices.estimate_rate() is None
    assert not prices.busy


def test_live_sources_without_a_fresh_quote_show_no_estimate() -> None:
    config = StromConfig(rates=RatesConfig(sources=("kraken", "bitstamp")))
    prices = build_prices(config, _clock())
    assert prices.busy
    assert prices.estimate_rate() is None


def test_the_page_estimate_follows_the_rate_and_disappears_without_one() -> None:
    rate: list[Decimal | None] = [Decimal(100_000)]
    pages = Pages(None, "EUR", fiat_rate=lambda: rate[0])
    fiat = pages.env.filters["fiat"]
    assert fiat(250_000) == "≈ 0.25 EUR"
    rate[0] = None
    assert fiat(250_000) == ""


def test_a_profile_with_a_dynamic_tariff_loads_and_is_priced_dynamically(tmp_path: Path) -> None:
    initialise_if_empty(tmp_path)
    example = Path(__file__).resolve().parents[2] / "profiles" / "example-1.toml.example"
    profile = tmp_path / "profiles" / "example-1.toml"
    profile.parent.mkdir(exist_ok=True)
    profile.write_text(
        example.read_text()
        + '\n[tariff.dynamic]\nprovider = "entsoe"\narea = "DE-LU"\n'
        + 'token = "env:ENTSOE_TOKEN"\ngrid_fees = 0.09\nmargin = 0.1\nmax = 0.8\n'
    )
    config = load_config(tmp_path / "strom.toml", environ={})
    prices = build_prices(config, _clock())
    charger = config.profiles[0].id
    assert prices.pricing.chargers() == (charger,)
    health = prices.pricing.health(charger)
    assert health is not None
    assert health.source == "entsoe:DE-LU"
    assert health.known_until is None


def test_writing_the_tariff_writes_its_dynamic_price_and_keeps_the_files_comments(
    tmp_path: Path,
) -> None:
    from cockpit.profiles import ProfileFiles

    example = Path(__file__).resolve().parents[2] / "profiles" / "example-1.toml.example"
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "example-1.toml").write_text(
        example.read_text() + '\n[tariff.dynamic]\nprovider = "awattar"\narea = "AT"\n'
        "margin = 0.1  # ten percent\n"
    )
    files = ProfileFiles(folder)
    formula = DynamicTariffConfig(provider="awattar", area="AT", margin=Decimal("0.1"))
    written = files.write_tariff(
        "example-1",
        TariffConfig(per_kwh_sat=Decimal(300), session_fee_sat=Decimal(5), dynamic=formula),
    )
    assert written.tariff.per_kwh_sat == Decimal(300)
    assert written.tariff.dynamic_price == formula
    assert "margin = 0.1  # ten percent" in (folder / "example-1.toml").read_text()
    # The tariff written is all of it: a static one removes the formula.
    static = files.write_tariff("example-1", TariffConfig(per_kwh_sat=Decimal(300)))
    assert static.tariff.dynamic_price is None
    assert "[tariff.dynamic]" not in (folder / "example-1.toml").read_text()


def test_a_profile_applied_later_is_priced_dynamically_and_can_stop_being() -> None:
    prices = build_prices(StromConfig(), _clock())
    profile = SimpleNamespace(
        id="cp-9",
        tariff=SimpleNamespace(dynamic_price=DynamicTariffConfig(provider="awattar", area="AT")),
    )
    prices.apply_profile(profile)  # type: ignore[arg-type]
    assert prices.pricing.chargers() == ("cp-9",)
    assert prices.busy
    prices.apply_profile(SimpleNamespace(id="cp-9", tariff=SimpleNamespace(dynamic_price=None)))  # type: ignore[arg-type]
    assert prices.pricing.chargers() == ()
    assert prices.pricing.health("cp-9") is None


def test_rates_refreshed_less_often_than_they_age_are_refused() -> None:
    with pytest.raises(ValueError, match=r"refresh_s \(900\) must be below max_age_s \(600\)"):
        RatesConfig(sources=("kraken",), max_age_s=600, refresh_s=900)
    assert RatesConfig(fixed=Decimal(1), max_age_s=600, refresh_s=900).fixed == 1


def test_writing_the_whole_profile_through_the_api_keeps_or_writes_the_dynamic_price(
    tmp_path: Path,
) -> None:
    from cockpit.profiles import ProfileFiles
    from strom_core.config import ProfileConfig

    example = Path(__file__).resolve().parents[2] / "profiles" / "example-1.toml.example"
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "example-1.toml").write_text(
        example.read_text() + '\n[tariff.dynamic]\nprovider = "awattar"\narea = "AT"\n'
    )
    files = ProfileFiles(folder)
    files_formula = DynamicTariffConfig(provider="awattar", area="AT")
    static = files.write_profile(
        ProfileConfig.model_validate(
            {
                **files.write_tariff("example-1", TariffConfig(dynamic=files_formula)).model_dump(
                    by_alias=True
                ),
                "name": "Renamed",
            }
        ).model_copy(update={"tariff": TariffConfig(per_kwh_sat=Decimal(1))})
    )
    assert static.name == "Renamed"
    assert static.tariff.dynamic_price is not None  # kept from the file
    entsoe = DynamicTariffConfig(provider="entsoe", area="NL", token="file:/run/secrets/entsoe")
    written = files.write_profile(
        static.model_copy(update={"tariff": TariffConfig(dynamic=entsoe)})
    )
    assert written.tariff.dynamic_price == entsoe
    assert '[tariff.dynamic]\nprovider = "entsoe"' in (folder / "example-1.toml").read_text()


async def test_routed_prices_send_dynamic_chargers_to_their_provider() -> None:
    from strom.prices import RoutedPrices
    from strom_core.ports.prices import PriceSource
    from strom_core.prices import PriceSchedule
    from strom_prices import DynamicPricing, RateBook
    from tests.prices.fixtures import fixture
    from tests.prices.test_rates import Scripted

    class Flat:
        async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
            return PriceSchedule.flat(250_000, start, hours)

    at = datetime(2025, 10, 26, 1, tzinfo=UTC)
    fetcher = Scripted({"awattar": fixture("awattar_at_2025-10-26_25h.json")})
    rates = RateBook(None, [], now=lambda: at, fixed={"EUR": Decimal(90_000)})
    config = DynamicTariffConfig(provider="awattar", area="AT")
    dynamic = DynamicPricing({"cp-d": config}, rates, fetcher, now=lambda: at)
    routed = RoutedPrices(dynamic, Flat())
    assert isinstance(routed, PriceSource)
    assert (await routed.schedule("cp-s", at, 2)).source == "static"
    assert (await routed.schedule("cp-d", at, 2)).source == "awattar:AT"
    assert fetcher.calls == ["awattar"]
