"""What every simulated charge point does with reservations, whatever OCPP version it speaks.

:class:`ReservationsBase` keeps the reservations a simulated charger holds and answers the
central system's ReserveNow, CancelReservation and remote start (see
:mod:`ocpp_server.v16.sim_reservations` for what it does); a version's subclass reads its own
payloads (:meth:`ReservationsBase._reserve_fields`, :meth:`ReservationsBase._start_fields`,
:meth:`ReservationsBase._start_on`) and says what it reports when a reservation expires
(:meth:`ReservationsBase._expired`). Connector N is the version's connector (1.6) or EVSE
(2.0.1) N; statuses are the words both versions share (``Available``, ``Reserved``,
``Faulted``, ``Unavailable``).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol

from ocpp_server.client import Answer
from ocpp_server.ocppj import parse_timestamp
from ocpp_server.sim_model import ConnectorState

__all__ = ["ConnectorReserved", "Reservation", "ReservationsBase", "ReservingChargePoint"]


class ReservingChargePoint(Protocol):
    """What reservations need of a simulated charge point."""

    @property
    def connectors(self) -> Mapping[int, ConnectorState]:
        """The connectors (2.0.1: the EVSEs) by number."""
        ...

    async def set_status(self, connector_id: int, status: str) -> None:
        """Change a connector's status and report it."""
        ...

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload."""
        ...


class ConnectorReserved(ValueError):
    """A local start on a connector reserved for another idTag: the charger refuses it."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """One reservation the simulated charger holds."""

    reservation_id: int
    connector_id: int
    id_tag: str
    expires_at: datetime


class ReservationsBase(ABC):
    """The reservations of a simulated charge point (a version subclasses it).

    Args:
        charge_point: the charge point whose connectors are reserved.
        now: the charger's wall clock (aware UTC).
        remote_start: the charger's answer to its remote start (:attr:`REMOTE_START`) when no
            reservation is in the way.
    """

    REMOTE_START: ClassVar[str]
    """The version's remote start action (1.6 RemoteStartTransaction, 2.0.1
    RequestStartTransaction), whose answer this one wraps."""

    def __init__(
        self,
        charge_point: ReservingChargePoint,
        now: Callable[[], datetime],
        remote_start: Callable[[Mapping[str, Any]], Answer],
    ) -> None:
        self._cp = charge_point
        self._now = now
        self._remote_start = remote_start
        self._held: dict[int, Reservation] = {}  # by reservation id

    # --- what a version supplies -----------------------------------------------------------

    @abstractmethod
    def _reserve_fields(self, payload: Mapping[str, Any]) -> tuple[int, int, str, str]:
        """ReserveNow's connector (0: none named), reservation id, idTag and expiry time."""

    @abstractmethod
    def _start_fields(self, payload: Mapping[str, Any]) -> tuple[str, int | None]:
        """A remote start's idTag and connector (None: any)."""

    @abstractmethod
    def _start_on(self, payload: Mapping[str, Any], connector_id: int) -> dict[str, Any]:
        """The remote start's payload with ``connector_id`` named."""

    @abstractmethod
    async def _expired(self, reservation: Reservation) -> None:
        """What the charger reports when a reservation expired (after its status)."""

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "ReserveNow": self.on_reserve_now,
            "CancelReservation": self.on_cancel_reservation,
            self.REMOTE_START: self.on_remote_start_transaction,
        }

    # --- what the charger holds ------------------------------------------------------------

    @property
    def held(self) -> list[Reservation]:
        """The reservations in force, by reservation id."""
        self._drop_expired()
        return [self._held[key] for key in sorted(self._held)]

    def on_connector(self, connector_id: int) -> Reservation | None:
        """The reservation in force on a connector, if any."""
        return next((r for r in self.held if r.connector_id == connector_id), None)

    def claim(self, connector_id: int, id_tag: str) -> int | None:
        """A local start of ``id_tag``: the reservation it uses up (its id), or None.

        Raises:
            ConnectorReserved: the connector is reserved for another idTag.
        """
        reservation = self.on_connector(connector_id)
        if reservation is None:
            return None
        if reservation.id_tag.casefold() != id_tag.casefold():
            raise ConnectorReserved(
                f"connector {connector_id} is reserved for another idTag "
                f"until {reservation.expires_at.isoformat()}"
            )
        del self._held[reservation.reservation_id]
        return reservation.reservation_id

    def _drop_expired(self) -> None:
        now = self._now()
        for reservation in [r for r in self._held.values() if r.expires_at <= now]:
            del self._held[reservation.reservation_id]
            self._free_status(reservation.connector_id)

    def _free_status(self, connector_id: int) -> bool:
        """Make a Reserved connector Available again; whether it was Reserved."""
        connector = self._cp.connectors[connector_id]
        if connector.status != "Reserved":
            return False
        connector.status = "Available" if connector.operative else "Unavailable"
        return True

    async def _report_free(self, connector_id: int) -> None:
        status = self._cp.connectors[connector_id].status
        if status == "Reserved":
            await self._cp.set_status(connector_id, "Available")
        elif status == "Available":  # freed already (a lookup saw it expire): tell the CSMS
            await self._cp.set_status(connector_id, status)

    # --- answers ---------------------------------------------------------------------------

    def _refusal(self, connector_id: int, reservation_id: int) -> str | None:
        connector = self._cp.connectors.get(connector_id)
        if connector is None or connector_id == 0:
            return "Rejected"
        if not connector.operative:
            return "Unavailable"
        if connector.status == "Faulted":
            return "Faulted"
        other = self.on_connector(connector_id)
        if other is not None and other.reservation_id != reservation_id:
            return "Occupied"
        busy = (
            connector.transaction_id is not None
            or connector.plugged
            or connector.waiting_tag is not None
        )
        if busy or connector.status not in ("Available", "Reserved"):
            return "Occupied"
        return None

    def on_reserve_now(self, payload: Mapping[str, Any]) -> Answer:
        """Reserve the connector (see the module docstring)."""
        connector_id, reservation_id, id_tag, expiry = self._reserve_fields(payload)
        refusal = self._refusal(connector_id, reservation_id)
        if refusal is not None:
            return Answer({"status": refusal})
        expires_at = parse_timestamp(expiry)
        if expires_at <= self._now():
            return Answer({"status": "Rejected"})
        replaced = self._held.get(reservation_id)
        reservation = Reservation(reservation_id, connector_id, id_tag, expires_at)
        self._held[reservation_id] = reservation

        async def reserve() -> None:
            moved = replaced is not None and replaced.connector_id != connector_id
            if moved and replaced is not None and self._free_status(replaced.connector_id):
                await self._report_free(replaced.connector_id)
            await self._cp.set_status(connector_id, "Reserved")
            await asyncio.sleep(max(0.0, (expires_at - self._now()).total_seconds()))
            if self._held.get(reservation_id) is reservation:
                del self._held[reservation_id]
                await self._report_free(connector_id)
                await self._expired(reservation)

        return Answer({"status": "Accepted"}, then=reserve)

    def on_cancel_reservation(self, payload: Mapping[str, Any]) -> Answer:
        """End a reservation the charger holds (``Rejected`` for any other id)."""
        self._drop_expired()
        reservation = self._held.pop(int(payload["reservationId"]), None)
        if reservation is None:
            return Answer({"status": "Rejected"})
        return Answer(
            {"status": "Accepted"}, then=lambda: self._report_free(reservation.connector_id)
        )

    def on_remote_start_transaction(self, payload: Mapping[str, Any]) -> Answer:
        """Refuse another idTag on a reserved connector; otherwise start as usual."""
        id_tag, wanted = self._start_fields(payload)
        tag = id_tag.casefold()
        if wanted is not None:
            reservation = self.on_connector(wanted)
            if reservation is not None and reservation.id_tag.casefold() != tag:
                return Answer({"status": "Rejected"})
            return self._remote_start(payload)
        # No connector named: the one reserved for this idTag, else a free one nobody reserved.
        mine = [r.connector_id for r in self.held if r.id_tag.casefold() == tag]
        others = {r.connector_id for r in self.held if r.id_tag.casefold() != tag}
        for connector_id in [*mine, *self._cp.connectors]:
            if connector_id in others:
                continue
            answer = self._remote_start(self._start_on(payload, connector_id))
            if answer.payload.get("status") == "Accepted":
                return answer
        return Answer({"status": "Rejected"})
