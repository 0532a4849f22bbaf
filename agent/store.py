"""The agents' own small store: session secrets and the DMs they owe.

Theory of operation
-------------------
The main database keeps only a *hash* of each session secret, but a driver who paid by zap
must receive the refund link (which carries the secret) by DM, possibly hours later. The LNURL
callback therefore hands the secret to the agents (:meth:`AgentStore.remember_secret`), and it
is kept here, in ``<data_dir>/agent/agent.sqlite3`` (folder 0700, file 0600), sealed with
``STROM_MASTER_KEY`` when that is set. Secrets are deleted once the refund window has passed.

The same file holds the *outgoing* journal that makes session DMs exactly-once as a driver
sees them: before a DM is published, the signed event is stored under the outbox row's key.
When the outbox runs the row again after a crash, the very same event (same id) is published
again, and relays and clients drop the duplicate; a row already published is skipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite
import orjson

from agent.nostr.event import Event, parse_event
from agent.sealing import Sealer
from strom.errors import StorageError

__all__ = ["AgentStore", "Outgoing"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS session_secrets (
        session_id TEXT PRIMARY KEY, sealed TEXT NOT NULL, created_at INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS outgoing (
        key TEXT PRIMARY KEY, items TEXT NOT NULL, published INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL)""",
)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One signed event to publish, and where."""

    event: Event
    relays: tuple[str, ...] = ()
    only: bool = False

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {"event": self.event.to_dict(), "relays": list(self.relays), "only": self.only}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outgoing:
        """Rebuild a stored item (its event is verified again)."""
        return cls(parse_event(data["event"]), tuple(data["relays"]), bool(data["only"]))


class AgentStore:
    """Session secrets and the outgoing journal, in a private SQLite file.

    Args:
        path: the SQLite file (created 0600 in a 0700 folder).
        sealer: encrypts the secrets at rest.
    """

    def __init__(self, path: Path, sealer: Sealer) -> None:
        self.path = Path(path)
        self.sealer = sealer
        self._db: aiosqlite.Connection | None = None

    @classmethod
    def in_data_dir(cls, data_dir: Path, sealer: Sealer) -> AgentStore:
        """The store at ``<data_dir>/agent/agent.sqlite3``."""
        return cls(Path(data_dir) / "agent" / "agent.sqlite3", sealer)

    async def open(self) -> None:
        """Create (with private permissions) and open the file.

        Raises:
            StorageError: the file cannot be created or opened.
        """
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            self.path.chmod(0o600)
            db = await aiosqlite.connect(self.path)
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                await db.execute(statement)
            await db.commit()
        except (OSError, aiosqlite.Error) as exc:
            raise StorageError(f"{self.path}: cannot open the agent store: {exc}") from None
        self._db = db

    async def close(self) -> None:
        """Close the file (idempotent)."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("the agent store is not open")
        return self._db

    # --- session secrets -------------------------------------------------------------------

    async def remember_secret(self, session_id: str, secret: str, now: int) -> None:
        """Keep a session's secret (sealed when a master key is set); a repeat is harmless."""
        db = self._conn()
        sealed = self.sealer.seal(f"session {session_id}", secret)
        await db.execute(
            "INSERT OR IGNORE INTO session_secrets (session_id, sealed, created_at) "
            "VALUES (?, ?, ?)",
            (session_id, sealed, now),
        )
        await db.commit()

    async def secret(self, session_id: str) -> str | None:
        """A session's secret, or None when it was never handed over (or has been pruned).

        Raises:
            SealError: it is sealed with another master key.
        """
        db = self._conn()
        async with db.execute(
            "SELECT sealed FROM session_secrets WHERE session_id = ?", (session_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        return self.sealer.open(f"session {session_id}", str(row[0]))

    # --- outgoing journal ------------------------------------------------------------------

    async def outgoing(self, key: str) -> tuple[list[Outgoing], bool] | None:
        """The events stored under ``key`` and whether they were published, or None."""
        db = self._conn()
        async with db.execute(
            "SELECT items, published FROM outgoing WHERE key = ?", (key,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        items = [Outgoing.from_json(item) for item in orjson.loads(row[0])]
        return items, bool(row[1])

    async def prepare(self, key: str, items: Sequence[Outgoing], now: int) -> list[Outgoing]:
        """Store events under ``key`` unless some are stored already; returns the stored ones."""
        db = self._conn()
        payload = orjson.dumps([item.to_json() for item in items]).decode()
        await db.execute(
            "INSERT OR IGNORE INTO outgoing (key, items, published, created_at) "
            "VALUES (?, ?, 0, ?)",
            (key, payload, now),
        )
        await db.commit()
        stored = await self.outgoing(key)
        assert stored is not None
        return stored[0]

    async def mark_published(self, key: str) -> None:
        """Record that the events under ``key`` reached a relay."""
        db = self._conn()
        await db.execute("UPDATE outgoing SET published = 1 WHERE key = ?", (key,))
        await db.commit()

    async def prune(self, *, secrets_before: int, outgoing_before: int) -> int:
        """Delete secrets and journal entries older than the given unix times."""
        db = self._conn()
        first = await db.execute(
            "DELETE FROM session_secrets WHERE created_at < ?", (secrets_before,)
        )
        second = await db.execute("DELETE FROM outgoing WHERE created_at < ?", (outgoing_before,))
        await db.commit()
        return int(first.rowcount or 0) + int(second.rowcount or 0)
