"""A charger that lost a session's transaction: the orphan check ends it after the grace.

On the database (SQLite, and PostgreSQL when configured), with the real stores, the real
effect runner and scripted charger commands; the whole story over a real OCPP websocket is in
``tests/e2e/test_lost_transactions.py``.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from strom_core.ports import (
    Authorization,
    ChargerBooted,
    CommandStatus,
    ConnectorStatusChanged,
    MeterSample,
)
from strom_core.session import State
from strom_core.session_events import (
    PaymentSettled,
    RefundClaimed,
    RefundPaid,
    StopReason,
    StopRequested,
)
from strom_services.charging import ChargingEffects
from strom_services.effects import EffectRunner, Handler
from strom_services.ocpp_core import DatabaseOcppCore
from strom_services.orphans import (
    CHECK_KIND,
    NO_TRANSACTION,
    OrphanWatch,
    Trigger,
    Verdict,
    verdict,
)
from strom_storage.chargers import ChargerStore
from strom_storage.db import Connection, Database
from strom_storage.ocpp import REFUSED
from strom_storage.outbox import OutboxRow, OutboxStore, queue_effect
from strom_storage.schema import audit_log, ledger_entries, ocpp_transactions, outbox
from strom_storage.sessions import SessionStore
from tests.agent.fakes import FakeChargerCommands
from tests.storage.test_session_store import make

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
GRACE_S = 120  # the session's meter interval is 60 s: the check waits max(120, 2 x 60)
LAST_READING = T0 + timedelta(minutes=5)


class Clock:
    """Strom's clock: real time (the stores stamp rows with it) plus what a test skipped."""

    def __init__(self) -> None:
        self.skipped = timedelta(0)

    def __call__(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.skipped

    def unix(self) -> float:
        return self.now().timestamp()

    def monotonic(self) -> float:
        return time.monotonic() + self.skipped.total_seconds()


async def _noop(row: OutboxRow) -> None:
    return None


class World:
    """A session charging on cp1/1 (meterStart 1,000 Wh, last reading 3,000 Wh)."""

    def __init__(self, db: Database, store: SessionStore, tx: int) -> None:
        self.db = db
        self.store = store
        self.tx = tx
        self.clock = Clock()
        self.core = DatabaseOcppCore(store)
        self.watch = OrphanWatch(store, ChargerStore(db), grace_s=GRACE_S, clock=self.clock)
        self.commands = FakeChargerCommands()

    def runner(self) -> EffectRunner:
        """The effect runner with the real stop and check handlers (the rest do nothing)."""
        charging = ChargingEffects(self.store, self.commands, self.watch)
        handlers: dict[str, Handler] = {
            "notify": _noop,
            "remote_start": _noop,
            "start_timeout": _noop,
            "remote_stop": charging.remote_stop,
            **self.watch.handlers(),
        }
        return EffectRunner(OutboxStore(self.db), handlers, clock=self.clock)

    async def status(self, status: str) -> None:
        await self.watch.connector_status(
            ConnectorStatusChanged("cp1", 1, status, "NoError", self.clock())
        )

    async def after_grace(self) -> None:
        """Let the grace pass and run every effect that is due."""
        self.clock.skipped += timedelta(seconds=GRACE_S + 1)
        await self.runner().drain()

    async def checks(self, state: str = "pending") -> list[dict[str, Any]]:
        async with self.db.reader() as conn:
            rows = await conn.execute(
                select(outbox.c.payload, outbox.c.run_after).where(
                    outbox.c.kind == CHECK_KIND, outbox.c.state == state
                )
            )
            return [{**row.payload, "run_after": row.run_after} for row in rows]

    async def audit(self) -> list[Any]:
        async with self.db.reader() as conn:
            return list(await conn.execute(select(audit_log).order_by(audit_log.c.id)))


async def charging(db: Database, reference: str | None = None) -> World:
    """The world; ``reference``: an OCPP 2.0.1 charger chose the transaction's reference."""
    store = await make(db)  # s1 on cp1/1, idTag Ts1, meter interval 60 s, 300 sat/kWh + 10 sat
    await store.apply("s1", PaymentSettled("h1", 5_000_000))
    core = DatabaseOcppCore(store)
    started = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0, transaction=reference)
    await core.record_meter(MeterSample("cp1", 1, started.transaction, 3_000, LAST_READING))
    tx = (await store.get("s1")).transaction_id
    assert tx is not None
    world = World(db, store, tx)
    await world.status("Charging")
    return world


