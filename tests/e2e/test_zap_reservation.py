"""A reservation paid by zap, end to end on the running stack, and driven by DM.

Strom serves over real HTTP with its embedded relay; the simulated charger speaks OCPP 1.6 or
2.0.1 (each story runs for both) over a real websocket and honours ReserveNow and
CancelReservation. The driver and a stranger are
nostr clients of their own on the embedded relay. The driver zaps the charger with a
``["reserve", "30"]`` tag: the connector is reserved at the charger, the status event shows it
``reserved`` with its end, the payer is told until when by DM, a stranger's ``start`` does
nothing, and the payer's ``start`` DM starts the charge. An expired reservation frees the
connector and the status shows it available again. A zap asking what the charger cannot give
is refused at invoice time and creates nothing; a zap below the fee is refunded in full.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from strom_core.session import State
from strom_nostr.discovery import ConnectorStatus, parse_status
from strom_nostr.dm import nip04_message
from strom_nostr.event import sign_event
from strom_storage.outbox import run_session_now
from strom_storage.schema import sessions
from tests.agent.conftest import Person
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack
from tests.e2e.test_reservations import free_connector, offer_reservations, wait_status

pytestmark = BOTH_VERSIONS

PAID = 2_000_000
KEPT_30 = (100_000 + 30 * 2_000) // 2  # half of the 160 sat fee (test_reservations' tariff)
WAIT_S = 20.0


@pytest.fixture
async def people(stack: Stack) -> AsyncIterator[tuple[Person, Person]]:
    """A driver and a stranger with nostr clients on Strom's embedded relay."""
    url = stack.strom.agents.pool.embedded_url
    assert url is not None
    driver = Person(os.urandom(32), url)
    stranger = Person(os.urandom(32), url)
    for person in (driver, stranger):
        await person.connect()
    try:
        yield driver, stranger
    finally:
        for person in (driver, stranger):
            await person.close()


def zap_request(stack: Stack, person: Person, amount_msat: int, minutes: str) -> str:
    pubkey = stack.strom.agents.pubkey(CHARGER)
    assert pubkey is not None
    tags = [
        ["p", pubkey],
        ["amount", str(amount_msat)],
        ["relays", person.relay_url],
        ["connector", "1"],
        ["reserve", minutes],
    ]
    return sign_event(person.secret, 9734, tags, "on my way", int(time.time())).to_json()


async def zap(stack: Stack, person: Person, amount_msat: int, minutes: str = "30") -> Any:
    """What a zapping wallet does: the lightning address, then its callback with the request."""
    address = await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}")
    request = zap_request(stack, person, amount_msat, minutes)
    return await stack.get(address["callback"], amount=str(amount_msat), nostr=request)


async def ask(stack: Stack, person: Person, text: str) -> str:
    pubkey = stack.strom.agents.pubkey(CHARGER)
    assert pubkey is not None
    await person.publish(nip04_message(person.secret, pubkey, text, created_at=int(time.time())))
    answer, _ = await person.next_dm(WAIT_S)
    return answer


async def session_of(stack: Stack, person: Person) -> str:
    async with stack.strom.db.reader() as conn:
        found = await conn.scalar(
            select(sessions.c.id).where(sessions.c.initiator_pubkey == person.pubkey)
        )
    assert found is not None
    return str(found)


async def wait_session(stack: Stack, session_id: str, *states: State) -> Any:
    async def poll() -> Any:
        while True:
            session = await stack.strom.sessions.get(session_id)
            if session.state in states:
                return session
            await asyncio.sleep(0.05)

    return await asyncio.wait_for(poll(), WAIT_S)


async def wait_published(
    stack: Stack, person: Person, expected: tuple[ConnectorStatus, int | None]
) -> None:
    """Until the charger's newest status event on the relay shows connector 1 so."""
    pubkey = stack.strom.agents.pubkey(CHARGER)

    async def poll() -> None:
        while True:
            events = await person.fetch([{"kinds": [30522], "authors": [pubkey]}])
            if events:
                status = parse_status(max(events, key=lambda e: e.created_at))
                first = {c.id: (c.status, c.reserved_until) for c in status.connectors}[1]
                if first == expected:
                    return
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), WAIT_S)


