"""Connecting to the database, applying migrations, and running transactions.

A transaction is one function of a synchronous SQLAlchemy ``Connection`` handed to
:meth:`Database.write` or :meth:`Database.read`, so the whole of it costs one hop from the
event loop: on SQLite it runs on a dedicated writer thread (or a reader thread) over the
standard library's ``sqlite3``; on PostgreSQL it runs on a thread over psycopg (measured
against ``AsyncConnection.run_sync`` over asyncpg and against asyncpg directly in
bench/README.md). The older :meth:`Database.transaction` / :meth:`Database.reader` context
managers (one await per statement) serve migrations, the tests' own SQL and the benchmark's
baseline; Strom's packages do not use them (a test checks it).

SQLite (the embedded default) runs in WAL mode with ``synchronous=FULL`` — a committed payment
survives a crash of the process *and* of the machine — and every write transaction starts with
``BEGIN IMMEDIATE`` so two writers queue instead of failing half-way. PostgreSQL uses its
defaults; rows that change money are locked with ``SELECT … FOR UPDATE`` by the stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from strom_core.crashpoints import crashpoint
from strom_core.errors import StorageError

__all__ = ["Connection", "Database", "Transaction", "redact_url"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[[Connection], T]
READER_THREADS = 4
POSTGRES_THREADS = 8
IDLE_PING_S = 10.0  # a PostgreSQL connection idle this long is checked before use
MIGRATIONS = Path(__file__).resolve().parent / "migrations"

Transaction = AsyncConnection
"""An open transaction, the unit of work: what :meth:`Database.transaction` yields.

