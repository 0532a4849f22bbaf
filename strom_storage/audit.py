"""The audit log: who did what to which charger or session, written with the change itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from strom_storage.db import Transaction
from strom_storage.schema import audit_log

__all__ = ["AuditEntry", "entries", "entries_in", "record", "record_in"]

_INSERT = insert(audit_log)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log."""

    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def record_in(
    conn: Connection,
    *,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """Write one entry in the caller's transaction (it commits with the change it tells of).

    Args:
        conn: the caller's transaction (a one-hop :meth:`Database.write` function's).
        actor: who acted: an npub, ``token:<name>``, ``charger:<id>`` or ``cli``.
        action: what was done (``transaction_lost``, ``set_price`` …).
        target: what it was done to (a session or charger id); cut to 100 characters.
        detail: what the operator needs to know, as JSON.
        now: when (aware UTC).
    """
    conn.execute(
        _INSERT,
        {"at": now, "actor": actor, "action": action, "target": target[:100], "detail": detail},
    )


def entries_in(conn: Connection, action: str | None = None) -> list[AuditEntry]:
    """The entries in the order written, optionally only those of one ``action``."""
    query = select(audit_log).order_by(audit_log.c.id)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    return [
        AuditEntry(row.at, row.actor, row.action, row.target, row.detail)
        for row in conn.execute(query)
    ]


async def record(
    tx: Transaction,
    *,
    actor: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """:func:`record_in` for a caller that holds an ``AsyncConnection`` transaction."""
    await tx.run_sync(
        partial(record_in, actor=actor, action=action, target=target, detail=detail, now=now)
    )


async def entries(tx: Transaction, action: str | None = None) -> list[AuditEntry]:
    """:func:`entries_in` for a caller that holds an ``AsyncConnection``."""
    return await tx.run_sync(entries_in, action)
