"""A session billed by a price schedule: stored with its schedule, journalled per interval.

The frozen schedule and the per-interval energy survive a reload; the final bill is journalled
once in ``ledger_intervals``, one row per interval with its energy, price, cost and the
schedule's source, fetched_at and rate_source, and those rows recompute the consumption.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import State, new_session
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    TransactionStarted,
    TransactionStopped,
    VehicleIdle,
)
from strom_core.tariff import Tariff
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.schema import ledger_intervals
from strom_storage.sessions import SessionStore, ledger_totals

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
SCHEDULE = PriceSchedule(
    (
        PriceInterval(T0, T0 + timedelta(hours=1), 200_000),
        PriceInterval(T0 + timedelta(hours=1), T0 + timedelta(hours=2), 500_000),
    ),
    source="tou:profile",
    fetched_at=T0 - timedelta(minutes=3),
    rate_source="fixed:EUR",
)
TARIFF = Tariff(
    energy_msat_per_kwh=200_000,
    session_fee_msat=10_000,
    min_prepay_msat=20_000,
    idle_msat_per_minute=1_000,
    idle_grace_minutes=5,
)


async def test_a_scheduled_session_is_stored_and_journalled_per_interval(db: Database) -> None:
    profile = ProfileConfig(
        id="cp1",
        name="Test charger",
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=(ConnectorConfig(id=1, max_power_kw=11),),
        tariff=TariffConfig(per_kwh_sat=200),
    )
    await ChargerStore(db).sync((profile,))
    store = SessionStore(db)
    session = new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=1,
        id_tag="Ts1",
        tariff=TARIFF,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=90,
        schedule=SCHEDULE,
    )
    await store.create(session, secret="x" * 32, initiator="lnurl", now=T0)
    assert (await store.get("s1")).schedule == SCHEDULE
    await store.apply("s1", PaymentSettled("h1", 50_000_000))
    await store.apply("s1", TransactionStarted(7, 0, T0 + timedelta(minutes=30)))
    await store.apply("s1", MeterReading(4_000, T0 + timedelta(minutes=50)))
    await store.apply("s1", VehicleIdle(T0 + timedelta(minutes=80)))
    mid = await store.get("s1")
    assert mid.interval_wh == (4_000, 0)
    assert mid.idle_since == T0 + timedelta(minutes=80)
    await store.apply("s1", TransactionStopped(6_000, T0 + timedelta(minutes=90)))
    await store.apply("s1", TransactionStopped(6_000, T0 + timedelta(minutes=90)))  # a repeat
    final = await store.get("s1")
    assert final.state is State.STOPPED
    assert final.interval_wh == (4_500, 1_500)  # 2,000 Wh over 50-90 min: 10 before the hour
    async with db.reader() as conn:
        rows = (await conn.execute(select(ledger_intervals))).mappings().all()
    assert [(r["energy_wh"], r["energy_msat_per_kwh"], r["cost_msat"]) for r in rows] == [
        (4_500, 200_000, 900_000),
        (1_500, 500_000, 750_000),
    ]
    assert {(r["source"], r["fetched_at"], r["rate_source"]) for r in rows} == {
        ("tou:profile", SCHEDULE.fetched_at, "fixed:EUR")
    }
    # idle 80-90 min = 10 min, 5 free: 5,000 msat; no time fee; the bill recomputes exactly
    recomputed = TARIFF.session_fee_msat + sum(r["cost_msat"] for r in rows) + 5_000
    totals = await db.read(lambda conn: ledger_totals(conn, "s1"))
    assert totals["consumption"] == final.consumed_msat == recomputed
