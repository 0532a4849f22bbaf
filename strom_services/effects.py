"""The effect runner: executes outbox rows after commit, with retries and backoff.

Rows of one session run one after another, in the order they were queued (a RemoteStop never
overtakes its RemoteStart); rows of different sessions run concurrently. While running, the
runner never waits for one session's effects before picking up another's: each session's rows
run in their own task, and a wake-up (a commit that queued effects) is served at once even
while other sessions' effects are still waiting for a charger's answer. A handler either
returns (the row is marked done), raises :class:`RetryLater` (expected: a charger offline, a
relay down — rescheduled quietly), or raises anything else (a bug or an unexpected failure —
logged with the row's context and rescheduled). Pending rows are replayed at start, so a crash
between commit and execution delays an effect but never loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.crashpoints import crashpoint
from strom_storage.outbox import OutboxRow, OutboxStore

__all__ = ["EffectRunner", "Handler", "RetryLater"]

log = logging.getLogger(__name__)

FETCH = 100  # rows read per pass

Handler = Callable[[OutboxRow], Awaitable[None]]


class RetryLater(Exception):
    """Raised by a handler whose effect cannot run now but should be tried again."""


class EffectRunner:
    """Runs due outbox rows through their handlers.

    Args:
        store: the outbox.
        handlers: the handler of each outbox kind.
        clock: the current time (when rows are due, when they ran).
        idle_poll_s: the longest sleep between two looks at the outbox.
        max_concurrent: the most sessions whose effects run at once.
    """

    def __init__(
        self,
        store: OutboxStore,
        handlers: Mapping[str, Handler],
        *,
        clock: Clock = SYSTEM_CLOCK,
        idle_poll_s: float = 1.0,
        max_concurrent: int = 256,
    ) -> None:
        self.store = store
        self.handlers = dict(handlers)
        self.clock = clock
        self.idle_poll_s = idle_poll_s
        self.max_concurrent = max_concurrent
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}  # chain key -> its task
        self._running_rows: set[int] = set()
        self.executed = 0

    def wake(self) -> None:
        """Tell the runner new rows were committed (call after a commit that queued effects)."""
        self._wake.set()

    async def run(self) -> None:
        """Run until cancelled: start due rows as they come, sleep until woken or one is due.

        Each session's due rows run in one task (in order); the loop does not wait for them,
        so a newly committed effect of another session starts at once. A session whose task is
        still running gets its next rows when that task ends (it wakes the loop).
        """
        try:
            while True:
                self._wake.clear()
                now = self.clock.now()
                if len(self._running) < self.max_concurrent:
                    # One read: the due rows and when the next one is due.
                    rows, next_due = await self.store.poll(
                        now, limit=FETCH, exclude=frozenset(self._running_rows)
                    )
                    self._start_chains(rows)
                    if len(rows) == FETCH:
                        continue  # more may be due now
                else:
                    next_due = await self.store.next_due_at(after=now)
                # Rows due now but not started (their session is busy, or too many run) are
                # started when a running chain ends: it wakes this loop.
                timeout = self.idle_poll_s
                if next_due is not None:
                    timeout = max(0.0, min(timeout, (next_due - self.clock.now()).total_seconds()))
                # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation
                # that arrives as the wake-up does, and the runner would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
        finally:
            chains = list(self._running.values())
            for task in chains:
                task.cancel()
            if chains:
                # wait(), not gather(): a second cancellation (Strom's bounded stop) ends this
                # wait at once even if a handler ignores its cancellation.
                await asyncio.wait(chains)
                for task in chains:
                    if not task.cancelled() and task.exception() is not None:
                        log.warning(
                            "%s ended with %r while stopping (its rows stay pending)",
                            task.get_name(),
                            task.exception(),
                        )

    def _start_chains(self, rows: list[OutboxRow]) -> None:
        for key, batch in self._group(rows).items():
            if key in self._running or len(self._running) >= self.max_concurrent:
                continue  # its rows come back in a later pass
            self._running_rows.update(row.id for row in batch)
            task = asyncio.create_task(self._chain(key, batch), name=f"effects:{key}")
            self._running[key] = task

    async def _chain(self, key: str, batch: list[OutboxRow]) -> None:
        try:
            await self._run_in_order(batch)
        finally:
            self._running.pop(key, None)
            self._running_rows.difference_update(row.id for row in batch)
            self._wake.set()  # this session's next rows (or others held back) may be due

    @staticmethod
    def _group(rows: list[OutboxRow]) -> dict[str, list[OutboxRow]]:
        groups: dict[str, list[OutboxRow]] = {}
        for row in rows:
            groups.setdefault(row.session_id or f"row:{row.id}", []).append(row)
        return groups

    async def drain(self) -> int:
        """Run passes until nothing is due now; returns how many rows were attempted."""
        total = 0
        while attempted := await self.drain_once():
            total += attempted
        return total

    async def drain_once(self) -> int:
        """Run every row due now once; returns how many rows were attempted."""
        rows = await self.store.due(self.clock.now())
        if not rows:
            return 0
        async with asyncio.TaskGroup() as group:
            for batch in self._group(rows).values():
                group.create_task(self._run_in_order(batch))
        return len(rows)

    async def _run_in_order(self, batch: list[OutboxRow]) -> None:
        for row in batch:
            if not await self._run_one(row):
                return  # keep the order: later rows of this session wait for this one

    async def _run_one(self, row: OutboxRow) -> bool:
        handler = self.handlers.get(row.kind)
        if handler is None:
            log.error("outbox row %s (%s): no handler for kind %r", row.id, row.key, row.kind)
            await self.store.failed(row, f"no handler for {row.kind}", self.clock.now())
            return False
        try:
            await handler(row)
        except asyncio.CancelledError:
            raise
        except RetryLater as exc:
            log.info("outbox row %s (%s, %s): retry later: %s", row.id, row.kind, row.key, exc)
            await self._reschedule(row, str(exc))
            return False
        except Exception as exc:  # the supervisor of effects: log with context, retry
            log.exception("outbox row %s (%s, session %s) failed", row.id, row.kind, row.session_id)
            await self._reschedule(row, f"{type(exc).__name__}: {exc}")
            return False
        crashpoint("effect.before_done")
        await self.store.done(row.id, self.clock.now())
        self.executed += 1
        return True

    async def _reschedule(self, row: OutboxRow, error: str) -> None:
        if not await self.store.failed(row, error, self.clock.now()):
            log.error(
                "outbox row %s (%s, session %s) gave up after %d attempts: %s",
                row.id,
                row.kind,
                row.session_id,
                row.attempts + 1,
                error,
            )
