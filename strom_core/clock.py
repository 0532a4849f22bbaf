"""The one clock: wall time, unix time and a monotonic clock, injected wherever time is read.

Every part of Strom that reads the time receives a :class:`Clock` in its constructor; nothing
calls ``datetime.now``, ``time.time`` or ``time.monotonic`` itself. The composition root passes
:data:`SYSTEM_CLOCK`; tests pass a :class:`ManualClock` they move forward themselves.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "ManualClock", "SystemClock"]


class Clock(Protocol):
    """Where the time comes from."""

    def now(self) -> datetime:
        """The wall clock as an aware UTC datetime (stored times, timestamps in messages)."""
        ...

    def unix(self) -> float:
        """The wall clock in seconds since the epoch (nostr ``created_at``, freshness)."""
        ...

    def monotonic(self) -> float:
        """Seconds that only ever move forward (timeouts, intervals, rate limits)."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> datetime:
        """The wall clock, aware UTC."""
        return datetime.now(UTC)

    def unix(self) -> float:
        """Seconds since the epoch."""
        return time.time()

    def monotonic(self) -> float:
        """The process's monotonic clock."""
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
"""The clock the composition root hands to every part."""


class ManualClock:
    """A clock that moves only when told to (tests and simulations).

    Args:
        start: the wall time it starts at (aware UTC); now by default.
    """

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("a clock's time is aware UTC")
        self._now = start.astimezone(UTC)
        self._monotonic = 0.0

    def now(self) -> datetime:
        """The current wall time."""
        return self._now

    def unix(self) -> float:
        """The current wall time in seconds since the epoch."""
        return self._now.timestamp()

    def monotonic(self) -> float:
        """Seconds moved forward since the clock was made."""
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError("a clock moves forward only")
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds
