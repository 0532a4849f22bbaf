"""Drivers and the charger by DM: commands both ways in NIP-04 and NIP-17, and session news."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import bech32
import pytest

from agent import nostr_sdk_adapter as sdk
from agent.relays import Inbound
from agent.store import Outgoing
from strom_core.ports import ChargerOnline
from strom_core.session import State
from strom_core.session_events import StopReason, TransactionStopped
from strom_nostr.discovery import dm_relay_list_template
from strom_nostr.dm import nip04_message, wrap_message
from strom_nostr.event import Event, sign_template
from strom_storage.db import Database
from strom_storage.outbox import OutboxStore
from tests.agent.conftest import CHARGER_ID, PUBLIC_URL, Person, World, build_world


def _nip04(world: World, person: Person, text: str, *, at: int | None = None) -> Event:
    now = int(world.clock.unix()) if at is None else at
    return nip04_message(person.secret, world.charger_pk, text, created_at=now)


def _lnurl_target(text: str) -> str:
    code = text.split("lightning:", 1)[1].split()[0].lower()
    hrp, words = bech32.bech32_decode(code)
    assert hrp == "lnurl"
    assert words is not None
    decoded = bech32.convertbits(words, 5, 8, False)
    assert decoded is not None
    return bytes(decoded).decode()


async def test_the_initiator_stops_their_session_over_nip04(world: World) -> None:
    opened = await world.charging_session(world.driver)
    dm = _nip04(world, world.driver, "stop")
    await world.driver.publish(dm)
    assert await world.outcome(dm.id) == "answered"
    text, scheme = await world.driver.next_dm()
    assert scheme == "nip04"
    assert "Stopping your session on connector 1" in text
    session = await world.sessions.get(opened.session_id)
    assert session.state is State.STOPPING
    assert session.stop_reason == StopReason.INITIATOR


async def test_the_initiator_stops_their_session_over_nip17_from_nostr_sdk(world: World) -> None:
    opened = await world.charging_session(world.driver)
    wrap = sdk.sdk_private_message(world.driver.secret, world.charger_pk, "/STOP")
    await world.driver.publish(wrap)
    assert await world.outcome(wrap.id) == "answered"
    text, scheme = await world.driver.next_dm()
    assert scheme == "nip17"  # answered in the scheme the driver used
    assert "Stopping" in text
    assert (await world.sessions.get(opened.session_id)).state is State.STOPPING


async def test_someone_else_cannot_stop_the_session(world: World) -> None:
    opened = await world.charging_session(world.driver)
    before = await world.sessions.get(opened.session_id)
    for event in (
        _nip04(world, world.stranger, "stop"),
        wrap_message(world.stranger.secret, world.charger_pk, "stop", now=int(world.clock.unix())),
    ):
        await world.stranger.publish(event)
        assert await world.outcome(event.id) == "answered"
        text, _ = await world.stranger.next_dm()
        assert text.startswith("Sorry, you have no charging session on this charger")
    after = await world.sessions.get(opened.session_id)
    assert after == before
    assert after.state is State.CHARGING


async def test_status_refund_and_help_for_the_driver(world: World) -> None:
    opened = await world.charging_session(world.driver)
    await world.driver.publish(_nip04(world, world.driver, "status"))
    text, _ = await world.driver.next_dm()
    assert text.startswith("Charging on connector 1:")
    await world.driver.publish(_nip04(world, world.driver, "refund"))
    text, _ = await world.driver.next_dm()
    assert "Claiming it stops the charge first" in text
    target = urlsplit(_lnurl_target(text))
    assert f"{target.scheme}://{target.netloc}" == PUBLIC_URL
    assert target.path == f"/lnurlw/{opened.session_id}"
    assert parse_qs(target.query)["secret"] == [opened.secret]
    await world.driver.publish(_nip04(world, world.driver, "help"))
    text, _ = await world.driver.next_dm()
    assert "stop - stop your charging session" in text
    await world.stranger.publish(_nip04(world, world.stranger, "refund"))
    text, _ = await world.stranger.next_dm()
    assert text == "You have no charging session on this charger."  # no link for strangers


async def test_replayed_and_stale_dms_do_nothing(world: World) -> None:
    opened = await world.charging_session(world.driver)
    dm = _nip04(world, world.driver, "status")
    await world.driver.publish(dm)
    assert await world.outcome(dm.id) == "answered"
    await world.driver.next_dm()
    world.charger.submit(Inbound(world.relay_url, dm))  # the same event again
    assert await world.outcome(dm.id) == "replay"
    now = int(world.clock.unix())
    old = _nip04(world, world.driver, "stop", at=now - 3600)
    future = _nip04(world, world.driver, "stop", at=now + 3600)
    stale_rumor = wrap_message(world.driver.secret, world.charger_pk, "stop", now=now - 3600)
    for event in (old, future, stale_rumor):
        world.charger.submit(Inbound(world.relay_url, event))
        assert await world.outcome(event.id) == "stale"
    await world.driver.no_dm()
    assert (await world.sessions.get(opened.session_id)).state is State.CHARGING


async def test_session_news_goes_to_the_zapper_over_nip04(world: World) -> None:
    opened = await world.charging_session(world.driver)
    await world.runner.drain()
    texts = [(await world.driver.next_dm())[0] for _ in range(2)]
    assert texts[0].startswith("Payment of 20,000 sat received.")
    assert f"{PUBLIC_URL}/s/{opened.session_id}?secret=" in texts[0]
    assert texts[1].startswith("Charging started on connector 1")
    await world.sessions.apply(opened.session_id, TransactionStopped(1000 + 4000, _at(world)))
    await world.runner.drain()
    text, scheme = await world.driver.next_dm()
    assert scheme == "nip04"
    assert text.startswith("Charging stopped (stopped at the charger).")  # words, not a code
    assert "Energy 4.000 kWh, cost 1,000 sat of 20,000 sat paid" in text
    assert urlsplit(_lnurl_target(text)).path == f"/lnurlw/{opened.session_id}"


def _at(world: World) -> datetime:
    return datetime.fromtimestamp(world.clock.unix(), UTC)


async def test_session_news_uses_nip17_when_the_driver_has_an_inbox(world: World) -> None:
    inbox = dm_relay_list_template([world.relay_url], created_at=int(world.clock.unix()))
    await world.driver.publish(sign_template(world.driver.secret, inbox))
    await world.charging_session(world.driver)
    await world.runner.drain()
    for _ in range(2):
        _text, scheme = await world.driver.next_dm()
        assert scheme == "nip17"


async def test_a_notification_run_twice_is_one_dm(world: World) -> None:
    opened, _ = await world.open_zap_session(world.driver)
    world.backend.mark_paid(opened.invoice.payment_hash)
    await world.payments.settle(opened.invoice.payment_hash)
    [row] = [r for r in await OutboxStore(world.db).due(_at(world)) if r.kind == "notify"]
    await world.runtime.on_notify(row)
    await world.runtime.on_notify(row)  # the outbox ran it again after a crash
    await world.driver.next_dm()
    await world.driver.no_dm()


async def test_a_crash_between_signing_and_publishing_sends_the_same_event(world: World) -> None:
    opened, _ = await world.open_zap_session(world.driver)
    world.backend.mark_paid(opened.invoice.payment_hash)
    await world.payments.settle(opened.invoice.payment_hash)
    [row] = [r for r in await OutboxStore(world.db).due(_at(world)) if r.kind == "notify"]
    store = world.runtime.services.store
    prepared = nip04_message(
        world.charger.key.secret,
        world.driver.pubkey,
        "prepared before the crash",
        created_at=int(world.clock.unix()),
    )
    await store.prepare(row.key, [Outgoing(prepared)], int(world.clock.unix()))
    await world.runtime.on_notify(row)
    text, _ = await world.driver.next_dm()
    assert text == "prepared before the crash"


async def test_lnurl_sessions_get_no_dms(world: World) -> None:
    opened = await world.payments.open_session(
        world.config.profile(CHARGER_ID),
        1,
        5_000_000,
        description_hash=bytes(32),
        initiator="lnurl",
    )
    world.backend.mark_paid(opened.invoice.payment_hash)
    await world.payments.settle(opened.invoice.payment_hash)
    await world.runner.drain()
    await world.driver.no_dm()


@pytest.fixture
async def fast_progress_world(
    tmp_path: Path, database: Database, relay_url: str
) -> AsyncIterator[World]:
    async for built in build_world(tmp_path, database, relay_url, progress_interval_s=60):
        yield built


async def test_progress_dms_while_charging(fast_progress_world: World) -> None:
    world = fast_progress_world
    await world.charging_session(world.driver)
    await world.runner.drain()
    for _ in range(2):
        await world.driver.next_dm()  # paid, started
    world.clock.offset += 61
    await world.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, _at(world)))  # wakes the agent
    text, _ = await world.driver.next_dm()
    assert text.startswith("Charging on connector 1: Energy 0.000 kWh")
