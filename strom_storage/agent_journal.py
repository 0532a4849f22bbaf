"""The agents' records in the main database: the session-DM journal and imported secrets.

Theory of operation
-------------------
* :class:`DmJournal` makes session DMs exactly-once as a driver sees them. Before a DM is
  published, the signed event (and where it goes) is stored under the ``notify`` outbox row's
  idempotency key; when the row runs again after a crash, the stored event is published again
  (same id, so relays and clients keep one copy), and a row already published is skipped.
  The items are opaque JSON here: the agents build and read them.
* :class:`SecretRecords` answers the two questions an agent asks before it writes a refund
  or top-up link: the hash a session's secret must match (``sessions.secret_hash``), and the
  sealed secret of a session made before secrets were derived from the server key (see
  :mod:`strom_core.session_secrets`), kept until the session's refund window ends. Sealing and
  opening are the caller's: this table only ever sees ciphertext.

Both tables are pruned by time (``prune(before)``): nothing here is needed for long.

Each method is one transaction, run in one hop (:meth:`Database.write` or
:meth:`Database.read`) by a synchronous function of a ``Connection``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from strom_storage.db import Database
from strom_storage.schema import dm_journal, imported_secrets, sessions

__all__ = ["JOURNAL_RETENTION", "DmJournal", "JournalEntry", "SealedSecret", "SecretRecords"]

JOURNAL_RETENTION = timedelta(days=7)
"""How long a journal entry is kept: the outbox gives up on a DM within hours, so a week later
no run can need the stored event again (the retention sweep deletes older entries)."""

_CHUNK = 500  # rows per statement (SQLite limits the parameters of one statement)


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """The DMs stored under one key, and whether a relay took them."""

    key: str
    items: list[dict[str, Any]]
    published: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SealedSecret:
    """A session secret that cannot be recomputed, sealed, with the end of its use."""

    session_id: str
    sealed: str
    expires_at: datetime


# Insert-or-keep, per dialect (a key already stored keeps its row).
_INSERTS: dict[str, Any] = {"postgresql": pg_insert, "sqlite": sqlite_insert}

# The statements of every session DM, built once.
_ENTRY = select(dm_journal).where(dm_journal.c.key == bindparam("entry_key"))
_EVENTS = select(dm_journal.c.events).where(dm_journal.c.key == bindparam("entry_key"))
_PUBLISHED = (
    update(dm_journal).where(dm_journal.c.key == bindparam("entry_key")).values(published=True)
)
_SECRET_HASH = select(sessions.c.secret_hash).where(sessions.c.id == bindparam("session_id"))
_SEALED = select(imported_secrets.c.sealed).where(
    imported_secrets.c.session_id == bindparam("session_id"),
    imported_secrets.c.expires_at > bindparam("now"),
)


def _add_entries(conn: Connection, entries: list[JournalEntry]) -> None:
    """Store entries, :data:`_CHUNK` per statement; keys already stored are left alone."""
    for start in range(0, len(entries), _CHUNK):
        values = [
            {
                "key": entry.key,
                "events": entry.items,
                "published": entry.published,
                "created_at": entry.created_at,
            }
            for entry in entries[start : start + _CHUNK]
        ]
        conn.execute(
            _INSERTS[conn.dialect.name](dm_journal)
            .values(values)
            .on_conflict_do_nothing(index_elements=["key"])
        )


def _entry(conn: Connection, key: str) -> JournalEntry | None:
    row = conn.execute(_ENTRY, {"entry_key": key}).first()
    if row is None:
        return None
    return JournalEntry(row.key, list(row.events), bool(row.published), row.created_at)


def _prepare(conn: Connection, entry: JournalEntry) -> list[dict[str, Any]]:
    _add_entries(conn, [entry])
    stored = conn.scalar(_EVENTS, {"entry_key": entry.key})
    return list(stored or ())


class DmJournal:
    """The signed session DMs, by outbox key (see the module docstring).

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, key: str) -> JournalEntry | None:
        """The entry stored under ``key``, or None."""
        return await self.db.read(partial(_entry, key=key))

    async def prepare(
        self, key: str, items: Sequence[dict[str, Any]], now: datetime
    ) -> list[dict[str, Any]]:
        """Store ``items`` under ``key`` unless something is stored there already.

        Returns:
            The items stored under ``key``: these, or those of an earlier run.
        """
        entry = JournalEntry(key, list(items), False, now)
        return await self.db.write(partial(_prepare, entry=entry))

    async def add_entries(self, entries: Iterable[JournalEntry]) -> int:
        """Store entries as they are (an import); keys already stored are left alone.

        Returns:
            How many entries were given.
        """
        rows = list(entries)
        await self.db.write(partial(_add_entries, entries=rows))
        return len(rows)

    async def mark_published(self, key: str) -> None:
        """Record that the DMs under ``key`` reached a relay."""
        await self.db.write(lambda conn: conn.execute(_PUBLISHED, {"entry_key": key}))


def _secret_hashes(conn: Connection, wanted: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            select(sessions.c.id, sessions.c.secret_hash).where(
                sessions.c.id.in_(wanted[start : start + _CHUNK])
            )
        )
        found.update({row.id: row.secret_hash for row in rows})
    return found


def _add_sealed(conn: Connection, values: list[dict[str, Any]]) -> None:
    for start in range(0, len(values), _CHUNK):
        conn.execute(
            _INSERTS[conn.dialect.name](imported_secrets)
            .values(values[start : start + _CHUNK])
            .on_conflict_do_nothing(index_elements=["session_id"])
        )


class SecretRecords:
    """What the agents read to write a session's links (see the module docstring).

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def secret_hash(self, session_id: str) -> str | None:
        """The stored hash of the session's secret, or None for an unknown session."""
        value = await self.db.read(
            lambda conn: conn.scalar(_SECRET_HASH, {"session_id": session_id})
        )
        return None if value is None else str(value)

    async def secret_hashes(self, session_ids: Iterable[str]) -> dict[str, str]:
        """The stored hashes of these sessions' secrets (unknown sessions are left out)."""
        wanted = list(dict.fromkeys(session_ids))
        return await self.db.read(partial(_secret_hashes, wanted=wanted))

    async def sealed(self, session_id: str, now: datetime) -> str | None:
        """The sealed secret of an imported session, unless it has expired."""
        value = await self.db.read(
            lambda conn: conn.scalar(_SEALED, {"session_id": session_id, "now": now})
        )
        return None if value is None else str(value)

    async def add_sealed(self, secrets: Iterable[SealedSecret]) -> int:
        """Keep sealed secrets; a session that has one already keeps it.

        Returns:
            How many were given.
        """
        values = [
            {"session_id": s.session_id, "sealed": s.sealed, "expires_at": s.expires_at}
            for s in secrets
        ]
        await self.db.write(partial(_add_sealed, values=values))
        return len(values)
