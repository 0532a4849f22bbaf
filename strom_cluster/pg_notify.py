"""The bus over PostgreSQL's LISTEN/NOTIFY: :class:`PgNotifyBus`, no service besides the database.

Theory of operation
-------------------
Each bus LISTENs on one dedicated connection: ``strom_p_<process id>`` for the requests of the
processes it serves, ``strom_r_<inbox>`` for the replies to its own requests (a random inbox
per bus), ``strom_t_<topic>`` for the topics it subscribes to. It NOTIFYs (``pg_notify``) from
a small pool of other connections, each notification its own transaction, so that it goes out
at once. A notification is one line of text::

    Q <correlation id> <reply inbox> <subject> <payload>    a request, on strom_p_<process>
    R <correlation id> ok|err <payload>                     its reply, on strom_r_<inbox>
    <payload>                                               an event, on strom_t_<topic>

where ``<payload>`` is ``t`` and the payload's text when it is UTF-8 without NUL (JSON is), or
``b`` and its base64. PostgreSQL carries less than 8000 bytes in a notification, so a payload
of up to :data:`MAX_PAYLOAD` bytes of text is carried and a larger one refused with
:class:`PayloadTooLarge` before anything is sent (binary payloads, in base64, up to 3/4 of it).
Larger payloads would need a table; Strom's commands and events are far smaller.

PostgreSQL does not tell a sender whether anybody listens: a request to a process that is gone
waits its whole timeout (NATS says "no responders" at once).

When the listening connection drops (the termination callback, or a failed ping every
``ping_interval`` seconds for a silent network), the bus connects again every
``reconnect_wait`` seconds and LISTENs again on every channel. Notifications sent in the gap
are lost for this process: requests to it time out, replies to its requests are lost (they
time out as :class:`NoReply`, outcome unknown), events are missed. :attr:`PgNotifyBus.reconnects`
counts the gaps and :meth:`PgNotifyBus.wait_reconnects` waits for one, so the caller knows when
to reload from the database what it shows. A listener that stays inside a transaction delays
delivery to itself and fills PostgreSQL's notification queue (8 GB) for everyone: this
connection runs nothing but LISTEN and the ping.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import secrets
from typing import Any

import asyncpg

from strom_cluster._common import QueueSubscription, RequestTasks, answer, check_request, check_size
from strom_core.errors import BusUnavailable, LocalProtocolError, NoReply, PayloadTooLarge
from strom_core.ports.cluster import MAX_NAME_LENGTH, Handler, Subscription, check_name

__all__ = ["MAX_PAYLOAD", "PgNotifyBus"]

logger = logging.getLogger(__name__)

NOTIFY_LIMIT = 7999  # bytes: "shorter than 8000 bytes" in PostgreSQL's default build
_HEADER_MOST = len("Q  ") + 16 + 1 + 16 + 1 + MAX_NAME_LENGTH + 1 + 1  # the longest request line
MAX_PAYLOAD = NOTIFY_LIMIT - _HEADER_MOST
_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class _NoReset(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection that only NOTIFYs has no session state to reset between uses."""

    def get_reset_query(self) -> str:
        return ""


def _encode(payload: bytes) -> str:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        return "b" + base64.b64encode(payload).decode("ascii")
    return "t" + text


def _decode(text: str) -> bytes:
    if text.startswith("t"):
        return text[1:].encode("utf-8")
    if text.startswith("b"):
        return base64.b64decode(text[1:], validate=True)
    raise ValueError("unknown payload encoding")


