"""OCPP 2.0.1 reservations (functional block H): ReserveNow and CancelReservation.

ReserveNowRequest carries Strom's reservation ``id``, ``expiryDateTime`` (UTC, milliseconds),
the session's idTag as ``idToken`` of type ``Central`` (as RequestStartTransaction sends it) and
the ``evseId`` (Strom's connector N is EVSE N). The station answers ``Accepted``, ``Faulted``,
``Occupied``, ``Rejected`` or ``Unavailable``: every answer but ``Accepted`` is ``REJECTED``
with that status as the detail, as in 1.6. CancelReservationRequest carries the
``reservationId``; ``Rejected`` means the station holds no such reservation. The station
reports a reservation that ended without a transaction in ReservationStatusUpdate (``Expired``
or ``Removed``), which the handlers keep as its last value; a transaction that uses the
reservation names it in its TransactionEvent ``reservationId``. A request 2.0.1 cannot carry
(an idTag over 36 characters, a naive expiry time, a connector below 1, a negative id) is
``REJECTED`` and nothing is sent.

:class:`Reservations201` is a part of :class:`~ocpp_server.v201.commands.Ocpp201Commands` and
implements :class:`strom_core.ports.reservations.ReservationCommands`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from ocpp_server.commands import VersionCommands
from ocpp_server.ocppj import format_timestamp
from strom_core.ports import CommandResult, CommandStatus

__all__ = ["Reservations201", "reserve_now_payload"]

_ID_TOKEN_MAX: Final = 36


def reserve_now_payload(
    connector_id: int, reservation_id: int, expires_at: datetime, id_tag: str
) -> dict[str, Any]:
    """ReserveNowRequest for EVSE ``connector_id``.

    Raises:
        ValueError: a request OCPP 2.0.1 cannot carry.
    """
    if connector_id < 1:
        raise ValueError("an OCPP 2.0.1 reservation is for an EVSE, numbered from 1")
    if reservation_id < 0:
        raise ValueError("a reservation id is not negative")
    if not 0 < len(id_tag) <= _ID_TOKEN_MAX:
        raise ValueError(f"an OCPP 2.0.1 idToken has 1 to {_ID_TOKEN_MAX} characters")
    if expires_at.tzinfo is None:
        raise ValueError("the expiry time must carry its time zone")
    return {
        "id": reservation_id,
        "expiryDateTime": format_timestamp(expires_at),
        "idToken": {"idToken": id_tag, "type": "Central"},
        "evseId": connector_id,
    }


class Reservations201(VersionCommands):
    """The reservation commands of the OCPP 2.0.1 command set."""

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
        """CancelReservation (``Rejected``: the station holds no such reservation)."""
        if reservation_id < 0:
            return CommandResult(CommandStatus.REJECTED, "a reservation id is not negative")
        payload = {"reservationId": reservation_id}
        return await self._command(charger_id, "CancelReservation", payload)
