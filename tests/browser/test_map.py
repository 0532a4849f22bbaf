"""The network map (/map) in a real browser on a phone, reading a relay with two operators.

Strom's embedded relay holds the status event of its own charger (published by its agent) and
those of two chargers of a second operator (signed here with that operator's keys and published
to the relay like any nostr client would). The page reads them through the front door's bridge
to the embedded relay; tiles come from a small tile server on loopback (or none at all).
"""

from __future__ import annotations

import math
import socket
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pytest
import websockets
from aiohttp import web

from strom_nostr import geohash
from strom_nostr.discovery import (
    ChargerStatus,
    ConnectorInfo,
    ConnectorStatus,
    FiatPrice,
    Location,
    Prices,
    status_template,
)
from strom_nostr.event import sign_template
from strom_nostr.keys import public_key_hex
from tests.browser.conftest import Phone, screenshot
from tests.browser.test_pages import assert_fits_a_phone
from tests.e2e.conftest import CHARGER, Stack, running_stack

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = pytest.mark.peer

OTHER_KEY = bytes.fromhex("22" * 32)  # the second operator's key (a test key, nothing real)
BERLIN = (52.520008, 13.404954)  # the scaffold's charger
MUNICH = (48.137154, 11.576124)
HAMBURG = (53.551086, 9.993682)


def _png_tile() -> bytes:
    """A 256x256 light tile with a grid line on two edges (PNG, made here)."""
    rows = []
    for y in range(256):
        row = bytearray([0])  # filter: none
        for x in range(256):
            row += b"\x9a\xb8\xa8" if x == 0 or y == 0 else b"\xe8\xf0\xe6"
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