def _dsn(url: str) -> str:
    """A libpq URL from SQLAlchemy's ``postgresql+asyncpg://`` (Strom's database URL)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+', 1)[0]}{sep}{rest}"


class PgNotifyBus:
    """A bus over PostgreSQL (:class:`~strom_core.ports.cluster.Bus`); see :meth:`connect`."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, reconnect_wait: float, ping_interval: float):
        self._dsn = dsn
        self._pool = pool
        self._reconnect_wait = reconnect_wait
        self._ping_interval = ping_interval
        self._inbox = secrets.token_hex(8)
        self._pending: dict[str, asyncio.Future[tuple[bool, bytes]]] = {}
        self._handlers: dict[str, Handler] = {}
        self._topics: dict[str, set[QueueSubscription]] = {}
        self._tasks = RequestTasks()
        self._listen: asyncpg.Connection | None = None
        self._listen_lock = asyncio.Lock()
        self._lost = asyncio.Event()
        self._reconnected = asyncio.Condition()
        self._supervisor: asyncio.Task[None] | None = None
        self.reconnects = 0
        self._closed = False

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        pool_size: int = 2,
        reconnect_wait: float = 0.5,
        ping_interval: float = 5.0,
        connect_timeout: float = 5.0,
    ) -> PgNotifyBus:
        """Connect to PostgreSQL: the listening connection and the pool that notifies.

        Args:
            url: the database, ``postgresql://…`` or Strom's ``postgresql+asyncpg://…``.
            pool_size: connections that send notifications.
            reconnect_wait: seconds between two attempts to connect the listener again.
            ping_interval: seconds between two checks that the listener is still connected.
            connect_timeout: seconds for each connection.

        Raises:
            BusUnavailable: the database cannot be reached.
        """
        dsn = _dsn(url)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=pool_size,
                timeout=connect_timeout,
                connection_class=_NoReset,
            )
        except _ERRORS as exc:
            raise BusUnavailable(f"PostgreSQL cannot be reached: {exc!r}") from exc
        bus = cls(dsn, pool, reconnect_wait, ping_interval)
        try:
            await bus._connect_listener()
        except _ERRORS as exc:
            await pool.close()
            raise BusUnavailable(f"PostgreSQL cannot be reached: {exc!r}") from exc
        bus._supervisor = asyncio.get_running_loop().create_task(bus._supervise())
        bus._supervisor.add_done_callback(_log_crash)
        return bus

    @property
    def max_payload(self) -> int:
        """The largest payload of text, in bytes, that this bus carries (binary: 3/4 of it)."""
        return MAX_PAYLOAD

    async def request(
        self,
        process_id: str,
        subject: str,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the bus keeps the request's correlation that long
    ) -> bytes:
        """Send a request to one process and wait for its reply (see the port)."""
        check_request(process_id, subject, payload, MAX_PAYLOAD)
        correlation = secrets.token_hex(8)
        line = _line(f"Q {correlation} {self._inbox} {subject} ", payload)
        future: asyncio.Future[tuple[bool, bytes]] = asyncio.get_running_loop().create_future()
        self._pending[correlation] = future
        try:
            async with asyncio.timeout(timeout):
                await self._notify(f"strom_p_{process_id}", line)
                ok, reply = await future
        except TimeoutError:
            raise NoReply(process_id, subject, f"no reply within {timeout} s") from None
        except _ERRORS as exc:
            raise NoReply(process_id, subject, f"the bus failed: {exc!r}") from exc
        finally:
            self._pending.pop(correlation, None)
        if not ok:
            raise NoReply(process_id, subject, reply.decode("utf-8", "replace"))
        return reply

    async def serve(self, process_id: str, handler: Handler) -> None:
        """Answer the requests sent to ``process_id`` with ``handler`` (see the port)."""
        check_name("process id", process_id)
        if self._closed:
            raise LocalProtocolError("the bus is closed")
        if process_id in self._handlers:
            raise LocalProtocolError(f"this bus serves process {process_id!r} already")
        self._handlers[process_id] = handler
        await self._listen_on(f"strom_p_{process_id}")

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send an event to every subscriber of ``topic`` (see the port)."""
        check_name("topic", topic)
        check_size(payload, MAX_PAYLOAD)
        try:
            await self._notify(f"strom_t_{topic}", _line("", payload))
        except _ERRORS as exc:
            raise BusUnavailable(f"event on {topic!r} not published: {exc!r}") from exc

    async def subscribe(self, topic: str) -> Subscription:
        """The events of ``topic`` published from now on (see the port)."""
        check_name("topic", topic)
        if self._closed:
            raise LocalProtocolError("the bus is closed")
        subscription = QueueSubscription(topic, self._unsubscribe)
        first = topic not in self._topics
        self._topics.setdefault(topic, set()).add(subscription)
        if first:
            await self._listen_on(f"strom_t_{topic}")
        return subscription

    async def _unsubscribe(self, subscription: QueueSubscription) -> None:
        subscribers = self._topics.get(subscription.topic)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if subscribers:
            return
        del self._topics[subscription.topic]
        async with self._listen_lock:
            if self._listen is not None and not self._closed:
                try:
                    await self._listen.remove_listener(
                        f"strom_t_{subscription.topic}", self._on_notify
                    )
                except _ERRORS as exc:
                    logger.warning("bus UNLISTEN failed: %r", exc)

    async def wait_reconnects(self, count: int) -> None:
        """Return once the listener came back after ``count`` gaps in all."""
        async with self._reconnected:
            await self._reconnected.wait_for(lambda: self.reconnects >= count)

    async def aclose(self) -> None:
        """Stop serving, end every subscription and disconnect; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        for subscribers in list(self._topics.values()):
            for subscription in list(subscribers):
                subscription.end()
        self._topics.clear()
        for future in self._pending.values():
            if not future.done():
                future.set_result((False, b"the bus was closed"))
        await self._tasks.aclose()
        async with self._listen_lock:
            listen, self._listen = self._listen, None
            if listen is not None:
                await listen.close()
        await self._pool.close()

    # -- sending ----------------------------------------------------------------------------

    async def _notify(self, channel: str, line: str) -> None:
        async with self._pool.acquire() as conn:
            await conn.execute("SELECT pg_notify($1, $2)", channel, line)

    async def _reply(
        self, process_id: str, correlation: str, inbox: str, subject: str, data: str
    ) -> None:
        handler = self._handlers.get(process_id)
        if handler is None:
            return
        try:
            payload = _decode(data)
        except (ValueError, binascii.Error):
            ok, reply = False, b"the request's payload could not be read"
        else:
            ok, reply = await answer(handler, process_id, subject, payload, MAX_PAYLOAD)
        try:
            line = _line(f"R {correlation} {'ok' if ok else 'err'} ", reply)
        except PayloadTooLarge:
            logger.error("bus reply too large: process_id=%s subject=%s", process_id, subject)
            line = _line(f"R {correlation} err ", b"the reply was larger than the bus carries")
        try:
            await self._notify(f"strom_r_{inbox}", line)
        except _ERRORS as exc:
            logger.warning(
                "bus reply lost: process_id=%s subject=%s error=%r", process_id, subject, exc
            )

    # -- receiving --------------------------------------------------------------------------

    def _on_notify(self, _conn: Any, _pid: int, channel: str, line: str) -> None:
        try:
            if channel.startswith("strom_t_"):
                payload = _decode(line)
                for subscription in list(self._topics.get(channel[8:], ())):
                    subscription.put(payload)
            elif channel == f"strom_r_{self._inbox}":
                kind, correlation, status, data = line.split(" ", 3)
                future = self._pending.get(correlation)
                if kind == "R" and future is not None and not future.done():
                    future.set_result((status == "ok", _decode(data)))
            elif channel.startswith("strom_p_"):
                kind, correlation, inbox, subject, data = line.split(" ", 4)
                if kind == "Q":
                    check_name("subject", subject)
                    self._tasks.start(self._reply(channel[8:], correlation, inbox, subject, data))
        except (ValueError, binascii.Error, LocalProtocolError) as exc:
            logger.warning("bus notification not understood on %s: %r", channel, exc)

    async def _listen_on(self, channel: str) -> None:
        async with self._listen_lock:
            if self._listen is None:
                return  # the reconnection LISTENs on every channel
            try:
                await self._listen.add_listener(channel, self._on_notify)
            except _ERRORS as exc:
                logger.warning("bus LISTEN %s failed, reconnecting: %r", channel, exc)
                self._lost.set()

    def _channels(self) -> list[str]:
        return [
            f"strom_r_{self._inbox}",
            *(f"strom_p_{process_id}" for process_id in self._handlers),
            *(f"strom_t_{topic}" for topic in self._topics),
        ]

    async def _connect_listener(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=5.0)
        try:
            async with self._listen_lock:
                for channel in self._channels():
                    await conn.add_listener(channel, self._on_notify)
                conn.add_termination_listener(self._on_terminated)
                self._listen = conn
        except BaseException:
            conn.terminate()
            raise

    def _on_terminated(self, conn: Any) -> None:
        if conn is self._listen:
            self._lost.set()

    async def _supervise(self) -> None:
        while not self._closed:
            try:
                await asyncio.wait_for(self._lost.wait(), self._ping_interval)
            except TimeoutError:
                if await self._alive():
                    continue
            await self._reconnect()

    async def _alive(self) -> bool:
        async with self._listen_lock:
            if self._listen is None:
                return False
            try:
                await self._listen.execute("SELECT 1", timeout=self._ping_interval)
            except _ERRORS:
                return False
            return True

    async def _reconnect(self) -> None:
        logger.warning("bus listener lost its PostgreSQL connection; reconnecting")
        async with self._listen_lock:
            old, self._listen = self._listen, None
        if old is not None:
            old.terminate()
        while not self._closed:
            try:
                await self._connect_listener()
                break
            except _ERRORS as exc:
                logger.warning("bus listener cannot reconnect yet: %r", exc)
                await asyncio.sleep(self._reconnect_wait)
        self._lost.clear()
        logger.info("bus listener reconnected; notifications sent meanwhile were lost")
        async with self._reconnected:
            self.reconnects += 1
            self._reconnected.notify_all()


def _line(header: str, payload: bytes) -> str:
    line = header + _encode(payload)
    size = len(line.encode("utf-8"))
    if size > NOTIFY_LIMIT:
        encoding = "base64" if line[len(header)] == "b" else "text"
        raise PayloadTooLarge(
            len(payload), MAX_PAYLOAD, f"{size} bytes as a notification ({encoding})"
        )
    return line


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("bus supervisor stopped", exc_info=task.exception())
