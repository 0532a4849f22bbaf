"""A session changes only through SessionStore.apply: atomically, idempotently, journaled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.errors import IllegalTransition, LedgerError, StorageError
from strom_core.session import State, new_session
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    RefundClaimed,
    RefundPaid,
    RemoteStartAccepted,
    RemoteStartRejected,
    StopReason,
    StopRequested,
    TransactionStarted,
    TransactionStopped,
)
from strom_core.tariff import Tariff
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.schema import ledger_entries, outbox, sessions
from strom_storage.sessions import SessionStore, ledger_totals

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
TARIFF = Tariff(energy_msat_per_kwh=300_000, session_fee_msat=10_000, min_prepay_msat=20_000)


async def make(db: Database, session_id: str = "s1") -> SessionStore:
    profile = ProfileConfig(
        id="cp1",
        name="Test charger",
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=(ConnectorConfig(id=1, max_power_kw=11),),
        tariff=TariffConfig(per_kwh_sat=300),
    )
    await ChargerStore(db).sync((profile,))
    store = SessionStore(db)
    session = new_session(
        session_id=session_id,
        charger_id="cp1",
        connector_id=1,
        id_tag=f"T{session_id}",
        tariff=TARIFF,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=90,
    )
    await store.create(session, secret="x" * 32, initiator="lnurl", now=T0)
    return store


async def count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    async with db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_full_session_is_journaled_and_balances(db: Database) -> None:
    store = await make(db)
    await store.apply("s1", PaymentSettled("h1", 5_000_000))
    await store.apply("s1", RemoteStartAccepted())
    await store.apply("s1", TransactionStarted(7, 1_000, T0))
    await store.apply("s1", MeterReading(3_000, T0 + timedelta(minutes=5)))
    await store.apply("s1", StopRequested(StopReason.INITIATOR))
    await store.apply("s1", TransactionStopped(4_000, T0 + timedelta(minutes=9)))
    stopped = await store.get("s1")
    assert stopped.state is State.STOPPED
    await store.apply("s1", RefundClaimed("r1", stopped.refundable_msat))
    await store.apply("s1", RefundPaid("r1", fee_msat=2))
    final = await store.get("s1")
    assert final.state is State.REFUNDED
    totals = await db.read(lambda conn: ledger_totals(conn, "s1"))
    assert totals == {
        "payment": 5_000_000,
        "consumption": 910_000,
        "refund": 4_090_000,
        "refund_fee": 2,
    }
    assert totals["payment"] == totals["consumption"] + totals["refund"]


async def test_replayed_event_writes_nothing_twice(db: Database) -> None:
    store = await make(db)
    await store.apply("s1", PaymentSettled("h1", 50_000))
    entries, effects = await count(db, ledger_entries), await count(db, outbox)
    again = await store.apply("s1", PaymentSettled("h1", 50_000))
    assert again.changed is False
    assert (await count(db, ledger_entries), await count(db, outbox)) == (entries, effects)
    assert (await store.get("s1")).paid_msat == 50_000


async def test_illegal_event_changes_nothing_in_the_database(db: Database) -> None:
    store = await make(db)
    await store.apply("s1", PaymentSettled("h1", 50_000))
    await store.apply("s1", RemoteStartRejected("Rejected"))

    async def snapshot() -> tuple[object, ...]:
        async with db.reader() as conn:
            rows = (await conn.execute(select(sessions))).all()
        return (rows, await count(db, ledger_entries), await count(db, outbox))

    before = await snapshot()
    with pytest.raises(IllegalTransition):
        await store.apply("s1", TransactionStopped(10, T0))
    with pytest.raises(LedgerError):
        await store.apply("s1", RefundClaimed("r1", 50_001))
    assert await snapshot() == before


async def test_concurrent_refund_claims_debit_the_balance_once(db: Database) -> None:
    store = await make(db)
    await store.apply("s1", PaymentSettled("h1", 50_000))
    await store.apply("s1", RemoteStartRejected("Rejected"))

    async def claim(n: int) -> bool:
        try:
            await store.apply("s1", RefundClaimed(f"r{n}", 50_000))
        except (IllegalTransition, StorageError):
            return False
        return True

    results = await asyncio.gather(*(claim(n) for n in range(20)))
    assert results.count(True) == 1
    session = await store.get("s1")
    assert (session.state, session.refund_in_flight_msat, session.refundable_msat) == (
        State.REFUND_PENDING,
        50_000,
        0,
    )


async def test_effects_are_queued_with_the_change(db: Database) -> None:
    store = await make(db)
    await store.apply("s1", PaymentSettled("h1", 50_000))
    async with db.reader() as conn:
        kinds = sorted((await conn.execute(select(outbox.c.kind))).scalars())
        timer = (
            await conn.execute(select(outbox.c.run_after).where(outbox.c.kind == "start_timeout"))
        ).scalar_one()
    assert kinds == ["notify", "remote_start", "start_timeout"]
    assert timer > datetime.now(UTC) + timedelta(seconds=60)
