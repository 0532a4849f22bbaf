"""Group commit: many small writes that arrive together share one database transaction.

While one transaction writes, the items submitted meanwhile queue; the next transaction writes
all of them at once (``write`` receives the whole group). Each caller of :meth:`GroupCommit.submit`
returns only after the transaction holding its item has committed; if that transaction fails,
every caller in it gets the error and none of its items exist. A caller that gives up (it is
cancelled) does not abort the others: the group is written anyway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

T = TypeVar("T")


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class GroupCommit(Generic[T]):
    """Writes queued items in groups, one transaction per group.

    Args:
        write: writes one group of items in one transaction (committed when it returns).
        name: the name of the task that writes the groups (for logs and task dumps).
    """

    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, name: str) -> None:
        self._write = write
        self._name = name
        self._queued: list[tuple[T, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Queue ``item`` and return once the transaction that holds it has committed.

        Raises:
            Exception: whatever the group's transaction raised (nothing of it was written).
        """
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        committed.add_done_callback(_retrieve)  # read even when its caller has gone
        self._queued.append((item, committed))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_groups(), name=self._name)
        await asyncio.shield(committed)  # a caller that gives up does not abort the others

    async def _write_groups(self) -> None:
        while self._queued:
            group, self._queued = self._queued, []
            try:
                await self._write([item for item, _ in group])
            except BaseException as exc:
                for _, committed in group:
                    if not committed.done():
                        committed.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                for _, committed in group:
                    if not committed.done():
                        committed.set_result(None)
