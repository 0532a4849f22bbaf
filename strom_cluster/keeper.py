"""The lease keeper: a process takes its fair share of a set of named leases and keeps it.

Theory of operation
-------------------
Some work must run in exactly one process of a cluster, one piece per name: each charger's
nostr agent (``agent:<id>``), for instance. A :class:`LeaseKeeper` is given the names to try and
two callbacks; every ``ttl_s / 3`` it makes one *tick*:

1. **Renew** the leases it holds, in one statement, with its own ``process:<id>`` lease (taken
   at the first tick, which takes nothing else: processes starting together count each other
   before they share). A name
   missing from the answer was lost (it expired while this process stalled, or was taken over):
   ``on_lost`` is called with it. When the database cannot be reached, the leases are still
   held until ``ttl_s`` after the last renewal was *sent*; at the last tick before that, the
   keeper gives them all up locally (``on_lost``), so the work stops here before another
   process can take it.
2. **Share fairly.** The live processes are those holding a ``process:`` lease. With ``n``
   names and ``p`` live processes, a process holds at most ``cap = ceil(n / p)``. One below
   ``cap`` takes free names (one statement, several at once) and calls ``on_gained``; one above
   ``cap + slack`` stops the work of its surplus (``on_lost``) and only then releases those
   leases, so two processes never run the same piece. Since ``cap * p >= n`` every name finds a
   holder. ``slack`` (default 0) keeps processes from shedding while the count of processes
   flaps, at the price of a less even spread. A name no longer wanted (a charger removed) is
   stopped and released too.

Each process prefers different names (rendezvous hashing on its id and the name), so racing
processes mostly try different free leases, and the one statement that takes several (``INSERT
... ON CONFLICT DO UPDATE WHERE expired``) gives each lease to one of them.

Fail-over: a process that dies stops renewing; its ``process:`` lease and its named leases
expire together after ``ttl_s`` (they were renewed in one statement), and at their next tick
the others count one process fewer, raise their ``cap`` and take the freed names: the work
moves within ``ttl_s`` plus one tick. A process that joins takes names as others shed theirs.

The keeper knows nothing of what the names guard; the lease store is injected (the storage
layer's :class:`strom_storage.leases.LeaseStore` fits :class:`LeaseBook`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Protocol

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import StromError

__all__ = ["PROCESS_PREFIX", "HeldLease", "LeaseBook", "LeaseKeeper", "process_lease"]

log = logging.getLogger(__name__)

PROCESS_PREFIX = "process:"


def process_lease(process_id: str) -> str:
    """The lease every live process holds, by which the others count it."""
    return f"{PROCESS_PREFIX}{process_id}"


class HeldLease(Protocol):
    """A lease as the store returns it."""

    @property
    def name(self) -> str:
        """The lease's name."""
        ...

    @property
    def owner(self) -> str:
        """The process holding it."""
        ...

    @property
    def token(self) -> int:
        """Its fencing token."""
        ...


class LeaseBook(Protocol):
    """The lease operations the keeper needs (each one transaction)."""

    async def acquire_many(
        self, names: Collection[str], owner: str, ttl_s: float
    ) -> Sequence[HeldLease]:
        """Take the free ones of ``names``; return those taken."""
        ...

    async def renew_names(
        self, names: Collection[str], owner: str, ttl_s: float
    ) -> Sequence[HeldLease]:
        """Extend the ones of ``names`` ``owner`` still holds; return those."""
        ...

    async def release_names(self, names: Collection[str], owner: str) -> list[str]:
        """Give up the ones of ``names`` ``owner`` holds."""
        ...

    async def live_with_prefix(self, prefix: str) -> Sequence[HeldLease]:
        """Every live lease whose name starts with ``prefix``."""
        ...


Names = Callable[[list[str]], Awaitable[None]]


