"""The operator's read models: sessions, payments, refunds, totals, audit. Read-only, keyset-paged.

Paging is by ``(created_at, id)`` descending, newest first; the cursor is that pair of the
last row, opaque to clients (base64url JSON). Keyset paging stays correct while new rows
arrive, unlike offsets. Rows are returned as the database gives them (attribute access by
column name); the cockpit turns them into its answers. Each method is one read, in one hop
(:meth:`Database.read`): a page, a session's rows, or all the sums of one report.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.engine import Connection

from strom_core.availability import StatusChange
from strom_storage.db import Database
from strom_storage.schema import (
    audit_log,
    connectors,
    ledger_intervals,
    payments,
    refunds,
    sessions,
    status_history,
)

__all__ = [
    "RUNNING_STATES",
    "BadCursor",
    "Page",
    "Reports",
    "SoldInterval",
    "Totals",
    "decode_cursor",
    "encode_cursor",
]

RUNNING_STATES = ("paid", "starting", "charging", "stopping")
"""Session states that hold a connector."""

Page = tuple[list[Any], str | None]
"""Rows of one page, newest first, and the cursor of the next page (None at the end)."""


class BadCursor(ValueError):
    """A cursor that this API did not hand out."""


def encode_cursor(created_at: datetime, row_id: str) -> str:
    """The opaque cursor of a row (its creation time and id)."""
    raw = orjson.dumps([created_at.isoformat(), row_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The creation time and id a cursor stands for.

    Raises:
        BadCursor: a cursor :func:`encode_cursor` did not make.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, row_id = orjson.loads(raw)
        moment = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise BadCursor("the cursor is not one this API handed out") from None
    if not isinstance(row_id, str) or moment.tzinfo is None:
        raise BadCursor("the cursor is not one this API handed out")
    return moment.astimezone(UTC), row_id


def _keyset(query: Select[Any], created: Any, key: Any, cursor: str | None) -> Select[Any]:
    if cursor is not None:
        at, row_id = decode_cursor(cursor)
        query = query.where(or_(created < at, and_(created == at, key < row_id)))
    return query.order_by(created.desc(), key.desc())


def _window(
    query: Select[Any], column: Any, since: datetime | None, until: datetime | None
) -> Select[Any]:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


@dataclass
class Totals:
    """One period's money and energy."""

    sessions: int = 0
    paid_msat: int = 0
    refunded_msat: int = 0
    refund_fees_msat: int = 0
    energy_wh: int = 0
    session_ids: set[str] = field(default_factory=set)


def _period(moment: datetime, period: str) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d" if period == "day" else "%Y-%m")


def _rows(query: Select[Any]) -> Callable[[Connection], list[Any]]:
    """A one-hop read of every row of ``query`` (fetched before the connection goes back)."""
    return lambda conn: list(conn.execute(query))


def _period_totals(
    conn: Connection, period: str, since: datetime | None, until: datetime | None
) -> dict[str, Totals]:
    totals: dict[str, Totals] = defaultdict(Totals)
    paid = _window(
        select(payments.c.session_id, payments.c.amount_msat, payments.c.settled_at).where(
            payments.c.state == "settled"
        ),
        payments.c.settled_at,
        since,
        until,
    )
    for row in conn.execute(paid):
        entry = totals[_period(row.settled_at, period)]
        entry.paid_msat += row.amount_msat
        entry.session_ids.add(row.session_id)
    out = _window(
        select(refunds.c.amount_msat, refunds.c.fee_msat, refunds.c.updated_at).where(
            refunds.c.state == "paid"
        ),
        refunds.c.updated_at,
        since,
        until,
    )
    for row in conn.execute(out):
        entry = totals[_period(row.updated_at, period)]
        entry.refunded_msat += row.amount_msat or 0
        entry.refund_fees_msat += row.fee_msat or 0
    energy = _window(
        select(sessions.c.energy_wh, sessions.c.stopped_at).where(
            sessions.c.stopped_at.is_not(None)
        ),
        sessions.c.stopped_at,
        since,
        until,
    )
    for row in conn.execute(energy):
        totals[_period(row.stopped_at, period)].energy_wh += row.energy_wh
    return totals


