"""The supervisor restarts a failing agent with backoff and owns every task it starts."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from agent.supervisor import Supervisor


class FlakyAgent:
    """Fails ``failures`` times, then runs until cancelled."""

    def __init__(self, charger_id: str, failures: int) -> None:
        self.charger_id = charger_id
        self.failures = failures
        self.runs = 0
        self.running = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError(f"boom {self.runs}")
        self.running.set()
        await asyncio.Event().wait()


async def test_a_failed_agent_is_restarted_with_growing_backoff(
    expect_errors: list[logging.LogRecord], caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    flaky = FlakyAgent("cp-1", failures=3)
    steady = FlakyAgent("cp-2", failures=0)
    supervisor = Supervisor(
        [flaky, steady],  # type: ignore[list-item]
        restart_backoff_s=1.0,
        max_restart_backoff_s=3.0,
        sleep=sleep,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    async with asyncio.timeout(5):
        await flaky.running.wait()
        await steady.running.wait()
    assert waits == [1.0, 2.0, 3.0]
    assert supervisor.restarts == {"cp-1": 3}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        f"charger cp-1: agent failed (restart {n} in {w:.1f} s)"
        for n, w in ((1, 1.0), (2, 2.0), (3, 3.0))
    ]
    assert all(record.exc_info for record in errors)
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert steady.runs == 1


def test_two_agents_for_one_charger_are_refused() -> None:
    agent: Any = FlakyAgent("cp-1", 0)
    supervisor = Supervisor([agent])
    with pytest.raises(ValueError, match="cp-1"):
        supervisor.add(agent)
    assert supervisor.get("cp-1") is agent
    assert len(supervisor) == 1
