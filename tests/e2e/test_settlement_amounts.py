"""What a settlement credits: what the backend says was received, within what is possible.

A receiving node refuses less than the invoice asks, and may refuse more than twice it
(BOLT 4), so a backend reporting either is wrong: the payment is not credited, it is flagged
for the operator with an error naming the payment hash and both amounts. An overpayment within
that range is the driver's money: it is the budget, and what is not used is refunded.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from strom_lightning import FakeDriverWallet
from strom_storage.schema import payments, sessions
from tests.e2e.conftest import Stack


async def invoice(stack: Stack, amount_msat: int) -> tuple[str, str]:
    """A session's invoice from the sticker; returns (session json url, bolt11)."""
    offer = await stack.get(stack.pay_url)
    answer = await stack.get(str(offer["callback"]), amount=str(amount_msat))
    page = str(answer["successAction"]["url"])
    return page.replace("?", ".json?", 1), str(answer["pr"])


async def payment_state_becomes(stack: Stack, state: str) -> None:
    async def poll() -> None:
        while True:
            async with stack.strom.db.reader() as conn:
                found = await conn.scalar(select(payments.c.state))
            if found == state:
                return
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 10)


def driver(stack: Stack) -> FakeDriverWallet:
    assert isinstance(stack.wallet, FakeDriverWallet)
    return stack.wallet


@pytest.mark.parametrize("received_msat", [1_499_999, 1_000_000, 3_000_001])
async def test_a_misreported_settlement_is_not_credited_and_is_flagged_for_the_operator(
    stack: Stack,
    expect_errors: list[logging.LogRecord],
    caplog: pytest.LogCaptureFixture,
    received_msat: int,
) -> None:
    status_url, bolt11 = await invoice(stack, 1_500_000)
    await driver(stack).pay(bolt11, amount_msat=received_msat)
    await payment_state_becomes(stack, "flagged")
    # Flagged is final for Strom: the next reconciliation neither credits nor logs again.
    assert await stack.strom.payments.reconcile() == 0

    status = await stack.get(status_url)
    assert status["state"] == "awaiting_payment"  # no charge starts on it
    assert status["paid_msat"] == status["refundable_msat"] == 0
    async with stack.strom.db.reader() as conn:
        row = (await conn.execute(select(payments))).one()
    assert row.amount_msat == 1_500_000  # the invoice, not the report
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]  # once, with context
    message = record.getMessage()
    assert row.payment_hash in message
    assert f"reports {received_msat} msat received for an invoice of 1500000 msat" in message
    await stack.ledgers_balance()


@pytest.mark.parametrize("received_msat", [1_500_000, 1_800_000, 3_000_000])
async def test_an_overpayment_up_to_twice_the_invoice_is_the_drivers_budget(
    stack: Stack, received_msat: int
) -> None:
    stack.charger.connectors[1].operative = False  # rejected start: everything refundable
    status_url, bolt11 = await invoice(stack, 1_500_000)
    await driver(stack).pay(bolt11, amount_msat=received_msat)
    status = await stack.wait_state(status_url, "start_failed")
    assert status["paid_msat"] == status["refundable_msat"] == received_msat
    await stack.ledgers_balance()


async def test_a_payment_for_a_connector_taken_meanwhile_fits_the_stop_reason_column(
    stack: Stack,
) -> None:
    """Two invoices for one free connector, both paid: the later one's start failure reason
    fits the column (PostgreSQL refuses a longer one, and that stopped Strom)."""
    first_url, first = await invoice(stack, 1_500_000)
    second_url, second = await invoice(stack, 1_500_000)
    await driver(stack).pay(first)
    await stack.wait_state(first_url, "starting", "charging")
    await driver(stack).pay(second)
    failed = await stack.wait_state(second_url, "start_failed")
    assert failed["refundable_msat"] == 1_500_000
    width = sessions.c.stop_reason.type.length
    assert width is not None
    assert 0 < len(failed["stop_reason"]) <= width, failed["stop_reason"]
    await stack.ledgers_balance()
