"""Faults from outside: the relay goes down and comes back empty (restarted without storage).

A whole Strom (HTTP, the simulated charger over OCPP, the fake lightning backend) uses one
relay on 127.0.0.1 that the test stops and starts again on the same port, with nothing stored.
Once it is back, the charger's current status and profile must be on it again within
:data:`BACK_WITHIN_S`, whether or not the status changed meanwhile (the next scheduled refresh
is half an hour away for the status and a day for the profile); session DMs and the zap
receipt that failed while it was down are retried by the outbox until the relay takes them;
and DMs sent to the charger after the restart still reach its agent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select, update

from agent.agent import Agent
from agent.nostr_sdk_adapter import SdkClient
from lnurl_server.ratelimit import RateLimiter
from strom_nostr.discovery import (
    PROFILE_KIND,
    RELAY_LIST_KIND,
    STATUS_KIND,
    ConnectorStatus,
    parse_status,
)
from strom_nostr.dm import nip04_message, open_dm
from strom_nostr.event import Event, parse_event, sign_event
from strom_nostr.keys import encode_npub, public_key_hex
from strom_nostr.zap_receipt import ZAP_RECEIPT_KIND
from strom_storage.schema import outbox
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.ports import RestartableRelay

pytestmark = pytest.mark.slow

BACK_WITHIN_S = 60.0
"""How long after the relay is back the charger's current state must be on it."""
GONE_WITHIN_S = 20.0

ZAPPER = bytes.fromhex("5a" * 32)
OPERATOR = bytes.fromhex("0e" * 32)

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], what: str, within_s: float = BACK_WITHIN_S
) -> T:
    """Poll ``probe`` until it returns something other than None, and return that."""
    deadline = time.monotonic() + within_s
    while True:
        found = await probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {within_s:.0f} s")
        await asyncio.sleep(0.25)


@dataclass
class World:
    stack: Stack
    relay: RestartableRelay
    reader: SdkClient
    """A nostr client of the test's own, for what is on the relay right now."""

    @property
    def agent(self) -> Agent:
        return self.stack.strom.agents.agent(CHARGER)

    async def events(self, **filter_: Any) -> list[Event]:
        texts = await self.reader.fetch([filter_], [self.relay.url], timeout_s=2)
        return [parse_event(text) for text in texts]

    async def on_relay(self, kind: int) -> Event | None:
        """The charger's newest event of this kind on the relay."""
        events = await self.events(kinds=[kind], authors=[self.agent.pubkey])
        return max(events, key=lambda event: event.created_at) if events else None

    async def connector_status(self) -> ConnectorStatus | None:
        """Connector 1's state in the charger's status event on the relay."""
        event = await self.on_relay(STATUS_KIND)
        return None if event is None else parse_status(event).connectors[0].status

    async def status_is(self, wanted: ConnectorStatus) -> bool | None:
        return True if await self.connector_status() is wanted else None

    async def status_and_profile_on_relay(self) -> bool | None:
        for kind in (STATUS_KIND, PROFILE_KIND, RELAY_LIST_KIND):
            if await self.on_relay(kind) is None:
                return None
        return True

    async def dms_to(self, secret: bytes) -> list[str]:
        events = await self.events(kinds=[4, 1059], **{"#p": [public_key_hex(secret)]})
        return [open_dm(secret, event).text for event in events]

    async def relay_down(self) -> None:
        """Stop the relay; return once Strom's relay pool has noticed."""
        self.relay.shutdown()

        async def noticed() -> bool | None:
            states = await self.stack.strom.agents.pool.states()
            return True if states.get(self.relay.url) != "connected" else None

        await eventually(noticed, "the pool notices the relay is gone", GONE_WITHIN_S)

    async def notify_rows(self) -> list[Any]:
        async with self.stack.strom.db.reader() as conn:
            return list((await conn.execute(select(outbox).where(outbox.c.kind == "notify"))).all())

    async def paid_dm_failed(self) -> bool | None:
        """True once sending the zapper's "paid" DM has failed at least once."""
        rows = await self.notify_rows()
        failed = [r for r in rows if r.payload["what"] == "paid" and r.attempts > 0]
        return True if failed else None


@asynccontextmanager
async def world_with_one_relay(tmp_path: Path) -> AsyncIterator[World]:
    """Strom and its simulated charger, using only a relay the test can stop and restart."""
    relay = RestartableRelay()
    await relay.start()
    relay_config = tmp_path / "relay_config"
    relay_config.mkdir()
    (relay_config / "relays.toml").write_text(f'[[relays]]\nurl = "{relay.url}"\n')
    env = {
        "STROM_PATHS__RELAY_CONFIG": f'"{relay_config}"',
        "STROM_NOSTR__ADMIN_NPUBS": f'["{encode_npub(public_key_hex(OPERATOR))}"]',
    }
    reader = SdkClient()
    try:
        async with running_stack(tmp_path / "strom", env=env) as stack:
            unlimited = RateLimiter(per_minute=10**9, burst=10**9)
            stack.strom.front.per_client = stack.strom.front.per_charger = unlimited
            await reader.add_relay(relay.url, read=True, write=True, retry_interval_s=0.5)
            world = World(stack, relay, reader)
            await eventually(world.status_and_profile_on_relay, "the first status and profile")
            yield world
    finally:
        await reader.shutdown()
        relay.shutdown()


