"""A flood of DMs from strangers: bounded replies and claims; operators and drivers still heard.

And the other half of bounded growth for DMs: a claim swept by retention is not a way back in,
because a replay that old is refused for its age.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.nostr_sdk_adapter import SdkLocalRelay
from agent.relays import Inbound
from strom_nostr.dm import nip04_message, wrap_message
from strom_nostr.event import Event
from strom_nostr.keys import generate_secret_key
from strom_storage.db import Database
from strom_storage.retention import Retention, RetentionPolicy
from strom_storage.schema import nostr_events
from tests.agent.conftest import CHARGER_ID, World, build_world

FLOOD = 10_000
BURST = 10  # AgentSettings.stranger_dm_burst
WAIT_S = 120.0


@pytest.fixture
async def sdk_world(tmp_path: Path, database: Database) -> AsyncIterator[World]:
    """A world on the in-process relay only: these DMs go straight to the agent's queue."""
    relay = SdkLocalRelay()
    url = await relay.start()
    try:
        async for built in build_world(tmp_path, database, url):
            yield built
    finally:
        relay.shutdown()


@pytest.fixture
async def small_unwrap_world(tmp_path: Path, database: Database) -> AsyncIterator[World]:
    relay = SdkLocalRelay()
    url = await relay.start()
    settings = {"gift_wrap_burst": 50, "gift_wraps_per_minute": 60}
    try:
        async for built in build_world(tmp_path, database, url, **settings):
            yield built
    finally:
        relay.shutdown()


def _nip04(world: World, secret: bytes, text: str, at: int | None = None) -> Event:
    now = int(world.clock.unix()) if at is None else at
    return nip04_message(secret, world.charger_pk, text, created_at=now)


async def _outcomes(world: World, count: int) -> dict[str, str]:
    """What became of the next ``count`` events the agent handled, by event id."""
    seen: dict[str, str] = {}
    async with asyncio.timeout(WAIT_S):
        while len(seen) < count:
            _charger, event_id, outcome = await world.outcomes.get()
            seen[event_id] = outcome
    return seen


async def _claims(db: Database) -> int:
    async with db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(nostr_events)) or 0)


async def _replies_on_relay(world: World) -> int:
    events = await world.driver.fetch([{"kinds": [4], "authors": [world.charger_pk]}])
    return len(events)


