"""Reservations routed by the OCPP version a charger speaks (``ReservationCommands``).

:class:`OcppReservations` is the :class:`strom_core.ports.reservations.ReservationCommands` of
the server. A charger's reservation commands go to the command set of its live connection when
that set carries them (OCPP 1.6: :mod:`ocpp_server.v16.reservations`, OCPP 2.0.1:
:mod:`ocpp_server.v201.reservations`); a version whose set does not answers ``NOT_SUPPORTED``
and nothing is sent, and a charger without a live connection ``OFFLINE``
(:meth:`ocpp_server.commands.OcppCommands.live_capable`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ocpp_server.commands import OcppCommands
from strom_core.ports import CommandResult
from strom_core.ports.reservations import ReservationCommands

__all__ = ["OcppReservations"]


class OcppReservations:
    """Reservations on connected chargers, by charger id.

    Args:
        commands: the server's commands, routed by each connection's version.
    """

    def __init__(self, commands: OcppCommands) -> None:
        self._commands = commands

    def _route(self, charger_id: str) -> ReservationCommands | CommandResult:
        return self._commands.live_capable(charger_id, ReservationCommands, "reservations")

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        *,
        reservation_id: int,
        expires_at: datetime,
        id_tag: str,
    ) -> CommandResult:
        """Hold ``connector_id`` for ``id_tag`` until ``expires_at``."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.reserve_now(
            charger_id,
            connector_id,
            reservation_id=reservation_id,
            expires_at=expires_at,
            id_tag=id_tag,
        )

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> CommandResult:
        """End the reservation ``reservation_id`` before its expiry."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.cancel_reservation(charger_id, reservation_id)


if TYPE_CHECKING:
    _IS_RESERVATION_COMMANDS: type[ReservationCommands] = OcppReservations
