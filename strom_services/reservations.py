"""Paid reservations in the shell: ReserveNow, CancelReservation, the expiry timer, the payer.

Theory of operation
-------------------
A reservation is a session paid with ``reserve_minutes > 0`` (:mod:`strom_core.session`). Its
settlement commits the session ``RESERVED`` together with three outbox rows: the ``reserved``
notification, ``reserve_now`` and ``reservation_expiry`` (due at ``reserved_until``). Being
outbox rows, they survive a crash or a restart: the timer is a row with a due time, so an
expiry that passed while Strom was down fires at the next start.

* ``reserve_now`` sends ReserveNow (the reservation's id, the session's idTag, its end) only
  while the session is still ``RESERVED``, so a replay after a crash asks at most again for
  the same reservation (the charger replaces a reservation with the same id). Accepted becomes
  :class:`~strom_core.session_events.ReservationAccepted`; a refusal (Occupied, Faulted,
  Unavailable, Rejected), a charger that is not connected or does not do reservations becomes
  :class:`~strom_core.session_events.ReservationRejected` (everything refundable); a timeout is
  unknown and decides nothing: the session stays reserved and Strom keeps the connector for
  the payer until the end time anyway.
* ``reservation_expiry`` delivers :class:`~strom_core.session_events.ReservationExpired`; in
  any state past ``RESERVED`` the core ignores it (a stale timer).
* ``cancel_reservation`` sends CancelReservation. Accepted, or Rejected (the charger has no
  such reservation any more: it ended it or the payer's transaction used it), is done. A
  charger that is not reachable is asked again later, until the reservation's own end time,
  after which the charger has ended it by itself.

The payer acts through :class:`PayerReservations` (the session page's buttons, the DMs
``start`` and ``cancel``): start asks the core for
:class:`~strom_core.session_events.StartRequested`, cancel for a
:class:`~strom_core.session_events.StopRequested` of the initiator, both only while reserved.
"""

from __future__ import annotations

import logging
from datetime import datetime

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.crashpoints import crashpoint
from strom_core.errors import IllegalTransition, StromError
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.reservations import ReservationCommands
from strom_core.session import Session, State, Transition
from strom_core.session_events import (
    ReservationAccepted,
    ReservationExpired,
    ReservationRejected,
    StartRequested,
    StopReason,
    StopRequested,
)
from strom_services.effects import Handler, RetryLater
from strom_storage.outbox import OutboxRow
from strom_storage.sessions import SessionStore

__all__ = [
    "RESERVATION_COUNTER",
    "PayerReservations",
    "ReservationEffects",
    "ReservationError",
]

log = logging.getLogger(__name__)

RESERVATION_COUNTER = "ocpp_reservation"  # the id_allocator row of OCPP reservation ids