def test_only_statuses_without_a_transaction_raise_a_suspicion() -> None:
    # OCPP 1.6: Preparing is "no ongoing transaction (yet)", Finishing "has stopped".
    assert {"Available", "Preparing", "Finishing"} == NO_TRANSACTION
    for status in ("Charging", "SuspendedEV", "SuspendedEVSE", "Faulted", "Unavailable"):
        assert verdict(Trigger.STATUS, status, False) is Verdict.ALIVE
        assert verdict(Trigger.BOOT, status, False) is Verdict.ALIVE
    assert verdict(Trigger.STATUS, "Available", False) is Verdict.LOST
    assert verdict(Trigger.BOOT, "Preparing", False) is Verdict.LOST
    # Meter values for the transaction during the grace: it is still reported.
    assert verdict(Trigger.STATUS, "Available", True) is Verdict.WATCH_AGAIN
    assert verdict(Trigger.STOP_REJECTED, "Charging", True) is Verdict.ALIVE
    # RemoteStop rejected and nothing reported of the transaction for a whole grace period.
    assert verdict(Trigger.STOP_REJECTED, "Charging", False) is Verdict.LOST


async def test_a_status_without_the_transaction_is_recorded_with_one_check_armed(
    db: Database,
) -> None:
    world = await charging(db)
    assert await world.checks() == []  # Charging: nothing suspected
    await world.status("Preparing")
    await world.status("Available")  # a second suspicion while one is pending: no new timer
    assert await ChargerStore(db).status("cp1", 1) == "Available"
    [check] = await world.checks()
    assert check["session_id"] == "s1"
    assert check["transaction_id"] == world.tx
    assert check["trigger"] == "status"
    wait = check["run_after"] - world.clock()
    assert timedelta(seconds=110) < wait <= timedelta(seconds=120)  # max(grace, 2 intervals)


async def test_after_the_grace_the_session_ends_billed_to_the_last_reading_and_refundable(
    db: Database,
) -> None:
    world = await charging(db)
    await world.status("Available")
    await world.runner().drain()  # before the grace: nothing happens
    assert (await world.store.get("s1")).state is State.CHARGING
    await world.after_grace()
    session = await world.store.get("s1")
    assert session.state is State.STOPPED
    assert session.stop_reason == StopReason.CHARGER_LOST
    assert session.energy_wh == 2_000  # 3,000 reported - 1,000 at start, never more
    assert session.stopped_at == LAST_READING
    assert session.consumed_msat == 10_000 + 600_000
    assert session.refundable_msat == 5_000_000 - 610_000
    [entry] = await world.audit()
    assert (entry.actor, entry.action, entry.target) == ("charger:cp1", "transaction_lost", "s1")
    assert entry.detail["billed_wh"] == 2_000
    async with db.reader() as conn:
        consumption = await conn.scalar(
            select(ledger_entries.c.amount_msat).where(ledger_entries.c.kind == "consumption")
        )
    assert consumption == 610_000
    # The remainder is claimable at once.
    await world.store.apply("s1", RefundClaimed("r1", session.refundable_msat))
    await world.store.apply("s1", RefundPaid("r1"))
    assert (await world.store.get("s1")).state is State.REFUNDED


async def test_a_charger_that_reports_the_transaction_again_keeps_its_session(
    db: Database,
) -> None:
    world = await charging(db)
    await world.status("Available")
    await world.status("Charging")  # e.g. a stale status, then the current one
    await world.after_grace()
    assert (await world.store.get("s1")).state is State.CHARGING
    assert await world.checks() == []


async def test_meter_values_during_the_grace_mean_look_again_not_end(db: Database) -> None:
    world = await charging(db)
    await world.status("Available")
    await world.core.record_meter(
        MeterSample("cp1", 1, str(world.tx), 3_100, LAST_READING + timedelta(minutes=1))
    )
    await world.after_grace()
    assert (await world.store.get("s1")).state is State.CHARGING
    [again] = await world.checks()  # watched for another grace period
    assert again["register_wh"] == 3_100
    await world.after_grace()  # no more readings, still Available: lost
    session = await world.store.get("s1")
    assert (session.state, session.energy_wh) == (State.STOPPED, 2_100)


