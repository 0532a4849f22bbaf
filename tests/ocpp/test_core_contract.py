"""One contract for every OcppCore: the in-memory one and the database one (SQLite, PostgreSQL).

Each behaviour runs against each implementation through the port alone; what was recorded is
read through a small per-implementation probe (the stops kept as unknown, the meter samples,
the energy a transaction is billed). OCPP 2.0.1 starts bring the charger's own reference.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from ocpp_server import InMemoryOcppCore
from ocpp_server.v16.messages import transaction_id, transaction_reference
from strom_core.ports import Authorization, MeterSample, OcppCore
from strom_core.session_events import PaymentSettled
from strom_services.ocpp_core import DatabaseOcppCore
from strom_storage.db import Database
from strom_storage.ocpp import find_archived, find_transaction
from strom_storage.schema import meter_readings, ocpp_unknown_stops
from tests.storage.test_session_store import make

PG_URL = os.environ.get("STROM_TEST_DATABASE_URL", "")
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
TAG = "Ts1"  # issued for a paid session on cp1, connector 1


@dataclass
class Contract:
    """An OcppCore with one paid session's tag issued, and probes into what it recorded."""

    core: OcppCore
    unknown_stops: Callable[[], Awaitable[int]]
    samples: Callable[[str], Awaitable[set[tuple[datetime, int]]]]
    # The energy billed for a transaction of cp1 so far (its latest register, or its stop).
    energy_wh: Callable[[str], Awaitable[int]]
    kind: str
    # The names the charger's earlier transactions of a reused reference are kept under.
    archived: Callable[[str], Awaitable[list[str]]]


def _memory() -> Contract:
    core = InMemoryOcppCore()
    core.issue_id_tag("cp1", 1, TAG)

    async def unknown_stops() -> int:
        return len(core.unknown_stops())

    async def samples(transaction: str) -> set[tuple[datetime, int]]:
        return {(s.at, s.register_wh) for s in core.samples("cp1", transaction)}

    async def energy_wh(transaction: str) -> int:
        recorded = core.transaction(transaction, "cp1")
        assert recorded is not None
        if recorded.energy_wh is not None:
            return recorded.energy_wh
        register = core.latest_register_wh("cp1", transaction)
        return 0 if register is None else register - recorded.meter_start_wh

    async def archived(reference: str) -> list[str]:
        return [
            t.transaction
            for t in core.transactions()
            if t.charger_id == "cp1" and t.transaction.startswith(f"{reference}~")
        ]

    return Contract(core, unknown_stops, samples, energy_wh, "memory", archived)


async def _database(db: Database) -> Contract:
    store = await make(db)  # session s1 on cp1/1 with idTag Ts1
    await store.apply("s1", PaymentSettled("h1", 5_000_000))

    async def unknown_stops() -> int:
        async with db.reader() as conn:
            count = await conn.scalar(select(func.count()).select_from(ocpp_unknown_stops))
        return int(count or 0)

    async def samples(transaction: str) -> set[tuple[datetime, int]]:
        recorded = await db.read(partial(find_transaction, charger_id="cp1", reference=transaction))
        assert recorded is not None
        async with db.reader() as conn:
            rows = await conn.execute(
                select(meter_readings.c.sampled_at, meter_readings.c.register_wh).where(
                    meter_readings.c.charger_id == "cp1",
                    meter_readings.c.transaction_id == recorded.number,
                )
            )
            return {(at.astimezone(UTC), register) for at, register in rows}

    async def energy_wh(transaction: str) -> int:
        recorded = await db.read(partial(find_transaction, charger_id="cp1", reference=transaction))
        assert recorded is not None
        if recorded.session_id is None:
            return 0  # refused: bills nothing
        return (await store.get(recorded.session_id)).energy_wh

    async def archived(reference: str) -> list[str]:
        rows = await db.read(partial(find_archived, charger_id="cp1", reference=reference))
        return [row.reference for row in rows]

    return Contract(
        DatabaseOcppCore(store), unknown_stops, samples, energy_wh, "database", archived
    )


