"""Paid reservations end to end: a driver on the way reserves a connector with an LNURL-pay.

Over real HTTP and a real OCPP websocket to the simulated charger (see conftest), speaking 1.6
and 2.0.1, which honours ReserveNow and CancelReservation. The reservation's fee counts toward
the session when the payer starts in time; when the time runs out the tariff's share of the fee
is kept, the charger is told to cancel, the connector is free again and the rest is refunded,
once. While reserved, everyone else's payment is refused with the reservation's end time. The
charger's own refusal (Occupied) costs the payer nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from strom_core.tariff import Tariff
from strom_storage.outbox import run_session_now
from strom_storage.schema import ledger_entries, refunds, sessions
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack
from tests.e2e.test_pay_charge_refund import claim_refund

pytestmark = BOTH_VERSIONS

FEE_30 = 100_000 + 30 * 2_000  # 160 sat: 100 sat + 2 sat a minute
KEPT_30 = FEE_30 // 2  # 50 % of it
PAID = 2_000_000


async def offer_reservations(stack: Stack) -> Tariff:
    """The operator offers reservations (a run-time tariff change, as the ``price`` DM makes)."""
    profile = stack.strom.config.profile_by_name(CHARGER)
    book = stack.strom.payments.tariffs
    tariff = replace(
        book.in_force(profile),
        reservation_fee_msat=100_000,
        reservation_fee_msat_per_minute=2_000,
        reservation_max_minutes=60,
        reservation_kept_percent=50,
    )
    await book.set(profile, tariff, source="test")
    return tariff


async def free_connector(stack: Stack) -> None:
    """Nobody at the charger: the connector reports Available (only then it can be reserved)."""
    await stack.charger.unplug(1)
    await wait_status(stack, "Available")


async def wait_status(stack: Stack, status: str, within_s: float = 10) -> None:
    """Until Strom has the connector's status from the charger."""

    async def poll() -> None:
        while True:
            rows = await stack.strom.chargers.connectors(CHARGER)
            if any(row.connector_id == 1 and row.status == status for row in rows):
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), within_s)


async def reserve(stack: Stack, minutes: int = 30, amount: int = PAID) -> tuple[str, str]:
    """Pay a reservation through the connector's LNURL; (session json url, page url)."""
    offer = await stack.get(stack.pay_url, reserve=str(minutes))
    assert offer["tag"] == "payRequest", offer
    answer = await stack.get(offer["callback"], amount=str(amount))
    assert "pr" in answer, answer
    await stack.wallet.pay(answer["pr"])
    page = answer["successAction"]["url"]
    return page.replace("?", ".json?", 1), page


async def post(stack: Stack, page_url: str, action: str, secret: str | None = None) -> Any:
    parts = urlsplit(page_url)
    if secret is None:
        secret = parse_qs(parts.query)["secret"][0]
    return await stack.http.post(f"{stack.base}{parts.path}/{action}", data={"secret": secret})


async def count_sessions(stack: Stack) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(sessions)) or 0)


async def test_a_reservation_offer_states_its_terms_and_asks_at_least_the_fee(
    stack: Stack,
) -> None:
    await free_connector(stack)
    assert (await stack.get(stack.pay_url, reserve="30"))["status"] == "ERROR"  # not offered
    await offer_reservations(stack)
    offer = await stack.get(stack.pay_url, reserve="30")
    text = offer["metadata"]
    assert "Reserve connector 1" in text
    assert "for 30 min" in text
    assert "reservation fee 160 sat" in text
    assert "fee included, is your charging budget" in text
    assert "50 % of the fee (80 sat) is kept" in text
    assert offer["minSendable"] == 1_000_000  # the tariff's minimum is above the fee
    assert offer["maxSendable"] == 100_000_000
    assert offer["callback"].endswith("/callback?reserve=30")
    page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
    assert 'data-testid="reserve-30"' in page.text
    assert 'data-testid="reserve-60"' in page.text


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"reserve": "0"}, "from 1 to 60"),
        ({"reserve": "61"}, "from 1 to 60"),
        ({"reserve": "30.5"}, "from 1 to 60"),
        ({"reserve": "-5"}, "from 1 to 60"),
        ({"reserve": "30", "amount": "999999"}, "amount"),
        ({"reserve": "30", "amount": "100000001"}, "amount"),
    ],
)
async def test_wrong_minutes_or_amounts_get_a_lud06_error_and_create_nothing(
    stack: Stack, params: dict[str, str], reason: str
) -> None:
    await free_connector(stack)
    await offer_reservations(stack)
    before = await count_sessions(stack)
    callback = f"{stack.pay_url}/callback"
    answer = await stack.get(callback, **{"amount": str(PAID), **params})
    assert answer["status"] == "ERROR"
    assert reason in answer["reason"]
    if "amount" not in params:
        first = await stack.get(stack.pay_url, reserve=params["reserve"])
        assert first["status"] == "ERROR"
    assert await count_sessions(stack) == before


