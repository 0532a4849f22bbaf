"""The ``partner_invoices`` table: the Lightning invoices offered to roaming partners.

The SQL of :mod:`strom_core.partner_invoices`. Each function runs inside the caller's
transaction. Every change of an invoice bumps its ``version`` and ``last_updated`` (what the
partner is told, once per version).

A streaming session's money, in one place:

* an interval invoice paid (:func:`record_stream_payment`, from the one settlement step) is
  ``PAID`` and journalled ``stream_paid`` under ``<session>:stream:<seq>``, once;
* the final bill opens the receivable for what the paid intervals did not cover
  (:func:`strom_storage.roaming.open_receivable` subtracts :func:`paid_stream_msat`);
* an interval paid after that (its payment was on the way at the stop) shrinks the
  receivable by its amount, so ``bill = sum(paid intervals) + receivable`` always holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_core.partner_invoices import InvoiceKind, InvoiceStatus, PartnerInvoice
from strom_core.roaming import Receivable, ReceivableState
from strom_storage.outbox import queue_effect
from strom_storage.roaming import load_receivable, receivable_of_session
from strom_storage.schema import (
    ledger_entries,
    ocpi_partners,
    partner_invoices,
    payments,
    receivables,
    sessions,
)

__all__ = [
    "PUSH_KIND",
    "STREAM_PAID",
    "InvoicePage",
    "change_invoice",
    "charging_sessions_of",
    "expired_open_invoices",
    "insert_invoice",
    "invoice_by_hash",
    "invoice_paid",
    "list_partner_invoices",
    "load_invoice",
    "mark_stop_asked",
    "paid_stream_msat",
    "partner_settlements",
    "payment_expires_at",
    "queue_push",
    "record_stream_payment",
    "session_invoices",
    "stream_pending",
    "unoffered_receivables",
    "unpaid_intervals_due",
]

STREAM_PAID = "stream_paid"  # the ledger kind of a paid interval invoice
PUSH_KIND = "ocpi_invoice_push"  # the outbox kind telling the partner of an invoice's change


def queue_push(conn: Connection, invoice: PartnerInvoice, method: str, now: datetime) -> None:
    """Queue telling the partner of this version of the invoice (``PUT`` or ``PATCH``).

    Not in a session's chain of effects (``session_id`` None): a partner's receiver that is
    down must never hold back a session's OCPP commands. A ``PUT`` sends the invoice as it is
    when it runs; a ``PATCH`` the status of its version (with its ``last_updated``, by which
    the partner orders changes).
    """
    queue_effect(
        conn,
        key=f"ocpi-invoice:{invoice.id}:{invoice.version}",
        kind=PUSH_KIND,
        payload={
            "invoice_id": invoice.id,
            "method": method,
            "version": invoice.version,
            # What a PATCH says is this version's (a later change has its own push).
            "status": invoice.status.value,
            "paid_at": None if invoice.paid_at is None else invoice.paid_at.isoformat(),
            "last_updated": invoice.last_updated.isoformat(),
        },
        session_id=None,
        now=now,
    )


def invoice_paid(conn: Connection, payment_hash: str, now: datetime) -> PartnerInvoice | None:
    """The receivable's invoice with this hash was paid: ``PAID``, and the partner told."""
    found = invoice_by_hash(conn, payment_hash, lock=True)
    if found is None or found.status is InvoiceStatus.PAID:
        return None
    paid = change_invoice(conn, found.id, now, status=InvoiceStatus.PAID.value, paid_at=now)
    queue_push(conn, paid, "PATCH", now)
    return paid


@dataclass(frozen=True, slots=True)
class InvoicePage:
    """One page of a partner's invoices and how many there are in all."""

    invoices: list[PartnerInvoice]
    total: int


def _invoice(row: Any) -> PartnerInvoice:
    return PartnerInvoice(
        id=row.id,
        partner_id=row.partner_id,
        session_id=row.session_id,
        seq=int(row.seq),
        kind=InvoiceKind(row.kind),
        receivable_id=row.receivable_id,
        period_start=row.period_start,
        period_end=row.period_end,
        amount_msat=int(row.amount_msat),
        payment_hash=row.payment_hash,
        bolt11=row.bolt11,
        expires_at=row.expires_at,
        due_at=row.due_at,
        status=InvoiceStatus(row.status),
        paid_at=row.paid_at,
        version=int(row.version),
        stop_asked=bool(row.stop_asked),
        last_updated=row.last_updated,
    )


