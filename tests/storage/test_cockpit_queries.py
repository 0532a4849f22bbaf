"""The operator API's reads and its token table, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from cockpit import queries
from cockpit.tokens import Scope, TokenError, TokenStore
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.session import new_session
from strom_core.tariff import Tariff
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.schema import payments, refunds
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
        rows, cursor = await queries.page_sessions(
            db, charger=None, state=None, since=None, until=None, limit=3, cursor=cursor
        )
        seen += [row.id for row in rows]
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)


async def test_sessions_filter_by_window_and_state(db: Database) -> None:
    await sessions_at(db, 6, timedelta(hours=1))
    rows, cursor = await queries.page_sessions(
        db,
        charger="cp1",
        state="awaiting_payment",
        since=T0 + timedelta(hours=2),
        until=T0 + timedelta(hours=4),
        limit=50,
        cursor=None,
    )
    assert [row.id for row in rows] == ["s03", "s02"]
    assert cursor is None
    rows, _ = await queries.page_sessions(
        db, charger="cp1", state="charging", since=None, until=None, limit=50, cursor=None
    )
    assert rows == []
    with pytest.raises(queries.BadCursor):
        await queries.page_sessions(
            db, charger=None, state=None, since=None, until=None, limit=5, cursor="bm9wZQ"
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
    days = await queries.period_totals(db, period="day", since=None, until=None)
    assert {day: (t.paid_msat, t.refunded_msat, t.sessions) for day, t in days.items()} == {
        "2026-01-31": (1_000_000, 0, 1),
        "2026-02-01": (5_000_000, 400_000, 2),
    }
    months = await queries.period_totals(db, period="month", since=None, until=None)
    assert list(months) == ["2026-01", "2026-02"]
    assert months["2026-02"].refund_fees_msat == 1_000
    assert await queries.money_totals(db) == (6_000_000, 400_000, 1_000, 0)
    assert await queries.counts_by_state(db) == {"awaiting_payment": 3}


async def test_tokens_are_stored_hashed_checked_and_revoked(db: Database) -> None:
    tokens = TokenStore(db)
    token = await tokens.create("ops")
    read = await tokens.create("grafana", Scope.READ)
    info = await tokens.check(token)
    assert info is not None
    assert (info.name, info.scope) == ("ops", Scope.ADMIN)
    assert (await tokens.check(read)).scope is Scope.READ  # type: ignore[union-attr]
    assert await tokens.check(token + "x") is None
    assert await tokens.check("not-ours") is None
    with pytest.raises(TokenError):
        await tokens.create("ops")
    assert await tokens.revoke("ops")
    assert not await tokens.revoke("ops")
    assert await tokens.check(token) is None
    listed = {t.name: t for t in await tokens.list()}
    assert listed["ops"].revoked_at is not None
    assert listed["grafana"].revoked_at is None
