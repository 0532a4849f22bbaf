"""The simulated OCPP 2.0.1 station's reservations (functional block H).

As the 1.6 simulator (:mod:`ocpp_server.v16.sim_reservations`), in 2.0.1's words: ReserveNow
(``id``, ``expiryDateTime``, ``idToken``, ``evseId``) is ``Accepted`` only for an existing EVSE
that is ``Available`` with no other reservation (a ReserveNow without ``evseId``, for any EVSE,
is ``Rejected``: this station does not take those); otherwise ``Unavailable``, ``Faulted`` or
``Occupied``. The EVSE goes ``Reserved``; a RequestStartTransaction for another idToken on it
is ``Rejected`` and a local start with another idToken is refused at the station
(:class:`ConnectorReserved`); the reserved idToken's TransactionEvent Started carries
``reservationId``. At the expiry the EVSE goes back to ``Available`` (StatusNotification) and
the station sends ReservationStatusUpdate ``Expired``; CancelReservation frees it too
(``Rejected`` for an id it does not hold).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ocpp_server.client import CallFailed
from ocpp_server.sim_reservations import ConnectorReserved, Reservation, ReservationsBase

__all__ = ["ConnectorReserved", "SimulatedReservations201"]


class SimulatedReservations201(ReservationsBase):
    """The reservations of a simulated 2.0.1 station (see the module docstring)."""

    REMOTE_START = "RequestStartTransaction"

    def _reserve_fields(self, payload: Mapping[str, Any]) -> tuple[int, int, str, str]:
        return (
            int(payload.get("evseId", 0)),
            int(payload["id"]),
            str(payload["idToken"]["idToken"]),
            str(payload["expiryDateTime"]),
        )

    def _start_fields(self, payload: Mapping[str, Any]) -> tuple[str, int | None]:
        wanted = payload.get("evseId")
        return str(payload["idToken"]["idToken"]), None if wanted is None else int(wanted)

    def _start_on(self, payload: Mapping[str, Any], connector_id: int) -> dict[str, Any]:
        return {**payload, "evseId": connector_id}

    async def _expired(self, reservation: Reservation) -> None:
        update = {
            "reservationId": reservation.reservation_id,
            "reservationUpdateStatus": "Expired",
        }
        try:
            await self._cp.call("ReservationStatusUpdate", update)
        except CallFailed:  # the connection is gone: nobody to tell
            return
