"""One process of a Strom cluster: its id, its bus, its leases and their heartbeat.

Theory of operation. With ``[cluster] enabled`` (``strom run --cluster``) several identical
processes share one PostgreSQL. Each has a **process id**, new at every start unless the
operator fixed one (:func:`process_id`), under which it holds leases
(:mod:`strom_storage.leases`) and is reached on the bus (:mod:`strom_core.ports.cluster`).

:class:`ClusterNode` owns the three:

* the presence lease ``process:<id>``: taken when the node opens (a process started with a
  fixed id waits here until its predecessor's lease has run out, so two live processes never
  share an id), given up when it closes; other processes read it to know who is alive;
* the heartbeat: every third of ``lease_ttl_s`` one statement renews the leases the process
  knows it holds — its own (presence, leader roles: :meth:`ClusterNode.hold`) and those of its
  participants (the OCPP server's charger leases: :class:`LeaseHolder`). A lease that did not
  come back renewed was lost — it expired while the database was out of reach, or another
  process took it over — and its owner is told (the charger's connection is closed, the leader
  role given up). When no renewal has succeeded for a whole TTL every lease is given up here,
  before another process can take it. The names are explicit, not "every lease of this
  owner" (:func:`~strom_storage.leases.renew_all`): a lease a part gave up locally must not be
  kept alive by the heartbeat, or nobody could take it. The agents' lease keeper
  (:mod:`strom_cluster.keeper`) renews its own the same way;
* the bus's requests: one handler per subject (:meth:`ClusterNode.serve`), served under this
  process's id once the node :meth:`~ClusterNode.start` s;
* the leader roles (:meth:`ClusterNode.lead`): ``leader:<role>`` is held by one process at a
  time, which runs the role's work while it holds it; the others try again every third of the
  TTL, so a dead leader is replaced within about ``4/3 x lease_ttl_s``.

The node is built only in cluster mode; one process (and SQLite) never makes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import socket
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from strom_cluster import NatsBus, PgNotifyBus
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ClusterConfig
from strom_core.errors import NoReply, StorageError
from strom_core.ports.cluster import MAX_NAME_LENGTH, Bus, Handler
from strom_storage.db import Database
from strom_storage.leases import Lease, LeaseStore

__all__ = [
    "LEADER_PREFIX",
    "PROCESS_PREFIX",
    "ClusterNode",
    "LeaseHolder",
    "Work",
    "open_bus",
    "process_id",
]

log = logging.getLogger(__name__)

PROCESS_PREFIX = "process:"
LEADER_PREFIX = "leader:"
_SUFFIX_HEX = 8

LostCallback = Callable[[Lease], Awaitable[None]]
Work = Callable[[], Coroutine[Any, Any, None]]  # a leader role's work


def process_id(configured: str, hostname: str | None = None) -> str:
    """This process's id: the configured one, or ``<host name>-<8 random hex digits>``.

    A fresh id at every start is the safe default: a restarted process (a container keeps its
    host name, and its pid is often 1 again) must not renew the leases its predecessor held —
    the chargers behind them reconnect to whichever process the load balancer picks.
    The host name keeps logs readable; it is cut to fit a bus name.
    """
    if configured:
        return configured
    host = re.sub(r"[^A-Za-z0-9-]", "-", (hostname or socket.gethostname()).split(".")[0])
    host = host.strip("-")[: MAX_NAME_LENGTH - _SUFFIX_HEX - 1] or "strom"
    return f"{host}-{secrets.token_hex(_SUFFIX_HEX // 2)}"


async def open_bus(config: ClusterConfig, database_url: str, pid: str) -> Bus:
    """Connect the configured bus: LISTEN/NOTIFY on the storage database, or NATS.

    Raises:
        BusUnavailable: the bus cannot be reached.
    """
    if config.bus == "nats":
        return await NatsBus.connect(config.nats_url, name=f"strom-{pid}")
    return await PgNotifyBus.connect(database_url)


class LeaseHolder(Protocol):
    """A part of the process that holds leases the heartbeat renews (the OCPP server's)."""

    def held(self) -> Mapping[str, int]:
        """The leases it holds now: name -> token."""
        ...

    def renewed(self, before: Mapping[str, int], leases: Iterable[Lease]) -> object:
        """The heartbeat renewed ``leases`` of ``before`` (:meth:`held`); the rest were lost."""
        ...

    def lost_all(self) -> object:
        """No renewal for a whole TTL: every lease it holds is to be given up."""
        ...


@dataclass
class _Held:
    lease: Lease
    on_lost: LostCallback | None


class ClusterNode:
    """This process in the cluster (see the module's theory of operation).

    Args:
        config: the ``[cluster]`` section.
        db: the shared database.
        bus: the connected bus (closed with the node).
        pid: this process's id (:func:`process_id`).
    """

    def __init__(
        self, config: ClusterConfig, db: Database, bus: Bus, pid: str, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.config = config
        self.db = db
        self.bus = bus
        self.process_id = pid
        self.leases = LeaseStore(db)
        self.ttl_s = config.lease_ttl_s
        self.clock = clock
        self._held: dict[str, _Held] = {}
        self._holders: list[LeaseHolder] = []
        self._subjects: dict[str, Handler] = {}
        self._confirmed_at: float | None = None  # when the last renewal that worked was sent
        self._beat = asyncio.Event()  # set after each heartbeat (tests wait on it)
        self.heartbeats = 0
        self.lost = 0

    @classmethod
    async def open(cls, config: ClusterConfig, db: Database, database_url: str) -> ClusterNode:
        """Connect the bus and take this process's presence lease.

        Raises:
            BusUnavailable: the bus cannot be reached.
        """
        pid = process_id(config.process_id)
        bus = await open_bus(config, database_url, pid)
        node = cls(config, db, bus, pid)
        try:
            await node.join()
        except BaseException:
            await bus.aclose()
            raise
        return node

    @property
    def presence(self) -> str:
        """The name of this process's presence lease."""
        return f"{PROCESS_PREFIX}{self.process_id}"

    async def join(self) -> None:
        """Take the presence lease, waiting while a live predecessor of the same id holds it."""
        waited = False
        while (lease := await self._acquire(self.presence)) is None:
            if not waited:
                log.warning(
                    "cluster: process id %s is held by a live process; waiting up to %.0f s "
                    "for its lease to run out (two processes must not share an id)",
                    self.process_id,
                    self.ttl_s,
                )
                waited = True
            await asyncio.sleep(self.ttl_s / 3)
        self.hold(lease, self._presence_lost)
        log.info("cluster: joined as %s (lease TTL %.0f s)", self.process_id, self.ttl_s)

    async def _acquire(self, name: str) -> Lease | None:
        return await self.leases.acquire(name, self.process_id, self.ttl_s)

    def hold(self, lease: Lease, on_lost: LostCallback | None = None) -> None:
        """Keep ``lease`` renewed by the heartbeat; ``on_lost`` runs if it is ever lost."""
        if lease.owner != self.process_id:
            raise ValueError(f"lease {lease.name} belongs to {lease.owner}, not this process")
        self._held[lease.name] = _Held(lease, on_lost)

    def forget(self, name: str) -> Lease | None:
        """Stop watching the lease ``name`` (given up or released); returns it if it was held."""
        held = self._held.pop(name, None)
        return None if held is None else held.lease

    def holds(self, name: str) -> Lease | None:
        """The lease ``name`` as this process holds it, or None."""
        held = self._held.get(name)
        return None if held is None else held.lease

    async def release(self, name: str) -> None:
        """Give the lease ``name`` up at once (another process may take it now)."""
        lease = self.forget(name)
        if lease is not None:
            with contextlib.suppress(StorageError):
                await self.leases.release(lease)

    def participate(self, holder: LeaseHolder) -> None:
        """Renew ``holder``'s leases with this process's own, at every heartbeat."""
        self._holders.append(holder)

    def serve(self, subject: str, handler: Handler) -> None:
        """Answer the bus requests of ``subject`` sent to this process with ``handler``."""
        if subject in self._subjects:
            raise ValueError(f"bus subject {subject!r} is served already")
        self._subjects[subject] = handler

    async def start(self) -> None:
        """Serve the subjects registered so far on the bus, under this process's id."""
        await self.bus.serve(self.process_id, self._dispatch)

    async def _dispatch(self, subject: str, payload: bytes) -> bytes:
        handler = self._subjects.get(subject)
        if handler is None:
            raise NoReply(self.process_id, subject, "no handler for this subject")
        return await handler(subject, payload)

    async def heartbeat(self) -> list[Lease]:
        """Renew this process's leases once; tell the owners of the leases lost.

        Returns:
            The node's own leases lost in this beat (its participants are told theirs).

        Raises:
            StorageError: the database could not be reached (nothing is judged lost yet).
        """
        sent_at = self.clock.monotonic()
        before = [holder.held() for holder in self._holders]
        mine = {name: held.lease.token for name, held in self._held.items()}
        names = set(mine).union(*before)
        try:
            leases = await self.leases.renew_names(names, self.process_id, self.ttl_s)
        except StorageError:
            await self._unconfirmed(sent_at)
            raise
        self._confirmed_at = sent_at
        for holder, theirs in zip(self._holders, before, strict=True):
            holder.renewed(theirs, leases)
        renewed = {lease.name: lease for lease in leases}
        lost: list[tuple[Lease, LostCallback | None]] = []
        for name, token in mine.items():
            held = self._held.get(name)
            if held is None or held.lease.token != token:
                continue  # given up, or taken again, while the renewal ran: not judged now
            now = renewed.get(name)
            if now is not None and now.token == token:
                held.lease = now
                continue
            del self._held[name]
            lost.append((held.lease, held.on_lost))
        for lease, on_lost in lost:
            self.lost += 1
            log.warning("cluster: lease %s (token %d) was lost", lease.name, lease.token)
            if on_lost is not None:
                await on_lost(lease)
        await self._rejoin()
        self.heartbeats += 1
        self._beat.set()
        return [lease for lease, _ in lost]

    async def _unconfirmed(self, sent_at: float) -> None:
        """A renewal failed: give every lease up here if the next beat would come too late."""
        confirmed = self._confirmed_at
        if confirmed is None or sent_at + self.ttl_s / 3 < confirmed + self.ttl_s:
            return  # still held for sure until the next beat
        log.error("cluster: no lease renewed for %.0f s; giving up every lease here", self.ttl_s)
        for holder in self._holders:
            holder.lost_all()
        lost = list(self._held.values())
        self._held.clear()
        for held in lost:
            self.lost += 1
            if held.on_lost is not None:
                await held.on_lost(held.lease)

    async def run(self) -> None:
        """The heartbeat, until cancelled: renew every third of the TTL."""
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            try:
                await self.heartbeat()
            except StorageError as exc:
                log.warning("cluster: heartbeat failed, leases not renewed: %s", exc)

    async def wait_heartbeat(self) -> None:
        """Wait for the next heartbeat (tests)."""
        self._beat.clear()
        await self._beat.wait()

    async def _presence_lost(self, lease: Lease) -> None:
        # The process was cut off longer than the TTL: the others think it dead and have taken
        # its chargers over. The next heartbeat that reaches the database says it is alive.
        log.warning("cluster: %s was taken for dead (presence lost)", self.process_id)

    async def _rejoin(self) -> None:
        if self.presence in self._held:
            return
        lease = await self._acquire(self.presence)
        if lease is not None:
            self.hold(lease, self._presence_lost)
            log.info("cluster: %s is back (presence token %d)", self.process_id, lease.token)

    async def lead(self, role: str, work: Work) -> None:
        """Run ``work`` while this process holds ``leader:<role>``; wait for it otherwise.

        Runs until cancelled. When the lease is lost, ``work`` is cancelled and the node
        competes for the role again; when ``work`` returns, the role is given up and taken
        again later.
        """
        name = f"{LEADER_PREFIX}{role}"
        while True:
            try:
                lease = await self._acquire(name)
            except StorageError as exc:
                log.warning("cluster: %s not acquired: %s", name, exc)
                lease = None
            if lease is None:
                await asyncio.sleep(self.ttl_s / 3)
                continue
            log.info("cluster: %s leads %s (token %d)", self.process_id, role, lease.token)
            await self._lead_while_held(lease, work)

    async def _lead_while_held(self, lease: Lease, work: Work) -> None:
        lost = asyncio.Event()

        async def on_lost(_lease: Lease) -> None:
            lost.set()

        self.hold(lease, on_lost)
        task = asyncio.create_task(work(), name=f"leader:{lease.name}")
        waiter = asyncio.create_task(lost.wait())
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if lost.is_set():
                log.warning("cluster: %s lost %s; stepped down", self.process_id, lease.name)
            else:
                await self.release(lease.name)
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def aclose(self) -> None:
        """Give every lease up (others take them at once) and close the bus."""
        for name in list(self._held):
            await self.release(name)
        await self.bus.aclose()
        log.info("cluster: %s left", self.process_id)
