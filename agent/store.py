"""What the agents keep for session DMs: the DM journal, and the secrets behind the links.

Theory of operation
-------------------
Everything lives in Strom's one database, through the storage package's repositories
(:mod:`strom_storage.agent_journal`); the agents write no file and no SQL of their own.

* **Secrets are recomputed, not kept.** A driver who paid by zap gets the refund and top-up
  links by DM, maybe hours later. The links carry the session secret, and the database keeps
  only its hash; the secret is derived from the server key (:mod:`strom_core.session_secrets`), so
  :meth:`AgentStore.secret` recomputes it, checks it against the stored hash (a link that
  would not work is never sent), and otherwise looks for a secret imported from an older
  installation (:mod:`agent.legacy_store`), sealed under a key derived from the server key.
  Nothing has to be written when a session opens: a crash right after its commit cannot
  leave the zapper without links.
* **The outgoing journal** makes session DMs exactly-once as a driver sees them: before a DM
  is published, the signed event is stored under the outbox row's key. When the outbox runs
  the row again after a crash, the very same event (same id) is published again, and relays
  and clients drop the duplicate; a row already published is skipped.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent.sealing import Sealer, SealError
from strom_core.session_secrets import SessionSecrets
from strom_nostr.event import Event, parse_event
from strom_storage.agent_journal import DmJournal, SecretRecords
from strom_storage.db import Database
from strom_storage.sessions import hash_secret

__all__ = ["AgentStore", "Outgoing", "imported_secret_sealer"]

log = logging.getLogger(__name__)


def imported_secret_sealer(session_key: bytes) -> Sealer:
    """The sealer of imported session secrets: a key derived from the session key."""
    return Sealer(session_key.hex(), purpose="imported session secret")


def _seal_name(session_id: str) -> str:
    return f"session {session_id}"


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


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class AgentStore:
    """Session secrets and the outgoing journal, in the main database.

    Args:
        db: Strom's database.
        session_key: the key session secrets are derived from (see
            :func:`strom_core.session_secrets.derive_session_key`).
    """

    def __init__(self, db: Database, session_key: bytes) -> None:
        self.journal = DmJournal(db)
        self.records = SecretRecords(db)
        self.secrets = SessionSecrets(session_key)
        self.sealer = imported_secret_sealer(session_key)

    # --- session secrets -------------------------------------------------------------------

    async def secret(self, session_id: str, now: float) -> str | None:
        """The session's secret, or None when no working one can be had.

        The derived secret is returned when it matches the stored hash; otherwise (a session
        from before secrets were derived) the imported one, while its refund window lasts.
        """
        stored_hash = await self.records.secret_hash(session_id)
        if stored_hash is None:
            return None
        derived = self.secrets.secret(session_id)
        if hmac.compare_digest(hash_secret(derived), stored_hash):
            return derived
        sealed = await self.records.sealed(session_id, _utc(now))
        if sealed is None:
            log.warning(
                "session %s: its secret cannot be recomputed (was keys/_server.key replaced?) "
                "and none was imported; the DM links to the session page only",
                session_id,
            )
            return None
        try:
            secret = self.sealer.open(_seal_name(session_id), sealed)
        except SealError as exc:
            log.warning("session %s: its imported secret does not open: %s", session_id, exc)
            return None
        return secret if hmac.compare_digest(hash_secret(secret), stored_hash) else None

    def seal(self, session_id: str, secret: str) -> str:
        """A secret as :class:`~strom_storage.agent_journal.SecretRecords` keeps it."""
        return self.sealer.seal(_seal_name(session_id), secret)

    # --- outgoing journal ------------------------------------------------------------------

    async def outgoing(self, key: str) -> tuple[list[Outgoing], bool] | None:
        """The events stored under ``key`` and whether they were published, or None."""
        entry = await self.journal.get(key)
        if entry is None:
            return None
        return [Outgoing.from_json(item) for item in entry.items], entry.published

    async def prepare(self, key: str, items: Sequence[Outgoing], now: int) -> list[Outgoing]:
        """Store events under ``key`` unless some are stored already; returns the stored ones."""
        stored = await self.journal.prepare(key, [item.to_json() for item in items], _utc(now))
        return [Outgoing.from_json(item) for item in stored]

    async def mark_published(self, key: str) -> None:
        """Record that the events under ``key`` reached a relay."""
        await self.journal.mark_published(key)
