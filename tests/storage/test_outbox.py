"""The outbox runs every committed effect, in order per session, retrying until it succeeds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from strom.effects import EffectRunner, RetryLater
from strom.storage.db import Database
from strom.storage.outbox import OutboxRow, OutboxStore, enqueue


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def queue(db: Database, key: str, kind: str, session: str | None, now: datetime) -> None:
    async with db.transaction() as conn:
        await enqueue(conn, key=key, kind=kind, payload={"key": key}, session_id=session, now=now)


async def test_effects_run_in_order_per_session_and_once(db: Database) -> None:
    clock = Clock()
    seen: list[str] = []

    async def record(row: OutboxRow) -> None:
        seen.append(row.payload["key"])

    for key in ("a1", "b1", "a2", "b2", "a1"):  # the repeated key is queued once
        await queue(db, key, "record", key[0], clock.now)
    runner = EffectRunner(OutboxStore(db), {"record": record}, clock=clock)
    assert await runner.drain() == 4
    assert await runner.drain() == 0
    assert sorted(seen) == ["a1", "a2", "b1", "b2"]
    assert seen.index("a1") < seen.index("a2")
    assert seen.index("b1") < seen.index("b2")


async def test_a_failing_effect_is_retried_with_backoff_and_holds_back_its_session(
    db: Database,
) -> None:
    clock = Clock()
    attempts: list[str] = []

    async def flaky(row: OutboxRow) -> None:
        attempts.append(row.payload["key"])
        if row.payload["key"] == "s-first" and attempts.count("s-first") < 3:
            raise RetryLater("charger offline")

    await queue(db, "s-first", "flaky", "s", clock.now)
    await queue(db, "s-second", "flaky", "s", clock.now)
    runner = EffectRunner(OutboxStore(db), {"flaky": flaky}, clock=clock)
    await runner.drain()
    assert attempts == ["s-first"]  # the second waits behind the first
    assert await runner.drain() == 0  # backoff: not due yet
    clock.now += timedelta(seconds=2)
    await runner.drain()
    clock.now += timedelta(seconds=4)
    await runner.drain()
    assert attempts == ["s-first", "s-first", "s-first", "s-second"]
    assert await OutboxStore(db).counts() == {"done": 2}


async def test_pending_effects_survive_a_restart(db: Database) -> None:
    clock = Clock()
    await queue(db, "k", "record", None, clock.now)
    ran: list[str] = []

    async def crash(row: OutboxRow) -> None:
        raise asyncio.CancelledError  # the process dies while running the effect

    await EffectRunner(OutboxStore(db), {"record": crash}, clock=clock).drain_once()
    assert await OutboxStore(db).counts() == {"pending": 1}

    async def record(row: OutboxRow) -> None:
        ran.append(row.key)

    await EffectRunner(OutboxStore(db), {"record": record}, clock=clock).drain()
    assert ran == ["k"]


async def test_an_unexpected_error_is_logged_and_retried(
    db: Database, expect_errors: list[object]
) -> None:
    clock = Clock()
    await queue(db, "k", "boom", None, clock.now)

    async def boom(row: OutboxRow) -> None:
        raise ValueError("bug")

    runner = EffectRunner(OutboxStore(db), {"boom": boom}, clock=clock)
    await runner.drain()
    assert await OutboxStore(db).counts() == {"pending": 1}


async def test_run_wakes_up_for_new_work(db: Database) -> None:
    done = asyncio.Event()

    async def record(row: OutboxRow) -> None:
        done.set()

    runner = EffectRunner(OutboxStore(db), {"record": record}, idle_poll_s=30)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(runner.run())
        await asyncio.sleep(0.05)
        await queue(db, "k", "record", None, datetime.now(UTC))
        runner.wake()
        await asyncio.wait_for(done.wait(), timeout=5)
        task.cancel()


async def test_a_future_timer_does_not_hold_back_later_effects(db: Database) -> None:
    clock = Clock()
    ran: list[str] = []

    async def record(row: OutboxRow) -> None:
        ran.append(row.key)

    async with db.transaction() as conn:
        await enqueue(
            conn, key="timer", kind="record", payload={}, session_id="s", delay_s=60, now=clock.now
        )
    await queue(db, "stop", "record", "s", clock.now)
    runner = EffectRunner(OutboxStore(db), {"record": record}, clock=clock)
    await runner.drain()
    assert ran == ["stop"]
    clock.now += timedelta(seconds=61)
    await runner.drain()
    assert ran == ["stop", "timer"]
