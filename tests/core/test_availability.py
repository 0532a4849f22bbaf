"""Availability spans from recorded status changes (strom_core.availability)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strom_core.availability import StateSpan, StatusChange, availability_spans

T0 = datetime(2026, 12, 1, tzinfo=UTC)
H = timedelta(hours=1)


def change(hours: float, status: str, connector: int = 1, charger: str = "cp-1") -> StatusChange:
    return StatusChange(charger, connector, status, T0 + timedelta(hours=hours))


def test_spans_follow_the_changes_and_cover_the_window_exactly() -> None:
    changes = [
        change(-5, "Online", connector=0),
        change(-2, "Available"),
        change(3, "Preparing"),  # still online: merged with the span before
        change(4, "Charging"),
        change(6, "SuspendedEV"),  # still charging: merged
        change(7, "Finishing"),
        change(8, "Faulted"),
        change(10, "Offline", connector=0),
        change(12, "Online", connector=0),
    ]
    spans = availability_spans(changes, [("cp-1", 1)], T0, T0 + 24 * H)
    assert spans == {
        ("cp-1", 1): [
            StateSpan(T0, T0 + 4 * H, "online"),
            StateSpan(T0 + 4 * H, T0 + 7 * H, "charging"),
            StateSpan(T0 + 7 * H, T0 + 8 * H, "online"),
            StateSpan(T0 + 8 * H, T0 + 10 * H, "faulted"),
            StateSpan(T0 + 10 * H, T0 + 12 * H, "offline"),
            StateSpan(T0 + 12 * H, T0 + 24 * H, "faulted"),  # its last status again
        ]
    }


def test_a_charger_going_offline_takes_every_connector_offline() -> None:
    changes = [
        change(-1, "Online", connector=0),
        change(-1, "Charging", connector=1),
        change(-1, "Available", connector=2),
        change(2, "Offline", connector=0),
    ]
    spans = availability_spans(changes, [("cp-1", 1), ("cp-1", 2)], T0, T0 + 4 * H)
    assert [s.state for s in spans[("cp-1", 1)]] == ["charging", "offline"]
    assert [s.state for s in spans[("cp-1", 2)]] == ["online", "offline"]


def test_nothing_recorded_is_unknown_and_changes_after_the_window_do_not_count() -> None:
    changes = [change(30, "Faulted", charger="cp-2")]
    spans = availability_spans(changes, [("cp-1", 1)], T0, T0 + 24 * H)
    assert spans[("cp-1", 1)] == [StateSpan(T0, T0 + 24 * H, "unknown")]
    assert spans[("cp-2", 1)] == [StateSpan(T0, T0 + 24 * H, "unknown")]


def test_a_connected_charger_whose_connector_said_nothing_yet_is_online() -> None:
    spans = availability_spans([change(1, "Online", connector=0)], [("cp-1", 1)], T0, T0 + 2 * H)
    assert [(s.start, s.state) for s in spans[("cp-1", 1)]] == [
        (T0, "unknown"),
        (T0 + H, "online"),
    ]


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="after its start"):
        availability_spans([], [], T0, T0)
