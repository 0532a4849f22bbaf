"""No payment for a charger that is not connected: every offer refuses it, with the reason.

Over real HTTP and OCPP (a charger speaking 1.6, and one speaking 2.0.1): the simulated charger
drops its link, and the sticker's payRequest,
its callback (asked later, as a wallet may), the lightning address, a zap and a top-up of a
running session all answer a LUD error before any invoice exists; the charger page shows the
charger offline without a pay code. When the charger is back, offers work at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import pytest

from ocpp_server.simulator import SimulatedCharger, simulated_charge_point
from strom_core.ports import ChargerLink, ChargerOffline, ChargerOnline, OcppEvent
from strom_services import offers
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack
from tests.e2e.test_zap_front_door import counts, zap_request

pytestmark = BOTH_VERSIONS


async def take_offline(stack: Stack) -> None:
    """The charger loses its link and stays away; returns once Strom has noticed."""
    gone = asyncio.Event()

    async def watch(event: OcppEvent) -> None:
        if isinstance(event, ChargerOffline) and event.charger_id == CHARGER:
            gone.set()

    stack.strom.events.subscribe(watch)
    stack.charger.stop()
    await asyncio.wait_for(gone.wait(), 10)
    stack.strom.events.unsubscribe(watch)


@contextlib.asynccontextmanager
async def back_online(stack: Stack) -> AsyncIterator[SimulatedCharger]:
    """The charger connects again (a new connection, same identity and password)."""
    back = asyncio.Event()

    async def watch(event: OcppEvent) -> None:
        if isinstance(event, ChargerOnline) and event.charger_id == CHARGER:
            back.set()

    stack.strom.events.subscribe(watch)
    charger = simulated_charge_point(dataclasses.replace(stack.charger.options))
    running = asyncio.create_task(charger.run())
    try:
        await asyncio.wait_for(back.wait(), 10)
        yield charger
    finally:
        stack.strom.events.unsubscribe(watch)
        charger.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def assert_refused_offline(answer: dict[str, object]) -> None:
    assert answer["status"] == "ERROR", answer
    assert "offline right now" in str(answer["reason"]), answer
    assert "nothing was charged" in str(answer["reason"]), answer


async def test_a_charger_that_is_not_connected_is_refused_by_every_offer_and_back_at_once(
    stack: Stack,
) -> None:
    # A wallet scanned while the charger was connected, and calls back later.
    offer = await stack.get(stack.pay_url)
    address = await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}")
    before = await counts(stack)

    await take_offline(stack)

    assert_refused_offline(await stack.get(stack.pay_url))
    assert_refused_offline(await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}"))
    assert_refused_offline(await stack.get(str(offer["callback"]), amount="2000000"))
    zap = zap_request(str(address["nostrPubkey"]), 2_000_000)
    assert_refused_offline(await stack.get(str(address["callback"]), amount="2000000", nostr=zap))
    assert await counts(stack) == before  # no invoice, no session: nothing to pay or refund

    page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
    assert page.status_code == 200
    assert 'data-testid="status">Offline<' in page.text
    assert "not connected right now" in page.text
    assert 'data-testid="pay-qr"' not in page.text  # no code to pay
    assert 'http-equiv="refresh" content="30"' in page.text  # the code comes back by itself

    async with back_online(stack):
        again = await stack.get(stack.pay_url)  # at once: no wait for a view to age
        assert again["tag"] == "payRequest"
        answer = await stack.get(str(again["callback"]), amount="2000000")
        assert "pr" in answer, answer
        page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
        assert 'data-testid="pay-qr"' in page.text
        assert "http-equiv" not in page.text


async def test_a_top_up_is_refused_while_the_charger_is_away_and_the_session_keeps_its_budget(
    stack: Stack,
) -> None:
    status_url, page = await stack.pay(2_000_000)
    status = await stack.wait_state(status_url, "charging")
    secret = page.split("secret=", 1)[1]
    topup_url = f"{stack.base}/s/{status['id']}/topup"
    offer = await stack.get(topup_url, secret=secret)  # taken while connected
    assert offer["tag"] == "payRequest"
    _, payments_before = await counts(stack)

    await take_offline(stack)

    refused = await stack.get(topup_url, secret=secret)
    assert refused["status"] == "ERROR"
    assert "offline right now" in str(refused["reason"])
    assert "keeps its budget" in str(refused["reason"])
    late = await stack.get(str(offer["callback"]), amount="1000000")
    assert late["status"] == "ERROR"
    assert "offline right now" in str(late["reason"])
    assert (await counts(stack))[1] == payments_before  # no top-up invoice exists
    session = await stack.get(status_url)
    assert session["state"] == "charging"  # the session goes on as it was
    assert session["paid_msat"] == 2_000_000

    async with back_online(stack):
        assert await stack.strom.payments.link_of(CHARGER) is ChargerLink.ONLINE
        answer = await stack.get(str(offer["callback"]), amount="1000000")
        assert "pr" in answer, answer


async def test_offers_see_the_charger_go_and_come_back_at_once_not_when_their_view_ages(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Offers answer from a view of the database that is rebuilt when an OCPP event arrives
    # (and after a second for other processes' writes). With the second made an hour, only
    # the charger's own events can tell the offers that it went away and came back.
    monkeypatch.setattr(offers, "VIEW_MAX_AGE_S", 3600.0)
    offer = await stack.get(stack.pay_url)  # the view is fresh now
    await take_offline(stack)
    assert_refused_offline(await stack.get(str(offer["callback"]), amount="2000000"))
    async with back_online(stack):
        answer = await stack.get(str(offer["callback"]), amount="2000000")
        assert "pr" in answer, answer
