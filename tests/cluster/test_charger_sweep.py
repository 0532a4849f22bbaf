"""The cluster's charger sweep on PostgreSQL: a charger shown online that no process holds (its
process stopped or died) is reconnecting, then offline; one a process holds is left online.

A process that stops records nothing while it stops, and one that dies cannot: the leader of
``charger-sweep`` gives their chargers the reconnect grace a start gives, without waiting for a
process to start.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from strom.cluster import ClusterNode
from strom_cluster import LocalBus, LocalHub
from strom_core.clock import ManualClock
from strom_core.config import (
    ClusterConfig,
    ConnectorConfig,
    LocationConfig,
    ProfileConfig,
    TariffConfig,
)
from strom_core.ports import ChargerLink
from strom_storage.chargers import ChargerStore, run_unheld_sweep
from strom_storage.db import Database
from strom_storage.leases import LeaseStore
from strom_storage.schema import status_history

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
GRACE_S = 90
TTL = 1.5
WAIT = 10.0


def _profile(charger_id: str) -> ProfileConfig:
    return ProfileConfig(
        id=charger_id,
        name=charger_id,
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=(ConnectorConfig(id=1, max_power_kw=Decimal(11)),),
        tariff=TariffConfig(per_kwh_sat=Decimal(300)),
    )


PROFILES = (_profile("left"), _profile("held"), _profile("never"))


@pytest.fixture
async def db(cluster_url: str) -> AsyncIterator[Database]:
    """The chargers: "left" online at a process that stopped (its lease released), "held"
    online at a live process "b", "never" offline."""
    database = Database.from_url(cluster_url)
    leases = LeaseStore(database)
    store = ChargerStore(database, process_id="gone")
    await store.sync(PROFILES, NOW)
    for charger_id, owner in (("left", "gone"), ("held", "b")):
        await leases.take_over(f"charger:{charger_id}", owner, 60)
        await store.set_online(charger_id, True, NOW - timedelta(hours=1))
    released = await leases.holder("charger:left")
    assert released is not None
    assert await leases.release(released)  # "gone" stopped: SIGTERM gives its leases up
    try:
        yield database
    finally:
        await database.close()


async def _offline_history(db: Database) -> list[str]:
    rows = await db.read(
        lambda conn: conn.execute(
            select(status_history.c.charger_id).where(status_history.c.status == "Offline")
        ).all()
    )
    return sorted(row.charger_id for row in rows)


async def test_the_leader_shows_an_unheld_charger_reconnecting_then_offline(
    db: Database,
) -> None:
    node = ClusterNode(ClusterConfig(enabled=True, lease_ttl_s=TTL), db, LocalBus(LocalHub()), "a")
    await node.join()
    store = ChargerStore(db, process_id="a")
    swept: list[list[str]] = []
    done = asyncio.Event()

    def on_swept(ids: list[str]) -> None:
        swept.append(ids)
        done.set()

    work = partial(
        run_unheld_sweep,
        store,
        grace_s=GRACE_S,
        interval_s=0.05,
        clock=ManualClock(NOW),
        on_swept=on_swept,
    )
    leader = asyncio.create_task(node.lead("charger-sweep", work))
    try:
        await asyncio.wait_for(done.wait(), WAIT)
        await asyncio.sleep(0.2)  # a few more sweeps: they find nothing left to do
    finally:
        leader.cancel()
        await asyncio.gather(leader, return_exceptions=True)
        await node.aclose()

    assert swept == [["left"]]  # later sweeps found nothing more to do
    assert await store.links(NOW) == {
        "left": ChargerLink.RECONNECTING,  # it may reconnect to any process meanwhile
        "held": ChargerLink.ONLINE,  # its process is alive and holds its connection
        "never": ChargerLink.OFFLINE,
    }
    after = NOW + timedelta(seconds=GRACE_S)
    assert (await store.links(after))["left"] is ChargerLink.OFFLINE
    assert await _offline_history(db) == ["left"]  # the change is on the timeline


async def test_a_sweep_does_not_renew_a_grace_that_runs(db: Database) -> None:
    store = ChargerStore(db)
    assert await store.sweep_unheld(NOW, GRACE_S) == ["left"]
    later = NOW + timedelta(seconds=60)
    assert await store.sweep_unheld(later, GRACE_S) == []
    assert (await store.links(NOW + timedelta(seconds=GRACE_S)))["left"] is ChargerLink.OFFLINE
    assert await _offline_history(db) == ["left"]  # recorded once


async def test_a_charger_that_reconnects_within_its_grace_is_online(db: Database) -> None:
    store = ChargerStore(db, process_id="b")
    await store.sweep_unheld(NOW, GRACE_S)
    await LeaseStore(db).take_over("charger:left", "b", 60)  # it came back, to process b
    await store.set_online("left", True, NOW + timedelta(seconds=5))
    assert await store.sweep_unheld(NOW + timedelta(seconds=10), GRACE_S) == []
    assert (await store.links(NOW + timedelta(hours=1)))["left"] is ChargerLink.ONLINE


async def test_a_lease_taken_while_the_sweep_runs_keeps_the_charger_online(
    db: Database, cluster_url: str
) -> None:
    # The charger reconnects to process b as the sweep runs: b's lease and then its "online"
    # commit while the sweep waits for the charger's row. The sweep must see the lease.
    engine = create_async_engine(cluster_url)
    try:
        async with engine.connect() as lease_tx, engine.connect() as online_tx:
            await lease_tx.execute(
                text(
                    "UPDATE leases SET owner = 'b', token = token + 1, "
                    "expires_at = now() + interval '60 seconds' WHERE name = 'charger:left'"
                )
            )
            await online_tx.execute(
                text("UPDATE chargers SET online = true, reconnect_until = NULL WHERE id = 'left'")
            )
            sweep = asyncio.create_task(ChargerStore(db).sweep_unheld(NOW, GRACE_S))
            await _until_waiting_for_a_lock(engine)  # the sweep waits for the charger's row
            await lease_tx.commit()
            await online_tx.commit()
            assert await asyncio.wait_for(sweep, WAIT) == []
    finally:
        await engine.dispose()
    assert (await ChargerStore(db).links(NOW + timedelta(hours=1)))["left"] is ChargerLink.ONLINE
    assert await _offline_history(db) == []


async def _until_waiting_for_a_lock(engine: AsyncEngine) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    async with engine.connect() as conn:
        for _ in range(int(WAIT / 0.02)):
            if await conn.scalar(query):
                return
            await conn.rollback()  # a fresh look at the activity next time
            await asyncio.sleep(0.02)
    raise AssertionError("the sweep never waited for the charger's row")