async def next_dm_starting(person: Person, prefix: str) -> str:
    """The next DM to the person that starts with ``prefix`` (other session news skipped)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            text, _ = await person.next_dm(WAIT_S)
            if text.startswith(prefix):
                return text


async def test_a_zap_reservation_is_announced_and_only_its_payer_starts_it(
    stack: Stack, people: tuple[Person, Person]
) -> None:
    driver, stranger = people
    await offer_reservations(stack)
    await free_connector(stack)
    answer = await zap(stack, driver, PAID)
    assert "pr" in answer, answer
    await stack.wallet.pay(answer["pr"])
    session_id = await session_of(stack, driver)
    session = await wait_session(stack, session_id, State.RESERVED)
    until: datetime = session.reserved_until
    assert session.reserve_minutes == 30
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Reserved")
    await wait_status(stack, "Reserved")
    # The status shows the connector reserved, with its end.
    await wait_published(stack, driver, (ConnectorStatus.RESERVED, int(until.timestamp())))
    # The payer is told until when, and what start and cancel do.
    told = await next_dm_starting(driver, "Connector 1 is reserved for you until")
    assert f"until {until:%H:%M} UTC" in told
    assert "Reply start when your car is plugged in, or cancel to free it" in told
    assert "50 % of the fee (80 sat) is kept" in told
    # A stranger's start does nothing.
    answer = await ask(stack, stranger, "start")
    assert answer.startswith("You have no reservation on this charger")
    assert (await stack.strom.sessions.get(session_id)).state is State.RESERVED
    assert stack.charger.connectors[1].status == "Reserved"
    # The payer arrives: start, plug in, charging with the reserved idTag.
    answer = await ask(stack, driver, "start")
    assert answer.startswith("Starting connector 1")
    await stack.charger.plug(1)
    charging = await wait_session(stack, session_id, State.CHARGING)
    assert stack.charger.connectors[1].id_tag == charging.id_tag
    assert charging.paid_msat == PAID  # the fee counts toward the session
    await wait_published(stack, driver, (ConnectorStatus.CHARGING, None))
    await stack.ledgers_balance()


async def test_an_expired_zap_reservation_frees_the_connector_and_the_status_says_so(
    stack: Stack, people: tuple[Person, Person]
) -> None:
    driver, _ = people
    await offer_reservations(stack)
    await free_connector(stack)
    answer = await zap(stack, driver, PAID, minutes="30")
    await stack.wallet.pay(answer["pr"])
    session_id = await session_of(stack, driver)
    session = await wait_session(stack, session_id, State.RESERVED)
    await wait_published(
        stack, driver, (ConnectorStatus.RESERVED, int(session.reserved_until.timestamp()))
    )
    # Thirty minutes pass: the durable timer (an outbox row due at the end) comes due.
    now = stack.strom.clock.now()
    await stack.strom.db.write(
        lambda conn: run_session_now(conn, session_id, ["reservation_expiry"], now)
    )
    stack.strom.runner.wake()
    ended = await wait_session(stack, session_id, State.START_FAILED)
    assert ended.stop_reason == "reservation expired"
    assert (ended.consumed_msat, ended.refundable_msat) == (KEPT_30, PAID - KEPT_30)
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Available")
    await wait_published(stack, driver, (ConnectorStatus.AVAILABLE, None))
    told = await next_dm_starting(driver, "Your reservation ended")
    assert told.startswith("Your reservation ended (reservation expired): 80 sat of the fee kept.")
    assert "lightning:LNURL1" in told  # the refund link of the rest
    await stack.ledgers_balance()


async def count_sessions(stack: Stack) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(sessions)) or 0)


async def test_a_zap_reservation_the_charger_cannot_give_is_refused_at_invoice_time(
    stack: Stack, people: tuple[Person, Person]
) -> None:
    driver, _ = people
    await free_connector(stack)
    refused = await zap(stack, driver, PAID)  # reservations not offered yet
    assert refused["status"] == "ERROR"
    assert refused["reason"] == "this charger takes no reservations; nothing was charged"
    await offer_reservations(stack)
    refused = await zap(stack, driver, PAID, minutes="61")
    assert refused["status"] == "ERROR"
    assert "1 to 60 minutes" in refused["reason"]
    refused = await zap(stack, driver, PAID, minutes="soon")
    assert refused["status"] == "ERROR"
    assert "'reserve' tag" in refused["reason"]
    assert await count_sessions(stack) == 0


async def test_a_zap_below_the_reservation_fee_is_refunded_in_full(
    stack: Stack, people: tuple[Person, Person]
) -> None:
    driver, _ = people
    await free_connector(stack)
    profile = stack.strom.config.profile_by_name(CHARGER)
    book = stack.strom.payments.tariffs
    await book.set(  # a 3000 sat fee, above the tariff's 1000 sat minimum
        profile,
        replace(book.in_force(profile), reservation_fee_msat=3_000_000, reservation_max_minutes=60),
        source="test",
    )
    answer = await zap(stack, driver, 1_000_000)
    assert "pr" in answer, answer  # the zapper's amount is taken: the core decides
    await stack.wallet.pay(answer["pr"])
    session_id = await session_of(stack, driver)
    failed = await wait_session(stack, session_id, State.START_FAILED)
    assert failed.stop_reason == "paid less than the reservation fee"
    assert (failed.consumed_msat, failed.refundable_msat) == (0, 1_000_000)
    told = await next_dm_starting(driver, "Charging could not start")
    assert "paid less than the reservation fee" in told
    assert stack.charger.connectors[1].status == "Available"  # never reserved
    assert re.search(r"1,000 sat is refundable", told)
    await stack.ledgers_balance()
