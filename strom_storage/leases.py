"""Named leases with fencing tokens, for several Strom processes on one PostgreSQL.

Theory of operation. A lease is a row of ``leases`` named for what it guards: ``charger:<id>``
(the process holding the charger's OCPP connection), ``agent:<id>`` (the process running the
charger's nostr agent), ``leader:<role>`` (the one process doing a periodic job),
``process:<id>`` (held by each live process, so that others can count them). Its owner is
a process id, unique per process start. A lease is held while ``expires_at`` is in the future;
its holder renews it (one statement for all of a process's leases: :func:`renew_all`) before
then, and a process that dies simply stops renewing, so its leases become free after their TTL.

Every change of owner gives the lease a new **fencing token**, one larger than the last (a
released or expired lease keeps its row and its token, so tokens never go back). A holder that
was paused past its expiry — a long GC, a stalled network — may still believe it holds the
lease; its writes are refused because they carry an old token. A write checks its fence with
:func:`fenced` inside the transaction it guards::

    def work(conn: Connection) -> None:
        fenced(conn, lease)          # raises LeaseLost: the whole transaction rolls back
        ...the writes the lease guards...

    await db.write(work)

On PostgreSQL :func:`fenced` locks the lease row (``FOR SHARE``) until the transaction ends, so
a process taking the lease over waits for the write to commit: the old holder's last write
comes before the new holder's first, never after.

Time is the database's (``now()``): processes whose clocks disagree still agree on who holds
what. Note that PostgreSQL's ``now()`` is the start of the transaction.

SQLite has one writer and serves one process: the same functions work there (the same SQL,
with the process clock for ``now()`` and no row locks, which its single writer makes needless).
Leases on SQLite are for that one process only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Interval, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from strom_core.clock import SYSTEM_CLOCK
from strom_core.errors import StromError
from strom_storage.db import Database
from strom_storage.schema import TS, leases

__all__ = [
    "AGENT_PREFIX",
    "CHARGER_PREFIX",
    "PROCESS_PREFIX",
    "Lease",
    "LeaseLost",
    "LeaseStore",
    "acquire",
    "acquire_many",
    "agent_lease",
    "charger_lease",
    "db_now",
    "fenced",
    "holder",
    "holders",
    "live_with_prefix",
    "release",
    "release_names",
    "renew",
    "renew_all",
    "renew_names",
    "take_over",
]

CHARGER_PREFIX = "charger:"
AGENT_PREFIX = "agent:"
PROCESS_PREFIX = "process:"
NAME_MAX = 100


class LeaseLost(StromError):
    """A fenced write was refused: the lease expired or another process holds it now."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease as its holder saw it when it was taken (or as :func:`holder` reads it)."""

    name: str
    owner: str
    token: int
    expires_at: datetime


def charger_lease(charger_id: str) -> str:
    """The name of the lease of a charger's OCPP connection."""
    return f"{CHARGER_PREFIX}{charger_id}"


def agent_lease(charger_id: str) -> str:
    """The name of the lease of a charger's nostr agent (the process that runs it)."""
    return f"{AGENT_PREFIX}{charger_id}"


def db_now(conn: Connection) -> ColumnElement[datetime]:
    """The current time as the database sees it (SQLite: this process's clock)."""
    if conn.dialect.name == "postgresql":
        # The transaction's start, typed as TS so results come back as aware UTC.
        return func.now(type_=TS)
    return literal(SYSTEM_CLOCK.now(), TS)


def _later(conn: Connection, seconds: float) -> ColumnElement[datetime]:
    if conn.dialect.name == "postgresql":
        return func.now(type_=TS) + literal(timedelta(seconds=seconds), Interval)
    return literal(SYSTEM_CLOCK.now() + timedelta(seconds=seconds), TS)


def _check(name: str, owner: str, ttl_s: float) -> None:
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"a lease name must have 1 to {NAME_MAX} characters, got {name!r}")
    if not owner or len(owner) > NAME_MAX:
        raise ValueError(f"a lease owner must have 1 to {NAME_MAX} characters, got {owner!r}")
    if not ttl_s > 0:
        raise ValueError(f"a lease needs a positive time to live, got {ttl_s!r}")


def _lease(row: Any) -> Lease:
    return Lease(name=row.name, owner=row.owner, token=row.token, expires_at=row.expires_at)


def _upsert(conn: Connection, name: str, owner: str, ttl_s: float, *, if_free: bool) -> Any:
    _check(name, owner, ttl_s)
    now = db_now(conn)
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    insert = dialect_insert(leases).values(
        name=name, owner=owner, token=1, expires_at=_later(conn, ttl_s), acquired_at=now
    )
    return insert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "owner": insert.excluded.owner,
            "token": leases.c.token + 1,
            "expires_at": insert.excluded.expires_at,
            "acquired_at": insert.excluded.acquired_at,
        },
        # acquire: only a free (released or expired) lease changes hands. On PostgreSQL a
        # concurrent acquirer waits for the row and re-checks this on the winner's version.
        where=leases.c.expires_at <= now if if_free else None,
    ).returning(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at)


