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
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from strom_core.errors import LedgerError
from strom_storage.db import Database, Transaction
from strom_storage.schema import refunds

__all__ = ["InvoiceAlreadySubmitted", "RefundRow", "RefundStore"]


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


class RefundStore:
    """The ``refunds`` table on the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def latest_offer(self, session_id: str, valid_after: datetime) -> RefundRow | None:
        """The session's open offer that expires last, if it is still valid at ``valid_after``."""
        async with self.db.reader() as conn:
            row = (
                await conn.execute(
                    select(refunds)
                    .where(
                        refunds.c.session_id == session_id,
                        refunds.c.state == "offered",
                        refunds.c.expires_at > valid_after,
                    )
                    .order_by(refunds.c.expires_at.desc())
                    .limit(1)
                )
            ).first()
        return None if row is None else _row(row)

    async def add_offer(
        self, offer_id: str, session_id: str, k1_hash: str, *, now: datetime, expires_at: datetime
    ) -> None:
        """Store a new withdraw offer in its own transaction."""
        async with self.db.transaction() as conn:
            await conn.execute(
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

    async def find_offer(self, session_id: str, k1_hash: str) -> RefundRow | None:
        """The session's refund whose ``k1`` hashes to ``k1_hash``; None if there is none."""
        async with self.db.reader() as conn:
            row = (
                await conn.execute(
                    select(refunds).where(
                        refunds.c.k1_hash == k1_hash, refunds.c.session_id == session_id
                    )
                )
            ).first()
        return None if row is None else _row(row)

    async def get(self, refund_id: str) -> RefundRow | None:
        """One refund; None if unknown."""
        async with self.db.reader() as conn:
            row = (await conn.execute(select(refunds).where(refunds.c.id == refund_id))).first()
        return None if row is None else _row(row)

    async def claim(
        self,
        tx: Transaction,
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
                must be rolled back.
        """
        try:
            taken = await tx.execute(
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

    async def take(self, refund_id: str, now: datetime) -> bool:
        """Compare-and-set ``claimed`` → ``paying`` in its own commit; True for the winner."""
        async with self.db.transaction() as conn:
            taken = await conn.execute(
                update(refunds)
                .where(refunds.c.id == refund_id, refunds.c.state == "claimed")
                .values(state="paying", updated_at=now, detail="")
            )
        return bool(taken.rowcount == 1)

    async def set_state(
        self,
        tx: Transaction,
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
        await tx.execute(update(refunds).where(refunds.c.id == refund_id).values(**values))

    async def mark(self, refund_id: str, state: str, *, now: datetime, detail: str = "") -> None:
        """:meth:`set_state` in its own transaction."""
        async with self.db.transaction() as conn:
            await self.set_state(conn, refund_id, state, now=now, detail=detail)
