"""Reservations by DM: ``reserve`` is answered with an invoice, only the payer starts or cancels.

A charger whose tariff takes reservations (a flat fee plus a fee per minute, half of the fee
kept when the payer does not start): the driver DMs ``reserve 30``, pays the invoice in the
answer, gets "reserved until HH:MM UTC", and the status shows the connector reserved with that
end. ``start`` and ``cancel`` from anyone but the payer change nothing.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from strom_core.config import ProfileConfig, TariffConfig
from strom_core.ports import ChargerOnline, ConnectorStatusChanged
from strom_core.session import Session, State
from strom_lightning import decode_invoice
from strom_nostr.discovery import ConnectorStatus, parse_status
from strom_nostr.dm import nip04_message
from strom_storage.db import Database
from strom_storage.schema import sessions
from tests.agent.conftest import CHARGER_ID, Person, World, build_world, profile

FEE_MSAT = 1_000_000 + 20_000 * 30  # flat 1000 sat + 20 sat a minute, for 30 minutes


def reserving_profile() -> ProfileConfig:
    base = profile()
    tariff = TariffConfig(
        per_kwh_sat=Decimal(250),
        min_prepay_sat=Decimal(1000),
        reservation_fee_sat=Decimal(1000),
        reservation_fee_per_minute_sat=Decimal(20),
        reservation_max_minutes=60,
        reservation_kept_percent=50,
    )
    return base.model_copy(update={"tariff": tariff})


@pytest.fixture
async def world(tmp_path: Path, database: Database, relay_url: str) -> AsyncIterator[World]:
    async for built in build_world(
        tmp_path,
        database,
        relay_url,
        charger_profile=reserving_profile(),
    ):
        now = datetime.now(UTC)
        await built.runtime.on_ocpp_event(ChargerOnline(CHARGER_ID, now))
        for connector in (1, 2):
            await built.chargers.set_status(CHARGER_ID, connector, "Available", "NoError", now)
            await built.runtime.on_ocpp_event(
                ConnectorStatusChanged(CHARGER_ID, connector, "Available", "NoError", now)
            )
        built.payments.forget_view()
        await built.next_status()
        yield built


async def _ask(world: World, person: Person, text: str) -> str:
    event = nip04_message(person.secret, world.charger_pk, text, created_at=int(world.clock.unix()))
    await person.publish(event)
    assert await world.outcome(event.id) == "answered"
    answer, _ = await person.next_dm()
    return answer


async def _session_count(world: World) -> int:
    async with world.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(sessions)) or 0)


async def _reserved_by_dm(world: World, person: Person, text: str = "reserve 30") -> Session:
    """The person asks for a reservation by DM and pays the invoice of the answer."""
    answer = await _ask(world, person, text)
    match = re.search(r"lightning:(\S+)", answer)
    assert match is not None, answer
    invoice = decode_invoice(match.group(1))
    assert invoice.amount_msat == FEE_MSAT
    world.backend.mark_paid(invoice.payment_hash)
    assert await world.payments.settle(invoice.payment_hash)
    async with world.db.reader() as conn:
        session_id = await conn.scalar(
            select(sessions.c.id).where(sessions.c.initiator_pubkey == person.pubkey)
        )
    session = await world.sessions.get(str(session_id))
    assert session.state is State.RESERVED
    return session


async def _connector_states(world: World) -> dict[int, tuple[ConnectorStatus, int | None]]:
    status = parse_status(await world.latest(30522))
    return {c.id: (c.status, c.reserved_until) for c in status.connectors}


async def test_a_dm_reservation_is_an_invoice_then_a_reserved_connector(world: World) -> None:
    """``reserve 30`` is answered with the terms and an invoice of the fee; once paid, the
    charger is asked to hold the connector for the session's idTag, the payer is told until
    when, and the status shows the connector reserved with that end."""
    answer = await _ask(world, world.driver, "reserve 30")
    assert answer.startswith(
        "Reservation of connector 1 at Farm shop charger for 30 min: 1,600 sat "
        "(reservation fee 1,600 sat)."
    )
    assert "50 % of the fee (800 sat) is kept" in answer
    match = re.search(r"lightning:(\S+)", answer)
    assert match is not None
    invoice = decode_invoice(match.group(1))
    world.backend.mark_paid(invoice.payment_hash)
    assert await world.payments.settle(invoice.payment_hash)
    async with world.db.reader() as conn:
        row = (await conn.execute(select(sessions))).one()
    assert (row.initiator, row.initiator_pubkey, row.reserve_minutes) == (
        "dm",
        world.driver.pubkey,
        30,
    )
    session = await world.sessions.get(row.id)
    assert session.state is State.RESERVED
    assert session.reserved_until is not None
    await world.runner.drain()
    [call] = world.reservations.calls
    assert call[:3] == ("reserve_now", CHARGER_ID, "1")
    assert call[5] == session.id_tag
    text, _ = await world.driver.next_dm()
    assert text.startswith(
        f"Connector 1 is reserved for you until {session.reserved_until:%H:%M} UTC. "
        "Reply start when your car is plugged in, or cancel to free it"
    )
    until = int(session.reserved_until.timestamp())
    states = await _connector_states(world)
    while states[1] != (ConnectorStatus.RESERVED, until):
        await world.next_status()
        states = await _connector_states(world)
    assert states[2] == (ConnectorStatus.AVAILABLE, None)
    answer = await _ask(world, world.driver, "status")
    assert answer.startswith("Connector 1 is reserved for you until")


async def test_only_the_payer_starts_a_reservation(world: World) -> None:
    session = await _reserved_by_dm(world, world.driver)
    answer = await _ask(world, world.stranger, "start")
    assert answer.startswith("You have no reservation on this charger")
    answer = await _ask(world, world.stranger, "cancel")
    assert answer.startswith("You have no reservation on this charger")
    assert (await world.sessions.get(session.id)).state is State.RESERVED
    answer = await _ask(world, world.driver, "stop")  # not charging yet: says what to do
    assert "reply start to charge, or cancel to free it" in answer
    answer = await _ask(world, world.driver, "start")
    assert answer.startswith("Starting connector 1: plug in your car")
    started = await world.sessions.get(session.id)
    assert started.state is State.PAID
    assert started.paid_msat == FEE_MSAT  # the fee is the charging budget
    states = await _connector_states(world)
    while states[1][0] is ConnectorStatus.RESERVED:  # the reservation is over: published
        await world.next_status()
        states = await _connector_states(world)
    answer = await _ask(world, world.driver, "start")
    assert answer.startswith("You have no reservation on this charger")


async def test_the_payer_cancels_and_the_tariffs_share_of_the_fee_is_kept(world: World) -> None:
    session = await _reserved_by_dm(world, world.driver)
    await world.runner.drain()
    await world.driver.next_dm()  # reserved until ...
    answer = await _ask(world, world.driver, "cancel")
    assert answer == (
        "Reservation of connector 1 cancelled (50 % of the fee (800 sat) is kept); "
        "800 sat is refundable: send refund for your link."
    )
    cancelled = await world.sessions.get(session.id)
    assert (cancelled.consumed_msat, cancelled.refundable_msat) == (800_000, 800_000)
    assert cancelled.stop_reason == "reservation cancelled"
    await world.runner.drain()
    assert world.reservations.calls[-1] == (
        "cancel_reservation",
        CHARGER_ID,
        str(session.reservation_id),
    )
    text, _ = await world.driver.next_dm()
    assert text.startswith(
        "Your reservation ended (reservation cancelled): 800 sat of the fee kept."
    )
    assert "800 sat is refundable" in text


async def test_reservations_the_charger_cannot_give_are_refused_and_store_nothing(
    world: World,
) -> None:
    for text, expected in [
        ("reserve 61", "Sorry, a reservation here is 1 to 60 minutes."),
        ("reserve 30 7", "Sorry, this charger has no connector 7."),
        ("reserve 0", "usage: reserve <minutes> [connector]"),
    ]:
        answer = await _ask(world, world.stranger, text)
        assert answer.startswith(expected), answer
    await world.chargers.set_status(CHARGER_ID, 2, "Preparing", "NoError", datetime.now(UTC))
    world.payments.forget_view()
    answer = await _ask(world, world.stranger, "reserve 30 2")
    assert answer.startswith("Sorry, this connector cannot be reserved right now")
    assert await _session_count(world) == 0


async def test_a_charger_without_reservations_says_so(
    tmp_path: Path, database: Database, relay_url: str
) -> None:
    async for plain in build_world(tmp_path, database, relay_url):
        answer = await _ask(plain, plain.driver, "reserve 30")
        assert answer == "Sorry, this charger takes no reservations."
        assert await _session_count(plain) == 0