The services open it and hand it to the repositories' methods that take one, so a state change
and everything written with it (ledger, outbox, audit) commit together; the services never
run a statement on it themselves.
"""


# ``Connection`` (SQLAlchemy's synchronous connection) is what a one-hop transaction receives:
# the services name it through this module, since only storage imports SQLAlchemy.


def redact_url(url: str) -> str:
    """The URL with any password replaced, for logs and error messages."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    creds, _, host = tail.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{head}://{user}:***@{host}" if ":" in creds else f"{head}://{user}@{host}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's lazy BEGIN.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the write lock up front (no deadlock-prone lock upgrade half-way);
    # readers use a deferred BEGIN, which in WAL mode never blocks a writer.
    if conn.get_execution_options().get("strom_write"):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["checked_in_at"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    # A pooled PostgreSQL connection that sat idle may have been closed by a restart of the
    # server or a proxy: ask before handing it out, but only then — a ping on every checkout
    # (pool_pre_ping) costs a round trip per transaction, a quarter of the hot path's time.
    if time.monotonic() - record.info.get("checked_in_at", 0.0) < IDLE_PING_S:
        return
    try:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except psycopg.Error as exc:
        raise DisconnectionError(f"stale pooled connection: {exc}") from exc


def _failed(what: str, exc: OperationalError) -> StorageError:
    reason = str(exc.orig or exc).splitlines()[0] if str(exc.orig or exc) else type(exc).__name__
    return StorageError(f"database {what} failed: {reason}")


class _WriterQueue:
    """One writer at a time; urgent writers are served before the others, each in order."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self, *, urgent: bool) -> None:
        if not self._busy:
            self._busy = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._arrivals), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release()  # the turn was handed over just as we were cancelled: pass it on
            raise

    def release(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():  # a cancelled waiter's future is done: skip it
                turn.set_result(None)
                return
        self._busy = False


class Database:
    """An async engine plus the few operations every store needs."""

    def __init__(self, engine: AsyncEngine, sync_engine: Engine | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # SQLite has one writer at a time, and a second connection asking for the write lock
        # is put to sleep by SQLite's busy handler (1 ms, 2 ms, … 100 ms naps), not queued.
        # Writers of this process therefore queue here, and each one finds the lock free
        # (busy_timeout still covers other processes, such as the CLI).
        self._writer_turn = _WriterQueue() if self.dialect == "sqlite" else None
        # One-hop transactions run on threads over a synchronous engine on the same database.
        # SQLite: one writer thread (writes are serial anyway) and a few reader threads (WAL
        # readers never block). PostgreSQL: one pool of threads for both, as many as the
        # synchronous engine has connections (row locks order the writers).
        self._sync_engine = sync_engine
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None
        if sync_engine is not None and self.dialect == "sqlite":
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="strom-db-writer")
            self._readers = ThreadPoolExecutor(READER_THREADS, thread_name_prefix="strom-db-reader")
        elif sync_engine is not None:
            self._writer = self._readers = ThreadPoolExecutor(
                POSTGRES_THREADS, thread_name_prefix="strom-db"
            )

    @classmethod
    def from_url(cls, url: str, *, search_path: str | None = None) -> Database:
        """Create (but do not yet connect) a database for ``url``.

        For SQLite the parent folder of the file is created. For PostgreSQL
        (``postgresql+asyncpg://…``) the one-hop transactions use psycopg on the same server,
        user and database.

        Args:
            url: ``sqlite+aiosqlite:///path`` or ``postgresql+asyncpg://user@host/db``.
            search_path: PostgreSQL only: the schema to work in (the tests' own schemas).
        """
        if url.startswith("sqlite"):
            path = url.split(":///", 1)[1] if ":///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # Enough pooled connections for the concurrent readers: an overflow connection
            # is opened (a thread, the pragmas) and closed again for every burst.
            engine = create_async_engine(url, pool_size=20, max_overflow=20)
            sync_engine = create_engine(
                f"sqlite:///{path}",
                pool_size=READER_THREADS + 1,
                max_overflow=0,
                connect_args={"check_same_thread": False},
            )
            for target in (engine.sync_engine, sync_engine):
                event.listen(target, "connect", _sqlite_pragmas)
                event.listen(target, "begin", _sqlite_begin)
            return cls(engine, sync_engine)
        async_args: dict[str, Any] = {}
        sync_args: dict[str, Any] = {}
        if search_path is not None:
            async_args = {"server_settings": {"search_path": search_path}}
            sync_args = {"options": f"-csearch_path={search_path}"}
        engine = create_async_engine(
            url, pool_size=10, max_overflow=10, pool_pre_ping=True, connect_args=async_args
        )
        sync_url = make_url(url).set(drivername="postgresql+psycopg")
        sync_engine = create_engine(
            sync_url,
            pool_size=POSTGRES_THREADS,
            max_overflow=0,
            connect_args=sync_args,
        )
        event.listen(sync_engine, "checkin", _note_checkin)
        event.listen(sync_engine, "checkout", _ping_if_idle)
        return cls(engine, sync_engine)

    async def check(self) -> None:
        """Connect once, so an unreachable database fails at start with a clear message.

        Raises:
            StorageError: the database cannot be reached or opened.
        """
        try:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        except (OSError, DBAPIError, OperationalError) as exc:
            url = redact_url(self.engine.url.render_as_string(hide_password=True))
            reason = str(getattr(exc, "orig", exc) or exc).splitlines()[0]
            raise StorageError(f"cannot open the database {url}: {reason}") from None

    async def upgrade(self, revision: str = "head") -> None:
        """Apply Alembic migrations up to ``revision``."""
        await self.check()

        def run(connection: Connection) -> None:
            cfg = AlembicConfig()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)

        async with self.transaction() as conn:
            await conn.run_sync(run)
        log.info("database schema at %s (%s)", revision, self.dialect)

    @asynccontextmanager
    async def transaction(self, *, urgent: bool = False) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed on success, rolled back on any error.

        Args:
            urgent: on SQLite, go before the writers already waiting (a settled payment that
                a driver is waiting for at the charger goes before meter values and status).
        """
        async with contextlib.AsyncExitStack() as stack:
            if self._writer_turn is not None:
                await self._writer_turn.acquire(urgent=urgent)
                stack.callback(self._writer_turn.release)
            try:
                conn = await stack.enter_async_context(self.engine.connect())
                writer = await conn.execution_options(strom_write=True)
                async with writer.begin():
                    yield writer
                    crashpoint("db.before_commit")
            except OperationalError as exc:  # disk full, I/O error, lost connection
                raise _failed("write", exc) from exc
            crashpoint("db.after_commit")

    @asynccontextmanager
    async def reader(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise _failed("read", exc) from exc

    async def write(self, work: Work[T], *, urgent: bool = False) -> T:
        """Run ``work`` as one write transaction, in one hop: committed if it returns.

        ``work`` receives a synchronous connection inside the transaction and must not
        await; any exception it raises rolls the transaction back and is raised here. The
        transaction finishes even if the caller is cancelled meanwhile (a commit is never cut
        in half); the caller then sees the cancellation.

        Args:
            work: the whole transaction, given the connection it runs on.
            urgent: on SQLite, go before the writers already waiting.
        """
        if self._sync_engine is None:
            return await self._write_async(work)
        turn = self._writer_turn
        if turn is not None:
            await turn.acquire(urgent=urgent)
        running = asyncio.get_running_loop().run_in_executor(self._writer, self._commit, work)

        def finished(done: asyncio.Future[T]) -> None:
            if turn is not None:
                turn.release()
            if not done.cancelled():
                done.exception()  # retrieved here too: the caller may have been cancelled

        running.add_done_callback(finished)
        try:
            return await asyncio.shield(running)
        except OperationalError as exc:
            raise _failed("write", exc) from exc

    async def read(self, work: Work[T]) -> T:
        """Run ``work`` as one read-only transaction, in one hop."""
        if self._sync_engine is None:
            try:
                async with self.engine.connect() as conn:
                    return await conn.run_sync(work)
            except OperationalError as exc:
                raise _failed("read", exc) from exc
        assert self._readers is not None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._readers, self._read, work)
        except OperationalError as exc:
            raise _failed("read", exc) from exc

    def _commit(self, work: Work[T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as plain:
            conn = plain.execution_options(strom_write=True)
            with conn.begin():
                result = work(conn)
                crashpoint("db.before_commit")
        crashpoint("db.after_commit")
        return result

    def _read(self, work: Work[T]) -> T:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn, conn.begin():
            return work(conn)

    async def _write_async(self, work: Work[T]) -> T:
        try:
            async with self.engine.connect() as conn:
                writer = await conn.execution_options(strom_write=True)
                async with writer.begin():
                    result = await writer.run_sync(work)
                    crashpoint("db.before_commit")
        except OperationalError as exc:
            raise _failed("write", exc) from exc
        crashpoint("db.after_commit")
        return result

    async def close(self) -> None:
        """Close every pooled connection and stop the database threads."""
        await self.engine.dispose()
        for pool in (self._writer, self._readers):
            if pool is not None:
                await asyncio.get_running_loop().run_in_executor(None, pool.shutdown)
        if self._sync_engine is not None:
            self._sync_engine.dispose()
