"""What every bus shares: a subscription's queue, and running the handlers of requests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from strom_core.errors import PayloadTooLarge
from strom_core.ports.cluster import Handler, check_name

__all__ = ["QueueSubscription", "RequestTasks", "answer", "check_request", "check_size"]

logger = logging.getLogger(__name__)

SUBSCRIPTION_LIMIT = 10_000  # events kept for a subscriber that does not read; newer are dropped


def check_size(payload: bytes, limit: int, detail: str = "") -> bytes:
    """``payload`` when it is bytes of at most ``limit``; raises :class:`PayloadTooLarge`."""
    if not isinstance(payload, bytes):
        raise TypeError(f"a bus payload is bytes, got {type(payload).__name__}")
    if len(payload) > limit:
        raise PayloadTooLarge(len(payload), limit, detail)
    return payload


def check_request(process_id: str, subject: str, payload: bytes, limit: int) -> None:
    """A request's names and payload, checked before anything is sent (see the port)."""
    check_name("process id", process_id)
    check_name("subject", subject)
    check_size(payload, limit)


async def answer(
    handler: Handler, process_id: str, subject: str, payload: bytes, limit: int
) -> tuple[bool, bytes]:
    """Run a request's handler: ``(True, reply)``, or ``(False, why)`` when it failed.

    This is the supervisor of a request's task: whatever the handler raises is logged with the
    request's context, and its requester is told the handler failed (the outcome is unknown).
    """
    try:
        reply = await handler(subject, payload)
        if not isinstance(reply, bytes):
            raise TypeError(f"a bus handler returns bytes, got {type(reply).__name__}")
    except asyncio.CancelledError:
        raise
    except Exception:  # the supervisor of the request's task
        logger.exception("bus handler failed: process_id=%s subject=%s", process_id, subject)
        return False, b"the handler failed"
    if len(reply) > limit:
        logger.error(
            "bus reply too large: process_id=%s subject=%s size=%d limit=%d",
            process_id,
            subject,
            len(reply),
            limit,
        )
        return False, b"the reply was larger than the bus carries"
    return True, reply


class RequestTasks:
    """The tasks of the requests a bus is serving, kept until done and cancelled on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def start(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_END = object()


class QueueSubscription:
    """A topic's events, queued for one subscriber (see :class:`strom_core.ports.Subscription`).

    A subscriber that stops reading loses the newest events beyond :data:`SUBSCRIPTION_LIMIT`
    (counted in :attr:`dropped`, logged at the first and every thousandth) rather than
    growing without bound.
    """

    def __init__(
        self,
        topic: str,
        on_close: Callable[[QueueSubscription], Awaitable[None]],
        limit: int = SUBSCRIPTION_LIMIT,
    ) -> None:
        self.topic = topic
        self.dropped = 0
        self._on_close = on_close
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._limit = limit
        self._ended = False

    def put(self, payload: bytes) -> None:
        """Queue an event (from the bus's receiving side)."""
        if self._ended:
            return
        if self._queue.qsize() >= self._limit:
            if self.dropped % 1000 == 0:
                logger.warning(
                    "bus subscriber too slow, events dropped: topic=%s dropped=%d",
                    self.topic,
                    self.dropped + 1,
                )
            self.dropped += 1
            return
        self._queue.put_nowait(payload)

    def end(self) -> None:
        """End the iteration after the events already queued (the bus is closing)."""
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_END)

    def __aiter__(self) -> QueueSubscription:
        return self

    async def __anext__(self) -> bytes:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # a second reader ends too
            raise StopAsyncIteration
        assert isinstance(item, bytes)
        return item

    async def aclose(self) -> None:
        """Stop receiving; iterating ends."""
        if self._ended:
            return
        self.end()
        await self._on_close(self)
