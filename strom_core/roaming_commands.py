"""A roaming partner's commands and how they end: the answer a partner waits for.

Theory of operation
-------------------
A partner's command (OCPI Commands: start a session, stop one, unlock a connector) is
answered twice: at once (Strom took it, or refused it and did nothing), and later with what
the charger did. The later answer must reach the partner exactly once and survive a crash,
so it is decided in the transaction that records the charger's answer:

* a **start** ends with its session's first step past ``PAID``: the charger accepted the
  RemoteStart (``STARTING``) or a transaction began (``CHARGING``) → ``ACCEPTED``; the
  charger refused (``RemoteStartRejected``) → ``REJECTED``; nobody answered and the start
  timer ran out while still ``PAID`` → ``TIMEOUT``; stopped before it began → ``FAILED``;
* a **stop** ends when its session ends (``STOPPED``, ``CLOSED``, or ``START_FAILED`` for a
  session stopped before it charged) → ``ACCEPTED``;
* a **reservation** (RESERVE_NOW) ends with the charger's answer to ReserveNow: accepted
  (``ReservationAccepted``, the state stays ``RESERVED``) → ``ACCEPTED``; refused →
  ``REJECTED`` with its reason; the reservation used (the token started) before the answer
  → ``ACCEPTED``; ended otherwise first (cancelled, expired) → ``FAILED``. A charger that
  does not answer decides nothing: the timer ends it ``TIMEOUT``;
* a **cancel** (CANCEL_RESERVATION) ends when its reservation ends (``CLOSED`` or
  ``START_FAILED``) → ``ACCEPTED``: at once, as the cancel is applied before it is recorded
  (CancelReservation then reaches the charger through the outbox, retried while offline);
* an **unlock** ends with the charger's answer to UnlockConnector (:func:`unlock_outcome`);
* any command still open when its own timer runs out → ``TIMEOUT``.

:func:`session_outcome` is the pure rule for the first two; the storage layer applies it to
a partner's open commands of the session whenever the session's state changes
(:mod:`strom_storage.roaming_commands`). The outcomes are OCPI's CommandResultType names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from strom_core.ports.chargers import CommandResult, CommandStatus
from strom_core.session import State
from strom_core.session_events import (
    Event,
    RemoteStartRejected,
    ReservationAccepted,
    ReservationRejected,
    StartTimedOut,
    StopRequested,
)

__all__ = [
    "CommandKind",
    "CommandOutcome",
    "Outcome",
    "PartnerCommand",
    "session_outcome",
    "state_outcome",
    "unlock_outcome",
]


class CommandKind(enum.StrEnum):
    """The partner commands Strom carries out (OCPI CommandType)."""

    START = "START_SESSION"
    STOP = "STOP_SESSION"
    UNLOCK = "UNLOCK_CONNECTOR"
    RESERVE = "RESERVE_NOW"
    CANCEL = "CANCEL_RESERVATION"


class CommandOutcome(enum.StrEnum):
    """What the charger did (OCPI CommandResultType)."""

    ACCEPTED = "ACCEPTED"
    EVSE_OCCUPIED = "EVSE_OCCUPIED"
    EVSE_INOPERATIVE = "EVSE_INOPERATIVE"
    FAILED = "FAILED"
    NOT_SUPPORTED = "NOT_SUPPORTED"
    REJECTED = "REJECTED"
    TIMEOUT = "TIMEOUT"


@dataclass(frozen=True, slots=True)
class Outcome:
    """A command's end: the result and a sentence for the partner (may be empty)."""

    result: CommandOutcome
    message: str = ""


@dataclass(frozen=True, slots=True)
class PartnerCommand:
    """A partner's command as stored: where its result goes, and its end once known."""

    id: int
    partner_id: str
    kind: CommandKind
    response_url: str
    created_at: datetime
    session_id: str | None = None
    charger_id: str | None = None
    connector_id: int | None = None
    ended: bool = False
    result: CommandOutcome | None = None
    message: str = ""