def acquire(conn: Connection, name: str, owner: str, ttl_s: float) -> Lease | None:
    """Take the lease ``name`` if it is free or expired, with a new token.

    A lease held by anyone — ``owner`` included — is not taken: its holder renews it.

    Args:
        conn: the caller's transaction.
        name: the lease, e.g. ``charger:CP-1``.
        owner: this process's id.
        ttl_s: how long the lease holds unless renewed.

    Returns:
        The lease, or None when another holder's lease is still live.

    Raises:
        ValueError: an empty or too long name or owner, or a TTL that is not positive.
    """
    row = conn.execute(_upsert(conn, name, owner, ttl_s, if_free=True)).first()
    return None if row is None else _lease(row)


def take_over(conn: Connection, name: str, owner: str, ttl_s: float) -> Lease:
    """Take the lease ``name`` now, live or not, with a new token (the old holder is fenced).

    For a charger that reconnected to this process: its connection is here now, whatever the
    process that held it before believes.

    Raises:
        ValueError: an empty or too long name or owner, or a TTL that is not positive.
    """
    row = conn.execute(_upsert(conn, name, owner, ttl_s, if_free=False)).one()
    return _lease(row)


def _held(conn: Connection, lease: Lease) -> ColumnElement[bool]:
    return (
        (leases.c.name == lease.name)
        & (leases.c.owner == lease.owner)
        & (leases.c.token == lease.token)
        & (leases.c.expires_at > db_now(conn))
    )


def renew(conn: Connection, lease: Lease, ttl_s: float) -> Lease | None:
    """Extend a lease its holder still holds (same token, not expired).

    Returns:
        The lease with its new expiry, or None: it expired or changed hands (take it again
        with :func:`acquire`, which gives a new token).
    """
    _check(lease.name, lease.owner, ttl_s)
    row = conn.execute(
        update(leases)
        .where(_held(conn, lease))
        .values(expires_at=_later(conn, ttl_s))
        .returning(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at)
    ).first()
    return None if row is None else _lease(row)


def renew_all(conn: Connection, owner: str, ttl_s: float) -> list[Lease]:
    """Extend every live lease of ``owner`` in one statement (the heartbeat).

    Returns:
        The leases still held; a lease the caller believed it held and that is missing here
        was lost (expired or taken over).
    """
    _check("*", owner, ttl_s)
    rows = conn.execute(
        update(leases)
        .where(leases.c.owner == owner, leases.c.expires_at > db_now(conn))
        .values(expires_at=_later(conn, ttl_s))
        .returning(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at)
    )
    return sorted((_lease(row) for row in rows), key=lambda lease: lease.name)


def release(conn: Connection, lease: Lease) -> bool:
    """Give a held lease up at once (it keeps its token); False if it was no longer held."""
    result = conn.execute(update(leases).where(_held(conn, lease)).values(expires_at=db_now(conn)))
    return result.rowcount == 1


def holder(conn: Connection, name: str) -> Lease | None:
    """Who holds the lease ``name`` now, with its token and expiry; None when it is free."""
    row = conn.execute(
        select(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at).where(
            leases.c.name == name, leases.c.expires_at > db_now(conn)
        )
    ).first()
    return None if row is None else _lease(row)


def acquire_many(conn: Connection, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
    """Take each of the leases ``names`` that is free or expired, in one statement.

    The many-names form of :func:`acquire` (a process taking hundreds of agents at once):
    racing processes each get a disjoint part; a lease held by anyone is left alone.

    Returns:
        The leases taken, by name.

    Raises:
        ValueError: as :func:`acquire`, for any of the names.
    """
    wanted = sorted(set(names))  # one order for every process: no deadlock between them
    if not wanted:
        return []
    for name in wanted:
        _check(name, owner, ttl_s)
    now = db_now(conn)
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    insert = dialect_insert(leases).values(
        [
            {
                "name": name,
                "owner": owner,
                "token": 1,
                "expires_at": _later(conn, ttl_s),
                "acquired_at": now,
            }
            for name in wanted
        ]
    )
    statement = insert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={
            "owner": insert.excluded.owner,
            "token": leases.c.token + 1,
            "expires_at": insert.excluded.expires_at,
            "acquired_at": insert.excluded.acquired_at,
        },
        where=leases.c.expires_at <= now,
    ).returning(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at)
    return sorted((_lease(row) for row in conn.execute(statement)), key=lambda x: x.name)


