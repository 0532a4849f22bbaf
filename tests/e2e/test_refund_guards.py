"""Nobody but the payer gets a refund, and nothing is ever paid twice.

Each test ends with the ledger invariant checked for every session.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update

from strom_storage.schema import refunds, sessions
from tests.e2e.conftest import Stack


async def stopped_session(stack: Stack) -> tuple[str, dict[str, object]]:
    """A session that is stopped with a refundable balance; returns its json url and offer."""
    stack.charger.connectors[1].operative = False  # rejected start: all 1,500 sat refundable
    status_url, _ = await stack.pay(1_500_000)
    status = await stack.wait_state(status_url, "start_failed")
    withdraw_url = str(status["withdraw_url"]).replace("lnurlw://", "http://", 1)
    offer = await stack.get(withdraw_url)
    assert offer["maxWithdrawable"] == 1_500_000
    return status_url, offer


async def state_snapshot(stack: Stack) -> tuple[object, ...]:
    async with stack.strom.db.reader() as conn:
        rows = (await conn.execute(select(sessions).order_by(sessions.c.id))).all()
        offers = (await conn.execute(select(refunds).order_by(refunds.c.id))).all()
    return (rows, offers, await stack.wallet.received_msat())


async def test_fifty_concurrent_callbacks_with_one_k1_pay_once(stack: Stack) -> None:
    status_url, offer = await stopped_session(stack)
    invoices = [await stack.wallet.create_invoice(1_500_000, memo=f"refund {n}") for n in range(5)]
    before = await stack.wallet.received_msat()

    async def attempt(n: int) -> dict[str, object]:
        invoice = invoices[n % len(invoices)]  # same and different invoices
        return await stack.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)

    answers = await asyncio.gather(*(attempt(n) for n in range(50)))
    assert sum(a.get("status") == "OK" for a in answers) == 1
    assert all("reason" in a for a in answers if a.get("status") != "OK")
    final = await stack.wait_state(status_url, "refunded")
    await asyncio.sleep(0.5)  # give any second payment the chance to show
    assert await stack.wallet.received_msat() - before == 1_500_000
    assert final["refunded_msat"] == 1_500_000
    await stack.ledgers_balance()


async def test_the_same_invoice_submitted_twice_is_paid_once(stack: Stack) -> None:
    status_url, offer = await stopped_session(stack)
    invoice = await stack.wallet.create_invoice(1_500_000)
    first = await stack.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)
    assert first == {"status": "OK"}
    await stack.wait_state(status_url, "refunded")
    # A second withdraw request for the same session finds nothing left to refund.
    status = await stack.get(status_url)
    again = await stack.get(str(status["withdraw_url"]).replace("lnurlw://", "http://", 1))
    assert again["status"] == "ERROR"
    async with stack.strom.db.reader() as conn:
        paid = await conn.scalar(
            select(func.count()).where(refunds.c.payment_hash == invoice.payment_hash)
        )
    assert paid == 1
    await stack.ledgers_balance()


async def test_bad_refund_requests_are_refused_and_change_nothing(stack: Stack) -> None:
    status_url, offer = await stopped_session(stack)
    callback, k1 = str(offer["callback"]), str(offer["k1"])
    good = await stack.wallet.create_invoice(1_500_000)
    over = await stack.wallet.create_invoice(1_500_001)
    under = await stack.wallet.create_invoice(1_000_000)
    # The same invoice re-encoded for another network is refused by its prefix (and signature).
    wrong_network = good.bolt11.replace("lnbcrt", "lnbc", 1)
    before = await state_snapshot(stack)
    cases = {
        "no k1": {"pr": good.bolt11},
        "bad k1": {"k1": "00" * 32, "pr": good.bolt11},
        "short k1": {"k1": "abc", "pr": good.bolt11},
        "no invoice": {"k1": k1},
        "garbage invoice": {"k1": k1, "pr": "lnbcrt1garbage"},
        "over the amount": {"k1": k1, "pr": over.bolt11},
        "under the amount": {"k1": k1, "pr": under.bolt11},
        "wrong network": {"k1": k1, "pr": wrong_network},
    }
    for name, params in cases.items():
        answer = await stack.get(callback, **params)
        assert answer["status"] == "ERROR", name
        assert answer["reason"], name
    assert await state_snapshot(stack) == before
    # A stranger without the session secret gets nothing either.
    status = await stack.get(status_url)
    stranger = await stack.get(f"{stack.base}/lnurlw/{status['id']}", secret="guess")
    assert stranger["status"] == "ERROR"
    assert await state_snapshot(stack) == before
    # The offer still works for its payer afterwards.
    assert (await stack.get(callback, k1=k1, pr=good.bolt11)) == {"status": "OK"}
    await stack.wait_state(status_url, "refunded")
    await stack.ledgers_balance()


async def test_an_expired_k1_is_refused(stack: Stack) -> None:
    status_url, offer = await stopped_session(stack)
    async with stack.strom.db.transaction() as conn:
        await conn.execute(
            update(refunds).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    invoice = await stack.wallet.create_invoice(1_500_000)
    answer = await stack.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)
    assert answer["status"] == "ERROR"
    assert "expired" in str(answer["reason"])
    assert (await stack.get(status_url))["state"] == "start_failed"
    await stack.ledgers_balance()


async def test_out_of_range_amounts_make_no_invoice(stack: Stack) -> None:
    offer = await stack.get(stack.pay_url)
    before = await state_snapshot(stack)
    for amount in ("1", "999", str(offer["maxSendable"] + 1), "12.5", "", "-5", "1e9"):
        answer = await stack.get(str(offer["callback"]), amount=amount)
        assert answer["status"] == "ERROR", amount
        assert "pr" not in answer
    assert await state_snapshot(stack) == before