_STARTED = frozenset({State.STARTING, State.CHARGING})
_ENDED = frozenset({State.STOPPED, State.CLOSED, State.START_FAILED})
_RESERVATION_ENDED = frozenset({State.CLOSED, State.START_FAILED})


def session_outcome(kind: CommandKind, old: State, new: State, event: Event) -> Outcome | None:
    """How a session's transition ``old`` → ``new`` by ``event`` ends a command on it.

    Returns:
        The outcome, or None when this transition does not end a command of that kind.
    """
    if kind is CommandKind.RESERVE:
        return _reserve_outcome(old, new, event)
    if old is new:
        return None
    if kind is CommandKind.CANCEL:
        return state_outcome(kind, new)
    if kind is CommandKind.START:
        return _start_outcome(old, new, event)
    if kind is CommandKind.STOP and new in _ENDED and old not in _ENDED:
        return Outcome(CommandOutcome.ACCEPTED, "the session has ended")
    return None


def state_outcome(kind: CommandKind, state: State) -> Outcome | None:
    """How a command ends when its session is in ``state`` already (it moved first).

    A command is recorded just after it was handed to the session; a fast charger may have
    answered meanwhile, so the session's state then is the answer.
    """
    if kind is CommandKind.START:
        if state in _STARTED or state in {State.STOPPING, State.STOPPED, State.CLOSED}:
            return Outcome(CommandOutcome.ACCEPTED, "the charger accepted the start")
        if state is State.START_FAILED:
            return Outcome(CommandOutcome.FAILED, "the start failed")
        return None
    if kind is CommandKind.STOP and state in _ENDED:
        return Outcome(CommandOutcome.ACCEPTED, "the session has ended")
    if kind is CommandKind.CANCEL and state in _RESERVATION_ENDED:
        return Outcome(CommandOutcome.ACCEPTED, "the reservation is cancelled")
    return None


def _reserve_outcome(old: State, new: State, event: Event) -> Outcome | None:
    if old is not State.RESERVED:
        return None
    if isinstance(event, ReservationAccepted) and new is State.RESERVED:
        return Outcome(CommandOutcome.ACCEPTED, "the charger holds the connector")
    if isinstance(event, ReservationRejected):
        return Outcome(CommandOutcome.REJECTED, f"the charger refused: {event.reason}"[:200])
    if new in (State.PAID, State.CHARGING):
        return Outcome(CommandOutcome.ACCEPTED, "the reservation is in use")
    if new is not State.RESERVED:
        return Outcome(CommandOutcome.FAILED, "the reservation ended before the charger answered")
    return None


def _start_outcome(old: State, new: State, event: Event) -> Outcome | None:
    if new in _STARTED:
        return Outcome(CommandOutcome.ACCEPTED, "the charger accepted the start")
    if new is not State.START_FAILED:
        return None
    if isinstance(event, RemoteStartRejected):
        return Outcome(CommandOutcome.REJECTED, f"the charger refused: {event.reason}")
    if isinstance(event, StartTimedOut) and old is State.PAID:
        return Outcome(CommandOutcome.TIMEOUT, "the charger did not answer in time")
    if isinstance(event, StopRequested):
        return Outcome(CommandOutcome.FAILED, "the session was stopped before it began")
    return Outcome(CommandOutcome.FAILED, "no charge began in time")


def unlock_outcome(answer: CommandResult) -> Outcome | None:
    """The outcome of an unlock from the charger's answer; None: not known yet (offline)."""
    detail = answer.detail or answer.status.value
    if answer.status is CommandStatus.ACCEPTED:
        return Outcome(CommandOutcome.ACCEPTED, "unlocked")
    if answer.status is CommandStatus.OFFLINE:
        return None
    if answer.status is CommandStatus.NOT_SUPPORTED:
        return Outcome(CommandOutcome.NOT_SUPPORTED, detail)
    if answer.status is CommandStatus.TIMEOUT:
        return Outcome(CommandOutcome.TIMEOUT, "the charger did not answer in time")
    if answer.status is CommandStatus.REJECTED:
        return Outcome(CommandOutcome.REJECTED, detail)
    return Outcome(CommandOutcome.FAILED, detail)
