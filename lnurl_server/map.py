"""Strom's network map at ``/map``: every charger publishing kind 30522 on Strom's relays.

The page reads the chargers' status events from the relays in the browser, as any nostr client
would, not from Strom's database: it subscribes to ``{"kinds": [30522], "#t": ["ev-charging"]}``
on each relay the chargers publish to and keeps the subscription open, so a new status replaces
a marker's state at once. Chargers of every operator publishing there are shown; a switch keeps
only this instance's chargers (their agents' public keys are in the page).

The embedded relay listens on loopback only, so the browser reaches it through ``/map/relay``,
a read-only websocket bridge on the front door: it passes on ``REQ`` for status events and
``CLOSE``, and refuses everything else (no ``EVENT``: the public cannot publish to the embedded
relay through it). External relays are connected to directly.

Tiles come from ``server.map_tile_url`` (OpenStreetMap's by default, empty for none); the CSP
of the page allows that origin for images and the relays' origins for websockets, nothing else.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from lnurl_server.pages import Pages
from strom_core.config import LiveConfig
from strom_core.ports import ChargerIdentities
from strom_nostr.discovery import STATUS_KIND
from strom_web.csp import page_headers, websocket_origin

__all__ = ["BRIDGE_PATH", "MAX_BRIDGES", "NetworkMap", "allowed_request"]

log = logging.getLogger(__name__)

BRIDGE_PATH = "/map/relay"
MAX_BRIDGES = 200
"""Browsers reading the embedded relay through the bridge at once; more are refused."""
_MAX_MESSAGE = 64 * 1024
_MAX_FILTERS = 8


def allowed_request(text: str) -> bool:
    """Whether the bridge passes a browser's message on to the embedded relay.

    ``["CLOSE", <id>]`` and ``["REQ", <id>, <filter>…]`` whose every filter asks for status
    events only (``"kinds": [30522]``), at most eight filters; nothing else.
    """
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    if not (isinstance(message, list) and len(message) >= 2 and isinstance(message[1], str)):
        return False
    if message[0] == "CLOSE":
        return len(message) == 2
    if message[0] != "REQ" or not 3 <= len(message) <= 2 + _MAX_FILTERS:
        return False
    return all(
        isinstance(item, dict) and item.get("kinds") == [STATUS_KIND] for item in message[2:]
    )


@dataclass
class NetworkMap:
    """The ``/map`` page and the read-only bridge to the embedded relay.

    Args:
        live: the configuration in force (relays, tile server, the chargers).
        pages: renders the page and gives its CSP.
        identities: the chargers' public keys ("this operator only").
        embedded_relay: the embedded relay's ``ws://`` URL once it listens, else None.
    """

    live: LiveConfig
    pages: Pages
    identities: ChargerIdentities | None = None
    embedded_relay: Callable[[], str | None] = lambda: None
    _bridges: int = field(default=0, init=False)

    def routes(self) -> list[web.RouteDef]:
        """The map's routes."""
        return [web.get("/map", self.page), web.get(BRIDGE_PATH, self.bridge)]

    def relays(self) -> list[str]:
        """The relays the page reads: those the chargers publish to (the embedded one bridged)."""
        config = self.live.current
        urls = []
        for relay in config.relays:
            if not relay.write:
                continue
            if relay.url == "embedded":
                urls.append(websocket_origin(config.server.public_url) + BRIDGE_PATH)
            else:
                urls.append(relay.url)
        return list(dict.fromkeys(urls))

    def operator_pubkeys(self) -> list[str]:
        """The public keys of this instance's chargers."""
        if self.identities is None:
            return []
        keys = (self.identities.pubkey(p.id) for p in self.live.current.profiles)
        return sorted({key for key in keys if key})

    async def page(self, request: web.Request) -> web.Response:
        """The map page: its settings in the page, the chargers come from the relays."""
        config = self.live.current
        relays = self.relays()
        settings: dict[str, Any] = {
            "relays": relays,
            "operator": self.operator_pubkeys(),
            "tiles": config.server.map_tile_url,
            "kind": STATUS_KIND,
        }
        policy = self.pages.map_policy(
            config.server.public_url,
            relays=[url for url in relays if not url.endswith(BRIDGE_PATH)],
            tile_url=config.server.map_tile_url,
        )
        return web.Response(
            text=self.pages.network_map(settings),
            content_type="text/html",
            headers=page_headers(policy),
        )

    async def bridge(self, request: web.Request) -> web.StreamResponse:
        """A browser's read-only websocket to the embedded relay."""
        upstream_url = self.embedded_relay()
        if upstream_url is None or self._bridges >= MAX_BRIDGES:
            raise web.HTTPServiceUnavailable(text="the relay is not available here right now")
        browser = web.WebSocketResponse(heartbeat=30, max_msg_size=_MAX_MESSAGE)
        await browser.prepare(request)
        self._bridges += 1
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.ws_connect(upstream_url, max_msg_size=0) as relay,
            ):
                down = asyncio.create_task(_relay_to_browser(relay, browser))
                try:
                    await _browser_to_relay(browser, relay)
                finally:
                    down.cancel()
        except (aiohttp.ClientError, OSError) as exc:
            log.info("map: embedded relay unreachable: %s", exc)
        finally:
            self._bridges -= 1
            await browser.close()
        return browser


async def _browser_to_relay(
    browser: web.WebSocketResponse, relay: aiohttp.ClientWebSocketResponse
) -> None:
    async for message in browser:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        if allowed_request(message.data):
            await relay.send_str(message.data)
        else:
            notice = "read-only: this bridge passes REQ for status events and CLOSE only"
            await browser.send_str(orjson.dumps(["NOTICE", notice]).decode())


async def _relay_to_browser(
    relay: aiohttp.ClientWebSocketResponse, browser: web.WebSocketResponse
) -> None:
    async for message in relay:
        if message.type is not aiohttp.WSMsgType.TEXT or browser.closed:
            break
        await browser.send_str(message.data)
    await browser.close()
