"""The audit log: who did what to which charger or session, written with the change itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from strom_storage.db import Transaction
from strom_storage.schema import audit_log

__all__ = ["AuditEntry", "entries", "record"]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


async def record(
    tx: Transaction,
    *,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """Write one entry in the caller's transaction (it commits with the change it tells of).

    Args:
        tx: the caller's transaction.
        actor: who acted: an npub, ``token:<name>``, ``charger:<id>`` or ``cli``.
        action: what was done (``transaction_lost``, ``set_price`` …).
        target: what it was done to (a session or charger id); cut to 100 characters.
        detail: what the operator needs to know, as JSON.
        now: when (aware UTC).
    """
    await tx.execute(
        insert(audit_log).values(
            at=now, actor=actor, action=action, target=target[:100], detail=detail
        )
    )


async def entries(tx: Transaction, action: str | None = None) -> list[AuditEntry]:
    """The entries in the order written, optionally only those of one ``action``."""
    query = select(audit_log).order_by(audit_log.c.id)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    return [
        AuditEntry(row.at, row.actor, row.action, row.target, row.detail)
        for row in await tx.execute(query)
    ]
