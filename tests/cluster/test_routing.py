"""Two Strom "processes" on one PostgreSQL: charger leases and commands routed to the owner.

Each process is an :class:`OcppServer` with a :class:`ClusterChargers` of its own (its own
``Database`` engines, its own bus); the buses meet in a :class:`LocalHub` (or PostgreSQL's
LISTEN/NOTIFY). A simulated charger connects over a real websocket to one process, and the
other one commands it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import orjson
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from ocpp_server import (
    InMemoryOcppCore,
    MemoryEventSink,
    OcppServer,
    SimulatedChargePoint,
    SimulatorOptions,
    StaticChargerAuth,
)
from ocpp_server.cluster import SUBJECT, ClusterChargers
from ocpp_server.power import OcppPowerLimits
from ocpp_server.v16 import GetConfigurationResult
from strom_cluster import LocalBus, LocalHub, PgNotifyBus
from strom_core.ports import CommandStatus
from strom_core.ports.cluster import Bus
from strom_storage.db import Database
from strom_storage.leases import LeaseStore
from tests.ocpp.conftest import BASE_SETTINGS, PASSWORD, Harness, make_chargers, running

PG_URL = os.environ.get("STROM_TEST_DATABASE_URL", "")
WAIT = 10.0


@dataclass
class Process:
    """One Strom process of the cluster, as far as chargers go."""

    name: str
    harness: Harness
    cluster: ClusterChargers
    leases: LeaseStore
    bus: Bus

    @property
    def server(self) -> OcppServer:
        return self.harness.server


class Cluster:
    def __init__(self, schema: str, bus_kind: str, stack: AsyncExitStack) -> None:
        self._schema = schema
        self._bus_kind = bus_kind
        self._stack = stack
        self._hub = LocalHub()

    async def process(self, name: str, *, request_timeout_s: float = 8.0) -> Process:
        db = Database.from_url(PG_URL, search_path=self._schema)
        self._stack.push_async_callback(db.close)
        bus: Bus
        if self._bus_kind == "local":
            bus = LocalBus(self._hub)
        else:
            bus = await PgNotifyBus.connect(PG_URL, reconnect_wait=0.1)
        self._stack.push_async_callback(bus.aclose)
        leases = LeaseStore(db)
        cluster = ClusterChargers(bus, leases, name, ttl_s=30, request_timeout_s=request_timeout_s)
        chargers = StaticChargerAuth(make_chargers())
        core, sink = InMemoryOcppCore(), MemoryEventSink()
        server = OcppServer(BASE_SETTINGS, chargers, core, sink, cluster=cluster)
        await bus.serve(name, cluster.handle)
        await cluster.start()
        self._stack.push_async_callback(cluster.aclose)
        await server.start()
        self._stack.push_async_callback(server.stop)
        return Process(
            name, Harness(server, core, sink, chargers, BASE_SETTINGS), cluster, leases, bus
        )


@contextlib.asynccontextmanager
async def _cluster(bus_kind: str) -> AsyncIterator[Cluster]:
    if not PG_URL:
        pytest.skip("the cluster tests need STROM_TEST_DATABASE_URL (set by .ci/run)")
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    setup = Database.from_url(PG_URL, search_path=schema)
    await setup.upgrade()
    await setup.close()
    try:
        async with AsyncExitStack() as stack:
            yield Cluster(schema, bus_kind, stack)
    finally:
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    async with _cluster("local") as made:
        yield made


async def _eventually(predicate: object, within_s: float = WAIT) -> None:
    assert callable(predicate)
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110 - state of other processes, no event to wait on
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("bus_kind", ["local", "postgresql"])
async def test_commands_issued_on_one_process_reach_a_charger_connected_to_another(
    bus_kind: str,
) -> None:
    async with _cluster(bus_kind) as cluster:
        a, b = await cluster.process("proc-a"), await cluster.process("proc-b")
        async with running(b.harness, "cp-1", plugged=(1,)) as sim:
            holder = await a.leases.holder("charger:cp-1")
            assert holder is not None
            assert holder.owner == "proc-b"
            await _eventually(lambda: a.server.commands.is_online("cp-1"))
            assert a.server.online_chargers() == []  # not connected to A itself

            tag = b.harness.core.issue_id_tag("cp-1")
            started = await a.server.commands.remote_start("cp-1", 1, tag)
            assert started.status is CommandStatus.ACCEPTED
            await sim.wait_until(lambda: sim.connectors[1].transaction_id is not None)
            busy = await a.server.commands.remote_start("cp-1", 1, "OTHER")
            assert busy.status is CommandStatus.REJECTED  # the charger's own answer came back

            limits = OcppPowerLimits(a.server.commands)
            assert (await limits.set_charger_limit("cp-1", 4_000)).accepted
            schedule = await limits.composite_schedule("cp-1", 0, 3600)
            assert schedule.result.accepted
            assert schedule.periods
            assert schedule.periods[0].limit_w == 4_000

            live = a.server.commands.live_set("cp-1")
            assert live is not None
            config = await live.get_configuration("cp-1", ("HeartbeatInterval",))  # type: ignore[attr-defined]
            assert isinstance(config, GetConfigurationResult)
            assert config.result.accepted
            assert [key.key for key in config.keys] == ["HeartbeatInterval"]


async def test_a_charger_that_reconnects_to_another_process_moves_its_lease(
    cluster: Cluster,
) -> None:
    a, b = await cluster.process("proc-a"), await cluster.process("proc-b")
    # This charger does not come back to B on its own once B closes its connection.
    at_b = SimulatedChargePoint(
        SimulatorOptions(
            url=b.harness.url, charger_id="cp-1", password=PASSWORD, reconnect_delay_s=60
        )
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(at_b.run())
        await at_b.wait_until(lambda: at_b.boots >= 1)
        first = await b.leases.holder("charger:cp-1")
        assert first is not None
        assert first.owner == "proc-b"
        # The same charger opens a connection to A while B's is still open (a half-open link).
        async with running(a.harness, "cp-1"):
            moved = await a.leases.holder("charger:cp-1")
            assert moved is not None
            assert moved.owner == "proc-a"
            assert moved.token > first.token
            # B learns it at once and closes its connection: it never commands the charger again.
            await _eventually(lambda: b.server.online_chargers() == [])
            assert (await a.server.commands.trigger_status("cp-1", None)).accepted  # local at A
            assert (await b.server.commands.trigger_status("cp-1", 1)).accepted  # routed to A

            # A call that still reaches B (sent on an old view of the owner) is refused
            # there, before anything is sent to a charger.
            stale = orjson.dumps({"m": "reset", "c": "cp-1", "a": {"hard": True}})
            answer = orjson.loads(await a.bus.request("proc-b", SUBJECT, stale, WAIT))
            assert "x" in answer
        at_b.stop()
        task.cancel()


async def test_a_process_that_loses_a_charger_lease_closes_its_connection(
    cluster: Cluster,
) -> None:
    b = await cluster.process("proc-b")
    async with running(b.harness, "cp-1") as sim:
        before = b.cluster.held()
        assert set(before) == {"charger:cp-1"}
        # The database partitioned away long enough: another process has the lease now.
        await b.leases.take_over("charger:cp-1", "proc-x", 30)
        renewed = await b.leases.db.write(_renew_all("proc-b"))
        assert b.cluster.renewed(before, renewed) == ["cp-1"]
        await _eventually(lambda: sim.connections >= 2)  # B closed it; the charger came back
        assert b.server.online_chargers() == ["cp-1"]


def _renew_all(owner: str):  # type: ignore[no-untyped-def]
    from strom_storage.leases import renew_all

    return lambda conn: renew_all(conn, owner, 30)


async def test_a_charger_no_process_holds_is_offline(cluster: Cluster) -> None:
    a = await cluster.process("proc-a")
    assert not a.server.commands.is_online("cp-1")
    result = await a.server.commands.remote_start("cp-1", 1, "TAG")
    assert result.status is CommandStatus.OFFLINE
    limits = OcppPowerLimits(a.server.commands)
    schedule = await limits.composite_schedule("cp-1", 1, 60)
    assert schedule.result.status is CommandStatus.OFFLINE
    assert schedule.connector_id == 1


async def test_a_command_to_an_owner_that_does_not_answer_has_an_unknown_outcome(
    cluster: Cluster,
) -> None:
    a = await cluster.process("proc-a", request_timeout_s=1.0)
    b = await cluster.process("proc-b")
    async with running(b.harness, "cp-1"):
        await _eventually(lambda: a.server.commands.is_online("cp-1"))
        await b.bus.aclose()  # process B is gone from the bus; its lease has not expired yet
        result = await a.server.commands.remote_start("cp-1", 1, "TAG")
        assert result.status is CommandStatus.TIMEOUT  # never "did not run"
        schedule = await OcppPowerLimits(a.server.commands).composite_schedule("cp-1", 0, 60)
        assert schedule.result.status is CommandStatus.TIMEOUT
