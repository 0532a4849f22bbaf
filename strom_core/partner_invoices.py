"""The Lightning invoices a roaming partner is handed to pay (pure).

Theory of operation
-------------------
A partner's session is settled in bitcoin in one of two ways (``settlement`` of the partner):

* ``after_cdr``: one invoice (kind ``CDR``, id = the session id) for the session's
  receivable, the whole bill, once the bill is final;
* ``streaming``: while the session charges, one invoice per interval (kind ``INTERVAL``, id
  ``<session>-<n>``, n = 1, 2, …) for the cost accrued since the previous one, each due a short
  time after it is made; the session is stopped when one is not paid by its due time. After
  the stop, the receivable is what the paid intervals did not cover, and is offered as the
  last ``INTERVAL`` invoice.

The ledger invariant of a streaming session (kept by :mod:`strom_storage.partner_invoices`)::

    bill = sum(amount of PAID interval invoices) + receivable

An invoice is never paid twice: a BOLT 11 invoice settles once, and a receivable's invoice
is replaced (same id, new BOLT 11) only after the previous one expired unpaid. An interval
invoice is never replaced: unpaid at its due time, its amount stays in the receivable.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

__all__ = [
    "InvoiceKind",
    "InvoiceStatus",
    "PartnerInvoice",
    "Settlement",
    "final_receivable_msat",
    "interval_amount_msat",
    "invoice_id",
]

MAX_INVOICE_ID = 36  # CiString(36)


class Settlement(enum.StrEnum):
    """How a partner settles its sessions (the partner record's ``settlement``)."""

    AFTER_CDR = "after_cdr"
    STREAMING = "streaming"


class InvoiceKind(enum.StrEnum):
    """``CDR``: a whole session; ``INTERVAL``: a part of a streaming session."""

    CDR = "CDR"
    INTERVAL = "INTERVAL"


class InvoiceStatus(enum.StrEnum):
    """Where an invoice is (the draft's ``InvoiceStatus``)."""

    OPEN = "OPEN"
    PAID = "PAID"
    EXPIRED = "EXPIRED"
    CANCELLED = "CANCELLED"


def invoice_id(session_id: str, seq: int) -> str:
    """The invoice's id: the session id for the CDR invoice (seq 0), else ``<session>-<seq>``.

    Raises:
        ValueError: a negative sequence number or an id longer than 36 characters.
    """
    if seq < 0:
        raise ValueError(f"an invoice sequence number is 0 or more, not {seq}")
    found = session_id if seq == 0 else f"{session_id}-{seq}"
    if len(found) > MAX_INVOICE_ID:
        raise ValueError(f"invoice id {found!r} is longer than {MAX_INVOICE_ID} characters")
    return found


@dataclass(frozen=True, slots=True)
class PartnerInvoice:
    """One invoice offered to a partner, as stored.

    Attributes:
        id: the invoice id (:func:`invoice_id`).
        partner_id: the roaming partner (its id string).
        session_id: the session billed.
        seq: 0 for a ``CDR`` invoice, 1… for the intervals (the rest after the stop included).
        kind: ``CDR`` or ``INTERVAL``.
        receivable_id: the receivable it offers to pay (None: an interval while charging).
        period_start: start of the billed period.
        period_end: end of the billed period.
        amount_msat: what to pay.
        payment_hash: the current BOLT 11 invoice's hash.
        bolt11: the current BOLT 11 invoice.
        expires_at: when the BOLT 11 invoice expires.
        due_at: when payment is due.
        status: where it is.
        paid_at: when its payment settled.
        version: counts the changes (each one is pushed once).
        stop_asked: an unpaid interval's session was asked to stop (once).
        last_updated: the time of the last change.
    """

    id: str
    partner_id: str
    session_id: str
    seq: int
    kind: InvoiceKind
    receivable_id: int | None
    period_start: datetime
    period_end: datetime
    amount_msat: int
    payment_hash: str
    bolt11: str
    expires_at: datetime
    due_at: datetime
    status: InvoiceStatus
    paid_at: datetime | None
    version: int
    stop_asked: bool
    last_updated: datetime


def interval_amount_msat(accrued_msat: int, invoiced: Iterable[PartnerInvoice]) -> int:
    """What the next interval invoice asks: the cost accrued beyond the earlier intervals.

    Every earlier interval invoice counts, paid or not (an unpaid one is owed all the same);
    a cancelled one does not. Never below zero.
    """
    before = sum(
        i.amount_msat
        for i in invoiced
        if i.kind is InvoiceKind.INTERVAL and i.status is not InvoiceStatus.CANCELLED
    )
    return max(0, accrued_msat - before)


def final_receivable_msat(bill_msat: int, paid_intervals_msat: int) -> int:
    """The receivable of a streamed session's final bill: what the paid intervals left."""
    return max(0, bill_msat - paid_intervals_msat)
