"""The outbox runs every committed effect, in order per session, retrying until it succeeds."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from strom_core.clock import ManualClock
from strom_services.effects import EffectRunner, RetryLater
from strom_storage.db import Database
from strom_storage.outbox import OutboxRow, OutboxStore, queue_effect


def new_clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 1, tzinfo=UTC))


async def queue(db: Database, key: str, kind: str, session: str | None, now: datetime) -> None:
    await db.write(
        lambda conn: queue_effect(
            conn, key=key, kind=kind, payload={"key": key}, session_id=session, now=now
        )
    )


async def test_effects_run_in_order_per_session_and_once(db: Database) -> None:
    clock = new_clock()
    seen: list[str] = []

    async def record(row: OutboxRow) -> None:
        seen.append(row.payload["key"])

    for key in ("a1", "b1", "a2", "b2", "a1"):  # the repeated key is queued once
        await queue(db, key, "record", key[0], clock.now())
    runner = EffectRunner(OutboxStore(db), {"record": record}, clock=clock)
    assert await runner.drain() == 4
    assert await runner.drain() == 0
    assert sorted(seen) == ["a1", "a2", "b1", "b2"]
    assert seen.index("a1") < seen.index("a2")
    assert seen.index("b1") < seen.index("b2")


async def test_a_failing_effect_is_retried_with_backoff_and_holds_back_its_session(
    db: Database,
) -> None:
    clock = new_clock()
    attempts: list[str] = []

    async def flaky(row: OutboxRow) -> None:
        attempts.append(row.payload["key"])
        if row.payload["key"] == "s-first" and attempts.count("s-first") < 3:
            raise RetryLater("charger offline")

    await queue(db, "s-first", "flaky", "s", clock.now())
    await queue(db, "s-second", "flaky", "s", clock.now())
    runner = EffectRunner(OutboxStore(db), {"flaky": flaky}, clock=clock)
    await runner.drain()
    assert attempts == ["s-first"]  # the second waits behind the first
    assert await runner.drain() == 0  # backoff: not due yet
    clock.advance(2)
    await runner.drain()
    clock.advance(4)
    await runner.drain()
    assert attempts == ["s-first", "s-first", "s-first", "s-second"]
    assert await OutboxStore(db).counts() == {"done": 2}


async def test_pending_effects_survive_a_restart(db: Database) -> None:
    clock = new_clock()
    await queue(db, "k", "record", None, clock.now())
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
    clock = new_clock()
    await queue(db, "k", "boom", None, clock.now())

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
    clock = new_clock()
    ran: list[str] = []

    async def record(row: OutboxRow) -> None:
        ran.append(row.key)

    await db.write(
        lambda conn: queue_effect(
            conn,
            key="timer",
            kind="record",
            payload={},
            session_id="s",
            delay_s=60,
            now=clock.now(),
        )
    )
    await queue(db, "stop", "record", "s", clock.now())
    runner = EffectRunner(OutboxStore(db), {"record": record}, clock=clock)
    await runner.drain()
    assert ran == ["stop"]
    clock.advance(61)
    await runner.drain()
    assert ran == ["stop", "timer"]


async def test_a_waiting_effect_does_not_hold_back_another_sessions_new_effect(
    db: Database,
) -> None:
    """A charger slow to answer one session's RemoteStart must not delay another's payment."""
    release = asyncio.Event()
    started: list[str] = []
    finished: list[str] = []

    async def slow(row: OutboxRow) -> None:
        started.append(row.key)
        await release.wait()
        finished.append(row.key)

    async def record(row: OutboxRow) -> None:
        started.append(row.key)
        finished.append(row.key)

    runner = EffectRunner(OutboxStore(db), {"slow": slow, "record": record}, idle_poll_s=30)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(runner.run())
        await queue(db, "a-start", "slow", "a", datetime.now(UTC))
        runner.wake()
        await _until(lambda: "a-start" in started)
        await queue(db, "b-start", "record", "b", datetime.now(UTC))
        await queue(db, "a-stop", "record", "a", datetime.now(UTC))
        runner.wake()
        await _until(lambda: "b-start" in finished)
        assert "a-start" not in finished  # b ran while a's first effect was still waiting
        assert "a-stop" not in started  # a's second effect waits behind its first
        release.set()
        await _until(lambda: "a-stop" in finished)
        assert finished == ["b-start", "a-start", "a-stop"]
        async with asyncio.timeout(5):
            while await OutboxStore(db).counts() != {"done": 3}:  # noqa: ASYNC110 - a DB read
                await asyncio.sleep(0.01)
        task.cancel()


async def test_the_runner_sleeps_while_an_effect_waits(db: Database) -> None:
    """An effect in flight is not re-read in a busy loop while it waits for its answer."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(row: OutboxRow) -> None:
        entered.set()
        await release.wait()

    store = OutboxStore(db)
    reads = 0
    real_due = store.due

    async def counting_due(*args: object, **kwargs: object) -> list[OutboxRow]:
        nonlocal reads
        reads += 1
        return await real_due(*args, **kwargs)  # type: ignore[arg-type]

    store.due = counting_due  # type: ignore[method-assign]
    runner = EffectRunner(store, {"slow": slow}, idle_poll_s=30)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(runner.run())
        await queue(db, "k", "slow", "s", datetime.now(UTC))
        runner.wake()
        await asyncio.wait_for(entered.wait(), timeout=5)
        before = reads
        await asyncio.sleep(0.3)
        # At most the one pass a wake-up still pending may make (however slow the machine);
        # a runner polling the in-flight row would read it over and over.
        assert reads - before <= 1
        release.set()
        task.cancel()


async def test_the_runner_stops_when_cancelled_even_in_the_moment_it_is_woken(
    db: Database,
) -> None:
    """A wake-up (a commit) that coincides with the stop must not swallow the cancellation.

    Python 3.11's ``asyncio.wait_for`` returns the inner result when it completes together
    with the cancellation, and drops the cancellation: the runner then looped on and Strom's
    stop hung (seen in CI as a 120 s teardown).
    """
    store = OutboxStore(db)
    idle = asyncio.Event()
    real_poll = store.poll

    async def poll(*args: object, **kwargs: object) -> tuple[list[OutboxRow], datetime | None]:
        found = await real_poll(*args, **kwargs)  # type: ignore[arg-type]
        idle.set()  # the runner goes to sleep right after this
        return found

    store.poll = poll  # type: ignore[method-assign]
    runner = EffectRunner(store, {}, idle_poll_s=30)
    task = asyncio.create_task(runner.run())
    await asyncio.wait_for(idle.wait(), timeout=5)

    runner.wake()  # in the same moment as the stop
    task.cancel()

    done, _ = await asyncio.wait({task}, timeout=2)
    assert done, "the runner went on running after it was cancelled"
    assert task.cancelled()


async def _until(condition: Callable[[], bool], within_s: float = 5) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - the handlers append to plain lists
            await asyncio.sleep(0.01)
