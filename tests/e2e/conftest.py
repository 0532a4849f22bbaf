"""A whole Strom on 127.0.0.1: real HTTP, a simulated charger over a real OCPP websocket,
the fake lightning backend (real BOLT11 invoices) and a driver's wallet.

Nothing is mocked: the driver talks to Strom over HTTP exactly as a wallet would, and the
charger talks OCPP over a websocket. The meter runs 600 times faster than real time.

The charger speaks OCPP 1.6J unless a test asks otherwise: ``running_stack(...,
ocpp_version="2.0.1")``, or the ``ocpp_version`` fixture (``tests/conftest.py``), which the
``stack`` fixtures read.
A test about sessions runs for both versions with :data:`BOTH_VERSIONS` (it parametrises
``ocpp_version``), so one story proves the same behaviour whatever the charger speaks.
:func:`running_front` is the same Strom without the simulated charger, for tests where another
charge point (an independent OCPP implementation) takes its place.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from sqlalchemy import select

from ocpp_server import SimulatorOptions
from ocpp_server.sim_model import OCPP_VERSIONS
from ocpp_server.simulator import SimulatedCharger, simulated_charge_point
from strom.app import Strom, write_charger_password
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.ports import ConnectorStatusChanged, OcppEvent
from strom_core.session import check_ledger
from strom_lightning import FakeBackend, FakeDriverWallet, Invoice, LightningBackend
from strom_storage.schema import sessions

CHARGER = "cp-e2e"

BOTH_VERSIONS = pytest.mark.parametrize("ocpp_version", OCPP_VERSIONS)
"""Run a test once per OCPP version the charger may speak (``[1.6]``, ``[2.0.1]``)."""


class Wallet(Protocol):
    """What the tests need of a driver's wallet (the fake's, or an LNbits wallet)."""

    async def pay(self, bolt11: str) -> object: ...

    async def create_invoice(self, amount_msat: int, *, memo: str = ...) -> Invoice: ...

    async def received_msat(self) -> int: ...


@dataclass
class Front:
    """Strom serving on 127.0.0.1, a driver's wallet and an HTTP client; no charger yet."""

    strom: Strom
    wallet: Wallet
    http: httpx.AsyncClient
    base: str
    charger_password: str

    @property
    def ocpp_url(self) -> str:
        """Where chargers connect (the charger id is appended)."""
        return f"ws://127.0.0.1:{self.strom.ocpp_port}/ocpp"

    @property
    def pay_url(self) -> str:
        return f"{self.base}/lnurlp/{CHARGER}/1"

    async def get(self, url: str, **params: str) -> dict[str, Any]:
        # Like a wallet: keep the URL's own query and append ours (LUD-06).
        response = await self.http.get(httpx.URL(url).copy_merge_params(params))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def pay(self, amount_msat: int) -> tuple[str, str]:
        """Pay the sticker's LNURL; returns (session json url, session page url)."""
        offer = await self.get(self.pay_url)
        answer = await self.get(offer["callback"], amount=str(amount_msat))
        assert "pr" in answer, answer
        await self.wallet.pay(answer["pr"])
        page = answer["successAction"]["url"]
        return page.replace("?", ".json?", 1), page

    async def wait_state(
        self, status_url: str, *states: str, within_s: float = 20
    ) -> dict[str, Any]:
        async def poll() -> dict[str, Any]:
            while True:
                status = await self.get(status_url)
                if status["state"] in states:
                    return status
                await asyncio.sleep(0.05)

        return await asyncio.wait_for(poll(), within_s)

    async def ledgers_balance(self) -> None:
        async with self.strom.db.reader() as conn:
            ids = list((await conn.execute(select(sessions.c.id))).scalars())
        for session_id in ids:
            check_ledger(await self.strom.sessions.get(session_id))


@dataclass
class Stack(Front):
    """A :class:`Front` with Strom's simulated charger connected and its connector 1 known."""

    charger: SimulatedCharger