async def test_paid_reservation_arrival_start_fee_counted_and_the_rest_refunded_once(
    stack: Stack,
) -> None:
    tariff = await offer_reservations(stack)
    await free_connector(stack)
    status_url, page_url = await reserve(stack)
    status = await stack.wait_state(status_url, "reserved")
    until = datetime.fromisoformat(status["reserved_until"])
    assert status["reservation_fee_msat"] == FEE_30
    assert (status["paid_msat"], status["refundable_msat"]) == (PAID, PAID)
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Reserved")
    await wait_status(stack, "Reserved")

    # A stranger scanning the sticker is told until when; nothing is created for them.
    before = await count_sessions(stack)
    refused = await stack.get(stack.pay_url)
    assert refused["status"] == "ERROR"
    assert f"reserved until {until:%H:%M} UTC" in refused["reason"]
    late = await stack.get(f"{stack.pay_url}/callback", amount=str(PAID))
    assert late["status"] == "ERROR"
    assert "reserved until" in late["reason"]
    again = await stack.get(stack.pay_url, reserve="15")  # nor a second reservation
    assert again["status"] == "ERROR"
    assert await count_sessions(stack) == before

    page = await stack.http.get(page_url)
    assert 'data-testid="reservation"' in page.text
    assert f"{until:%Y-%m-%d %H:%M} UTC" in page.text
    assert 'action="/s/' in page.text
    assert "Start charging" in page.text
    assert "Cancel reservation" in page.text
    assert (await post(stack, page_url, "start", secret="wrong")).status_code == 404

    # The payer arrives, presses Start charging and plugs in.
    answer = await post(stack, page_url, "start")
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("&reservation=started")
    await stack.wait_state(status_url, "paid", "starting", "charging")
    await stack.charger.plug(1)
    charging = await stack.wait_state(status_url, "charging")
    assert (
        stack.charger.connectors[1].id_tag
        == (await stack.strom.sessions.get(charging["id"])).id_tag
    )
    busy = await stack.get(stack.pay_url, reserve="15")  # no reservation on a busy connector
    assert busy["status"] == "ERROR"
    assert "in use" in busy["reason"]
    while charging["energy_wh"] < 300:
        await asyncio.sleep(0.05)
        charging = await stack.get(status_url)
    _, received_before = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    session = await stack.strom.sessions.get(final["id"])
    # The fee counted toward the session: only the energy is billed, from the whole payment.
    assert final["consumed_msat"] <= tariff.cost(session.energy_wh, session.elapsed_s)
    assert final["consumed_msat"] > tariff.cost(session.energy_wh, session.elapsed_s) - 1000
    assert final["paid_msat"] == final["consumed_msat"] + final["refunded_msat"]
    assert await stack.wallet.received_msat() - received_before == final["refunded_msat"]
    async with stack.strom.db.reader() as conn:
        paid_refunds = await conn.scalar(
            select(func.count()).select_from(refunds).where(refunds.c.state == "paid")
        )
    assert paid_refunds == 1
    await stack.ledgers_balance()


