"""The operator API's nostr endpoints answer alike at every process of a cluster.

Three "processes" as in ``tests/agent/test_cluster.py`` (an agent runtime, relay pool and lease
keeper each, one PostgreSQL schema, one in-process relay, a :class:`LocalHub` bus), each with
the operator API's nostr endpoints served over HTTP the way the cockpit serves them (bearer
token, audit, JSON errors), and the agents' bus calls served as the composition root does.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.cluster import SUBJECT
from agent.nostr_sdk_adapter import SdkLocalRelay
from agent.operator_calls import (
    BadAgentCall,
    decode_request,
    encode_request,
    encode_result,
    publish_from_json,
    publish_json,
    result_json,
    shortened,
)
from cockpit.api import Api
from cockpit.api.context import ApiContext
from cockpit.auth import Authenticator
from cockpit.tokens import Scope, TokenStore
from cockpit.uploads import ChargerUploads
from ocpp_server import parse_quirks
from strom_cluster import LocalBus, LocalHub
from strom_core.clock import SYSTEM_CLOCK
from strom_core.config import LiveConfig, RelayConfig, ServerConfig, StorageConfig, StromConfig
from strom_core.ports.agents import PublishResult
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.reports import Reports
from strom_storage.sessions import SessionStore
from tests.agent.conftest import PUBLIC_URL, profile
from tests.agent.test_cluster import CHARGERS, Process, start_process
from tests.cluster.trio import Trio
from tests.storage.conftest import _postgres_processes
from tests.waits import until


@dataclass
class Node:
    """One process: its agents, the bus serving the agents' calls, its API over HTTP."""

    process: Process
    hub: LocalHub
    serving: LocalBus
    http: TestClient
    token: str

    @property
    def name(self) -> str:
        return self.process.name

    async def call(self, method: str, path: str) -> Any:
        return await self.http.request(
            method, f"/api/v1{path}", headers={"Authorization": f"Bearer {self.token}"}
        )

    async def kill(self) -> None:
        await self.serving.aclose()  # its bus link goes with it
        await self.process.kill()


