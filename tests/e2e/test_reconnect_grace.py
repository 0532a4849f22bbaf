"""After a restart of Strom, a charger that was connected gets a grace to come back.

Strom is stopped with a simulated charger connected and started again on the same folder,
over real HTTP and OCPP. During the grace the charger is *reconnecting*: the nostr status keeps
its connectors' last states (no flapping to offline on the maps at every restart), the page and
the API say reconnecting, and every offer refuses it — no money for a charger that may not come
back. When it connects, offers work at once; when it does not, it is shown offline after the
grace. Each story runs with a charger speaking OCPP 1.6 and one speaking 2.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from agent.relays import PublishResult
from ocpp_server import SimulatorOptions
from ocpp_server.simulator import SimulatedCharger, simulated_charge_point
from strom.app import Strom, write_charger_password
from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.config import StromConfig
from strom_core.ports import (
    ChargerLink,
    ChargerOffline,
    ChargerOnline,
    ConnectorStatusChanged,
    OcppEvent,
)
from strom_nostr.discovery import ConnectorStatus, parse_status
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER
from tests.ports import unused_port

pytestmark = BOTH_VERSIONS


@dataclass
class Site:
    """One folder, its configuration and the charger's OCPP password: Strom can restart on it."""

    config: StromConfig
    password: str
    ocpp_version: str = "1.6"

    @property
    def base(self) -> str:
        return self.config.server.public_url

    def charger(self) -> SimulatedCharger:
        return simulated_charge_point(
            SimulatorOptions(
                url=f"ws://127.0.0.1:{self.config.ocpp.port}/ocpp",
                charger_id=CHARGER,
                ocpp_version=self.ocpp_version,
                password=self.password,
                power_kw=Decimal(11),
                plugged=(1,),
                reconnect_delay_s=0.1,
            )
        )


def site(folder: Path, ocpp_version: str, **env: str) -> Site:
    write_scaffold(folder, charger_id=CHARGER)
    password = write_charger_password(load_config(folder / "strom.toml", environ={}), CHARGER)
    http_port = unused_port()  # fixed: the restarted Strom is found where it was
    config = load_config(
        folder / "strom.toml",
        environ={
            "STROM_SERVER__PORT": str(http_port),
            "STROM_SERVER__PUBLIC_URL": f'"http://127.0.0.1:{http_port}"',
            "STROM_OCPP__HOST": '"127.0.0.1"',
            "STROM_OCPP__PORT": str(unused_port()),
            **env,
        },
    )
    return Site(config, password.key, ocpp_version)


class Running:
    """A started Strom: its first status event after the start, and OCPP events as they come."""

    def __init__(self, strom: Strom) -> None:
        self.strom = strom
        self.statuses: asyncio.Queue[PublishResult] = asyncio.Queue()
        self.events: asyncio.Queue[OcppEvent] = asyncio.Queue()
        previous = strom.agents.services.on_status

        def on_status(charger_id: str, result: PublishResult) -> None:
            if previous is not None:
                previous(charger_id, result)
            self.statuses.put_nowait(result)

        strom.agents.services.on_status = on_status

        async def on_event(event: OcppEvent) -> None:
            self.events.put_nowait(event)

        strom.events.subscribe(on_event)

    async def event(self, kind: type[Any], connector: int | None = None) -> None:
        """Wait for an OCPP event of this kind (of this connector)."""
        async with asyncio.timeout(20):
            while True:
                event = await self.events.get()
                if isinstance(event, kind) and (
                    connector is None or getattr(event, "connector_id", None) == connector
                ):
                    return

    async def status(self) -> dict[int, ConnectorStatus]:
        """The connectors' states in the next status event the charger publishes."""
        async with asyncio.timeout(20):
            result = await self.statuses.get()
        events = await self.strom.agents.pool.fetch([{"ids": [result.event_id]}], timeout_s=5)
        assert events, "the status event is not on the relay"
        return {c.id: c.status for c in parse_status(events[0]).connectors}


@contextlib.asynccontextmanager
async def serving(place: Site) -> AsyncIterator[Running]:
    strom = await Strom.open(place.config)
    running = Running(strom)
    stop = asyncio.Event()
    server = asyncio.create_task(strom.serve(stop))
    try:
        await asyncio.wait_for(strom.ready.wait(), 20)
        yield running
    finally:
        stop.set()
        await server


