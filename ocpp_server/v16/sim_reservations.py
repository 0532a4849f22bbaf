"""The simulated OCPP 1.6 charge point's reservations (the Reservation profile).

* ReserveNow: ``Accepted`` only for an existing connector (not 0: this charger does not
  reserve "any connector", ``ReserveConnectorZeroSupported`` is ``false``) that is
  ``Available`` with no other reservation; a reservation id it already holds is replaced, as
  OCPP 1.6 asks. Otherwise ``Unavailable`` (inoperative), ``Faulted`` (reported Faulted) or
  ``Occupied`` (anything else: a transaction, a vehicle plugged in, a remote start waiting for
  the plug, another reservation), and ``Rejected`` for a connector it does not have or an
  expiry date already past. An accepted reservation makes the connector ``Reserved``
  (StatusNotification).
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

The bookkeeping is the version-neutral :class:`~ocpp_server.sim_reservations.ReservationsBase`;
here are the 1.6 payloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ocpp_server.sim_reservations import ConnectorReserved, Reservation, ReservationsBase

__all__ = ["RESERVATION_CONFIGURATION", "ConnectorReserved", "Reservation", "SimulatedReservations"]

RESERVATION_CONFIGURATION: Final = {"ReserveConnectorZeroSupported": "false"}


class SimulatedReservations(ReservationsBase):
    """The reservations of a simulated 1.6 charge point (see the module docstring)."""

    REMOTE_START = "RemoteStartTransaction"

    def _reserve_fields(self, payload: Mapping[str, Any]) -> tuple[int, int, str, str]:
        return (
            int(payload["connectorId"]),
            int(payload["reservationId"]),
            str(payload["idTag"]),
            str(payload["expiryDate"]),
        )

    def _start_fields(self, payload: Mapping[str, Any]) -> tuple[str, int | None]:
        wanted = payload.get("connectorId")
        return str(payload["idTag"]), None if wanted is None else int(wanted)

    def _start_on(self, payload: Mapping[str, Any], connector_id: int) -> dict[str, Any]:
        return {**payload, "connectorId": connector_id}

    async def _expired(self, reservation: Reservation) -> None:
        """Nothing more than the connector's StatusNotification (Available)."""
