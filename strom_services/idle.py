"""The idle fee's clock: connector statuses turned into session events.

The charger says when the car has finished but is still plugged: OCPP 1.6 StatusNotification
``SuspendedEV`` (or ``Finishing`` while the transaction is still open), 2.0.1 the same status
derived from the TransactionEvent's ``chargingState`` / StatusNotification
(:mod:`ocpp_server.v201.handlers`). :class:`IdleWatch` subscribes to the OCPP events
(:class:`strom_services.core_events.CoreEventSink`) and, for the session holding the
connector's transaction, applies :class:`~strom_core.session_events.VehicleIdle` on those
statuses and :class:`~strom_core.session_events.VehicleCharging` on ``Charging``. The session
core bills the idle minutes beyond the tariff's grace (:mod:`strom_core.session`); a tariff
without an idle fee ignores both.
"""

from __future__ import annotations

import logging

from strom_core.errors import IllegalTransition, LedgerError
from strom_core.ports import ConnectorStatusChanged, OcppEvent
from strom_core.session import State
from strom_core.session_events import VehicleCharging, VehicleIdle
from strom_storage.sessions import SessionStore, with_transaction

__all__ = ["CHARGING_STATUSES", "IDLE_STATUSES", "IdleWatch"]

log = logging.getLogger(__name__)

IDLE_STATUSES = frozenset({"SuspendedEV", "Finishing"})
CHARGING_STATUSES = frozenset({"Charging"})
_OPEN = (State.CHARGING, State.STOPPING)


class IdleWatch:
    """Starts and stops the idle clock of the session on a connector.

    Args:
        sessions: the session store.
    """

    def __init__(self, sessions: SessionStore) -> None:
        self.sessions = sessions

    async def on_event(self, event: OcppEvent) -> None:
        """A subscriber of the OCPP events: acts on connector statuses only."""
        if not isinstance(event, ConnectorStatusChanged) or event.connector_id == 0:
            return
        if event.status in IDLE_STATUSES:
            change: VehicleIdle | VehicleCharging = VehicleIdle(event.at)
        elif event.status in CHARGING_STATUSES:
            change = VehicleCharging(event.at)
        else:
            return
        found = await self.sessions.db.read(
            lambda conn: with_transaction(conn, event.charger_id, event.connector_id, _OPEN)
        )
        for session in found:
            if not session.tariff.idle_msat_per_minute:
                continue
            try:
                await self.sessions.apply(session.id, change)
            except (IllegalTransition, LedgerError) as exc:  # it ended in the meantime
                log.info("session %s: %s not applied: %s", session.id, type(change).__name__, exc)
