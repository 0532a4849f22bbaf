"""The agents' old private store file: reading it once, then scrubbing and retiring it.

Earlier versions kept the zappers' session secrets and the session-DM journal in a SQLite file
of their own (``<data_dir>/agent/agent.sqlite3``, two tables: ``session_secrets`` and
``outgoing``). What of it is still needed is decided by the agents
(:mod:`agent.legacy_store`); this module only reads the rows as they are
(:func:`read_legacy_agent_file`) and, once they are in the main database, deletes the secrets
from the file so no plain copy stays on disk and renames it (:func:`retire_legacy_agent_file`).
Both run the blocking ``sqlite3`` calls in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from strom_core.errors import StorageError

__all__ = [
    "IMPORTED_SUFFIX",
    "LegacyAgentRows",
    "read_legacy_agent_file",
    "retire_legacy_agent_file",
]

IMPORTED_SUFFIX = ".imported"
"""What the old file's name gets once it was imported."""


@dataclass(frozen=True, slots=True)
class LegacyAgentRows:
    """The rows of an old agent store, as they were written.

    Attributes:
        secrets: (session id, stored secret (maybe sealed), created at in unix seconds).
        outgoing: (outbox row key, items JSON, published (0 or 1), created at in unix seconds).
    """

    secrets: list[tuple[str, str, int]]
    outgoing: list[tuple[str, str, int, int]]


def _tables(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _read(path: Path) -> LegacyAgentRows:
    db = sqlite3.connect(path)
    try:
        tables = _tables(db)
        secrets = (
            db.execute("SELECT session_id, sealed, created_at FROM session_secrets").fetchall()
            if "session_secrets" in tables
            else []
        )
        outgoing = (
            db.execute("SELECT key, items, published, created_at FROM outgoing").fetchall()
            if "outgoing" in tables
            else []
        )
    finally:
        db.close()
    return LegacyAgentRows(
        [(str(s), str(v), int(c)) for s, v, c in secrets],
        [(str(k), str(i), int(p), int(c)) for k, i, p, c in outgoing],
    )


def _retire(path: Path) -> Path:
    """Scrub the secrets out of the old file, fold its WAL in, and rename it."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        if "session_secrets" in _tables(db):
            db.execute("PRAGMA secure_delete=ON")
            db.execute("DELETE FROM session_secrets")
        db.execute("PRAGMA journal_mode=DELETE")  # checkpoints and drops the -wal file
        db.execute("VACUUM")
    finally:
        db.close()
    for leftover in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + leftover).unlink()
    target = path.with_name(path.name + IMPORTED_SUFFIX)
    path.replace(target)
    return target


async def read_legacy_agent_file(path: Path) -> LegacyAgentRows:
    """Read every row of an old agent store (a missing table reads as empty).

    Raises:
        StorageError: the file cannot be read.
    """
    try:
        return await asyncio.to_thread(_read, path)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"{path}: cannot read the old agent store: {exc}") from None


async def retire_legacy_agent_file(path: Path) -> Path:
    """Delete the old store's secrets (``secure_delete``, then ``VACUUM``) and rename the file.

    Returns:
        Where the file is now (``<name>.imported``).

    Raises:
        StorageError: the file cannot be scrubbed or renamed.
    """
    try:
        return await asyncio.to_thread(_retire, path)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"{path}: imported, but cannot be renamed: {exc}") from None
