"""Price schedules: the energy price of each interval of time, in integer msat per kWh.

A tariff is either static (one price, forever) or dynamic (a price per interval from a spot
market, an energy contract or a time-of-use table). Both are given to billing as a
:class:`PriceSchedule`: contiguous, sorted intervals in UTC, each with its price, and where the
prices came from (``source``, ``fetched_at``, and the exchange rate used, ``rate_source``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["PriceInterval", "PriceSchedule"]


@dataclass(frozen=True, slots=True)
class PriceInterval:
    """One interval of a schedule.

    Attributes:
        start: timezone-aware UTC, inclusive.
        end: exclusive; intervals are contiguous and sorted.
        energy_msat_per_kwh: the energy price in force in this interval, integer msat.
    """

    start: datetime
    end: datetime
    energy_msat_per_kwh: int


@dataclass(frozen=True, slots=True)
class PriceSchedule:
    """The energy prices of consecutive intervals, and where they came from."""

    intervals: tuple[PriceInterval, ...]
    source: str
    fetched_at: datetime
    rate_source: str = ""

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ValueError("a price schedule needs at least one interval")
        for interval in self.intervals:
            if interval.start.tzinfo is None or interval.end.tzinfo is None:
                raise ValueError("price intervals must be timezone-aware")
            if interval.end <= interval.start:
                raise ValueError(f"empty price interval at {interval.start.isoformat()}")
        for before, after in zip(self.intervals, self.intervals[1:], strict=False):
            if before.end != after.start:
                raise ValueError(f"price intervals are not contiguous at {before.end.isoformat()}")

    def price_at(self, at: datetime) -> PriceInterval | None:
        """The interval in force at ``at``, or None outside the schedule."""
        for interval in self.intervals:
            if interval.start <= at < interval.end:
                return interval
        return None

    @property
    def valid_until(self) -> datetime:
        """The end of the last interval."""
        return self.intervals[-1].end

    @classmethod
    def flat(
        cls, msat_per_kwh: int, start: datetime, hours: int, source: str = "static"
    ) -> PriceSchedule:
        """One price for ``hours`` hours from ``start``."""
        interval = PriceInterval(start, start + timedelta(hours=hours), msat_per_kwh)
        return cls((interval,), source, start)
