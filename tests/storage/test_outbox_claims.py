"""The shared outbox: processes claim rows, each row runs once, a session's rows in order.

The races run on PostgreSQL with several ``Database`` objects on one schema (separate engines,
as separate processes have). The claiming store also works on SQLite, for one process.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from sqlalchemy import select

from strom_core.clock import ManualClock
from strom_core.session_effects import ArmStartTimeout, Notify, RemoteStart, RemoteStop
from strom_services.effects import EffectRunner, RetryLater
from strom_storage.db import Database
from strom_storage.leases import LeaseStore, agent_lease, charger_lease
from strom_storage.outbox import OutboxRow, OutboxStore, queue_effect
from strom_storage.outbox_claims import (
    ClaimingOutboxStore,
    claim_due,
    finish_claimed,
    retry_claimed,
)
from strom_storage.schema import outbox
from strom_storage.sessions import effect_charger, effect_lease

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def queue(
    db: Database,
    key: str,
    session: str | None,
    *,
    charger: str | None = None,
    lease: str | None = None,
) -> None:
    await db.write(
        lambda conn: queue_effect(
            conn,
            key=key,
            kind="record",
            payload={"key": key},
            session_id=session,
            now=NOW,
            charger_id=charger,
            lease=lease,
        )
    )


async def claim(
    db: Database,
    owner: str,
    *,
    limit: int = 100,
    claim_s: float = 60,
    mine: bool = False,
    running: list[int] | None = None,
) -> list[str]:
    rows = await db.write(
        lambda conn: claim_due(
            conn,
            owner,
            NOW,
            claim_s=claim_s,
            limit=limit,
            exclude=running or (),
            only_my_chargers=mine,
        )
    )
    if running is not None:
        running += [row.id for row in rows]
    return [row.key for row in rows]


async def states(db: Database) -> dict[str, str]:
    rows = await db.read(
        lambda conn: conn.execute(select(outbox.c.idempotency_key, outbox.c.state)).all()
    )
    return dict(rows)


async def test_racing_claimers_claim_each_due_row_once_and_only_a_sessions_first(
    postgres_processes: tuple[Database, ...],
) -> None:
    first = postgres_processes[0]
    expected = []
    sessions: set[str] = set()
    for n in range(60):
        session = f"s{n % 15}" if n % 4 else None  # 45 rows of 15 sessions, 15 rows alone
        await queue(first, f"row-{n:02}", session)
        if session is None or session not in sessions:
            expected.append(f"row-{n:02}")  # due: alone, or its session's first row
        if session is not None:
            sessions.add(session)

    async def keep_claiming(db: Database, owner: str) -> list[str]:
        mine: list[str] = []
        running: list[int] = []  # its own claims come back to it unless it says they run
        while batch := await claim(db, owner, limit=4, running=running):
            mine += batch
        return mine

    claimed = await asyncio.gather(
        *(keep_claiming(db, f"p{n}") for n, db in enumerate(postgres_processes))
    )
    everything = [key for batch in claimed for key in batch]
    assert sorted(everything) == sorted(expected)  # each due row once, no later session row
    assert await claim(first, "late") == []  # all claimed: nothing left for a fourth


async def test_a_process_claims_again_its_own_rows_it_is_not_running(
    postgres_processes: tuple[Database, ...],
) -> None:
    a, b, _ = postgres_processes
    await queue(a, "k1", None)
    await queue(a, "k2", None)
    assert await claim(a, "A", limit=1) == ["k1"]
    # k1 was claimed but not started (say its session's chain was busy): A gets it again;
    # B, another process, does not.
    assert await claim(b, "B") == ["k2"]
    assert await claim(a, "A") == ["k1"]


async def test_three_runners_run_every_effect_once_in_session_order(
    postgres_processes: tuple[Database, ...],
) -> None:
    rng = random.Random(7)
    first = postgres_processes[0]
    queued: dict[str, list[str]] = {}
    for n in range(90):
        session = f"s{rng.randrange(12)}"
        await queue(first, f"{session}-{n:02}", session)
        queued.setdefault(session, []).append(f"{session}-{n:02}")
    ran: list[tuple[str, str]] = []  # (process, key), in the order the effects ran
    clock = ManualClock(NOW)

    def runner(db: Database, owner: str) -> EffectRunner:
        async def record(row: OutboxRow) -> None:
            ran.append((owner, row.payload["key"]))
            await asyncio.sleep(rng.uniform(0, 0.01))
            if rng.random() < 0.1:
                raise RetryLater("charger busy")  # retried after backoff, still in order

        return EffectRunner(
            ClaimingOutboxStore(db, owner), {"record": record}, clock=clock, idle_poll_s=0.02
        )

    runners = [runner(db, f"p{n}") for n, db in enumerate(postgres_processes)]
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        tasks = [group.create_task(each.run()) for each in runners]
        while set((await states(first)).values()) != {"done"}:
            await asyncio.sleep(0.02)
            clock.advance(5)  # retries come due
        for task in tasks:
            task.cancel()
    assert sum(each.executed for each in runners) == 90  # each row done exactly once
    for session, keys in queued.items():
        # a later row ran only after every attempt of the earlier ones
        runs = [i for i, (_, key) in enumerate(ran) if key.startswith(f"{session}-")]
        assert [ran[i][1] for i in runs] == sorted((ran[i][1] for i in runs), key=keys.index)
    assert len({owner for owner, _ in ran}) > 1  # the work was shared


async def test_an_expired_claim_is_taken_over_and_the_old_claimant_is_fenced(
    postgres_processes: tuple[Database, ...],
) -> None:
    a, b, _ = postgres_processes
    await queue(a, "k", "s")
    await queue(a, "k-next", "s")
    assert await claim(a, "A", claim_s=0.2) == ["k"]
    assert await claim(b, "B") == []  # claimed by A, and k-next waits behind it
    await asyncio.sleep(0.25)  # A died mid-effect: its claim runs out
    assert await claim(b, "B") == ["k"]
    row = await b.read(
        lambda conn: conn.execute(select(outbox.c.id).where(outbox.c.idempotency_key == "k")).one()
    )
    assert not await a.write(lambda conn: finish_claimed(conn, row.id, "A", NOW))
    stale = OutboxRow(id=row.id, key="k", kind="record", payload={}, session_id="s", attempts=0)
    assert await a.write(lambda conn: retry_claimed(conn, stale, "A", "late", NOW)) is None
    assert await b.write(lambda conn: finish_claimed(conn, row.id, "B", NOW))
    assert await states(a) == {"k": "done", "k-next": "pending"}
    assert await claim(a, "A") == ["k-next"]


async def test_a_failed_row_gives_up_its_claim_and_is_retried_by_any_process(
    postgres_processes: tuple[Database, ...],
) -> None:
    a, b, _ = postgres_processes
    store_a = ClaimingOutboxStore(a, "A")
    await queue(a, "k", None)
    (row,) = await store_a.due(NOW)
    assert await store_a.failed(row, "relay down", NOW)
    later = NOW.replace(minute=5)  # past the first backoff
    rows = await ClaimingOutboxStore(b, "B").due(later)
    assert [(r.key, r.attempts) for r in rows] == [("k", 1)]


async def test_commands_for_a_charger_another_process_holds_are_left_to_it(
    postgres_processes: tuple[Database, ...],
) -> None:
    a, b, _ = postgres_processes
    await LeaseStore(b).acquire(charger_lease("CP-B"), "B", 30)
    await LeaseStore(a).acquire(charger_lease("CP-A"), "A", 30)
    await queue(a, "start-on-B", "s1", charger="CP-B")
    await queue(a, "start-on-A", "s2", charger="CP-A")
    await queue(a, "start-on-offline", "s3", charger="CP-gone")
    await queue(a, "zap-receipt", None)
    await queue(a, "notify-after-B", "s1")
    assert await claim(a, "A", mine=True) == ["start-on-A", "start-on-offline", "zap-receipt"]
    assert await claim(b, "B", mine=True) == ["start-on-B"]


async def test_dms_and_zap_receipts_of_an_agent_are_left_to_the_process_running_it(
    postgres_processes: tuple[Database, ...],
) -> None:
    a, b, _ = postgres_processes
    await LeaseStore(b).acquire(agent_lease("CP-1"), "B", 30)
    await LeaseStore(a).acquire(charger_lease("CP-1"), "A", 30)  # connected to A
    await queue(a, "start-on-A", "s1", charger="CP-1")
    await queue(a, "dm-by-B", "s2", lease=agent_lease("CP-1"))
    await queue(a, "receipt-moving", "s3", lease=agent_lease("CP-gone"))
    assert await claim(a, "A", mine=True) == ["start-on-A", "receipt-moving"]
    assert await claim(b, "B", mine=True) == ["dm-by-B"]


async def test_a_claiming_runner_in_one_process_runs_effects_once_in_order(
    db: Database,
) -> None:
    clock = ManualClock(NOW)
    seen: list[str] = []

    async def record(row: OutboxRow) -> None:
        seen.append(row.payload["key"])

    for key in ("a1", "b1", "a2", "b2", "a3"):
        await queue(db, key, key[0])
    runner = EffectRunner(ClaimingOutboxStore(db, "only"), {"record": record}, clock=clock)
    assert await runner.drain() == 5
    assert [key for key in seen if key[0] == "a"] == ["a1", "a2", "a3"]
    assert [key for key in seen if key[0] == "b"] == ["b1", "b2"]
    assert await OutboxStore(db).counts() == {"done": 5}


def test_only_ocpp_commands_name_the_charger_they_must_reach() -> None:
    assert effect_charger(RemoteStart(charger_id="CP-1", connector_id=1, id_tag="t")) == "CP-1"
    assert effect_charger(RemoteStop(charger_id="CP-2", transaction_id=4)) == "CP-2"
    assert effect_charger(Notify(what="started")) is None
    assert effect_charger(ArmStartTimeout(seconds=60)) is None


def test_a_sessions_dms_run_where_its_chargers_agent_runs() -> None:
    assert effect_lease(Notify(what="started"), "CP-1") == "agent:CP-1"
    assert effect_lease(RemoteStop(charger_id="CP-2", transaction_id=4), "CP-2") == "charger:CP-2"
    assert effect_lease(ArmStartTimeout(seconds=60), "CP-1") is None