def connector_online(strom: Strom, connector_id: int = 1) -> asyncio.Event:
    """An event set once any charger reports a status for ``connector_id``."""
    online = asyncio.Event()

    async def watch(event: OcppEvent) -> None:
        if isinstance(event, ConnectorStatusChanged) and event.connector_id == connector_id:
            online.set()

    strom.events.subscribe(watch)
    return online


@asynccontextmanager
async def running_front(
    folder: Path,
    env: dict[str, str] | None = None,
    wallet: Wallet | None = None,
    backend: LightningBackend | None = None,
    prepare: Callable[[Strom], None] | None = None,
) -> AsyncIterator[Front]:
    """Strom (configured from ``folder`` and ``env``, or on ``backend``) and a wallet, serving
    until the block ends; the charger ``CHARGER`` may connect with ``charger_password``.

    ``prepare`` is called with Strom after it is opened, before it serves.
    """
    write_scaffold(folder, charger_id=CHARGER)
    # The charger's OCPP password, as `strom init` makes one: only its hash is on file.
    password = write_charger_password(load_config(folder / "strom.toml", environ={}), CHARGER)
    config = load_config(
        folder / "strom.toml",
        environ={
            # Port 0: Strom binds free ports itself and reports them (no race for a port).
            "STROM_SERVER__PORT": "0",
            "STROM_OCPP__HOST": '"127.0.0.1"',
            "STROM_OCPP__PORT": "0",
            "STROM_OCPP__METER_INTERVAL_S": "1",
            "STROM_SESSIONS__START_TIMEOUT_S": "10",
            **(env or {}),
        },
    )
    strom = await Strom.open(config, backend=backend)
    if prepare is not None:
        prepare(strom)
    if wallet is None:
        assert isinstance(strom.backend, FakeBackend)
        wallet = FakeDriverWallet(strom.backend)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as group:
        server = group.create_task(strom.serve(stop))
        await asyncio.wait_for(strom.ready.wait(), 20)
        async with httpx.AsyncClient(timeout=30) as http:
            yield Front(
                strom=strom,
                wallet=wallet,
                http=http,
                base=strom.config.server.public_url,
                charger_password=password.key,
            )
        stop.set()
        await server


@asynccontextmanager
async def running_stack(
    folder: Path,
    env: dict[str, str] | None = None,
    wallet: Wallet | None = None,
    simulator: dict[str, Any] | None = None,
    backend: LightningBackend | None = None,
    prepare: Callable[[Strom], None] | None = None,
    ocpp_version: str = "1.6",
) -> AsyncIterator[Stack]:
    """Strom (configured from ``folder`` and ``env``, or on ``backend``), a simulated charger
    and a wallet.

    ``simulator`` overrides :class:`SimulatorOptions` fields of the charger (any of them,
    those set here included); ``prepare`` is called with Strom after it is opened, before it
    serves; ``ocpp_version`` is the charger's OCPP version (``"1.6"`` or ``"2.0.1"``).
    """
    async with running_front(folder, env, wallet, backend, prepare) as front:
        options: dict[str, Any] = {
            "url": front.ocpp_url,
            "charger_id": CHARGER,
            "ocpp_version": ocpp_version,
            "password": front.charger_password,
            "power_kw": Decimal(11),
            "speed": 120.0,
            "plugged": (1,),
            "reconnect_delay_s": 0.1,
        }
        charger = simulated_charge_point(SimulatorOptions(**{**options, **(simulator or {})}))
        online = connector_online(front.strom)
        async with asyncio.TaskGroup() as group:
            sim = group.create_task(charger.run())
            await asyncio.wait_for(online.wait(), 20)
            yield Stack(**vars(front), charger=charger)
            sim.cancel()


@pytest.fixture
async def stack(tmp_path: Path, ocpp_version: str) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, ocpp_version=ocpp_version) as running:
        yield running
