"""What a session transition asks the shell to do: the effects of :func:`strom_core.session.apply`.

Effects are plain records; the shell stores them with the new session in one database
transaction (the outbox) and runs them after commit, each one idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "ArmReservationExpiry",
    "ArmStartTimeout",
    "CancelReservation",
    "Effect",
    "Notify",
    "RemoteStart",
    "RemoteStop",
    "ReserveNow",
]


@dataclass(frozen=True, slots=True)
class RemoteStart:
    """Send RemoteStartTransaction with the session's idTag."""

    charger_id: str
    connector_id: int
    id_tag: str


@dataclass(frozen=True, slots=True)
class RemoteStop:
    """Send RemoteStopTransaction for the session's transaction."""

    charger_id: str
    transaction_id: int


@dataclass(frozen=True, slots=True)
class ArmStartTimeout:
    """Deliver a ``StartTimedOut`` event after ``seconds`` unless the transaction started."""

    seconds: int


@dataclass(frozen=True, slots=True)
class ReserveNow:
    """Send ReserveNow: hold the connector for ``id_tag`` until ``expires_at`` (aware UTC)."""

    charger_id: str
    connector_id: int
    reservation_id: int
    expires_at: datetime
    id_tag: str


@dataclass(frozen=True, slots=True)
class CancelReservation:
    """Send CancelReservation: the charger frees the connector held for the session."""

    charger_id: str
    reservation_id: int


@dataclass(frozen=True, slots=True)
class ArmReservationExpiry:
    """Deliver a ``ReservationExpired`` event at ``until`` (aware UTC) unless it started."""

    until: datetime


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the payer (DM, session page) what happened: ``what`` names the message."""

    what: str


Effect = (
    RemoteStart
    | RemoteStop
    | ArmStartTimeout
    | ReserveNow
    | CancelReservation
    | ArmReservationExpiry
    | Notify
)