async def _postgres() -> tuple[Database, Callable[[], Awaitable[None]]]:
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    await admin.dispose()

    async def drop() -> None:
        dropper = create_async_engine(PG_URL)
        async with dropper.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await dropper.dispose()

    return Database.from_url(PG_URL, search_path=schema), drop


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def contract(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Contract]:
    if request.param == "memory":
        yield _memory()
        return
    if request.param == "sqlite":
        db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'strom.sqlite3'}")
        cleanup = None
    elif not PG_URL:
        pytest.skip("PostgreSQL run needs STROM_TEST_DATABASE_URL (set by .ci/run)")
    else:
        db, cleanup = await _postgres()
    await db.upgrade()
    try:
        yield await _database(db)
    finally:
        await db.close()
        if cleanup is not None:
            await cleanup()


async def test_only_the_issued_tag_is_accepted_and_only_on_its_charger(contract: Contract) -> None:
    core = contract.core
    assert await core.authorize("cp1", TAG) is Authorization.ACCEPTED
    assert await core.authorize("cp2", TAG) is Authorization.INVALID
    assert await core.authorize("cp1", "NOT-OURS") is Authorization.INVALID


async def test_a_start_is_recorded_once_and_its_replay_gets_the_same_answer(
    contract: Contract,
) -> None:
    core = contract.core
    first = await core.start_transaction("cp1", 1, TAG, 1_000, T0)
    assert first.status is Authorization.ACCEPTED
    assert not first.replayed
    again = await core.start_transaction("cp1", 1, TAG, 1_000, T0)
    assert (again.transaction, again.status, again.replayed) == (
        first.transaction,
        Authorization.ACCEPTED,
        True,
    )
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE
    # The same tag for a second, different transaction while the first runs.
    other = await core.start_transaction("cp1", 1, TAG, 1_000, T0 + timedelta(seconds=5))
    assert other.status is Authorization.IN_USE
    assert other.transaction != first.transaction


async def test_a_refused_start_still_gets_its_own_reference(contract: Contract) -> None:
    core = contract.core
    stranger = await core.start_transaction("cp1", 1, "STRANGER", 0, T0)
    assert stranger.status is Authorization.INVALID
    elsewhere = await core.start_transaction("cp2", 1, TAG, 0, T0)
    assert elsewhere.status is Authorization.INVALID
    assert stranger.transaction != elsewhere.transaction
    started = await core.start_transaction("cp1", 1, TAG, 0, T0)
    assert started.status is Authorization.ACCEPTED
    assert started.transaction not in (stranger.transaction, elsewhere.transaction)


async def test_a_known_stop_is_recorded_once(contract: Contract) -> None:
    core = contract.core
    started = await core.start_transaction("cp1", 1, TAG, 1_000, T0)
    at = T0 + timedelta(minutes=10)
    stop = await core.stop_transaction("cp1", started.transaction, 4_000, at, "Local", TAG)
    assert (stop.known, stop.replayed, stop.status) == (True, False, Authorization.ACCEPTED)
    again = await core.stop_transaction("cp1", started.transaction, 4_000, at, "Local", TAG)
    assert (again.known, again.replayed) == (True, True)
    assert await core.authorize("cp1", TAG) is not Authorization.ACCEPTED  # used up
    assert await contract.unknown_stops() == 0


async def test_a_stop_that_is_not_ours_is_recorded_as_unknown_never_guessed(
    contract: Contract,
) -> None:
    core = contract.core
    started = await core.start_transaction("cp1", 1, TAG, 1_000, T0)
    unknown = "424242"
    assert unknown != started.transaction
    stop = await core.stop_transaction("cp1", unknown, 9_000, T0, "PowerLoss", None)
    assert not stop.known
    repeated = await core.stop_transaction("cp1", unknown, 9_000, T0, "PowerLoss", None)
    assert not repeated.known
    # The running transaction's reference, from another charger, is not that transaction.
    foreign = await core.stop_transaction("cp2", started.transaction, 9_000, T0, "Local", None)
    assert not foreign.known
    assert await contract.unknown_stops() == 2
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE  # still running