class LeaseKeeper:
    """Holds a fair share of a set of leases for this process, and says when it changes.

    Args:
        leases: the lease store (shared by the processes).
        owner: this process's id (unique per process start).
        prefix: the prefix of every name (``agent:``), by which the held ones are read back.
        names: the names to share, read at every tick (the configuration may change).
        on_gained: called with names just taken (start their work).
        on_lost: called with names lost or about to be released (stop their work); when it
            returns for a release, the leases are released.
        ttl_s: how long a lease holds without renewal; the keeper ticks every third of it.
        slack: how far above its fair share a process may stay before it sheds.
        clock: its monotonic time measures how long the last renewal holds.

    Raises:
        ValueError: a TTL that is not positive, a negative slack, or an empty prefix.
    """

    def __init__(
        self,
        leases: LeaseBook,
        owner: str,
        *,
        prefix: str,
        names: Callable[[], Collection[str]],
        on_gained: Names,
        on_lost: Names,
        ttl_s: float = 10.0,
        slack: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not ttl_s > 0:
            raise ValueError(f"a lease keeper needs a positive TTL, got {ttl_s!r}")
        if slack < 0:
            raise ValueError(f"slack cannot be negative, got {slack!r}")
        if not prefix:
            raise ValueError("a lease keeper needs the prefix of its names")
        self._leases = leases
        self.owner = owner
        self._prefix = prefix
        self._names = names
        self._on_gained = on_gained
        self._on_lost = on_lost
        self.ttl_s = ttl_s
        self.interval_s = ttl_s / 3
        self._slack = slack
        self._clock = clock
        self._process = process_lease(owner)
        self._held: dict[str, HeldLease] = {}
        self._confirmed_at: float | None = None  # when the last successful renewal was sent
        self.live_processes = 0

    @property
    def held(self) -> dict[str, HeldLease]:
        """The leases this process holds now, by name."""
        return dict(self._held)

    def _rank(self, name: str) -> bytes:
        """This process's preference for ``name`` (lower is preferred)."""
        return hashlib.sha256(f"{self.owner}\0{name}".encode()).digest()

    async def run(self, stop: asyncio.Event) -> None:
        """Tick every ``ttl_s / 3`` until ``stop`` is set; then stop all work and release."""
        try:
            while not stop.is_set():
                await self.tick()
                try:
                    async with asyncio.timeout(self.interval_s):
                        await stop.wait()
                except TimeoutError:
                    pass
        finally:
            await self.release_all()

    async def release_all(self) -> None:
        """Stop the work of every held lease, then release them and the process lease."""
        names = sorted(self._held)
        self._held.clear()
        if names:
            await self._lose(names, "released")
        try:
            await self._leases.release_names([*names, self._process], self.owner)
        except StromError as exc:  # they expire after their TTL
            log.warning("process %s: cannot release its leases: %s", self.owner, exc)

    async def tick(self) -> None:
        """Renew, notice losses, then take or shed names toward the fair share."""
        sent_at = self._clock.monotonic()
        try:
            renewed = await self._leases.renew_names(
                [self._process, *self._held], self.owner, self.ttl_s
            )
        except StromError as exc:
            await self._unconfirmed(sent_at, exc)
            return
        self._confirmed_at = sent_at
        kept = {lease.name: lease for lease in renewed}
        lost = sorted(name for name in self._held if name not in kept)
        for name in lost:
            del self._held[name]
        self._held.update((name, lease) for name, lease in kept.items() if name in self._held)
        if lost:
            await self._lose(lost, "lost (expired or taken over)")
        try:
            if self._process not in kept:
                # Joining (or back after a stall): be counted first, share from the next tick,
                # so processes starting together do not each take everything and shed it.
                await self._leases.acquire_many([self._process], self.owner, self.ttl_s)
                return
            await self._balance()
        except StromError as exc:
            log.warning("process %s: cannot share %s leases now: %s", self.owner, self._prefix, exc)

    async def _unconfirmed(self, sent_at: float, exc: StromError) -> None:
        confirmed = self._confirmed_at
        if confirmed is None or not self._held:
            log.warning("process %s: cannot renew its leases: %s", self.owner, exc)
            return
        # Held for sure until ttl after the last renewal was sent; the next tick may be too late.
        if sent_at + self.interval_s < confirmed + self.ttl_s:
            log.warning("process %s: cannot renew its leases (will retry): %s", self.owner, exc)
            return
        names = sorted(self._held)
        self._held.clear()
        await self._lose(names, f"given up: cannot be renewed ({exc})")

    async def _balance(self) -> None:
        wanted = set(self._names())
        stray = sorted(name for name in self._held if name not in wanted)
        if stray:
            await self._shed(stray, "no longer wanted")
        processes = await self._leases.live_with_prefix(PROCESS_PREFIX)
        self.live_processes = len({lease.owner for lease in processes} | {self.owner})
        cap = math.ceil(len(wanted) / self.live_processes)
        if len(self._held) > cap + self._slack:
            surplus = sorted(self._held, key=self._rank)[cap:]
            await self._shed(surplus, f"above the fair share of {cap}")
        elif len(self._held) < cap:
            taken = {lease.name for lease in await self._leases.live_with_prefix(self._prefix)}
            free = sorted((name for name in wanted if name not in taken), key=self._rank)
            if free:
                await self._take(free[: cap - len(self._held)])

    async def _take(self, names: list[str]) -> None:
        got = await self._leases.acquire_many(names, self.owner, self.ttl_s)
        if not got:
            return
        self._held.update((lease.name, lease) for lease in got)
        gained = sorted(lease.name for lease in got)
        log.info("process %s: took %d lease(s): %s", self.owner, len(gained), _some(gained))
        try:
            await self._on_gained(gained)
        except StromError as exc:  # the work could not start: let another process try
            log.error("process %s: cannot start %s: %s", self.owner, _some(gained), exc)
            await self._shed(gained, "its work did not start")

    async def _shed(self, names: list[str], why: str) -> None:
        for name in names:
            self._held.pop(name, None)
        await self._lose(names, f"released: {why}")
        await self._leases.release_names(names, self.owner)

    async def _lose(self, names: list[str], why: str) -> None:
        log.info("process %s: %d lease(s) %s: %s", self.owner, len(names), why, _some(names))
        try:
            await self._on_lost(names)
        except StromError as exc:
            log.error("process %s: stopping %s failed: %s", self.owner, _some(names), exc)


def _some(names: Sequence[str], shown: int = 5) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
