"""Dynamic tariffs at payment: the schedule is frozen into the session, or nothing is created.

A profile with ``[tariff.time_of_use]`` windows is dynamic: a new session carries the schedule
its charger's price source gives for the next ``sessions.price_schedule_hours``; a source that
raises NoPrice refuses the payment with its reason before any invoice or session exists. A
static profile keeps no schedule, whatever source is set up. The time-of-use source reads the
windows on the profile's time zone, across a change of the clocks.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from strom_core.clock import ManualClock
from strom_core.config import (
    ConnectorConfig,
    LocationConfig,
    ProfileConfig,
    SessionsConfig,
    TariffConfig,
)
from strom_core.ports.prices import NoPrice, PriceSource
from strom_core.prices import PriceSchedule
from strom_core.session_secrets import SessionSecrets
from strom_services.payments import PaymentService
from strom_services.profile_prices import ProfilePrices
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.schema import payments, sessions
from strom_storage.sessions import SessionStore
from strom_storage.tariffs import TariffRepository
from tests.agent.fakes import MemoryLightning

T0 = datetime(2026, 3, 28, 20, 30, tzinfo=UTC)  # the night before Europe/Berlin's summer time


def _profile(**tariff: object) -> ProfileConfig:
    return ProfileConfig(
        id="cp1",
        name="Dynamic charger",
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=(ConnectorConfig(id=1, max_power_kw=Decimal(11)),),
        tariff=TariffConfig(per_kwh_sat=Decimal(300), **tariff),  # type: ignore[arg-type]
    )


DYNAMIC = _profile(
    time_of_use={"07:00-22:00": Decimal(450), "22:00-07:00": Decimal(250)},
    time_zone="Europe/Berlin",
)
STATIC = _profile()


class Down:
    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        raise NoPrice("no fresh BTC/EUR rate (newest 2 h old)")


@pytest.fixture
async def db(tmp_path: Path) -> Database:
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'strom.sqlite3'}")
    await database.upgrade()
    yield database  # type: ignore[misc]
    await database.close()


async def _service(
    db: Database, profile: ProfileConfig, prices: PriceSource | None
) -> PaymentService:
    clock = ManualClock(T0)
    await ChargerStore(db).sync((profile,))
    await ChargerStore(db).set_online("cp1", True, T0)
    return PaymentService(
        SessionStore(db, clock),
        MemoryLightning(),
        SessionsConfig(price_schedule_hours=12),
        meter_interval_s=60,
        session_secrets=SessionSecrets(bytes(32)),
        tariffs=TariffBook(TariffRepository(db), clock),
        clock=clock,
        prices=prices,
    )


async def _count(db: Database, table) -> int:  # type: ignore[no-untyped-def]
    async with db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_a_dynamic_tariff_freezes_the_time_of_use_schedule_into_the_session(
    db: Database,
) -> None:
    service = await _service(db, DYNAMIC, ProfilePrices(lambda _id: DYNAMIC, ManualClock(T0)))
    opened = await service.open_session(
        DYNAMIC, 1, 2_000_000, description_hash=os.urandom(32), initiator="lnurl"
    )
    session = await service.store.get(opened.session_id)
    assert session.schedule is not None
    assert session.schedule.source == "tou:profile"
    assert session.schedule.valid_from == T0
    assert session.schedule.valid_until == T0 + timedelta(hours=12)
    # 21:30 local (CET) is day price, from 22:00 local = 21:00 UTC night, 07:00 CEST = 05:00 UTC day
    assert session.schedule.price_at(T0).energy_msat_per_kwh == 450_000  # type: ignore[union-attr]
    night = session.schedule.price_at(T0 + timedelta(minutes=30))
    assert night is not None
    assert night.energy_msat_per_kwh == 250_000
    assert (
        session.schedule.price_at(datetime(2026, 3, 29, 4, 59, tzinfo=UTC)).energy_msat_per_kwh
        == 250_000
    )  # type: ignore[union-attr]
    assert (
        session.schedule.price_at(datetime(2026, 3, 29, 5, 0, tzinfo=UTC)).energy_msat_per_kwh
        == 450_000
    )  # type: ignore[union-attr]
    assert service.price_now(DYNAMIC) == 450_000
    assert sum(session.interval_wh) == 0


async def test_no_price_refuses_the_payment_with_its_reason_and_creates_nothing(
    db: Database,
) -> None:
    service = await _service(db, DYNAMIC, Down())
    with pytest.raises(
        NoPrice, match=r"no fresh BTC/EUR rate \(newest 2 h old\).*nothing was charged"
    ):
        await service.open_session(
            DYNAMIC, 1, 2_000_000, description_hash=os.urandom(32), initiator="lnurl"
        )
    assert await _count(db, sessions) == 0
    assert await _count(db, payments) == 0
    assert service.backend.invoices == {}  # type: ignore[attr-defined]


async def test_a_static_tariff_keeps_no_schedule_whatever_source_is_set_up(db: Database) -> None:
    service = await _service(db, STATIC, Down())
    opened = await service.open_session(
        STATIC, 1, 2_000_000, description_hash=os.urandom(32), initiator="lnurl"
    )
    session = await service.store.get(opened.session_id)
    assert session.schedule is None
    assert session.interval_wh == ()
    assert service.price_now(STATIC) is None


async def test_profile_prices_give_a_static_profile_a_flat_schedule_and_refuse_unknown_ones() -> (
    None
):
    prices = ProfilePrices(
        lambda charger_id: STATIC if charger_id == "cp1" else None, ManualClock(T0)
    )
    flat = await prices.schedule("cp1", T0, 3)
    assert flat.source == "static"
    assert {i.energy_msat_per_kwh for i in flat.intervals} == {300_000}
    assert flat.valid_until == T0 + timedelta(hours=3)
    with pytest.raises(NoPrice, match="unknown charger"):
        await prices.schedule("nope", T0, 3)
