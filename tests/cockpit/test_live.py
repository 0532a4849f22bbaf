"""``/api/v1/ws``: the admin's live events and a payer's own session stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from tests.cockpit.conftest import ADMIN_SECRET, CHARGER, STRANGER_SECRET, Cockpit, nip98

pytestmark = pytest.mark.slow


@asynccontextmanager
async def websocket(cockpit: Cockpit, hello: Any) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    url = cockpit.api.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as client, client.ws_connect(url) as ws:
        if isinstance(hello, str):
            await ws.send_str(hello)
        else:
            await ws.send_json(hello)
        yield ws


async def messages_until(
    ws: aiohttp.ClientWebSocketResponse, done: Any, within_s: float = 20
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            message = await ws.receive_json()
            seen.append(message)
            if done(message):
                return

    await asyncio.wait_for(read(), within_s)
    return seen


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    message = await asyncio.wait_for(ws.receive(), 15)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    return ws.close_code


async def test_the_admin_sees_connector_session_and_payment_events_live(
    cockpit: Cockpit,
) -> None:
    hello = {"type": "auth", "authorization": f"Bearer {cockpit.admin_token}"}
    async with websocket(cockpit, hello) as ws:
        ready = await ws.receive_json()
        assert ready == {"type": "ready", "actor": "token:ops"}
        await cockpit.stack.pay(5_000_000)
        seen = await messages_until(
            ws,
            lambda m: m["type"] == "connector" and m["status"] == "Charging",
        )
        seen += await messages_until(
            ws, lambda m: m["type"] == "session" and m["state"] == "charging"
        )
    kinds = {m["type"] for m in seen}
    assert {"payment", "session", "connector"} <= kinds
    payment = next(m for m in seen if m["type"] == "payment")
    assert payment["amount_msat"] == 5_000_000
    assert payment["charger_id"] == CHARGER
    states = [m["state"] for m in seen if m["type"] == "session"]
    assert "paid" in states
    assert states[-1] == "charging"


async def test_an_admin_npub_may_open_the_stream_with_nip98(cockpit: Cockpit) -> None:
    header = nip98(ADMIN_SECRET, cockpit.api + "/ws", "GET")
    async with websocket(cockpit, {"type": "auth", "authorization": header}) as ws:
        ready = await ws.receive_json()
    assert ready["type"] == "ready"
    assert ready["actor"].startswith("npub1")


@pytest.mark.parametrize(
    ("hello", "code"),
    [
        ({"type": "auth", "authorization": "Bearer strom_wrong"}, 4401),
        ("not json", 4400),
        ({"type": "subscribe"}, 4400),
        ({"type": "auth"}, 4400),
        ({"type": "session", "session_id": "nope", "secret": "nope"}, 4401),
    ],
)
async def test_bad_first_messages_close_the_socket_with_a_clear_code(
    cockpit: Cockpit, hello: Any, code: int
) -> None:
    async with websocket(cockpit, hello) as ws:
        assert await closed_with(ws) == code


async def test_a_stranger_npub_is_refused_with_4403(cockpit: Cockpit) -> None:
    header = nip98(STRANGER_SECRET, cockpit.api + "/ws", "GET")
    async with websocket(cockpit, {"type": "auth", "authorization": header}) as ws:
        assert await closed_with(ws) == 4403


async def test_a_payer_streams_their_own_session_only(cockpit: Cockpit) -> None:
    stack = cockpit.stack
    offer = await stack.get(stack.pay_url)
    other = await stack.get(offer["callback"], amount="2000000")  # another driver's invoice
    mine = await stack.get(offer["callback"], amount="5000000")
    await stack.wallet.pay(mine["pr"])
    page = urlsplit(mine["successAction"]["url"])
    session_id = page.path.split("/")[-1]
    secret = parse_qs(page.query)["secret"][0]
    wrong = {"type": "session", "session_id": session_id, "secret": secret + "x"}
    async with websocket(cockpit, wrong) as ws:
        assert await closed_with(ws) == 4401

    hello = {"type": "session", "session_id": session_id, "secret": secret}
    async with websocket(cockpit, hello) as ws:
        ready = await ws.receive_json()
        assert ready["type"] == "ready"
        assert ready["session"]["session_id"] == session_id
        seen = await messages_until(ws, lambda m: m.get("state") == "charging")
        # The other driver pays now: their session changes (paid, then refundable because
        # the connector is taken), and none of it may reach this stream.
        await stack.wallet.pay(other["pr"])
        other_status = other["successAction"]["url"].replace("?", ".json?", 1)
        await stack.wait_state(other_status, "start_failed", "refund_pending", "refunded")
        with contextlib.suppress(TimeoutError):  # read whatever else came within a second
            seen += await messages_until(ws, lambda m: False, within_s=1)
    assert {m["session_id"] for m in seen} == {session_id}
    assert {m["type"] for m in seen} == {"session"}  # no payments or charger events leak
