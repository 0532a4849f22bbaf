"""Time-of-use windows from a profile: parsed strictly, read on the profile's clock, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from strom_core.config import TariffConfig
from strom_core.time_of_use import TimeOfUse, parse_window, time_of_use_schedule

WINDOWS = {"07:00-22:00": Decimal(450), "22:00-07:00": Decimal(250)}


def _day_hours(time_zone: str, day: datetime, length: int = 24) -> dict[int, int]:
    tou = TariffConfig(per_kwh_sat=Decimal(300), time_of_use=WINDOWS, time_zone=time_zone)
    windows = tou.to_time_of_use()
    assert windows is not None
    schedule = time_of_use_schedule(windows, day, length)
    hours: dict[int, int] = {}
    for interval in schedule.intervals:
        price = interval.energy_msat_per_kwh
        hours[price] = hours.get(price, 0) + (interval.end - interval.start) // timedelta(hours=1)
    return hours


def test_the_windows_are_utc_unless_a_time_zone_is_given() -> None:
    assert _day_hours("UTC", datetime(2026, 3, 29, tzinfo=UTC)) == {250_000: 9, 450_000: 15}


@pytest.mark.parametrize(
    ("day", "length", "night_hours"),
    [
        (datetime(2026, 3, 28, 23, tzinfo=UTC), 23, 8),  # the night is an hour shorter
        (datetime(2026, 10, 24, 22, tzinfo=UTC), 25, 10),  # the night is an hour longer
    ],
)
def test_a_change_of_the_clocks_shortens_or_lengthens_the_night_window(
    day: datetime, length: int, night_hours: int
) -> None:
    hours = _day_hours("Europe/Berlin", day, length)  # one local day, from local midnight
    assert hours == {250_000: night_hours, 450_000: 15}


def test_outside_every_window_the_base_price_holds_and_intervals_split_at_window_edges() -> None:
    tou = TimeOfUse((parse_window("07:30-08:00", 100_000),), 300_000)
    schedule = time_of_use_schedule(tou, datetime(2026, 1, 1, 7, 10, tzinfo=UTC), 2)
    assert [(i.start.strftime("%H:%M"), i.energy_msat_per_kwh) for i in schedule.intervals] == [
        ("07:00", 300_000),
        ("07:30", 100_000),
        ("08:00", 300_000),
    ]
    assert schedule.source == "tou:profile"


@pytest.mark.parametrize(
    ("windows", "time_zone", "message"),
    [
        ({"07:00-22:00": 1, "21:00-23:00": 2}, "UTC", "overlap"),
        ({"7-22": 1}, "UTC", "HH:MM-HH:MM"),
        ({"07:10-08:00": 1}, "UTC", "quarter hour"),
        ({"08:00-08:00": 1}, "UTC", "empty"),
        ({"07:00-08:00": -1}, "UTC", "non-negative"),
        ({"07:00-08:00": 1}, "Mars/Olympus", "unknown time zone"),
    ],
)
def test_bad_windows_are_refused_with_a_clear_error(
    windows: dict[str, int], time_zone: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        TariffConfig(per_kwh_sat=Decimal(1), time_of_use=windows, time_zone=time_zone)  # type: ignore[arg-type]


def test_a_profile_without_windows_is_static_and_gives_the_idle_fee_in_msat() -> None:
    config = TariffConfig(
        per_kwh_sat=Decimal(300), idle_per_minute_sat=Decimal("2.5"), idle_grace_minutes=10
    )
    assert not config.dynamic
    assert config.to_time_of_use() is None
    tariff = config.to_tariff()
    assert (tariff.idle_msat_per_minute, tariff.idle_grace_minutes) == (2_500, 10)
