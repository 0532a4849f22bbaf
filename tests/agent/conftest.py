"""The agents' world: a real relay on 127.0.0.1, a migrated SQLite database, the agent runtime.

Every test that takes ``world`` runs twice: against nostr-sdk's in-process relay and against
nostr-relay (Python, PyPI), which shares no code with nostr-sdk. The driver, the stranger and
the operator talk to the charger through a nostr-sdk client of their own (so the runtime sees
their events as coming from elsewhere), with events built by the pure core or by nostr-sdk.

Nothing is mocked: the database is migrated by Alembic (once, then copied per test), the
charger commands, reservations and the lightning backend are in-memory implementations of the
core's ports (``tests/agent/fakes.py``), and outbox rows run through the real
:class:`EffectRunner` (reservations' through the real
:class:`strom_services.reservations.ReservationEffects`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agent.identity import SERVER_KEY_NAME, KeyStore
from agent.nostr_sdk_adapter import SdkClient, SdkIncoming, SdkLocalRelay
from agent.relays import PublishResult, RelayPool
from agent.runtime import AgentRuntime
from agent.settings import AgentSettings
from strom_core.clock import SYSTEM_CLOCK
from strom_core.config import (
    ConnectorConfig,
    LocationConfig,
    NostrConfig,
    ProfileConfig,
    RelayConfig,
    ServerConfig,
    StorageConfig,
    StromConfig,
    TariffConfig,
)
from strom_core.session_events import RemoteStartAccepted, TransactionStarted
from strom_core.session_secrets import SessionSecrets, derive_session_key
from strom_nostr.discovery import status_coordinate
from strom_nostr.dm import open_dm
from strom_nostr.event import Event, parse_event, sign_event
from strom_nostr.keys import encode_npub, generate_secret_key, public_key_hex
from strom_nostr.zap_request import validate_zap_request
from strom_services.effects import EffectRunner
from strom_services.payments import OpenedSession, PaymentService
from strom_services.reservations import ReservationEffects
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.outbox import OutboxRow, OutboxStore
from strom_storage.sessions import SessionStore
from strom_storage.tariffs import TariffRepository
from tests.agent.fakes import FakeChargerCommands, FakeReservations, MemoryLightning
from tests.peers import relay_nostr_relay

CHARGER_ID = "cp-1"
PUBLIC_URL = "http://127.0.0.1:8080"
WAIT_S = 10.0


def profile(charger_id: str = CHARGER_ID) -> ProfileConfig:
    return ProfileConfig(
        id=charger_id,
        name="Farm shop charger",
        description="Two Type 2 sockets behind the farm shop",
        location=LocationConfig(lat=47.3769, lon=8.5417, address="Hofstrasse 1, Zürich"),
        connectors=(
            ConnectorConfig(id=1, max_power_kw=Decimal(11)),
            ConnectorConfig(id=2, max_power_kw=Decimal(22)),
        ),
        tariff=TariffConfig(per_kwh_sat=Decimal(250), min_prepay_sat=Decimal(1000)),
    )


def server_session_key(data_dir: Path) -> bytes:
    """The session key as the composition root derives it (from ``keys/_server.key``)."""
    return derive_session_key(KeyStore.from_environ(data_dir, {}).ensure(SERVER_KEY_NAME))


@dataclass
class Clock:
    """The system's clocks plus an offset a test can move forward (a ``strom_core`` Clock).

    Not a ManualClock: the relays and timeouts around the agents run in real time, so the
    agents' time goes on with them, and a test jumps it ahead when it needs to.
    """

    offset: float = 0.0

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now() + timedelta(seconds=self.offset)

    def unix(self) -> float:
        return SYSTEM_CLOCK.unix() + self.offset

    def monotonic(self) -> float:
        return SYSTEM_CLOCK.monotonic() + self.offset


# --- the relays -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def peer_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """nostr-relay, started once per test session; or the reason it is missing."""
    try:
        running = relay_nostr_relay.start(tmp_path_factory.mktemp("nostr-relay"))
    except relay_nostr_relay.PeerUnavailable as exc:
        yield str(exc)
        return
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(params=["nostr-sdk", "nostr-relay"])
async def relay_url(request: pytest.FixtureRequest, peer_relay: Any) -> AsyncIterator[str]:
    if request.param == "nostr-sdk":
        relay = SdkLocalRelay()
        url = await relay.start()
        try:
            yield url
        finally:
            relay.shutdown()
        return
    if isinstance(peer_relay, str):
        from tests.conftest import peer_missing

        peer_missing(peer_relay)
    yield peer_relay.url


# --- the database -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "strom.sqlite3"

    async def migrate() -> None:
        db = Database.from_url(f"sqlite+aiosqlite:///{path}")
        await db.upgrade()
        await db.close()

    asyncio.run(migrate())
    return path


@pytest.fixture
async def database(tmp_path: Path, migrated_template: Path) -> AsyncIterator[Database]:
    path = tmp_path / "strom.sqlite3"
    shutil.copy(migrated_template, path)
    db = Database.from_url(f"sqlite+aiosqlite:///{path}")
    try:
        yield db
    finally:
        await db.close()


# --- a person with a nostr client -------------------------------------------------------------


class Person:
    """A driver or operator: a key and a nostr-sdk client of their own."""

    def __init__(self, secret: bytes, relay_url: str) -> None:
        self.secret = secret
        self.pubkey = public_key_hex(secret)
        self.npub = encode_npub(self.pubkey)
        self.relay_url = relay_url
        self.client: SdkClient | None = None
        self.received: asyncio.Queue[Event] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        self.client = SdkClient()
        await self.client.add_relay(self.relay_url, read=True, write=True)
        await self.client.wait_connected(5)
        since = int(time.time()) - 3 * 86_400
        await self.client.subscribe(
            f"person-{self.pubkey[:8]}",
            [{"kinds": [4, 1059, 9735], "#p": [self.pubkey], "since": since}],
            [self.relay_url],
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.client is not None
        while True:
            note = await self.client.next_notification()
            if isinstance(note, SdkIncoming):
                await self.received.put(parse_event(note.event_json))
            elif note is not None:
                return

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with_suppressed = asyncio.gather(self._reader, return_exceptions=True)
            await with_suppressed
        if self.client is not None:
            await self.client.shutdown()

    async def publish(self, event: Event) -> None:
        assert self.client is not None
        output = await self.client.send_event(event, [self.relay_url], timeout_s=5)
        assert output.ok, output.failed

    async def next_dm(self, timeout_s: float = WAIT_S) -> tuple[str, str]:
        """The next DM to this person: (text, scheme)."""
        async with asyncio.timeout(timeout_s):
            while True:
                event = await self.received.get()
                if event.kind in (4, 1059):
                    dm = open_dm(self.secret, event)
                    return dm.text, dm.scheme.value

    async def no_dm(self, wait_s: float = 0.5) -> None:
        """Assert that no DM arrives for a while."""
        try:
            text, _ = await self.next_dm(wait_s)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected DM: {text!r}")

    async def fetch(self, filters: list[dict[str, Any]]) -> list[Event]:
        assert self.client is not None
        texts = await self.client.fetch(filters, [self.relay_url], timeout_s=3)
        return [parse_event(text) for text in texts]


# --- the world --------------------------------------------------------------------------------


async def _noop(row: OutboxRow) -> None:
    return None


@dataclass
class World:
    config: StromConfig
    db: Database
    sessions: SessionStore
    chargers: ChargerStore
    payments: PaymentService
    backend: MemoryLightning
    commands: FakeChargerCommands
    runtime: AgentRuntime
    runner: EffectRunner
    relay_url: str
    clock: Clock
    driver: Person
    stranger: Person
    admin: Person
    reservations: FakeReservations = field(default_factory=FakeReservations)
    outcomes: asyncio.Queue[tuple[str, str, str]] = field(default_factory=asyncio.Queue)
    statuses: asyncio.Queue[tuple[str, PublishResult]] = field(default_factory=asyncio.Queue)

    @property
    def charger(self) -> Any:
        return self.runtime.agent(CHARGER_ID)

    @property
    def charger_pk(self) -> str:
        return str(self.charger.pubkey)

    async def outcome(self, event_id: str, timeout_s: float = WAIT_S) -> str:
        """What the agent did with the event of this id."""
        async with asyncio.timeout(timeout_s):
            while True:
                _charger, seen, outcome = await self.outcomes.get()
                if seen == event_id:
                    return outcome

    async def next_status(self, timeout_s: float = WAIT_S) -> PublishResult:
        async with asyncio.timeout(timeout_s):
            _charger, result = await self.statuses.get()
            return result

    async def latest(self, kind: int) -> Event:
        """The newest event of this kind by the charger on the relay."""
        events = await self.driver.fetch([{"kinds": [kind], "authors": [self.charger_pk]}])
        assert events, f"no kind {kind} by the charger"
        return max(events, key=lambda event: event.created_at)

    def zap_request(self, person: Person, amount_msat: int, **extra: str) -> Event:
        tags = [
            ["p", self.charger_pk],
            ["amount", str(amount_msat)],
            ["relays", self.relay_url],
            ["a", status_coordinate(self.charger_pk, CHARGER_ID)],
            *[[name, value] for name, value in extra.items()],
        ]
        comment = f"charging {os.urandom(4).hex()}"  # every request is a new one
        return sign_event(person.secret, 9734, tags, comment, int(self.clock.unix()))

    async def open_zap_session(
        self, person: Person, amount_msat: int = 20_000_000, connector: int = 1
    ) -> tuple[OpenedSession, str]:
        """What the LNURL zap callback does: validate the zap request, open the session."""
        request = self.zap_request(person, amount_msat, connector=str(connector))
        valid = validate_zap_request(
            request.to_json(),
            amount_msat_query=amount_msat,
            charger_pubkey=self.charger_pk,
            charger_status_coordinate=status_coordinate(self.charger_pk, CHARGER_ID),
            now=int(self.clock.unix()),
            max_age_s=600,
        )
        opened = await self.payments.open_session(
            self.config.profile(CHARGER_ID),
            connector,
            amount_msat,
            description_hash=hashlib.sha256(valid.description.encode()).digest(),
            initiator="zap",
            initiator_pubkey=valid.sender,
            zap_request={"description": valid.description, "relays": list(valid.relays)},
            zap_request_id=valid.event_id,
        )
        return opened, valid.description

    async def charging_session(self, person: Person) -> OpenedSession:
        """A zap session, paid and charging (transaction 1 from 1000 Wh)."""
        opened, _ = await self.open_zap_session(person)
        self.backend.mark_paid(opened.invoice.payment_hash)
        assert await self.payments.settle(opened.invoice.payment_hash)
        await self.sessions.apply(opened.session_id, RemoteStartAccepted())
        await self.sessions.apply(opened.session_id, TransactionStarted(1, 1000, datetime.now(UTC)))
        return opened


async def build_world(
    tmp_path: Path,
    database: Database,
    relay_url: str,
    *,
    clock: Clock | None = None,
    charger_profile: ProfileConfig | None = None,
    **settings: Any,
) -> AsyncGenerator[World]:
    clock = clock or Clock()
    # Fresh keys per world: the nostr-relay peer keeps events of earlier tests.
    driver, stranger, admin = (generate_secret_key() for _ in range(3))
    config = StromConfig(
        server=ServerConfig(public_url=PUBLIC_URL),
        storage=StorageConfig(data_dir=tmp_path / "data"),
        nostr=NostrConfig(admin_npubs=(encode_npub(public_key_hex(admin)),)),
        profiles=(charger_profile or profile(),),
        relays=(RelayConfig(url=relay_url),),
    )
    chargers = ChargerStore(database)
    await chargers.sync(config.profiles)
    sessions = SessionStore(database)
    backend = MemoryLightning()
    session_key = server_session_key(config.storage.data_dir)
    payments = PaymentService(
        sessions,
        backend,
        config.sessions,
        meter_interval_s=60,
        session_secrets=SessionSecrets(session_key),
        tariffs=TariffBook(TariffRepository(database), SYSTEM_CLOCK),
    )
    commands = FakeChargerCommands()
    reservations = FakeReservations()
    pool = RelayPool(config.relays, allow_private_relays=True, clock=clock)
    runtime = AgentRuntime(
        config,
        db=database,
        sessions=sessions,
        payments=payments,
        backend=backend,
        commands=commands,
        session_key=session_key,
        settings=AgentSettings.from_config(config, **{"progress_interval_s": 0, **settings}),
        pool=pool,
        environ={},
        clock=clock,
    )
    runtime.services.reservations = reservations
    handlers = {
        **runtime.handlers(),
        **ReservationEffects(sessions, reservations, clock).handlers(),
        "remote_start": _noop,
        "remote_stop": _noop,
        "start_timeout": _noop,
        "pay_refund": _noop,
    }
    world = World(
        config=config,
        db=database,
        sessions=sessions,
        chargers=chargers,
        payments=payments,
        backend=backend,
        commands=commands,
        reservations=reservations,
        runtime=runtime,
        runner=EffectRunner(OutboxStore(database), handlers),
        relay_url=relay_url,
        clock=clock,
        driver=Person(driver, relay_url),
        stranger=Person(stranger, relay_url),
        admin=Person(admin, relay_url),
    )
    runtime.services.observer = lambda *seen: world.outcomes.put_nowait(seen)
    runtime.services.on_status = lambda *seen: world.statuses.put_nowait(seen)
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        async with asyncio.timeout(WAIT_S):
            await runtime.ready.wait()
        await world.next_status()  # the first status is out
        # Zaps are refused for a charger that is not connected: the database says it is (the
        # agent, told nothing by an OCPP server, still shows it as it started: never online).
        await chargers.set_online(CHARGER_ID, True, datetime.now(UTC))
        for person in (world.driver, world.stranger, world.admin):
            await person.connect()
        yield world
    finally:
        for person in (world.driver, world.stranger, world.admin):
            await person.close()
        stop.set()
        await task


@pytest.fixture
async def world(tmp_path: Path, database: Database, relay_url: str) -> AsyncIterator[World]:
    async for built in build_world(tmp_path, database, relay_url):
        yield built
