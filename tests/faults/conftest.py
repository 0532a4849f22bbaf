"""The fault tests run against a whole Strom (``tests/e2e/conftest.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lnurl_server.ratelimit import RateLimiter
from strom_lightning import NodeState, NodeWatch
from tests.e2e.conftest import Stack, running_stack


@pytest.fixture
async def stack(tmp_path: Path, ocpp_version: str) -> AsyncIterator[Stack]:
    """A whole Strom whose invoice rate limits let a hundred callers in at once, and whose
    lightning watch retries within a fraction of a second (5 s to 60 s in production)."""
    async with running_stack(tmp_path, ocpp_version=ocpp_version) as running:
        unlimited = RateLimiter(per_minute=10**9, burst=10**9)
        running.strom.front.per_client = running.strom.front.per_charger = unlimited
        fast_node_watch(running.strom.node)
        yield running


def fast_node_watch(node: NodeWatch) -> None:
    """Probe the node often, so a test waits on its recovery for milliseconds."""
    node.retry_initial_s, node.retry_max_s, node.check_every_s = 0.05, 0.2, 0.2


async def node_is(
    node: NodeWatch, *, up: bool, saying: str = "", within_s: float = 10.0
) -> NodeState:
    """Wait until the watch sees the node up (or down, for a reason ``saying`` this), woken by
    its own change events."""
    changed = asyncio.Event()

    async def listener(_state: NodeState) -> None:
        changed.set()

    node.on_change(listener)
    try:
        async with asyncio.timeout(within_s):
            while node.state.up is not up or saying not in node.state.reason:
                changed.clear()
                await changed.wait()
    finally:
        node.remove_listener(listener)
    return node.state
