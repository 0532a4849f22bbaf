"""Leases: one holder at a time, a larger token on every change of owner, stale holders fenced.

The races run on PostgreSQL with several ``Database`` objects on one schema: each has engines
and connections of its own, as separate Strom processes have. The single-process API runs on
SQLite too.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from strom_storage.db import Connection, Database
from strom_storage.leases import Lease, LeaseLost, LeaseStore, fenced
from strom_storage.outbox import queue_effect
from strom_storage.schema import outbox

SHORT_TTL = 0.2  # seconds: long enough for the few statements before it matters


async def until_expired() -> None:
    """Wait until a lease taken with SHORT_TTL has expired by the database's clock."""
    await asyncio.sleep(SHORT_TTL + 0.05)


async def test_racing_processes_acquire_a_free_lease_exactly_once(
    postgres_processes: tuple[Database, ...],
) -> None:
    stores = [LeaseStore(db) for db in postgres_processes]
    for round_ in range(10):
        name = f"charger:CP-{round_}"
        won = await asyncio.gather(
            *(store.acquire(name, f"p{n}", 30) for n, store in enumerate(stores))
        )
        winners = [lease for lease in won if lease is not None]
        assert len(winners) == 1, won
        assert await stores[0].holder(name) == winners[0]
        assert winners[0].token == 1


async def test_tokens_grow_on_every_change_of_owner(db: Database) -> None:
    store = LeaseStore(db)
    first = await store.acquire("leader:settlement", "A", 30)
    assert first is not None
    assert await store.acquire("leader:settlement", "B", 30) is None  # held: not taken
    assert await store.acquire("leader:settlement", "A", 30) is None  # the holder renews instead
    assert await store.release(first)
    second = await store.acquire("leader:settlement", "B", 30)
    assert second is not None
    third = await store.take_over("leader:settlement", "A", 30)
    assert first.token < second.token < third.token
    assert await store.holder("leader:settlement") == third


async def test_an_expired_lease_is_taken_over_by_another_process(
    postgres_processes: tuple[Database, ...],
) -> None:
    a, b, _ = (LeaseStore(db) for db in postgres_processes)
    held = await a.acquire("agent:CP-1", "A", SHORT_TTL)
    assert held is not None
    assert await b.acquire("agent:CP-1", "B", 30) is None
    await until_expired()
    assert await b.holder("agent:CP-1") is None  # the database's clock says it is free
    taken = await b.acquire("agent:CP-1", "B", 30)
    assert taken is not None
    assert (taken.owner, taken.token) == ("B", held.token + 1)
    assert await a.renew(held, 30) is None  # expired: its holder must acquire again


async def test_a_stale_holder_can_neither_renew_nor_release(db: Database) -> None:
    store = LeaseStore(db)
    stale = await store.acquire("charger:CP-1", "A", 30)
    assert stale is not None
    current = await store.take_over("charger:CP-1", "B", 30)  # the charger reconnected to B
    assert await store.renew(stale, 30) is None
    assert not await store.release(stale)
    assert await store.holder("charger:CP-1") == current
    renewed = await store.renew(current, 60)
    assert renewed is not None
    assert renewed.token == current.token
    assert renewed.expires_at > current.expires_at


async def test_a_fenced_write_by_a_stale_holder_is_refused_and_writes_nothing(
    db: Database,
) -> None:
    store = LeaseStore(db)
    stale = await store.acquire("charger:CP-1", "A", 30)
    assert stale is not None
    current = await store.take_over("charger:CP-1", "B", 30)
    now = datetime(2026, 1, 1, tzinfo=UTC)

    def write_as(lease: Lease, key: str) -> Callable[[Connection], None]:
        def work(conn: Connection) -> None:
            queue_effect(conn, key=key, kind="k", payload={}, session_id=None, now=now)
            fenced(conn, lease)

        return work

    with pytest.raises(LeaseLost, match="no longer held by A"):
        await db.write(write_as(stale, "from-A"))
    await db.write(write_as(current, "from-B"))
    keys = await db.read(lambda conn: list(conn.scalars(select(outbox.c.idempotency_key))))
    assert keys == ["from-B"]


