"""Live events across the processes of a cluster: every admin and payer sees every event.

A charger's events happen on the process holding its connection, a payment's on the process
that settled it; the admin UI or the payer's session page may be connected to any process.
:class:`LiveFanout` publishes each message of this process's :class:`~cockpit.live.LiveHub` on
the bus topic ``live`` and hands the messages of the other processes to the local hub.

The hub delivers its own messages to its own subscribers at once (no round trip through the
bus), so a message coming back from the bus with this process's origin is dropped: nobody
gets it twice. Delivery across processes is at most once (the bus keeps nothing): a process
that was cut off from the bus misses messages, as a browser that reconnects does, and the UI
reloads from the API.

Envelope: ``<origin process id> NUL <session id or empty> NUL <message JSON>``.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from cockpit.live import LiveHub
from strom_core.errors import BusError
from strom_core.ports.cluster import Bus

__all__ = ["TOPIC", "LiveFanout"]

log = logging.getLogger(__name__)

TOPIC = "live"
QUEUE_SIZE = 4096  # messages waiting to be published; beyond, the newest are dropped (logged)


class LiveFanout:
    """Publishes a hub's messages to the other processes and delivers theirs to it.

    Args:
        hub: this process's live hub (its :attr:`~cockpit.live.LiveHub.fanout` is set here).
        bus: the cluster's bus.
        origin: this process's id.
    """

    def __init__(self, hub: LiveHub, bus: Bus, origin: str) -> None:
        self.hub = hub
        self.bus = bus
        self.origin = origin
        self._origin = origin.encode()
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self.dropped = 0
        self.received = 0
        hub.fanout = self.send

    def send(self, data: bytes, session_id: str | None) -> None:
        """Queue a message of this process for the others (never blocks the caller)."""
        envelope = b"\0".join((self._origin, (session_id or "").encode(), data))
        try:
            self._outgoing.put_nowait(envelope)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("live: bus too slow, %d message(s) dropped", self.dropped)

    async def run(self) -> None:
        """Publish and receive until cancelled."""
        subscription = await self.bus.subscribe(TOPIC)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish(), name="live-publish")
                async for envelope in subscription:
                    self._receive(envelope)
        finally:
            await subscription.aclose()

    def _receive(self, envelope: bytes) -> None:
        origin, _, rest = envelope.partition(b"\0")
        session, sep, data = rest.partition(b"\0")
        if not sep:
            log.warning("live: malformed message on the bus dropped")
            return
        if origin == self._origin:
            return  # delivered here already, when it was sent
        self.received += 1
        session_id = session.decode() or None
        if session_id is not None:
            self._note_paid(session_id, data)
        self.hub.deliver(data, session_id)

    def _note_paid(self, session_id: str, data: bytes) -> None:
        """Keep the hub's record of what each session was paid as the other processes see it."""
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if not isinstance(message, dict) or message.get("type") != "session":
            return
        paid = message.get("paid_msat")
        if isinstance(paid, int):
            self.hub.note_paid(session_id, paid)

    async def _publish(self) -> None:
        while True:
            envelope = await self._outgoing.get()
            try:
                await self.bus.publish(TOPIC, envelope)
            except BusError as exc:  # PayloadTooLarge, BusUnavailable: this message is lost
                log.warning("live: message not published: %s", exc)
