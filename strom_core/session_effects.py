"""What a session transition asks the shell to do: the effects of :func:`strom_core.session.apply`.

Effects are plain records; the shell stores them with the new session in one database
transaction (the outbox) and runs them after commit, each one idempotently.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ArmStartTimeout",
    "Effect",
    "Notify",
    "RemoteStart",
    "RemoteStop",
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
class Notify:
    """Tell the payer (DM, session page) what happened: ``what`` names the message."""

    what: str


Effect = RemoteStart | RemoteStop | ArmStartTimeout | Notify
