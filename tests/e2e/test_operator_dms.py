"""The operator's ``firmware`` and ``reserve`` DMs on the running stack, to the simulated charger.

Strom as ``strom run`` builds it (the agents reach the OCPP server's firmware and reservation
ports through the composition root), the simulated OCPP 1.6 charger over a real websocket, and
the operator (an admin npub) and a driver as nostr clients on Strom's embedded relay.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from strom_nostr.discovery import ConnectorStatus, parse_status
from strom_nostr.dm import nip04_message
from strom_nostr.keys import encode_npub, public_key_hex
from tests.agent.conftest import Person
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.e2e.test_reservations import free_connector, wait_status

WAIT_S = 20.0
ADMIN = os.urandom(32)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    env = {"STROM_NOSTR__ADMIN_NPUBS": f'["{encode_npub(public_key_hex(ADMIN))}"]'}
    async with running_stack(tmp_path, env=env) as running:
        yield running


@pytest.fixture
async def admin(stack: Stack) -> AsyncIterator[Person]:
    url = stack.strom.agents.pool.embedded_url
    assert url is not None
    person = Person(ADMIN, url)
    await person.connect()
    try:
        yield person
    finally:
        await person.close()


async def ask(stack: Stack, person: Person, text: str) -> str:
    pubkey = stack.strom.agents.pubkey(CHARGER)
    assert pubkey is not None
    await person.publish(nip04_message(person.secret, pubkey, text, created_at=int(time.time())))
    answer, _ = await person.next_dm(WAIT_S)
    return answer


async def test_the_operator_updates_firmware_by_dm_and_reads_its_progress(
    stack: Stack, admin: Person
) -> None:
    answer = await ask(stack, admin, "firmware ftp://firmware.example/cp-1.3.0.bin")
    assert answer.endswith("the charger answered Accepted. Send firmware for its progress.")

    async def installed() -> None:
        while True:
            info = stack.strom.ocpp.charger_info(CHARGER)
            if info and info.notifications.get("FirmwareStatusNotification") == "Installed":
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(installed(), WAIT_S)
    answer = await ask(stack, admin, "firmware")
    assert "last firmware status: Installed" in answer


async def test_the_operator_reserves_a_connector_and_cancels_it_by_dm(
    stack: Stack, admin: Person
) -> None:
    await free_connector(stack)
    answer = await ask(stack, admin, "reserve 1 30")
    assert answer.startswith("Reservation ")
    assert answer.endswith("the charger answered Accepted.")
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Reserved")
    await wait_status(stack, "Reserved")
    # The sticker refuses everyone meanwhile; the status shows the end of the reservation.
    refused = await stack.get(stack.pay_url)
    assert refused["status"] == "ERROR"
    assert "reserved" in refused["reason"]
    pubkey = stack.strom.agents.pubkey(CHARGER)

    async def published(state: ConnectorStatus) -> int | None:
        while True:
            events = await admin.fetch([{"kinds": [30522], "authors": [pubkey]}])
            if events:
                status = parse_status(max(events, key=lambda e: e.created_at))
                first = next(c for c in status.connectors if c.id == 1)
                if first.status is state:
                    return first.reserved_until
            await asyncio.sleep(0.1)

    until = await asyncio.wait_for(published(ConnectorStatus.RESERVED), WAIT_S)
    assert until is not None
    assert abs(until - (time.time() + 1800)) < 60
    answer = await ask(stack, admin, "reserve cancel 1")
    assert answer.endswith("the charger answered Accepted.")
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Available")
    assert await asyncio.wait_for(published(ConnectorStatus.AVAILABLE), WAIT_S) is None
    assert "callback" in await stack.get(stack.pay_url)
