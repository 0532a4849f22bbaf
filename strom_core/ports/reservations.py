"""Reservations at a charger: hold a connector for one idTag until a time, or free it.

OCPP 1.6 ReserveNow / CancelReservation. A reserved connector lets only the reserved idTag
start; the reservation ends at its expiry, when that idTag starts, or on CancelReservation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from strom_core.ports.chargers import CommandResult

__all__ = ["ReservationCommands"]


@runtime_checkable
class ReservationCommands(Protocol):
    """ReserveNow and CancelReservation, by charger id."""

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        *,
        reservation_id: int,
        expires_at: datetime,
        id_tag: str,
    ) -> CommandResult:
        """Hold the connector for ``id_tag`` until ``expires_at``."""
        ...

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> CommandResult:
        """Free the connector held by ``reservation_id``."""
        ...
