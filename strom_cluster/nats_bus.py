"""The bus over NATS: :class:`NatsBus`, core request/reply and publish/subscribe.

Theory of operation
-------------------
A process serves the subjects ``<prefix>.proc.<process id>.<subject>`` (one wildcard
subscription); a request is NATS's own request/reply on them, with a reply inbox per
connection. When nobody is subscribed the server answers "no responders" at once, so a
request for a process that is gone fails in about one round trip instead of the full timeout.
A handler that fails replies with the ``Strom-Error`` header, which the requester raises as
:class:`NoReply`. Events go to ``<prefix>.event.<topic>``, one subscription each.

JetStream is not used, on purpose. A command is only worth running while its caller waits
(a remote start replayed after the caller gave up would start a charge nobody is paying
attention to), and events only say "this changed" about state that PostgreSQL keeps: a stream
that stores and redelivers them would add retention to configure and a second source of truth,
for nothing a process cannot reload from the database.

The client reconnects by itself (every ``reconnect_wait`` seconds, for ever) and subscribes
again; it keeps what this process publishes meanwhile (up to its pending buffer) and sends it
once back. What other processes published during the gap is lost to this one; requests to it
in the gap fail with ``no responders`` or time out. :attr:`NatsBus.reconnects` counts the gaps
and :meth:`NatsBus.wait_reconnects` waits for one, so the caller knows when to reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from strom_cluster._common import QueueSubscription, RequestTasks, answer, check_request, check_size
from strom_core.errors import BusUnavailable, LocalProtocolError, NoReply
from strom_core.ports.cluster import Handler, Subscription, check_name

__all__ = ["NatsBus"]

logger = logging.getLogger(__name__)

ERROR_HEADER = "Strom-Error"
NO_RESPONDERS_GRACE_S = 0.5  # how long "no process serves it" is asked again before believed
NO_RESPONDERS_RETRY_S = 0.05
HEADER_ROOM = 512  # of the server's max_payload, kept for the reply's headers


class NatsBus:
    """A bus over a NATS server (:class:`~strom_core.ports.cluster.Bus`); see :meth:`connect`."""

    def __init__(self, client: Client, prefix: str) -> None:
        self._nc = client
        self._prefix = prefix
        self._served: dict[str, NatsSubscription] = {}
        self._subscriptions: dict[QueueSubscription, NatsSubscription] = {}
        self._tasks = RequestTasks()
        self._reconnected = asyncio.Condition()
        self.reconnects = 0
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str = "strom",
        prefix: str = "strom",
        reconnect_wait: float = 0.5,
        connect_timeout: float = 2.0,
    ) -> NatsBus:
        """Connect to a NATS server.

        Args:
            url: the server, ``nats://host:4222`` (or several, comma-separated).
            name: this connection's name, as the server's monitoring shows it.
            prefix: the first token of every subject, to share a server with other programs.
            reconnect_wait: seconds between two reconnection attempts.
            connect_timeout: seconds for the first connection.

        Raises:
            BusUnavailable: the server cannot be reached.
        """
        check_name("prefix", prefix)
        client = Client()
        bus = cls(client, prefix)
        try:
            await client.connect(
                servers=url.split(","),
                name=name,
                allow_reconnect=True,
                max_reconnect_attempts=2,  # the first connection: fail, do not wait for ever
                reconnect_time_wait=reconnect_wait,  # type: ignore[arg-type]  # a float works
                connect_timeout=connect_timeout,  # type: ignore[arg-type]
                ping_interval=5,
                max_outstanding_pings=2,
                error_cb=bus._on_error,
                disconnected_cb=bus._on_disconnected,
                reconnected_cb=bus._on_reconnected,
            )
            client.options["max_reconnect_attempts"] = -1  # once connected: reconnect for ever
            # nats-py 2.16 makes its reply inbox on the first request; concurrent first
            # requests each make one and lose one another's replies (seen as "no responders"
            # for a process that serves). One request now makes it before any concurrency.
            with contextlib.suppress(nats.errors.NoRespondersError, nats.errors.TimeoutError):
                await client.request(f"{prefix}.inbox", b"", timeout=connect_timeout)
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            await client.close()
            raise BusUnavailable(f"NATS at {url} cannot be reached: {exc!r}") from exc
        return bus

    @property
    def max_payload(self) -> int:
        """The largest payload, in bytes: the server's ``max_payload`` less room for headers."""
        return self._nc.max_payload - HEADER_ROOM

    async def request(
        self,
        process_id: str,
        subject: str,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the bus keeps the request's correlation that long
    ) -> bytes:
        """Send a request to one process and wait for its reply (see the port)."""
        check_request(process_id, subject, payload, self.max_payload)
        try:
            msg = await self._ask(f"{self._prefix}.proc.{process_id}.{subject}", payload, timeout)
        except nats.errors.NoRespondersError:
            raise NoReply(process_id, subject, "no process serves it") from None
        except nats.errors.TimeoutError:
            raise NoReply(process_id, subject, f"no reply within {timeout} s") from None
        except nats.errors.Error as exc:
            raise NoReply(process_id, subject, f"the bus failed: {exc!r}") from exc
        error = (msg.headers or {}).get(ERROR_HEADER)
        if error is not None:
            raise NoReply(process_id, subject, error)
        return msg.data

    async def _ask(self, address: str, payload: bytes, timeout: float) -> Msg:  # noqa: ASYNC109
        """One request; "no responders" is asked again for a moment before it is believed.

        The server answers "no responders" when it knows no subscription at the moment of the
        publish; a subscription re-sent after a reconnect (or, in a NATS cluster, one still
        propagating between servers) is briefly unknown. Nobody received the request, so
        asking again cannot run a command twice.
        """
        loop = asyncio.get_running_loop()
        give_up = loop.time() + min(NO_RESPONDERS_GRACE_S, timeout / 2)
        while True:
            try:
                return await self._nc.request(address, payload, timeout=timeout)
            except nats.errors.NoRespondersError:
                if loop.time() + NO_RESPONDERS_RETRY_S > give_up:
                    raise
                await asyncio.sleep(NO_RESPONDERS_RETRY_S)

    async def serve(self, process_id: str, handler: Handler) -> None:
        """Answer the requests sent to ``process_id`` with ``handler`` (see the port)."""
        check_name("process id", process_id)
        if self._closed:
            raise LocalProtocolError("the bus is closed")
        if process_id in self._served:
            raise LocalProtocolError(f"this bus serves process {process_id!r} already")
        limit = self.max_payload

        async def on_request(msg: Msg) -> None:
            subject = msg.subject.rsplit(".", 1)[1]
            self._tasks.start(self._reply(msg, handler, process_id, subject, limit))

        self._served[process_id] = await self._nc.subscribe(
            f"{self._prefix}.proc.{process_id}.*", cb=on_request
        )
        await self._nc.flush()  # the server has the subscription: requests find it from now

    async def _reply(
        self, msg: Msg, handler: Handler, process_id: str, subject: str, limit: int
    ) -> None:
        ok, reply = await answer(handler, process_id, subject, msg.data, limit)
        if not msg.reply:
            return
        try:
            if ok:
                await self._nc.publish(msg.reply, reply)
            else:
                await self._nc.publish(msg.reply, b"", headers={ERROR_HEADER: reply.decode()})
        except nats.errors.Error as exc:
            logger.warning(
                "bus reply lost: process_id=%s subject=%s error=%r", process_id, subject, exc
            )

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send an event to every subscriber of ``topic`` (see the port)."""
        check_name("topic", topic)
        check_size(payload, self.max_payload)
        try:
            await self._nc.publish(f"{self._prefix}.event.{topic}", payload)
        except nats.errors.Error as exc:
            raise BusUnavailable(f"event on {topic!r} not published: {exc!r}") from exc

    async def subscribe(self, topic: str) -> Subscription:
        """The events of ``topic`` published from now on (see the port)."""
        check_name("topic", topic)
        if self._closed:
            raise LocalProtocolError("the bus is closed")
        subscription = QueueSubscription(topic, self._unsubscribe)

        async def on_event(msg: Msg) -> None:
            subscription.put(msg.data)

        self._subscriptions[subscription] = await self._nc.subscribe(
            f"{self._prefix}.event.{topic}", cb=on_event
        )
        await self._nc.flush()  # the server has the subscription: events reach it from now
        return subscription

    async def _unsubscribe(self, subscription: QueueSubscription) -> None:
        sub = self._subscriptions.pop(subscription, None)
        if sub is not None and not self._nc.is_closed:
            await sub.unsubscribe()

    async def wait_reconnects(self, count: int) -> None:
        """Return once the connection came back after ``count`` gaps in all."""
        async with self._reconnected:
            await self._reconnected.wait_for(lambda: self.reconnects >= count)

    async def aclose(self) -> None:
        """Stop serving, end every subscription and disconnect; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        await self._tasks.aclose()
        await self._nc.close()

    async def _on_error(self, exc: Exception) -> None:
        # The client reconnects by itself; a lost connection is a warning, not an error.
        logger.warning("NATS connection error: %r", exc)

    async def _on_disconnected(self) -> None:
        if not self._closed:
            logger.warning("NATS disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        logger.info("NATS reconnected to %s", self._nc.connected_url)
        async with self._reconnected:
            self.reconnects += 1
            self._reconnected.notify_all()
