"""The one clock: the system's and a manual one for tests agree on what they report."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from strom_core.clock import SYSTEM_CLOCK, ManualClock


def test_the_system_clock_is_aware_utc_and_agrees_with_itself() -> None:
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is UTC
    assert abs(SYSTEM_CLOCK.unix() - now.timestamp()) < 5
    assert abs(SYSTEM_CLOCK.monotonic() - time.monotonic()) < 5


def test_a_manual_clock_moves_only_forward_and_only_when_told() -> None:
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    clock = ManualClock(start)
    assert clock.now() == start
    clock.advance(90)
    assert clock.now() == start + timedelta(seconds=90)
    assert clock.unix() == start.timestamp() + 90
    assert clock.monotonic() == 90
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        ManualClock(datetime(2026, 12, 1))
