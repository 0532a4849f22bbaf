"""Migration 0007: OCPP 2.0.1 references join a database full of OCPP 1.6 transactions.

The database is migrated to 0006, filled the way Strom filled it then (a 1.6 transaction
charging a session, a refused one, an unknown stop), upgraded, and used: the old rows keep
working, their replay key still holds, and 2.0.1 rows go beside them. Downgrading gives the
old schema back while only 1.6 rows exist, and refuses to drop a 2.0.1 reference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Insert, func, insert, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_core.ports import Authorization
from strom_core.session import State
from strom_core.session_events import PaymentSettled, TransactionStarted
from strom_services.ocpp_core import DatabaseOcppCore
from strom_storage.db import MIGRATIONS, Database
from strom_storage.schema import ocpp_transactions, ocpp_unknown_stops
from strom_storage.sessions import SessionStore
from tests.storage.test_session_store import make

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
_ALLOCATOR = text("INSERT INTO id_allocator (name, next_value) VALUES ('ocpp_transaction', 7)")


def _transaction(number: int, tag: str, status: str, session: str | None) -> Insert:
    return insert(ocpp_transactions).values(
        id=number,
        charger_id="cp1",
        connector_id=1,
        id_tag=tag,
        status=status,
        session_id=session,
        meter_start_wh=1_000,
        started_at=T0,
        created_at=T0,
    )


async def _downgrade(db: Database, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.transaction() as conn:
        await conn.run_sync(run)


async def _at_0006_with_16_rows(db: Database) -> SessionStore:
    """Strom before 0007: session s1 charging in 1.6 transaction 5, a refused 6, a stop of 999."""
    await db.upgrade("0006")
    # Today's session store writes columns later revisions added: give them to it while it
    # writes the session, then take them away again (the row is as 0006 kept it).
    later = (
        "payer VARCHAR(56) NOT NULL DEFAULT ''",
        "postpaid_msat BIGINT NOT NULL DEFAULT 0",
        "reserve_minutes INTEGER NOT NULL DEFAULT 0",
        "reservation_fee_msat BIGINT NOT NULL DEFAULT 0",
        "reserved_until TIMESTAMP",
        "reservation_id INTEGER",
        "price_schedule JSON",
        "interval_wh JSON NOT NULL DEFAULT '[]'",
        "idle_since TIMESTAMP",
        "idle_s INTEGER NOT NULL DEFAULT 0",
        "fiat JSON",
    )
    later_outbox = ("charger_id VARCHAR(48)", "lease VARCHAR(100)")
    async with db.transaction() as conn:
        for column in later:
            await conn.execute(text(f"ALTER TABLE sessions ADD COLUMN {column}"))
        for column in later_outbox:
            await conn.execute(text(f"ALTER TABLE outbox ADD COLUMN {column}"))
    store = await make(db)
    await store.apply("s1", PaymentSettled("h1", 5_000_000))
    await store.apply("s1", TransactionStarted(5, 1_000, T0))
    async with db.transaction() as conn:
        for column in later:
            await conn.execute(text(f"ALTER TABLE sessions DROP COLUMN {column.split()[0]}"))
        for column in later_outbox:
            await conn.execute(text(f"ALTER TABLE outbox DROP COLUMN {column.split()[0]}"))
    async with db.transaction() as conn:  # the columns 0006 has, written as Strom wrote them
        for number, tag, status, session in (
            (5, "Ts1", "Accepted", "s1"),
            (6, "X", "Invalid", None),
        ):
            await conn.execute(_transaction(number, tag, status, session))
        await conn.execute(
            insert(ocpp_unknown_stops).values(
                charger_id="cp1",
                transaction_id=999,
                meter_stop_wh=5_000,
                stopped_at=T0,
                reason="PowerLoss",
                received_at=T0,
            )
        )
        await conn.execute(_ALLOCATOR)
    return store


async def test_1_6_rows_keep_working_after_the_upgrade_and_2_0_1_rows_join_them(
    empty_db: Database,
) -> None:
    db = empty_db
    core = DatabaseOcppCore(await _at_0006_with_16_rows(db))
    await db.upgrade()
    # The old transaction 5 is still its charger's "5": its start replays.
    replay = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0)
    assert (replay.transaction, replay.status, replay.replayed) == (
        "5",
        Authorization.ACCEPTED,
        True,
    )
    # The old unknown stop is still the one record of 999.
    assert not (await core.stop_transaction("cp1", "999", 5_000, T0, "PowerLoss", None)).known
    # 2.0.1 transactions go beside: cp2's "5", and cp1's "tx-1", numbered on from the old ids.
    other = await core.start_transaction("cp2", 1, "Y", 0, T0, transaction="5")
    assert (other.transaction, other.replayed) == ("5", False)
    await core.start_transaction("cp1", 2, "Z", 0, T0, transaction="tx-1")
    # The old transaction's stop bills its session once.
    stop = await core.stop_transaction("cp1", "5", 3_000, T0 + timedelta(minutes=9), "Local", None)
    assert (stop.known, stop.replayed) == (True, False)
    session = await core.store.get("s1")
    assert (session.state, session.energy_wh) == (State.STOPPED, 2_000)
    async with db.reader() as conn:
        numbers = set(await conn.scalars(select(ocpp_transactions.c.id)))
        assert await conn.scalar(select(func.count()).select_from(ocpp_unknown_stops)) == 1
    assert numbers == {5, 6, 7, 8}


async def test_the_16_replay_key_still_holds_for_16_rows_after_the_upgrade(
    empty_db: Database,
) -> None:
    db = empty_db
    await _at_0006_with_16_rows(db)
    await db.upgrade()
    again = _transaction(50, "Ts1", "Accepted", None)  # transaction 5's five values
    async with db.transaction() as conn:
        with pytest.raises(IntegrityError):
            await conn.execute(again)


async def test_downgrading_gives_the_old_schema_back_with_the_16_rows(
    empty_db: Database,
) -> None:
    db = empty_db
    await _at_0006_with_16_rows(db)
    await db.upgrade()
    await _downgrade(db, "0006")
    async with db.reader() as conn:
        numbers = set(await conn.scalars(text("SELECT id FROM ocpp_transactions")))
        stops = list(await conn.scalars(text("SELECT transaction_id FROM ocpp_unknown_stops")))
    assert (numbers, stops) == ({5, 6}, [999])
    await db.upgrade()  # and up again


async def test_downgrading_refuses_to_drop_a_201_reference(empty_db: Database) -> None:
    db = empty_db
    core = DatabaseOcppCore(await _at_0006_with_16_rows(db))
    await db.upgrade()
    await core.start_transaction("cp2", 1, "Y", 0, T0, transaction="tx-1")
    with pytest.raises(RuntimeError, match=r"OCPP 2\.0\.1 transaction reference"):
        await _downgrade(db, "0006")
    async with db.reader() as conn:
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert version == ScriptDirectory.from_config(config).get_current_head()  # nothing undone