def renew_names(conn: Connection, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
    """Extend the leases ``names`` that ``owner`` still holds, in one statement.

    Unlike :func:`renew_all`, leases of ``owner`` not named here are left alone (another part
    of the same process renews its own).

    Returns:
        The leases still held; a name missing here was lost (expired or taken over).
    """
    _check("*", owner, ttl_s)
    if not names:
        return []
    rows = conn.execute(
        update(leases)
        .where(
            leases.c.name.in_(sorted(set(names))),
            leases.c.owner == owner,
            leases.c.expires_at > db_now(conn),
        )
        .values(expires_at=_later(conn, ttl_s))
        .returning(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at)
    )
    return sorted((_lease(row) for row in rows), key=lambda lease: lease.name)


def release_names(conn: Connection, names: Collection[str], owner: str) -> list[str]:
    """Give up at once the leases ``names`` that ``owner`` holds; returns those released."""
    if not names:
        return []
    rows = conn.execute(
        update(leases)
        .where(
            leases.c.name.in_(sorted(set(names))),
            leases.c.owner == owner,
            leases.c.expires_at > db_now(conn),
        )
        .values(expires_at=db_now(conn))
        .returning(leases.c.name)
    )
    return sorted(row.name for row in rows)


def live_with_prefix(conn: Connection, prefix: str) -> list[Lease]:
    """Every live lease whose name starts with ``prefix`` (e.g. ``process:``), by name."""
    rows = conn.execute(
        select(leases.c.name, leases.c.owner, leases.c.token, leases.c.expires_at)
        .where(
            leases.c.name.startswith(prefix, autoescape=True),
            leases.c.expires_at > db_now(conn),
        )
        .order_by(leases.c.name)
    )
    return [_lease(row) for row in rows]


def holders(conn: Connection, prefix: str) -> list[Lease]:
    """Every live lease whose name starts with ``prefix`` (``charger:``), by name."""
    return live_with_prefix(conn, prefix)


def fenced(conn: Connection, lease: Lease) -> None:
    """Check, inside the caller's transaction, that ``lease`` is still held with its token.

    Call it in the transaction whose writes the lease guards; if it raises, let the exception
    roll the transaction back. On PostgreSQL it also locks the lease row until the transaction
    ends, so nobody takes the lease over between the check and the commit.

    Raises:
        LeaseLost: the lease expired or another process holds it now (a newer token).
    """
    query = select(leases.c.token).where(_held(conn, lease))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    if conn.execute(query).first() is None:
        raise LeaseLost(
            f"lease {lease.name} (token {lease.token}) is no longer held by {lease.owner}"
        )


class LeaseStore:
    """The lease operations, each in a transaction of its own.

    Args:
        db: the database (PostgreSQL for several processes; SQLite serves one).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def acquire(self, name: str, owner: str, ttl_s: float) -> Lease | None:
        """:func:`acquire` in its own transaction."""
        return await self.db.write(lambda conn: acquire(conn, name, owner, ttl_s))

    async def take_over(self, name: str, owner: str, ttl_s: float) -> Lease:
        """:func:`take_over` in its own transaction."""
        return await self.db.write(lambda conn: take_over(conn, name, owner, ttl_s))

    async def renew(self, lease: Lease, ttl_s: float) -> Lease | None:
        """:func:`renew` in its own transaction."""
        return await self.db.write(lambda conn: renew(conn, lease, ttl_s))

    async def renew_all(self, owner: str, ttl_s: float) -> list[Lease]:
        """:func:`renew_all` in its own transaction."""
        return await self.db.write(lambda conn: renew_all(conn, owner, ttl_s))

    async def acquire_many(self, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
        """:func:`acquire_many` in its own transaction."""
        return await self.db.write(lambda conn: acquire_many(conn, names, owner, ttl_s))

    async def renew_names(self, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
        """:func:`renew_names` in its own transaction."""
        return await self.db.write(lambda conn: renew_names(conn, names, owner, ttl_s))

    async def release_names(self, names: Collection[str], owner: str) -> list[str]:
        """:func:`release_names` in its own transaction."""
        return await self.db.write(lambda conn: release_names(conn, names, owner))

    async def live_with_prefix(self, prefix: str) -> list[Lease]:
        """:func:`live_with_prefix` in a read of its own."""
        return await self.db.read(lambda conn: live_with_prefix(conn, prefix))

    async def release(self, lease: Lease) -> bool:
        """:func:`release` in its own transaction."""
        return await self.db.write(lambda conn: release(conn, lease))

    async def holder(self, name: str) -> Lease | None:
        """:func:`holder` in a read of its own."""
        return await self.db.read(lambda conn: holder(conn, name))

    async def holders(self, prefix: str) -> list[Lease]:
        """:func:`holders` in a read of its own."""
        return await self.db.read(lambda conn: holders(conn, prefix))
