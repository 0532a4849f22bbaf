"""Stopping Strom always completes, and a part that would not finish is named in the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import pytest

from strom.app import Strom
from strom.shutdown import GRACE_S, run_until_stopped
from strom_storage.outbox import OutboxRow
from tests.e2e.conftest import running_stack

BOUND_S = 0.5


@pytest.mark.timeout(60)
async def test_stop_completes_within_the_bound_and_names_the_task_that_would_not_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An effect handler that ignores cancellation would hang the stop forever without it."""
    caplog.set_level(logging.INFO, logger="strom.app")
    entered = asyncio.Event()
    release = asyncio.get_running_loop().create_future()

    async def stubborn_remote_start(row: OutboxRow) -> None:
        entered.set()
        while not release.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(release)
        raise asyncio.CancelledError  # released at the end of the test: end as cancelled

    def bounded(strom: Strom) -> None:
        strom.shutdown_timeout_s = BOUND_S

    loop = asyncio.get_running_loop()
    async with running_stack(tmp_path, prepare=bounded) as stack:
        stack.strom.runner.handlers["remote_start"] = stubborn_remote_start
        status_url, _ = await stack.pay(1_500_000)
        await asyncio.wait_for(entered.wait(), 20)
        session_id = status_url.split("/s/")[1].split(".")[0]
        stopping_at = loop.time()
    stopped_in = loop.time() - stopping_at  # leaving the block sets stop and awaits serve

    try:
        assert stopped_in < BOUND_S + 2 * GRACE_S + 1
        reports = [r for r in caplog.records if r.name == "strom.shutdown"]
        stuck = [r.getMessage() for r in reports if f"'effects:{session_id}'" in r.getMessage()]
        assert stuck, [r.getMessage() for r in reports]
        assert all(r.levelname == "WARNING" for r in reports)
        assert "in stubborn_remote_start" in stuck[0]  # where it waits, not just its name
        assert "await asyncio.shield(release)" in stuck[0]
        # Cancelling what hung let the parts finish in order: the database was closed.
        assert not [r for r in reports if "ignore cancellation" in r.getMessage()]
        assert any(r.name == "strom.app" and r.getMessage() == "stopped" for r in caplog.records)
    finally:
        release.set_result(None)
        leftover = [t for t in asyncio.all_tasks() if t.get_name() == f"effects:{session_id}"]
        await asyncio.gather(*leftover, return_exceptions=True)


async def test_a_stop_without_stragglers_logs_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_stack(tmp_path) as stack:
        status_url, _ = await stack.pay(1_500_000)
        await stack.wait_state(status_url, "charging")

    assert not [r.getMessage() for r in caplog.records if r.name == "strom.shutdown"]


async def test_stop_returns_even_when_the_parts_themselves_ignore_cancellation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    release = asyncio.get_running_loop().create_future()

    async def parts_that_never_end() -> None:
        await stop.wait()
        while not release.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(release)

    serving = asyncio.create_task(
        run_until_stopped(parts_that_never_end(), stop, within_s=0.1, grace_s=0.1)
    )
    stop.set()
    try:
        async with asyncio.timeout(5):
            await serving
        messages = [r.getMessage() for r in caplog.records if r.name == "strom.shutdown"]
        assert any("'strom' still running" in m for m in messages)
        assert any("ignore cancellation (strom)" in m for m in messages)
    finally:
        release.set_result(None)
        leftover = [t for t in asyncio.all_tasks() if t.get_name() == "strom"]
        await asyncio.gather(*leftover, return_exceptions=True)


async def test_a_part_that_fails_while_serving_fails_serve() -> None:
    async def failing() -> None:
        raise RuntimeError("the settlement stream broke")

    with pytest.raises(RuntimeError, match="settlement stream broke"):
        await run_until_stopped(failing(), asyncio.Event(), within_s=1)