def _money_totals(conn: Connection) -> tuple[int, int, int, int]:
    received = conn.scalar(
        select(func.coalesce(func.sum(payments.c.amount_msat), 0)).where(
            payments.c.state == "settled"
        )
    )
    out = conn.execute(
        select(
            func.coalesce(func.sum(refunds.c.amount_msat), 0),
            func.coalesce(func.sum(refunds.c.fee_msat), 0),
        ).where(refunds.c.state == "paid")
    ).one()
    energy = conn.scalar(select(func.coalesce(func.sum(sessions.c.energy_wh), 0)))
    return int(received or 0), int(out[0]), int(out[1]), int(energy or 0)


def _status_changes(
    conn: Connection, since: datetime, until: datetime, charger_id: str | None
) -> tuple[list[tuple[str, int]], list[StatusChange]]:
    wanted = select(connectors.c.charger_id, connectors.c.connector_id).order_by(
        connectors.c.charger_id, connectors.c.connector_id
    )
    history = select(status_history)
    if charger_id is not None:
        wanted = wanted.where(connectors.c.charger_id == charger_id)
        history = history.where(status_history.c.charger_id == charger_id)
    known = [(row.charger_id, int(row.connector_id)) for row in conn.execute(wanted)]
    # The state in force at ``since``: each connector's (and link's) last change before it.
    last_before = (
        select(func.max(status_history.c.id))
        .where(status_history.c.at < since)
        .group_by(status_history.c.charger_id, status_history.c.connector_id)
    )
    rows = conn.execute(
        history.where(
            or_(
                and_(status_history.c.at >= since, status_history.c.at < until),
                status_history.c.id.in_(last_before),
            )
        ).order_by(status_history.c.at, status_history.c.id)
    )
    changes = [
        StatusChange(row.charger_id, int(row.connector_id), row.status, row.at) for row in rows
    ]
    return known, changes


@dataclass(frozen=True, slots=True)
class SoldInterval:
    """One billed interval of one session (a row of ``ledger_intervals``)."""

    session_id: str
    start: datetime
    end: datetime
    energy_wh: int
    energy_msat_per_kwh: int
    cost_msat: int
    source: str


def _sold_intervals(
    conn: Connection, charger_id: str, since: datetime, until: datetime
) -> list[SoldInterval]:
    query = (
        select(
            ledger_intervals.c.session_id,
            ledger_intervals.c.interval_start,
            ledger_intervals.c.interval_end,
            ledger_intervals.c.energy_wh,
            ledger_intervals.c.energy_msat_per_kwh,
            ledger_intervals.c.cost_msat,
            ledger_intervals.c.source,
        )
        .join(sessions, sessions.c.id == ledger_intervals.c.session_id)
        .where(
            sessions.c.charger_id == charger_id,
            ledger_intervals.c.interval_start >= since,
            ledger_intervals.c.interval_start < until,
        )
        .order_by(ledger_intervals.c.interval_start, ledger_intervals.c.id)
    )
    return [
        SoldInterval(
            row.session_id,
            row.interval_start,
            row.interval_end,
            int(row.energy_wh),
            int(row.energy_msat_per_kwh),
            int(row.cost_msat),
            row.source,
        )
        for row in conn.execute(query)
    ]