@contextlib.asynccontextmanager
async def charger_running(charger: SimulatedCharger) -> AsyncIterator[SimulatedCharger]:
    task = asyncio.create_task(charger.run())
    try:
        yield charger
    finally:
        charger.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def connected_then_restarted(place: Site) -> None:
    """Strom runs with the charger connected, then stops; the charger stays away for now."""
    charger = place.charger()
    async with charger_running(charger):
        async with serving(place) as running:
            await running.event(ConnectorStatusChanged, connector=1)
            assert await running.strom.payments.link_of(CHARGER) is ChargerLink.ONLINE
        # Strom has stopped while the charger was connected; the charger does not reconnect
        # until the test says so.
        charger.stop()


async def api_link(http: httpx.AsyncClient, strom: Strom) -> str:
    token = await strom.cockpit.tokens.create(f"t-{secrets.token_hex(4)}")
    response = await http.get(
        f"{strom.config.server.public_url}/api/v1/chargers",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    (item,) = [c for c in response.json()["items"] if c["charger_id"] == CHARGER]
    return str(item["link"])


async def test_during_the_grace_the_charger_is_reconnecting_and_offers_work_once_it_is_back(
    tmp_path: Path, ocpp_version: str
) -> None:
    place = site(tmp_path, ocpp_version)
    await connected_then_restarted(place)
    async with serving(place) as running, httpx.AsyncClient(timeout=30) as http:
        strom = running.strom
        # The map: the connectors keep their last states, not "unavailable" at every restart.
        assert await running.status() == {1: ConnectorStatus.CHARGING}  # plugged: Preparing
        assert strom.agents.agent(CHARGER).link is ChargerLink.RECONNECTING
        # Offers: refused, the driver is told to try again in a minute.
        for url in (
            f"{place.base}/lnurlp/{CHARGER}/1",
            f"{place.base}/.well-known/lnurlp/{CHARGER}",
        ):
            answer = (await http.get(url)).json()
            assert answer["status"] == "ERROR", answer
            assert "reconnecting right now" in answer["reason"]
            assert "nothing was charged" in answer["reason"]
        # The page: reconnecting, no pay code, refreshes itself soon.
        page = (await http.get(f"{place.base}/c/{CHARGER}")).text
        assert 'data-testid="status">Reconnecting<' in page
        assert "Offline" not in page
        assert 'data-testid="pay-qr"' not in page
        assert 'http-equiv="refresh" content="10"' in page
        assert await api_link(http, strom) == "reconnecting"

        async with charger_running(place.charger()):
            await running.event(ChargerOnline)
            offer = (await http.get(f"{place.base}/lnurlp/{CHARGER}/1")).json()
            assert offer["tag"] == "payRequest", offer  # at once, no wait for the grace
            assert await api_link(http, strom) == "online"
            assert strom.agents.agent(CHARGER).link is ChargerLink.ONLINE


async def test_a_charger_that_does_not_come_back_is_shown_offline_after_the_grace(
    tmp_path: Path, ocpp_version: str
) -> None:
    place = site(tmp_path, ocpp_version, STROM_OCPP__RECONNECT_GRACE_S="2")
    await connected_then_restarted(place)
    async with serving(place) as running, httpx.AsyncClient(timeout=30) as http:
        strom = running.strom
        # The agent's own timer ends the grace and publishes the charger offline.
        while (await running.status()) != {1: ConnectorStatus.UNAVAILABLE}:
            pass
        assert strom.agents.agent(CHARGER).link is ChargerLink.OFFLINE
        page = (await http.get(f"{place.base}/c/{CHARGER}")).text
        assert 'data-testid="status">Offline<' in page
        assert 'data-testid="pay-qr"' not in page
        answer = (await http.get(f"{place.base}/lnurlp/{CHARGER}/1")).json()
        assert "offline right now" in answer["reason"]
        assert await api_link(http, strom) == "offline"


async def test_a_charger_that_went_away_before_strom_stopped_gets_no_grace(
    tmp_path: Path, ocpp_version: str
) -> None:
    place = site(tmp_path, ocpp_version)
    charger = place.charger()
    async with serving(place) as running:
        async with charger_running(charger):
            await running.event(ConnectorStatusChanged, connector=1)
        await running.event(ChargerOffline)  # it went away while Strom ran
    async with serving(place) as running:
        assert await running.strom.payments.link_of(CHARGER) is ChargerLink.OFFLINE
        assert await running.status() == {1: ConnectorStatus.UNAVAILABLE}