async def test_meter_samples_are_kept_once_in_any_order(contract: Contract) -> None:
    core = contract.core
    started = await core.start_transaction("cp1", 1, TAG, 1_000, T0)
    later, earlier = T0 + timedelta(minutes=5), T0 + timedelta(minutes=2)
    for register, at in ((2_000, later), (2_000, later), (1_500, earlier)):
        await core.record_meter(MeterSample("cp1", 1, started.transaction, register, at))
    assert await contract.samples(started.transaction) == {(later, 2_000), (earlier, 1_500)}


async def test_the_reference_is_one_an_ocpp16_remote_stop_can_send(contract: Contract) -> None:
    started = await contract.core.start_transaction("cp1", 1, TAG, 1_000, T0)
    wire = transaction_id(started.transaction)  # RemoteStopTransaction's transactionId
    assert wire >= 1
    assert transaction_reference(wire) == started.transaction


# --- OCPP 2.0.1: the charger chooses the transaction's reference ------------------------------

UUID = "0b5f3c1e-8d2a-4c47-9f61-2a7d3e9b4c10"  # 36 characters, as many 2.0.1 chargers choose


async def test_a_charger_chosen_start_is_accepted_and_billed_once_on_stop(
    contract: Contract,
) -> None:
    core = contract.core
    started = await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction=UUID)
    assert (started.transaction, started.status, started.replayed) == (
        UUID,
        Authorization.ACCEPTED,
        False,
    )
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE
    at = T0 + timedelta(minutes=10)
    stop = await core.stop_transaction("cp1", UUID, 4_000, at, "Local", TAG)
    assert (stop.known, stop.replayed) == (True, False)
    assert await contract.energy_wh(UUID) == 3_000
    again = await core.stop_transaction("cp1", UUID, 4_500, at, "Local", TAG)
    assert (again.known, again.replayed) == (True, True)
    assert await contract.energy_wh(UUID) == 3_000  # billed once
    assert await contract.unknown_stops() == 0


async def test_a_replayed_charger_chosen_start_changes_nothing(contract: Contract) -> None:
    core = contract.core
    first = await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction="17")
    await core.record_meter(MeterSample("cp1", 1, "17", 2_000, T0 + timedelta(minutes=1)))
    # Resent after a reconnect (a 2.0.1 charger may resend with its own later timestamp).
    for at in (T0, T0 + timedelta(seconds=30)):
        again = await core.start_transaction("cp1", 1, TAG, 1_000, at, transaction="17")
        assert (again.transaction, again.status, again.replayed) == (
            first.transaction,
            first.status,
            True,
        )
    assert await contract.energy_wh("17") == 1_000
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE
    refused = await core.start_transaction("cp1", 1, "STRANGER", 0, T0, transaction="r-1")
    assert refused.status is Authorization.INVALID
    replayed = await core.start_transaction("cp1", 1, "STRANGER", 0, T0, transaction="r-1")
    assert (replayed.status, replayed.replayed) == (Authorization.INVALID, True)


async def test_two_chargers_with_the_same_reference_stay_apart(contract: Contract) -> None:
    core = contract.core
    elsewhere = await core.start_transaction("cp2", 1, "THEIRS", 0, T0, transaction="1")
    assert (elsewhere.status, elsewhere.replayed) == (Authorization.INVALID, False)
    ours = await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction="1")
    assert (ours.transaction, ours.status, ours.replayed) == ("1", Authorization.ACCEPTED, False)
    # cp2's stop of its "1" is its own transaction's: cp1's "1" keeps running.
    stop = await core.stop_transaction("cp2", "1", 9_000, T0 + timedelta(minutes=5), "Local", None)
    assert stop.known
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE
    assert await contract.energy_wh("1") == 0
    await core.stop_transaction("cp1", "1", 1_500, T0 + timedelta(minutes=9), "Local", TAG)
    assert await contract.energy_wh("1") == 500
    assert await contract.unknown_stops() == 0


