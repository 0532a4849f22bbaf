"""The settlement stream every backend shares: push when connected, lookups to never miss one.

Theory of operation. A backend contributes one coroutine, ``_listen(sink)``: connect once to its
push channel (LND's invoice subscription, LNbits' websocket, the fake's database file), call
``sink.connected()`` once the channel is live, call ``sink.settled(...)`` for every paid
invoice, and return or raise :class:`~strom_core.errors.BackendError` when the channel ends.

:class:`SettlementStream` runs that coroutine in a reader task it owns (a strong reference,
cancelled and awaited by :meth:`SettlementStream.aclose`), reconnecting with a capped backoff
that starts again only after a connection that lasted (LND says "connected" before it knows).
An outage is one WARNING (DEBUG when ``quiet`` says someone reported the node down already)
and DEBUG for each retry; :meth:`SettlementStream.nudge` reconnects and reconciles at once.
The consumer's own task runs the *reconcile*: it asks the caller which invoices are still
pending (the ``pending`` callable, usually a query on the ledger) and looks each one up. A
reconcile runs when the stream starts, after every (re)connect, every ``reconcile_every_s``
while connected and every ``fallback_poll_s`` while disconnected (the polling fallback). A
settlement that happened while nothing listened - before a restart, during a disconnect, in
the moment between a lookup and a subscription - is therefore found by lookup.

Delivery is at least once: the stream drops the duplicates it can see (the same hash from the
push channel and a lookup), but after a restart a settlement may come again. Consumers must be
idempotent on the payment hash, which the ledger is.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime
from typing import Protocol

from strom_core.errors import BackendError
from strom_core.lightning import InvoiceStatus, Settlement
from strom_core.lightning_errors import InvoiceNotFound

__all__ = ["PendingHashes", "SettlementSink", "SettlementSource", "SettlementStream"]

log = logging.getLogger("strom_lightning")

PendingHashes = Callable[[], Awaitable[Iterable[str]]]
"""Returns the payment hashes of the invoices the caller still waits for."""

_RECENT_LIMIT = 10_000
_LOOKUP_CONCURRENCY = 8


class SettlementSink(Protocol):
    """What a backend's listener reports to."""

    def connected(self) -> None:
        """The push channel is live: settlements from now on will be pushed."""

    def settled(self, settlement: Settlement) -> None:
        """An invoice was paid."""


class SettlementSource(Protocol):
    """What the stream needs from a backend."""

    @property
    def name(self) -> str:
        """The backend's name for log lines."""

    @property
    def closed(self) -> bool:
        """True after the backend's ``aclose()``."""

    def _now(self) -> datetime: ...

    async def _listen(self, sink: SettlementSink) -> None: ...

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        """The backend's invoice lookup."""


class _Wake:
    """Queued to make a waiting ``__anext__`` look at the stream's state again."""


_WAKE = _Wake()