class Reports:
    """What the operator reads about sessions and money (no writes).

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def _page(
        self, query: Select[Any], created: Any, key: Any, limit: int, cursor: str | None
    ) -> Page:
        """One page of ``query`` by ``(created, key)`` descending, and the next page's cursor."""
        query = _keyset(query, created, key, cursor).limit(limit + 1)
        rows = await self.db.read(_rows(query))
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        last = rows[-1]
        return rows, encode_cursor(getattr(last, created.name), getattr(last, key.name))

    async def page_sessions(
        self,
        *,
        charger: str | None,
        state: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Session rows, newest first, and the cursor of the next page (None at the end).

        Raises:
            BadCursor: a cursor this API did not hand out.
        """
        query = select(sessions)
        if charger is not None:
            query = query.where(sessions.c.charger_id == charger)
        if state is not None:
            query = query.where(sessions.c.state == state)
        query = _window(query, sessions.c.created_at, since, until)
        return await self._page(query, sessions.c.created_at, sessions.c.id, limit, cursor)

    async def session_row(self, session_id: str) -> Any:
        """One session row, or None."""
        query = select(sessions).where(sessions.c.id == session_id)
        return await self.db.read(lambda conn: conn.execute(query).first())

    async def running_sessions(self, charger_id: str | None = None) -> list[Any]:
        """Sessions that hold a connector (paid, starting, charging, stopping), oldest first."""
        query = select(sessions).where(sessions.c.state.in_(RUNNING_STATES))
        if charger_id is not None:
            query = query.where(sessions.c.charger_id == charger_id)
        return await self.db.read(_rows(query.order_by(sessions.c.created_at)))

    async def payments_of(self, session_id: str) -> list[Any]:
        """Every payment of a session, oldest first."""
        query = (
            select(payments)
            .where(payments.c.session_id == session_id)
            .order_by(payments.c.created_at)
        )
        return await self.db.read(_rows(query))

    async def refunds_of(self, session_id: str) -> list[Any]:
        """Every refund of a session, oldest first."""
        query = (
            select(refunds).where(refunds.c.session_id == session_id).order_by(refunds.c.created_at)
        )
        return await self.db.read(_rows(query))

    async def page_payments(
        self, *, since: datetime | None, until: datetime | None, limit: int, cursor: str | None
    ) -> Page:
        """Settled payments (money in), newest first.

        Raises:
            BadCursor: a cursor this API did not hand out.
        """
        query = select(payments).where(payments.c.state == "settled")
        query = _window(query, payments.c.created_at, since, until)
        return await self._page(
            query, payments.c.created_at, payments.c.payment_hash, limit, cursor
        )

    async def page_refunds(
        self, *, since: datetime | None, until: datetime | None, limit: int, cursor: str | None
    ) -> Page:
        """Refunds (money out) in every state, newest first.

        Raises:
            BadCursor: a cursor this API did not hand out.
        """
        query = _window(select(refunds), refunds.c.created_at, since, until)
        return await self._page(query, refunds.c.created_at, refunds.c.id, limit, cursor)

    async def period_totals(
        self, *, period: str, since: datetime | None, until: datetime | None
    ) -> dict[str, Totals]:
        """Money and energy per UTC day or month (``period`` is ``day`` or ``month``).

        Money in is settled payments by settlement time, money out paid refunds by payment
        time, energy the sessions' by stop time.
        """
        totals = await self.db.read(
            partial(_period_totals, period=period, since=since, until=until)
        )
        for entry in totals.values():
            entry.sessions = len(entry.session_ids)
        return dict(sorted(totals.items()))

    async def status_changes(
        self, *, since: datetime, until: datetime, charger_id: str | None = None
    ) -> tuple[list[tuple[str, int]], list[StatusChange]]:
        """The connectors and the status changes of ``[since, until)`` (availability timeline).

        Returns:
            Every configured (charger id, connector id), sorted; and the changes in the window
            together with each connector's and each charger link's last change before it,
            oldest first (:func:`strom_core.availability.availability_spans` takes both).
        """
        return await self.db.read(
            partial(_status_changes, since=since, until=until, charger_id=charger_id)
        )

    async def sold_intervals(
        self, *, charger_id: str, since: datetime, until: datetime
    ) -> list[SoldInterval]:
        """The billed intervals of a charger's sessions that start in ``[since, until)``.

        Only sessions priced by a schedule (dynamic tariffs) journal their intervals; a static
        tariff's sessions have none. Oldest first.
        """
        return await self.db.read(
            partial(_sold_intervals, charger_id=charger_id, since=since, until=until)
        )

    async def counts_by_state(self) -> dict[str, int]:
        """How many sessions are in each state (states without sessions are absent)."""
        query = select(sessions.c.state, func.count()).group_by(sessions.c.state)
        return await self.db.read(
            lambda conn: {state: int(count) for state, count in conn.execute(query)}
        )

    async def money_totals(self) -> tuple[int, int, int, int]:
        """(msat received, msat refunded, refund fees msat, Wh delivered), all time."""
        return await self.db.read(_money_totals)

    async def audit_entries(self, limit: int) -> list[Any]:
        """The newest ``limit`` rows of the audit log, newest first."""
        query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        return await self.db.read(_rows(query))
