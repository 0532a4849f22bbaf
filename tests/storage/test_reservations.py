"""Reservations on the database: the row round trip, the outbox rows, the durable expiry timer,
the charger's answers through the port, the fee kept once (SQLite and PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from strom_core.clock import ManualClock
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.errors import StorageError
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.reservations import ReservationCommands
from strom_core.session import State, new_session
from strom_core.session_events import PaymentSettled, StartRequested, StartTimedOut
from strom_core.tariff import Tariff
from strom_services.effects import EffectRunner, RetryLater
from strom_services.reservations import ReservationEffects
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.outbox import OutboxRow, OutboxStore
from strom_storage.schema import outbox, tariffs
from strom_storage.sessions import SessionStore, ledger_totals
from strom_storage.tariffs import TariffRepository

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
UNTIL = T0 + timedelta(minutes=30)
TARIFF = Tariff(
    energy_msat_per_kwh=300_000,
    min_prepay_msat=20_000,
    reservation_fee_msat=50_000,
    reservation_fee_msat_per_minute=2_000,
    reservation_max_minutes=60,
    reservation_kept_percent=60,
)
KEPT = 66_000  # 60 % of 50 + 30 * 2 sat
PROFILE = ProfileConfig(
    id="cp1",
    name="Test charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(ConnectorConfig(id=1, max_power_kw=11),),
    tariff=TariffConfig(per_kwh_sat=300),
)


@dataclass
class FakeReservations:
    """A charger's ReserveNow/CancelReservation: records the calls, answers as told."""

    reserve_answer: CommandResult = field(
        default_factory=lambda: CommandResult(CommandStatus.ACCEPTED)
    )
    cancel_answer: CommandResult = field(
        default_factory=lambda: CommandResult(CommandStatus.ACCEPTED)
    )
    reserved: list[tuple[str, int, int, datetime, str]] = field(default_factory=list)
    cancelled: list[tuple[str, int]] = field(default_factory=list)

    async def reserve_now(
        self,
        charger_id: str,
        connector_id: int,
        *,
        reservation_id: int,
        expires_at: datetime,
        id_tag: str,
    ) -> CommandResult:
        self.reserved.append((charger_id, connector_id, reservation_id, expires_at, id_tag))
        return self.reserve_answer

    async def cancel_reservation(self, charger_id: str, reservation_id: int) -> CommandResult:
        self.cancelled.append((charger_id, reservation_id))
        return self.cancel_answer


async def reserved(db: Database, session_id: str = "s1", reservation_id: int = 7) -> SessionStore:
    await ChargerStore(db).sync((PROFILE,))
    store = SessionStore(db)
    session = new_session(
        session_id=session_id,
        charger_id="cp1",
        connector_id=1,
        id_tag=f"T{session_id}",
        tariff=TARIFF,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=90,
        reserve_minutes=30,
        reservation_id=reservation_id,
    )
    await store.create(session, secret="x" * 32, initiator="lnurl", now=T0)
    await store.apply(session_id, PaymentSettled("h1", 1_000_000, T0), now=T0)
    return store


def runner(db: Database, port: ReservationCommands, clock: ManualClock) -> EffectRunner:
    """The effect runner of a (re)started Strom: only the reservation handlers matter here."""

    async def ignore(row: OutboxRow) -> None:
        return None

    effects = ReservationEffects(SessionStore(db, clock), port, clock)
    others = dict.fromkeys(("notify", "remote_start", "start_timeout"), ignore)
    return EffectRunner(OutboxStore(db), {**effects.handlers(), **others}, clock=clock)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def test_the_fake_is_a_reservations_port() -> None:
    assert isinstance(FakeReservations(), ReservationCommands)


async def test_a_reserved_session_round_trips_with_its_reservation(db: Database) -> None:
    store = await reserved(db)
    session = await store.get("s1")
    assert session.state is State.RESERVED
    assert (session.reserve_minutes, session.reservation_fee_msat) == (30, 110_000)
    assert session.reserved_until == UNTIL
    assert session.reserved_until.tzinfo is not None
    assert session.reservation_id == 7
    assert session.tariff == TARIFF  # the reservation terms are frozen with the tariff


