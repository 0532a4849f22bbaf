"""Fixtures for the OCPP server tests: a server on 127.0.0.1 with the in-memory core, and
charge points that talk to it (Strom's simulator, a raw Python client, ocpp-rpc)."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from ocpp_server import (
    ChargerAuth,
    InMemoryOcppCore,
    MemoryEventSink,
    OcppServer,
    OcppServerSettings,
    Quirk,
    SimulatedChargePoint,
    SimulatorOptions,
    StaticChargerAuth,
    hash_password,
)
from ocpp_server.v16 import SUBPROTOCOL, Ocpp16Commands
from strom_core.clock import SYSTEM_CLOCK
from tests.ocpp.drivers import (
    ChargePointDriver,
    OcppRpcDriver,
    PythonDriver,
    install_ocpp_rpc,
)

PASSWORD = "correct-horse-battery"  # 21 bytes: a valid AuthorizationKey
FAST_HASH = 10  # scrypt cost for tests (production default is 14)


def make_chargers() -> list[ChargerAuth]:
    return [
        ChargerAuth("cp-1", hash_password(PASSWORD, log2_n=FAST_HASH), connectors=2),
        ChargerAuth("cp-open", None),
        ChargerAuth(
            "cp-quirky",
            None,
            frozenset(
                {
                    Quirk.LENIENT_STRING_LENGTHS,
                    Quirk.ENERGY_KWH_LABELLED_WH,
                    Quirk.SESSION_RELATIVE_METER_VALUES,
                }
            ),
        ),
    ]


@dataclass
class Harness:
    server: OcppServer
    core: InMemoryOcppCore
    sink: MemoryEventSink
    chargers: StaticChargerAuth
    settings: OcppServerSettings

    @property
    def url(self) -> str:
        scheme = "wss" if self.settings.uses_tls else "ws"
        host = "localhost" if self.settings.uses_tls else "127.0.0.1"
        return f"{scheme}://{host}:{self.server.port}/ocpp"

    @property
    def commands16(self) -> Ocpp16Commands:
        """The OCPP 1.6 command set, with its commands beyond the port (configuration, …)."""
        commands = self.server.commands.command_set(SUBPROTOCOL)
        assert isinstance(commands, Ocpp16Commands)
        return commands


BASE_SETTINGS = OcppServerSettings(
    host="127.0.0.1",
    port=0,
    heartbeat_interval_s=60,
    meter_value_sample_interval_s=30,
    command_timeout_s=5.0,
    boot_backstop_delay_s=60.0,
)

HarnessFactory = Callable[..., Awaitable[Harness]]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class HarnessClock:
    """The server's clock in a test: wall time as it is, monotonic time from a FakeClock."""

    ticks: FakeClock

    def now(self) -> datetime:
        return SYSTEM_CLOCK.now()

    def unix(self) -> float:
        return SYSTEM_CLOCK.unix()

    def monotonic(self) -> float:
        return self.ticks()


@pytest.fixture
async def start_harness() -> AsyncIterator[HarnessFactory]:
    started: list[OcppServer] = []

    async def start(**overrides: Any) -> Harness:
        chargers = StaticChargerAuth(overrides.pop("chargers", None) or make_chargers())
        clock = overrides.pop("monotonic", None)
        core = overrides.pop("core", None) or InMemoryOcppCore()
        extra = {
            key: overrides.pop(key)
            for key in ("backoff", "dialects", "charger_ca")
            if key in overrides
        }
        if clock is not None:
            extra["clock"] = HarnessClock(clock)
        settings = replace(BASE_SETTINGS, **overrides)
        sink = MemoryEventSink()
        server = OcppServer(settings, chargers, core, sink, **extra)
        await server.start()
        started.append(server)
        return Harness(server, core, sink, chargers, settings)

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def harness(start_harness: HarnessFactory) -> Harness:
    return await start_harness()


DriverFactory = Callable[[], Awaitable[ChargePointDriver]]


@contextlib.asynccontextmanager
async def running(
    harness: Harness, charger_id: str = "cp-1", **options: Any
) -> AsyncIterator[SimulatedChargePoint]:
    """Run Strom's simulated charge point against the harness until it has booted."""
    if charger_id == "cp-1":
        options.setdefault("password", PASSWORD)
    sim = SimulatedChargePoint(
        SimulatorOptions(url=harness.url, charger_id=charger_id, reconnect_delay_s=0.05, **options)
    )
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sim.run())
        try:
            await sim.wait_until(lambda: sim.boots >= 1)
            yield sim
        finally:
            sim.stop()
            task.cancel()
    assert sim.validation_failures == []


@pytest.fixture(
    params=["python", pytest.param("ocpp-rpc", marks=pytest.mark.peer)],
)
async def new_driver(request: pytest.FixtureRequest) -> AsyncIterator[DriverFactory]:
    """Make charge points of one kind (each test runs once per kind); all closed afterwards."""
    made: list[ChargePointDriver] = []
    node_modules = install_ocpp_rpc() if request.param == "ocpp-rpc" else None

    async def make() -> ChargePointDriver:
        if node_modules is None:
            driver: ChargePointDriver = PythonDriver()
        else:
            rpc = OcppRpcDriver(node_modules)
            await rpc.start()
            driver = rpc
        made.append(driver)
        return driver

    yield make
    for driver in made:
        with contextlib.suppress(Exception):
            await driver.close()
        if isinstance(driver, OcppRpcDriver):
            await driver.stop()


@pytest.fixture
async def driver(new_driver: DriverFactory) -> ChargePointDriver:
    return await new_driver()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost and 127.0.0.1, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    try:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"openssl cannot make a test certificate: {exc}")
    return cert, key


async def boot(driver: ChargePointDriver, harness: Harness, charger_id: str = "cp-1") -> None:
    """Connect and boot a charger; answer the post-boot configuration."""
    password = PASSWORD if charger_id == "cp-1" else None
    await driver.connect(harness.url, charger_id, password)
    answer = await driver.call(
        "BootNotification", {"chargePointVendor": "Test", "chargePointModel": "Driver"}
    )
    assert answer["status"] == "Accepted"
