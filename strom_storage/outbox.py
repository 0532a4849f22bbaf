"""The transactional outbox: effects stored with the state change that requires them.

A row is written in the same transaction as the change (:func:`queue_effect`), so an effect exists
if and only if its cause was committed. The runner (:mod:`strom_services.effects`) claims due
rows after
commit, executes them, and marks them ``done``; a failure reschedules the row with backoff; a row
that keeps failing becomes ``dead`` and is logged for the operator. Every row has a unique
idempotency key, and every handler is written so that running it twice does no harm — after a
crash, rows that were running are simply run again.

``done_at`` is when a row ran or was given up; the retention sweep
(:mod:`strom_storage.retention`) deletes old finished rows. No row is needed once finished: each
cause enqueues its effects under a state guard (a payment settles once, a session version
changes once, a withdraw offer is claimed once), never by looking for an earlier row.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from strom_storage.db import Database
from strom_storage.leases import charger_lease
from strom_storage.schema import outbox

__all__ = [
    "OutboxRow",
    "OutboxStore",
    "due_filter",
    "due_rows",
    "failure_values",
    "mark_done",
    "next_due",
    "pending_with_prefix",
    "queue_effect",
    "run_session_now",
    "to_row",
]

MAX_ATTEMPTS = 25
MAX_BACKOFF_S = 300


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """One effect waiting to run."""

    id: int
    key: str
    kind: str
    payload: dict[str, Any]
    session_id: str | None
    attempts: int


# The hot statements, built once (SQLAlchemy then compiles each once per dialect and reuses it).
_INSERTS = {
    name: dialect_insert(outbox)
    .values(
        idempotency_key=bindparam("key"),
        session_id=bindparam("session_id"),
        charger_id=bindparam("charger_id"),
        lease=bindparam("lease"),
        kind=bindparam("kind"),
        payload=bindparam("payload"),
        state="pending",
        attempts=0,
        run_after=bindparam("run_after"),
        last_error="",
        created_at=bindparam("now"),
    )
    .on_conflict_do_nothing(index_elements=["idempotency_key"])
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}


def due_filter(now: Any) -> Any:
    """The condition a due row meets, given ``now`` (a bound parameter).

    Shared by this module and the shared outbox's claims (:mod:`strom_storage.outbox_claims`),
    which keep the same ordering rule.
    """
    # A row waits while an earlier row of the same session is due or being retried, so a
    # session's effects run in the order they were queued even across retries. A timer that
    # was never attempted and is not due yet (e.g. the start timeout) does not hold back the
    # rows queued after it.
    earlier = outbox.alias("earlier")
    blocked = (
        select(earlier.c.id)
        .where(
            earlier.c.session_id == outbox.c.session_id,
            earlier.c.state == "pending",
            earlier.c.id < outbox.c.id,
            or_(earlier.c.attempts > 0, earlier.c.run_after <= now),
        )
        .exists()
    )
    return and_(outbox.c.state == "pending", outbox.c.run_after <= now, ~blocked)


def _due_query(*, excluding: bool) -> Any:
    now = bindparam("now", type_=outbox.c.run_after.type)
    query = select(outbox).where(due_filter(now))
    if excluding:  # rows running right now; their sessions' later rows stay blocked
        query = query.where(outbox.c.id.not_in(bindparam("exclude", expanding=True)))
    return query.order_by(outbox.c.id).limit(bindparam("limit"))


_DUE = _due_query(excluding=False)
_DUE_EXCLUDING = _due_query(excluding=True)
_NEXT_DUE = select(func.min(outbox.c.run_after)).where(outbox.c.state == "pending")
_NEXT_DUE_AFTER = _NEXT_DUE.where(
    outbox.c.run_after > bindparam("after", type_=outbox.c.run_after.type)
)
_DONE = (
    update(outbox)
    .where(outbox.c.id == bindparam("row_id"))
    .values(state="done", done_at=bindparam("now", type_=outbox.c.done_at.type))
)


def queue_effect(
    conn: Connection,
    *,
    key: str,
    kind: str,
    payload: dict[str, Any],
    session_id: str | None,
    now: datetime,
    delay_s: float = 0,
    charger_id: str | None = None,
    lease: str | None = None,
) -> None:
    """Queue an effect inside the caller's (synchronous) transaction; a repeated key is ignored.

    Args:
        conn: the caller's transaction.
        key: the idempotency key (unique: a second row with it is not written).
        kind: which handler runs it.
        payload: the handler's arguments (JSON).
        session_id: the session whose effects run in order with it, if any.
        now: when it is queued.
        delay_s: how long after ``now`` it becomes due.
        charger_id: the charger an OCPP command must reach (several processes: the one
            holding the charger's lease runs it, see :mod:`strom_storage.outbox_claims`).
        lease: the lease whose holder runs the row (``agent:<id>`` for an agent's DM or zap
            receipt); ``charger:<charger_id>`` when None and ``charger_id`` is given.
    """
    if lease is None and charger_id is not None:
        lease = charger_lease(charger_id)
    conn.execute(
        _INSERTS[conn.dialect.name],
        {
            "key": key,
            "session_id": session_id,
            "charger_id": charger_id,
            "lease": lease,
            "kind": kind,
            "payload": payload,
            "run_after": now + timedelta(seconds=delay_s),
            "now": now,
        },
    )


def pending_with_prefix(conn: Connection, kind: str, key_prefix: str) -> bool:
    """Whether a pending row of ``kind`` has an idempotency key starting with ``key_prefix``."""
    row = conn.execute(
        select(outbox.c.id)
        .where(
            outbox.c.state == "pending",
            outbox.c.kind == kind,
            outbox.c.idempotency_key.startswith(key_prefix, autoescape=True),
        )
        .limit(1)
    ).first()
    return row is not None


def run_session_now(
    conn: Connection, session_id: str, kinds: Collection[str], now: datetime
) -> None:
    """Make one session's pending rows of ``kinds`` due now, inside the caller's transaction.

    For retries whose cause went away (a RemoteStop retried for a session that has ended):
    they run once more, find nothing to do, and stop holding back the session's later rows.
    """
    conn.execute(
        update(outbox)
        .where(
            outbox.c.session_id == session_id,
            outbox.c.state == "pending",
            outbox.c.kind.in_(list(kinds)),
            outbox.c.run_after > now,
        )
        .values(run_after=now)
    )


def due_rows(
    conn: Connection, now: datetime, limit: int = 100, exclude: Collection[int] = ()
) -> list[OutboxRow]:
    """Pending rows whose time has come, oldest first, except the ids in ``exclude``.

    A row waits while an earlier row of the same session is due or being retried, so a
    session's effects run in the order they were queued even across retries. A timer that
    was never attempted and is not due yet (e.g. the start timeout) does not hold back the
    rows queued after it.
    """
    params: dict[str, Any] = {"now": now, "limit": limit}
    if exclude:
        params["exclude"] = list(exclude)
    rows = conn.execute(_DUE_EXCLUDING if exclude else _DUE, params)
    return [to_row(r) for r in rows]


def to_row(r: Any) -> OutboxRow:
    """An :class:`OutboxRow` from a selected ``outbox`` row."""
    return OutboxRow(
        id=r.id,
        key=r.idempotency_key,
        kind=r.kind,
        payload=r.payload,
        session_id=r.session_id,
        attempts=r.attempts,
    )


def next_due(conn: Connection, after: datetime | None = None) -> datetime | None:
    """When the earliest pending row becomes due (only rows due later than ``after``)."""
    if after is None:
        value = conn.scalar(_NEXT_DUE)
    else:
        value = conn.scalar(_NEXT_DUE_AFTER, {"after": after})
    return value  # type: ignore[no-any-return]


def mark_done(conn: Connection, row_id: int, now: datetime) -> None:
    """Mark a row as executed, inside the caller's transaction."""
    conn.execute(_DONE, {"row_id": row_id, "now": now})


def failure_values(row: OutboxRow, error: str, now: datetime) -> dict[str, Any]:
    """The columns of a failed row: rescheduled with exponential backoff, or dead at the limit."""
    attempts = row.attempts + 1
    dead = attempts >= MAX_ATTEMPTS
    backoff = min(2**attempts, MAX_BACKOFF_S)
    return {
        "state": "dead" if dead else "pending",
        "attempts": attempts,
        "last_error": error[:2000],
        "run_after": now + timedelta(seconds=backoff),
        "done_at": now if dead else None,  # when it was given up (retention)
    }


class OutboxStore:
    """Reads and updates of the outbox for the effect runner."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def due(
        self, now: datetime, limit: int = 100, exclude: frozenset[int] = frozenset()
    ) -> list[OutboxRow]:
        """:func:`due_rows` in a read of its own."""
        return await self.db.read(lambda conn: due_rows(conn, now, limit, exclude))

    async def poll(
        self, now: datetime, limit: int = 100, exclude: frozenset[int] = frozenset()
    ) -> tuple[list[OutboxRow], datetime | None]:
        """The due rows (:func:`due_rows`) and when the next row after ``now`` is due, in one read.

        What the effect runner asks on every pass, in one hop to the database.
        """

        def poll(conn: Connection) -> tuple[list[OutboxRow], datetime | None]:
            return due_rows(conn, now, limit, exclude), next_due(conn, after=now)

        return await self.db.read(poll)

    async def next_due_at(self, after: datetime | None = None) -> datetime | None:
        """When the earliest pending row becomes due (only rows due later than ``after``)."""
        return await self.db.read(lambda conn: next_due(conn, after))

    async def done(self, row_id: int, now: datetime) -> None:
        """Mark a row as executed, in a transaction of its own."""
        await self.db.write(lambda conn: mark_done(conn, row_id, now))

    async def failed(self, row: OutboxRow, error: str, now: datetime) -> bool:
        """Reschedule a row with exponential backoff; returns False when it became dead."""
        values = failure_values(row, error, now)
        await self.db.write(
            lambda conn: conn.execute(update(outbox).where(outbox.c.id == row.id).values(values))
        )
        return bool(values["state"] != "dead")

    async def run_now(self, kinds: Collection[str], now: datetime) -> int:
        """Make pending rows of ``kinds`` due now (their cause went away, e.g. a relay is back).

        Attempts and the dead-letter limit are unchanged; returns how many rows moved.
        """
        moved: int | None = await self.db.write(
            lambda conn: (
                conn.execute(
                    update(outbox)
                    .where(
                        outbox.c.state == "pending",
                        outbox.c.kind.in_(list(kinds)),
                        outbox.c.run_after > now,
                    )
                    .values(run_after=now)
                ).rowcount
            )
        )
        return int(moved or 0)

    async def counts(self) -> dict[str, int]:
        """Rows per state (for health and metrics)."""

        def counts(conn: Connection) -> dict[str, int]:
            rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state))
            return {state: int(n) for state, n in rows}

        return await self.db.read(counts)
