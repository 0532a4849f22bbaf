"""Consistent copies of the database for ``strom backup`` and ``strom restore``.

SQLite files are copied with SQLite's online backup API (``sqlite3.Connection.backup``): the
copy is one consistent state of the database even while Strom writes to it, page by page,
without stopping the writers for more than a step. PostgreSQL is dumped with ``pg_dump``
(one snapshot of the whole database, taken in a repeatable-read transaction, so payments
that commit during the dump are either wholly in it or not at all) in its custom format, and
restored with ``pg_restore`` into an empty database.

The schema revision (Alembic's ``alembic_version``) of a copy is recorded in the backup's
manifest; a restore refuses a revision this version of Strom does not know.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import make_url

from strom_core.errors import StorageError
from strom_storage.db import MIGRATIONS, redact_url

__all__ = [
    "SQLITE_SIDE_FILES",
    "Progress",
    "copy_sqlite",
    "head_revision",
    "is_sqlite_file",
    "known_revisions",
    "libpq_url",
    "postgres_dump",
    "postgres_is_empty",
    "postgres_restore",
    "postgres_revision",
    "require_client",
    "sqlite_revision",
]

Progress = Callable[[int, int], None]
"""Called with (done, total) as a copy advances (pages for SQLite)."""

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
"""Suffixes of the files SQLite keeps beside a database while it is open."""

_PAGES_PER_STEP = 256  # a step holds the read lock briefly; writers go between steps
_SQLITE_MAGIC = b"SQLite format 3\x00"
_DUMP_TIMEOUT_S = 3_600


def is_sqlite_file(path: Path) -> bool:
    """Whether ``path`` is an SQLite database (by its header)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(_SQLITE_MAGIC)) == _SQLITE_MAGIC
    except OSError:
        return False


def copy_sqlite(source: Path, target: Path, progress: Progress | None = None) -> None:
    """Copy an SQLite database consistently while other connections write to it.

    Args:
        source: the live database file.
        target: the copy (created; must not exist).
        progress: told (pages done, pages in all) after each step.

    Raises:
        StorageError: the source cannot be read or the copy cannot be written.
    """

    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    try:
        source_conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {source}: {exc}") from None
    try:
        with contextlib.closing(sqlite3.connect(target)) as copy:
            source_conn.backup(copy, pages=_PAGES_PER_STEP, progress=step, sleep=0.005)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            problems = copy.execute("PRAGMA quick_check").fetchone()
            if problems is None or problems[0] != "ok":
                raise StorageError(f"the copy of {source} fails SQLite's check: {problems}")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot copy {source} to {target}: {exc}") from None
    finally:
        source_conn.close()


def sqlite_revision(path: Path) -> str | None:
    """The schema revision of an SQLite database file (None: no Strom schema in it)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return str(row[0]) if row else None


def head_revision() -> str:
    """The newest schema revision this version of Strom knows."""
    head = _scripts().get_current_head()
    assert head is not None  # the migrations folder ships with the package
    return head


def known_revisions() -> set[str]:
    """Every schema revision this version of Strom can upgrade from."""
    return {script.revision for script in _scripts().walk_revisions()}


def _scripts() -> ScriptDirectory:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg)


def libpq_url(url: str) -> str:
    """A ``postgresql+asyncpg://`` URL as libpq (``pg_dump``, ``psql``) takes it."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise StorageError(f"not a PostgreSQL URL: {redact_url(url)}")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def require_client(name: str) -> str:
    """The path of a PostgreSQL client program (``pg_dump``, ``pg_restore``).

    Raises:
        StorageError: it is not installed; the message says what to install.
    """
    found = shutil.which(name)
    if found is None:
        raise StorageError(
            f"{name} is not installed (or not on PATH): a PostgreSQL installation is backed up "
            f"and restored with PostgreSQL's own {name}; install the PostgreSQL client tools "
            "(Debian: apt install postgresql-client) in the version of the server or newer"
        )
    return found


def _run(command: list[str], what: str, url: str) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - the tool is found on PATH, arguments are ours
            command, capture_output=True, text=True, timeout=_DUMP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise StorageError(f"{what} of {redact_url(url)} took over an hour; stopped") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        raise StorageError(f"{what} of {redact_url(url)} failed: {reason}")


def postgres_dump(url: str, target: Path) -> str:
    """Dump a PostgreSQL database into ``target`` (``pg_dump``'s custom format).

    Returns:
        The version line of the ``pg_dump`` used.

    Raises:
        StorageError: pg_dump is missing or failed (its message, the password hidden).
    """
    pg_dump = require_client("pg_dump")
    command = [pg_dump, "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)]
    _run([*command, "--dbname", libpq_url(url)], "pg_dump", url)
    version = subprocess.run(  # noqa: S603
        [pg_dump, "--version"], capture_output=True, text=True, check=False
    )
    return version.stdout.strip()


def postgres_revision(url: str) -> str | None:
    """The schema revision of a PostgreSQL database (None: no Strom schema in it)."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    except psycopg.Error as exc:
        raise StorageError(f"cannot read {redact_url(url)}: {exc}") from None
    return str(row[0]) if row else None


def postgres_is_empty(url: str) -> bool:
    """Whether the database holds no table of its own (the place to restore into)."""
    query = (
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
    )
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
            row = conn.execute(query).fetchone()
    except psycopg.Error as exc:
        raise StorageError(f"cannot open {redact_url(url)}: {exc}") from None
    return row is not None and row[0] == 0


def postgres_restore(url: str, dump: Path) -> None:
    """Restore a dump of :func:`postgres_dump` into an empty database, in one transaction.

    Raises:
        StorageError: pg_restore is missing, the database is not empty, or the restore failed
            (then nothing of it stays: the transaction is rolled back).
    """
    pg_restore = require_client("pg_restore")
    if not postgres_is_empty(url):
        raise StorageError(
            f"{redact_url(url)} already holds tables: restore into a new, empty database "
            "(createdb …) so that nothing of another installation mixes with the backup"
        )
    command = [pg_restore, "--no-owner", "--no-privileges", "--single-transaction"]
    _run([*command, "--exit-on-error", "--dbname", libpq_url(url), str(dump)], "pg_restore", url)