class ReservationError(StromError):
    """The payer's start or cancel cannot be done now; ``reason`` is for the payer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReservationEffects:
    """Outbox handlers of reservations (see the module docstring).

    Args:
        store: the sessions.
        reservations: the chargers' ReserveNow/CancelReservation; None: no charger can
            reserve (every reservation is refused, and refunded in full).
        clock: the current time (whether a reservation has ended at the charger by itself).
    """

    def __init__(
        self,
        store: SessionStore,
        reservations: ReservationCommands | None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.reservations = reservations
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        """The handlers by outbox kind."""
        return {
            "reserve_now": self.reserve_now,
            "cancel_reservation": self.cancel_reservation,
            "reservation_expiry": self.reservation_expiry,
        }

    async def reserve_now(self, row: OutboxRow) -> None:
        """Send ReserveNow for a reserved session; its answer becomes the session's event."""
        session_id = _session_id(row)
        session = await self.store.get(session_id)
        if session.state is not State.RESERVED:
            log.info("session %s: ReserveNow skipped in state %s", session_id, session.state)
            return
        payload = row.payload
        crashpoint("reservation.before_reserve_now")
        if self.reservations is None:
            result = CommandResult(CommandStatus.NOT_SUPPORTED, "no reservations")
        else:
            result = await self.reservations.reserve_now(
                payload["charger_id"],
                int(payload["connector_id"]),
                reservation_id=int(payload["reservation_id"]),
                expires_at=datetime.fromisoformat(payload["expires_at"]),
                id_tag=payload["id_tag"],
            )
        crashpoint("reservation.after_reserve_now")
        log.info(
            "session %s: ReserveNow %s to %s connector %s until %s: %s %s",
            session_id,
            payload["reservation_id"],
            payload["charger_id"],
            payload["connector_id"],
            payload["expires_at"],
            result.status.value,
            result.detail,
        )
        if result.status is CommandStatus.TIMEOUT:
            return  # unknown: the session stays reserved until its end time
        event: ReservationAccepted | ReservationRejected = (
            ReservationAccepted() if result.accepted else ReservationRejected(_refusal(result))
        )
        await self._apply(session_id, event)

    async def cancel_reservation(self, row: OutboxRow) -> None:
        """Send CancelReservation; asked again while the charger cannot be reached."""
        session_id = _session_id(row)
        payload = row.payload
        crashpoint("reservation.before_cancel")
        if self.reservations is None:
            return
        result = await self.reservations.cancel_reservation(
            payload["charger_id"], int(payload["reservation_id"])
        )
        crashpoint("reservation.after_cancel")
        log.info(
            "session %s: CancelReservation %s to %s: %s %s",
            session_id,
            payload["reservation_id"],
            payload["charger_id"],
            result.status.value,
            result.detail,
        )
        if result.status in (
            CommandStatus.ACCEPTED,
            CommandStatus.REJECTED,  # no such reservation at the charger any more
            CommandStatus.NOT_SUPPORTED,
        ):
            return
        session = await self.store.get(session_id)
        until = session.reserved_until
        if until is not None and self.clock.now() >= until:
            return  # the charger ended the reservation by itself at its expiry
        raise RetryLater(f"charger answered {result.status.value} to CancelReservation")

    async def reservation_expiry(self, row: OutboxRow) -> None:
        """The reservation's time is up (a stale timer changes nothing)."""
        transition = await self._apply(_session_id(row), ReservationExpired())
        if transition is not None and transition.changed:
            crashpoint("reservation.after_expiry")

    async def _apply(
        self, session_id: str, event: ReservationAccepted | ReservationRejected | ReservationExpired
    ) -> Transition | None:
        try:
            return await self.store.apply(session_id, event)
        except IllegalTransition as exc:
            log.info("session %s: %s", session_id, exc)
            return None


def _refusal(result: CommandResult) -> str:
    """The reason a reservation failed, for the payer (the charger's status, if it said one)."""
    if result.status is CommandStatus.OFFLINE:
        return "the charger is not connected"
    if result.status is CommandStatus.NOT_SUPPORTED:
        return "the charger does not take reservations"
    return (result.detail or result.status.value).strip()


class PayerReservations:
    """What the payer of a reservation can do: start charging, or cancel.

    Args:
        store: the sessions.
    """

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def start(self, session_id: str) -> Session:
        """Start charging on the reserved connector (the charger lets the reserved idTag in).

        Raises:
            ReservationError: the session is not reserved (any more).
        """
        return await self._act(session_id, StartRequested(), "start")

    async def cancel(self, session_id: str) -> Session:
        """Cancel the reservation: the tariff's share of the fee is kept, the rest refundable.

        Raises:
            ReservationError: the session is not reserved (any more).
        """
        return await self._act(session_id, StopRequested(StopReason.INITIATOR), "cancel")

    async def _act(
        self, session_id: str, event: StartRequested | StopRequested, what: str
    ) -> Session:
        session = await self.store.get(session_id)
        if session.state is not State.RESERVED:
            if what == "start" and StartRequested().key in session.applied:
                return session  # a second click: already starting
            raise ReservationError(_not_reserved(session, what))
        try:
            transition = await self.store.apply(session_id, event)
        except IllegalTransition:  # it moved on meanwhile (expired, say)
            raise ReservationError(_not_reserved(await self.store.get(session_id), what)) from None
        log.info("session %s: the payer asked to %s the reservation", session_id, what)
        return transition.session


def _not_reserved(session: Session, what: str) -> str:
    if session.reserved_until is None:
        return "this session is not a reservation"
    return (
        f"the reservation has ended ({session.stop_reason or session.state.value}); cannot {what}"
    )


def _session_id(row: OutboxRow) -> str:
    if row.session_id is None:
        raise ValueError(f"outbox row {row.id} ({row.kind}) has no session")
    return row.session_id
