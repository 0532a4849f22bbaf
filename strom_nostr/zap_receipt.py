"""NIP-57 zap receipts (kind 9735): building the charger's own (appendix E), checking them (F).

When the invoice of a valid zap request (:mod:`strom_nostr.zap_request`) is paid, the agent
signs a kind-9735 *receipt* (:func:`zap_receipt`). When it later sees a receipt on a relay,
:func:`verify_zap_receipt` accepts only one signed by its own key, over an invoice that commits
to the embedded request, and returns the payment hash. A receipt is never proof of payment:
the caller still asks the lightning backend.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from strom_core.bolt11 import DecodedInvoice, decode_invoice
from strom_core.lightning_errors import InvoiceRejected
from strom_nostr.errors import BuildError, InvalidEvent
from strom_nostr.event import Event, is_hex64, parse_event, sign_event, verify_event
from strom_nostr.zap_errors import (
    ZapReceiptError,
    ZapReceiptForeign,
    ZapReceiptInvalid,
    ZapRequestError,
)
from strom_nostr.zap_request import (
    MAX_ZAP_REQUEST_BYTES,
    ValidZapRequest,
    ZapTags,
    check_zap_request_tags,
    description_hash,
    parse_zap_request,
    zap_request_amount,
)

__all__ = [
    "ZAP_RECEIPT_KIND",
    "VerifiedZapReceipt",
    "ZapReceiptError",
    "ZapReceiptForeign",
    "ZapReceiptInvalid",
    "verify_zap_receipt",
    "zap_receipt",
]

ZAP_RECEIPT_KIND = 9735


def _read_invoice(invoice: str) -> DecodedInvoice:
    """Decode the BOLT11 invoice of a zap receipt (the shared, cached reader).

    Raises:
        ZapReceiptInvalid: not a valid invoice.
    """
    try:
        return decode_invoice(invoice)
    except InvoiceRejected as exc:
        raise ZapReceiptInvalid("zap receipt bolt11 is not a valid invoice") from exc


def _preimage_matches(preimage: str, payment_hash: str) -> bool:
    return (
        is_hex64(preimage) and hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash
    )


def zap_receipt(
    secret_key: bytes,
    zap_request_json: str,
    *,
    bolt11_invoice: str,
    paid_at: int,
    preimage: str | None = None,
    aux_rand: bytes | None = None,
) -> Event:
    """Build and sign the kind-9735 zap receipt of a paid zap invoice (appendix E).

    Args:
        secret_key: the charger's key (the LNURL ``nostrPubkey``).
        zap_request_json: the validated request's ``description`` text.
        bolt11_invoice: the paid invoice; its description hash must commit to the request.
        paid_at: settlement time, unix seconds (the receipt's ``created_at``, for idempotency).
        preimage: the payment preimage (hex), optional.
        aux_rand: BIP-340 auxiliary randomness, for reproducible tests only.

    Returns:
        The signed receipt, with ``p``, ``P``, ``e``/``a`` (when zapped), ``bolt11``,
        ``description`` and optionally ``preimage`` tags.

    Raises:
        BuildError: the request does not parse, the invoice does not commit to it, or the
            preimage does not match the invoice.
    """
    try:
        request = parse_event(zap_request_json, verify=False, max_bytes=MAX_ZAP_REQUEST_BYTES)
        invoice = _read_invoice(bolt11_invoice)
    except (InvalidEvent, ZapReceiptInvalid) as exc:
        raise BuildError(f"cannot build zap receipt: {exc.reason}") from exc
    if invoice.description_hash != description_hash(zap_request_json).hex():
        raise BuildError("invoice description hash does not commit to the zap request")
    if preimage is not None and not _preimage_matches(preimage, invoice.payment_hash):
        raise BuildError("preimage does not match the invoice payment hash")
    tags: list[tuple[str, ...]] = [tag[:2] for tag in request.tags if tag[0] == "p"][:1]
    tags.append(("P", request.pubkey))
    tags += [tag[:2] for tag in request.tags if tag[0] in ("e", "a")]
    tags += [("bolt11", bolt11_invoice), ("description", zap_request_json)]
    if preimage is not None:
        tags.append(("preimage", preimage))
    return sign_event(secret_key, ZAP_RECEIPT_KIND, tags, "", paid_at, aux_rand=aux_rand)


@dataclass(frozen=True, slots=True)
class VerifiedZapReceipt:
    """A receipt this agent signed, consistent with its invoice and embedded request."""

    receipt: Event
    payment_hash: str
    amount_msat: int
    bolt11: str
    request: ValidZapRequest
    preimage: str | None


def _one_tag_value(event: Event, name: str) -> str:
    values = event.tag_values(name)
    if len(values) != 1:
        raise ZapReceiptInvalid(f"zap receipt must have exactly one {name!r} tag")
    return values[0]


def _embedded_request(
    description: str, own_pubkey: str, status_coordinate: str | None
) -> tuple[Event, ZapTags]:
    try:
        request = parse_zap_request(description)
        tags = check_zap_request_tags(
            request, charger_pubkey=own_pubkey, status_coordinate=status_coordinate
        )
    except ZapRequestError as exc:
        raise ZapReceiptInvalid(f"embedded zap request is invalid: {exc.reason}") from exc
    return request, tags


def _check_amount(request: Event, invoice: DecodedInvoice) -> int:
    if invoice.amount_msat is None:
        raise ZapReceiptInvalid("zap receipt invoice has no amount")
    try:
        tagged = zap_request_amount(request)
    except ZapRequestError as exc:
        raise ZapReceiptInvalid(f"embedded zap request is invalid: {exc.reason}") from exc
    if tagged is not None and tagged != invoice.amount_msat:
        raise ZapReceiptInvalid("invoice amount differs from the zap request amount")
    return invoice.amount_msat


def verify_zap_receipt(
    receipt: Event, *, own_pubkey: str, status_coordinate: str | None = None
) -> VerifiedZapReceipt:
    """Accept a zap receipt only if we signed it and it is consistent (appendix F, strictly).

    Args:
        receipt: a kind-9735 event as read from a relay.
        own_pubkey: this agent's public key; receipts by anyone else are refused.
        status_coordinate: if given, an ``a`` tag must equal it; otherwise an ``a`` tag must
            name a status event of ``own_pubkey``.

    Returns:
        The payment hash, amount, invoice and the embedded (validated) request. The caller
        must still ask the lightning backend whether the payment hash is settled.

    Raises:
        ZapReceiptForeign: not kind 9735, not by ``own_pubkey``, or the signature fails.
        ZapReceiptInvalid: anything inconsistent.
    """
    if receipt.kind != ZAP_RECEIPT_KIND or receipt.pubkey != own_pubkey:
        raise ZapReceiptForeign("not a zap receipt signed by this charger")
    try:
        verify_event(receipt)
    except InvalidEvent as exc:
        raise ZapReceiptForeign(f"zap receipt does not verify: {exc.reason}") from exc
    invoice_text = _one_tag_value(receipt, "bolt11")
    description = _one_tag_value(receipt, "description")
    invoice = _read_invoice(invoice_text)
    if invoice.description_hash != description_hash(description).hex():
        raise ZapReceiptInvalid("invoice description hash does not match the zap request")
    request, tags = _embedded_request(description, own_pubkey, status_coordinate)
    amount = _check_amount(request, invoice)
    for name in ("p", "e", "a"):
        if receipt.tag_values(name) != request.tag_values(name):
            raise ZapReceiptInvalid(f"zap receipt {name!r} tag differs from the zap request")
    if any(sender != request.pubkey for sender in receipt.tag_values("P")):
        raise ZapReceiptInvalid("zap receipt 'P' tag is not the zap request's author")
    preimages = receipt.tag_values("preimage")
    if len(preimages) > 1 or (
        preimages and not _preimage_matches(preimages[0], invoice.payment_hash)
    ):
        raise ZapReceiptInvalid("zap receipt preimage does not match the invoice")
    valid = ValidZapRequest(
        request,
        description,
        amount,
        request.pubkey,
        tags.relays,
        tags.connector,
        tags.zapped_event,
        tags.coordinate,
    )
    return VerifiedZapReceipt(
        receipt,
        invoice.payment_hash,
        amount,
        invoice_text,
        valid,
        preimages[0] if preimages else None,
    )
