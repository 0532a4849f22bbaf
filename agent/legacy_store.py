"""Importing the agents' old private store into Strom's database, once.

Earlier versions kept the zappers' session secrets and the session-DM journal in a file of
their own, ``<data_dir>/agent/agent.sqlite3``. On start (:func:`import_legacy_store`), when
that file exists, what still matters moves into the main database:

* **journal entries** younger than a week (published or not: a published one still keeps a
  ``notify`` row that runs again from sending the DM a second time), as they were;
* **session secrets** of sessions the database knows, whose hash matches and whose refund
  window (``AgentSettings.secret_retention_s`` from their creation) has not passed. They were
  random, so they cannot be derived from the server key like today's; each is sealed under a
  key derived from it (:func:`agent.store.imported_secret_sealer`) and kept in
  ``imported_secrets`` until that window ends.

Then the old secrets are deleted from the file (``secure_delete``, then ``VACUUM``, so no
plain copy stays on disk), and the file is renamed ``agent.sqlite3.imported``; one line is
logged. Reading and retiring the file are storage's (:mod:`strom_storage.legacy_agent`). The
database writes are idempotent, so a crash half-way just imports again at the next start. A
secret sealed with a ``STROM_MASTER_KEY`` that is not set (or another one) stops the start with
:class:`~agent.sealing.SealError` and leaves the file as it is.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from agent.sealing import Sealer
from agent.store import AgentStore
from strom_storage.agent_journal import JOURNAL_RETENTION, JournalEntry, SealedSecret
from strom_storage.legacy_agent import (
    LegacyAgentRows,
    read_legacy_agent_file,
    retire_legacy_agent_file,
)
from strom_storage.sessions import hash_secret

__all__ = ["LEGACY_FILE", "ImportReport", "import_legacy_store", "legacy_path"]

log = logging.getLogger(__name__)

LEGACY_FILE = "agent.sqlite3"


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import moved, and where the old file went."""

    secrets: int
    secrets_dropped: int
    dms: int
    renamed_to: Path


def legacy_path(data_dir: Path) -> Path:
    """Where the old agent store lived."""
    return Path(data_dir) / "agent" / LEGACY_FILE


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def _secrets_to_keep(
    store: AgentStore, rows: LegacyAgentRows, old_sealer: Sealer, retention_s: int, now: float
) -> list[SealedSecret]:
    recent = [row for row in rows.secrets if row[2] + retention_s > now]
    hashes = await store.records.secret_hashes(session_id for session_id, _, _ in recent)
    kept: list[SealedSecret] = []
    for session_id, stored, created_at in recent:
        expected = hashes.get(session_id)
        if expected is None:
            continue
        secret = old_sealer.open(f"session {session_id}", stored)
        if not hmac.compare_digest(hash_secret(secret), expected):
            log.warning("old agent store: the secret of session %s does not match", session_id)
            continue
        sealed = store.seal(session_id, secret)
        kept.append(SealedSecret(session_id, sealed, _utc(created_at + retention_s)))
    return kept


def _entries_to_keep(rows: LegacyAgentRows, now: float) -> list[JournalEntry]:
    kept: list[JournalEntry] = []
    for key, items, published, created_at in rows.outgoing:
        if created_at + JOURNAL_RETENTION.total_seconds() <= now:
            continue
        try:
            parsed = orjson.loads(items)
        except orjson.JSONDecodeError:
            log.warning("old agent store: DM journal entry %s is damaged; skipped", key)
            continue
        kept.append(JournalEntry(key, list(parsed), bool(published), _utc(created_at)))
    return kept


async def import_legacy_store(
    data_dir: Path, store: AgentStore, *, old_sealer: Sealer, retention_s: int, now: float
) -> ImportReport | None:
    """Move the old agent store into the database (see the module docstring).

    Args:
        data_dir: Strom's data folder.
        store: the agents' store in the main database.
        old_sealer: opens the old file's secrets (``STROM_MASTER_KEY``, purpose
            ``"session secret"``).
        retention_s: how long after its creation a session's secret is kept.
        now: unix time in seconds.

    Returns:
        What was imported, or None when there is no old file.

    Raises:
        SealError: an old secret does not open with the master key.
        StorageError: the old file cannot be read or renamed.
    """
    path = legacy_path(data_dir)
    if not path.exists():
        return None
    rows = await read_legacy_agent_file(path)
    secrets = await _secrets_to_keep(store, rows, old_sealer, retention_s, now)
    entries = _entries_to_keep(rows, now)
    await store.records.add_sealed(secrets)
    await store.journal.add_entries(entries)
    target = await retire_legacy_agent_file(path)
    log.info(
        "old agent store imported into the database: %d session secret(s) sealed, "
        "%d DM journal entries; %d old secret(s) not needed any more; the file is now %s",
        len(secrets),
        len(entries),
        len(rows.secrets) - len(secrets),
        target,
    )
    return ImportReport(len(secrets), len(rows.secrets) - len(secrets), len(entries), target)
