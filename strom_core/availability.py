"""Each connector's availability over time, from the changes the storage recorded.

Theory of operation
-------------------
The storage keeps one row per change (``status_history``): a connector's OCPP status, or the
charger's connection as connector 0 (``Online``/``Offline``). :func:`availability_spans` turns
those changes into contiguous spans of one of a few states an operator reads at a glance:

* ``offline`` — the charger is not connected (whatever its connectors said last);
* ``faulted`` — the connector reports ``Faulted`` or ``Unavailable``;
* ``charging`` — a car draws (or may draw) energy: ``Charging``, ``SuspendedEV``,
  ``SuspendedEVSE`` (OCPP 1.6) or ``Occupied`` (2.0.1);
* ``online`` — connected and usable: ``Available``, ``Preparing``, ``Finishing``, ``Reserved``;
* ``unknown`` — nothing recorded yet (before the first change in or before the window); a
  connected charger's connector that has not reported a status counts as ``online``.

The state at a moment is the latest change at or before it; the caller passes the last change
before the window together with those inside it, so the first span starts at the window's start
with the state then in force. Adjacent spans of the same state are merged, spans never overlap,
and together they cover the window exactly. Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "STATES",
    "StateSpan",
    "StatusChange",
    "availability_spans",
    "availability_state",
]

STATES = ("online", "charging", "faulted", "offline", "unknown")
"""The states of the timeline, in the order a legend lists them."""

_BY_STATUS = {
    "available": "online",
    "preparing": "online",
    "finishing": "online",
    "reserved": "online",
    "charging": "charging",
    "suspendedev": "charging",
    "suspendedevse": "charging",
    "occupied": "charging",
    "faulted": "faulted",
    "unavailable": "faulted",
}


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One recorded change (a ``status_history`` row); connector 0 is the charger's link."""

    charger_id: str
    connector_id: int
    status: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StateSpan:
    """``state`` from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    state: str


def availability_state(status: str, *, online: bool | None) -> str:
    """The timeline state of a connector's OCPP ``status`` while its charger is ``online``.

    Args:
        status: the connector's last OCPP status ("" when none was recorded).
        online: whether the charger is connected (None: not known).
    """
    if online is False:
        return "offline"
    return _BY_STATUS.get(status.lower(), "online" if online else "unknown")


def _state_at(changes: Sequence[StatusChange], moment: datetime) -> str:
    """The status in force at ``moment`` among ``changes`` (sorted by time), "" when none."""
    status = ""
    for change in changes:
        if change.at > moment:
            break
        status = change.status
    return status


def availability_spans(
    changes: Iterable[StatusChange],
    connectors: Iterable[tuple[str, int]],
    start: datetime,
    end: datetime,
) -> dict[tuple[str, int], list[StateSpan]]:
    """The spans of each connector's state from ``start`` to ``end``.

    Args:
        changes: the changes in the window and, per connector (and per charger link), the
            last one before it; any order.
        connectors: the (charger id, connector id) pairs to draw, also those without changes.
        start: the window's start (aware).
        end: the window's end (aware), after ``start``.

    Returns:
        Per connector, in the order given (then any other connector a change names), spans
        that cover ``[start, end)`` exactly, merged where the state does not change.

    Raises:
        ValueError: ``end`` is not after ``start``.
    """
    if end <= start:
        raise ValueError("the window's end must be after its start")
    ordered = sorted(changes, key=lambda change: change.at)
    links: dict[str, list[StatusChange]] = {}
    statuses: dict[tuple[str, int], list[StatusChange]] = {}
    for change in ordered:
        if change.connector_id == 0:
            links.setdefault(change.charger_id, []).append(change)
        else:
            statuses.setdefault((change.charger_id, change.connector_id), []).append(change)
    keys = list(dict.fromkeys([*connectors, *statuses]))
    result: dict[tuple[str, int], list[StateSpan]] = {}
    for key in keys:
        own = statuses.get(key, [])
        link = links.get(key[0], [])
        moments = sorted({start} | {c.at for c in (*own, *link) if start < c.at < end})
        spans: list[StateSpan] = []
        for index, moment in enumerate(moments):
            until = moments[index + 1] if index + 1 < len(moments) else end
            linked = _state_at(link, moment)
            state = availability_state(
                _state_at(own, moment), online=None if not linked else linked == "Online"
            )
            if spans and spans[-1].state == state:
                spans[-1] = StateSpan(spans[-1].start, until, state)
            else:
                spans.append(StateSpan(moment, until, state))
        result[key] = spans
    return result