async def test_an_expired_reservation_keeps_the_fee_share_and_frees_the_connector(
    stack: Stack,
) -> None:
    await offer_reservations(stack)
    await free_connector(stack)
    status_url, _ = await reserve(stack)
    status = await stack.wait_state(status_url, "reserved")
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Reserved")
    # Thirty minutes pass: the durable timer (an outbox row due at the end) comes due.
    now = stack.strom.clock.now()
    await stack.strom.db.write(
        lambda conn: run_session_now(conn, status["id"], ["reservation_expiry"], now)
    )
    ended = await stack.wait_state(status_url, "start_failed", within_s=10)
    assert ended["stop_reason"] == "reservation expired"
    assert (ended["consumed_msat"], ended["refundable_msat"]) == (KEPT_30, PAID - KEPT_30)
    # CancelReservation reached the charger; the connector is Available and can be paid again.
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Available")
    await wait_status(stack, "Available")
    assert "callback" in await stack.get(stack.pay_url)
    await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert (final["consumed_msat"], final["refunded_msat"]) == (KEPT_30, PAID - KEPT_30)
    async with stack.strom.db.reader() as conn:
        kept = list(
            await conn.execute(
                select(ledger_entries.c.amount_msat).where(
                    ledger_entries.c.session_id == status["id"],
                    ledger_entries.c.kind == "consumption",
                )
            )
        )
    assert [row.amount_msat for row in kept] == [KEPT_30]  # kept once
    await stack.ledgers_balance()


async def test_a_payer_who_cancels_pays_the_fee_share_and_the_connector_is_freed(
    stack: Stack,
) -> None:
    await offer_reservations(stack)
    await free_connector(stack)
    status_url, page_url = await reserve(stack)
    await stack.wait_state(status_url, "reserved")
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Reserved")
    answer = await post(stack, page_url, "cancel")
    assert answer.headers["Location"].endswith("&reservation=cancelled")
    ended = await stack.wait_state(status_url, "start_failed")
    assert ended["stop_reason"] == "reservation cancelled"
    assert ended["consumed_msat"] == KEPT_30
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Available")
    again = await post(stack, page_url, "start")  # too late: nothing changes
    assert again.headers["Location"].endswith("&reservation=not-reserved")
    assert (await stack.get(status_url))["state"] == "start_failed"
    await stack.ledgers_balance()


async def test_a_reservation_the_charger_refuses_is_refunded_in_full(stack: Stack) -> None:
    await offer_reservations(stack)
    await free_connector(stack)
    offer = await stack.get(stack.pay_url, reserve="30")
    # Someone plugs in between the offer and the payment, and the charger has not said so yet:
    # Strom still sees Available when the payment settles, the charger answers Occupied.
    stack.charger.connectors[1].plugged = True
    answer = await stack.get(offer["callback"], amount=str(PAID))
    await stack.wallet.pay(answer["pr"])
    status_url = answer["successAction"]["url"].replace("?", ".json?", 1)
    failed = await stack.wait_state(status_url, "start_failed")
    assert "Occupied" in failed["stop_reason"]
    assert (failed["consumed_msat"], failed["refundable_msat"]) == (0, PAID)
    await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert final["refunded_msat"] == PAID
    await stack.ledgers_balance()


async def test_the_session_page_post_needs_the_secret(stack: Stack) -> None:
    await offer_reservations(stack)
    await free_connector(stack)
    _, page_url = await reserve(stack)
    for action in ("start", "cancel"):
        wrong = await post(stack, page_url, action, secret="x" * 43)
        assert wrong.status_code == 404
    missing = await stack.http.post(f"{stack.base}{urlsplit(page_url).path}/start")
    assert missing.status_code == 404
    assert isinstance(missing, httpx.Response)


async def test_a_charger_whose_ocpp_version_carries_no_reservations_is_not_offered_them(
    stack: Stack,
) -> None:
    """No reserve buttons, and a reserve payRequest is refused; ordinary payments as ever."""
    await offer_reservations(stack)
    await free_connector(stack)
    stack.strom.payments.offers.reservable = lambda charger_id: charger_id != CHARGER
    refused = await stack.get(stack.pay_url, reserve="30")
    assert refused["status"] == "ERROR"
    assert "takes no reservations" in refused["reason"]
    page = await stack.http.get(f"{stack.base}/c/{CHARGER}")
    assert 'data-testid="reserve"' not in page.text
    assert "callback" in await stack.get(stack.pay_url)
