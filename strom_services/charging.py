"""Effect handlers that act on chargers for sessions: start, stop, and the start timer.

Each handler is idempotent, because the outbox may run a row twice after a crash:

* ``remote_start`` sends RemoteStartTransaction only while the session is still waiting to
  start; the charger's answer becomes RemoteStartAccepted or RemoteStartRejected. An offline
  charger is a definite "not started" (nothing was sent). A timeout is *unknown* — the charger
  may start anyway — so nothing is decided and the start timer settles it.
* ``remote_stop`` sends RemoteStopTransaction while the session is stopping; a charger that is
  offline or refuses is asked again later (:class:`RetryLater`), because a charge that does not
  stop would overrun the budget. A refusal means, in OCPP 1.6, that the charger has no such
  ongoing transaction: Strom asks for the connector's status and arms the orphan check
  (:mod:`strom_services.orphans`), which ends the session after the grace period unless the charger
  still reports the transaction — so a charger that forgot it is not asked for ever.
* ``start_timeout`` delivers StartTimedOut; in any state past starting it is a no-op.
"""

from __future__ import annotations

import logging
from functools import partial

from strom_core.errors import IllegalTransition
from strom_core.ports import ChargerCommands, CommandStatus
from strom_core.session import State
from strom_core.session_events import RemoteStartAccepted, RemoteStartRejected, StartTimedOut
from strom_services.effects import Handler, RetryLater
from strom_services.orphans import OrphanWatch
from strom_storage.ocpp import reference_of
from strom_storage.outbox import OutboxRow
from strom_storage.sessions import SessionStore

__all__ = ["ChargingEffects"]

log = logging.getLogger(__name__)


class ChargingEffects:
    """Outbox handlers that drive chargers through :class:`ChargerCommands`."""

    def __init__(
        self,
        store: SessionStore,
        commands: ChargerCommands,
        orphans: OrphanWatch | None = None,
    ) -> None:
        self.store = store
        self.commands = commands
        self.orphans = orphans

    def handlers(self) -> dict[str, Handler]:
        """The handlers by outbox kind."""
        return {
            "remote_start": self.remote_start,
            "remote_stop": self.remote_stop,
            "start_timeout": self.start_timeout,
        }

    async def remote_start(self, row: OutboxRow) -> None:
        """Send RemoteStartTransaction for a paid session."""
        session_id = _session_id(row)
        session = await self.store.get(session_id)
        if session.state is not State.PAID:
            log.info("session %s: remote start skipped in state %s", session_id, session.state)
            return
        result = await self.commands.remote_start(
            row.payload["charger_id"], row.payload["connector_id"], row.payload["id_tag"]
        )
        log.info(
            "session %s: RemoteStartTransaction to %s connector %s: %s %s",
            session_id,
            session.charger_id,
            session.connector_id,
            result.status.value,
            result.detail,
        )
        if result.status is CommandStatus.TIMEOUT:
            return  # unknown: the start timer decides
        event = (
            RemoteStartAccepted()
            if result.accepted
            else RemoteStartRejected(f"{result.status.value} {result.detail}".strip())
        )
        await self._apply(session_id, event)

    async def remote_stop(self, row: OutboxRow) -> None:
        """Send RemoteStopTransaction for a stopping session."""
        session_id = _session_id(row)
        session = await self.store.get(session_id)
        if session.state is not State.STOPPING:
            return
        # The session keeps Strom's transaction id; the charger knows the transaction by its
        # reference (the id itself in OCPP 1.6, the charger's own transactionId in 2.0.1).
        charger_id = row.payload["charger_id"]
        transaction = await self.store.db.read(
            partial(reference_of, charger_id=charger_id, number=int(row.payload["transaction_id"]))
        )
        result = await self.commands.remote_stop(charger_id, transaction)
        log.info(
            "session %s: RemoteStopTransaction %s to %s: %s",
            session_id,
            transaction,
            charger_id,
            result.status.value,
        )
        if result.status in (CommandStatus.REJECTED, CommandStatus.ERROR):
            # It has no such ongoing transaction (OCPP 1.6). Still charging, or forgotten? Ask
            # for the connector's status; the orphan check decides after the grace period.
            if self.orphans is not None:
                await self.orphans.stop_rejected(session_id)
            await self.commands.trigger_status(session.charger_id, session.connector_id)
        if not result.accepted:
            raise RetryLater(f"charger answered {result.status.value} to RemoteStop")

    async def start_timeout(self, row: OutboxRow) -> None:
        """Give up waiting for the vehicle: the payment becomes refundable."""
        await self._apply(_session_id(row), StartTimedOut())

    async def _apply(
        self, session_id: str, event: RemoteStartAccepted | RemoteStartRejected | StartTimedOut
    ) -> None:
        try:
            await self.store.apply(session_id, event)
        except IllegalTransition as exc:
            # The session moved on meanwhile (e.g. the charger started before answering).
            log.info("session %s: %s", session_id, exc)


def _session_id(row: OutboxRow) -> str:
    if row.session_id is None:
        raise ValueError(f"outbox row {row.id} ({row.kind}) has no session")
    return row.session_id
