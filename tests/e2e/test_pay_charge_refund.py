"""A stranger with a Lightning wallet pays, charges, stops and gets back what was not used.

Over real HTTP and a real OCPP websocket (see conftest), with a charger speaking OCPP 1.6 and
one speaking 2.0.1. After every story the ledger invariant is checked for every session.
"""

from __future__ import annotations

import asyncio

from tests.e2e.conftest import BOTH_VERSIONS, Stack

pytestmark = BOTH_VERSIONS


async def claim_refund(stack: Stack, status_url: str) -> tuple[dict[str, str | int], int]:
    status = await stack.get(status_url)
    withdraw_url = str(status["withdraw_url"]).replace("lnurlw://", "http://", 1)
    offer = await stack.get(withdraw_url)
    assert offer.get("tag") == "withdrawRequest", offer
    before = await stack.wallet.received_msat()
    invoice = await stack.wallet.create_invoice(int(offer["maxWithdrawable"]), memo="refund")
    answer = await stack.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)
    assert answer == {"status": "OK"}
    return offer, before


async def test_happy_path_pay_charge_stop_by_withdraw_and_refund(stack: Stack) -> None:
    status_url, _ = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    charging = await stack.wait_state(status_url, "charging")
    while charging["energy_wh"] < 500:
        await asyncio.sleep(0.1)
        charging = await stack.get(status_url)
    offer, before = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert final["energy_wh"] >= 500
    assert final["consumed_msat"] > 0
    assert final["refunded_msat"] == offer["maxWithdrawable"]
    assert final["paid_msat"] == final["consumed_msat"] + final["refunded_msat"]
    assert await stack.wallet.received_msat() - before == final["refunded_msat"]
    await stack.ledgers_balance()


async def test_budget_exhausted_stops_automatically_and_the_remainder_is_refunded(
    stack: Stack,
) -> None:
    status_url, _ = await stack.pay(1_000_000)  # 1,000 sat at 250 sat/kWh: 4 kWh at most
    stopped = await stack.wait_state(status_url, "stopped", "closed", within_s=30)
    assert stopped["stop_reason"] == "budget"
    assert stopped["consumed_msat"] <= stopped["paid_msat"]
    if stopped["state"] == "stopped":
        await claim_refund(stack, status_url)
        final = await stack.wait_state(status_url, "refunded")
        assert final["paid_msat"] == final["consumed_msat"] + final["refunded_msat"]
    await stack.ledgers_balance()


async def test_a_charger_that_rejects_the_start_makes_the_whole_payment_refundable(
    stack: Stack,
) -> None:
    stack.charger.connectors[1].operative = False  # the charger will answer Rejected
    status_url, _ = await stack.pay(1_500_000)
    failed = await stack.wait_state(status_url, "start_failed")
    assert failed["refundable_msat"] == 1_500_000
    await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert final["refunded_msat"] == 1_500_000
    assert final["consumed_msat"] == 0
    await stack.ledgers_balance()


async def test_a_stranger_is_refused_while_the_charger_is_busy_and_pays_nothing(
    stack: Stack,
) -> None:
    status_url, _ = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    answer = await stack.get(stack.pay_url)
    assert answer["status"] == "ERROR"
    assert "in use" in answer["reason"]
    callback = await stack.get(f"{stack.pay_url}/callback", amount="1000000")
    assert callback["status"] == "ERROR"
    assert "pr" not in callback
    await stack.ledgers_balance()


async def test_top_up_raises_the_budget(stack: Stack) -> None:
    status_url, page = await stack.pay(2_000_000)
    await stack.wait_state(status_url, "charging")
    status = await stack.get(status_url)
    secret = page.split("secret=", 1)[1]
    offer = await stack.get(f"{stack.base}/s/{status['id']}/topup", secret=secret)
    answer = await stack.get(str(offer["callback"]), amount="500000")
    await stack.wallet.pay(answer["pr"])
    for _ in range(100):
        status = await stack.get(status_url)
        if status["paid_msat"] == 2_500_000:
            break
        await asyncio.sleep(0.05)
    assert status["paid_msat"] == 2_500_000
    await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert final["paid_msat"] == final["consumed_msat"] + final["refunded_msat"]
    await stack.ledgers_balance()
