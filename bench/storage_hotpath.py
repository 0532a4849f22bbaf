"""The storage hot path between a settled payment and RemoteStart, per statement and per hop.

Four transactions sit between ``settle()`` and the RemoteStartTransaction CALL: settle's own
(lock the payment and the session, mark them, write the ledger entry and the outbox row), the
effect runner's ``due`` read, the handler's read of the session, and marking the row done.
This script runs exactly those statements, on the real schema in a fresh SQLite file, two
ways in one run: through the per-statement ``Database.transaction()`` (SQLAlchemy async over
aiosqlite: one await, and thread hops, per statement) and through the one-hop
``Database.write()``/``read()`` (the whole transaction as one function on the database thread).
It prints the latency of the four together (p50/p99) and the event-loop CPU they cost.

With ``--postgres URL`` (``postgresql+asyncpg://…``) the same runs on PostgreSQL in a schema of
its own (dropped afterwards), four ways: per statement (SQLAlchemy async over asyncpg), the
one-hop functions through ``AsyncConnection.run_sync`` over asyncpg, the same functions on a
thread over psycopg (what Strom uses), and the same four transactions written directly on
asyncpg (hand-written SQL, asyncpg's prepared-statement cache, no SQLAlchemy).

    .venv/bin/python bench/storage_hotpath.py --sessions 2000
    .venv/bin/python bench/storage_hotpath.py --sessions 2000 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from _common import quiet, result
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from strom_storage.db import Database
from strom_storage.schema import chargers, ledger_entries, outbox, payments, sessions

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def _session_row(n: int) -> dict[str, Any]:
    return {
        "id": f"s{n:08d}",
        "charger_id": "cp-bench",
        "connector_id": 1,
        "id_tag": f"t{n:08d}",
        "state": "pending_payment",
        "version": 0,
        "secret_hash": "0" * 64,
        "initiator": "lnurl",
        "tariff": {},
        "power_w": 11_000,
        "meter_interval_s": 10,
        "start_timeout_s": 60,
        "applied": [],
        "created_at": NOW,
        "updated_at": NOW,
    }


def _payment_row(n: int) -> dict[str, Any]:
    return {
        "payment_hash": f"{n:064x}",
        "session_id": f"s{n:08d}",
        "kind": "initial",
        "amount_msat": 2_000_000,
        "bolt11": "lnbcrt1bench",
        "state": "pending",
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }


def _seed(conn: Connection, count: int) -> None:
    conn.execute(
        insert(chargers).values(id="cp-bench", name="bench", created_at=NOW, updated_at=NOW)
    )
    conn.execute(insert(sessions), [_session_row(n) for n in range(2 * count)])
    conn.execute(insert(payments), [_payment_row(n) for n in range(2 * count)])


# --- the four transactions, one hop each ----------------------------------------------------------


def settle_one_hop(conn: Connection, n: int) -> None:
    paid = conn.execute(
        select(payments.c.state).where(payments.c.payment_hash == f"{n:064x}")
    ).scalar_one()
    assert paid == "pending"
    conn.execute(
        update(payments)
        .where(payments.c.payment_hash == f"{n:064x}")
        .values(state="settled", settled_at=NOW)
    )
    row = conn.execute(select(sessions).where(sessions.c.id == f"s{n:08d}")).one()
    conn.execute(
        update(sessions)
        .where(sessions.c.id == row.id, sessions.c.version == row.version)
        .values(state="paid", version=row.version + 1, paid_msat=2_000_000, updated_at=NOW)
    )
    conn.execute(
        insert(ledger_entries).values(
            session_id=row.id,
            kind="payment",
            natural_key=f"payment:{n:064x}",
            amount_msat=2_000_000,
            created_at=NOW,
        )
    )
    conn.execute(
        insert(outbox).values(
            idempotency_key=f"remote_start:{row.id}",
            session_id=row.id,
            kind="remote_start",
            payload={"session_id": row.id},
            state="pending",
            run_after=NOW,
            created_at=NOW,
        )
    )


def due_one_hop(conn: Connection) -> list[Any]:
    return list(
        conn.execute(
            select(outbox).where(outbox.c.state == "pending", outbox.c.run_after <= NOW).limit(50)
        )
    )


def get_one_hop(conn: Connection, n: int) -> Any:
    return conn.execute(select(sessions).where(sessions.c.id == f"s{n:08d}")).one()


def done_one_hop(conn: Connection, n: int) -> None:
    conn.execute(
        update(outbox)
        .where(outbox.c.idempotency_key == f"remote_start:s{n:08d}")
        .values(state="done", done_at=NOW)
    )


# --- the same statements, one await each ----------------------------------------------------------


async def settle_per_statement(conn: AsyncConnection, n: int) -> None:
    paid = (
        await conn.execute(select(payments.c.state).where(payments.c.payment_hash == f"{n:064x}"))
    ).scalar_one()
    assert paid == "pending"
    await conn.execute(
        update(payments)
        .where(payments.c.payment_hash == f"{n:064x}")
        .values(state="settled", settled_at=NOW)
    )
    row = (await conn.execute(select(sessions).where(sessions.c.id == f"s{n:08d}"))).one()
    await conn.execute(
        update(sessions)
        .where(sessions.c.id == row.id, sessions.c.version == row.version)
        .values(state="paid", version=row.version + 1, paid_msat=2_000_000, updated_at=NOW)
    )
    await conn.execute(
        insert(ledger_entries).values(
            session_id=row.id,
            kind="payment",
            natural_key=f"payment:{n:064x}",
            amount_msat=2_000_000,
            created_at=NOW,
        )
    )
    await conn.execute(
        insert(outbox).values(
            idempotency_key=f"remote_start:{row.id}",
            session_id=row.id,
            kind="remote_start",
            payload={"session_id": row.id},
            state="pending",
            run_after=NOW,
            created_at=NOW,
        )
    )


async def path_per_statement(db: Database, n: int) -> None:
    async with db.transaction(urgent=True) as conn:
        await settle_per_statement(conn, n)
    async with db.reader() as conn:
        await conn.execute(
            select(outbox).where(outbox.c.state == "pending", outbox.c.run_after <= NOW).limit(50)
        )
    async with db.reader() as conn:
        (await conn.execute(select(sessions).where(sessions.c.id == f"s{n:08d}"))).one()
    async with db.transaction() as conn:
        await conn.execute(
            update(outbox)
            .where(outbox.c.idempotency_key == f"remote_start:s{n:08d}")
            .values(state="done", done_at=NOW)
        )


async def path_one_hop(db: Database, n: int) -> None:
    await db.write(lambda conn: settle_one_hop(conn, n), urgent=True)
    await db.read(due_one_hop)
    await db.read(lambda conn: get_one_hop(conn, n))
    await db.write(lambda conn: done_one_hop(conn, n))


# --- the same four transactions directly on asyncpg (PostgreSQL only) ---------------------------


async def path_asyncpg(pool: asyncpg.Pool, n: int) -> None:
    payment_hash, session_id = f"{n:064x}", f"s{n:08d}"
    async with pool.acquire() as conn, conn.transaction():
        paid = await conn.fetchval(
            "SELECT state FROM payments WHERE payment_hash = $1 FOR UPDATE", payment_hash
        )
        assert paid == "pending"
        await conn.execute(
            "UPDATE payments SET state = 'settled', settled_at = $2 WHERE payment_hash = $1",
            payment_hash,
            NOW,
        )
        row = await conn.fetchrow("SELECT * FROM sessions WHERE id = $1 FOR UPDATE", session_id)
        await conn.execute(
            "UPDATE sessions SET state = 'paid', version = $3, paid_msat = 2000000, "
            "updated_at = $4 WHERE id = $1 AND version = $2",
            session_id,
            row["version"],
            row["version"] + 1,
            NOW,
        )
        await conn.execute(
            "INSERT INTO ledger_entries (session_id, kind, natural_key, amount_msat, created_at) "
            "VALUES ($1, 'payment', $2, 2000000, $3)",
            session_id,
            f"payment:{payment_hash}",
            NOW,
        )
        await conn.execute(
            "INSERT INTO outbox (idempotency_key, session_id, kind, payload, state, attempts, "
            "run_after, last_error, created_at) "
            "VALUES ($1, $2, 'remote_start', $3, 'pending', 0, $4, '', $4)",
            f"remote_start:{session_id}",
            session_id,
            json.dumps({"session_id": session_id}),
            NOW,
        )
    async with pool.acquire() as conn:
        await conn.fetch(
            "SELECT * FROM outbox WHERE state = 'pending' AND run_after <= $1 LIMIT 50", NOW
        )
    async with pool.acquire() as conn:
        await conn.fetchrow("SELECT * FROM sessions WHERE id = $1", session_id)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE outbox SET state = 'done', done_at = $2 WHERE idempotency_key = $1",
            f"remote_start:{session_id}",
            NOW,
        )


async def measure(
    db: Any, path: Callable[[Any, int], Awaitable[None]], first: int, count: int
) -> tuple[list[float], float]:
    latencies: list[float] = []
    cpu_start = time.thread_time()  # the event loop's thread only: what the loop pays
    for n in range(first, first + count):
        start = time.perf_counter()
        await path(db, n)
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies, (time.thread_time() - cpu_start) * 1e6 / count


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def _report(title: str, figures: list[tuple[str, list[float], float]]) -> None:
    print(title)
    print(f"{'':24} {'p50 ms':>8} {'p99 ms':>8} {'loop CPU µs':>12}")
    for name, lat, cpu in figures:
        print(f"{name:24} {_p(lat, 50):8.2f} {_p(lat, 99):8.2f} {cpu:12.0f}")


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.from_url(f"sqlite+aiosqlite:///{Path(tmp) / 'strom.sqlite3'}")
        await db.upgrade()
        await db.write(lambda conn: _seed(conn, args.sessions))
        warm = min(100, args.sessions // 10)
        await measure(db, path_per_statement, 0, warm)  # warm both statement caches
        await measure(db, path_one_hop, args.sessions, warm)
        before, before_cpu = await measure(db, path_per_statement, warm, args.sessions - warm)
        after, after_cpu = await measure(
            db, path_one_hop, args.sessions + warm, args.sessions - warm
        )
        await db.close()
    _report(
        f"settle → due → get → done, {args.sessions - warm} times each, SQLite:",
        [("per statement (before)", before, before_cpu), ("one hop (after)", after, after_cpu)],
    )
    result(
        "storage hot path p50 (ms)",
        _p(after, 50),
        _p(before, 50),
        "ms",
        "one hop <= 1/2 of per statement",
        _p(after, 50) <= _p(before, 50) / 2,
        note="baseline: the same four transactions one await per statement",
    )
    if args.postgres:
        await run_postgres(args.postgres, args.sessions)


async def run_postgres(url: str, count: int) -> None:
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = Database.from_url(url, search_path=schema)  # one hop on psycopg threads (Strom's way)
    # The same one-hop functions through AsyncConnection.run_sync over asyncpg (no threads).
    engine = create_async_engine(
        url, connect_args={"server_settings": {"search_path": schema}}, pool_size=10
    )
    run_sync_db = Database(engine)
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    pool = await asyncpg.create_pool(
        dsn, min_size=2, max_size=10, server_settings={"search_path": schema}
    )
    try:
        await db.upgrade()
        await db.write(lambda conn: _seed(conn, count * 2))
        warm = min(100, count // 10)
        each = count // 2 - warm
        ways = (
            ("per statement", path_per_statement, db),
            ("one hop (run_sync)", path_one_hop, run_sync_db),
            ("one hop (psycopg thread)", path_one_hop, db),
            ("asyncpg directly", path_asyncpg, pool),
        )
        figures = []
        for index, (name, path, target) in enumerate(ways):
            first = index * (count // 2)
            await measure(target, path, first, warm)
            latencies, cpu = await measure(target, path, first + warm, each)
            figures.append((name, latencies, cpu))
        _report(f"settle → due → get → done, {each} times each, PostgreSQL:", figures)
    finally:
        await pool.close()
        await run_sync_db.close()
        await db.close()
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--postgres", metavar="URL", help="also measure on this PostgreSQL")
    args = parser.parse_args()
    quiet()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
