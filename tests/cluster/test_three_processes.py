"""Three ``strom run --cluster`` processes on one PostgreSQL: sessions paid at any process start
on the right charger wherever it is connected; a killed process's chargers move to the others
and nothing paid is lost or refunded twice; a rolling restart under payments loses nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.trio import Trio

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHARGERS = ["cp-a", "cp-b", "cp-c"]


@pytest.fixture
async def trio(tmp_path: Path, cluster_url: str) -> AsyncIterator[Trio]:
    trio = Trio(tmp_path, cluster_url, CHARGERS)
    trio.setup()
    try:
        await trio.start()
        yield trio
    finally:
        await trio.aclose()


async def test_a_session_paid_at_any_process_starts_on_its_charger_elsewhere(trio: Trio) -> None:
    for index, charger_id in enumerate(CHARGERS):
        trio.connect(charger_id, index)  # cp-a on process 1, cp-b on 2, cp-c on 3
    await trio.online_everywhere(CHARGERS)
    # Each charger is paid for at a process that does not hold its connection.
    drivers = [
        trio.driver(charger_id, (index + 1) % 3) for index, charger_id in enumerate(CHARGERS)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(d.story() for d in drivers)), 90)
    except Exception:
        print(trio.logs())
        raise
    finally:
        for driver in drivers:
            await driver.aclose()
    for charger_id in CHARGERS:
        sim = trio.chargers[charger_id]
        started = [c for c in sim.received_calls if c.action == "RemoteStartTransaction"]
        assert len(started) == 1, (charger_id, [c.action for c in sim.received_calls])
    assert await trio.drained()
    assert await trio.check() == []