async def test_a_stop_transaction_within_the_grace_settles_it_and_the_check_does_nothing(
    db: Database,
) -> None:
    world = await charging(db)
    await world.status("Finishing")
    await world.core.stop_transaction(
        "cp1", str(world.tx), 3_200, LAST_READING + timedelta(seconds=30), "EVDisconnected", None
    )
    await world.after_grace()
    session = await world.store.get("s1")
    assert (session.state, session.energy_wh, session.stop_reason) == (
        State.STOPPED,
        2_200,
        "EVDisconnected",
    )
    assert await world.audit() == []


async def test_the_armed_check_survives_a_restart(db: Database) -> None:
    world = await charging(db)
    await world.status("Preparing")  # rebooted with the cable still in
    # Strom restarts: every object is new; only the database remains.
    restarted = World(db, SessionStore(db), world.tx)
    restarted.clock.skipped = world.clock.skipped
    await restarted.after_grace()
    assert (await restarted.store.get("s1")).stop_reason == StopReason.CHARGER_LOST


async def test_a_boot_suspects_the_open_transactions_and_the_status_after_it_decides(
    db: Database,
) -> None:
    world = await charging(db)
    await world.watch.booted(ChargerBooted("cp1", world.clock()))
    assert len(await world.checks()) == 1
    await world.status("Charging")  # it kept the transaction
    await world.after_grace()
    assert (await world.store.get("s1")).state is State.CHARGING


async def test_a_rejected_remote_stop_ends_a_forgotten_transaction_instead_of_retrying(
    db: Database,
) -> None:
    world = await charging(db)  # the charger forgot it silently: no StopTransaction will come
    await world.store.apply("s1", StopRequested(StopReason.INITIATOR))
    world.commands.answer = CommandStatus.REJECTED
    await world.runner().drain()
    # It asked for the connector's status and armed the check; the stop is retried meanwhile.
    assert ("trigger_status", "cp1", "1") in world.commands.calls
    [check] = await world.checks()
    assert check["trigger"] == "stop_rejected"
    assert (await world.store.get("s1")).state is State.STOPPING
    await world.after_grace()  # still "Charging" on record, but no reading for a whole grace
    session = await world.store.get("s1")
    assert (session.state, session.stop_reason) == (State.STOPPED, StopReason.CHARGER_LOST)
    world.clock.skipped += timedelta(minutes=10)
    await world.runner().drain()
    async with db.reader() as conn:
        left = await conn.scalar(
            select(func.count()).where(outbox.c.kind == "remote_stop", outbox.c.state != "done")
        )
    assert left == 0  # no endless retries
    stops = [call for call in world.commands.calls if call[0] == "remote_stop"]
    assert 1 <= len(stops) <= 3


async def test_a_charger_that_rejects_the_stop_but_keeps_metering_is_asked_again(
    db: Database,
) -> None:
    world = await charging(db)
    await world.store.apply("s1", StopRequested(StopReason.BUDGET))
    world.commands.answer = CommandStatus.REJECTED
    await world.runner().drain()
    await world.core.record_meter(
        MeterSample("cp1", 1, str(world.tx), 3_300, LAST_READING + timedelta(minutes=1))
    )
    await world.after_grace()
    assert (await world.store.get("s1")).state is State.STOPPING  # still charging: no end
    async with db.reader() as conn:
        pending = await conn.scalar(
            select(func.count()).where(outbox.c.kind == "remote_stop", outbox.c.state == "pending")
        )
    assert pending == 1


async def test_a_late_stop_after_the_lost_end_is_recorded_and_billed_once(db: Database) -> None:
    world = await charging(db)
    await world.status("Available")
    await world.after_grace()
    ended = await world.store.get("s1")
    await world.store.apply("s1", RefundClaimed("r1", ended.refundable_msat))
    await world.store.apply("s1", RefundPaid("r1"))
    refunded = await world.store.get("s1")
    late = await world.core.stop_transaction(
        "cp1", str(world.tx), 3_500, LAST_READING + timedelta(minutes=1), "PowerLoss", None
    )
    assert late.known
    assert not late.replayed
    after = await world.store.get("s1")
    assert after.state is State.REFUNDED
    assert (after.consumed_msat, after.refunded_msat, after.refundable_msat) == (
        refunded.consumed_msat,
        refunded.refunded_msat,
        0,
    )
    assert after.overrun_msat == refunded.overrun_msat + 150_000  # 500 Wh at 300 sat/kWh
    replay = await world.core.stop_transaction(
        "cp1", str(world.tx), 3_500, LAST_READING + timedelta(minutes=1), "PowerLoss", None
    )
    assert replay.replayed
    assert await world.store.get("s1") == after
    async with db.reader() as conn:
        kinds = list(await conn.scalars(select(ledger_entries.c.kind)))
    assert sorted(kinds) == ["consumption", "payment", "refund"]
    assert [entry.action for entry in await world.audit()] == [
        "transaction_lost",
        "late_stop_after_lost",
    ]


