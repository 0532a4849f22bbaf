"""A charger is found on nostr: profile, relay lists and a status that follows the charger."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson

from strom_core.ports import ChargerOffline, ChargerOnline, ConnectorStatusChanged
from strom_nostr.discovery import ConnectorStatus, parse_status
from strom_nostr.event import Event, expiration
from strom_nostr.keys import encode_npub
from tests.agent.conftest import CHARGER_ID, WAIT_S, World, profile


def _now() -> datetime:
    return datetime.now(UTC)


async def test_profile_and_relay_lists_are_signed_by_the_chargers_own_key(world: World) -> None:
    profile = await world.latest(0)
    content = orjson.loads(profile.content)
    assert content["name"] == CHARGER_ID
    assert content["display_name"] == "Farm shop charger"
    assert content["lud16"] == "cp-1@127.0.0.1:8080"
    relay_list = await world.latest(10002)
    assert relay_list.tag_values("r") == [world.relay_url]
    inbox = await world.latest(10050)
    assert inbox.tag_values("relay") == [world.relay_url]
    assert world.runtime.pubkey(CHARGER_ID) == profile.pubkey
    assert world.runtime.pubkey("no-such-charger") is None
    key_file = world.config.storage.data_dir / "keys" / f"{CHARGER_ID}.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert encode_npub(profile.pubkey).startswith("npub1")


async def test_status_is_republished_on_every_change(world: World) -> None:
    first = parse_status(await world.latest(30522))
    assert {c.status for c in first.connectors} == {ConnectorStatus.UNAVAILABLE}  # never online
    assert first.lud16 == "cp-1@127.0.0.1:8080"
    assert first.prices.energy_msat_per_kwh == 250_000
    # The r tag is the charger's own page (prices, QR code), as docs/nostr.md says.
    assert (await world.latest(30522)).tag_values("r") == [f"http://127.0.0.1:8080/c/{CHARGER_ID}"]

    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 1, "Available", "NoError", _now())
    )
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 2, "Charging", "NoError", _now())
    )
    assert (await world.next_status()).accepted  # the burst is coalesced ...
    status = parse_status(await world.latest(30522))
    states = {c.id: c.status for c in status.connectors}
    if states[2] is not ConnectorStatus.CHARGING:  # ... into one or two publications
        await world.next_status()
        status = parse_status(await world.latest(30522))
        states = {c.id: c.status for c in status.connectors}
    assert states == {1: ConnectorStatus.AVAILABLE, 2: ConnectorStatus.CHARGING}
    assert status.created_at > first.created_at

    await world.runtime.on_ocpp_event(ChargerOffline(CHARGER_ID, _now(), "heartbeat lost"))
    await world.next_status()
    offline = parse_status(await world.latest(30522))
    assert {c.status for c in offline.connectors} == {ConnectorStatus.UNAVAILABLE}
    assert offline.created_at > status.created_at


async def test_a_status_that_does_not_change_is_not_republished(world: World) -> None:
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))  # all still unknown
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 1, "Preparing", "NoError", _now())
    )
    await world.next_status()
    # "Charging" folds to the same published state as "Preparing"
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 1, "Charging", "NoError", _now())
    )
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 2, "Faulted", "GroundFailure", _now())
    )
    await world.next_status()  # only the fault is news
    status = parse_status(await world.latest(30522))
    states = {c.id: c.status for c in status.connectors}
    assert states == {1: ConnectorStatus.CHARGING, 2: ConnectorStatus.FAULTED}
    assert world.statuses.empty()


async def test_status_is_refreshed_before_it_expires(world: World) -> None:
    before = await world.latest(30522)
    expires = expiration(before)
    assert expires is not None
    ttl = world.runtime.services.settings.status_ttl_s
    assert expires - before.created_at == ttl
    world.clock.offset += ttl / 2 + 1  # past the refresh deadline
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))  # wakes the agent
    await world.next_status()
    after = await world.latest(30522)
    assert after.created_at >= before.created_at + ttl // 2
    after_expires = expiration(after)
    assert after_expires is not None
    assert after_expires > expires


async def test_a_changed_profile_wins_even_within_the_second_of_the_last_one(
    world: World,
) -> None:
    first = await world.latest(0)
    # The clock stands in the second the profile was published in: a naive created_at would
    # tie, and a relay would keep whichever version has the lower id.
    world.clock.offset = first.created_at - time.time()
    renamed = profile().model_copy(update={"name": "Renamed shop"})
    await world.runtime.apply_profile(renamed)

    async def published() -> Event:
        while True:
            latest = await world.latest(0)
            if orjson.loads(latest.content)["display_name"] == "Renamed shop":
                return latest
            await asyncio.sleep(0.05)

    latest = await asyncio.wait_for(published(), WAIT_S)
    assert latest.created_at > first.created_at
    status = parse_status(await world.latest(30522))
    assert status.name == "Renamed shop"


async def _connectors(world: World) -> dict[int, tuple[ConnectorStatus, int | None]]:
    status = parse_status(await world.latest(30522))
    return {c.id: (c.status, c.reserved_until) for c in status.connectors}


async def test_a_reserved_connector_is_published_reserved_with_its_end(world: World) -> None:
    """The charger's own ``Reserved`` shows the connector reserved; a reservation Strom holds
    adds its end time (and shows it reserved while the charger still says Available); the
    status goes out again when the reservation begins and when it ends, at its end time even
    if nobody says so."""
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 1, "Available", "NoError", _now())
    )
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 2, "Reserved", "NoError", _now())
    )
    await world.next_status()
    if (await _connectors(world))[2][0] is not ConnectorStatus.RESERVED:
        await world.next_status()
    assert await _connectors(world) == {
        1: (ConnectorStatus.AVAILABLE, None),
        2: (ConnectorStatus.RESERVED, None),  # reserved at the charger: no end known
    }
    until = int(world.clock.unix()) + 1800
    world.charger.note_reservation(1, "session-a", until)
    await world.next_status()
    assert await _connectors(world) == {
        1: (ConnectorStatus.RESERVED, until),  # the charger has not said Reserved yet
        2: (ConnectorStatus.RESERVED, None),
    }
    await world.runtime.on_ocpp_event(  # the charger confirms: nothing new to publish
        ConnectorStatusChanged(CHARGER_ID, 1, "Reserved", "NoError", _now())
    )
    world.charger.note_reservation(1, "someone-else", None)  # not the holder: no change
    world.charger.note_reservation(2, "session-b", until + 60)
    await world.next_status()
    assert await _connectors(world) == {
        1: (ConnectorStatus.RESERVED, until),
        2: (ConnectorStatus.RESERVED, until + 60),
    }
    world.charger.note_reservation(2, "session-b", None)  # ended (the payer started, ...)
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 2, "Preparing", "NoError", _now())
    )
    await world.next_status()
    if (await _connectors(world))[2][0] is not ConnectorStatus.CHARGING:
        await world.next_status()
    assert (await _connectors(world))[2] == (ConnectorStatus.CHARGING, None)
    # The end time passes; the charger's Available follows. The reservation is dropped at
    # its end even before anyone says so.
    await world.runtime.on_ocpp_event(
        ConnectorStatusChanged(CHARGER_ID, 1, "Available", "NoError", _now())
    )
    world.clock.offset += 1801
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _now()))  # wakes the agent
    await world.next_status()
    assert (await _connectors(world))[1] == (ConnectorStatus.AVAILABLE, None)
    assert not world.charger.holds_reservation("session-a")
