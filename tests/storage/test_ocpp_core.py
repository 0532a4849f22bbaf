"""The core's OCPP rules: issued idTags only, replays answered once, ids never reused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from strom_core.ports import Authorization, MeterSample
from strom_core.session import State
from strom_core.session_events import PaymentSettled
from strom_services.ocpp_core import DatabaseOcppCore
from strom_storage.db import Database
from strom_storage.schema import ocpp_transactions, ocpp_unknown_stops
from tests.storage.test_session_store import make

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


async def paid(db: Database) -> DatabaseOcppCore:
    store = await make(db)  # session s1 on cp1/1 with idTag "Ts1"
    await store.apply("s1", PaymentSettled("h1", 5_000_000))
    return DatabaseOcppCore(store)


async def test_only_an_issued_id_tag_of_a_paid_session_is_accepted(db: Database) -> None:
    core = DatabaseOcppCore(await make(db))
    assert await core.authorize("cp1", "Ts1") is Authorization.INVALID  # not paid yet
    await core.store.apply("s1", PaymentSettled("h1", 5_000_000))
    assert await core.authorize("cp1", "Ts1") is Authorization.ACCEPTED
    assert await core.authorize("cp1", "NOT-OURS") is Authorization.INVALID
    assert await core.authorize("cp2", "Ts1") is Authorization.INVALID


async def test_start_is_recorded_once_and_replays_get_the_same_answer(db: Database) -> None:
    core = await paid(db)
    first = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0)
    assert first.status is Authorization.ACCEPTED
    assert not first.replayed
    again = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0)
    assert (again.transaction, again.status, again.replayed) == (
        first.transaction,
        Authorization.ACCEPTED,
        True,
    )
    assert (await core.store.get("s1")).state is State.CHARGING
    # The same tag used for a second, different transaction while the first runs:
    other = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0 + timedelta(seconds=5))
    assert other.status is Authorization.IN_USE
    assert int(other.transaction) == int(first.transaction) + 1


async def test_unknown_tag_gets_an_id_but_is_invalid(db: Database) -> None:
    core = await paid(db)
    decision = await core.start_transaction("cp1", 1, "STRANGER", 0, T0)
    assert decision.status is Authorization.INVALID
    assert (await core.store.get("s1")).state is State.PAID


async def test_transaction_ids_keep_rising_across_a_restart(db: Database) -> None:
    core = await paid(db)
    a = await core.start_transaction("cp1", 1, "X1", 0, T0)
    restarted = DatabaseOcppCore(core.store)
    b = await restarted.start_transaction("cp1", 1, "X2", 0, T0)
    assert int(b.transaction) > int(a.transaction)


async def test_meter_and_stop_bill_the_session_and_a_replayed_stop_changes_nothing(
    db: Database,
) -> None:
    core = await paid(db)
    tx = (await core.start_transaction("cp1", 1, "Ts1", 1_000, T0)).transaction
    await core.record_meter(MeterSample("cp1", 1, tx, 2_000, T0 + timedelta(minutes=5)))
    await core.record_meter(MeterSample("cp1", 1, tx, 2_000, T0 + timedelta(minutes=5)))
    await core.record_meter(MeterSample("cp1", 1, tx, 1_500, T0 + timedelta(minutes=2)))
    assert (await core.store.get("s1")).energy_wh == 1_000
    stop = await core.stop_transaction("cp1", tx, 3_000, T0 + timedelta(minutes=10), "Local", None)
    assert stop.known
    assert not stop.replayed
    session = await core.store.get("s1")
    assert (session.state, session.energy_wh, session.consumed_msat) == (
        State.STOPPED,
        2_000,
        10_000 + 600_000,
    )
    replay = await core.stop_transaction(
        "cp1", tx, 3_000, T0 + timedelta(minutes=10), "Local", None
    )
    assert replay.replayed
    assert await core.store.get("s1") == session


async def test_stop_for_an_unknown_transaction_is_recorded_not_guessed(db: Database) -> None:
    core = await paid(db)
    await core.start_transaction("cp1", 1, "Ts1", 1_000, T0)
    decision = await core.stop_transaction("cp1", "999", 5_000, T0, "PowerLoss", "Ts1")
    assert decision.known is False
    await core.stop_transaction("cp1", "999", 5_000, T0, "PowerLoss", "Ts1")
    async with db.reader() as conn:
        assert await conn.scalar(select(func.count()).select_from(ocpp_unknown_stops)) == 1
        stopped = await conn.scalar(
            select(func.count()).where(ocpp_transactions.c.meter_stop_wh.is_not(None))
        )
    assert stopped == 0
    assert (await core.store.get("s1")).state is State.CHARGING