async def _api(process: Process, db: Database, config: StromConfig, tmp: Path) -> TestClient:
    """The cockpit's nostr endpoints of this process, over HTTP."""
    runtime = process.runtime
    live = LiveConfig(config)
    ctx = ApiContext(
        live=live,
        db=db,
        reports=Reports(db),
        sessions=SessionStore(db),
        chargers=ChargerStore(db),
        payments=runtime.services.payments,
        station=None,  # type: ignore[arg-type]  # the nostr endpoints do not ask the OCPP server
        agents=runtime,
        check_quirks=parse_quirks,
        clock=SYSTEM_CLOCK,
    )
    uploads = ChargerUploads(
        tmp / "uploads", lambda: config.uploads, lambda: PUBLIC_URL, SYSTEM_CLOCK
    )
    api = Api(ctx, uploads)
    tokens = TokenStore(db, SYSTEM_CLOCK)
    auth = Authenticator(db, tokens, (), PUBLIC_URL, SYSTEM_CLOCK)
    app = web.Application()
    app.add_routes(
        [e.route(auth, api.write_audit) for e in api.endpoints() if e.path.startswith("/nostr")]
    )
    root = web.Application()
    root.add_subapp("/api/v1", app)
    client = TestClient(TestServer(root, host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[list[Node]]:
    relay = SdkLocalRelay()
    relay_url = await relay.start()
    config = StromConfig(
        server=ServerConfig(public_url=PUBLIC_URL),
        storage=StorageConfig(data_dir=tmp_path / "unused"),
        profiles=tuple(profile(c) for c in CHARGERS),
        relays=(RelayConfig(url=relay_url),),
    )
    hub = LocalHub()
    built: list[Node] = []
    try:
        async with _postgres_processes(3) as dbs:
            await ChargerStore(dbs[0]).sync(config.profiles)
            token = await TokenStore(dbs[0], SYSTEM_CLOCK).create("ops", Scope.ADMIN)
            for index, db in enumerate(dbs):
                process = await start_process(f"p{index}", db, config, hub, tmp_path)
                serving = LocalBus(hub)
                await serving.serve(process.name, process.clustered.handle)
                http = await _api(process, db, config, tmp_path / process.name)
                built.append(Node(process, hub, serving, http, token))
            await _settled(built)
            try:
                yield built
            finally:
                for node in built:
                    node.process.stop.set()
                await asyncio.gather(*(t for n in built for t in n.process.tasks))
                for node in built:
                    await node.http.close()
                    await node.serving.aclose()
    finally:
        relay.shutdown()


async def _settled(nodes: list[Node]) -> None:
    """Wait until every agent runs in one live process, each with its fair share (no more moves)."""
    alive = [node.process for node in nodes if not node.process.stop.is_set()]
    share = math.ceil(len(CHARGERS) / len(alive))

    def shared() -> bool:  # started, not starting: a starting agent still loads its state
        started = [{c for c in CHARGERS if p.runtime.supervisor.get(c)} for p in alive]
        once = all(sum(c in each for each in started) == 1 for c in CHARGERS)
        return once and all(len(p.running()) <= share for p in alive)

    await until(shared, "every agent runs in one live process, shared fairly")


def _owner_and_other(nodes: list[Node], charger_id: str) -> tuple[Node, Node]:
    owner = next(n for n in nodes if n.process.runtime.runs(charger_id))
    other = next(n for n in nodes if n is not owner and not n.process.stop.is_set())
    return owner, other


async def test_publish_now_at_a_process_without_the_agent_runs_in_the_owner(
    nodes: list[Node],
) -> None:
    owner, other = _owner_and_other(nodes, "cp-1")

    response = await other.call("POST", "/nostr/chargers/cp-1/publish-status")

    assert response.status == 200, await response.text()
    published = await response.json()
    assert published["accepted"] is True
    last = owner.process.runtime.agent("cp-1").last_status
    assert last is not None
    assert last.event_id == published["event_id"]  # the owner's agent published it
    # The status event as the relays hold it, read at the process without the agent.
    response = await other.call("GET", "/nostr/chargers/cp-1/status-event")
    assert response.status == 200, await response.text()
    assert (await response.json())["event"]["id"] == published["event_id"]


async def test_the_overview_is_the_same_at_every_process(nodes: list[Node]) -> None:
    _, other = _owner_and_other(nodes, "cp-2")
    published = await (await other.call("POST", "/nostr/chargers/cp-2/publish-status")).json()

    overviews = []
    for node in nodes:
        response = await node.call("GET", "/nostr")
        assert response.status == 200, await response.text()
        overviews.append((await response.json())["chargers"])

    assert overviews[0] == overviews[1] == overviews[2]
    listed = {c["charger_id"]: c for c in overviews[0]}
    assert sorted(listed) == sorted(CHARGERS)  # every agent, wherever it runs
    assert listed["cp-2"]["last_status"]["event_id"] == published["event_id"]
    for charger_id, shown in listed.items():  # each one its owner's last publication
        runner = next(n for n in nodes if n.process.runtime.runs(charger_id))
        last = runner.process.runtime.agent(charger_id).last_status
        assert (shown["last_status"] or {}).get("event_id") == (last and last.event_id)


async def test_an_operator_change_reaches_the_agent_in_its_process(nodes: list[Node]) -> None:
    owner, other = _owner_and_other(nodes, "cp-3")
    assert owner.process.runtime.agent("cp-3").connectors.get(1, ("", True))[1] is True

    await other.process.runtime.set_enabled("cp-3", 1, False)

    assert owner.process.runtime.agent("cp-3").connectors[1][1] is False


async def test_a_call_to_an_agent_whose_process_died_is_a_503_until_it_has_moved(
    nodes: list[Node],
) -> None:
    owner, other = _owner_and_other(nodes, "cp-4")
    await owner.kill()  # its lease stays until the TTL runs out

    response = await other.call("POST", "/nostr/chargers/cp-4/publish-status")

    assert response.status == 503
    body = await response.json()
    assert body["error"] == "agent_moving"
    assert "moving to another process; try again in a few seconds" in body["message"]
    await _settled(nodes)
    response = await other.call("POST", "/nostr/chargers/cp-4/publish-status")
    assert response.status == 200, await response.text()


async def test_a_malformed_agent_call_is_refused_and_reaches_no_agent(nodes: list[Node]) -> None:
    owner, other = _owner_and_other(nodes, "cp-5")
    bus = LocalBus(other.hub)
    before = owner.process.runtime.agent("cp-5").last_status
    for payload in (
        b'{"m": "publish_status", "c": "cp-5", "a": {"extra": 1}}',
        b'{"m": "set_enabled", "c": "cp-5", "a": {"connector_id": true, "enabled": false}}',
        b'{"m": "__class__", "c": "cp-5", "a": {}}',
        b"\x80\x04pickle",
    ):
        answer = await bus.request(owner.name, SUBJECT, payload, 2.0)
        assert result_json(answer)[0] == "refused", payload
    assert owner.process.runtime.agent("cp-5").connectors.get(1, ("", True))[1] is True
    assert owner.process.runtime.agent("cp-5").last_status == before  # nothing published


def test_agent_calls_cross_the_bus_as_checked_json() -> None:
    payload = encode_request("set_enabled", "cp-1", {"connector_id": 2, "enabled": False})

    call, charger_id, args = decode_request(payload)

    assert (call.name, charger_id, args) == (
        "set_enabled",
        "cp-1",
        {"connector_id": 2, "enabled": False},
    )
    with pytest.raises(BadAgentCall):
        encode_request("set_enabled", "cp-1", {"connector_id": "2", "enabled": False})
    with pytest.raises(BadAgentCall):
        encode_request("reset", "cp-1", {})


TRIO_CHARGERS = ["cp-a", "cp-b", "cp-c"]


# --- three ``strom run --cluster`` processes: the composition root serves the agents' calls ----


@pytest.mark.slow
async def test_every_strom_process_answers_the_nostr_api_for_every_agent(
    tmp_path: Path, cluster_url: str
) -> None:
    trio = Trio(tmp_path, cluster_url, TRIO_CHARGERS)
    trio.setup()
    try:
        await trio.start()
        token = await trio.admin_token()
        urls = [f"{config.server.public_url}/api/v1" for config in trio.configs]
        async with httpx.AsyncClient(
            timeout=40, headers={"Authorization": f"Bearer {token}"}
        ) as http:

            async def overviews() -> list[Any]:
                answers = [await http.get(f"{url}/nostr") for url in urls]
                return [answer.json()["chargers"] for answer in answers]

            async def shared() -> bool:  # every agent runs somewhere and has published
                await asyncio.sleep(0.2)
                seen = await overviews()
                return all(
                    len(each) == len(TRIO_CHARGERS) and all(c["last_status"] for c in each)
                    for each in seen
                )

            await until(shared, "every process lists every agent's publication", within_s=30)
            published = {}
            for index, url in enumerate(urls):  # two of three run somewhere else
                answer = await http.post(f"{url}/nostr/chargers/cp-a/publish-status")
                assert answer.status_code == 200, (index, answer.text)
                published[index] = answer.json()["event_id"]
            seen = await overviews()
            shown = [{c["charger_id"]: c["last_status"]["event_id"] for c in s} for s in seen]
            assert shown[0] == shown[1] == shown[2], shown
            assert shown[0]["cp-a"] == published[2]  # the last one, by the agent wherever it runs
    except BaseException:
        print(trio.logs())
        raise
    finally:
        await trio.aclose()


def test_a_publication_too_large_for_the_bus_keeps_its_event_and_relays() -> None:
    relays = {f"wss://relay-{n}.example.com": "blocked: " + "x" * 5000 for n in range(3)}
    big = publish_json(PublishResult("ab" * 32, {"wss://ok.example.com": "ok"}, relays))

    cut = shortened(big)

    assert len(encode_result(cut)) < 7909 < len(encode_result(big))
    result = publish_from_json(cut)
    assert result is not None
    assert (result.event_id, set(result.failed), result.ok) == (
        "ab" * 32,
        set(relays),
        {"wss://ok.example.com": "ok"},
    )
    assert all(text.startswith("blocked: x") for text in result.failed.values())
