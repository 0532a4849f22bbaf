"""The charger's nostr status across a restart of Strom: reconnecting is not offline.

The database says what Strom knew when it stopped: the charger was connected, connector 1
``Available``, connector 2 ``Charging``. At start the chargers that were connected get their
reconnect grace (:meth:`ChargerStore.begin_reconnect_grace`), then the agents start. During the
grace the status keeps those states (a map does not flash every charger offline at each
restart); a charger that comes back changes nothing on the map; one that does not is published
``unavailable`` when its grace ends, by the agent's own timer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from strom_core.ports import ChargerLink, ChargerOnline, ConnectorStatusChanged
from strom_nostr.discovery import ConnectorStatus, parse_status
from strom_nostr.dm import nip04_message
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from tests.agent.conftest import CHARGER_ID, World, build_world, profile

GRACE_S = 60
KNOWN = {1: ConnectorStatus.AVAILABLE, 2: ConnectorStatus.CHARGING}
GONE = {1: ConnectorStatus.UNAVAILABLE, 2: ConnectorStatus.UNAVAILABLE}


@pytest.fixture
async def restarted(tmp_path: Path, database: Database, relay_url: str) -> AsyncIterator[World]:
    """The agents of a Strom that was stopped while the charger was connected, just started."""
    now = datetime.now(UTC)
    chargers = ChargerStore(database)
    await chargers.sync((profile(),))
    await chargers.set_online(CHARGER_ID, True, now)
    await chargers.set_status(CHARGER_ID, 1, "Available", "NoError", now)
    await chargers.set_status(CHARGER_ID, 2, "Charging", "NoError", now)
    assert await chargers.begin_reconnect_grace(now, GRACE_S) == [CHARGER_ID]
    async for world in build_world(tmp_path, database, relay_url):
        yield world


async def states(world: World) -> dict[int, ConnectorStatus]:
    status = parse_status(await world.latest(30522))
    return {c.id: c.status for c in status.connectors}


async def wake(world: World) -> None:
    """An input that changes nothing (the same status again): the agent runs its timers."""
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 2, "Charging", "NoError", datetime.now(UTC))
    )


async def handled(world: World) -> None:
    """Return once the agent has handled every input given to it so far (it is one actor)."""

    async def nothing() -> None:
        return None

    await world.charger.call(nothing)


async def test_during_the_grace_the_status_keeps_the_connectors_last_states(
    restarted: World,
) -> None:
    world = restarted
    assert await states(world) == KNOWN  # not "unavailable" for a restart of Strom
    assert world.charger.link is ChargerLink.RECONNECTING
    # The operator is told the truth: reconnecting, no payments until it is back.
    dm = nip04_message(
        world.admin.secret, world.charger_pk, "status", created_at=int(world.clock.unix())
    )
    await world.admin.publish(dm)
    assert await world.outcome(dm.id) == "answered"
    answer, _ = await world.admin.next_dm()
    assert "reconnecting after a restart of Strom (no payments until back)" in answer


async def test_a_charger_not_back_when_its_grace_ends_is_published_unavailable(
    restarted: World,
) -> None:
    world = restarted
    assert await states(world) == KNOWN
    world.clock.offset += GRACE_S + 1
    await wake(world)
    assert (await world.next_status()).accepted
    assert await states(world) == GONE
    assert world.charger.link is ChargerLink.OFFLINE


async def test_a_charger_back_within_its_grace_stays_as_it_was_on_the_map(
    restarted: World,
) -> None:
    world = restarted
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, datetime.now(UTC)))
    await handled(world)
    assert world.charger.link is ChargerLink.ONLINE
    world.clock.offset += GRACE_S + 1  # the grace would be over: nothing happens
    await wake(world)
    await handled(world)
    assert world.charger.link is ChargerLink.ONLINE
    assert await states(world) == KNOWN
    assert world.statuses.empty()  # no status was published: nothing changed on the map


async def test_without_a_grace_a_restart_shows_the_charger_unavailable_at_once(
    tmp_path: Path, database: Database, relay_url: str
) -> None:
    now = datetime.now(UTC)
    chargers = ChargerStore(database)
    await chargers.sync((profile(),))
    await chargers.set_online(CHARGER_ID, True, now)
    await chargers.set_status(CHARGER_ID, 1, "Available", "NoError", now)
    assert await chargers.begin_reconnect_grace(now, 0) == []  # ocpp.reconnect_grace_s = 0
    async for world in build_world(tmp_path, database, relay_url):
        assert world.charger.link is ChargerLink.OFFLINE
        assert await states(world) == GONE
