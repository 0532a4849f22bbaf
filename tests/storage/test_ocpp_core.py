"""The core's OCPP rules: issued idTags only, replays answered once, ids never reused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from strom_core.ports import Authorization, MeterSample
from strom_core.session import State
from strom_core.session_events import PaymentSettled
from strom_services.ocpp_core import DatabaseOcppCore
from strom_storage.db import Database
from strom_storage.schema import meter_readings, ocpp_transactions, ocpp_unknown_stops
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


async def test_a_charger_chosen_start_advances_the_session_under_strom_s_own_number(
    db: Database,
) -> None:
    core = await paid(db)
    decision = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0, transaction="tx-A")
    assert decision.transaction == "tx-A"
    session = await core.store.get("s1")
    assert session.state is State.CHARGING
    async with db.reader() as conn:
        row = (
            await conn.execute(
                select(ocpp_transactions.c.id, ocpp_transactions.c.charger_reference)
            )
        ).one()
    assert (row.id, row.charger_reference) == (session.transaction_id, "tx-A")
    # 1.6 ids go on from the same allocator.
    after = await core.start_transaction("cp1", 1, "X1", 0, T0)
    assert int(after.transaction) == row.id + 1


async def test_a_charger_reference_no_transaction_can_have_is_refused_and_changes_nothing(
    db: Database,
) -> None:
    core = await paid(db)
    for bad in ("", "x" * 37):
        with pytest.raises(ValueError, match="1 to 36 characters"):
            await core.start_transaction("cp1", 1, "Ts1", 1_000, T0, transaction=bad)
    assert (await core.store.get("s1")).state is State.PAID
    # A stop of such a reference cannot be kept either: answered unknown, nothing written.
    decision = await core.stop_transaction("cp1", "y" * 37, 5_000, T0, "Local", None)
    assert decision.known is False
    async with db.reader() as conn:
        assert await conn.scalar(select(func.count()).select_from(ocpp_transactions)) == 0
        assert await conn.scalar(select(func.count()).select_from(ocpp_unknown_stops)) == 0


async def test_unknown_stops_are_kept_under_a_number_or_the_charger_s_reference(
    db: Database,
) -> None:
    core = await paid(db)
    await core.stop_transaction("cp1", "999", 5_000, T0, "PowerLoss", None)
    await core.stop_transaction("cp1", "tx-9", 5_000, T0, "PowerLoss", None)
    await core.stop_transaction("cp1", "007", 5_000, T0, "PowerLoss", None)  # not 7
    await core.stop_transaction("cp2", "tx-9", 5_000, T0, "PowerLoss", None)
    async with db.reader() as conn:
        rows = await conn.execute(
            select(
                ocpp_unknown_stops.c.charger_id,
                ocpp_unknown_stops.c.transaction_id,
                ocpp_unknown_stops.c.charger_reference,
            )
        )
        kept = {tuple(row) for row in rows}
    assert kept == {
        ("cp1", 999, None),
        ("cp1", None, "tx-9"),
        ("cp1", None, "007"),
        ("cp2", None, "tx-9"),
    }


async def test_a_meter_sample_of_a_reference_the_charger_never_started_is_dropped(
    db: Database,
) -> None:
    core = await paid(db)
    started = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0, transaction="tx-A")
    number = (await core.store.get("s1")).transaction_id
    # Neither another reference nor Strom's own number of the charger's transaction is it.
    for reference in ("tx-B", str(number)):
        await core.record_meter(MeterSample("cp1", 1, reference, 9_000, T0))
    async with db.reader() as conn:
        assert await conn.scalar(select(func.count()).select_from(meter_readings)) == 0
    assert (await core.store.get("s1")).energy_wh == 0
    assert started.transaction == "tx-A"


async def test_the_stop_that_bills_the_session_tells_its_final_cost(db: Database) -> None:
    core = await paid(db)
    started = await core.start_transaction("cp1", 1, "Ts1", 1_000, T0, transaction="tx-9")
    at = T0 + timedelta(minutes=10)
    stop = await core.stop_transaction("cp1", started.transaction, 3_000, at, "Local", None)
    session = await core.store.get("s1")
    assert session.state is not State.CHARGING
    assert stop.cost_msat == session.consumed_msat
    assert stop.cost_msat is not None
    assert stop.cost_msat > 0
    again = await core.stop_transaction("cp1", started.transaction, 3_000, at, "Local", None)
    assert (again.replayed, again.cost_msat) == (True, None)  # billed once, told once