async def test_a_flood_from_fresh_keys_gets_few_replies_while_operator_and_driver_are_answered(
    sdk_world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world = sdk_world
    await world.charging_session(world.driver)  # the driver paid: not a stranger
    claims_before = await _claims(world.db)
    started = time.monotonic()
    flood = [_nip04(world, generate_secret_key(), "help") for _ in range(FLOOD)]
    admin_dm = _nip04(world, world.admin.secret, "status")
    driver_dm = _nip04(world, world.driver.secret, "status")
    caplog.set_level(logging.WARNING, logger="agent.budget")
    for index, event in enumerate(flood):
        world.charger.submit(Inbound(world.relay_url, event))
        if index == FLOOD // 2:  # mid-flood: 5,000 strangers' DMs queued before them
            world.charger.submit(Inbound(world.relay_url, admin_dm))
            world.charger.submit(Inbound(world.relay_url, driver_dm))
    outcomes = await _outcomes(world, FLOOD + 2)
    elapsed_min = (time.monotonic() - started) / 60
    assert outcomes[admin_dm.id] == "answered"
    assert outcomes[driver_dm.id] == "answered"
    assert (await world.admin.next_dm(WAIT_S))[0]  # the answer reached the operator's client
    assert (await world.driver.next_dm(WAIT_S))[0]
    answered = sum(outcomes[event.id] == "answered" for event in flood)
    # The burst, plus one per minute the test took (60 an hour).
    assert BURST <= answered <= BURST + 1 + int(elapsed_min)
    assert sum(outcomes[event.id] == "over-budget" for event in flood) == FLOOD - answered
    assert world.runtime.services.budget.dropped[CHARGER_ID] == FLOOD - answered
    # Claims and signed replies: the strangers' few, the operator's and the driver's.
    assert await _claims(world.db) - claims_before == answered + 2
    assert await _replies_on_relay(world) == answered + 2
    # Counted, and logged once for the whole minute, not once per DM.
    drops = [r for r in caplog.records if "dropped unread" in r.getMessage()]
    assert 1 <= len(drops) <= 1 + int(elapsed_min)
    assert CHARGER_ID in drops[0].getMessage()


async def test_strangers_are_answered_again_at_the_budgets_pace(sdk_world: World) -> None:
    world = sdk_world
    flood = [_nip04(world, generate_secret_key(), "help") for _ in range(BURST + 5)]
    for event in flood:
        world.charger.submit(Inbound(world.relay_url, event))
    outcomes = await _outcomes(world, len(flood))
    assert [outcomes[event.id] for event in flood] == ["answered"] * BURST + ["over-budget"] * 5
    world.clock.offset += 120  # two minutes later: two more (60 an hour)
    later = [_nip04(world, generate_secret_key(), "help") for _ in range(3)]
    for event in later:
        world.charger.submit(Inbound(world.relay_url, event))
    outcomes = await _outcomes(world, len(later))
    assert [outcomes[event.id] for event in later] == ["answered", "answered", "over-budget"]


async def test_a_gift_wrap_flood_is_mostly_dropped_unopened(small_unwrap_world: World) -> None:
    world = small_unwrap_world
    now = int(world.clock.unix())
    flood = [
        wrap_message(generate_secret_key(), world.charger_pk, "help", now=now) for _ in range(500)
    ]
    claims_before = await _claims(world.db)
    started = time.monotonic()
    for event in flood:
        world.charger.submit(Inbound(world.relay_url, event))
    outcomes = await _outcomes(world, len(flood))
    elapsed_s = time.monotonic() - started
    counted = {name: list(outcomes.values()).count(name) for name in set(outcomes.values())}
    # 50 unwrapped at once (plus one a second while the test runs), 10 of them answered.
    assert counted["answered"] == BURST
    assert 50 - BURST <= counted["over-budget"] <= 50 - BURST + 1 + int(elapsed_s)
    assert counted["not-unwrapped"] == 500 - counted["answered"] - counted["over-budget"]
    assert await _claims(world.db) - claims_before == BURST


async def test_a_dm_replayed_after_its_claim_was_swept_is_refused_as_stale(
    sdk_world: World,
) -> None:
    world = sdk_world
    settings = world.runtime.services.settings
    windows = settings.claim_windows_s()
    retention = Retention(world.db, RetentionPolicy(claim_windows_s=windows))
    received = world.clock.unix()
    # Dated as far ahead as the clock skew allows: the last DM a replay could reach.
    edge = _nip04(world, world.driver.secret, "status", at=int(received) + settings.max_future_s)
    wrapped = wrap_message(world.driver.secret, world.charger_pk, "status", now=int(received))
    for event in (edge, wrapped):
        world.charger.submit(Inbound(world.relay_url, event))
        assert await _outcomes(world, 1) == {event.id: "answered"}

    async def replay_at(after_s: float, event: Event) -> str:
        world.clock.offset = received + after_s - time.time()
        await retention.sweep(datetime.fromtimestamp(world.clock.unix(), UTC))
        world.charger.submit(Inbound(world.relay_url, event))
        return (await _outcomes(world, 1))[event.id]

    assert await replay_at(windows[4] - 30, edge) == "replay"  # claim kept: refused as seen
    assert await replay_at(windows[4] + 30, edge) == "stale"  # claim swept: refused for its age
    # A gift wrap's rumor is refused for its age as early; its claim is kept two days longer,
    # until the outer check alone refuses the replay, before unwrapping it.
    assert await replay_at(windows[1059] + 30, wrapped) == "stale"
    assert await _claims(world.db) == 0


async def _exhaust_strangers_budget(world: World) -> None:
    strangers = [_nip04(world, generate_secret_key(), "help") for _ in range(BURST + 1)]
    for event in strangers:
        world.charger.submit(Inbound(world.relay_url, event))
    outcomes = await _outcomes(world, len(strangers))
    assert outcomes[strangers[-1].id] == "over-budget"


async def test_a_driver_who_pays_during_a_flood_is_answered_within_seconds(
    sdk_world: World,
) -> None:
    world = sdk_world
    await _exhaust_strangers_budget(world)
    await world.charging_session(world.driver)  # paid just now, another part of Strom
    world.clock.offset += 3  # the agents look for new payers at most every 2 s
    dm = _nip04(world, world.driver.secret, "status")
    world.charger.submit(Inbound(world.relay_url, dm))
    assert (await _outcomes(world, 1))[dm.id] == "answered"


async def test_a_payer_of_long_ago_is_a_stranger_again(sdk_world: World) -> None:
    world = sdk_world
    await world.charging_session(world.driver)
    world.clock.offset += 31 * 86_400  # the session last changed a month ago
    await _exhaust_strangers_budget(world)
    dm = _nip04(world, world.driver.secret, "status")
    world.charger.submit(Inbound(world.relay_url, dm))
    assert (await _outcomes(world, 1))[dm.id] == "over-budget"
