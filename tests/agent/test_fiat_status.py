"""A charger priced in euros: its status, listing and operator DMs show the price a payer gets.

The profile gives its energy price and session fee in EUR (its sat tariff holds 0 for them). With
a fresh rate (a fixed 90,000 EUR/BTC, a real :class:`strom_prices.RateBook`) the status carries
the sats a payment now would be priced at, and the euro prices as written in ``price_fiat`` tags;
with the rate sources down it leaves those sat prices out (as a dynamic tariff without a price
does) and never says 0. An operator's ``price`` DM cannot change a price written in euros: it
says so and changes nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from strom_core.config import ProfileConfig, TariffConfig
from strom_core.ports import ChargerOnline
from strom_nostr.discovery import FiatPrice, ParsedStatus, parse_status
from strom_nostr.maps import LISTING_KIND
from strom_prices import RateBook
from strom_prices.errors import ProviderError
from strom_storage.db import Database
from tests.agent.conftest import CHARGER_ID, World, build_world, profile
from tests.agent.test_operator import _ask, _audit
from tests.waits import until

PER_KWH_MSAT, FEE_MSAT = 400_000, 10_000  # 0.36 EUR and 0.009 EUR at 90,000 EUR/BTC


def _euro_profile() -> ProfileConfig:
    tariff = TariffConfig(
        currency="EUR",
        per_kwh=Decimal("0.36"),
        session_fee=Decimal("0.009"),
        min_prepay_sat=Decimal(1000),
    )
    return profile().model_copy(update={"tariff": tariff})


@pytest.fixture
async def euro_world(tmp_path: Path, database: Database, relay_url: str) -> AsyncIterator[World]:
    async for built in build_world(tmp_path, database, relay_url, charger_profile=_euro_profile()):
        yield built


class SourcesDown:
    """Every rate source fails."""

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        raise ProviderError(f"{source}: HTTP 503")


def _fixed_rate() -> RateBook:
    return RateBook(None, [], now=lambda: datetime.now(UTC), fixed={"EUR": Decimal(90_000)})


async def _republished(world: World) -> ParsedStatus:
    world.charger.mark_dirty()
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, datetime.now(UTC)))
    await world.next_status()
    return parse_status(await world.latest(30522))


async def test_with_a_fresh_rate_the_status_carries_the_converted_prices_and_the_euros(
    euro_world: World,
) -> None:
    euro_world.payments.rates = _fixed_rate()
    status = await _republished(euro_world)
    assert status.energy_price_known
    assert status.prices.energy_msat_per_kwh == PER_KWH_MSAT  # not the stored 0
    assert status.prices.session_fee_msat == FEE_MSAT
    assert status.fiat == (
        FiatPrice("0.36", "EUR", "kWh", "at_payment"),
        FiatPrice("0.009", "EUR", "session", "at_payment"),
    )
    # The NIP-99 listing gives the energy price as written: its sats move with the rate.
    listing_filter = [{"kinds": [LISTING_KIND], "authors": [euro_world.charger_pk]}]
    await until(lambda: euro_world.driver.fetch(listing_filter), "the listing follows the status")
    listing = await euro_world.latest(LISTING_KIND)
    assert ("price", "0.36", "EUR", "kWh") in listing.tags
    assert "- Energy: 0.36 EUR per kWh, paid in sats at the current rate" in listing.content


async def test_without_a_fresh_rate_the_status_leaves_the_euro_prices_out_never_zero(
    euro_world: World,
) -> None:
    euro_world.payments.rates = RateBook(SourcesDown(), ["kraken"], now=lambda: datetime.now(UTC))
    status = await _republished(euro_world)
    assert not status.energy_price_known  # no kWh tag: not free, unknown
    event = await euro_world.latest(30522)
    pers = [tag[3] for tag in event.tags if tag[0] == "price"]
    assert pers == ["min"]  # the time price is in sats (0); the euro session fee is left out
    assert [fiat.per for fiat in status.fiat] == ["kWh", "session"]  # as written, still


async def test_the_price_dm_on_a_euro_energy_price_changes_nothing_and_says_why(
    euro_world: World,
) -> None:
    euro_world.payments.rates = _fixed_rate()
    answer = await _ask(euro_world, euro_world.admin, "price 300 sat/kWh")
    assert answer == (
        "Nothing changed: the energy of Farm shop charger is priced in EUR (0.36 EUR/kWh); "
        "change it in the charger's profile or the admin UI."
    )
    charger = euro_world.config.profile(CHARGER_ID)
    assert euro_world.runtime.tariff_for(charger) == charger.tariff.to_tariff()  # no record
    [entry] = await _audit(euro_world)
    assert entry.detail["refused"] == "energy priced in EUR"
    status = await _republished(euro_world)
    assert status.prices.energy_msat_per_kwh == PER_KWH_MSAT


async def test_the_status_dm_gives_the_euro_price_with_its_sats(euro_world: World) -> None:
    euro_world.payments.rates = _fixed_rate()
    answer = await _ask(euro_world, euro_world.admin, "status")
    assert "0.36 EUR/kWh (about 400 sat at the current rate)" in answer
    euro_world.payments.rates = None
    answer = await _ask(euro_world, euro_world.admin, "status")
    assert answer.splitlines()[0].endswith(", 0.36 EUR/kWh")  # no sats without a rate, not 0