async def test_a_201_reference_and_a_16_id_of_one_charger_do_not_mix(contract: Contract) -> None:
    core = contract.core
    old = await core.start_transaction("cp1", 1, TAG, 1_000, T0)  # OCPP 1.6: "1", allocated
    # The charger now speaks 2.0.1 and chooses the same characters: a transaction of its own.
    new = await core.start_transaction("cp1", 2, "STRANGER", 0, T0, transaction=old.transaction)
    assert (new.transaction, new.status, new.replayed) == (
        old.transaction,
        Authorization.INVALID,
        False,
    )
    # Its stop of that reference is its own record's: the 1.6 transaction is not billed.
    stop = await core.stop_transaction("cp1", old.transaction, 9_000, T0, "Local", None)
    assert (stop.known, stop.replayed) == (True, False)
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE
    # A 2.0.1 transaction's internal number is no reference of it.
    accepted = await core.start_transaction("cp1", 1, "OTHER", 0, T0, transaction="abc")
    number = str(int(old.transaction) + 2)  # allocated to "abc" after "1" and the refused one
    unknown = await core.stop_transaction("cp1", number, 9_000, T0, "Local", None)
    assert not unknown.known
    assert accepted.transaction == "abc"
    assert await contract.unknown_stops() == 1


async def test_a_16_id_is_found_when_the_charger_has_no_reference_of_its_own(
    contract: Contract,
) -> None:
    core = contract.core
    old = await core.start_transaction("cp1", 1, TAG, 1_000, T0)
    await core.start_transaction("cp1", 1, "STRANGER", 0, T0, transaction="other")
    stop = await core.stop_transaction("cp1", old.transaction, 2_500, T0, "Local", TAG)
    assert (stop.known, stop.replayed) == (True, False)
    assert await contract.energy_wh(old.transaction) == 1_500


async def test_an_unknown_201_stop_is_recorded_once(contract: Contract) -> None:
    core = contract.core
    await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction=UUID)
    other = "7c1d2e3f-0000-4000-8000-000000000000"
    for _ in range(2):
        stop = await core.stop_transaction("cp1", other, 9_000, T0, "PowerLoss", None)
        assert not stop.known
    assert await contract.unknown_stops() == 1
    assert await core.authorize("cp1", TAG) is Authorization.IN_USE  # never guessed onto it
    assert await contract.energy_wh(UUID) == 0


async def test_a_meter_sample_of_a_201_reference_re_bills_it(contract: Contract) -> None:
    core = contract.core
    await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction=UUID)
    at = T0 + timedelta(minutes=3)
    await core.record_meter(MeterSample("cp1", 1, UUID, 2_500, at))
    await core.record_meter(MeterSample("cp1", 1, UUID, 2_500, at))
    assert await contract.samples(UUID) == {(at, 2_500)}
    assert await contract.energy_wh(UUID) == 1_500


# --- a reference reused after a reboot ---------------------------------------------------------


async def _issue_second_tag(contract: Contract) -> str:
    """A second paid session's tag on cp1/1 (the first one's session is over)."""
    core = contract.core
    if isinstance(core, InMemoryOcppCore):
        return core.issue_id_tag("cp1", 1, "Ts2")
    assert isinstance(core, DatabaseOcppCore)
    await make(core.db, "s2")  # idTag "Ts2"
    await core.store.apply("s2", PaymentSettled("h2", 5_000_000))
    return "Ts2"


