"""Reservations of a connector for one idTag, as the charger keeps them.

Theory of operation
-------------------
A paid reservation (a session whose start waits, :mod:`strom_core.session`) asks the charger
to hold one connector for the session's idTag until a time: the charger then refuses every
other idTag on that connector, reports it ``Reserved``, and lets the reserved idTag start;
that transaction carries the reservation's id. At the expiry time the charger ends the
reservation by itself and reports the connector ``Available`` again; Strom may end it earlier
by cancelling it (the payer gave up, or an operator did).

The reservation id is Strom's: a number from a persisted allocator, never reused, so a late
answer or a cancellation can never hit another reservation. Sending the same reservation id
again replaces the reservation on the charger (OCPP 1.6 says so), which makes a retried
ReserveNow harmless.

The answers map onto :class:`~strom_core.ports.CommandResult`:

* :meth:`ReservationCommands.reserve_now`: ``ACCEPTED`` when the charger holds the connector;
  ``REJECTED`` with the charger's reason in ``detail`` (``Occupied``, ``Faulted``,
  ``Unavailable`` or ``Rejected``: the charger takes no reservations, or none on that
  connector); ``OFFLINE`` (nothing sent), ``TIMEOUT`` (the outcome is unknown),
  ``NOT_SUPPORTED`` (the charger or its OCPP version has no reservations in Strom), ``ERROR``.
* :meth:`ReservationCommands.cancel_reservation`: ``ACCEPTED`` when the charger ended it,
  ``REJECTED`` when it holds no reservation with that id (already expired, or never made);
  the other statuses as above.

OCPP 1.6 calls this the Reservation profile (ReserveNow, CancelReservation); OCPP 2.0.1 has
the same pair with an EVSE instead of a connector. The port is version-neutral: a version that
does not implement it answers ``NOT_SUPPORTED`` and sends nothing. No method raises for what a
charger does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from strom_core.ports.chargers import CommandResult

__all__ = ["ReservationCommands"]


@runtime_checkable
class ReservationCommands(Protocol):
    """Reservations on chargers, by charger id (see the module docstring)."""

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        *,
        reservation_id: int,
        expires_at: datetime,
        id_tag: str,
    ) -> CommandResult:
        """Hold ``connector_id`` for ``id_tag`` until ``expires_at`` (aware UTC)."""
        ...

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> CommandResult:
        """End the reservation ``reservation_id`` before its expiry."""
        ...
