"""Is the lightning node reachable? One watcher knows, says so once, and keeps asking.

Theory of operation. Strom starts whether or not its node answers: a home node and Strom
often restart together, and LND renews its TLS certificate exactly then. :class:`NodeWatch`
probes the node (``node_info``, bounded by ``probe_timeout_s``) and keeps one
:class:`NodeState`: up, down with the reason and since when, or not probed yet.

* While up it probes every ``check_every_s``; :meth:`NodeWatch.check_soon` (a failed call
  elsewhere) probes at once.
* While down it probes with a backoff (``retry_initial_s`` doubling to ``retry_max_s``), and
  before each probe asks the backend to read its configured credentials again
  (:meth:`~strom_lightning.base.LightningBackend.refresh`), so a renewed certificate written
  to the pinned file is trusted without a restart.
* It logs a WARNING when the node goes down (and when the reason changes), an INFO when it
  comes back - never a line per retry.
* Its listeners are awaited after each change (the composition root reconciles pending
  invoices and wakes the settlement stream when the node is back; the admin UI is told).

The network whose refund invoices Strom accepts is the node's, learned on first contact
(:attr:`NodeWatch.network`): until the node has answered once it is None and refunds wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import BackendError
from strom_core.lightning import NETWORK_NAMES, Network, NodeInfo
from strom_lightning.base import LightningBackend

__all__ = ["NodeListener", "NodeState", "NodeWatch"]

log = logging.getLogger("strom_lightning")


@dataclass(frozen=True, slots=True)
class NodeState:
    """The node as Strom sees it now."""

    up: bool | None
    """True: it answers; False: it does not (see ``reason``); None: not probed yet."""
    since: datetime
    """When ``up`` last changed (or the watch started)."""
    reason: str = ""
    """Why it is down, in words ("" while up)."""
    checked_at: datetime | None = None
    """The last probe."""
    info: NodeInfo | None = None
    """What the node said at its last answer (kept while it is down)."""


NodeListener = Callable[[NodeState], Awaitable[None]]
"""Told about each change of :attr:`NodeState.up` (and of the reason while down)."""


class NodeWatch:
    """Probes one backend and keeps its :class:`NodeState`; see the module docstring."""

    def __init__(
        self,
        backend: LightningBackend,
        *,
        clock: Clock = SYSTEM_CLOCK,
        probe_timeout_s: float = 10.0,
        check_every_s: float = 30.0,
        retry_initial_s: float = 5.0,
        retry_max_s: float = 60.0,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.probe_timeout_s = probe_timeout_s
        self.check_every_s = check_every_s
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._listeners: list[NodeListener] = []
        self._state = NodeState(up=None, since=clock.now())
        self._retry_s = retry_initial_s
        self._wake = asyncio.Event()
        self._probing = asyncio.Lock()

    def on_change(self, listener: NodeListener) -> None:
        """Await ``listener`` with the new state after each change of the node's state."""
        self._listeners.append(listener)

    def remove_listener(self, listener: NodeListener) -> None:
        """Stop telling ``listener`` about changes (one never registered is ignored)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    @property
    def state(self) -> NodeState:
        """The node as last seen."""
        return self._state

    @property
    def up(self) -> bool:
        """True while the node answers."""
        return self._state.up is True

    @property
    def network(self) -> Network | None:
        """The node's network, from its last answer; None until it has answered once."""
        info = self._state.info
        return None if info is None else info.network

    @property
    def next_retry_s(self) -> float:
        """How long the watch waits before its next probe while the node is down."""
        return self._retry_s

    def check_soon(self) -> None:
        """Probe now instead of at the next interval (a call to the node just failed)."""
        self._wake.set()

    async def probe(self) -> NodeState:
        """Ask the node once; update, log and announce the state. Never raises for the node."""
        async with self._probing:
            before = self._state
            now = self.clock.now()
            try:
                if before.up is not True:
                    await self.backend.refresh()  # a renewed certificate, rewritten files
                async with asyncio.timeout(self.probe_timeout_s):
                    info = await self.backend.node_info()
            except BackendError as exc:
                after = self._down(before, str(exc), now)
            except TimeoutError:
                after = self._down(
                    before, f"no answer from the node within {self.probe_timeout_s:g} s", now
                )
            else:
                after = self._up(before, info, now)
            self._state = after
        if after.up != before.up or after.reason != before.reason:
            for listener in list(self._listeners):
                await listener(after)
        return after

    async def run(self) -> None:
        """Probe for ever: every ``check_every_s`` while up, with a backoff while down."""
        while True:
            woken = False
            try:
                wait = self.check_every_s if self.up else min(self._retry_s, self.retry_max_s)
                async with asyncio.timeout(wait):
                    await self._wake.wait()
                    woken = True
            except TimeoutError:
                pass
            self._wake.clear()
            state = await self.probe()
            if state.up:
                self._retry_s = self.retry_initial_s
            elif not woken:  # a whole backoff step passed: the next one is longer
                self._retry_s = min(self._retry_s * 2, self.retry_max_s)

    # --- transitions -----------------------------------------------------------------------

    def _describe(self, info: NodeInfo | None) -> str:
        if info is None:
            return repr(self.backend)
        network = NETWORK_NAMES.get(info.network, info.network)
        if not self.backend.real_money:
            money = " — FAKE BACKEND, NO REAL MONEY MOVES"
        else:
            money = "" if info.real_money else " (a test network: no real money)"
        return f"{info.backend} {info.alias or '(no alias)'} on {network}{money}"

    def _up(self, before: NodeState, info: NodeInfo, now: datetime) -> NodeState:
        if before.up is None:
            log.info("lightning: %s", self._describe(info))
        elif before.up is False:
            log.info(
                "lightning node reachable again after %s (it was: %s): %s",
                _duration(now - before.since),
                before.reason,
                self._describe(info),
            )
        if info.network != self.backend.network and (
            before.info is None or before.info.network != info.network
        ):
            log.warning(
                "lightning: the node is on %s but [lightning] network says %s; refund "
                "invoices are checked against the node's network",
                NETWORK_NAMES.get(info.network, info.network),
                NETWORK_NAMES.get(self.backend.network, self.backend.network),
            )
        since = before.since if before.up is True else now
        return NodeState(up=True, since=since, checked_at=now, info=info)

    def _down(self, before: NodeState, reason: str, now: datetime) -> NodeState:
        if before.up is not False:
            self._retry_s = self.retry_initial_s  # each outage starts its own backoff
            log.warning(
                "lightning node unreachable: %s; payments are refused (nothing is charged) and "
                "Strom retries by itself, every %g s at first, then up to every %g s",
                reason,
                self.retry_initial_s,
                self.retry_max_s,
            )
            return replace(before, up=False, since=now, reason=reason, checked_at=now)
        if reason != before.reason:
            log.warning("lightning node still unreachable, now: %s", reason)
        return replace(before, reason=reason, checked_at=now)


def _duration(elapsed: timedelta) -> str:
    seconds = int(elapsed.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
