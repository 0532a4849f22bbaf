"""Interval billing: the energy of a session attributed to the intervals of its price schedule.

Theory of operation
-------------------
A session on a dynamic tariff carries the :class:`~strom_core.prices.PriceSchedule` frozen when
the driver paid, and one energy counter (integer Wh) per interval of it
(``Session.interval_wh``). Each time the energy register grows, the energy between the previous
reading and this one is attributed to the intervals the two readings span, linearly in time:

* the weight of an interval is the time (integer microseconds) the span overlaps it;
* interval ``i`` gets ``floor(delta * W_i / W) - floor(delta * W_(i-1) / W)`` Wh, where ``W_i``
  is the cumulative weight up to and including ``i`` and ``W`` the total. The shares are whole
  Wh, deterministic, and add up to exactly ``delta``: the bill never covers more energy than
  the register delta, nor less.
* a span of no length (two readings at the same time, or a late sample) goes to the interval in
  force at the previous reading.

The schedule's edges hold: time before the first interval counts as the first interval, time
from the end of the last interval on counts as the last interval (its price holds). A schedule
frozen at payment covers the longest session, so this only matters for a session that outlives
it.

The energy cost of interval ``i`` is ``floor(interval_wh[i] * price_i / 1000)``
(:func:`strom_core.units.energy_cost_msat`) and the energy bill is their sum. Prices may be
negative (spot markets); the session core never bills a session below zero.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.units import energy_cost_msat

__all__ = [
    "IntervalBill",
    "attribute",
    "energy_bill_msat",
    "highest_price",
    "interval_bills",
    "interval_index",
    "session_interval_bills",
]

_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class IntervalBill:
    """One interval of a session's bill: its energy, price and cost (for pages and the ledger)."""

    start: datetime
    end: datetime
    energy_msat_per_kwh: int
    energy_wh: int
    cost_msat: int


def interval_index(schedule: PriceSchedule, at: datetime) -> int:
    """The index of the interval billed at ``at`` (the first before it, the last after it)."""
    intervals = schedule.intervals
    if at < intervals[0].start:
        return 0
    for index, interval in enumerate(intervals):
        if at < interval.end:
            return index
    return len(intervals) - 1


def _overlap_us(
    schedule: PriceSchedule, index: int, interval: PriceInterval, start: datetime, end: datetime
) -> int:
    low = interval.start if index > 0 else min(interval.start, start)
    high = interval.end if index < len(schedule.intervals) - 1 else max(interval.end, end)
    span = min(high, end) - max(low, start)
    return max(0, span // _MICROSECOND)


def attribute(
    schedule: PriceSchedule,
    interval_wh: tuple[int, ...],
    start: datetime,
    end: datetime,
    delta_wh: int,
) -> tuple[int, ...]:
    """Add ``delta_wh`` delivered between ``start`` and ``end`` to the interval counters.

    Args:
        schedule: the session's frozen schedule.
        interval_wh: the counters so far (empty: all zero).
        start: the previous reading's time.
        end: this reading's time.
        delta_wh: the growth of the register (>= 0).

    Returns:
        The new counters, one per interval; their sum grew by exactly ``delta_wh``.
    """
    counters = list(interval_wh) or [0] * len(schedule.intervals)
    if len(counters) != len(schedule.intervals):
        raise ValueError("interval counters do not match the schedule")
    if delta_wh < 0:
        raise ValueError(f"energy delta must not be negative, got {delta_wh}")
    if delta_wh == 0:
        return tuple(counters)
    weights = [
        _overlap_us(schedule, index, interval, start, end) if end > start else 0
        for index, interval in enumerate(schedule.intervals)
    ]
    total = sum(weights)
    if total == 0:
        counters[interval_index(schedule, start)] += delta_wh
        return tuple(counters)
    cumulative = 0
    given = 0
    for index, weight in enumerate(weights):
        if not weight:
            continue
        cumulative += weight
        share_end = delta_wh * cumulative // total
        counters[index] += share_end - given
        given = share_end
    return tuple(counters)


def interval_bills(schedule: PriceSchedule, interval_wh: tuple[int, ...]) -> list[IntervalBill]:
    """Every interval that carries energy, with its price and cost."""
    return [
        IntervalBill(
            start=interval.start,
            end=interval.end,
            energy_msat_per_kwh=interval.energy_msat_per_kwh,
            energy_wh=energy,
            cost_msat=energy_cost_msat(energy, interval.energy_msat_per_kwh),
        )
        for interval, energy in zip(schedule.intervals, interval_wh, strict=False)
        if energy
    ]


class _Billed(Protocol):
    @property
    def schedule(self) -> PriceSchedule | None: ...
    @property
    def interval_wh(self) -> tuple[int, ...]: ...


def session_interval_bills(session: _Billed) -> list[IntervalBill]:
    """A session's bill by interval (empty for a session without a schedule)."""
    if session.schedule is None:
        return []
    return interval_bills(session.schedule, session.interval_wh)


def energy_bill_msat(schedule: PriceSchedule, interval_wh: tuple[int, ...]) -> int:
    """The energy component: the sum over intervals of floor(energy x price) (may be < 0)."""
    return sum(bill.cost_msat for bill in interval_bills(schedule, interval_wh))


def highest_price(schedule: PriceSchedule, start: datetime, end: datetime) -> int:
    """The highest energy price billed anywhere in ``[start, end]`` (the edges hold)."""
    first = interval_index(schedule, start)
    last = interval_index(schedule, max(start, end))
    return max(interval.energy_msat_per_kwh for interval in schedule.intervals[first : last + 1])