async def test_a_take_over_waits_for_the_old_holders_fenced_write_to_commit(
    postgres_processes: tuple[Database, ...],
) -> None:
    a_db, b_db, _ = postgres_processes
    held = await LeaseStore(a_db).acquire("charger:CP-1", "A", 30)
    assert held is not None
    async with a_db.transaction() as conn:
        await conn.run_sync(lambda sync: fenced(sync, held))
        taking = asyncio.create_task(LeaseStore(b_db).take_over("charger:CP-1", "B", 30))
        await asyncio.sleep(0.2)
        assert not taking.done()  # blocked on the lease row until A's write commits
    taken = await taking
    assert (taken.owner, taken.token) == ("B", held.token + 1)


async def test_renew_all_extends_the_live_leases_of_one_owner_only(db: Database) -> None:
    store = LeaseStore(db)
    mine = [await store.acquire(f"charger:CP-{n}", "A", 30) for n in (1, 2)]
    other = await store.acquire("charger:CP-3", "B", 30)
    lost = await store.acquire("charger:CP-4", "A", 30)
    assert lost is not None
    await store.take_over("charger:CP-4", "B", 30)
    renewed = await store.renew_all("A", 300)
    assert [lease.name for lease in renewed] == ["charger:CP-1", "charger:CP-2"]
    for before, after in zip(mine, renewed, strict=True):
        assert before is not None
        assert after.token == before.token
        assert after.expires_at > before.expires_at
    assert await store.holder("charger:CP-3") == other


@pytest.mark.parametrize(
    ("name", "owner", "ttl", "message"),
    [
        ("", "A", 30, "lease name"),
        ("x" * 101, "A", 30, "lease name"),
        ("charger:CP-1", "", 30, "lease owner"),
        ("charger:CP-1", "A", 0, "positive time to live"),
        ("charger:CP-1", "A", -5, "positive time to live"),
    ],
)
async def test_bad_lease_arguments_are_refused_and_change_nothing(
    db: Database, name: str, owner: str, ttl: float, message: str
) -> None:
    store = LeaseStore(db)
    with pytest.raises(ValueError, match=message):
        await store.acquire(name, owner, ttl)
    with pytest.raises(ValueError, match=message):
        await store.take_over(name, owner, ttl)
    assert await store.holder(name) is None


async def test_fenced_writes_commit_in_token_order_under_random_interleavings(
    postgres_processes: tuple[Database, ...],
) -> None:
    """Three processes acquire, take over, renew, release and write under two leases, pausing
    at random inside their write transactions; every write that commits carries a token no
    smaller than any committed before it (no stale holder's write lands after a newer one)."""
    rng = random.Random(22)
    names = ["charger:CP-1", "charger:CP-2"]
    log: list[tuple[str, int]] = []  # committed fenced writes, in commit order

    async def process(n: int, db: Database, seed: int) -> None:
        ops = random.Random(seed)
        store = LeaseStore(db)
        mine: dict[str, Lease] = {}
        for _ in range(25):
            name = ops.choice(names)
            action = ops.random()
            if action < 0.3:
                lease = await store.acquire(name, f"p{n}", ops.choice([0.05, 0.5]))
                if lease is not None:
                    mine[name] = lease
            elif action < 0.45:
                mine[name] = await store.take_over(name, f"p{n}", ops.choice([0.05, 0.5]))
            elif action < 0.55 and name in mine:
                await store.release(mine.pop(name))
            elif name in mine:
                lease = mine[name]
                try:
                    async with db.transaction() as conn:
                        await conn.run_sync(fenced, lease)
                        await asyncio.sleep(ops.uniform(0, 0.03))  # paused mid-write
                        log.append((name, lease.token))  # the write, done before commit
                except LeaseLost:
                    mine.pop(name, None)
            await asyncio.sleep(ops.uniform(0, 0.01))

    await asyncio.gather(
        *(process(n, db, rng.randrange(2**32)) for n, db in enumerate(postgres_processes))
    )
    assert log, "no fenced write committed: the interleaving proved nothing"
    for name in names:
        tokens = [token for written, token in log if written == name]
        assert tokens == sorted(tokens), (name, tokens)
