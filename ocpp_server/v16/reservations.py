"""OCPP 1.6 Reservation profile: ReserveNow and CancelReservation.

ReserveNow.req carries ``connectorId``, ``expiryDate`` (UTC, milliseconds), ``idTag`` and
Strom's ``reservationId``; the charger answers ``Accepted``, ``Faulted``, ``Occupied``,
``Rejected`` or ``Unavailable``, and every answer but ``Accepted`` is ``REJECTED`` with that
status as the detail. CancelReservation.req carries the ``reservationId``; ``Accepted`` is
``ACCEPTED``, ``Rejected`` (no such reservation on the charger) ``REJECTED``. A request Strom
cannot send as asked (an idTag over 20 characters, a naive expiry time, a negative connector or
reservation id) is ``REJECTED`` and nothing is sent.

:class:`Reservations16` is a part of :class:`~ocpp_server.v16.commands.Ocpp16Commands` and
implements :class:`strom_core.ports.reservations.ReservationCommands`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from ocpp_server.commands import VersionCommands
from ocpp_server.ocppj import format_timestamp
from strom_core.ports import CommandResult, CommandStatus

__all__ = ["Reservations16", "reserve_now_payload"]

_ID_TAG_MAX: Final = 20


def reserve_now_payload(
    connector_id: int, reservation_id: int, expires_at: datetime, id_tag: str
) -> dict[str, Any]:
    """ReserveNow.req (connector 0: any connector, where the charger allows that).

    Raises:
        ValueError: a request OCPP 1.6 cannot carry.
    """
    if connector_id < 0 or reservation_id < 0:
        raise ValueError("connector and reservation ids must not be negative")
    if not 0 < len(id_tag) <= _ID_TAG_MAX:
        raise ValueError(f"an OCPP 1.6 idTag has 1 to {_ID_TAG_MAX} characters")
    if expires_at.tzinfo is None:
        raise ValueError("the expiry time must carry its time zone")
    return {
        "connectorId": connector_id,
        "expiryDate": format_timestamp(expires_at),
        "idTag": id_tag,
        "reservationId": reservation_id,
    }


class Reservations16(VersionCommands):
    """The Reservation commands of the OCPP 1.6 command set."""

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        *,
        reservation_id: int,
        expires_at: datetime,
        id_tag: str,
    ) -> CommandResult:
        """ReserveNow (``Occupied``, ``Faulted``, ``Unavailable``, ``Rejected``: REJECTED)."""
        try:
            payload = reserve_now_payload(connector_id, reservation_id, expires_at, id_tag)
        except ValueError as exc:
            return CommandResult(CommandStatus.REJECTED, str(exc))
        return await self._command(charger_id, "ReserveNow", payload)

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> CommandResult:
        """CancelReservation (``Rejected``: the charger holds no such reservation)."""
        if reservation_id < 0:
            return CommandResult(CommandStatus.REJECTED, "a reservation id is not negative")
        payload = {"reservationId": reservation_id}
        return await self._command(charger_id, "CancelReservation", payload)
