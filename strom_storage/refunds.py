"""Refunds: withdraw offers (``k1``) and the payments out that they become.

A row is an offer (``offered``, only the hash of its ``k1`` kept) until a wallet claims it; the
claim moves it to ``claimed`` under a state guard, so of many concurrent callbacks exactly one
wins, and records the wallet's invoice, whose payment hash is unique across all refunds (an
invoice is paid at most once). ``paying`` is written in its own commit before the backend is
asked to pay; ``paid``, ``failed`` and ``unknown`` record the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_core.errors import LedgerError
from strom_storage.db import Database
from strom_storage.schema import refunds

__all__ = [
    "InvoiceAlreadySubmitted",
    "RefundRow",
    "RefundStore",
    "claim_refund",
    "set_refund_state",
]


class InvoiceAlreadySubmitted(LedgerError):
    """A refund with this invoice's payment hash exists: an invoice is paid once."""


@dataclass(frozen=True, slots=True)
class RefundRow:
    """One refund (or withdraw offer) as stored."""

    id: str
    session_id: str
    k1_hash: str
    state: str  # offered, claimed, paying, paid, failed, unknown
    expires_at: datetime
    amount_msat: int | None
    bolt11: str | None
    payment_hash: str | None


def _row(row: Any) -> RefundRow:
    return RefundRow(
        id=row.id,
        session_id=row.session_id,
        k1_hash=row.k1_hash,
        state=row.state,
        expires_at=row.expires_at,
        amount_msat=None if row.amount_msat is None else int(row.amount_msat),
        bolt11=row.bolt11,
        payment_hash=row.payment_hash,
    )


def _one(conn: Connection, query: Any) -> RefundRow | None:
    row = conn.execute(query).first()
    return None if row is None else _row(row)


def claim_refund(
    conn: Connection,
    refund_id: str,
    *,
    amount_msat: int,
    bolt11: str,
    payment_hash: str,
    now: datetime,
) -> bool:
    """Move an offer to ``claimed`` with the wallet's invoice, in the caller's transaction.

    Returns:
        True for the one caller that moved it; False if it was no longer ``offered``.

    Raises:
        InvoiceAlreadySubmitted: another refund has this invoice; the caller's transaction
            must be rolled back (raising it out of :meth:`Database.write` does).
    """
    try:
        taken = conn.execute(
            update(refunds)
            .where(refunds.c.id == refund_id, refunds.c.state == "offered")
            .values(
                state="claimed",
                amount_msat=amount_msat,
                bolt11=bolt11,
                payment_hash=payment_hash,
                updated_at=now,
            )
        )
    except IntegrityError:
        raise InvoiceAlreadySubmitted(f"invoice {payment_hash} was already submitted") from None
    return bool(taken.rowcount == 1)


def set_refund_state(
    conn: Connection,
    refund_id: str,
    state: str,
    *,
    now: datetime,
    fee_msat: int | None = None,
    detail: str = "",
) -> None:
    """Record a refund's new state (and its fee when paid) in the caller's transaction."""
    values: dict[str, object] = {"state": state, "updated_at": now, "detail": detail}
    if fee_msat is not None:
        values["fee_msat"] = fee_msat
    conn.execute(update(refunds).where(refunds.c.id == refund_id).values(**values))


class RefundStore:
    """The ``refunds`` table on the database.

    The statements a service runs inside its own one-hop transaction are the module-level
    functions; the methods here are transactions of their own.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def latest_offer(self, session_id: str, valid_after: datetime) -> RefundRow | None:
        """The session's open offer that expires last, if it is still valid at ``valid_after``."""
        query = (
            select(refunds)
            .where(
                refunds.c.session_id == session_id,
                refunds.c.state == "offered",
                refunds.c.expires_at > valid_after,
            )
            .order_by(refunds.c.expires_at.desc())
            .limit(1)
        )
        return await self.db.read(partial(_one, query=query))

    async def add_offer(
        self, offer_id: str, session_id: str, k1_hash: str, *, now: datetime, expires_at: datetime
    ) -> None:
        """Store a new withdraw offer in its own transaction."""
        await self.db.write(
            lambda conn: conn.execute(
                insert(refunds).values(
                    id=offer_id,
                    session_id=session_id,
                    k1_hash=k1_hash,
                    state="offered",
                    detail="",
                    created_at=now,
                    expires_at=expires_at,
                    updated_at=now,
                )
            )
        )

    async def find_offer(self, session_id: str, k1_hash: str) -> RefundRow | None:
        """The session's refund whose ``k1`` hashes to ``k1_hash``; None if there is none."""
        query = select(refunds).where(
            refunds.c.k1_hash == k1_hash, refunds.c.session_id == session_id
        )
        return await self.db.read(partial(_one, query=query))

    async def get(self, refund_id: str) -> RefundRow | None:
        """One refund; None if unknown."""
        return await self.db.read(
            partial(_one, query=select(refunds).where(refunds.c.id == refund_id))
        )

    async def take(self, refund_id: str, now: datetime) -> bool:
        """Compare-and-set ``claimed`` → ``paying`` in its own commit; True for the winner."""
        taken: int = await self.db.write(
            lambda conn: (
                conn.execute(
                    update(refunds)
                    .where(refunds.c.id == refund_id, refunds.c.state == "claimed")
                    .values(state="paying", updated_at=now, detail="")
                ).rowcount
            )
        )
        return taken == 1

    async def mark(self, refund_id: str, state: str, *, now: datetime, detail: str = "") -> None:
        """:func:`set_refund_state` in its own transaction."""
        await self.db.write(
            partial(set_refund_state, refund_id=refund_id, state=state, now=now, detail=detail)
        )