async def zap(world: World, amount_msat: int) -> None:
    """Zap the charger through its lightning address and pay the invoice."""
    stack = world.stack
    address = await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}")
    tags = [["p", world.agent.pubkey], ["amount", str(amount_msat)], ["relays", world.relay.url]]
    request = sign_event(ZAPPER, 9734, tags, "charging", int(time.time())).to_json()
    answer = await stack.get(address["callback"], amount=str(amount_msat), nostr=request)
    assert "pr" in answer, answer
    await stack.wallet.pay(answer["pr"])


async def test_a_relay_that_comes_back_empty_gets_the_unchanged_status_and_profile_again(
    tmp_path: Path,
) -> None:
    async with world_with_one_relay(tmp_path) as world:
        before = await world.connector_status()
        await world.relay_down()
        await world.relay.start()  # nothing changed meanwhile, but the relay lost everything
        await eventually(world.status_and_profile_on_relay, "status and profile")
        assert await world.connector_status() is before


async def test_a_status_that_changed_while_the_relay_was_down_is_on_it_once_it_is_back(
    tmp_path: Path,
) -> None:
    async with world_with_one_relay(tmp_path) as world:
        await world.relay_down()
        await world.stack.charger.set_status(1, "Faulted")

        async def publish_failed() -> bool | None:
            last = world.agent.last_status
            return True if last is not None and not last.accepted else None

        await eventually(publish_failed, "a failed status publish")
        await world.relay.start()
        await eventually(lambda: world.status_is(ConnectorStatus.FAULTED), "the new status")
        await eventually(world.status_and_profile_on_relay, "the profile")


async def test_session_dms_and_the_receipt_that_failed_while_the_relay_was_down_arrive_later(
    tmp_path: Path,
) -> None:
    async with world_with_one_relay(tmp_path) as world:
        await world.relay_down()
        await zap(world, 2_000_000)

        await eventually(world.paid_dm_failed, "a failed attempt to DM the zapper")
        await world.relay.start()

        async def paid_dm() -> str | None:
            texts = [text for text in await world.dms_to(ZAPPER) if "received" in text]
            return texts[0] if texts else None

        assert "2,000 sat" in await eventually(paid_dm, "the zapper's DM")

        async def receipt() -> Event | None:
            return await world.on_relay(ZAP_RECEIPT_KIND)

        await eventually(receipt, "the zap receipt")

        async def notified() -> list[Any] | None:
            rows = await world.notify_rows()
            return rows if rows and all(r.state == "done" for r in rows) else None

        rows = await eventually(notified, "every session DM sent")
        assert any(r.payload["what"] == "paid" and r.attempts > 0 for r in rows)  # a retry


async def test_a_dm_waiting_out_a_long_backoff_is_retried_as_soon_as_the_relay_is_back(
    tmp_path: Path,
) -> None:
    async with world_with_one_relay(tmp_path) as world:
        await world.relay_down()
        await zap(world, 2_000_000)

        await eventually(world.paid_dm_failed, "a failed attempt to DM the zapper")
        # As after many failures: the next attempt is ten minutes away.
        later = datetime.now(UTC) + timedelta(minutes=10)
        async with world.stack.strom.db.transaction() as conn:
            await conn.execute(
                update(outbox)
                .where(outbox.c.state == "pending", outbox.c.kind == "notify")
                .values(run_after=later)
            )
        await world.relay.start()

        async def paid_dm_done() -> bool | None:
            rows = await world.notify_rows()
            paid = [r for r in rows if r.payload["what"] == "paid"]
            return True if paid and all(r.state == "done" for r in paid) else None

        await eventually(paid_dm_done, "the zapper's DM sent, long before 10 min")
        texts = [text for text in await world.dms_to(ZAPPER) if "received" in text]
        assert len(set(texts)) == 1  # delivered, once


async def test_a_dm_to_the_charger_after_the_relay_restarts_reaches_its_agent(
    tmp_path: Path,
) -> None:
    async with world_with_one_relay(tmp_path) as world:
        await world.relay_down()
        await world.relay.start()
        command = nip04_message(OPERATOR, world.agent.pubkey, "status", created_at=int(time.time()))

        async def sent() -> bool | None:
            output = await world.reader.send_event(command, [world.relay.url], timeout_s=2)
            return True if output.ok else None

        await eventually(sent, "the operator's command on the relay")

        async def answered() -> list[str] | None:
            return await world.dms_to(OPERATOR) or None

        (answer,) = await eventually(answered, "the charger's answer")
        assert "connector 1" in answer
