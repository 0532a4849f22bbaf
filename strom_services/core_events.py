"""Where OCPP events land in the core: charger and connector state, then any subscribers.

Transactions and meter values reach sessions through :class:`strom_core.ports.OcppCore` (in the same
database transaction as their record); this sink keeps the run-time view of chargers
(online, connector status) and fans events out to subscribers such as the agents and the live
pages. A failing subscriber is logged and never stops the others or the OCPP connection.

With an :class:`strom_services.orphans.OrphanWatch`, a connector status is recorded by the
watch (in one
transaction with the orphan check it may arm) and a boot suspects the charger's open
transactions: a charger that comes back without its transaction does not lock a session.

When Strom stops, the OCPP server closes every connection; those disconnects are not recorded
(:meth:`CoreEventSink.server_stopping`): the chargers were connected when Strom stopped, as after
a crash, and the next start gives them a reconnect grace
(:meth:`strom_storage.chargers.ChargerStore.begin_reconnect_grace`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from strom_core.errors import StorageError
from strom_core.ports import (
    ChargerBooted,
    ChargerOffline,
    ChargerOnline,
    ConnectorStatusChanged,
    OcppEvent,
    SecurityEventReported,
)
from strom_services.orphans import OrphanWatch
from strom_storage.chargers import ChargerStore

__all__ = ["CoreEventSink", "Subscriber"]

log = logging.getLogger(__name__)

Subscriber = Callable[[OcppEvent], Awaitable[None]]


class CoreEventSink:
    """An :class:`strom_core.ports.EventSink`: records charger state and notifies subscribers."""

    def __init__(self, chargers: ChargerStore, orphans: OrphanWatch | None = None) -> None:
        self.chargers = chargers
        self.orphans = orphans
        self._subscribers: list[Subscriber] = []
        self._stopping = False

    def subscribe(self, subscriber: Subscriber) -> None:
        """Deliver every event to ``subscriber`` after the charger state it changes is recorded.

        Subscribers run in the order they subscribed; one that raises is logged and skipped.
        """
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Stop delivering events to ``subscriber`` (one that never subscribed is ignored)."""
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def server_stopping(self) -> None:
        """Strom is stopping: the disconnects that follow are its own, not the chargers'."""
        self._stopping = True

    async def publish(self, event: OcppEvent) -> None:
        """Record the event's effect on charger state, then deliver it to every subscriber.

        A disconnect that cannot be recorded (the database refuses writes: a full disk) is
        logged and still delivered: there is no charger left to answer, and the flag is set
        right at its next connection or Strom's next start. Any other event's failure raises,
        so the charger's message is answered with an error and sent again.
        """
        try:
            await self._record(event)
        except StorageError as exc:
            if not isinstance(event, ChargerOffline):
                raise
            log.warning("charger %s: its disconnect was not recorded: %s", event.charger_id, exc)
        for subscriber in list(self._subscribers):
            try:
                await subscriber(event)
            except Exception:  # a subscriber's bug must not break the charger's connection
                log.exception("charger %s: subscriber failed on %s", event.charger_id, event)

    async def _record(self, event: OcppEvent) -> None:
        if isinstance(event, ConnectorStatusChanged):
            if event.connector_id > 0 and self.orphans is not None:
                await self.orphans.connector_status(event)
            elif event.connector_id > 0:
                await self.chargers.set_status(
                    event.charger_id, event.connector_id, event.status, event.error_code, event.at
                )
        elif isinstance(event, ChargerBooted):
            if self.orphans is not None:
                await self.orphans.booted(event)
        elif isinstance(event, ChargerOnline):
            await self.chargers.set_online(event.charger_id, True, event.at)
        elif isinstance(event, ChargerOffline) and not self._stopping:
            await self.chargers.set_online(event.charger_id, False, event.at)
        elif isinstance(event, SecurityEventReported):
            await self.chargers.record_security_event(
                event.charger_id, event.kind, event.at, event.tech_info, self.chargers.clock.now()
            )
