"""The status event of a dynamically priced charger carries the price in force and its schedule.

A time-of-use tariff is priced by the same source the payments freeze their prices from (here
the profiles' own, :class:`strom_services.profile_prices.ProfilePrices`); the agent publishes
the price in force and the next 24 hours of intervals, and publishes again when the interval in
force ends (the test moves the agents' clock there and wakes the agent).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest

from strom_core.config import ProfileConfig, TariffConfig
from strom_core.ports import ChargerOnline
from strom_nostr.discovery import ParsedStatus, parse_status
from strom_services.profile_prices import ProfilePrices
from strom_storage.db import Database
from tests.agent.conftest import CHARGER_ID, World, build_world, profile

# Morning cheap, the rest of the day at the profile's price; hourly intervals (UTC).
WINDOWS = {"00:00-06:00": Decimal(120), "06:00-12:00": Decimal(180), "12:00-18:00": Decimal(420)}


def _tou_profile() -> ProfileConfig:
    tariff = TariffConfig(
        per_kwh_sat=Decimal(300), min_prepay_sat=Decimal(1000), time_of_use=WINDOWS
    )
    return profile().model_copy(update={"tariff": tariff})


@pytest.fixture
async def tou_world(
    tmp_path: Path, database: Database, relay_url: str, caplog: pytest.LogCaptureFixture
) -> AsyncIterator[World]:
    caplog.set_level(logging.WARNING, logger="agent.agent")
    # A status lifetime of a day: its refresh never coincides with an interval's end here.
    async for built in build_world(
        tmp_path, database, relay_url, charger_profile=_tou_profile(), status_ttl_s=86_400
    ):
        yield built


def _now() -> datetime:
    return datetime.now(UTC)


async def _wake(world: World, *, dirty: bool = False) -> ParsedStatus:
    """An event that changes nothing published wakes the agent; return the next status.

    ``dirty``: publish anyway (as after a price change by the operator).
    """
    if dirty:
        world.charger.mark_dirty()
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))
    await world.next_status()
    return parse_status(await world.latest(30522))


async def test_without_a_price_source_the_status_has_no_energy_price_and_says_so_once(
    tou_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    status = parse_status(await tou_world.latest(30522))
    assert not status.energy_price_known  # never "free": the kWh price tag is left out
    assert status.schedule == ()
    assert status.prices.time_msat_per_minute == 0
    tou_world.clock.offset += 43_201  # past the refresh: published again, still no price
    second = await _wake(tou_world)
    assert not second.energy_price_known
    records = [*caplog.get_records("setup"), *caplog.get_records("call")]
    said = [r for r in records if "without a price" in r.getMessage()]
    assert len(said) == 1


async def test_a_time_of_use_tariff_publishes_its_schedule_and_republishes_at_the_boundary(
    tou_world: World,
) -> None:
    charger_profile = _tou_profile()
    tou_world.runtime.services.prices = ProfilePrices(
        lambda charger_id: charger_profile if charger_id == CHARGER_ID else None,
        tou_world.clock,
    )
    first = await _wake(tou_world, dirty=True)  # the status goes out, now with prices
    now = tou_world.clock.unix()
    assert first.energy_price_known
    schedule = first.schedule
    assert schedule[0].start <= now < schedule[0].end  # the interval in force first
    assert schedule[-1].end - now <= 24 * 3600 + 3600  # the next 24 hours, not more
    assert schedule[-1].end - now > 23 * 3600
    assert all(a.end == b.start for a, b in pairwise(schedule))
    assert first.prices.energy_msat_per_kwh == schedule[0].energy_msat_per_kwh
    hour = datetime.fromtimestamp(schedule[0].start, UTC).hour
    expected = 120 if hour < 6 else 180 if hour < 12 else 420 if hour < 18 else 300
    assert first.prices.energy_msat_per_kwh == expected * 1000

    # The interval in force ends: the next one's price goes out, with nothing else changed.
    tou_world.clock.offset += schedule[0].end - now + 1
    second = await _wake(tou_world)
    assert second.created_at > first.created_at
    assert second.schedule[0] == schedule[1]
    assert second.prices.energy_msat_per_kwh == schedule[1].energy_msat_per_kwh
    # Bounded: the next publication for prices is due at the end of this interval only.
    assert tou_world.charger._next_price_at == schedule[1].end


async def test_a_static_tariff_publishes_no_intervals(world: World) -> None:
    world.runtime.services.prices = ProfilePrices(
        lambda charger_id: profile() if charger_id == CHARGER_ID else None, world.clock
    )
    status = await _wake(world, dirty=True)
    assert status.energy_price_known
    assert status.prices.energy_msat_per_kwh == 250_000
    assert status.schedule == ()
    assert world.charger._next_price_at == float("inf")
