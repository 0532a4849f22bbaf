"""Checks for BOLT11 invoices that wallets submit to Strom (LNURL-withdraw refunds).

Theory of operation: an invoice a stranger hands us is untrusted input that we are about to
pay. :func:`~strom_core.bolt11.decode_invoice` (the one BOLT11 reader) turns the string into a
:class:`~strom_core.bolt11.DecodedInvoice` or raises one of the ``Invoice…`` errors of
:mod:`strom_core.lightning_errors`; :func:`check_withdraw_invoice` adds the policy: network,
amount present and within the offered range, not expired at ``now`` (the caller passes the
clock's reading), and a payment hash never seen before.

The "seen" check: pass ``seen`` to refuse a hash the caller already knows, but the authoritative
check belongs in the caller's database, atomically with the debit (a unique key on the payment
hash); :attr:`DecodedInvoice.payment_hash` is what to put there.

This module is pure: no I/O, no event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from strom_core.bolt11 import DecodedInvoice, decode_invoice
from strom_core.lightning import NETWORK_NAMES
from strom_core.lightning_errors import (
    InvoiceAlreadySeen,
    InvoiceAmountMissing,
    InvoiceAmountOutOfRange,
    InvoiceExpired,
    InvoiceWrongNetwork,
)
from strom_core.units import format_sat

__all__ = ["check_withdraw_invoice"]


def check_withdraw_invoice(
    invoice: str,
    *,
    network: str,
    min_msat: int,
    max_msat: int,
    now: datetime,
    seen: Callable[[str], bool] | None = None,
    min_remaining_s: int = 0,
) -> DecodedInvoice:
    """Check an invoice a wallet submitted to be paid (LNURL-withdraw), in the order below.

    Args:
        invoice: the BOLT11 string from the wallet.
        network: the BOLT11 currency prefix Strom runs on (``bc``, ``tb``, ``tbs``, ``bcrt``).
        min_msat: the smallest amount offered (``minWithdrawable``).
        max_msat: the largest amount offered (``maxWithdrawable``).
        now: the current time (from the caller's clock), aware.
        seen: optional predicate, True for a payment hash the caller has seen before.
        min_remaining_s: refuse invoices that expire sooner than this after ``now``.

    Returns:
        The decoded invoice; its ``payment_hash`` is the key for the caller's atomic
        "never paid twice" check.

    Raises:
        InvoiceMalformed: see :func:`decode_invoice`.
        InvoiceSignatureInvalid: see :func:`decode_invoice`.
        InvoiceWrongNetwork: the invoice is for another network.
        InvoiceUnsupportedFeature: see :func:`decode_invoice`.
        InvoiceAmountMissing: the invoice has no amount.
        InvoiceAmountOutOfRange: the amount is below ``min_msat`` or above ``max_msat``.
        InvoiceExpired: expired at ``now`` or within ``min_remaining_s`` of it.
        InvoiceAlreadySeen: ``seen`` says the payment hash is known.
    """
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    decoded = decode_invoice(invoice)
    if decoded.network != network:
        raise InvoiceWrongNetwork(
            f"the invoice is for {_network_name(decoded.network)}, "
            f"but this service runs on {_network_name(network)}"
        )
    if decoded.amount_msat is None:
        raise InvoiceAmountMissing("the invoice has no amount; make one for the amount offered")
    if not min_msat <= decoded.amount_msat <= max_msat:
        offered = (
            format_sat(min_msat)
            if min_msat == max_msat
            else f"between {format_sat(min_msat)} and {format_sat(max_msat)}"
        )
        raise InvoiceAmountOutOfRange(
            f"the invoice asks for {format_sat(decoded.amount_msat)}; the amount offered is "
            f"{offered}"
        )
    if now + timedelta(seconds=min_remaining_s) >= decoded.expires_at:
        raise InvoiceExpired(
            f"the invoice expired at {decoded.expires_at.isoformat()}"
            if decoded.expired(now)
            else f"the invoice expires at {decoded.expires_at.isoformat()}, too soon to pay it"
        )
    if seen is not None and seen(decoded.payment_hash):
        raise InvoiceAlreadySeen(
            f"an invoice with payment hash {decoded.payment_hash} was already submitted"
        )
    return decoded


def _network_name(prefix: str) -> str:
    name = NETWORK_NAMES.get(prefix)
    return f"{name} (ln{prefix})" if name else f"ln{prefix}"
