"""The settlement stream's rules, with a scripted source instead of a node."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from strom_core.errors import BackendUnavailable
from strom_core.units import Msat
from strom_lightning import InvoiceNotFound, InvoiceState, InvoiceStatus, Settlement
from strom_lightning._stream import SettlementSink, SettlementStream

NOW = datetime(2026, 1, 1, tzinfo=UTC)


class ScriptedSource:
    """A backend whose push channel and lookups the test controls."""

    name = "scripted"

    def __init__(self) -> None:
        self.closed = False
        self.settled: dict[str, int] = {}
        self.unknown: set[str] = set()
        self.lookups = 0
        self.listens = 0
        self.relistened = asyncio.Event()  # set once the push channel was tried again
        self.push: asyncio.Queue[Settlement | Exception] = asyncio.Queue()
        self.listen_fails: Exception | None = None

    def _now(self) -> datetime:
        return NOW

    async def _listen(self, sink: SettlementSink) -> None:
        self.listens += 1
        if self.listens >= 2:
            self.relistened.set()
        if self.listen_fails is not None:
            raise self.listen_fails
        sink.connected()
        while True:
            item = await self.push.get()
            if isinstance(item, Exception):
                raise item
            sink.settled(item)

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        self.lookups += 1
        if payment_hash in self.unknown:
            raise InvoiceNotFound(payment_hash, self.name)
        amount = self.settled.get(payment_hash)
        return InvoiceStatus(
            payment_hash=payment_hash,
            state=InvoiceState.SETTLED if amount is not None else InvoiceState.PENDING,
            amount_msat=Msat(amount or 1),
            received_msat=Msat(amount or 0),
            expires_at=NOW + timedelta(hours=1),
            settled_at=NOW if amount is not None else None,
        )


def pending_of(*hashes: str) -> Callable[[], Awaitable[list[str]]]:
    async def pending() -> list[str]:
        return list(hashes)

    return pending


def stream_of(source: ScriptedSource, *hashes: str) -> SettlementStream:
    return SettlementStream(
        source, pending_of(*hashes), reconcile_every_s=0.2, fallback_poll_s=0.05
    )


async def take(stream: SettlementStream) -> Settlement:
    async with asyncio.timeout(5):
        return await anext(stream)


async def test_pending_invoices_paid_before_the_start_are_delivered() -> None:
    source = ScriptedSource()
    source.settled["a" * 64] = 1_000

    async with stream_of(source, "a" * 64, "b" * 64) as stream:
        settlement = await take(stream)

    assert settlement == Settlement("a" * 64, Msat(1_000), NOW)


async def test_push_and_lookup_of_the_same_payment_deliver_it_once() -> None:
    source = ScriptedSource()
    source.settled["a" * 64] = 1_000

    async with stream_of(source, "a" * 64) as stream:
        first = await take(stream)
        source.push.put_nowait(Settlement("a" * 64, Msat(1_000), NOW))
        source.push.put_nowait(Settlement("c" * 64, Msat(3_000), NOW))
        second = await take(stream)

    assert first.payment_hash == "a" * 64
    assert second.payment_hash == "c" * 64


async def test_without_a_push_channel_it_falls_back_to_polling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ScriptedSource()
    source.listen_fails = BackendUnavailable("websocket refused")

    async with stream_of(source, "a" * 64) as stream, asyncio.TaskGroup() as group:
        taken = group.create_task(take(stream))
        # It keeps trying to reconnect (with backoff, not in a hot loop).
        await asyncio.wait_for(source.relistened.wait(), 5)
        source.settled["a" * 64] = 5_000

    assert taken.result().amount_msat == 5_000  # delivered by polling, the push being down
    assert any("websocket refused" in r.getMessage() for r in caplog.records)
    assert all(r.levelno < logging.ERROR for r in caplog.records)


async def test_a_hash_the_backend_does_not_know_is_skipped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = ScriptedSource()
    source.unknown.add("d" * 64)
    source.settled["a" * 64] = 1_000

    async with stream_of(source, "d" * 64, "a" * 64) as stream:
        settlement = await take(stream)

    assert settlement.payment_hash == "a" * 64
    assert any("has no invoice" in r.getMessage() for r in caplog.records)


async def test_a_bug_in_the_listener_reaches_the_consumer(
    expect_errors: list[logging.LogRecord],
) -> None:
    source = ScriptedSource()

    async with stream_of(source) as stream:
        source.push.put_nowait(RuntimeError("bug"))
        with pytest.raises(RuntimeError, match="bug"):
            await take(stream)


async def test_closing_ends_iteration_and_the_reader() -> None:
    source = ScriptedSource()
    stream = stream_of(source)

    async with asyncio.TaskGroup() as group:
        drained = group.create_task(anext(stream, None))
        await asyncio.sleep(0.1)
        await stream.aclose()

    assert drained.result() is None
    assert stream._reader is None
    assert await anext(stream, None) is None


class UnreachableSource(ScriptedSource):
    """A node that is down: like LND's stream, it says "connected" before the connection
    fails (LND's gateway sends nothing until the first invoice), and its lookups fail too."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True
        self.attempts: list[float] = []
        self.attempt = asyncio.Event()

    async def _listen(self, sink: SettlementSink) -> None:
        self.attempts.append(asyncio.get_running_loop().time())
        self.attempt.set()
        sink.connected()
        if self.down:
            raise BackendUnavailable("lnd: invoice subscription failed: connection refused")
        await super()._listen(sink)

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        if self.down:
            raise BackendUnavailable("lnd: lookup invoice failed: connection refused")
        return await super().lookup_invoice(payment_hash)

    async def attempts_reach(self, count: int) -> None:
        async with asyncio.timeout(10):
            while len(self.attempts) < count:
                self.attempt.clear()
                await self.attempt.wait()


def outage_lines(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


async def test_a_node_that_stays_down_is_retried_with_a_growing_backoff_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    source = UnreachableSource()
    stream = SettlementStream(
        source,
        pending_of("a" * 64),
        reconcile_every_s=0.2,
        fallback_poll_s=0.02,
        retry_initial_s=0.01,
        retry_max_s=0.08,
    )
    async with stream, asyncio.TaskGroup() as group:
        group.create_task(anext(stream, None))
        await source.attempts_reach(6)
        await stream.aclose()

    gaps = [b - a for a, b in zip(source.attempts, source.attempts[1:], strict=False)]
    # 0.01, 0.02, 0.04, 0.08, 0.08: the backoff grows although each attempt said "connected"
    assert sum(gaps) >= 0.2, gaps
    warnings = outage_lines(caplog, logging.WARNING)
    assert len([w for w in warnings if "settlement stream" in w]) == 1, warnings
    assert len([w for w in warnings if "reconcile" in w]) == 1, warnings
    assert len(outage_lines(caplog, logging.DEBUG)) >= 4  # the repeats, for whoever debugs


async def test_a_nudge_reconnects_and_reconciles_at_once_when_the_node_is_back() -> None:
    source = UnreachableSource()
    stream = SettlementStream(
        source,
        pending_of("a" * 64),
        reconcile_every_s=60,
        fallback_poll_s=60,
        retry_initial_s=60,
        retry_max_s=60,
    )
    async with stream, asyncio.TaskGroup() as group:
        taken = group.create_task(take(stream))
        await source.attempts_reach(1)  # failed; the next try would be in a minute
        source.down = False
        source.settled["a" * 64] = 2_000  # paid while Strom could not see it
        stream.nudge()
        await source.attempts_reach(2)

    assert taken.result() == Settlement("a" * 64, Msat(2_000), NOW)


async def test_a_stream_told_the_node_is_known_down_does_not_warn_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = UnreachableSource()
    stream = SettlementStream(
        source,
        pending_of("a" * 64),
        reconcile_every_s=0.2,
        fallback_poll_s=0.02,
        retry_initial_s=0.01,
        retry_max_s=0.02,
        quiet=lambda: True,
    )
    async with stream, asyncio.TaskGroup() as group:
        group.create_task(anext(stream, None))
        await source.attempts_reach(3)
        await stream.aclose()

    assert outage_lines(caplog, logging.WARNING) == []
