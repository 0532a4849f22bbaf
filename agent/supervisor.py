"""The supervisor: runs every agent as one task of one TaskGroup, restarting failed ones.

Theory of operation: each agent's task is a supervision loop around :meth:`Agent.run`. When an
agent raises, the loop logs the exception with the charger id and runs it again after a backoff
that doubles from ``restart_backoff_s`` up to ``max_restart_backoff_s`` (and starts again from
the bottom once an agent has run for a minute). The agent's queue survives a restart, so only
the input that failed is lost, and its caller (if any) got the exception. Cancellation (the
service stopping) ends every loop. No task exists outside the TaskGroup; the supervisor keeps
a reference to each one. An agent may be added or removed while the supervisor runs (a process
of a cluster gains or loses a charger's agent lease).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from agent.agent import Agent
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = ["Supervisor"]

log = logging.getLogger(__name__)

_HEALTHY_AFTER_S = 60.0


class Supervisor:
    """Runs agents and restarts the ones that fail.

    Args:
        agents: the agents to run.
        restart_backoff_s: the first wait before a restart.
        max_restart_backoff_s: the longest wait.
        sleep: how to wait (injected for tests).
        clock: the clock (its monotonic time tells a healthy run from a failing one).
    """

    def __init__(
        self,
        agents: Iterable[Agent] = (),
        *,
        restart_backoff_s: float = 1.0,
        max_restart_backoff_s: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._agents: dict[str, Agent] = {}
        self._group: asyncio.TaskGroup | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        for agent in agents:
            self.add(agent)
        self._backoff_s = restart_backoff_s
        self._max_backoff_s = max_restart_backoff_s
        self._sleep = sleep
        self._clock = clock
        self.restarts: dict[str, int] = {}

    def add(self, agent: Agent) -> None:
        """Add an agent; while :meth:`run` runs, it starts at once.

        Raises:
            ValueError: an agent for that charger exists already.
        """
        if agent.charger_id in self._agents:
            raise ValueError(f"an agent for {agent.charger_id} exists already")
        self._agents[agent.charger_id] = agent
        if self._group is not None:
            self._start(self._group, agent)

    async def remove(self, charger_id: str) -> Agent | None:
        """Stop a charger's agent (its task is cancelled and awaited) and forget it.

        Returns:
            The agent, or None when none ran for that charger.
        """
        agent = self._agents.pop(charger_id, None)
        task = self._tasks.pop(charger_id, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])  # our own cancellation still propagates
        self.restarts.pop(charger_id, None)
        return agent

    def _start(self, group: asyncio.TaskGroup, agent: Agent) -> None:
        self._tasks[agent.charger_id] = group.create_task(
            self._supervise(agent), name=f"agent-{agent.charger_id}"
        )

    def get(self, charger_id: str) -> Agent | None:
        """The agent of a charger, or None."""
        return self._agents.get(charger_id)

    def __len__(self) -> int:
        return len(self._agents)

    @property
    def agents(self) -> dict[str, Agent]:
        """Every agent by charger id."""
        return dict(self._agents)

    async def run(self, stop: asyncio.Event) -> None:
        """Run every agent until ``stop`` is set; then cancel them all and return."""
        try:
            async with asyncio.TaskGroup() as group:
                for agent in self._agents.values():
                    self._start(group, agent)
                self._group = group
                await stop.wait()
                self._group = None
                for task in self._tasks.values():
                    task.cancel()
        finally:
            self._group = None
            self._tasks.clear()

    async def _supervise(self, agent: Agent) -> None:
        delay = self._backoff_s
        while True:
            started = self._clock.monotonic()
            try:
                await agent.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:  # the supervisor is where any failure of an agent ends up
                self.restarts[agent.charger_id] = self.restarts.get(agent.charger_id, 0) + 1
                if self._clock.monotonic() - started > _HEALTHY_AFTER_S:
                    delay = self._backoff_s
                log.exception(
                    "charger %s: agent failed (restart %d in %.1f s)",
                    agent.charger_id,
                    self.restarts[agent.charger_id],
                    delay,
                )
            await self._sleep(delay)
            delay = min(delay * 2, self._max_backoff_s)
