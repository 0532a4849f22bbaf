"""``/api/v1/ws``: live events for the admin UI, and one session's stream for its payer.

A browser cannot set headers on a websocket, so the first message authenticates:

* ``{"type": "auth", "authorization": "Bearer strom_…"}`` or ``"Nostr <base64>"`` (a NIP-98
  event for ``GET <public_url>/api/v1/ws``) → every event: ``charger`` (online/offline),
  ``connector`` (OCPP status), ``session`` (every committed change: state, energy, money),
  ``payment`` (a session's paid amount went up), ``nostr`` (a status event was published),
  ``lightning`` (the node went down or came back: ``up``, ``reason``, ``since``).
* ``{"type": "session", "session_id": "…", "secret": "…"}`` → that session's ``session``
  events only; the secret is the one in the payer's session link, checked like a refund link.

The server answers ``{"type": "ready", …}`` or closes with code 4401 (bad credentials),
4403 (not an admin) or 4400 (bad first message, or none within 10 s). Each subscriber has a
bounded queue: a client too slow to read is disconnected (code 4408) rather than letting
memory grow; the UI reconnects and reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from cockpit.auth import Authenticator, AuthFailed, Forbidden
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import StromError
from strom_core.ports import ChargerOffline, ChargerOnline, ConnectorStatusChanged, OcppEvent
from strom_core.ports.agents import PublishResult
from strom_core.session import Transition
from strom_lightning import NodeState
from strom_services.refunds import RefundService
from strom_storage.sessions import SessionNotFound
from strom_web.clients import client_of

__all__ = ["LiveHub"]

log = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 10.0
QUEUE_SIZE = 512
_WS_PATH = "/api/v1/ws"


@dataclass(eq=False)
class _Subscriber:
    session_id: str | None  # None: everything (admin)
    queue: asyncio.Queue[bytes] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False


def session_event(transition: Transition) -> dict[str, Any]:
    """The ``session`` message of a committed transition."""
    session = transition.session
    return {
        "type": "session",
        "session_id": session.id,
        "charger_id": session.charger_id,
        "connector_id": session.connector_id,
        "state": session.state.value,
        "paid_msat": session.paid_msat,
        "consumed_msat": session.consumed_msat,
        "refundable_msat": session.refundable_msat,
        "refunded_msat": session.refunded_msat,
        "energy_wh": session.energy_wh,
        "elapsed_s": session.elapsed_s,
        "stop_reason": session.stop_reason,
    }


class LiveHub:
    """Fans Strom's events out to websocket subscribers.

    Args:
        auth: checks the admin's first message.
        refunds: checks a session secret.
        clock: the time stamped on payment and nostr messages.
    """

    def __init__(
        self, auth: Authenticator, refunds: RefundService, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.auth = auth
        self.refunds = refunds
        self.clock = clock
        self._subscribers: set[_Subscriber] = set()
        self._paid: OrderedDict[str, int] = OrderedDict()
        # Several processes (cluster): also send each message to the others (cockpit.live_bus),
        # which deliver it to their own subscribers. None: one process.
        self.fanout: Callable[[bytes, str | None], None] | None = None

    @property
    def subscribers(self) -> int:
        """How many websockets are listening."""
        return len(self._subscribers)

    # --- sources (called by Strom's parts) -------------------------------------------------

    def on_transition(self, transition: Transition) -> None:
        """A ``SessionStore`` listener: every committed session change.

        It runs on the settlement and metering paths: with nobody listening it only notes
        the paid amount (so a later payment event carries the new money only).
        """
        session = transition.session
        before = self._paid.get(session.id, 0)
        self.note_paid(session.id, session.paid_msat)
        if not self._subscribers and self.fanout is None:
            return
        self._send(session_event(transition), session.id)
        if session.paid_msat > before:
            payment = {
                "type": "payment",
                "session_id": session.id,
                "charger_id": session.charger_id,
                "amount_msat": session.paid_msat - before,
                "paid_msat": session.paid_msat,
                "at": self.clock.now().isoformat(),
            }
            self._send(payment, None)

    def note_paid(self, session_id: str, paid_msat: int) -> None:
        """Remember what a session has been paid (its next payment event carries the rest).

        Called for this process's transitions, and in a cluster for the other processes'
        session messages, so a top-up settled here after a payment settled elsewhere reports
        the new money only.
        """
        self._paid[session_id] = paid_msat
        self._paid.move_to_end(session_id)
        while len(self._paid) > 10_000:
            self._paid.popitem(last=False)

    async def on_ocpp_event(self, event: OcppEvent) -> None:
        """A ``CoreEventSink`` subscriber: charger online/offline and connector status."""
        if isinstance(event, ConnectorStatusChanged):
            self._send(
                {
                    "type": "connector",
                    "charger_id": event.charger_id,
                    "connector_id": event.connector_id,
                    "status": event.status,
                    "error_code": event.error_code,
                    "at": event.at.isoformat(),
                },
                None,
            )
        elif isinstance(event, ChargerOnline | ChargerOffline):
            self._send(
                {
                    "type": "charger",
                    "charger_id": event.charger_id,
                    "online": isinstance(event, ChargerOnline),
                    "at": event.at.isoformat(),
                },
                None,
            )

    async def on_lightning(self, state: NodeState) -> None:
        """A ``NodeWatch`` listener: the lightning node went down or came back."""
        self._send(
            {
                "type": "lightning",
                "up": state.up,
                "reason": state.reason,
                "since": state.since.isoformat(),
            },
            None,
        )

    def on_status(self, charger_id: str, result: PublishResult) -> None:
        """A status listener of the agents: a status event was published (or not)."""
        self._send(
            {
                "type": "nostr",
                "charger_id": charger_id,
                "event_id": result.event_id,
                "accepted": result.accepted,
                "at": self.clock.now().isoformat(),
            },
            None,
        )

    def _send(self, message: dict[str, Any], session_id: str | None) -> None:
        if not self._subscribers and self.fanout is None:
            return
        data = orjson.dumps(message)
        self.deliver(data, session_id)
        if self.fanout is not None:
            self.fanout(data, session_id)  # the other processes' subscribers

    def deliver(self, data: bytes, session_id: str | None) -> None:
        """Queue a message for this process's subscribers (its own, or another process's).

        Args:
            data: the message, JSON.
            session_id: the session it is about (its payer's stream gets it too), or None.
        """
        for subscriber in self._subscribers:
            if subscriber.session_id is not None and subscriber.session_id != session_id:
                continue
            try:
                subscriber.queue.put_nowait(data)
            except asyncio.QueueFull:
                subscriber.overflowed = True

    # --- the websocket ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """``GET /api/v1/ws``."""
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        subscriber = await self._welcome(ws, client_of(request).address)
        if subscriber is None:
            return ws
        self._subscribers.add(subscriber)
        sender = asyncio.create_task(self._pump(ws, subscriber))
        try:
            async for message in ws:  # clients only ever close; anything else is ignored
                if message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self._subscribers.discard(subscriber)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await ws.close()
        return ws

    async def _pump(self, ws: web.WebSocketResponse, subscriber: _Subscriber) -> None:
        while True:
            data = await subscriber.queue.get()
            if subscriber.overflowed:
                await ws.close(code=4408, message=b"too slow; reconnect")
                return
            await ws.send_str(data.decode())

    async def _welcome(self, ws: web.WebSocketResponse, client: str) -> _Subscriber | None:
        try:
            first = await ws.receive(timeout=AUTH_TIMEOUT_S)
        except TimeoutError:
            await ws.close(code=4400, message=b"no first message")
            return None
        try:
            hello = orjson.loads(first.data) if first.type is WSMsgType.TEXT else None
        except orjson.JSONDecodeError:
            hello = None
        if not isinstance(hello, dict):
            await ws.close(code=4400, message=b"expected a JSON object first")
            return None
        kind = hello.get("type")
        if kind == "auth":
            return await self._admin(ws, hello, client)
        if kind == "session":
            return await self._session(ws, hello)
        await ws.close(code=4400, message=b'expected type "auth" or "session"')
        return None

    async def _admin(
        self, ws: web.WebSocketResponse, hello: dict[str, Any], client: str
    ) -> _Subscriber | None:
        header = hello.get("authorization")
        if not isinstance(header, str):
            await ws.close(code=4400, message=b"auth needs an authorization string")
            return None
        try:
            principal = await self.auth.authenticate(
                header, method="GET", path_qs=_WS_PATH, body=None
            )
        except AuthFailed as exc:
            log.warning("api: websocket from %s refused: %s", client, exc)
            await ws.close(code=4401, message=str(exc)[:120].encode())
            return None
        except Forbidden as exc:
            log.warning("api: websocket from %s refused: %s", client, exc)
            await ws.close(code=4403, message=str(exc)[:120].encode())
            return None
        await ws.send_str(orjson.dumps({"type": "ready", "actor": principal.actor}).decode())
        return _Subscriber(session_id=None)

    async def _session(
        self, ws: web.WebSocketResponse, hello: dict[str, Any]
    ) -> _Subscriber | None:
        session_id, secret = hello.get("session_id"), hello.get("secret")
        if not isinstance(session_id, str) or not isinstance(secret, str) or len(session_id) > 64:
            await ws.close(code=4400, message=b"session needs session_id and secret")
            return None
        try:
            session = await self.refunds.authenticate(session_id, secret)
        except (StromError, SessionNotFound):
            await ws.close(code=4401, message=b"unknown session or wrong secret")
            return None
        subscriber = _Subscriber(session_id=session.id)
        snapshot = session_event(Transition(session))
        await ws.send_str(orjson.dumps({"type": "ready", "session": snapshot}).decode())
        return subscriber