async def test_a_reservation_id_is_never_given_to_two_sessions(db: Database) -> None:
    await reserved(db, "s1", reservation_id=7)
    with pytest.raises((StorageError, IntegrityError)):
        await reserved(db, "s2", reservation_id=7)


async def test_the_payment_queues_reserve_now_and_a_timer_due_at_the_end(db: Database) -> None:
    await reserved(db)
    async with db.reader() as conn:
        rows = {r.kind: r for r in await conn.execute(select(outbox).order_by(outbox.c.id))}
    assert set(rows) == {"notify", "reserve_now", "reservation_expiry"}
    assert rows["reserve_now"].payload == {
        "charger_id": "cp1",
        "connector_id": 1,
        "reservation_id": 7,
        "expires_at": UNTIL.isoformat(),
        "id_tag": "Ts1",
    }
    assert _utc(rows["reservation_expiry"].run_after) == UNTIL
    assert _utc(rows["reserve_now"].run_after) == T0


async def test_the_charger_accepting_keeps_the_reservation_and_a_timeout_decides_nothing(
    db: Database,
) -> None:
    store = await reserved(db)
    port = FakeReservations(reserve_answer=CommandResult(CommandStatus.TIMEOUT))
    await runner(db, port, ManualClock(T0)).drain()
    assert port.reserved == [("cp1", 1, 7, UNTIL, "Ts1")]
    session = await store.get("s1")
    assert session.state is State.RESERVED
    assert "reserve-answer" not in session.applied
    store2 = await reserved(db, "s2", reservation_id=8)
    await runner(db, FakeReservations(), ManualClock(T0)).drain()
    accepted = await store2.get("s2")
    assert accepted.state is State.RESERVED
    assert "reserve-answer" in accepted.applied


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (CommandResult(CommandStatus.REJECTED, "Occupied"), "Occupied"),
        (CommandResult(CommandStatus.OFFLINE), "the charger is not connected"),
        (CommandResult(CommandStatus.NOT_SUPPORTED), "does not take reservations"),
    ],
)
async def test_a_reservation_the_charger_refuses_is_refundable_in_full(
    db: Database, answer: CommandResult, reason: str
) -> None:
    store = await reserved(db)
    await runner(db, FakeReservations(reserve_answer=answer), ManualClock(T0)).drain()
    session = await store.get("s1")
    assert session.state is State.START_FAILED
    assert reason in session.stop_reason
    assert (session.consumed_msat, session.refundable_msat) == (0, 1_000_000)
    totals = await db.read(lambda conn: ledger_totals(conn, "s1"))
    assert "consumption" not in totals


async def test_the_expiry_timer_survives_a_restart_and_keeps_the_fee_share_once(
    db: Database,
) -> None:
    store = await reserved(db)
    clock = ManualClock(T0)
    port = FakeReservations()
    await runner(db, port, clock).drain()  # ReserveNow accepted; the timer is not due
    assert (await store.get("s1")).state is State.RESERVED
    assert port.cancelled == []
    # Strom stops; it comes back after the end time: a new runner on the same database.
    clock.advance(31 * 60)
    restarted = FakeReservations()
    await runner(db, restarted, clock).drain()
    session = await store.get("s1")
    assert session.state is State.START_FAILED
    assert session.stop_reason == "reservation expired"
    assert (session.consumed_msat, session.refundable_msat) == (KEPT, 1_000_000 - KEPT)
    assert restarted.cancelled == [("cp1", 7)]
    assert restarted.reserved == []  # no ReserveNow for an ended reservation
    await runner(db, restarted, clock).drain()  # nothing left to do, nothing twice
    assert restarted.cancelled == [("cp1", 7)]
    totals = await db.read(lambda conn: ledger_totals(conn, "s1"))
    assert totals == {"payment": 1_000_000, "consumption": KEPT}