async def test_a_reference_reused_after_its_end_is_a_new_transaction(contract: Contract) -> None:
    core = contract.core
    await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction="1")
    ended = T0 + timedelta(minutes=10)
    await core.stop_transaction("cp1", "1", 4_000, ended, "Local", TAG)
    second = await _issue_second_tag(contract)
    # The charger rebooted and chose "1" again for the next paid session.
    later = T0 + timedelta(hours=1)
    reused = await core.start_transaction("cp1", 1, second, 5_000, later, transaction="1")
    assert (reused.transaction, reused.status, reused.replayed) == (
        "1",
        Authorization.ACCEPTED,
        False,
    )
    assert await core.authorize("cp1", second) is Authorization.IN_USE
    # Its true replay is still a replay.
    again = await core.start_transaction("cp1", 1, second, 5_000, later, transaction="1")
    assert (again.status, again.replayed) == (Authorization.ACCEPTED, True)
    # A late Ended of the earlier transaction changes nothing; the new one is billed on.
    late = await core.stop_transaction("cp1", "1", 4_000, ended, "Local", TAG)
    assert (late.known, late.replayed) == (True, True)
    await core.record_meter(MeterSample("cp1", 1, "1", 3_000, ended - timedelta(minutes=1)))
    assert await core.authorize("cp1", second) is Authorization.IN_USE
    stop = await core.stop_transaction(
        "cp1", "1", 7_500, later + timedelta(minutes=20), "Local", None
    )
    assert (stop.known, stop.replayed) == (True, False)
    assert await contract.energy_wh("1") == 2_500
    assert await contract.unknown_stops() == 0


async def test_the_earlier_transaction_of_a_reused_reference_stays_findable(
    contract: Contract,
) -> None:
    core = contract.core
    await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction="tx")
    await core.stop_transaction("cp1", "tx", 4_000, T0 + timedelta(minutes=10), "Local", TAG)
    await core.start_transaction(
        "cp1", 1, "STRANGER", 9_000, T0 + timedelta(hours=1), transaction="tx"
    )
    archived = await contract.archived("tx")
    assert len(archived) == 1
    assert archived[0].startswith("tx~")
    assert await contract.energy_wh(archived[0]) == 3_000  # billed once, still its own


async def test_a_late_message_of_an_ended_transaction_is_no_reuse(contract: Contract) -> None:
    core = contract.core
    await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction="1")
    ended = T0 + timedelta(minutes=10)
    await core.stop_transaction("cp1", "1", 4_000, ended, "Local", TAG)
    # Strom restarted: the charger's late events of "1" (up to its Ended) claim it again.
    for at in (T0 + timedelta(minutes=5), ended):
        again = await core.start_transaction("cp1", 1, TAG, 4_000, at, transaction="1")
        assert (again.status, again.replayed) == (Authorization.ACCEPTED, True)
    assert await contract.archived("1") == []
    assert await contract.energy_wh("1") == 3_000


async def test_a_refused_reference_reused_later_is_a_new_transaction(contract: Contract) -> None:
    core = contract.core
    refused = await core.start_transaction("cp1", 1, "STRANGER", 0, T0, transaction="1")
    assert refused.status is Authorization.INVALID
    later = T0 + timedelta(hours=1)
    ours = await core.start_transaction("cp1", 1, TAG, 1_000, later, transaction="1")
    assert (ours.status, ours.replayed) == (Authorization.ACCEPTED, False)


async def test_an_open_transaction_is_never_replaced_by_a_start_of_its_reference(
    contract: Contract,
) -> None:
    core = contract.core
    await core.start_transaction("cp1", 1, TAG, 1_000, T0, transaction="1")
    # While it runs, a start of "1" at any time is its replay (its Ended is still to come).
    again = await core.start_transaction(
        "cp1", 1, "OTHER", 0, T0 + timedelta(hours=2), transaction="1"
    )
    assert (again.status, again.replayed) == (Authorization.ACCEPTED, True)
    assert await contract.archived("1") == []
