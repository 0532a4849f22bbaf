"""The network map's server side: its settings, its CSP, and the read-only relay bridge."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from pydantic import ValidationError

from lnurl_server.map import BRIDGE_PATH, NetworkMap, allowed_request
from lnurl_server.pages import Pages
from strom_core.config import (
    DEFAULT_TILE_URL,
    LiveConfig,
    RelayConfig,
    ServerConfig,
    StromConfig,
)
from strom_nostr.discovery import STATUS_KIND
from strom_web.csp import map_policy, source_hash
from tests.e2e.conftest import CHARGER, running_stack


@pytest.mark.parametrize(
    ("message", "allowed"),
    [
        (["REQ", "map", {"kinds": [STATUS_KIND], "#t": ["ev-charging"]}], True),
        (["REQ", "map", {"kinds": [STATUS_KIND]}, {"kinds": [STATUS_KIND], "#g": ["u33"]}], True),
        (["CLOSE", "map"], True),
        (["REQ", "map", {"kinds": [1059], "#p": ["00" * 32]}], False),  # DMs: not through here
        (["REQ", "map", {"kinds": [STATUS_KIND, 4]}], False),
        (["REQ", "map", {"#t": ["ev-charging"]}], False),  # every kind
        (["REQ", "map"], False),
        (["REQ", "map", *[{"kinds": [STATUS_KIND]}] * 9], False),
        (["EVENT", {"kind": STATUS_KIND}], False),  # the public publishes nothing
        (["AUTH", {"kind": 22242}], False),
        (["COUNT", "x", {"kinds": [STATUS_KIND]}], False),
        ({"REQ": "map"}, False),
    ],
)
def test_the_bridge_passes_on_status_subscriptions_only(message: object, allowed: bool) -> None:
    assert allowed_request(orjson.dumps(message).decode()) is allowed


def test_the_bridge_refuses_what_is_not_json() -> None:
    assert not allowed_request("REQ map")


def test_the_map_policy_allows_its_tiles_and_relays_by_origin_only() -> None:
    policy = map_policy(
        scripts=["js"],
        styles=["a", "b"],
        public_url="https://charge.example",
        relays=["wss://relay.example.org/path", "wss://relay.example.org"],
        tile_url=DEFAULT_TILE_URL,
    )
    directives = dict(part.split(" ", 1) for part in policy.split("; "))
    assert directives["script-src"] == source_hash("js")
    assert directives["style-src"] == f"{source_hash('a')} {source_hash('b')}"
    assert directives["img-src"] == "data: https://tile.openstreetmap.org"
    assert directives["connect-src"] == "'self' wss://charge.example wss://relay.example.org"
    assert directives["default-src"] == "'none'"


def test_no_tile_server_means_no_image_origin() -> None:
    policy = map_policy(
        scripts=[], styles=[], public_url="http://127.0.0.1:8080", relays=[], tile_url=""
    )
    assert "img-src data:;" in policy
    assert "connect-src 'self' ws://127.0.0.1:8080;" in policy


def test_the_tile_server_setting() -> None:
    assert ServerConfig().map_tile_url == DEFAULT_TILE_URL
    assert ServerConfig(map_tile_url="").map_tile_url == ""
    url = "http://tiles.lan:8081/osm/{z}/{x}/{y}.png"
    assert ServerConfig(map_tile_url=url).map_tile_url == url
    for wrong in ("tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tiles.example/{z}/{x}.png"):
        with pytest.raises(ValidationError, match=r"\{z\}, \{x\} and \{y\}"):
            ServerConfig(map_tile_url=wrong)


async def test_the_bridge_reads_status_events_of_the_embedded_relay_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    async with running_stack(tmp_path) as stack:
        page = await stack.http.get(f"{stack.base}/map")
        assert page.status_code == 200
        assert "tile.openstreetmap.org" in page.headers["content-security-policy"]
        bridge = stack.base.replace("http://", "ws://") + BRIDGE_PATH
        assert bridge in page.text  # the page reads the embedded relay through the bridge
        async with websockets.connect(bridge) as relay:
            await relay.send(
                orjson.dumps(["REQ", "s", {"kinds": [STATUS_KIND], "#d": [CHARGER]}]).decode()
            )
            answer = orjson.loads(await asyncio.wait_for(relay.recv(), 10))
            assert answer[0] == "EVENT"
            assert answer[2]["tags"][0] == ["d", CHARGER]
            assert orjson.loads(await asyncio.wait_for(relay.recv(), 10))[0] == "EOSE"
            await relay.send(orjson.dumps(["EVENT", answer[2]]).decode())
            # The subscription stays open: a status the agent publishes meanwhile may come
            # first (seen in CI). The refusal is the first message of any other kind.
            while True:
                message = orjson.loads(await asyncio.wait_for(relay.recv(), 10))
                if message[:2] != ["EVENT", "s"]:
                    break
            assert message[0] == "NOTICE"
            assert "read-only" in message[1]


async def test_without_an_embedded_relay_the_page_reads_the_external_ones_directly() -> None:
    config = StromConfig(
        server=ServerConfig(public_url="https://charge.example", map_tile_url=""),
        relays=(
            RelayConfig(url="wss://relay.example.org"),
            RelayConfig(url="wss://inbox.example.org", write=False),  # chargers publish not there
        ),
    )
    network_map = NetworkMap(LiveConfig(config), Pages())
    assert network_map.relays() == ["wss://relay.example.org"]
    assert network_map.operator_pubkeys() == []
    page = await network_map.page(make_mocked_request("GET", "/map"))
    assert BRIDGE_PATH not in (page.text or "")
    assert (
        "connect-src 'self' wss://charge.example wss://relay.example.org;"
        in (page.headers["Content-Security-Policy"])
    )
    with pytest.raises(web.HTTPServiceUnavailable):
        await network_map.bridge(make_mocked_request("GET", BRIDGE_PATH))
