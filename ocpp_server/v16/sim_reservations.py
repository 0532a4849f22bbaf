"""The simulated OCPP 1.6 charge point's reservations (the Reservation profile).

* ReserveNow: ``Accepted`` only for an existing connector (not 0: this charger does not
  reserve "any connector", ``ReserveConnectorZeroSupported`` is ``false``) that is
  ``Available`` with no other reservation; a reservation id it already holds is replaced, as
  OCPP 1.6 asks. Otherwise ``Unavailable`` (inoperative), ``Faulted`` (reported Faulted) or
  ``Occupied`` (anything else: a transaction, a vehicle plugged in, a remote start waiting for
  the plug, another reservation), and ``Rejected`` for a connector it does not have. An
  accepted reservation makes the connector ``Reserved`` (StatusNotification).
* While reserved, the connector refuses every other idTag: a RemoteStartTransaction for
  another idTag on it is ``Rejected`` (one without a connector goes to a free connector that
  is not reserved for someone else), and a local start with another idTag is refused at the
  charger (:class:`ConnectorReserved`: no Authorize, no StartTransaction).
* The reserved idTag starts as anyone would; its StartTransaction carries ``reservationId``
  and the reservation is used up.
* At its expiry date, or on CancelReservation (``Accepted``; ``Rejected`` for an id it does not
  hold), the reservation ends and the connector goes back to ``Available`` with a
  StatusNotification. A reservation past its expiry is never honoured, even when the
  connection was down at the moment it expired.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ocpp_server.client import Answer
from ocpp_server.ocppj import parse_timestamp
from ocpp_server.v16.sim_answers import ChargePoint

__all__ = ["RESERVATION_CONFIGURATION", "ConnectorReserved", "Reservation", "SimulatedReservations"]

RESERVATION_CONFIGURATION: Final = {"ReserveConnectorZeroSupported": "false"}


class ConnectorReserved(ValueError):
    """A local start on a connector reserved for another idTag: the charger refuses it."""


@dataclass(frozen=True, slots=True)
class Reservation:
    """One reservation the simulated charger holds."""

    reservation_id: int
    connector_id: int
    id_tag: str
    expires_at: datetime


class SimulatedReservations:
    """The reservations of a simulated 1.6 charge point.

    Args:
        charge_point: the charge point whose connectors are reserved.
        now: the charger's wall clock (aware UTC).
        remote_start: the charger's answer to RemoteStartTransaction when no reservation is in
            the way.
    """

    def __init__(
        self,
        charge_point: ChargePoint,
        now: Callable[[], datetime],
        remote_start: Callable[[Mapping[str, Any]], Answer],
    ) -> None:
        self._cp = charge_point
        self._now = now
        self._remote_start = remote_start
        self._held: dict[int, Reservation] = {}  # by reservation id

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "ReserveNow": self.on_reserve_now,
            "CancelReservation": self.on_cancel_reservation,
            "RemoteStartTransaction": self.on_remote_start_transaction,
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
        connector_id = int(payload["connectorId"])
        reservation_id = int(payload["reservationId"])
        refusal = self._refusal(connector_id, reservation_id)
        if refusal is not None:
            return Answer({"status": refusal})
        expires_at = parse_timestamp(str(payload["expiryDate"]))
        if expires_at <= self._now():
            return Answer({"status": "Rejected"})
        replaced = self._held.get(reservation_id)
        reservation = Reservation(reservation_id, connector_id, str(payload["idTag"]), expires_at)
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
        tag = str(payload["idTag"]).casefold()
        wanted = payload.get("connectorId")
        if wanted is not None:
            reservation = self.on_connector(int(wanted))
            if reservation is not None and reservation.id_tag.casefold() != tag:
                return Answer({"status": "Rejected"})
            return self._remote_start(payload)
        # No connector named: the one reserved for this idTag, else a free one nobody reserved.
        mine = [r.connector_id for r in self.held if r.id_tag.casefold() == tag]
        others = {r.connector_id for r in self.held if r.id_tag.casefold() != tag}
        for connector_id in [*mine, *self._cp.connectors]:
            if connector_id in others:
                continue
            answer = self._remote_start({**payload, "connectorId": connector_id})
            if answer.payload.get("status") == "Accepted":
                return answer
        return Answer({"status": "Rejected"})
