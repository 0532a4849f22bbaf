"""One contract for every OcppCore: the in-memory one and the database one (SQLite, PostgreSQL).

Each behaviour runs against each implementation through the port alone; what was recorded is
read through a small per-implementation probe (the stops kept as unknown, the meter samples).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
from strom_storage.ocpp import transaction_number
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


def _memory() -> Contract:
    core = InMemoryOcppCore()
    core.issue_id_tag("cp1", 1, TAG)

    async def unknown_stops() -> int:
        return len(core.unknown_stops())

    async def samples(transaction: str) -> set[tuple[datetime, int]]:
        return {(s.at, s.register_wh) for s in core.samples("cp1", transaction)}

    return Contract(core, unknown_stops, samples)


async def _database(db: Database) -> Contract:
    store = await make(db)  # session s1 on cp1/1 with idTag Ts1
    await store.apply("s1", PaymentSettled("h1", 5_000_000))

    async def unknown_stops() -> int:
        async with db.reader() as conn:
            count = await conn.scalar(select(func.count()).select_from(ocpp_unknown_stops))
        return int(count or 0)

    async def samples(transaction: str) -> set[tuple[datetime, int]]:
        number = transaction_number(transaction)
        async with db.reader() as conn:
            rows = await conn.execute(
                select(meter_readings.c.sampled_at, meter_readings.c.register_wh).where(
                    meter_readings.c.transaction_id == number
                )
            )
            return {(at.astimezone(UTC), register) for at, register in rows}

    return Contract(DatabaseOcppCore(store), unknown_stops, samples)


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
