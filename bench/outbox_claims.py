"""Shared outbox: claim throughput (rows/s) with 1 and 3 claimer processes on PostgreSQL.

Each claimer is an OS process with its own ``Database`` (engines, pools) on one schema, as the
processes of a cluster are. It loops as the effect runner does with ``ClaimingOutboxStore``:
claim up to ``--batch`` due rows in one transaction (``FOR UPDATE SKIP LOCKED``), then mark each
row done in a transaction of its own (fenced by its claim); the handlers do nothing, so the
figure is the outbox's own cost. Rows belong to ``--sessions`` sessions (a session's rows are
claimed one after another, in order), so fewer sessions means more waiting on the order rule.

    python bench/outbox_claims.py --rows 3000 --sessions 3000 \
        --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/test

Prints figures; asserts nothing (except that every row ran exactly once).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from strom_storage.db import Database  # noqa: E402
from strom_storage.outbox import queue_effect  # noqa: E402
from strom_storage.outbox_claims import claim_due, finish_claimed  # noqa: E402
from strom_storage.schema import outbox  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _fill(url: str, schema: str, rows: int, sessions: int) -> None:
    db = Database.from_url(url, search_path=schema)
    await db.upgrade()

    def fill(conn: object) -> None:
        for n in range(rows):
            queue_effect(
                conn,  # type: ignore[arg-type]
                key=f"bench-{n}",
                kind="noop",
                payload={"n": n},
                session_id=f"s{n % sessions}",
                now=NOW,
            )

    await db.write(fill)
    await db.close()


async def _claimer(
    url: str, schema: str, owner: str, batch: int, start_at: float
) -> tuple[int, float, float]:
    db = Database.from_url(url, search_path=schema)
    await db.check()
    await asyncio.sleep(max(0.0, start_at - time.time()))
    done = 0
    claiming = finishing = 0.0
    while True:
        began = time.perf_counter()
        rows = await db.write(lambda conn: claim_due(conn, owner, NOW, limit=batch))
        claiming += time.perf_counter() - began
        if not rows:
            break
        began = time.perf_counter()
        for row in rows:
            if await db.write(lambda conn, row_id=row.id: finish_claimed(conn, row_id, owner, NOW)):
                done += 1
        finishing += time.perf_counter() - began
    await db.close()
    return done, claiming, finishing


def _claimer_process(args: tuple[str, str, str, int, float]) -> tuple[int, float, float, float]:
    done, claiming, finishing = asyncio.run(_claimer(*args))
    return done, claiming, finishing, time.time()


async def _drop(url: str, schema: str) -> None:
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    await admin.dispose()


async def _create(url: str, schema: str) -> None:
    admin = create_async_engine(url)
    async with admin.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    await admin.dispose()


async def _counts(url: str, schema: str) -> dict[str, int]:
    db = Database.from_url(url, search_path=schema)
    counts = await db.read(
        lambda conn: dict(
            conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all()
        )
    )
    await db.close()
    return {str(state): int(n) for state, n in counts.items()}


def measure(url: str, claimers: int, rows: int, sessions: int, batch: int) -> float:
    """Fill a fresh schema, run ``claimers`` processes until every row is done; rows/s."""
    schema = f"bench_{secrets.token_hex(6)}"
    asyncio.run(_create(url, schema))
    try:
        asyncio.run(_fill(url, schema, rows, sessions))
        start_at = time.time() + 2.0  # every process connected before the clock starts
        jobs = [(url, schema, f"claimer-{n}", batch, start_at) for n in range(claimers)]
        with multiprocessing.get_context("spawn").Pool(claimers) as pool:
            results = pool.map(_claimer_process, jobs)
        elapsed = max(result[3] for result in results) - start_at
        done = sum(result[0] for result in results)
        counts = asyncio.run(_counts(url, schema))
        if done != rows or counts != {"done": rows}:
            raise SystemExit(f"rows run {done} of {rows}, states {counts}: a bug")
        shares = ", ".join(str(result[0]) for result in results)
        claiming = sum(result[1] for result in results)
        finishing = sum(result[2] for result in results)
        print(
            f"{claimers} claimer(s): {rows} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s"
            f"  (rows per claimer: {shares}; time claiming {claiming:.1f} s,"
            f" marking done {finishing:.1f} s, summed over claimers)"
        )
        return rows / elapsed
    finally:
        asyncio.run(_drop(url, schema))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", required=True)
    parser.add_argument("--rows", type=int, default=3000)
    parser.add_argument("--sessions", type=int, default=3000, help="rows spread over sessions")
    parser.add_argument("--batch", type=int, default=100, help="rows claimed per transaction")
    args = parser.parse_args()
    print(f"outbox claims on PostgreSQL: {args.rows} rows in {args.sessions} sessions")
    one = measure(args.postgres, 1, args.rows, args.sessions, args.batch)
    three = measure(args.postgres, 3, args.rows, args.sessions, args.batch)
    print(f"3 claimers / 1 claimer: {three / one:.2f}x")


if __name__ == "__main__":
    main()
