"""SQLite writers of one process take turns in order, an urgent one (a settlement) first."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from strom_storage.db import Database


async def open_sqlite(tmp_path: Path) -> Database:
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/writers.db")
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE log (who TEXT)"))
    return db


async def test_waiting_writers_go_in_order_with_urgent_ones_first(tmp_path: Path) -> None:
    db = await open_sqlite(tmp_path)
    order: list[str] = []
    first_holds = asyncio.Event()
    release = asyncio.Event()

    async def write(who: str, *, urgent: bool = False, hold: bool = False) -> None:
        async with db.transaction(urgent=urgent) as conn:
            await conn.execute(text("INSERT INTO log VALUES (:who)"), {"who": who})
            order.append(who)
            if hold:
                first_holds.set()
                await release.wait()

    holder = asyncio.create_task(write("meter-1", hold=True))
    await first_holds.wait()
    waiting = [
        asyncio.create_task(write("meter-2")),
        asyncio.create_task(write("status-3")),
        asyncio.create_task(write("settle", urgent=True)),
    ]
    await asyncio.sleep(0.05)  # all three are queued behind the holder
    release.set()
    await asyncio.gather(holder, *waiting)
    assert order == ["meter-1", "settle", "meter-2", "status-3"]
    async with db.reader() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM log"))).scalar() == 4
    await db.close()


async def test_a_writer_cancelled_while_waiting_does_not_block_the_queue(tmp_path: Path) -> None:
    db = await open_sqlite(tmp_path)
    holds = asyncio.Event()
    release = asyncio.Event()

    async def hold() -> None:
        async with db.transaction():
            holds.set()
            await release.wait()

    async def write(who: str) -> None:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO log VALUES (:who)"), {"who": who})

    holder = asyncio.create_task(hold())
    await holds.wait()
    gone = asyncio.create_task(write("gone"))
    later = asyncio.create_task(write("later"))
    await asyncio.sleep(0.02)
    gone.cancel()
    release.set()
    await asyncio.wait_for(asyncio.gather(holder, later), timeout=5)
    async with db.reader() as conn:
        rows = (await conn.execute(text("SELECT who FROM log"))).scalars().all()
    assert rows == ["later"]
    await db.close()
