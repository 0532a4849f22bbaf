"""BOLT11 decoding and the checks on invoices wallets submit (pure, no I/O)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom_lightning import (
    InvoiceAlreadySeen,
    InvoiceAmountMissing,
    InvoiceAmountOutOfRange,
    InvoiceExpired,
    InvoiceMalformed,
    InvoiceRejected,
    InvoiceSignatureInvalid,
    InvoiceUnsupportedFeature,
    InvoiceWrongNetwork,
    check_withdraw_invoice,
    decode_invoice,
)
from tests.contract.harness import foreign_invoice
from tests.vectors import load_json

VECTORS: dict[str, Any] = load_json("bolt11-vectors.json")


# BOLT 11 "Examples of Invalid Invoices", by title, and the error each must raise.
INVALID = {
    "Same, but adding invalid unknown feature 100": InvoiceUnsupportedFeature,
    "Bech32 checksum is invalid.": InvoiceMalformed,
    "Malformed bech32 string (no 1)": InvoiceMalformed,
    "Malformed bech32 string (mixed case)": InvoiceMalformed,
    "Signature is not recoverable.": InvoiceSignatureInvalid,
    "String is too short.": InvoiceMalformed,
    "Invalid multiplier": InvoiceMalformed,
    "Invalid sub-millisatoshi precision.": InvoiceMalformed,
    "Missing required `s` field.": InvoiceMalformed,
    "Non canonical signature (high-S) with 'n' field defined": InvoiceSignatureInvalid,
}
PAYEE = "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad"


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: v["title"][:60])
def test_every_valid_bolt11_vector_decodes(vector: dict[str, Any]) -> None:
    decoded = decode_invoice(vector["invoice"])

    assert decoded.bolt11 == vector["invoice"].lower()
    assert len(decoded.payment_hash) == 64
    if "high-S" not in vector["title"]:
        assert decoded.payee == PAYEE


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["title"][:60])
def test_every_invalid_bolt11_vector_is_refused_with_its_own_error(
    vector: dict[str, Any],
) -> None:
    with pytest.raises(INVALID[vector["title"]]):
        decode_invoice(vector["invoice"])


def test_vector_amounts_are_exact_msat() -> None:
    by_title = {v["title"]: v["invoice"] for v in VECTORS["valid"]}
    coffee = by_title["Please send $3 for a cup of coffee to the same peer, within one minute"]
    pico = next(t for t in by_title if "pico-BTC" in t)

    assert decode_invoice(coffee).amount_msat == 250_000_000
    assert decode_invoice(by_title[pico]).amount_msat == 967_878_534
    donation = next(t for t in by_title if t.startswith("Please make a donation"))
    assert decode_invoice(by_title[donation]).amount_msat is None


NOW = datetime(2026, 1, 1, tzinfo=UTC)


def regtest(amount_msat: int, *, expiry_s: int = 600) -> str:
    return foreign_invoice("bcrt", amount_msat, expiry_s=expiry_s, created_at=int(NOW.timestamp()))


def check(bolt11: str, **overrides: Any) -> Any:
    arguments: dict[str, Any] = {
        "network": "bcrt",
        "min_msat": 1_000,
        "max_msat": 50_000,
        "now": NOW + timedelta(seconds=10),
    }
    arguments.update(overrides)
    return check_withdraw_invoice(bolt11, **arguments)


def test_a_good_refund_invoice_passes_and_gives_its_hash() -> None:
    bolt11 = regtest(21_000)

    checked = check(bolt11)

    assert checked.amount_msat == 21_000
    assert checked.payment_hash == decode_invoice(bolt11).payment_hash
    assert check("lightning:" + bolt11.upper()).payment_hash == checked.payment_hash


def test_each_failure_has_its_own_error() -> None:
    with pytest.raises(InvoiceWrongNetwork, match="regtest"):
        check(regtest(21_000), network="bc")
    with pytest.raises(InvoiceAmountOutOfRange, match="50 sat"):
        check(regtest(60_000))
    with pytest.raises(InvoiceAmountOutOfRange):
        check(regtest(999))
    with pytest.raises(InvoiceExpired, match="expired"):
        check(regtest(21_000, expiry_s=60), now=NOW + timedelta(seconds=60))
    with pytest.raises(InvoiceExpired, match="too soon"):
        check(regtest(21_000, expiry_s=60), min_remaining_s=55)
    bolt11 = regtest(21_000)
    seen = {decode_invoice(bolt11).payment_hash}.__contains__
    with pytest.raises(InvoiceAlreadySeen):
        check(bolt11, seen=seen)
    with pytest.raises(InvoiceMalformed):
        check("not an invoice")


def test_an_invoice_without_amount_is_refused() -> None:
    donation = next(v["invoice"] for v in VECTORS["valid"] if "any amount" in v["title"])

    with pytest.raises(InvoiceAmountMissing):
        check(donation, network="bc", now=datetime(2017, 6, 1, 10, 57, 40, tzinfo=UTC))


def test_checks_need_an_aware_clock() -> None:
    with pytest.raises(ValueError, match="aware"):
        check(regtest(21_000), now=datetime(2026, 1, 1))  # a naive clock: the point


def test_error_codes_are_distinct() -> None:
    errors = [
        InvoiceMalformed,
        InvoiceSignatureInvalid,
        InvoiceWrongNetwork,
        InvoiceUnsupportedFeature,
        InvoiceAmountMissing,
        InvoiceAmountOutOfRange,
        InvoiceExpired,
        InvoiceAlreadySeen,
    ]
    assert len({error.code for error in errors}) == len(errors)


@given(st.text(max_size=400))
def test_decoding_arbitrary_text_raises_only_invoice_errors(text: str) -> None:
    with contextlib.suppress(InvoiceRejected):
        decode_invoice(text)


@given(st.data())
def test_decoding_mutated_invoices_raises_only_invoice_errors(data: st.DataObject) -> None:
    charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
    base = data.draw(st.sampled_from([v["invoice"].lower() for v in VECTORS["valid"]] or ["lnbc1"]))
    position = data.draw(st.integers(0, len(base) - 1))
    replacement = data.draw(st.sampled_from(charset))
    mutated = base[:position] + replacement + base[position + 1 :]
    with contextlib.suppress(InvoiceRejected):
        decode_invoice(mutated)
