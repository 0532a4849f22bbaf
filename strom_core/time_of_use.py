"""Time-of-use prices: daily windows from a profile, turned into a price schedule.

A profile may give its energy price by time of day (``[tariff.time_of_use]``)::

    [tariff]
    per_kwh_sat = 300          # outside every window
    time_zone = "Europe/Berlin" # the windows' clock; UTC when not given

    [tariff.time_of_use]
    "07:00-22:00" = 450
    "22:00-07:00" = 250        # a window may run past midnight

Window times are ``HH:MM`` on a quarter hour (``24:00`` ends a day); windows must not overlap;
time outside every window costs ``per_kwh_sat``. The windows are read on the wall clock of
``time_zone`` (an IANA name), so on a day when the clocks change a window is an hour longer or
shorter in real time; the schedule's intervals are in UTC.

:func:`time_of_use_schedule` gives the :class:`~strom_core.prices.PriceSchedule` from a start
for a number of hours: one interval per UTC hour, split where a window begins or ends (the
first starts at the start's quarter hour). Pure: the caller passes the times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from strom_core.errors import ConfigError
from strom_core.prices import PriceInterval, PriceSchedule

__all__ = ["TOU_SOURCE", "TimeOfUse", "Window", "parse_window", "time_of_use_schedule"]

TOU_SOURCE = "tou:profile"
_STEP = timedelta(minutes=15)
_DAY_MINUTES = 24 * 60
_WINDOW = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


@dataclass(frozen=True, slots=True)
class Window:
    """Minutes of the day ``[start, end)`` (``end`` may be below ``start``: past midnight)."""

    start: int
    end: int
    msat_per_kwh: int

    def minutes(self) -> set[int]:
        """Every quarter hour of the day the window covers (as minutes since midnight)."""
        end = self.end if self.end > self.start else self.end + _DAY_MINUTES
        return {m % _DAY_MINUTES for m in range(self.start, end, 15)}


def _minute(hours: str, minutes: str, text: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > _DAY_MINUTES or value % 15:
        raise ConfigError(
            f"time-of-use window {text!r}: times are HH:MM on a quarter hour, 00:00 to 24:00"
        )
    return value


def parse_window(text: str, msat_per_kwh: int) -> Window:
    """A window from its ``"HH:MM-HH:MM"`` key.

    Raises:
        ConfigError: not ``HH:MM-HH:MM`` on quarter hours, or empty.
    """
    match = _WINDOW.match(text)
    if match is None:
        raise ConfigError(f"time-of-use window {text!r}: expected HH:MM-HH:MM, like 07:00-22:00")
    start = _minute(match[1], match[2], text) % _DAY_MINUTES
    end = _minute(match[3], match[4], text) % _DAY_MINUTES
    if start == end:
        raise ConfigError(f"time-of-use window {text!r} is empty (start and end are the same)")
    return Window(start, end, msat_per_kwh)


@dataclass(frozen=True, slots=True)
class TimeOfUse:
    """A day of prices: the windows, the price outside them, and the windows' time zone."""

    windows: tuple[Window, ...]
    base_msat_per_kwh: int
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.time_zone!r} (an IANA name)") from None
        seen: set[int] = set()
        for window in self.windows:
            covered = window.minutes()
            if covered & seen:
                raise ConfigError("time-of-use windows overlap")
            seen |= covered

    def price_at_minute(self, minute_of_day: int) -> int:
        """The price at a minute of the (local) day."""
        quarter = minute_of_day - minute_of_day % 15
        for window in self.windows:
            if quarter in window.minutes():
                return window.msat_per_kwh
        return self.base_msat_per_kwh


def time_of_use_schedule(
    tou: TimeOfUse, start: datetime, hours: int, fetched_at: datetime | None = None
) -> PriceSchedule:
    """The prices from ``start`` (floored to its quarter hour) for ``hours``.

    One interval per UTC hour, split where the price changes within it.
    """
    if hours < 1:
        raise ValueError(f"a schedule needs at least one hour, got {hours}")
    zone = ZoneInfo(tou.time_zone)
    begin = start.astimezone(UTC).replace(second=0, microsecond=0)
    begin -= timedelta(minutes=begin.minute % 15)
    end = begin + timedelta(hours=hours)
    intervals: list[PriceInterval] = []
    at = begin
    while at < end:
        local = at.astimezone(zone)
        price = tou.price_at_minute(local.hour * 60 + local.minute)
        step_end = at + _STEP
        last = intervals[-1] if intervals else None
        if last is not None and last.energy_msat_per_kwh == price and at.minute != 0:
            intervals[-1] = PriceInterval(last.start, step_end, price)
        else:
            intervals.append(PriceInterval(at, step_end, price))
        at = step_end
    return PriceSchedule(tuple(intervals), source=TOU_SOURCE, fetched_at=fetched_at or begin)