class SettlementStream(AsyncIterator[Settlement]):
    """An async iterator of settlements; see the module docstring.

    Use it as ``async with backend.settled_invoices(pending) as stream: async for s in stream``
    (or close it with :meth:`aclose`), so that its reader task ends with it.
    """

    def __init__(
        self,
        source: SettlementSource,
        pending: PendingHashes,
        *,
        reconcile_every_s: float,
        fallback_poll_s: float,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] = log,
        quiet: Callable[[], bool] | None = None,
    ) -> None:
        self._source = source
        self._pending = pending
        self._reconcile_every_s = reconcile_every_s
        self._fallback_poll_s = min(fallback_poll_s, reconcile_every_s)
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._retry_s = retry_initial_s
        self._log = logger
        self._queue: asyncio.Queue[Settlement | _Wake] = asyncio.Queue()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._reader: asyncio.Task[None] | None = None
        self._connected = False
        self._reconcile_due = True
        self._next_reconcile = 0.0
        self._closed = False
        self._quiet = quiet or (lambda: False)
        self._failures = 0  # consecutive failed connections (one line for each streak)
        self._lookup_failures = 0  # consecutive incomplete reconciles, likewise
        self._retry_now = asyncio.Event()

    def nudge(self) -> None:
        """Reconnect now and reconcile, instead of waiting out the backoff (the node is back)."""
        self._retry_s = self._retry_initial_s
        self._reconcile_due = True
        self._retry_now.set()
        self._queue.put_nowait(_WAKE)

    def _outage_level(self, streak: int) -> int:
        # WARNING for the first failure of a streak, unless someone already reported the node
        # down (``quiet``); DEBUG for the rest, so an outage is not a line per retry.
        return logging.WARNING if streak == 1 and not self._quiet() else logging.DEBUG

    # --- the sink the backend's listener talks to ----------------------------------------

    def connected(self) -> None:
        self._connected = True
        self._reconcile_due = True
        self._queue.put_nowait(_WAKE)

    def settled(self, settlement: Settlement) -> None:
        self._queue.put_nowait(settlement)

    # --- the iterator ----------------------------------------------------------------------

    def __aiter__(self) -> SettlementStream:
        return self

    async def __aenter__(self) -> SettlementStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def __anext__(self) -> Settlement:
        loop = asyncio.get_running_loop()
        if self._reader is None and not self._closed:
            self._reader = loop.create_task(self._read_forever(), name="settlement-reader")
        while True:
            if self._closed or self._source.closed:
                await self.aclose()
                raise StopAsyncIteration
            item = self._take_nowait()
            if item is not None:
                return item
            self._raise_if_reader_failed()
            if self._reconcile_due or loop.time() >= self._next_reconcile:
                await self._reconcile(loop)
                continue
            try:
                async with asyncio.timeout(max(self._next_reconcile - loop.time(), 0.0)):
                    queued = await self._queue.get()
            except TimeoutError:
                continue
            if isinstance(queued, Settlement) and self._fresh(queued):
                return queued

    async def aclose(self) -> None:
        """Stop the stream and its reader task; iteration then ends."""
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.cancel()
            await asyncio.wait([reader])

    # --- internals -------------------------------------------------------------------------

    def _take_nowait(self) -> Settlement | None:
        while not self._queue.empty():
            queued = self._queue.get_nowait()
            if isinstance(queued, Settlement) and self._fresh(queued):
                return queued
        return None

    def _fresh(self, settlement: Settlement) -> bool:
        if settlement.payment_hash in self._recent:
            return False
        self._recent[settlement.payment_hash] = None
        if len(self._recent) > _RECENT_LIMIT:
            self._recent.popitem(last=False)
        return True

    def _raise_if_reader_failed(self) -> None:
        reader = self._reader
        if reader is None or not reader.done() or reader.cancelled():
            return
        failure = reader.exception()
        if failure is not None:
            self._reader = None
            self._closed = True
            raise failure

    async def _read_forever(self) -> None:
        source = self._source
        loop = asyncio.get_running_loop()
        while not (self._closed or source.closed):
            started = loop.time()
            try:
                await source._listen(self)
            except BackendError as exc:
                if source.closed:
                    return
                if loop.time() - started >= self._retry_max_s:
                    # It was up a while (LND's stream says nothing when it is live): a new
                    # outage, with a new backoff and its own log line.
                    self._failures, self._retry_s = 0, self._retry_initial_s
                self._failures += 1
                self._log.log(
                    self._outage_level(self._failures),
                    "settlement stream of %s lost (%s); reconciling by lookup every %.0f s, "
                    "reconnecting with a backoff up to %.0f s",
                    source.name,
                    exc,
                    self._fallback_poll_s,
                    self._retry_max_s,
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug, not an outage: say so with context, and hand it to the consumer,
                # whose next __anext__ re-raises it.
                self._log.exception("settlement reader of %s crashed", source.name)
                raise
            else:
                if source.closed:
                    return
                self._log.info("settlement stream of %s ended; reconnecting", source.name)
            finally:
                self._connected = False
                self._queue.put_nowait(_WAKE)
            try:
                async with asyncio.timeout(self._retry_s):
                    await self._retry_now.wait()
            except TimeoutError:
                self._retry_s = min(self._retry_s * 2, self._retry_max_s)
            self._retry_now.clear()

    async def _reconcile(self, loop: asyncio.AbstractEventLoop) -> None:
        self._reconcile_due = False
        interval = self._reconcile_every_s if self._connected else self._fallback_poll_s
        self._next_reconcile = loop.time() + interval
        hashes = list(dict.fromkeys(await self._pending()))
        if not hashes:
            return
        limiter = asyncio.Semaphore(_LOOKUP_CONCURRENCY)
        failures: list[BackendError] = []

        async def look(payment_hash: str) -> None:
            async with limiter:
                try:
                    status = await self._source.lookup_invoice(payment_hash)
                except InvoiceNotFound:
                    self._log.warning(
                        "%s has no invoice %s that the caller lists as pending",
                        self._source.name,
                        payment_hash,
                    )
                    return
                except BackendError as exc:
                    failures.append(exc)
                    return
            if status.settled:
                self._queue.put_nowait(
                    Settlement(
                        payment_hash=status.payment_hash,
                        amount_msat=status.received_msat,
                        settled_at=status.settled_at or self._source._now(),
                    )
                )

        async with asyncio.TaskGroup() as group:
            for payment_hash in hashes:
                group.create_task(look(payment_hash))
        if not failures:
            self._lookup_failures = 0
            return
        self._next_reconcile = loop.time() + self._fallback_poll_s
        self._lookup_failures += 1
        self._log.log(
            self._outage_level(self._lookup_failures),
            "reconcile of %d pending invoices on %s incomplete (%s); retrying every %.1f s",
            len(hashes),
            self._source.name,
            failures[0],
            self._fallback_poll_s,
        )
