"""One transaction = one hop: ``Database.write`` and ``Database.read`` run a whole transaction as
one synchronous function (SQLite: on the writer or a reader thread; PostgreSQL: on a thread
over psycopg), with the same guarantees as the per-statement ``transaction()`` (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection

from strom_storage.db import Database


def _create(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE hop_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
    conn.execute(text("INSERT INTO hop_counter (id, n) VALUES (1, 0)"))


def _count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT n FROM hop_counter WHERE id = 1")).scalar_one())


def _increment(conn: Connection) -> int:
    # Read, then write what was read plus one: only a serialised writer (SQLite) or a row
    # lock (PostgreSQL) keeps every increment.
    lock = " FOR UPDATE" if conn.dialect.name == "postgresql" else ""
    n = int(conn.execute(text(f"SELECT n FROM hop_counter WHERE id = 1{lock}")).scalar_one())
    conn.execute(text("UPDATE hop_counter SET n = :n WHERE id = 1"), {"n": n + 1})
    return n + 1


async def test_a_write_commits_what_it_returns_and_a_read_sees_it(db: Database) -> None:
    await db.write(_create)
    assert await db.write(_increment) == 1
    assert await db.read(_count) == 1


async def test_a_failing_write_changes_nothing_and_raises_its_error(db: Database) -> None:
    await db.write(_create)

    def increment_then_fail(conn: Connection) -> None:
        _increment(conn)
        raise LookupError("the caller's own error")

    with pytest.raises(LookupError, match="the caller's own error"):
        await db.write(increment_then_fail)
    assert await db.read(_count) == 0


async def test_concurrent_writes_keep_every_increment(db: Database) -> None:
    await db.write(_create)
    results = await asyncio.gather(*(db.write(_increment) for _ in range(40)))
    assert sorted(results) == list(range(1, 41))
    assert await db.read(_count) == 40


async def test_one_hop_and_per_statement_writers_take_turns(db: Database) -> None:
    await db.write(_create)

    async def old_style() -> None:
        async with db.transaction() as conn:
            lock = " FOR UPDATE" if db.dialect == "postgresql" else ""
            row = await conn.execute(text(f"SELECT n FROM hop_counter WHERE id = 1{lock}"))
            n = int(row.scalar_one())
            await asyncio.sleep(0)  # let a one-hop writer try to slip in between
            await conn.execute(text("UPDATE hop_counter SET n = :n WHERE id = 1"), {"n": n + 1})

    await asyncio.gather(
        *(f() for _ in range(10) for f in (old_style, lambda: db.write(_increment)))
    )
    assert await db.read(_count) == 20


async def test_a_cancelled_caller_does_not_cut_the_transaction_in_half(sqlite_db: Database) -> None:
    db = sqlite_db
    await db.write(_create)
    entered, leave = threading.Event(), threading.Event()

    def slow_increment(conn: Connection) -> int:
        entered.set()
        leave.wait(5)
        return _increment(conn)

    caller = asyncio.ensure_future(db.write(slow_increment))
    await asyncio.to_thread(entered.wait, 5)
    caller.cancel()
    leave.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # The transaction ran to its commit, and the writer's turn was passed on.
    assert await asyncio.wait_for(db.write(_increment), 5) == 2
    assert await db.read(_count) == 2


async def test_a_write_runs_on_the_writer_thread_not_the_event_loop(sqlite_db: Database) -> None:
    def where(_conn: Connection) -> str:
        return threading.current_thread().name

    assert (await sqlite_db.write(where)).startswith("strom-db-writer")
    assert (await sqlite_db.read(where)).startswith("strom-db-reader")


@pytest.mark.postgres
async def test_a_pooled_postgres_connection_killed_while_idle_is_replaced_not_failed(
    postgres_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL restart (or a proxy's idle timeout) closes pooled connections under Strom;
    the next transaction must get a live one instead of failing with "server closed the
    connection". Strom checks a connection that sat idle before it hands it out."""
    db = postgres_db
    await db.write(_create)
    pid = await db.read(
        lambda conn: int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    )

    # Killed from outside the pool, as a server restart would; the pool holds only the one
    # connection the writes above used, so the next transaction is handed the dead one.
    async with db.engine.begin() as admin:
        killed = await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert killed.scalar_one()
    monkeypatch.setattr("strom_storage.db.IDLE_PING_S", 0.0)
    assert await db.write(_increment) == 1
    assert await db.read(_count) == 1
