"""The core's side of OCPP: idTag authorisation, transaction records, meter samples.

Implements :class:`strom_core.ports.OcppCore` on the database. Each call is one database transaction
that records what the charger said *and* advances the session it belongs to, so the two can
never disagree after a crash. Rules (see docs/architecture.md):

* An idTag is accepted only if Strom issued it for a paid session on that charger and
  connector that has not started yet; a tag whose session is already charging gets
  ``ConcurrentTx``; anything else is ``Invalid``.
* Transaction ids come from the persisted ``id_allocator`` (never from the clock), so they are
  unique and increasing across restarts.
* A StartTransaction resent after a reconnect (same charger, connector, idTag, meterStart and
  timestamp) gets the same id and status and changes nothing. A StopTransaction for a stopped
  transaction changes nothing. A StopTransaction for an unknown id is recorded in
  ``ocpp_unknown_stops`` and answered, never guessed onto a connector.
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
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from strom_core.errors import IllegalTransition
from strom_core.ports import AuthorizationStatus, MeterSample, StartDecision, StopDecision
from strom_core.session import (
    MeterReading,
    State,
    TransactionStarted,
    TransactionStopped,
    Transition,
)
from strom_services.orphans import record_stop_discrepancy
from strom_storage.schema import id_allocator, meter_readings, ocpp_transactions, ocpp_unknown_stops
from strom_storage.sessions import SessionStore

__all__ = ["REFUSED", "DatabaseOcppCore", "allocate_id"]

log = logging.getLogger(__name__)

_STARTABLE = (State.PAID, State.STARTING)
_IN_USE = (State.CHARGING, State.STOPPING)
_METERED = (State.CHARGING, State.STOPPING)
REFUSED = "Refused"  # ``stop_reason`` of a StartTransaction Strom refused (closed at once)


async def allocate_id(conn: AsyncConnection, name: str) -> int:
    """Take the next value of a persisted monotonic counter (starts at 1)."""
    row = (
        await conn.execute(
            update(id_allocator)
            .where(id_allocator.c.name == name)
            .values(next_value=id_allocator.c.next_value + 1)
            .returning(id_allocator.c.next_value)
        )
    ).first()
    if row is not None:
        return int(row[0]) - 1
    await conn.execute(insert(id_allocator).values(name=name, next_value=2))
    return 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


class DatabaseOcppCore:
    """:class:`strom_core.ports.OcppCore` backed by the session store.

    Args:
        store: the session store.
        clock: when a record was received (UTC).
    """

    def __init__(self, store: SessionStore, clock: Callable[[], datetime] = _utcnow) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock

    async def authorize(self, charger_id: str, id_tag: str) -> AuthorizationStatus:
        """Answer Authorize.req (see module docstring for the rule)."""
        async with self.db.reader() as conn:
            session = await self.store.find_by_id_tag(conn, id_tag)
        if session is None or session.charger_id != charger_id:
            return AuthorizationStatus.INVALID
        if session.state in _STARTABLE:
            return AuthorizationStatus.ACCEPTED
        if session.state in _IN_USE:
            return AuthorizationStatus.CONCURRENT_TX
        return AuthorizationStatus.INVALID

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
    ) -> StartDecision:
        """Record StartTransaction.req; replays return the first answer."""
        transitions: list[Transition] = []
        async with self.db.transaction() as conn:
            replay = (
                await conn.execute(
                    select(ocpp_transactions.c.id, ocpp_transactions.c.status).where(
                        ocpp_transactions.c.charger_id == charger_id,
                        ocpp_transactions.c.connector_id == connector_id,
                        ocpp_transactions.c.id_tag == id_tag,
                        ocpp_transactions.c.meter_start_wh == meter_start_wh,
                        ocpp_transactions.c.started_at == timestamp,
                    )
                )
            ).first()
            if replay is not None:
                return StartDecision(replay.id, AuthorizationStatus(replay.status), replayed=True)
            transaction_id = await allocate_id(conn, "ocpp_transaction")
            session = await self.store.find_by_id_tag(conn, id_tag)
            status = AuthorizationStatus.INVALID
            session_id = None
            if (
                session is not None
                and session.charger_id == charger_id
                and session.connector_id == connector_id
            ):
                if session.state in _STARTABLE:
                    status = AuthorizationStatus.ACCEPTED
                    session_id = session.id
                elif session.state in _IN_USE:
                    status = AuthorizationStatus.CONCURRENT_TX
            refused = status is not AuthorizationStatus.ACCEPTED
            await conn.execute(
                insert(ocpp_transactions).values(
                    id=transaction_id,
                    charger_id=charger_id,
                    connector_id=connector_id,
                    id_tag=id_tag,
                    status=status.value,
                    session_id=session_id,
                    meter_start_wh=meter_start_wh,
                    started_at=timestamp,
                    # Refused: closed at once, the station sends no StopTransaction for it.
                    stopped_at=timestamp if refused else None,
                    stop_reason=REFUSED if refused else None,
                    created_at=self.clock(),
                )
            )
            if session_id is not None:
                event = TransactionStarted(transaction_id, meter_start_wh, timestamp)
                transitions.append(await self.store.apply_in(conn, session_id, event))
        self.store.committed(transitions)
        log.info(
            "charger %s connector %s: transaction %s for idTag %s: %s (session %s)",
            charger_id,
            connector_id,
            transaction_id,
            id_tag,
            status.value,
            session_id,
        )
        return StartDecision(transaction_id, status)

    async def stop_transaction(
        self,
        charger_id: str,
        transaction_id: int,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> StopDecision:
        """Record StopTransaction.req; the session's final bill is made in the same commit."""
        transitions: list[Transition] = []
        async with self.db.transaction() as conn:
            row = (
                await conn.execute(
                    select(ocpp_transactions).where(
                        ocpp_transactions.c.id == transaction_id,
                        ocpp_transactions.c.charger_id == charger_id,
                    )
                )
            ).first()
            if row is None:
                await self._record_unknown_stop(
                    conn, charger_id, transaction_id, meter_stop_wh, timestamp, reason, id_tag
                )
                return StopDecision(known=False)
            if row.meter_stop_wh is not None:
                return StopDecision(known=True, replayed=True)
            await conn.execute(
                update(ocpp_transactions)
                .where(ocpp_transactions.c.id == transaction_id)
                .values(meter_stop_wh=meter_stop_wh, stopped_at=timestamp, stop_reason=reason)
            )
            if row.session_id is not None:
                event = TransactionStopped(meter_stop_wh, timestamp, reason)
                try:
                    transition = await self.store.apply_in(conn, row.session_id, event)
                    transitions.append(transition)
                    if transition.changed:
                        await record_stop_discrepancy(
                            conn,
                            transition.session,
                            transaction_id,
                            meter_stop_wh,
                            datetime.now(UTC),
                        )
                except IllegalTransition as exc:
                    log.warning(
                        "charger %s transaction %s: stop not applied to session %s: %s",
                        charger_id,
                        transaction_id,
                        row.session_id,
                        exc,
                    )
        self.store.committed(transitions)
        return StopDecision(known=True)

    async def _record_unknown_stop(
        self,
        conn: AsyncConnection,
        charger_id: str,
        transaction_id: int,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> None:
        log.warning(
            "charger %s: StopTransaction for unknown transaction %s recorded, not matched",
            charger_id,
            transaction_id,
        )
        dialect_insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        await conn.execute(
            dialect_insert(ocpp_unknown_stops)
            .values(
                charger_id=charger_id,
                transaction_id=transaction_id,
                meter_stop_wh=meter_stop_wh,
                stopped_at=timestamp,
                reason=reason,
                id_tag=id_tag,
                received_at=self.clock(),
            )
            .on_conflict_do_nothing(index_elements=["charger_id", "transaction_id"])
        )

    async def record_meter(self, sample: MeterSample) -> None:
        """Store a meter sample and re-bill the session it belongs to."""
        transitions: list[Transition] = []
        async with self.db.transaction() as conn:
            dialect_insert = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
            await conn.execute(
                dialect_insert(meter_readings)
                .values(
                    charger_id=sample.charger_id,
                    connector_id=sample.connector_id,
                    transaction_id=sample.transaction_id,
                    register_wh=sample.register_wh,
                    sampled_at=sample.at,
                )
                .on_conflict_do_nothing()
            )
            session_id = await conn.scalar(
                select(ocpp_transactions.c.session_id).where(
                    ocpp_transactions.c.id == sample.transaction_id,
                    ocpp_transactions.c.charger_id == sample.charger_id,
                )
            )
            if session_id is not None:
                session = await self.store.get(session_id, conn)
                if session.state in _METERED:
                    event = MeterReading(sample.register_wh, sample.at)
                    transitions.append(await self.store.apply_in(conn, session_id, event))
        self.store.committed(transitions)