async def test_a_cancel_the_charger_cannot_take_is_retried_until_the_end_time(
    db: Database,
) -> None:
    store = await reserved(db)
    clock = ManualClock(T0)
    await runner(db, FakeReservations(), clock).drain()
    await store.apply("s1", StartRequested(), now=T0)
    await store.apply("s1", StartTimedOut(), now=T0)  # asked to start, never plugged in
    offline = FakeReservations(cancel_answer=CommandResult(CommandStatus.OFFLINE))
    effects = ReservationEffects(SessionStore(db, clock), offline, clock)
    async with db.reader() as conn:
        cancel = (
            await conn.execute(select(outbox).where(outbox.c.kind == "cancel_reservation"))
        ).one()
    row = OutboxRow(cancel.id, cancel.idempotency_key, cancel.kind, cancel.payload, "s1", 0)
    with pytest.raises(RetryLater):
        await effects.cancel_reservation(row)
    clock.advance(31 * 60)  # past its end: the charger ended it by itself
    await effects.cancel_reservation(row)
    assert offline.cancelled == [("cp1", 7), ("cp1", 7)]
    assert (await store.get("s1")).consumed_msat == KEPT


async def test_an_operators_tariff_keeps_its_reservation_terms_across_a_restart(
    db: Database,
) -> None:
    await ChargerStore(db).sync((PROFILE,))
    clock = ManualClock(T0)
    book = TariffBook(TariffRepository(db), clock)
    await book.load()
    await book.set(PROFILE, replace(book.in_force(PROFILE), **_TERMS), source="dm")
    again = TariffBook(TariffRepository(db), clock)
    await again.load()
    assert again.in_force(PROFILE).reservation_max_minutes == 45
    assert again.in_force(PROFILE).reservation_kept_percent == 50


async def test_a_tariff_record_from_before_reservations_still_loads(db: Database) -> None:
    await ChargerStore(db).sync((PROFILE,))
    file_tariff = PROFILE.tariff.to_tariff()
    old = {  # the five prices 0006 kept; no reservation terms in the file's JSON
        name: getattr(file_tariff, name)
        for name in (
            "energy_msat_per_kwh",
            "time_msat_per_minute",
            "session_fee_msat",
            "min_prepay_msat",
            "max_prepay_msat",
        )
    }
    await db.write(
        lambda conn: conn.execute(
            insert(tariffs).values(
                charger_id="cp1",
                **{**old, "energy_msat_per_kwh": 123_000},
                file_tariff=old,
                source="dm",
                set_at=T0,
            )
        )
    )
    book = TariffBook(TariffRepository(db), ManualClock(T0))
    await book.load()
    in_force = book.in_force(PROFILE)
    assert in_force.energy_msat_per_kwh == 123_000  # the record is still in force
    assert in_force.reservation_max_minutes == 0


_TERMS = {
    "reservation_fee_msat": 10_000,
    "reservation_fee_msat_per_minute": 1_000,
    "reservation_max_minutes": 45,
    "reservation_kept_percent": 50,
}


async def test_a_reservation_ended_early_runs_its_timer_now_as_a_stale_one(db: Database) -> None:
    """Started (or cancelled) before its end, the expiry timer does not wait half an hour."""
    store = await reserved(db)
    clock = ManualClock(T0 + timedelta(minutes=5))
    await store.apply("s1", StartRequested(), now=clock.now())
    async with db.reader() as conn:
        timer = (
            await conn.execute(select(outbox).where(outbox.c.kind == "reservation_expiry"))
        ).one()
    assert _utc(timer.run_after) == clock.now()
    await runner(db, FakeReservations(), clock).drain()
    session = await store.get("s1")
    assert session.state is State.PAID  # the stale timer changed nothing
    assert session.consumed_msat == 0
    async with db.reader() as conn:
        pending = await conn.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.kind == "reservation_expiry", outbox.c.state == "pending")
        )
    assert pending == 0
