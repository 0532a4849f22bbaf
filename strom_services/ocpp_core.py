"""The core's side of OCPP: idTag authorisation, transaction records, meter samples.

Implements :class:`strom_core.ports.OcppCore` on the database. Each call is one database transaction
that records what the charger said *and* advances the session it belongs to, so the two can
never disagree after a crash. Rules (see docs/architecture.md):

* An idTag is accepted only if Strom issued it for a paid session on that charger and
  connector that has not started yet; a tag whose session is already charging is ``IN_USE``
  (OCPP 1.6 ``ConcurrentTx``); anything else is ``INVALID``.
* Transaction ids come from the persisted ``id_allocator`` (never from the clock), so they are
  unique and increasing across restarts; the port carries them as string references
  (``"17"``), mapped to the integer columns in :mod:`strom_storage.ocpp`.
* A StartTransaction resent after a reconnect (same charger, connector, idTag, meterStart and
  timestamp) gets the same id and status and changes nothing. A StopTransaction for a stopped
  transaction changes nothing. A StopTransaction for an unknown id is recorded in
  ``ocpp_unknown_stops`` and answered, never guessed onto a connector.
* The SQL is in :mod:`strom_storage.ocpp`; this module decides.
* A transaction is open until its StopTransaction is recorded (``stopped_at``). A
  StartTransaction that Strom refuses (``Invalid``, ``ConcurrentTx``) is recorded closed at
  once (``stop_reason`` ``Refused``): the station never sends a StopTransaction for it, and
  nothing should wait for one. If one comes anyway, it is recorded and bills nothing.
* A StopTransaction whose meterStop is below a register the charger reported during the
  transaction, or that comes after the session was ended as lost, is recorded for the
  operator (:func:`strom_services.orphans.record_stop_discrepancy`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import IllegalTransition
from strom_core.ports import Authorization, MeterSample, StartDecision, StopDecision
from strom_core.session import Session, State, Transition
from strom_core.session_events import MeterReading, TransactionStarted, TransactionStopped
from strom_services.orphans import record_stop_discrepancy
from strom_storage import ocpp as records
from strom_storage.sessions import SessionStore

__all__ = ["DatabaseOcppCore"]

log = logging.getLogger(__name__)

_STARTABLE = (State.PAID, State.STARTING)
_IN_USE = (State.CHARGING, State.STOPPING)
_METERED = (State.CHARGING, State.STOPPING)


def _start_status(session: Session | None, charger_id: str, connector_id: int) -> Authorization:
    if session is None or session.charger_id != charger_id or session.connector_id != connector_id:
        return Authorization.INVALID
    if session.state in _STARTABLE:
        return Authorization.ACCEPTED
    if session.state in _IN_USE:
        return Authorization.IN_USE
    return Authorization.INVALID


class DatabaseOcppCore:
    """:class:`strom_core.ports.OcppCore` backed by the session store.

    Args:
        store: the session store.
        clock: Strom's clock (when a record was received).
    """

    def __init__(self, store: SessionStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock

    async def authorize(self, charger_id: str, id_tag: str) -> Authorization:
        """Authorise an idTag (see module docstring for the rule)."""
        async with self.db.reader() as conn:
            session = await self.store.find_by_id_tag(conn, id_tag)
        if session is None or session.charger_id != charger_id:
            return Authorization.INVALID
        if session.state in _STARTABLE:
            return Authorization.ACCEPTED
        if session.state in _IN_USE:
            return Authorization.IN_USE
        return Authorization.INVALID

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
    ) -> StartDecision:
        """Record a started transaction; replays return the first answer."""
        transitions: list[Transition] = []
        async with self.db.transaction() as conn:
            replay = await records.find_replayed_start(
                conn, charger_id, connector_id, id_tag, meter_start_wh, timestamp
            )
            if replay is not None:
                number, recorded = replay
                return StartDecision(records.transaction_reference(number), recorded, True)
            number = await records.allocate_id(conn, records.TRANSACTION_COUNTER)
            session = await self.store.find_by_id_tag(conn, id_tag)
            status = _start_status(session, charger_id, connector_id)
            session_id = (
                session.id if session is not None and status is Authorization.ACCEPTED else None
            )
            await records.insert_transaction(
                conn,
                number=number,
                charger_id=charger_id,
                connector_id=connector_id,
                id_tag=id_tag,
                status=status,
                session_id=session_id,
                meter_start_wh=meter_start_wh,
                started_at=timestamp,
                created_at=self.clock.now(),
            )
            if session_id is not None:
                event = TransactionStarted(number, meter_start_wh, timestamp)
                transitions.append(await self.store.apply_in(conn, session_id, event))
        self.store.committed(transitions)
        log.info(
            "charger %s connector %s: transaction %s for idTag %s: %s (session %s)",
            charger_id,
            connector_id,
            number,
            id_tag,
            status.value,
            session_id,
        )
        return StartDecision(records.transaction_reference(number), status)

    async def stop_transaction(
        self,
        charger_id: str,
        transaction: str,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> StopDecision:
        """Record a stopped transaction; the session's final bill is made in the same commit."""
        number = records.transaction_number(transaction)
        if number is None:
            log.warning(
                "charger %s: stop of transaction %r, which Strom cannot have started, not matched",
                charger_id,
                transaction[:40],
            )
            return StopDecision(known=False)
        transitions: list[Transition] = []
        async with self.db.transaction() as conn:
            row = await records.find_transaction(conn, charger_id, number)
            if row is None:
                log.warning(
                    "charger %s: StopTransaction for unknown transaction %s recorded, not matched",
                    charger_id,
                    number,
                )
                await records.record_unknown_stop(
                    conn,
                    charger_id=charger_id,
                    number=number,
                    meter_stop_wh=meter_stop_wh,
                    stopped_at=timestamp,
                    reason=reason,
                    id_tag=id_tag,
                    received_at=self.clock.now(),
                )
                return StopDecision(known=False)
            if row.meter_stop_wh is not None:
                return StopDecision(known=True, replayed=True)
            await records.record_stop(conn, number, meter_stop_wh, timestamp, reason)
            if row.session_id is not None:
                event = TransactionStopped(meter_stop_wh, timestamp, reason)
                try:
                    transition = await self.store.apply_in(conn, row.session_id, event)
                    transitions.append(transition)
                    if transition.changed:
                        await record_stop_discrepancy(
                            conn, transition.session, number, meter_stop_wh, self.clock.now()
                        )
                except IllegalTransition as exc:
                    log.warning(
                        "charger %s transaction %s: stop not applied to session %s: %s",
                        charger_id,
                        number,
                        row.session_id,
                        exc,
                    )
        self.store.committed(transitions)
        return StopDecision(known=True)

    async def record_meter(self, sample: MeterSample) -> None:
        """Store a meter sample and re-bill the session it belongs to."""
        number = records.transaction_number(sample.transaction)
        if number is None:
            log.info(
                "charger %s: sample of transaction %r, which Strom cannot have started, dropped",
                sample.charger_id,
                sample.transaction[:40],
            )
            return
        transitions: list[Transition] = []
        async with self.db.transaction() as conn:
            await records.insert_meter_reading(
                conn,
                charger_id=sample.charger_id,
                connector_id=sample.connector_id,
                number=number,
                register_wh=sample.register_wh,
                sampled_at=sample.at,
            )
            session_id = await records.session_of_transaction(conn, sample.charger_id, number)
            if session_id is not None:
                session = await self.store.get(session_id, conn)
                if session.state in _METERED:
                    event = MeterReading(sample.register_wh, sample.at)
                    transitions.append(await self.store.apply_in(conn, session_id, event))
        self.store.committed(transitions)
