"""A hundred at once: one k1, one connector, one stop. Exactly one of each wins.

Every test ends with the ledger invariant checked for every session. The races a charger takes
part in (one connector, one stop) run with a charger speaking OCPP 1.6 and one speaking 2.0.1.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy import select

from strom_nostr.discovery import status_coordinate
from strom_nostr.event import sign_event
from strom_nostr.keys import generate_secret_key
from strom_services.refunds import ALREADY_USED
from strom_storage.outbox import OutboxRow
from strom_storage.schema import outbox, refunds, sessions
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack
from tests.e2e.ocpp_frames import remote_stops

BUSY_OR_DONE = {"paid", "starting", "charging", "stopping", "stopped", "refund_pending"}


async def test_a_hundred_withdraw_callbacks_with_one_k1_pay_once(stack: Stack) -> None:
    stack.charger.connectors[1].operative = False  # rejected start: everything refundable
    status_url, _ = await stack.pay(1_500_000)
    status = await stack.wait_state(status_url, "start_failed")
    offer = await stack.get(str(status["withdraw_url"]).replace("lnurlw://", "http://", 1))
    invoices = [await stack.wallet.create_invoice(1_500_000, memo=f"r{n}") for n in range(10)]
    before = await stack.wallet.received_msat()

    async def attempt(n: int) -> dict[str, Any]:
        invoice = invoices[n % len(invoices)]  # the same invoice ten times, ten invoices
        return await stack.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)

    answers = await asyncio.gather(*(attempt(n) for n in range(100)))
    assert sum(a.get("status") == "OK" for a in answers) == 1
    # Every loser is told the truth, whichever step it had reached when the winner committed
    # (not "the amount offered is 0 sat", read after the winner moved the money).
    losers = [a for a in answers if a != {"status": "OK"}]
    assert losers == [{"status": "ERROR", "reason": ALREADY_USED}] * 99, losers
    final = await stack.wait_state(status_url, "refunded")
    await asyncio.sleep(0.5)  # room for a second payment to show up, if there were one
    assert await stack.wallet.received_msat() - before == 1_500_000 == final["refunded_msat"]
    await stack.ledgers_balance()


async def test_two_runners_of_one_refund_pay_it_once(stack: Stack) -> None:
    """Two effect runners (two processes on one database) pick up the same claimed refund."""
    stack.charger.connectors[1].operative = False  # rejected start: everything refundable
    status_url, _ = await stack.pay(1_500_000)
    status = await stack.wait_state(status_url, "start_failed")
    release = asyncio.Event()

    async def held(_row: OutboxRow) -> None:  # this process's runner leaves the row alone
        await release.wait()

    stack.strom.runner.handlers["pay_refund"] = held
    offer = await stack.get(str(status["withdraw_url"]).replace("lnurlw://", "http://", 1))
    invoice = await stack.wallet.create_invoice(1_500_000)
    claimed = await stack.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)
    assert claimed == {"status": "OK"}
    async with stack.strom.db.reader() as conn:
        entry = (await conn.execute(select(outbox).where(outbox.c.kind == "pay_refund"))).one()
    row = OutboxRow(entry.id, entry.idempotency_key, entry.kind, entry.payload, entry.session_id, 0)
    backend = stack.strom.backend
    calls: list[str] = []
    pay_invoice = backend.pay_invoice

    async def counted(bolt11: str, *, max_fee_msat: int, timeout_s: float) -> Any:
        calls.append(bolt11)
        return await pay_invoice(bolt11, max_fee_msat=max_fee_msat, timeout_s=timeout_s)

    backend.pay_invoice = counted  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(stack.strom.refunds.pay(row) for _ in range(2)))
    finally:
        release.set()
    assert calls == [invoice.bolt11]
    async with stack.strom.db.reader() as conn:
        assert await conn.scalar(select(refunds.c.state)) == "paid"
    final = await stack.wait_state(status_url, "refunded")
    assert final["refunded_msat"] == 1_500_000
    await stack.ledgers_balance()


def zap_request(stack: Stack, amount: int) -> str:
    pubkey = stack.strom.agents.pubkey(CHARGER)
    assert pubkey is not None
    return sign_event(
        generate_secret_key(),
        9734,
        [
            ["p", pubkey],
            ["amount", str(amount)],
            ["relays", "ws://127.0.0.1:9"],
            ["a", status_coordinate(pubkey, CHARGER)],
        ],
        "",
        int(time.time()),
    ).to_json()


@BOTH_VERSIONS
async def test_a_hundred_payers_for_one_connector_make_one_session(stack: Stack) -> None:
    """50 LNURL callbacks and 50 zaps at once; all pay; one charges, the rest get it all back."""
    offer = await stack.get(stack.pay_url)
    amount = 1_200_000

    async def callback(n: int) -> dict[str, Any]:
        params = {"amount": str(amount)}
        if n % 2:
            params["nostr"] = zap_request(stack, amount)
        response = await stack.http.get(httpx.URL(str(offer["callback"])).copy_merge_params(params))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    answers = await asyncio.gather(*(callback(n) for n in range(100)))
    invoices = [a["pr"] for a in answers if "pr" in a]
    refused = [a for a in answers if "pr" not in a]
    assert all(a.get("status") == "ERROR" for a in refused)  # refused before any invoice
    await asyncio.gather(*(stack.wallet.pay(pr) for pr in invoices))

    async def settled_everywhere() -> list[Any]:
        while True:
            async with stack.strom.db.reader() as conn:
                rows = (await conn.execute(select(sessions))).all()
            paid = [r for r in rows if r.paid_msat > 0]
            # Every payment settled, every start decided, and the one that started has billed
            # its first meter reading (settling got fast enough to finish before it).
            if (
                len(paid) == len(invoices)
                and all(r.state != "paid" for r in paid)
                and any(r.consumed_msat > 0 for r in paid)
            ):
                return paid
            await asyncio.sleep(0.1)

    paid = await asyncio.wait_for(settled_everywhere(), 30)
    charging = [
        r for r in paid if r.state in BUSY_OR_DONE - {"paid"} and r.refundable_msat < amount
    ]
    assert len(charging) == 1, [(r.state, r.refundable_msat) for r in paid]
    for row in paid:
        if row.id != charging[0].id:  # every other payer can take all of it back
            assert row.refundable_msat == amount, (row.state, row.refundable_msat)
            assert row.consumed_msat == 0
    await stack.ledgers_balance()


@BOTH_VERSIONS
async def test_a_stop_racing_the_budget_stop_makes_one_stop_and_one_bill(stack: Stack) -> None:
    status_url, _ = await stack.pay(1_000_000)  # 4 kWh at most: the budget stop comes soon
    status = await stack.wait_state(status_url, "charging")
    withdraw = str(status["withdraw_url"]).replace("lnurlw://", "http://", 1)
    while status["state"] == "charging" and status["paid_msat"] - status["consumed_msat"] > 300_000:
        await asyncio.sleep(0.05)
        status = await stack.get(status_url)
    # The driver's stop (twenty wallets opening the withdraw link) races the budget stop.
    await asyncio.gather(*(stack.http.get(withdraw) for _ in range(20)))
    final = await stack.wait_state(status_url, "stopped", "closed", within_s=30)
    stops = [call.unique_id for call in remote_stops(stack.charger)]
    assert len(stops) == 1, stops  # one remote stop reached the charger
    assert final["stop_reason"] in ("budget", "initiator"), final["stop_reason"]
    assert 0 < final["consumed_msat"] <= final["paid_msat"]  # one bill, within the budget
    await stack.ledgers_balance()
