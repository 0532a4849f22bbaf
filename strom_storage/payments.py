"""Payments: the invoices that pay for sessions and top-ups, and the zap requests they used.

A payment row is written with its session (the invoice is handed out only after that commit)
and moves once from ``pending`` to ``settled``, ``expired`` or ``flagged``. The settlement reads
the row locked (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite has one writer) inside the
caller's transaction, so a session is credited exactly once whichever path settles first.

A zap request's event id is recorded in ``nostr_events`` in the transaction that opens its
session or top-up: each zap request pays for one invoice at most.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_core.errors import LedgerError
from strom_storage.db import Database
from strom_storage.schema import nostr_events, payments

__all__ = [
    "PaymentRow",
    "PaymentStore",
    "ZapRequestAlreadyUsed",
    "expire_payment",
    "flag_payment",
    "insert_payments",
    "load_payment",
    "new_payment_row",
    "record_zap_request",
    "settle_payment",
]

ZAP_REQUEST_KIND = 9734


class ZapRequestAlreadyUsed(LedgerError):
    """The zap request (by event id) was recorded before: each is used once."""


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One payment as stored."""

    payment_hash: str
    session_id: str
    kind: str  # "initial", "topup" or "receivable" (a partner's bill)
    amount_msat: int
    bolt11: str
    state: str  # pending, settled, expired, flagged
    zap_request: dict[str, Any] | None


def new_payment_row(
    *,
    session_id: str,
    kind: str,
    payment_hash: str,
    amount_msat: int,
    bolt11: str,
    expires_at: datetime,
    zap_request: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``payments`` row of a new, pending invoice (for :func:`insert_payments`)."""
    return {
        "payment_hash": payment_hash,
        "session_id": session_id,
        "kind": kind,
        "amount_msat": amount_msat,
        "bolt11": bolt11,
        "state": "pending",
        "zap_request": zap_request,
        "created_at": now,
        "expires_at": expires_at,
    }


def _row(row: Any) -> PaymentRow:
    return PaymentRow(
        payment_hash=row.payment_hash,
        session_id=row.session_id,
        kind=row.kind,
        amount_msat=int(row.amount_msat),
        bolt11=row.bolt11,
        state=row.state,
        zap_request=row.zap_request,
    )


# The hot statements, built once (SQLAlchemy then compiles each once per dialect and reuses it).
_BY_HASH = select(payments).where(payments.c.payment_hash == bindparam("payment_hash"))
_BY_HASH_FOR_UPDATE = _BY_HASH.with_for_update()
_PENDING = select(payments.c.payment_hash).where(payments.c.state == "pending")
_PENDING_EXPIRED = _PENDING.where(
    payments.c.expires_at < bindparam("before", type_=payments.c.expires_at.type)
)
_SETTLE = (
    update(payments)
    .where(payments.c.payment_hash == bindparam("hash"))
    .values(
        state="settled",
        settled_at=bindparam("now", type_=payments.c.settled_at.type),
        amount_msat=bindparam("received_msat"),
    )
)


def insert_payments(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store new payments (rows from :func:`new_payment_row`) in the caller's transaction."""
    conn.execute(insert(payments), rows)


def record_zap_request(conn: Connection, event_id: str, pubkey: str | None, now: datetime) -> None:
    """Record a zap request as used, in the caller's transaction.

    Raises:
        ZapRequestAlreadyUsed: it was recorded before (nothing written; the caller's
            transaction stays usable).
    """
    try:
        with conn.begin_nested():
            conn.execute(
                insert(nostr_events).values(
                    event_id=event_id,
                    kind=ZAP_REQUEST_KIND,
                    pubkey=pubkey or "",
                    received_at=now,
                )
            )
    except IntegrityError:
        raise ZapRequestAlreadyUsed(f"zap request {event_id} was already used") from None


def load_payment(conn: Connection, payment_hash: str, *, lock: bool = False) -> PaymentRow | None:
    """The payment as stored; None if unknown.

    Args:
        conn: the caller's transaction.
        payment_hash: the invoice's payment hash.
        lock: lock the row for the rest of the transaction (``SELECT … FOR UPDATE`` on
            PostgreSQL; SQLite has one writer).
    """
    query = _BY_HASH_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _BY_HASH
    row = conn.execute(query, {"payment_hash": payment_hash}).first()
    return None if row is None else _row(row)


def flag_payment(conn: Connection, payment_hash: str) -> None:
    """Mark a payment ``flagged``: not credited, left for the operator."""
    conn.execute(
        update(payments).where(payments.c.payment_hash == payment_hash).values(state="flagged")
    )


def settle_payment(conn: Connection, payment_hash: str, received_msat: int, now: datetime) -> None:
    """Mark a payment ``settled`` with what was received, in the caller's transaction."""
    conn.execute(_SETTLE, {"hash": payment_hash, "received_msat": received_msat, "now": now})


def expire_payment(conn: Connection, payment_hash: str) -> PaymentRow | None:
    """Mark a pending payment ``expired``; the payment, or None if it was not pending."""
    result = conn.execute(
        update(payments)
        .where(payments.c.payment_hash == payment_hash, payments.c.state == "pending")
        .values(state="expired")
        .returning(payments)
    )
    row = result.first()
    return None if row is None else _row(row)


class PaymentStore:
    """The ``payments`` table (and the zap requests they used) on the database.

    The statements are the module-level functions, run inside the caller's one-hop
    transaction; the methods here are the reads of their own the services make.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, payment_hash: str) -> PaymentRow | None:
        """The payment as stored now; None if unknown."""
        return await self.db.read(partial(load_payment, payment_hash=payment_hash))

    async def pending_hashes(self) -> list[str]:
        """Payment hashes of every pending payment."""
        return await self.db.read(lambda conn: list(conn.scalars(_PENDING)))

    async def pending_expired_before(self, before: datetime) -> list[str]:
        """Payment hashes of pending payments whose invoice expired before ``before``."""
        return await self.db.read(
            lambda conn: list(conn.scalars(_PENDING_EXPIRED, {"before": before}))
        )
