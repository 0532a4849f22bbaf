"""The operator's read models (strom_storage.reports), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.session import new_session
from strom_core.tariff import Tariff
from strom_storage.agents import audit
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.reports import BadCursor, Reports
from strom_storage.schema import payments, refunds, sessions
from strom_storage.sessions import SessionStore

T0 = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
TARIFF = Tariff(energy_msat_per_kwh=300_000)


async def sessions_at(db: Database, count: int, step: timedelta) -> list[str]:
    profile = ProfileConfig(
        id="cp1",
        name="Test charger",
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=(ConnectorConfig(id=1, max_power_kw=11),),
        tariff=TariffConfig(per_kwh_sat=300),
    )
    await ChargerStore(db).sync((profile,))
    store = SessionStore(db)
    ids = []
    for n in range(count):
        session_id = f"s{n:02d}"
        session = new_session(
            session_id=session_id,
            charger_id="cp1",
            connector_id=1,
            id_tag=f"T{n:02d}",
            tariff=TARIFF,
            power_w=11_000,
            meter_interval_s=60,
            start_timeout_s=90,
        )
        await store.create(session, secret="x" * 32, initiator="lnurl", now=T0 + n * step)
        ids.append(session_id)
    return ids


async def test_sessions_page_newest_first_across_equal_timestamps(db: Database) -> None:
    # Ten sessions at one instant: the cursor's tie-break on the id must skip and repeat none.
    ids = await sessions_at(db, 10, timedelta(0))
    seen: list[str] = []
    cursor = None
    while True:
        rows, cursor = await Reports(db).page_sessions(
            charger=None, state=None, since=None, until=None, limit=3, cursor=cursor
        )
        seen += [row.id for row in rows]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


async def test_sessions_filter_by_window_and_state(db: Database) -> None:
    await sessions_at(db, 6, timedelta(hours=1))
    rows, cursor = await Reports(db).page_sessions(
        charger="cp1",
        state="awaiting_payment",
        since=T0 + timedelta(hours=2),
        until=T0 + timedelta(hours=4),
        limit=50,
        cursor=None,
    )
    assert [row.id for row in rows] == ["s03", "s02"]
    assert cursor is None
    rows, _ = await Reports(db).page_sessions(
        charger="cp1", state="charging", since=None, until=None, limit=50, cursor=None
    )
    assert rows == []
    with pytest.raises(BadCursor):
        await Reports(db).page_sessions(
            charger=None, state=None, since=None, until=None, limit=5, cursor="bm9wZQ"
        )


async def test_totals_per_utc_day_and_month(db: Database) -> None:
    ids = await sessions_at(db, 3, timedelta(hours=1))  # 23:00 on Jan 31, 00:00 and 01:00
    async with db.transaction() as conn:
        for n, session_id in enumerate(ids):
            at = T0 + timedelta(hours=n)
            await conn.execute(
                insert(payments).values(
                    payment_hash=f"{n:064x}",
                    session_id=session_id,
                    kind="initial",
                    amount_msat=1_000_000 * (n + 1),
                    bolt11="lnbc1",
                    state="settled",
                    created_at=at,
                    expires_at=at + timedelta(minutes=10),
                    settled_at=at,
                )
            )
        await conn.execute(
            insert(refunds).values(
                id="r1",
                session_id=ids[2],
                k1_hash="a" * 64,
                state="paid",
                amount_msat=400_000,
                fee_msat=1_000,
                detail="",
                created_at=T0 + timedelta(hours=2),
                expires_at=T0 + timedelta(days=7),
                updated_at=T0 + timedelta(hours=2),
            )
        )
    days = await Reports(db).period_totals(period="day", since=None, until=None)
    assert {day: (t.paid_msat, t.refunded_msat, t.sessions) for day, t in days.items()} == {
        "2026-01-31": (1_000_000, 0, 1),
        "2026-02-01": (5_000_000, 400_000, 2),
    }
    months = await Reports(db).period_totals(period="month", since=None, until=None)
    assert list(months) == ["2026-01", "2026-02"]
    assert months["2026-02"].refund_fees_msat == 1_000
    assert await Reports(db).money_totals() == (6_000_000, 400_000, 1_000, 0)
    assert await Reports(db).counts_by_state() == {"awaiting_payment": 3}


async def add_payment(db: Database, n: int, session_id: str, state: str = "settled") -> None:
    at = T0 + timedelta(minutes=n)
    async with db.transaction() as conn:
        await conn.execute(
            insert(payments).values(
                payment_hash=f"{n:064x}",
                session_id=session_id,
                kind="initial" if n == 0 else "topup",
                amount_msat=1_000 * (n + 1),
                bolt11="lnbc1",
                state=state,
                created_at=at,
                expires_at=at + timedelta(minutes=10),
                settled_at=at if state == "settled" else None,
            )
        )


async def add_refund(db: Database, n: int, session_id: str, state: str) -> None:
    at = T0 + timedelta(minutes=n)
    async with db.transaction() as conn:
        await conn.execute(
            insert(refunds).values(
                id=f"r{n}",
                session_id=session_id,
                k1_hash=f"{n:064x}",
                state=state,
                amount_msat=100 * (n + 1),
                fee_msat=0,
                detail="",
                created_at=at,
                expires_at=at + timedelta(days=7),
                updated_at=at,
            )
        )


async def test_one_session_reads_with_its_payments_and_refunds_oldest_first(db: Database) -> None:
    first, second = await sessions_at(db, 2, timedelta(minutes=1))
    for n in (2, 0, 1):
        await add_payment(db, n, first)
    await add_refund(db, 1, first, "paid")
    await add_refund(db, 0, first, "failed")
    reports = Reports(db)
    row = await reports.session_row(first)
    assert (row.id, row.charger_id, row.initiator) == (first, "cp1", "lnurl")
    assert await reports.session_row("nope") is None
    assert [p.payment_hash for p in await reports.payments_of(first)] == [
        f"{n:064x}" for n in (0, 1, 2)
    ]
    assert [r.id for r in await reports.refunds_of(first)] == ["r0", "r1"]
    assert await reports.payments_of(second) == []
    assert await reports.refunds_of(second) == []


async def test_running_sessions_are_those_that_hold_a_connector(db: Database) -> None:
    ids = await sessions_at(db, 6, timedelta(minutes=1))
    states = ["paid", "starting", "charging", "stopping", "stopped", "awaiting_payment"]
    async with db.transaction() as conn:
        for session_id, state in zip(ids, states, strict=True):
            await conn.execute(
                update(sessions).where(sessions.c.id == session_id).values(state=state)
            )
    reports = Reports(db)
    assert [row.id for row in await reports.running_sessions()] == ids[:4]
    assert [row.id for row in await reports.running_sessions("cp1")] == ids[:4]
    assert await reports.running_sessions("cp2") == []


async def test_ledger_pages_show_settled_payments_and_every_refund_newest_first(
    db: Database,
) -> None:
    (session_id,) = await sessions_at(db, 1, timedelta(0))
    for n in range(5):
        await add_payment(db, n, session_id, "settled" if n != 2 else "pending")
        await add_refund(db, n, session_id, ("paid", "failed", "pending")[n % 3])
    reports = Reports(db)
    rows, cursor = await reports.page_payments(since=None, until=None, limit=2, cursor=None)
    assert [row.payment_hash for row in rows] == [f"{4:064x}", f"{3:064x}"]
    rows, cursor = await reports.page_payments(since=None, until=None, limit=2, cursor=cursor)
    assert [row.payment_hash for row in rows] == [f"{1:064x}", f"{0:064x}"]
    assert cursor is None
    rows, cursor = await reports.page_refunds(
        since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=4), limit=10, cursor=None
    )
    assert [row.id for row in rows] == ["r3", "r2", "r1"]
    assert cursor is None
    with pytest.raises(BadCursor):
        await reports.page_refunds(since=None, until=None, limit=1, cursor="!")


async def test_audit_entries_newest_first_up_to_the_limit(db: Database) -> None:
    for n in range(3):
        await audit(db, actor="token:ops", action=f"api.a{n}", target="cp1", detail={"n": n}, now=n)
    rows = await Reports(db).audit_entries(2)
    assert [(row.action, row.detail) for row in rows] == [
        ("api.a2", {"n": 2}),
        ("api.a1", {"n": 1}),
    ]
    assert rows[0].actor == "token:ops"
