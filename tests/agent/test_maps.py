"""Map and marketplace events of a charger: what goes out, when, and how often at most."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from agent.maps import DAY_S, MapsRecall, MapsSchedule, content_key
from strom_core.errors import RelayError
from strom_core.ports import ChargerOnline, ConnectorStatusChanged
from strom_nostr.discovery import (
    ChargerStatus,
    ConnectorInfo,
    ConnectorStatus,
    Location,
    Prices,
)
from strom_nostr.event import Event, EventTemplate
from strom_nostr.maps import Listing, listing_template
from strom_storage.db import Database
from tests.agent.conftest import (
    CHARGER_ID,
    PUBLIC_URL,
    WAIT_S,
    Clock,
    World,
    build_world,
    profile,
)

# --- the schedule over a simulated week (injected time, no sleeping) --------------------------

BASE = ChargerStatus(
    charger_id="cp-1",
    name="Farm shop",
    location=Location(47.3769, 8.5417, "Hofstrasse 1, Zürich"),
    connectors=(ConnectorInfo(1, "Type2", 11_000, ConnectorStatus.AVAILABLE),),
    prices=Prices(250_000),
    lud16="cp-1@charge.example",
    website="https://charge.example/c/cp-1",
)
START = 1_760_000_000
PER_DAY = 8
# two on the days of price changes, and hourly on the two quiet days after them
RESTARTS = (
    START + DAY_S + 7200,
    START + 2 * DAY_S + 3600,
    *(START + 2 * DAY_S + 3600 * hour for hour in range(2, 24)),
    START + 4 * DAY_S + 5400,
    *(START + 5 * DAY_S + 3600 * hour for hour in range(24)),
)


def _template(status: ChargerStatus, schedule: MapsSchedule, now: float) -> EventTemplate:
    listing = Listing(status, published_at=schedule.first_published_at(now))
    return listing_template(listing, created_at=int(now))


# The four states the seeded run was written with (availability is not in a listing's content;
# a fifth choice, reserved, would only reshuffle the seeded sequence of events).
_STATES = (
    ConnectorStatus.AVAILABLE,
    ConnectorStatus.CHARGING,
    ConnectorStatus.UNAVAILABLE,
    ConnectorStatus.FAULTED,
)


def _states(rng: random.Random) -> tuple[ConnectorInfo, ...]:
    return (replace(BASE.connectors[0], status=rng.choice(_STATES)),)


def _assert_within_the_daily_budget(times: list[float]) -> None:
    for start in times:
        in_window = sum(start <= t < start + DAY_S for t in times)
        # a restart forgets all but the newest publication of the day: at most one more run's
        # budget per restart, and only if the content changed (the test checks that)
        runs = 1 + sum(start <= r < start + DAY_S for r in RESTARTS)
        assert in_window <= PER_DAY * runs


def test_a_week_of_changes_stays_within_the_daily_bound_and_ends_on_the_newest_price() -> None:
    """Status every 30 min and on each of ~300 connector changes a day, prices changed hourly
    on two days, daily refreshes, relays reconnecting, restarts of Strom (two on busy days,
    one an hour on quiet ones): each charger publishes at most ``PER_DAY`` listings and
    handler pairs in any 24 hours of one run, a restart alone publishes nothing (the new
    process reads back what the relays hold), and the last price set is on the relays at the
    end."""
    rng = random.Random(7)
    schedule = MapsSchedule(per_day=PER_DAY)
    status = BASE
    listings: list[float] = []
    handlers: list[float] = []
    restarts = list(RESTARTS)
    published_price = -1
    on_relays: EventTemplate | None = None  # the newest listing, as a relay keeps it
    handlers_at: int | None = None
    after_restart: list[float] = []
    next_due = float("inf")
    now = float(START)
    refresh_at = float(START + DAY_S)
    while now < START + 7 * DAY_S:
        now += rng.uniform(1, 600)  # the next thing that happens
        if restarts and now >= restarts[0]:
            restarts.pop(0)
            schedule = MapsSchedule(per_day=PER_DAY)  # a new process ...
            schedule.recall(on_relays, handlers_at, now)  # ... reads back what relays hold
            next_due = now
            restarted = True
        else:
            restarted = False
        day = int((now - START) // DAY_S)
        if day in (1, 4) and int(now) % 3600 < 600:  # an operator playing with the tariff
            status = replace(status, prices=Prices(200_000 + rng.randrange(100) * 1000))
        status = replace(status, connectors=_states(rng))
        if now >= refresh_at or rng.random() < 0.01:  # daily refresh, or a relay came back
            schedule.refresh()
            refresh_at = now + DAY_S
        # the agent's decision points: every status publication and the maps deadline
        template = _template(status, schedule, now)
        news = (  # what would make a restart publish: a change, or a day-old version
            on_relays is None
            or content_key(template) != content_key(on_relays)
            or now - on_relays.created_at >= DAY_S
        )
        if schedule.listing_due(template, now):
            schedule.listing_published(template, now)
            listings.append(now)
            on_relays = template
            published_price = status.prices.energy_msat_per_kwh
            if restarted and not news:
                after_restart.append(now)
        if schedule.handlers_due(now):
            schedule.handlers_published(now)
            handlers.append(now)
            handlers_at = int(now)
        next_due = schedule.next_due(template, now)
        assert next_due >= now
    # the budget's deadline lets the last change out once its window opens
    if next_due != float("inf"):
        assert schedule.listing_due(_template(status, schedule, next_due), next_due)
        published_price = status.prices.energy_msat_per_kwh
    assert published_price == status.prices.energy_msat_per_kwh
    assert on_relays is not None
    # NIP-99: published_at is the first publication, through every restart
    assert ("published_at", str(int(listings[0]))) in on_relays.tags
    _assert_within_the_daily_budget(listings)
    _assert_within_the_daily_budget(handlers)
    assert after_restart == []  # 51 restarts: none published a listing the relays held
    assert len(listings) <= 7 * PER_DAY + PER_DAY
    assert len(handlers) <= 7 * 2  # unchanging: the daily refresh and a rare relay return
    assert len(listings) >= 7  # refreshed at least daily


def test_an_unchanged_listing_is_not_published_again() -> None:
    schedule = MapsSchedule(per_day=PER_DAY)
    now = float(START)
    template = _template(BASE, schedule, now)
    assert schedule.listing_due(template, now)
    schedule.listing_published(template, now)
    for minute in range(1, 24 * 60):  # a day of availability changes
        later = now + minute * 60
        busy = replace(BASE, connectors=_states(random.Random(minute)))
        assert not schedule.listing_due(_template(busy, schedule, later), later)
    assert schedule.first_published_at(now + DAY_S) == START  # NIP-99's first publication


def test_a_change_over_the_budget_waits_for_it_and_is_not_lost() -> None:
    schedule = MapsSchedule(per_day=2)
    now = float(START)
    schedule.handlers_published(now)
    for price in (1_000, 2_000):
        template = _template(replace(BASE, prices=Prices(price)), schedule, now)
        assert schedule.listing_due(template, now)
        schedule.listing_published(template, now)
        now += 60
    changed = _template(replace(BASE, prices=Prices(3_000)), schedule, now)
    assert not schedule.listing_due(changed, now)
    due = schedule.next_due(changed, now)
    assert due == START + DAY_S  # the first of the two leaves the window
    assert schedule.listing_due(changed, due)


# --- the agent publishes them -----------------------------------------------------------------


async def _until(check: Callable[[], Awaitable[Event | None]]) -> Event:
    async with asyncio.timeout(WAIT_S):
        while True:
            found = await check()
            if found is not None:
                return found
            await asyncio.sleep(0.05)


async def test_the_agent_publishes_listing_and_handler_events(world: World) -> None:
    async def listing_found() -> Event | None:
        events = await world.driver.fetch([{"kinds": [30402], "authors": [world.charger_pk]}])
        return events[0] if events else None

    listing = await _until(listing_found)
    assert listing.tag_values("d") == [CHARGER_ID]
    assert listing.tag_values("r") == [f"{PUBLIC_URL}/c/{CHARGER_ID}"]
    assert listing.tag_values("lud16") == ["cp-1@127.0.0.1:8080"]
    assert listing.tag_values("price")[0] == "250"
    handler = await world.latest(31990)
    assert handler.tag_values("k") == ["30522"]
    assert handler.tag_values("web") == [f"{PUBLIC_URL}/c/<bech32>"]
    recommendation = await world.latest(31989)
    assert recommendation.tag_values("a")[0] == f"31990:{world.charger_pk}:strom-charger-page"

    # availability changes go into the status event only
    now = datetime.now(UTC)
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, now))
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 1, "Charging", "NoError", now)
    )

    async def charging() -> Event | None:
        status = await world.latest(30522)
        return status if "charging" in status.tag_values("status") else None

    await _until(charging)
    assert (await world.latest(30402)).id == listing.id

    # a new price and name: a new version replaces it
    changed = profile().model_copy(
        update={
            "name": "Renamed shop",
            "tariff": profile().tariff.model_copy(update={"per_kwh_sat": Decimal(300)}),
        }
    )
    await world.runtime.apply_profile(changed)

    async def renamed() -> Event | None:
        latest = await world.latest(30402)
        return latest if latest.tag_values("price")[0] == "300" else None

    newer = await _until(renamed)
    assert newer.tag_values("title") == ["EV charging: Renamed shop"]
    assert newer.created_at > listing.created_at
    assert newer.tag_values("published_at") == listing.tag_values("published_at")


async def _maps_step_done(world: World) -> None:
    """Wait until the agent has made its first listing decision since it started."""
    async with asyncio.timeout(WAIT_S):
        await world.runtime.agent(CHARGER_ID).maps_decided.wait()


async def test_restarts_of_strom_do_not_publish_the_listing_again(
    tmp_path: Path, database: Database, relay_url: str
) -> None:
    """Real restarts against a real relay: five starts within a day, nothing changed, leave
    the first run's listing and handler events on the relay (same ids, same ``published_at``);
    the start a day later publishes them again (a refresh), keeping ``published_at``."""
    first: tuple[Event, Event, Event] | None = None
    for hours_ago in (30, 29, 28, 27, 26, 0):
        worlds: AsyncGenerator[World] = build_world(
            tmp_path, database, relay_url, clock=Clock(offset=-hours_ago * 3600)
        )
        world = await anext(worlds)
        try:
            await _maps_step_done(world)
            found = (
                await world.latest(30402),
                await world.latest(31990),
                await world.latest(31989),
            )
        finally:
            await worlds.aclose()
        if first is None:
            first = found
        elif hours_ago:
            assert [event.id for event in found] == [event.id for event in first]
        else:  # a day later: published again, still the same first publication
            assert all(
                new.created_at > old.created_at for new, old in zip(found, first, strict=True)
            )
            assert found[0].tag_values("published_at") == first[0].tag_values("published_at")
            assert found[0].content == first[0].content


async def test_a_start_reads_every_chargers_listing_back_in_a_few_requests() -> None:
    """250 agents asking at once: three requests of at most 100 keys; a relay error answers
    "nothing known" instead of failing the agents."""
    asked: list[list[str]] = []

    async def fetch(filters: Any) -> list[Event]:
        [only] = filters
        asked.append(only["authors"])
        if len(asked) == 3:
            raise RelayError("relay went away")
        return []

    recall = MapsRecall(fetch, batch_s=0.01)
    keys = [f"{n:064x}" for n in range(250)]
    answers = await asyncio.gather(*(recall.get(key) for key in keys))
    assert [len(authors) for authors in asked] == [100, 100, 50]
    assert sorted(key for authors in asked for key in authors) == sorted(keys)
    assert answers == [[]] * 250