@asynccontextmanager
async def tile_server() -> AsyncIterator[str]:
    """A tile server on loopback; yields its URL template."""
    tile = _png_tile()

    async def serve(_request: web.Request) -> web.Response:
        return web.Response(body=tile, content_type="image/png")

    app = web.Application()
    app.router.add_get("/tiles/{z}/{x}/{y}.png", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/tiles/{{z}}/{{x}}/{{y}}.png"
    finally:
        await runner.cleanup()


def other_status(
    charger_id: str,
    where: tuple[float, float],
    state: ConnectorStatus,
    created_at: int,
    *,
    price_known: bool = True,
    fiat: tuple[FiatPrice, ...] = (),
) -> dict[str, Any]:
    """A status event of the second operator's charger, signed with its key."""
    status = ChargerStatus(
        charger_id=charger_id,
        name=f"Other operator {charger_id}",
        location=Location(*where, address=f"{charger_id} street 1"),
        connectors=(ConnectorInfo(1, "CCS2", 50_000, state),),
        prices=Prices(400_000, 0, 1_000_000),
        lud16=f"{charger_id}@other.example",
        website=f"https://other.example/c/{charger_id}",
        energy_price_known=price_known,
        fiat=fiat,
    )
    event = sign_template(OTHER_KEY, status_template(status, created_at=created_at))
    return event.to_dict()


async def publish(relay_url: str, *events: dict[str, Any]) -> None:
    """Publish events to a relay as a nostr client does; each must be accepted."""
    async with websockets.connect(relay_url) as relay:
        for event in events:
            await relay.send(orjson.dumps(["EVENT", event]).decode())
            while True:
                answer = orjson.loads(await relay.recv())
                if answer[0] == "OK" and answer[1] == event["id"]:
                    assert answer[2] is True, answer
                    break


def mercator(lat: float, lon: float, zoom: int) -> tuple[float, float]:
    size = 256 * 2**zoom
    s = math.sin(math.radians(lat))
    return (lon + 180) / 360 * size, (0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * size


async def marker_positions(page: Page) -> dict[str, dict[str, float]]:
    """Each marker's anchor (bottom centre) relative to the map's top-left, and the view."""
    result: dict[str, dict[str, float]] = await page.evaluate(
        """() => {
          const box = document.getElementById("map").getBoundingClientRect();
          const out = {};
          for (const m of document.querySelectorAll(".marker")) {
            const r = m.getBoundingClientRect();
            out[m.dataset.charger] = {x: r.left + r.width / 2 - box.left, y: r.bottom - box.top,
                                      lat: +m.dataset.lat, lon: +m.dataset.lon};
          }
          const map = document.getElementById("map").dataset;
          out["@view"] = {x: box.width, y: box.height, lat: +map.lat, lon: +map.lon,
                          zoom: +map.zoom};
          return out;
        }"""
    )
    return result


def expect(target: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(target)


def cell_centre(lat: float, lon: float) -> tuple[float, float]:
    """Where a client puts a charger: the centre of its precision-9 geohash cell."""
    south, north, west, east = geohash.bounding_box(geohash.encode(lat, lon, 9))
    return (south + north) / 2, (west + east) / 2


@pytest.fixture
async def mapped(tmp_path: Path) -> AsyncIterator[Stack]:
    """The e2e stack, no car plugged in yet, its map's tiles from a loopback tile server."""
    async with (
        tile_server() as tiles,
        running_stack(tmp_path, env={"STROM_SERVER__MAP_TILE_URL": f'"{tiles}"'}) as stack,
    ):
        await stack.charger.unplug(1)  # the connector is free (Available) until a driver comes
        yield stack


async def test_map_shows_two_operators_live_with_filter_and_pay_button(
    mapped: Stack, phone: Phone
) -> None:
    stack = mapped
    strom = stack.strom
    relay = strom.agents.pool.embedded_url
    assert relay is not None
    mine = strom.agents.pubkey(CHARGER)
    other = public_key_hex(OTHER_KEY)
    now = int(strom.clock.unix())
    await publish(
        relay,
        other_status("munich-1", MUNICH, ConnectorStatus.AVAILABLE, now),
        other_status("hamburg-1", HAMBURG, ConnectorStatus.AVAILABLE, now),
    )

    page = await phone()
    await page.goto(f"{stack.base}/map")
    markers = page.locator(".marker")
    await expect(markers).to_have_count(3, timeout=20_000)
    assert await page.locator(f'.marker[data-pubkey="{other}"]').count() == 2
    own = page.locator(f'.marker[data-charger="{CHARGER}"]')
    await expect(own).to_have_attribute("data-pubkey", str(mine))
    await expect(own).to_have_attribute("data-mine", "true")
    await expect(own).to_have_attribute("data-status", "available")

    # Each marker sits where its geohash says, on the map's Web Mercator projection.
    positions = await marker_positions(page)
    view = positions.pop("@view")
    zoom = int(view["zoom"])
    centre = mercator(view["lat"], view["lon"], zoom)
    for charger, where in {CHARGER: BERLIN, "munich-1": MUNICH, "hamburg-1": HAMBURG}.items():
        lat, lon = cell_centre(*where)
        assert positions[charger]["lat"] == pytest.approx(lat, abs=1e-5)
        assert positions[charger]["lon"] == pytest.approx(lon, abs=1e-5)
        x, y = mercator(lat, lon, zoom)
        assert positions[charger]["x"] == pytest.approx(x - centre[0] + view["x"] / 2, abs=1.5)
        assert positions[charger]["y"] == pytest.approx(y - centre[1] + view["y"] / 2, abs=1.5)
        assert 0 <= positions[charger]["x"] <= view["x"], f"{charger} is off the map"
        assert 0 <= positions[charger]["y"] <= view["y"], f"{charger} is off the map"
    assert positions["munich-1"]["y"] > positions[CHARGER]["y"] > positions["hamburg-1"]["y"]
    assert await page.locator("#tiles img").count() > 0
    await assert_fits_a_phone(page)
    await screenshot(page, "map-two-operators")

    # The charger's details: price, connector, and the pay button to its page and address.
    await own.click()
    detail = page.locator("#detail")
    await expect(detail).to_contain_text("250 sat/kWh")
    await expect(detail.locator('[data-connector="1"]')).to_contain_text("available")
    host = stack.base.split("://", 1)[1]
    await expect(page.locator("#pay")).to_have_attribute("href", f"{stack.base}/c/{CHARGER}")
    await expect(page.locator("#pay")).to_have_text("Pay and charge")
    await expect(page.locator("#lud16")).to_have_attribute("href", f"lightning:{CHARGER}@{host}")

    # Live: a driver plugs in and pays, the agent publishes, the open subscription follows.
    await stack.charger.plug(1)
    status_url, _ = await stack.pay(5_000_000)
    await stack.wait_state(status_url, "charging")
    await expect(own).to_have_attribute("data-status", "charging", timeout=20_000)
    await expect(detail.locator('[data-connector="1"]')).to_contain_text("charging")
    await expect(page.locator("#pay")).to_have_text("Charger page (no connector free now)")
    # And a new status of the other operator's charger replaces its marker's state.
    # (The tiles already shown stay: a redraw does not fetch them again.)
    await page.locator("#tiles img").first.evaluate("img => { img.dataset.kept = 'yes'; }")
    later = max(now + 1, int(strom.clock.unix()))
    await publish(relay, other_status("munich-1", MUNICH, ConnectorStatus.FAULTED, later))
    munich = page.locator('.marker[data-charger="munich-1"]')
    await expect(munich).to_have_attribute("data-status", "faulted", timeout=20_000)
    assert await page.locator('#tiles img[data-kept="yes"]').count() == 1
    await expect(markers).to_have_count(3)
    await screenshot(page, "map-live")

    # A charger whose energy price cannot be given now (no kWh tag) is not shown as free.
    hamburg = page.locator('.marker[data-charger="hamburg-1"]')
    await hamburg.click()
    await expect(detail).to_contain_text("400 sat/kWh")
    await publish(
        relay,
        other_status("hamburg-1", HAMBURG, ConnectorStatus.AVAILABLE, later + 1, price_known=False),
    )
    await expect(detail).to_contain_text("energy price not known now", timeout=20_000)
    await expect(detail).not_to_contain_text("0 sat/kWh")
    # Priced in euros: as written, with the sats of the event's rate (none: no rate now).
    euros = (FiatPrice("0.36", "EUR", "kWh"),)
    await publish(
        relay,
        other_status("hamburg-1", HAMBURG, ConnectorStatus.AVAILABLE, later + 2, fiat=euros),
    )
    await expect(detail).to_contain_text("0.36 EUR/kWh (about 400 sat)", timeout=20_000)
    await publish(
        relay,
        other_status(
            "hamburg-1",
            HAMBURG,
            ConnectorStatus.AVAILABLE,
            later + 3,
            price_known=False,
            fiat=euros,
        ),
    )
    await expect(detail).to_contain_text("0.36 EUR/kWh + 1,000 sat per session", timeout=20_000)

    # "This operator only" keeps this instance's chargers.
    await page.locator("#only-operator").check()
    await expect(markers).to_have_count(1)
    await expect(markers.first).to_have_attribute("data-charger", CHARGER)
    await expect(page.locator("#chargers li")).to_have_count(1)
    await screenshot(page, "map-this-operator")
    await page.locator("#only-operator").uncheck()
    await expect(markers).to_have_count(3)

    # The pay button leads to the charger page, whose code is the connector's LNURL.
    await own.click()
    await page.locator("#pay").click()
    await page.wait_for_url(f"{stack.base}/c/{CHARGER}")
    await expect(page.locator("h1")).to_be_visible()


async def test_map_without_tiles_shows_the_markers_on_a_plain_background(
    tmp_path: Path, phone: Phone
) -> None:
    async with running_stack(tmp_path, env={"STROM_SERVER__MAP_TILE_URL": '""'}) as stack:
        page = await phone()
        await page.goto(f"{stack.base}/map")
        marker = page.locator(f'.marker[data-charger="{CHARGER}"]')
        await expect(marker).to_be_visible(timeout=20_000)
        assert await page.locator("#tiles img").count() == 0
        policy = (await page.request.get(f"{stack.base}/map")).headers["content-security-policy"]
        assert "img-src data:;" in policy
        await screenshot(page, "map-no-tiles")


async def test_map_with_its_tile_server_unreachable_shows_the_markers_and_stops_asking(
    tmp_path: Path, phone: Phone
) -> None:
    """A tile server that does not answer (a closed port): the markers show on the plain
    background, and the failed tiles are not asked for again at every redraw."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    away = f"http://127.0.0.1:{closed}/"
    tiles = f"{away}tiles/{{z}}/{{x}}/{{y}}.png"
    async with running_stack(tmp_path, env={"STROM_SERVER__MAP_TILE_URL": f'"{tiles}"'}) as stack:
        page = await phone(unreachable=away)
        asked: list[str] = []
        page.on("request", lambda request: asked.append(request.url))
        await page.goto(f"{stack.base}/map")
        marker = page.locator(f'.marker[data-charger="{CHARGER}"]')
        await expect(marker).to_be_visible(timeout=20_000)
        await expect(page.locator("#tiles img")).to_have_count(0, timeout=10_000)
        tile_requests = [url for url in asked if url.startswith(away)]
        assert tile_requests, "the page never asked the tile server"
        for _ in range(2):  # two redraws of the same view
            await page.locator("#only-operator").check()
            await page.locator("#only-operator").uncheck()
        await expect(marker).to_be_visible()
        assert [url for url in asked if url.startswith(away)] == tile_requests
        await screenshot(page, "map-tiles-unreachable")
