"""Retention: each rule deletes what is finished with, and nothing a bill or a refund needs."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Table, func, insert, select

from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    RemoteStartAccepted,
    StopReason,
    StopRequested,
    TransactionStarted,
    TransactionStopped,
)
from strom_storage import retention as retention_module
from strom_storage.db import Database
from strom_storage.reports import Reports
from strom_storage.retention import BATCH, Retention, RetentionPolicy
from strom_storage.schema import (
    meter_readings,
    nostr_events,
    ocpp_transactions,
    ocpp_unknown_stops,
    outbox,
    refunds,
    status_history,
)
from tests.storage.test_session_store import make

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOWS = {4: 720, 1059: 720 + 2 * 86_400, 9735: 7 * 86_400 + 120}
POLICY = RetentionPolicy(
    claim_windows_s=WINDOWS,
    outbox_days=30,
    outbox_dead_days=365,
    meter_readings_days=90,
    unknown_stops_days=90,
    status_history_days=400,
)


def _id() -> str:
    return os.urandom(32).hex()


async def _rows(db: Database, table: Table, column: Any) -> set[Any]:
    async with db.reader() as conn:
        return set((await conn.execute(select(column))).scalars())


async def _insert(db: Database, table: Table, rows: list[dict[str, Any]]) -> None:
    async with db.transaction() as conn:
        await conn.execute(insert(table), rows)


async def test_claims_are_kept_exactly_while_a_replay_could_still_be_fresh(db: Database) -> None:
    keep, drop = {}, {}
    rows = []
    for kind, window in {**WINDOWS, 30000: None}.items():
        # A kind nobody declared keeps the longest window of all.
        window_s = window if window is not None else max(WINDOWS.values())
        keep[kind], drop[kind] = _id(), _id()
        for event_id, age in ((keep[kind], window_s - 1), (drop[kind], window_s + 1)):
            received = NOW - timedelta(seconds=age)
            rows.append(
                {"event_id": event_id, "kind": kind, "pubkey": "p" * 64, "received_at": received}
            )
    await _insert(db, nostr_events, rows)
    removed = await Retention(db, POLICY).sweep(NOW)
    left = await _rows(db, nostr_events, nostr_events.c.event_id)
    assert left == set(keep.values())
    assert removed == {"nostr_events": len(drop)}


async def test_finished_outbox_rows_go_after_their_days_pending_ones_never(db: Database) -> None:
    def row(
        key: str, state: str, done_days_ago: float | None, created_days_ago: float
    ) -> dict[str, Any]:
        return {
            "idempotency_key": key,
            "kind": "notify",
            "payload": {},
            "state": state,
            "attempts": 0,
            "run_after": NOW - created_days_ago * DAY,
            "last_error": "",
            "created_at": NOW - created_days_ago * DAY,
            "done_at": None if done_days_ago is None else NOW - done_days_ago * DAY,
        }

    await _insert(
        db,
        outbox,
        [
            row("done-old", "done", 31, 31),
            row("done-recent", "done", 29, 400),  # created long ago, ran recently
            row("pending-old", "pending", None, 400),  # still to run: never deleted
            row("dead-within-a-year", "dead", 300, 300),  # for the operator to look at
            row("dead-old", "dead", 366, 366),
        ],
    )
    await Retention(db, POLICY).sweep(NOW)
    left = await _rows(db, outbox, outbox.c.idempotency_key)
    assert left == {"done-recent", "pending-old", "dead-within-a-year"}


async def _transaction(db: Database, transaction_id: int, session_id: str | None) -> None:
    await _insert(
        db,
        ocpp_transactions,
        [
            {
                "id": transaction_id,
                "charger_id": "cp1",
                "connector_id": 1,
                "id_tag": f"T{session_id}",
                "status": "Accepted" if session_id else "Invalid",
                "session_id": session_id,
                "meter_start_wh": 0,
                "started_at": NOW - 400 * DAY,
                "created_at": NOW - 400 * DAY,
            }
        ],
    )


def _reading(transaction_id: int, days_ago: float, register_wh: int) -> dict[str, Any]:
    return {
        "charger_id": "cp1",
        "connector_id": 1,
        "transaction_id": transaction_id,
        "register_wh": register_wh,
        "sampled_at": NOW - days_ago * DAY,
    }


async def test_readings_go_once_their_session_stopped_and_never_while_it_runs(db: Database) -> None:
    store = await make(db, "running")
    await make(db, "stopped")
    started = NOW - 200 * DAY
    for session_id, transaction_id in (("running", 1), ("stopped", 2)):
        await store.apply(session_id, PaymentSettled(f"h-{session_id}", 50_000_000))
        await store.apply(session_id, RemoteStartAccepted())
        await store.apply(session_id, TransactionStarted(transaction_id, 0, started))
        await _transaction(db, transaction_id, session_id)
    await store.apply("stopped", MeterReading(1_000, started + DAY))
    await store.apply("stopped", StopRequested(StopReason.INITIATOR))
    await store.apply("stopped", TransactionStopped(2_000, started + DAY))
    await _transaction(db, 3, None)  # a transaction Strom refused: it belongs to no session
    await _insert(
        db,
        meter_readings,
        [
            _reading(1, 200, 10),  # the running session: however old, kept
            _reading(1, 91, 20),
            _reading(2, 91, 1_000),  # the stopped session: old ones go, recent ones stay
            _reading(2, 89, 2_000),
            _reading(3, 91, 5),  # no session
            _reading(99, 91, 5),  # a transaction id Strom never gave out
        ],
    )
    bill_before = await store.get("stopped")
    await Retention(db, POLICY).sweep(NOW)
    left = await _rows(db, meter_readings, meter_readings.c.register_wh)
    assert left == {10, 20, 2_000}
    assert await store.get("stopped") == bill_before  # the bill is on the session


async def test_only_expired_withdraw_offers_go_refunds_that_moved_money_stay(db: Database) -> None:
    await make(db, "s1")

    def refund(refund_id: str, state: str, expired_days_ago: float) -> dict[str, Any]:
        expires = NOW - expired_days_ago * DAY
        return {
            "id": refund_id,
            "session_id": "s1",
            "k1_hash": _id(),
            "state": state,
            "detail": "",
            "created_at": expires - timedelta(minutes=10),
            "expires_at": expires,
            "updated_at": expires,
        }

    await _insert(
        db,
        refunds,
        [
            refund("offer-expired", "offered", 1.01),
            refund("offer-just-expired", "offered", 0.99),  # a late wallet still hears "expired"
            refund("offer-valid", "offered", -0.001),
            *(
                refund(state, state, 1000)
                for state in ("claimed", "paying", "paid", "failed", "unknown")
            ),
        ],
    )
    await Retention(db, POLICY).sweep(NOW)
    left = await _rows(db, refunds, refunds.c.id)
    assert left == {
        "offer-just-expired",
        "offer-valid",
        "claimed",
        "paying",
        "paid",
        "failed",
        "unknown",
    }


async def test_unknown_stops_go_after_their_days(db: Database) -> None:
    await _insert(
        db,
        ocpp_unknown_stops,
        [
            {
                "charger_id": "cp1",
                "transaction_id": transaction_id,
                "meter_stop_wh": 1,
                "stopped_at": NOW,
                "reason": "Local",
                "received_at": NOW - days_ago * DAY,
            }
            for transaction_id, days_ago in ((1, 91), (2, 89))
        ],
    )
    await Retention(db, POLICY).sweep(NOW)
    assert await _rows(db, ocpp_unknown_stops, ocpp_unknown_stops.c.transaction_id) == {2}


async def test_old_status_changes_go_but_each_connectors_state_at_the_cutoff_stays(
    db: Database,
) -> None:
    cutoff = NOW - 400 * DAY
    changes = [  # (charger, connector, status, days ago)
        ("cp1", 1, "Available", 500),
        ("cp1", 1, "Charging", 450),
        ("cp1", 1, "Available", 401),  # in force at the cutoff: stays
        ("cp1", 1, "Faulted", 10),
        ("cp1", 0, "Online", 600),  # the link's only change, however old: stays
        ("cp1", 2, "Charging", 700),
        ("cp1", 2, "Available", 399),  # within the window
        ("cp2", 1, "Unavailable", 800),
        ("cp2", 1, "Available", 800),  # the same moment: the later row is the state
    ]
    await _insert(
        db,
        status_history,
        [
            {"charger_id": c, "connector_id": n, "status": s, "at": NOW - days * DAY}
            for c, n, s, days in changes
        ],
    )
    removed = await Retention(db, POLICY).sweep(NOW)
    assert removed == {"status_history": 3}
    async with db.reader() as conn:
        rows = (await conn.execute(select(status_history).order_by(status_history.c.id))).all()
    assert [(r.charger_id, r.connector_id, r.status, (NOW - r.at).days) for r in rows] == [
        ("cp1", 1, "Available", 401),
        ("cp1", 1, "Faulted", 10),
        ("cp1", 0, "Online", 600),
        ("cp1", 2, "Charging", 700),
        ("cp1", 2, "Available", 399),
        ("cp2", 1, "Available", 800),
    ]
    # The availability report of a window starting at the cutoff still knows what was in force.
    _known, seen = await Reports(db).status_changes(since=cutoff, until=NOW)
    in_force = {(c.charger_id, c.connector_id): c.status for c in seen if c.at < cutoff}
    assert in_force == {
        ("cp1", 1): "Available",
        ("cp1", 0): "Online",
        ("cp1", 2): "Charging",
        ("cp2", 1): "Available",
    }
    assert await Retention(db, POLICY).sweep(NOW) == {}  # nothing more to do
    # Nine days on, connector 2's change of 399 days ago is the state at the new cutoff: the
    # change before it goes.
    assert await Retention(db, POLICY).sweep(NOW + 9 * DAY) == {"status_history": 1}
    async with db.reader() as conn:
        statuses = (
            await conn.execute(
                select(status_history.c.status).where(status_history.c.connector_id == 2)
            )
        ).scalars()
        assert list(statuses) == ["Available"]


async def test_zero_days_keeps_rows_forever(db: Database) -> None:
    forever = RetentionPolicy(
        claim_windows_s={},
        outbox_days=0,
        outbox_dead_days=0,
        meter_readings_days=0,
        unknown_stops_days=0,
        status_history_days=0,
    )
    ancient = NOW - 10_000 * DAY
    await _insert(
        db, nostr_events, [{"event_id": _id(), "kind": 4, "pubkey": "", "received_at": ancient}]
    )
    await _insert(db, meter_readings, [_reading(99, 10_000, 1)])
    await _insert(
        db,
        ocpp_unknown_stops,
        [
            {
                "charger_id": "cp1",
                "transaction_id": 1,
                "meter_stop_wh": 1,
                "stopped_at": ancient,
                "reason": "",
                "received_at": ancient,
            }
        ],
    )
    await _insert(
        db,
        status_history,
        [
            {"charger_id": "cp1", "connector_id": 1, "status": status, "at": ancient + n * DAY}
            for n, status in enumerate(("Available", "Charging", "Available"))
        ],
    )
    assert await Retention(db, forever).sweep(NOW) == {}


async def _count(db: Database, table: Table) -> int:
    async with db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_long_sweep_lets_other_writers_in_between_its_batches(
    sqlite_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite only: its single writer is what batches protect; PostgreSQL writers do not wait.
    db = sqlite_db
    monkeypatch.setattr(retention_module, "BATCH", 50)
    old = NOW - 30 * DAY
    await _insert(
        db,
        nostr_events,
        [{"event_id": _id(), "kind": 4, "pubkey": "", "received_at": old} for _ in range(175)],
    )
    seen_by_writer: list[int] = []

    async def writer() -> None:  # e.g. a settlement arriving while the sweep runs
        async with db.transaction(urgent=True) as conn:
            count = await conn.scalar(select(func.count()).select_from(nostr_events))
            seen_by_writer.append(int(count or 0))

    sweep = asyncio.create_task(Retention(db, POLICY).sweep(NOW))
    other = asyncio.create_task(writer())
    removed, _ = await asyncio.gather(sweep, other)
    assert removed == {"nostr_events": 175}
    assert seen_by_writer == [125]  # it went right after the first batch, not after all
    assert await _count(db, nostr_events) == 0
    assert BATCH >= 100  # the real batch: a few milliseconds of SQLite's writer