def insert_invoice(conn: Connection, invoice: PartnerInvoice, now: datetime) -> bool:
    """Store a new invoice; False (nothing written) when its id or (session, seq) is taken."""
    try:
        with conn.begin_nested():
            conn.execute(
                insert(partner_invoices).values(
                    id=invoice.id,
                    partner_id=invoice.partner_id,
                    session_id=invoice.session_id,
                    seq=invoice.seq,
                    kind=invoice.kind.value,
                    receivable_id=invoice.receivable_id,
                    period_start=invoice.period_start,
                    period_end=invoice.period_end,
                    amount_msat=invoice.amount_msat,
                    payment_hash=invoice.payment_hash,
                    bolt11=invoice.bolt11,
                    expires_at=invoice.expires_at,
                    due_at=invoice.due_at,
                    status=invoice.status.value,
                    paid_at=invoice.paid_at,
                    version=invoice.version,
                    stop_asked=invoice.stop_asked,
                    last_updated=invoice.last_updated,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def _locked(query: Any, conn: Connection, lock: bool) -> Any:
    return query.with_for_update() if lock and conn.dialect.name == "postgresql" else query


def load_invoice(conn: Connection, invoice_id: str, *, lock: bool = False) -> PartnerInvoice | None:
    """One invoice by id (its row locked with ``lock``), or None."""
    query = _locked(select(partner_invoices).where(partner_invoices.c.id == invoice_id), conn, lock)
    row = conn.execute(query).first()
    return None if row is None else _invoice(row)


def invoice_by_hash(
    conn: Connection, payment_hash: str, *, lock: bool = False
) -> PartnerInvoice | None:
    """The invoice whose current BOLT 11 has this hash, or None."""
    query = select(partner_invoices).where(partner_invoices.c.payment_hash == payment_hash)
    row = conn.execute(_locked(query, conn, lock)).first()
    return None if row is None else _invoice(row)


def change_invoice(
    conn: Connection, invoice_id: str, now: datetime, **values: Any
) -> PartnerInvoice:
    """Change an invoice's columns; its version goes up by one and ``last_updated`` is ``now``.

    Returns:
        The invoice as stored afterwards.
    """
    conn.execute(
        update(partner_invoices)
        .where(partner_invoices.c.id == invoice_id)
        .values(version=partner_invoices.c.version + 1, last_updated=now, **values)
    )
    found = load_invoice(conn, invoice_id)
    assert found is not None  # changed just now, in this transaction
    return found


def session_invoices(conn: Connection, session_id: str) -> list[PartnerInvoice]:
    """A session's invoices, by sequence number."""
    query = (
        select(partner_invoices)
        .where(partner_invoices.c.session_id == session_id)
        .order_by(partner_invoices.c.seq)
    )
    return [_invoice(row) for row in conn.execute(query)]


def list_partner_invoices(
    conn: Connection,
    partner_id: str,
    *,
    date_from: datetime | None,
    date_to: datetime | None,
    offset: int,
    limit: int,
) -> InvoicePage:
    """A page of the partner's invoices whose ``last_updated`` is in [from, to), oldest first."""
    where = [partner_invoices.c.partner_id == partner_id]
    if date_from is not None:
        where.append(partner_invoices.c.last_updated >= date_from)
    if date_to is not None:
        where.append(partner_invoices.c.last_updated < date_to)
    total = conn.execute(select(func.count()).select_from(partner_invoices).where(*where))
    query = (
        select(partner_invoices)
        .where(*where)
        .order_by(partner_invoices.c.last_updated, partner_invoices.c.id)
        .offset(offset)
        .limit(limit)
    )
    return InvoicePage([_invoice(row) for row in conn.execute(query)], int(total.scalar_one()))


def _open_intervals(session_id: str) -> list[Any]:
    return [
        partner_invoices.c.session_id == session_id,
        partner_invoices.c.kind == InvoiceKind.INTERVAL.value,
        partner_invoices.c.receivable_id.is_(None),
    ]


def paid_stream_msat(conn: Connection, session_id: str) -> int:
    """What the session's paid interval invoices (while it charged) came to."""
    query = select(func.coalesce(func.sum(partner_invoices.c.amount_msat), 0)).where(
        *_open_intervals(session_id), partner_invoices.c.status == InvoiceStatus.PAID.value
    )
    return int(conn.execute(query).scalar_one())


def stream_pending(conn: Connection, session_id: str) -> bool:
    """Whether an interval invoice of the session may still be paid (``OPEN``)."""
    query = select(partner_invoices.c.id).where(
        *_open_intervals(session_id), partner_invoices.c.status == InvoiceStatus.OPEN.value
    )
    return conn.execute(query.limit(1)).first() is not None


def record_stream_payment(
    conn: Connection, payment_hash: str, received_msat: int, now: datetime
) -> PartnerInvoice | None:
    """A settled interval invoice: ``PAID``, journalled, and taken off the receivable, once.

    Returns:
        The invoice as stored afterwards, when this call recorded its payment; None when it
        was paid already, or no interval invoice has this hash.
    """
    found = invoice_by_hash(conn, payment_hash, lock=True)
    if found is None or found.status is InvoiceStatus.PAID:
        return None
    receivable = receivable_of_session(conn, found.session_id, lock=True)
    paid = change_invoice(
        conn, found.id, now, status=InvoiceStatus.PAID.value, paid_at=now, stop_asked=True
    )
    conn.execute(
        insert(ledger_entries).values(
            session_id=found.session_id,
            kind=STREAM_PAID,
            natural_key=f"{found.session_id}:stream:{found.seq}",
            amount_msat=received_msat,
            created_at=now,
        )
    )
    if receivable is not None and found.receivable_id is None:
        _shrink(conn, receivable, found.amount_msat, now)
    queue_push(conn, paid, "PATCH", now)
    return paid


def _shrink(conn: Connection, receivable: Receivable, by_msat: int, now: datetime) -> None:
    """An interval paid after the final bill: the receivable owes that much less."""
    if receivable.state not in (ReceivableState.OPEN, ReceivableState.INVOICED):
        return
    left = max(0, receivable.amount_msat - by_msat)
    values: dict[str, Any] = {"amount_msat": left}
    if left == 0:
        values.update(state=ReceivableState.PAID.value, paid_at=now)
    conn.execute(update(receivables).where(receivables.c.id == receivable.id).values(values))


def mark_stop_asked(conn: Connection, invoice_id: str) -> None:
    """Note that the unpaid interval's session was asked to stop (not a change to push)."""
    conn.execute(
        update(partner_invoices).where(partner_invoices.c.id == invoice_id).values(stop_asked=True)
    )


def payment_expires_at(conn: Connection, payment_hash: str) -> datetime:
    """When the invoice with this hash expires (it is in ``payments``)."""
    query = select(payments.c.expires_at).where(payments.c.payment_hash == payment_hash)
    found: datetime = conn.execute(query).scalar_one()
    return found


def partner_settlements(conn: Connection) -> dict[str, str]:
    """Each OCPI partner's settlement mode, by roaming partner id (``str(ocpi id)``)."""
    query = select(ocpi_partners.c.id, ocpi_partners.c.settlement)
    return {str(row.id): str(row.settlement) for row in conn.execute(query)}


def charging_sessions_of(conn: Connection, partner_ids: list[str]) -> list[str]:
    """The ids of the sessions of these partners that are charging now."""
    if not partner_ids:
        return []
    query = select(sessions.c.id).where(
        sessions.c.state == "charging",
        sessions.c.payer.in_([f"partner:{p}" for p in partner_ids]),
    )
    return [str(found) for found in conn.execute(query).scalars()]


def unpaid_intervals_due(conn: Connection, now: datetime) -> list[PartnerInvoice]:
    """Interval invoices still ``OPEN`` past their due time whose session was not stopped yet."""
    query = (
        select(partner_invoices)
        .where(
            partner_invoices.c.kind == InvoiceKind.INTERVAL.value,
            partner_invoices.c.receivable_id.is_(None),
            partner_invoices.c.status == InvoiceStatus.OPEN.value,
            partner_invoices.c.due_at < now,
            partner_invoices.c.stop_asked.is_(False),
        )
        .order_by(partner_invoices.c.due_at)
    )
    return [_invoice(row) for row in conn.execute(query)]


def expired_open_invoices(conn: Connection) -> list[PartnerInvoice]:
    """``OPEN`` invoices whose current BOLT 11 the payments say expired unpaid."""
    query = (
        select(partner_invoices)
        .join(payments, payments.c.payment_hash == partner_invoices.c.payment_hash)
        .where(
            partner_invoices.c.status == InvoiceStatus.OPEN.value,
            payments.c.state == "expired",
        )
        .order_by(partner_invoices.c.id)
    )
    return [_invoice(row) for row in conn.execute(query)]


def unoffered_receivables(conn: Connection, partner_ids: list[str]) -> list[Receivable]:
    """These partners' receivables still ``open`` (no invoice offered yet), oldest first."""
    if not partner_ids:
        return []
    query = (
        select(receivables.c.id)
        .where(
            receivables.c.state == ReceivableState.OPEN.value,
            receivables.c.partner_id.in_(partner_ids),
        )
        .order_by(receivables.c.id)
    )
    found = [load_receivable(conn, int(i)) for i in conn.execute(query).scalars()]
    return [r for r in found if r is not None]
