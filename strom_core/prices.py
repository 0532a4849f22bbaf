"""Energy prices over time: the schedule a session is billed by.

A :class:`PriceSchedule` is a run of contiguous :class:`PriceInterval` s, each with the energy
price in force (integer msat per kWh), together with where the prices came from (``source``),
when the provider's data was obtained (``fetched_at``) and which exchange rate turned fiat into
msat (``rate_source``, empty for prices set in sats). A schedule is frozen into a session when the
driver pays, so the price of each interval is known up front and any bill can be recomputed from
the ledger.

A static tariff is the degenerate case: :meth:`PriceSchedule.flat` gives one price for every hour.
Before the first interval there is no price (:meth:`PriceSchedule.price_at` returns ``None``);
from the end of the last interval on, callers that bill decide what holds (the session core keeps
the last interval's price, see :mod:`strom_core.session`).

Pure: no I/O, no clock. Times are timezone-aware UTC.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["PriceInterval", "PriceSchedule"]


def _require_aware(value: datetime, what: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")


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

    def __post_init__(self) -> None:
        _require_aware(self.start, "interval start")
        _require_aware(self.end, "interval end")
        if self.end <= self.start:
            raise ValueError(f"interval end {self.end} is not after its start {self.start}")
        if isinstance(self.energy_msat_per_kwh, bool) or not isinstance(
            self.energy_msat_per_kwh, int
        ):
            raise ValueError("energy_msat_per_kwh must be an integer (msat)")

    def contains(self, at: datetime) -> bool:
        """Whether ``at`` falls in ``[start, end)``."""
        return self.start <= at < self.end


@dataclass(frozen=True, slots=True)
class PriceSchedule:
    """Contiguous, sorted energy prices and their provenance.

    Attributes:
        intervals: at least one; each starts where the previous one ends.
        source: the provider (``"static"``, ``"tou:profile"``, ``"awattar:DE-LU"``, ...).
        fetched_at: when the provider's data was obtained (UTC).
        rate_source: the exchange rate used to convert fiat, ``""`` for sats-only prices.
    """

    intervals: tuple[PriceInterval, ...]
    source: str
    fetched_at: datetime
    rate_source: str = ""

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ValueError("a price schedule needs at least one interval")
        _require_aware(self.fetched_at, "fetched_at")
        for before, after in zip(self.intervals, self.intervals[1:], strict=False):
            if after.start != before.end:
                raise ValueError(
                    "price intervals must be contiguous and sorted: "
                    f"{before.end} then {after.start}"
                )

    def price_at(self, at: datetime) -> PriceInterval | None:
        """The interval in force at ``at``; ``None`` before the first or from ``valid_until``."""
        _require_aware(at, "at")
        starts = [interval.start for interval in self.intervals]
        index = bisect.bisect_right(starts, at) - 1
        if index < 0:
            return None
        interval = self.intervals[index]
        return interval if interval.contains(at) else None

    @property
    def valid_from(self) -> datetime:
        """Start of the first interval."""
        return self.intervals[0].start

    @property
    def valid_until(self) -> datetime:
        """End of the last interval (exclusive)."""
        return self.intervals[-1].end

    @property
    def max_msat_per_kwh(self) -> int:
        """The highest energy price anywhere in the schedule."""
        return max(interval.energy_msat_per_kwh for interval in self.intervals)

    @classmethod
    def flat(
        cls, msat_per_kwh: int, start: datetime, hours: int, source: str = "static"
    ) -> PriceSchedule:
        """One price for ``hours`` hourly intervals from ``start`` (``fetched_at`` = ``start``)."""
        _require_aware(start, "start")
        if hours < 1:
            raise ValueError(f"a flat schedule needs at least one hour, got {hours}")
        begin = start.astimezone(UTC)
        intervals = tuple(
            PriceInterval(
                start=begin + timedelta(hours=index),
                end=begin + timedelta(hours=index + 1),
                energy_msat_per_kwh=msat_per_kwh,
            )
            for index in range(hours)
        )
        return cls(intervals=intervals, source=source, fetched_at=begin)
