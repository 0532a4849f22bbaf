"""The bus inside one process: :class:`LocalBus`, for a single Strom and for tests.

Every :class:`LocalBus` made from one :class:`LocalHub` is a "process" of the same Strom; a
lone ``LocalBus()`` has a hub of its own. Nothing crosses a wire, yet the behaviour is the
buses' own: a handler runs in a task of the serving bus (closing it cancels the handler and
its requester gets :class:`NoReply`), a timed-out handler goes on running, a payload larger
than :attr:`LocalBus.max_payload` is refused.
"""

from __future__ import annotations

import asyncio

from strom_cluster._common import QueueSubscription, RequestTasks, answer, check_request, check_size
from strom_core.errors import LocalProtocolError, NoReply
from strom_core.ports.cluster import Handler, Subscription, check_name

__all__ = ["LocalBus", "LocalHub"]

DEFAULT_MAX_PAYLOAD = 1024 * 1024  # as a NATS server's default, so one process behaves as many


class LocalHub:
    """What the local buses of one Strom share: who serves which process, who listens."""

    def __init__(self) -> None:
        self.servers: dict[str, LocalBus] = {}
        self.subscribers: dict[str, set[QueueSubscription]] = {}


class LocalBus:
    """A bus within one process (:class:`strom_core.ports.cluster.Bus`)."""

    def __init__(self, hub: LocalHub | None = None, max_payload: int = DEFAULT_MAX_PAYLOAD) -> None:
        self._hub = hub if hub is not None else LocalHub()
        self._max_payload = max_payload
        self._handlers: dict[str, Handler] = {}
        self._subscriptions: set[QueueSubscription] = set()
        self._tasks = RequestTasks()
        self._closed = False

    @property
    def max_payload(self) -> int:
        """The largest payload, in bytes, that this bus carries."""
        return self._max_payload

    async def request(
        self,
        process_id: str,
        subject: str,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the bus keeps the request's correlation that long
    ) -> bytes:
        """Send a request to one process and wait for its reply (see the port)."""
        check_request(process_id, subject, payload, self._max_payload)
        server = self._hub.servers.get(process_id)
        if self._closed or server is None:
            raise NoReply(process_id, subject, "no process serves it")
        task = server._answer(process_id, subject, payload)
        try:
            ok, reply = await asyncio.wait_for(asyncio.shield(task), timeout)
        except TimeoutError:
            raise NoReply(process_id, subject, f"no reply within {timeout} s") from None
        except asyncio.CancelledError:
            if task.cancelled() and not _current_cancelling():
                raise NoReply(process_id, subject, "the process stopped serving") from None
            raise
        if not ok:
            raise NoReply(process_id, subject, reply.decode())
        if len(reply) > self._max_payload:  # pragma: no cover - answer() refuses it already
            raise NoReply(process_id, subject, "the reply was larger than the bus carries")
        return reply

    def _answer(
        self, process_id: str, subject: str, payload: bytes
    ) -> asyncio.Task[tuple[bool, bytes]]:
        handler = self._handlers[process_id]
        return self._tasks.start(answer(handler, process_id, subject, payload, self._max_payload))

    async def serve(self, process_id: str, handler: Handler) -> None:
        """Answer the requests sent to ``process_id`` with ``handler`` (see the port)."""
        check_name("process id", process_id)
        if self._closed:
            raise LocalProtocolError("the bus is closed")
        if process_id in self._handlers:
            raise LocalProtocolError(f"this bus serves process {process_id!r} already")
        self._handlers[process_id] = handler
        self._hub.servers[process_id] = self

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send an event to every subscriber of ``topic`` (see the port)."""
        check_name("topic", topic)
        check_size(payload, self._max_payload)
        for subscription in list(self._hub.subscribers.get(topic, ())):
            subscription.put(payload)

    async def subscribe(self, topic: str) -> Subscription:
        """The events of ``topic`` published from now on (see the port)."""
        check_name("topic", topic)
        if self._closed:
            raise LocalProtocolError("the bus is closed")
        subscription = QueueSubscription(topic, self._unsubscribe)
        self._subscriptions.add(subscription)
        self._hub.subscribers.setdefault(topic, set()).add(subscription)
        return subscription

    async def _unsubscribe(self, subscription: QueueSubscription) -> None:
        self._subscriptions.discard(subscription)
        self._hub.subscribers.get(subscription.topic, set()).discard(subscription)

    async def aclose(self) -> None:
        """Stop serving, end every subscription; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        for process_id in self._handlers:
            if self._hub.servers.get(process_id) is self:
                del self._hub.servers[process_id]
        self._handlers.clear()
        for subscription in list(self._subscriptions):
            await subscription.aclose()
        await self._tasks.aclose()


def _current_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task is not None else 0
