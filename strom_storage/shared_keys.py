"""Keys every process of a cluster must agree on, in the database (``shared_keys``).

The rows hold sealed text (the caller seals and opens; this module never sees a key in the
clear). A key is written once: :func:`insert_absent` adds only the names that have no row yet
(``ON CONFLICT DO NOTHING``), so processes racing to create a charger's key each propose one and
all read back the single winner (:func:`sealed_keys`). Rows are never updated or deleted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from strom_storage.db import Database
from strom_storage.schema import shared_keys

__all__ = ["SharedKeyRows", "insert_absent", "sealed_keys"]


def sealed_keys(conn: Connection, names: Collection[str]) -> dict[str, str]:
    """The stored (sealed) text of each of ``names`` that has a row."""
    if not names:
        return {}
    rows = conn.execute(
        select(shared_keys.c.name, shared_keys.c.sealed).where(
            shared_keys.c.name.in_(sorted(set(names)))
        )
    )
    return {row.name: row.sealed for row in rows}


def insert_absent(conn: Connection, proposed: Mapping[str, str], now: datetime) -> dict[str, str]:
    """Store each proposed key that has no row yet; return the stored text of every name.

    Args:
        conn: the caller's transaction.
        proposed: name -> sealed text, for names that had no row when the caller looked.
        now: when they are written.

    Returns:
        name -> the stored text: the proposal, or another process's that got there first.
    """
    if proposed:
        dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        conn.execute(
            dialect_insert(shared_keys)
            .values(
                [
                    {"name": name, "sealed": sealed, "created_at": now}
                    for name, sealed in sorted(proposed.items())
                ]
            )
            .on_conflict_do_nothing(index_elements=[shared_keys.c.name])
        )
    return sealed_keys(conn, proposed.keys())


class SharedKeyRows:
    """:func:`sealed_keys` and :func:`insert_absent`, each in a transaction of its own.

    Args:
        db: the database the processes share.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def read(self, names: Collection[str]) -> dict[str, str]:
        """:func:`sealed_keys` in a read of its own."""
        return await self.db.read(lambda conn: sealed_keys(conn, names))

    async def insert_absent(self, proposed: Mapping[str, str], now: datetime) -> dict[str, str]:
        """:func:`insert_absent` in its own transaction."""
        return await self.db.write(lambda conn: insert_absent(conn, proposed, now))
