"""Reading BOLT11 invoices: the one wrapper around the ``bolt11`` library.

Theory of operation: :func:`decode_invoice` turns a string into a :class:`DecodedInvoice` or
raises one of the ``Invoice…`` errors of :mod:`strom_core.lightning_errors`. Every part of
Strom that reads an invoice (refund checks, the lightning backends, zap receipts) goes through
it, so the reader rules and the error types are the same everywhere.

Decoding uses the ``bolt11`` library, plus the reader rules of BOLT 11 it does not enforce
itself: mixed case is refused, a ``p`` amount must not have sub-millisatoshi precision, and an
unknown *even* feature bit fails the invoice ("it's ok to be odd"). The signature is verified
against the ``n`` field when present (high-S refused) and by public-key recovery otherwise.

Results are cached (a bounded LRU): decoding costs about 10 ms in the library, and the same
invoice is read several times (a zap receipt is decoded when it is built and again when it
comes back from a relay). Only valid invoices are cached, and :class:`DecodedInvoice` is
frozen, so sharing a result is safe; an untrusted caller can only evict entries, never change
one.

This module is pure: no I/O, no event loop.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import bolt11
from bolt11.exceptions import (
    Bolt11AmountInvalidException,
    Bolt11Bech32InvalidException,
    Bolt11Exception,
    Bolt11HrpInvalidException,
    Bolt11SignatureVerifyException,
)

from strom_core.lightning_errors import (
    InvoiceMalformed,
    InvoiceSignatureInvalid,
    InvoiceUnsupportedFeature,
    InvoiceWrongNetwork,
)
from strom_core.units import Msat

__all__ = ["KNOWN_EVEN_FEATURE_BITS", "DecodedInvoice", "decode_invoice"]

# BOLT 9 features that may appear in an invoice and that the payers Strom uses understand:
# var_onion_optin (8), payment_secret (14), basic_mpp (16), option_route_blinding (24),
# amp (30), option_payment_metadata (48). An even (required) bit outside this set fails.
KNOWN_EVEN_FEATURE_BITS = frozenset({8, 14, 16, 24, 30, 48})

_HRP = re.compile(r"ln(bcrt|bc|tbs|tb)(?:(\d+)([munp]?))?")
_MAX_LENGTH = 7089  # the largest string a QR code can hold; no honest invoice is longer
_CACHE_SIZE = 512


@dataclass(frozen=True, slots=True)
class DecodedInvoice:
    """A BOLT11 invoice whose structure and signature are valid."""

    bolt11: str
    """The invoice, lowercased (as it must be sent on)."""
    network: str
    payment_hash: str
    amount_msat: Msat | None
    payee: str
    created_at: datetime
    expires_at: datetime
    description: str | None
    description_hash: str | None

    def expired(self, now: datetime) -> bool:
        """True when the invoice can no longer be paid at ``now``."""
        return now >= self.expires_at


@lru_cache(maxsize=_CACHE_SIZE)
def decode_invoice(invoice: str) -> DecodedInvoice:
    """Decode a BOLT11 string and verify its structure and signature.

    Args:
        invoice: the invoice as a wallet sent it; surrounding whitespace and a
            ``lightning:`` prefix are accepted.

    Returns:
        The decoded invoice.

    Raises:
        InvoiceMalformed: not valid bech32, bad checksum, mixed case, sub-msat amount,
            missing payment hash or secret, no description.
        InvoiceWrongNetwork: a currency prefix that is not a bitcoin network.
        InvoiceSignatureInvalid: the signature does not verify.
        InvoiceUnsupportedFeature: an unknown even feature bit is set.
    """
    text = invoice.strip()
    if text.lower().startswith("lightning:"):
        text = text[len("lightning:") :]
    if not text:
        raise InvoiceMalformed("the invoice is empty")
    if len(text) > _MAX_LENGTH:
        raise InvoiceMalformed(f"the invoice is {len(text)} characters long; too long")
    if text != text.lower() and text != text.upper():
        raise InvoiceMalformed("the invoice mixes upper and lower case, which bech32 forbids")
    text = text.lower()
    _check_hrp(text)
    decoded = _decode(text)
    _check_features(decoded)
    created = datetime.fromtimestamp(decoded.date, UTC)
    try:
        expires = created + timedelta(seconds=int(decoded.expiry))
    except OverflowError:
        expires = datetime.max.replace(tzinfo=UTC)  # an expiry beyond the calendar: never
    amount = decoded.amount_msat
    return DecodedInvoice(
        bolt11=text,
        network=decoded.currency,
        payment_hash=decoded.payment_hash,
        amount_msat=Msat(int(amount)) if amount is not None else None,
        payee=decoded.payee or "",
        created_at=created,
        expires_at=expires,
        description=decoded.description,
        description_hash=decoded.description_hash,
    )


def _check_hrp(text: str) -> None:
    separator = text.rfind("1")
    if separator < 1:
        raise InvoiceMalformed("not a BOLT11 invoice (no bech32 separator)")
    hrp = text[:separator]
    if not hrp.startswith("ln"):
        raise InvoiceMalformed("not a BOLT11 invoice (it does not start with 'ln')")
    match = _HRP.fullmatch(hrp)
    if match is None:
        if _HRP.match(hrp) is None:
            raise InvoiceWrongNetwork(f"unknown network prefix in {hrp!r}")
        raise InvoiceMalformed(f"the amount in {hrp!r} is not a number with a known multiplier")
    digits, multiplier = match.group(2), match.group(3)
    if digits is not None and multiplier == "p" and not digits.endswith("0"):
        raise InvoiceMalformed("the amount has sub-millisatoshi precision")
    if digits is not None and int(digits) == 0:
        raise InvoiceMalformed("the amount is zero")


def _decode(text: str) -> bolt11.Bolt11:
    try:
        return bolt11.decode(text)
    except Bolt11SignatureVerifyException as exc:
        raise InvoiceSignatureInvalid("the invoice signature does not verify") from exc
    except Bolt11Bech32InvalidException as exc:
        raise InvoiceMalformed("not valid bech32 (bad characters or checksum)") from exc
    except Bolt11AmountInvalidException as exc:
        raise InvoiceMalformed("the amount is not valid") from exc
    except Bolt11HrpInvalidException as exc:
        raise InvoiceWrongNetwork("unknown network prefix") from exc
    except Bolt11Exception as exc:
        raise InvoiceMalformed(f"not a valid invoice: {exc}") from exc
    except ValueError as exc:
        # coincurve: "failed to recover ECDSA public key"; bech32/bitstring: bad lengths.
        if "recover" in str(exc) or "signature" in str(exc).lower():
            raise InvoiceSignatureInvalid("the invoice signature cannot be verified") from exc
        raise InvoiceMalformed(f"not a valid invoice: {exc}") from exc
    except (IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError) as exc:
        # The library reads fields straight out of the bit stream; truncated or garbled
        # fields surface as these.
        raise InvoiceMalformed("not a valid invoice (a field could not be read)") from exc


def _check_features(decoded: bolt11.Bolt11) -> None:
    features = decoded.features
    if features is None:
        return
    bits = features.data.bin
    for position, value in enumerate(reversed(bits)):
        if value == "1" and position % 2 == 0 and position not in KNOWN_EVEN_FEATURE_BITS:
            raise InvoiceUnsupportedFeature(
                f"the invoice requires feature bit {position}, which is not supported"
            )
