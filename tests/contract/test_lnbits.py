"""LNbits specifics, against the real LNbits: keys, whole sats, the full money round trip."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from strom_core.errors import BackendRejected
from strom_core.units import UnitError
from strom_lightning import (
    LNbitsBackend,
    RefundsDisabled,
    Succeeded,
    decode_invoice,
)
from tests.peers.lnbits import LNbitsPeer
from tests.waits import until


@pytest.fixture
async def strom_wallet(lnbits_peer: LNbitsPeer) -> AsyncIterator[LNbitsBackend]:
    assert lnbits_peer.strom is not None
    backend = LNbitsBackend(
        lnbits_peer.url,
        invoice_key=lnbits_peer.strom.inkey,
        admin_key=lnbits_peer.strom.adminkey,
        network="bc",
        reconcile_every_s=1.0,
        fallback_poll_s=0.3,
    )
    try:
        yield backend
    finally:
        await backend.aclose()


async def test_without_an_admin_key_refunds_are_disabled_and_say_so(
    lnbits_peer: LNbitsPeer,
) -> None:
    assert lnbits_peer.strom is not None
    backend = LNbitsBackend(
        lnbits_peer.url, invoice_key=lnbits_peer.strom.inkey, admin_key=None, network="bc"
    )
    try:
        info = await backend.node_info()
        health = await backend.health()
        invoice = await backend.create_invoice(1_000, expiry_s=60)  # selling still works
        with pytest.raises(RefundsDisabled, match="admin key"):
            await backend.pay_invoice(invoice.bolt11, max_fee_msat=0, timeout_s=5)
    finally:
        await backend.aclose()

    assert not info.can_pay
    assert info.can_receive
    assert any("refunds are disabled" in note for note in info.notes)
    assert health.ok
    assert "refunds are disabled" in health.detail
    assert "disabled" in repr(backend)


async def test_a_wrong_key_is_a_clear_rejection(lnbits_peer: LNbitsPeer) -> None:
    backend = LNbitsBackend(lnbits_peer.url, invoice_key="0" * 32, admin_key=None, network="bc")
    try:
        with pytest.raises(BackendRejected, match="invoice key"):
            await backend.node_info()
        assert not (await backend.health()).ok
    finally:
        await backend.aclose()


async def test_lnbits_invoices_are_whole_sats(strom_wallet: LNbitsBackend) -> None:
    with pytest.raises(UnitError, match="whole sats"):
        await strom_wallet.create_invoice(1_500, expiry_s=60)


async def test_pay_charge_refund_round_trip_moves_the_money(
    lnbits_peer: LNbitsPeer, strom_wallet: LNbitsBackend
) -> None:
    """A driver pays Strom 21 sat, Strom refunds 8 sat to the driver's invoice."""
    assert lnbits_peer.driver is not None
    assert lnbits_peer.strom is not None
    driver, strom = lnbits_peer.driver, lnbits_peer.strom
    strom_before = lnbits_peer.balance_msat(strom)
    driver_before = lnbits_peer.balance_msat(driver)
    invoice = await strom_wallet.create_invoice(21_000, memo="charge A1", expiry_s=600)

    async def pending() -> set[str]:
        return {invoice.payment_hash}

    async with (
        strom_wallet.settled_invoices(pending) as stream,
        httpx.AsyncClient(base_url=lnbits_peer.url, timeout=30) as client,
    ):
        paid = await client.post(
            "/api/v1/payments",
            json={"out": True, "bolt11": invoice.bolt11},
            headers={"X-Api-Key": driver.adminkey},
        )
        assert paid.status_code == 201, paid.text
        async with asyncio.timeout(10):
            settlement = await anext(stream)
        made = await client.post(
            "/api/v1/payments",
            json={"out": False, "amount": 8, "memo": "refund"},
            headers={"X-Api-Key": driver.inkey},
        )
        refund = made.json()["bolt11"]

    result = await strom_wallet.pay_invoice(refund, max_fee_msat=1_000, timeout_s=10)

    assert settlement.payment_hash == invoice.payment_hash
    assert settlement.amount_msat == 21_000
    assert isinstance(result, Succeeded)
    assert lnbits_peer.balance_msat(strom) == strom_before + 21_000 - 8_000 - result.fee_msat
    assert lnbits_peer.balance_msat(driver) == driver_before - 21_000 + 8_000
    assert await strom_wallet.lookup_payment(decode_invoice(refund).payment_hash) == result


async def test_the_keys_never_reach_the_logs(
    lnbits_peer: LNbitsPeer, strom_wallet: LNbitsBackend, caplog: pytest.LogCaptureFixture
) -> None:
    assert lnbits_peer.strom is not None
    caplog.set_level(logging.DEBUG)
    invoice = await strom_wallet.create_invoice(1_000, expiry_s=60)

    async def pending() -> set[str]:
        return {invoice.payment_hash}

    def logged() -> str:
        return "\n".join(record.getMessage() for record in caplog.records)

    stream = strom_wallet.settled_invoices(pending)
    async with asyncio.TaskGroup() as group:
        group.create_task(anext(stream, None))
        await until(lambda: "/api/v1/ws/" in logged(), "the websocket connects and logs it")
        await stream.aclose()
    await strom_wallet.node_info()

    assert "/api/v1/ws/***" in logged()  # the websocket library did log its request, masked
    assert lnbits_peer.strom.inkey not in logged()
    assert lnbits_peer.strom.adminkey not in logged()
    assert lnbits_peer.strom.inkey not in repr(strom_wallet)
