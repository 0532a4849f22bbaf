"""Agents in a cluster: each charger's agent runs in exactly one of three processes.

Three "processes" share one PostgreSQL schema (a ``Database`` each, with engines of their own),
one in-process relay and a bus (:class:`strom_cluster.LocalHub`); each has its own agent
runtime, relay pool, lease keeper and keys read from the database. Drivers and the operator
talk to the chargers over the relay with clients of their own, so replies are counted there.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from agent.cluster import ClusteredAgents, decode_input, encode_input
from agent.identity import POOL_KEY_NAME, SERVER_KEY_NAME, KeyStore
from agent.nostr_sdk_adapter import SdkLocalRelay
from agent.relays import RelayPool
from agent.runtime import AgentRuntime, ReservationNote
from agent.settings import AgentSettings
from agent.shared_keys import SharedKeyStore
from strom_cluster import LocalBus, LocalHub
from strom_core.config import NostrConfig, RelayConfig, ServerConfig, StorageConfig, StromConfig
from strom_core.errors import ConfigError, StorageError
from strom_core.ports import ChargerOffline, ChargerOnline, ConnectorStatusChanged
from strom_core.session_secrets import SessionSecrets, derive_session_key
from strom_nostr.dm import nip04_message
from strom_nostr.keys import encode_npub, generate_secret_key, public_key_hex
from strom_services.effects import RetryLater
from strom_services.payments import PaymentService
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.leases import Lease, LeaseStore
from strom_storage.outbox import OutboxRow
from strom_storage.schema import outbox
from strom_storage.sessions import SessionStore
from strom_storage.tariffs import TariffRepository
from tests.agent.conftest import PUBLIC_URL, Clock, Person, World, profile
from tests.agent.fakes import FakeChargerCommands, MemoryLightning
from tests.storage.conftest import _postgres_processes
from tests.waits import until

CHARGERS = ["cp-1", "cp-2", "cp-3", "cp-4", "cp-5"]
MASTER = {"STROM_MASTER_KEY": "8f" * 32}
TTL_S = 1.5


class Severable(LeaseStore):
    """The real lease store, until this process "dies" (it can no longer reach anything)."""

    severed = False

    def _check(self) -> None:
        if self.severed:
            raise StorageError("process killed")

    async def acquire_many(self, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
        self._check()
        return await super().acquire_many(names, owner, ttl_s)

    async def renew_names(self, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
        self._check()
        return await super().renew_names(names, owner, ttl_s)

    async def release_names(self, names: Collection[str], owner: str) -> list[str]:
        self._check()
        return await super().release_names(names, owner)

    async def live_with_prefix(self, prefix: str) -> list[Lease]:
        self._check()
        return await super().live_with_prefix(prefix)


@dataclass
class Process:
    name: str
    runtime: AgentRuntime
    clustered: ClusteredAgents
    leases: Severable
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]]

    def running(self) -> set[str]:
        return {c for c in CHARGERS if self.runtime.runs(c)}

    async def kill(self) -> None:
        """Stop as a killed process would: no renewal, no release; its relay link goes."""
        self.leases.severed = True
        self.stop.set()
        await asyncio.gather(*self.tasks)


@dataclass
class Cluster:
    processes: list[Process]
    admin: Person
    dbs: tuple[Database, ...]

    def where(self) -> dict[str, list[str]]:
        return {c: [p.name for p in self.processes if p.runtime.runs(c)] for c in CHARGERS}

    async def settled(self, processes: list[Process] | None = None) -> None:
        """Wait until every agent runs in exactly one of ``processes``."""
        alive = {p.name for p in processes or self.processes}

        def once_each() -> bool:
            where = self.where().values()
            return all(len(names) == 1 and names[0] in alive for names in where)

        await until(once_each, f"every agent runs in exactly one of {sorted(alive)}")


async def start_process(
    name: str,
    db: Database,
    config: StromConfig,
    hub: LocalHub,
    tmp_path: Path,
) -> Process:
    keys = await SharedKeyStore.open(
        db, [POOL_KEY_NAME, SERVER_KEY_NAME, *CHARGERS], data_dir=tmp_path / name, environ=MASTER
    )
    session_key = derive_session_key(keys.ensure(SERVER_KEY_NAME))
    sessions = SessionStore(db)
    backend = MemoryLightning()
    payments = PaymentService(
        sessions,
        backend,
        config.sessions,
        meter_interval_s=60,
        session_secrets=SessionSecrets(session_key),
        tariffs=TariffBook(TariffRepository(db), Clock()),
    )
    runtime = AgentRuntime(
        config,
        db=db,
        sessions=sessions,
        payments=payments,
        backend=backend,
        commands=FakeChargerCommands(),
        session_key=session_key,
        settings=AgentSettings.from_config(config, progress_interval_s=0),
        keys=keys,
        pool=RelayPool(config.relays, allow_private_relays=True, clock=Clock()),
        environ={},
        clock=Clock(),
        autostart=False,
    )
    leases = Severable(db)
    clustered = ClusteredAgents(
        runtime, bus=LocalBus(hub), leases=leases, process_id=name, ttl_s=TTL_S
    )
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(runtime.run(stop), name=f"{name}-runtime"),
        asyncio.create_task(clustered.run(stop), name=f"{name}-agents"),
    ]
    return Process(name, runtime, clustered, leases, stop, tasks)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    relay = SdkLocalRelay()
    relay_url = await relay.start()
    admin_secret = generate_secret_key()
    config = StromConfig(
        server=ServerConfig(public_url=PUBLIC_URL),
        storage=StorageConfig(data_dir=tmp_path / "unused"),
        nostr=NostrConfig(admin_npubs=(encode_npub(public_key_hex(admin_secret)),)),
        profiles=tuple(profile(c) for c in CHARGERS),
        relays=(RelayConfig(url=relay_url),),
    )
    hub = LocalHub()
    admin = Person(admin_secret, relay_url)
    processes: list[Process] = []
    try:
        async with _postgres_processes(3) as dbs:
            await ChargerStore(dbs[0]).sync(config.profiles)
            for index, db in enumerate(dbs):
                processes.append(await start_process(f"p{index}", db, config, hub, tmp_path))
            await admin.connect()
            built = Cluster(processes, admin, dbs)
            await built.settled()
            try:
                yield built
            finally:
                for process in processes:
                    process.stop.set()
                await asyncio.gather(*(t for p in processes for t in p.tasks))
    finally:
        await admin.close()
        relay.shutdown()


async def ask(cluster: Cluster, charger_id: str, text: str) -> str:
    """DM the charger as the operator; the one answer (a second one fails the test)."""
    pubkey = cluster.processes[0].runtime.pubkey(charger_id)
    assert pubkey is not None
    person = cluster.admin
    await person.publish(nip04_message(person.secret, pubkey, text, created_at=int(Clock().unix())))
    answer, _scheme = await person.next_dm()
    await person.no_dm(1.0)
    return answer


async def test_each_agent_runs_in_one_process_and_a_dm_is_answered_once(
    cluster: Cluster,
) -> None:
    shares = [len(p.running()) for p in cluster.processes]
    assert sum(shares) == len(CHARGERS)
    assert max(shares) <= math.ceil(len(CHARGERS) / 3)
    pubkeys = {c: {p.runtime.pubkey(c) for p in cluster.processes} for c in CHARGERS}
    assert all(len(keys) == 1 for keys in pubkeys.values())  # one identity, wherever it runs
    for charger_id in CHARGERS:
        assert "Farm shop charger" in await ask(cluster, charger_id, "status")


async def test_the_agents_of_a_killed_process_move_and_answer_once(cluster: Cluster) -> None:
    victim = max(cluster.processes, key=lambda p: len(p.running()))
    moving = victim.running()
    assert moving
    survivors = [p for p in cluster.processes if p is not victim]
    killed_at = asyncio.get_running_loop().time()
    await victim.kill()
    await cluster.settled(survivors)
    moved_after = asyncio.get_running_loop().time() - killed_at
    assert moved_after <= TTL_S + 2 * (TTL_S / 3) + 1.0  # the TTL, a tick, and the start
    assert all(not victim.runtime.runs(c) for c in CHARGERS)
    for charger_id in sorted(moving):
        assert "Farm shop charger" in await ask(cluster, charger_id, "status")


async def test_an_ocpp_event_on_another_process_reaches_the_agent(cluster: Cluster) -> None:
    owner = next(p for p in cluster.processes if p.runtime.runs("cp-1"))
    other = next(p for p in cluster.processes if not p.runtime.runs("cp-1"))
    now = datetime.now(UTC)
    await other.runtime.on_ocpp_event(ChargerOnline("cp-1", now))
    await other.runtime.on_ocpp_event(ConnectorStatusChanged("cp-1", 2, "Charging", "NoError", now))
    agent = owner.runtime.agent("cp-1")
    await until(
        lambda: agent.online and agent.connectors.get(2, ("",))[0] == "Charging",
        "the owner's agent sees the charger online and connector 2 charging",
    )
    assert "online" in await ask(cluster, "cp-1", "status")


async def test_a_zap_receipt_row_claimed_away_from_its_agent_is_retried_later(
    cluster: Cluster,
) -> None:
    other = next(p for p in cluster.processes if not p.runtime.runs("cp-2"))
    row = OutboxRow(
        id=1,
        key="zap-receipt:x",
        kind="zap_receipt",
        payload={
            "charger_id": "cp-2",
            "zap_request": {"description": "{}"},
            "bolt11": "lnbc1",
            "paid_at": datetime.now(UTC).isoformat(),
        },
        session_id="s-1",
        attempts=0,
    )
    with pytest.raises(RetryLater, match="cp-2"):  # the agent's own process signs it
        await other.runtime.on_zap_receipt(row)


def test_agent_inputs_cross_the_bus_unchanged() -> None:
    at = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    for item in (
        ChargerOnline("cp-1", at),
        ChargerOffline("cp-1", at, "heartbeat"),
        ConnectorStatusChanged("cp-1", 1, "Faulted", "GroundFailure", at, "ground"),
        ReservationNote("cp-1", 2, "s-1", 1_800_000_000),
        ReservationNote("cp-1", 2, "s-1", None),
    ):
        assert decode_input(encode_input(item)) == item
    for junk in (b"", b"[]", b'{"charger_id": "cp-1", "type": "reboot"}', b'{"type": "online"}'):
        with pytest.raises(ValueError, match="not an agent input"):
            decode_input(junk)


# --- keys shared through the database ----------------------------------------------------------


@pytest.fixture
async def three_dbs() -> AsyncIterator[tuple[Database, ...]]:
    async with _postgres_processes(3) as dbs:
        yield dbs


async def test_racing_processes_agree_on_one_key_per_name(
    three_dbs: tuple[Database, ...], tmp_path: Path
) -> None:
    names = [POOL_KEY_NAME, SERVER_KEY_NAME, *CHARGERS]
    for index in range(3):  # each machine had key files of its own: only one set can win
        files = KeyStore.from_environ(tmp_path / f"p{index}", MASTER)
        files.ensure("cp-1")
    stores = await asyncio.gather(
        *(
            SharedKeyStore.open(db, names, data_dir=tmp_path / f"p{i}", environ=MASTER)
            for i, db in enumerate(three_dbs)
        )
    )
    for name in names:
        assert len({store.ensure(name) for store in stores}) == 1, name
    winners = {KeyStore.from_environ(tmp_path / f"p{i}", MASTER).load("cp-1") for i in range(3)}
    assert stores[0].ensure("cp-1") in winners  # an existing identity was kept
    again = await SharedKeyStore.open(three_dbs[1], names, environ=MASTER)
    assert all(again.ensure(name) == stores[0].ensure(name) for name in names)


async def test_keys_in_the_database_are_sealed_and_need_the_master_key(
    three_dbs: tuple[Database, ...],
) -> None:
    store = await SharedKeyStore.open(three_dbs[0], ["cp-1"], environ=MASTER)
    rows = await store._rows.read(["cp-1"])
    assert rows["cp-1"].startswith("sealed1:")
    assert store.ensure("cp-1").hex() not in rows["cp-1"]
    with pytest.raises(ConfigError, match="STROM_MASTER_KEY"):
        await SharedKeyStore.open(three_dbs[0], ["cp-1"], environ={})
    with pytest.raises(ConfigError, match="does not open"):
        await SharedKeyStore.open(three_dbs[0], ["cp-1"], environ={"STROM_MASTER_KEY": "ab" * 32})
    with pytest.raises(ConfigError, match="not loaded"):
        store.ensure("cp-9")


async def test_an_agents_dm_and_zap_receipt_rows_name_its_lease(world: World) -> None:
    opened, _ = await world.open_zap_session(world.driver)
    world.backend.mark_paid(opened.invoice.payment_hash)
    assert await world.payments.settle(opened.invoice.payment_hash)
    async with world.db.reader() as conn:
        rows = (await conn.execute(select(outbox.c.kind, outbox.c.lease))).all()
    leases = {kind: lease for kind, lease in rows}
    assert leases["zap_receipt"] == "agent:cp-1"
    assert leases["notify"] == "agent:cp-1"
    assert leases["remote_start"] == "charger:cp-1"


async def test_jobs_of_an_agent_stopped_here_are_retried_at_once_not_lost(cluster: Cluster) -> None:
    owner = next(p for p in cluster.processes if p.runtime.runs("cp-3"))
    agent = owner.runtime.agent("cp-3")
    started = asyncio.Event()

    async def long_job() -> None:
        started.set()
        await asyncio.sleep(30)

    running = asyncio.create_task(agent.call(long_job))
    waiting = asyncio.create_task(agent.call(lambda: asyncio.sleep(0)))
    await started.wait()
    assert await owner.runtime.stop_agents(["cp-3"]) == ["cp-3"]
    for job in (running, waiting):
        with pytest.raises(RetryLater, match="cp-3"):
            async with asyncio.timeout(1):
                await job
    with pytest.raises(RetryLater, match="cp-3"):
        await agent.call(lambda: asyncio.sleep(0))
    assert not owner.runtime.runs("cp-3")
