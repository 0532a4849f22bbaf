"""The price schedule types: lookup by time, validity, the flat schedule of a static tariff."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strom_core.ports.prices import NoPrice, PriceSource
from strom_core.prices import PriceInterval, PriceSchedule

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)


def _two_prices() -> PriceSchedule:
    return PriceSchedule(
        intervals=(
            PriceInterval(T0, T0 + timedelta(hours=1), 300_000),
            PriceInterval(T0 + timedelta(hours=1), T0 + timedelta(hours=2), 500_000),
        ),
        source="tou:profile",
        fetched_at=T0,
    )


def test_price_at_finds_the_interval_in_force_start_inclusive_end_exclusive() -> None:
    schedule = _two_prices()
    assert schedule.price_at(T0) == schedule.intervals[0]
    assert schedule.price_at(T0 + timedelta(minutes=59, seconds=59)) == schedule.intervals[0]
    assert schedule.price_at(T0 + timedelta(hours=1)) == schedule.intervals[1]


def test_price_at_is_none_before_the_first_and_from_the_end_of_the_last_interval() -> None:
    schedule = _two_prices()
    assert schedule.price_at(T0 - timedelta(seconds=1)) is None
    assert schedule.price_at(T0 + timedelta(hours=2)) is None


def test_valid_until_is_the_end_of_the_last_interval() -> None:
    assert _two_prices().valid_until == T0 + timedelta(hours=2)
    assert _two_prices().max_msat_per_kwh == 500_000


def test_flat_gives_one_price_per_hour_from_start() -> None:
    schedule = PriceSchedule.flat(250_000, T0, 3)
    assert schedule.source == "static"
    assert schedule.rate_source == ""
    assert schedule.fetched_at == T0
    assert len(schedule.intervals) == 3
    assert {interval.energy_msat_per_kwh for interval in schedule.intervals} == {250_000}
    assert schedule.valid_until == T0 + timedelta(hours=3)
    assert schedule.price_at(T0 + timedelta(hours=2, minutes=30)) == schedule.intervals[2]


def test_a_schedule_refuses_gaps_empty_intervals_and_naive_times() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        PriceSchedule(
            intervals=(
                PriceInterval(T0, T0 + timedelta(hours=1), 1),
                PriceInterval(T0 + timedelta(hours=2), T0 + timedelta(hours=3), 1),
            ),
            source="x",
            fetched_at=T0,
        )
    with pytest.raises(ValueError, match="at least one"):
        PriceSchedule(intervals=(), source="x", fetched_at=T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        PriceInterval(datetime(2026, 3, 1), datetime(2026, 3, 2), 1)
    with pytest.raises(ValueError, match="not after"):
        PriceInterval(T0, T0, 1)
    with pytest.raises(ValueError, match="at least one hour"):
        PriceSchedule.flat(1, T0, 0)


async def test_the_port_is_a_runtime_checkable_protocol_and_no_price_carries_its_reason() -> None:
    class Fixed:
        async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
            raise NoPrice("no fresh BTC/EUR rate (newest 2 h old)")

    source = Fixed()
    assert isinstance(source, PriceSource)
    with pytest.raises(NoPrice) as raised:
        await source.schedule("CP1", T0, 1)
    assert raised.value.reason == "no fresh BTC/EUR rate (newest 2 h old)"
