"""The contract every lightning backend keeps: fake, LND (stub) and LNbits (real) alike."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from strom_core.units import UnitError
from strom_lightning import (
    Failed,
    InvoiceAlreadySeen,
    InvoiceAmountOutOfRange,
    InvoiceExpired,
    InvoiceNotFound,
    InvoiceState,
    InvoiceWrongNetwork,
    LightningBackend,
    PaymentResult,
    Settlement,
    SettlementStream,
    Succeeded,
    Unknown,
    check_withdraw_invoice,
    decode_invoice,
)
from tests.contract.harness import Harness, foreign_invoice
from tests.waits import until

SETTLE_TIMEOUT_S = 10.0
MAX_FEE_MSAT = 5_000


def pending_of(hashes: set[str]) -> Callable[[], Awaitable[set[str]]]:
    async def pending() -> set[str]:
        return set(hashes)

    return pending


async def next_settlement(stream: SettlementStream) -> Settlement:
    async with asyncio.timeout(SETTLE_TIMEOUT_S):
        return await anext(stream)


async def eventually_final(backend: LightningBackend, payment_hash: str) -> PaymentResult:
    async with asyncio.timeout(SETTLE_TIMEOUT_S):
        while True:
            result = await backend.lookup_payment(payment_hash)
            if not isinstance(result, Unknown):
                return result
            await asyncio.sleep(0.1)


def paid_with(result: PaymentResult, payment_hash: str) -> bool:
    return (
        isinstance(result, Succeeded)
        and hashlib.sha256(bytes.fromhex(result.preimage)).hexdigest() == payment_hash
    )


# --- money in --------------------------------------------------------------------------------


async def test_create_invoice_mints_a_signed_invoice_for_the_amount(harness: Harness) -> None:
    before = datetime.now(UTC)
    invoice = await harness.backend.create_invoice(21_000, memo="charge A1", expiry_s=600)

    decoded = decode_invoice(invoice.bolt11)
    assert decoded.payment_hash == invoice.payment_hash
    assert decoded.amount_msat == invoice.amount_msat == 21_000
    assert decoded.network == harness.network
    assert decoded.description == "charge A1"
    assert invoice.expires_at == decoded.expires_at
    assert before + timedelta(seconds=590) <= invoice.expires_at <= before + timedelta(seconds=610)


async def test_an_amount_the_backend_cannot_invoice_is_a_unit_error(harness: Harness) -> None:
    """Sub-sat amounts are invoiced exactly, or refused as a ``UnitError`` (LNbits: whole sats)."""
    for nonsense in (0, -1_000):
        with pytest.raises(UnitError):
            await harness.backend.create_invoice(nonsense, expiry_s=600)
    if harness.whole_sats_only:
        with pytest.raises(UnitError, match=r"whole sats only, and 21500 msat is 21\.500 sat"):
            await harness.backend.create_invoice(21_500, expiry_s=600)
    else:
        invoice = await harness.backend.create_invoice(21_500, expiry_s=600)
        assert invoice.amount_msat == decode_invoice(invoice.bolt11).amount_msat == 21_500


async def test_an_invoice_can_commit_to_a_description_hash(harness: Harness) -> None:
    metadata_hash = hashlib.sha256(b'[["text/plain","Charge at A1"]]').digest()

    invoice = await harness.backend.create_invoice(
        5_000, description_hash=metadata_hash, expiry_s=600
    )

    decoded = decode_invoice(invoice.bolt11)
    assert decoded.description_hash == metadata_hash.hex()
    assert decoded.description is None


async def test_a_new_invoice_is_pending_and_an_unknown_hash_is_not_found(harness: Harness) -> None:
    invoice = await harness.backend.create_invoice(3_000, expiry_s=600)

    status = await harness.backend.lookup_invoice(invoice.payment_hash)

    assert status.state is InvoiceState.PENDING
    assert status.amount_msat == 3_000
    assert status.received_msat == 0
    assert status.settled_at is None
    with pytest.raises(InvoiceNotFound):
        await harness.backend.lookup_invoice("00" * 32)
    with pytest.raises(InvoiceNotFound):
        await harness.backend.lookup_invoice("../wallet")


async def test_create_settle_stream(harness: Harness) -> None:
    invoice = await harness.backend.create_invoice(21_000, expiry_s=600)
    pending = {invoice.payment_hash}

    async with harness.backend.settled_invoices(pending_of(pending)) as stream:
        await harness.driver_pay(invoice.bolt11)
        settlement = await next_settlement(stream)

    assert settlement.payment_hash == invoice.payment_hash
    assert settlement.amount_msat == 21_000
    status = await harness.backend.lookup_invoice(invoice.payment_hash)
    assert status.state is InvoiceState.SETTLED
    assert status.received_msat == 21_000
    assert status.settled_at is not None


async def test_no_settlement_is_missed_across_a_disconnect(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    first = await harness.backend.create_invoice(1_000, expiry_s=600)
    second = await harness.backend.create_invoice(2_000, expiry_s=600)
    pending = {first.payment_hash, second.payment_hash}

    async with harness.backend.settled_invoices(pending_of(pending)) as stream:
        await harness.driver_pay(first.bolt11)
        assert (await next_settlement(stream)).payment_hash == first.payment_hash
        pending.discard(first.payment_hash)
        async with harness.outage():
            await harness.driver_pay(second.bolt11)
            await until(lambda: stream_lost(caplog), "the stream notices the outage")
        settlement = await next_settlement(stream)

    assert settlement.payment_hash == second.payment_hash
    assert settlement.amount_msat == 2_000


def stream_lost(caplog: pytest.LogCaptureFixture) -> bool:
    return any(
        "settlement stream" in r.getMessage() and "lost" in r.getMessage() for r in caplog.records
    )


async def test_a_restarted_backend_delivers_what_was_paid_while_it_was_down(
    harness: Harness,
) -> None:
    invoice = await harness.backend.create_invoice(4_000, expiry_s=600)
    await harness.backend.aclose()
    await harness.driver_pay(invoice.bolt11)

    backend = await harness.restart()
    async with backend.settled_invoices(pending_of({invoice.payment_hash})) as stream:
        settlement = await next_settlement(stream)

    assert settlement.payment_hash == invoice.payment_hash
    assert settlement.amount_msat == 4_000


async def test_closing_the_backend_ends_its_streams(harness: Harness) -> None:
    stream = harness.backend.settled_invoices(pending_of(set()))

    async def drain() -> list[Settlement]:
        return [settlement async for settlement in stream]

    async with asyncio.TaskGroup() as group:
        drained = group.create_task(drain())
        await asyncio.sleep(0.2)
        await harness.backend.aclose()

    assert drained.result() == []


# --- money out -------------------------------------------------------------------------------


async def test_pay_succeeds_once_and_lookup_agrees(harness: Harness) -> None:
    refund = await harness.refund_invoice(7_000)
    payment_hash = decode_invoice(refund).payment_hash

    result = await harness.backend.pay_invoice(refund, max_fee_msat=MAX_FEE_MSAT, timeout_s=10)

    assert paid_with(result, payment_hash), result
    assert isinstance(result, Succeeded)
    assert 0 <= result.fee_msat <= MAX_FEE_MSAT
    assert await harness.driver_received(payment_hash)
    assert await harness.backend.lookup_payment(payment_hash) == result
    again = await harness.backend.pay_invoice(refund, max_fee_msat=MAX_FEE_MSAT, timeout_s=10)
    assert isinstance(again, Succeeded)
    assert again.preimage == result.preimage


async def test_pay_to_an_unreachable_node_fails_definitely(harness: Harness) -> None:
    bolt11 = await harness.unpayable_invoice(6_000)
    payment_hash = decode_invoice(bolt11).payment_hash

    result = await harness.backend.pay_invoice(bolt11, max_fee_msat=MAX_FEE_MSAT, timeout_s=10)

    assert isinstance(result, Failed), result
    assert isinstance(await harness.backend.lookup_payment(payment_hash), Failed)


async def test_an_unknown_payment_is_resolved_later_by_lookup(harness: Harness) -> None:
    refund = await harness.refund_invoice(8_000)
    payment_hash = decode_invoice(refund).payment_hash
    await harness.arm_unknown()

    result = await harness.backend.pay_invoice(refund, max_fee_msat=MAX_FEE_MSAT, timeout_s=5)

    assert isinstance(result, Unknown), result
    await harness.resolve_unknown(payment_hash)
    final = await eventually_final(harness.backend, payment_hash)
    assert paid_with(final, payment_hash), final
    assert await harness.driver_received(payment_hash)


async def test_a_payment_the_node_never_saw_is_failed_before_dispatch(harness: Harness) -> None:
    result = await harness.backend.lookup_payment("ab" * 32)
    garbage = await harness.backend.lookup_payment("../wallet")

    assert isinstance(result, Failed)
    assert result.pre_dispatch
    assert isinstance(garbage, Failed)
    assert garbage.pre_dispatch


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(
            lambda net: foreign_invoice(net, 1_000, expiry_s=60, created_at=1), id="expired"
        ),
        pytest.param(lambda net: foreign_invoice("tbs", 1_000), id="wrong-network"),
        pytest.param(lambda net: "lnbc1notaninvoice", id="garbage"),
    ],
)
async def test_pay_refuses_unpayable_invoices_before_sending(
    harness: Harness, make: Callable[[str], str]
) -> None:
    result = await harness.backend.pay_invoice(
        make(harness.network), max_fee_msat=MAX_FEE_MSAT, timeout_s=5
    )

    assert isinstance(result, Failed)
    assert result.pre_dispatch


# --- the checks on invoices wallets submit ---------------------------------------------------


async def test_the_checks_accept_a_good_refund_invoice_and_refuse_bad_ones(
    harness: Harness,
) -> None:
    refund = await harness.refund_invoice(10_000)
    now = datetime.now(UTC)
    checked = check_withdraw_invoice(
        refund, network=harness.network, min_msat=1_000, max_msat=10_000, now=now
    )
    seen = {checked.payment_hash}

    with pytest.raises(InvoiceAmountOutOfRange):
        check_withdraw_invoice(
            refund, network=harness.network, min_msat=1_000, max_msat=9_000, now=now
        )
    with pytest.raises(InvoiceExpired):
        check_withdraw_invoice(
            refund,
            network=harness.network,
            min_msat=1_000,
            max_msat=10_000,
            now=now + timedelta(days=2),
        )
    with pytest.raises(InvoiceAlreadySeen):
        check_withdraw_invoice(
            refund,
            network=harness.network,
            min_msat=1_000,
            max_msat=10_000,
            now=now,
            seen=seen.__contains__,
        )
    other_network = "tb" if harness.network != "tb" else "bc"
    with pytest.raises(InvoiceWrongNetwork):
        check_withdraw_invoice(
            refund, network=other_network, min_msat=1_000, max_msat=10_000, now=now
        )


# --- health ----------------------------------------------------------------------------------


async def test_node_info_and_health(harness: Harness) -> None:
    info = await harness.backend.node_info()
    health = await harness.backend.health()

    assert info.network == harness.network
    assert info.can_receive
    assert info.can_pay
    assert health.ok, health.detail
    if harness.name == "fake":
        assert not info.real_money
        assert any("NO REAL MONEY" in note for note in info.notes)
        assert "NO REAL MONEY" in info.alias