async def test_a_meter_stop_below_a_reported_register_bills_the_register_and_is_recorded(
    db: Database,
) -> None:
    world = await charging(db)
    # The charger restored an older register after a crash: meterStop 2,400 < 3,000 reported.
    await world.core.stop_transaction(
        "cp1", str(world.tx), 2_400, LAST_READING + timedelta(minutes=1), "Local", None
    )
    session = await world.store.get("s1")
    assert session.energy_wh == 2_000  # up to the register the charger reported, never more
    [entry] = await world.audit()
    assert entry.action == "meter_stop_below_register"
    assert (entry.detail["meter_stop_wh"], entry.detail["register_wh"]) == (2_400, 3_000)


async def test_a_refused_start_is_closed_at_once_and_a_stop_for_it_bills_nothing(
    db: Database,
) -> None:
    world = await charging(db)
    refused = await world.core.start_transaction("cp1", 1, "STRANGER", 5_000, T0)
    assert refused.status is Authorization.INVALID
    async with db.reader() as conn:
        row = (
            await conn.execute(
                select(ocpp_transactions).where(ocpp_transactions.c.id == int(refused.transaction))
            )
        ).one()
        still_open = await conn.scalar(
            select(func.count()).where(ocpp_transactions.c.stopped_at.is_(None))
        )
    assert (row.stopped_at, row.stop_reason, row.session_id) == (T0, REFUSED, None)
    assert still_open == 1  # only the session's own transaction
    before = await world.store.get("s1")
    stop = await world.core.stop_transaction(
        "cp1", refused.transaction, 6_000, T0 + timedelta(minutes=1), "DeAuthorized", None
    )
    assert stop.known
    assert await world.store.get("s1") == before


async def test_a_pending_check_row_is_not_held_back_by_a_retried_stop(db: Database) -> None:
    # The check is not bound to the session's row order: a RemoteStop retried for hours (the
    # very case it ends) must not delay it.
    world = await charging(db)

    def stuck_stop(conn: Connection) -> None:
        queue_effect(
            conn,
            key="s1:stuck",
            kind="remote_stop",
            payload={"charger_id": "cp1", "transaction_id": world.tx},
            session_id="s1",
            now=T0,
        )
        conn.execute(
            update(outbox)
            .where(outbox.c.idempotency_key == "s1:stuck")
            .values(attempts=12, run_after=world.clock() + timedelta(hours=1))
        )

    await db.write(stuck_stop)
    await world.status("Available")
    world.clock.skipped += timedelta(seconds=121)
    due = await OutboxStore(db).due(world.clock())
    assert CHECK_KIND in {row.kind for row in due}


async def test_a_201_transaction_is_stopped_and_reported_lost_by_the_charger_s_reference(
    db: Database,
) -> None:
    world = await charging(db, reference="c0ffee-17")
    await world.store.apply("s1", StopRequested(StopReason.INITIATOR))
    world.commands.answer = CommandStatus.REJECTED
    await world.runner().drain()
    assert ("remote_stop", "cp1", "c0ffee-17") in world.commands.calls
    await world.after_grace()
    [entry] = await world.audit()
    assert entry.action == "transaction_lost"
    assert (entry.detail["transaction"], entry.detail["transaction_id"]) == ("c0ffee-17", world.tx)


async def test_a_16_transaction_is_stopped_and_reported_by_its_number(db: Database) -> None:
    world = await charging(db)
    await world.store.apply("s1", StopRequested(StopReason.INITIATOR))
    await world.runner().drain()
    assert ("remote_stop", "cp1", str(world.tx)) in world.commands.calls
    await world.core.stop_transaction(
        "cp1", str(world.tx), 2_400, LAST_READING + timedelta(minutes=1), "Local", None
    )
    [entry] = await world.audit()
    assert entry.action == "meter_stop_below_register"
    assert (entry.detail["transaction"], entry.detail["transaction_id"]) == (
        str(world.tx),
        world.tx,
    )
