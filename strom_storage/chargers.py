"""Chargers and connectors: configured in profiles, mirrored in the database.

The profiles folder is the source of truth for *which* chargers exist and how they are built;
the database keeps what changes at run time (online, connector status, enabled flags set by the
operator). :meth:`ChargerStore.sync` makes the tables match the profiles at start without
touching run-time state of chargers that still exist.

Whether a charger is connected is kept here too, not only in the OCPP server's memory, so that
every process sharing the database reads the same answer (offers refuse a charger that is not
connected). A charger connected when Strom stops or dies keeps ``online`` until the next start,
which turns it into a short reconnect grace (:meth:`ChargerStore.begin_reconnect_grace`).

Several processes on one PostgreSQL: ``online`` is written by the process holding the charger's
connection, and its lease (``charger:<id>``, :mod:`strom_storage.leases`) says which one that
is. A process that is not (or no longer) the holder never marks a charger offline while another
process holds its lease (a late close of an old connection must not undo the new holder's
"online"), and a starting process gives a reconnect grace only to chargers no live process
holds. A process that stops or dies while the others run leaves its chargers' flags set: the
cluster's leader gives those the same grace (:meth:`ChargerStore.sweep_unheld`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, exists, insert, literal, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ProfileConfig
from strom_core.errors import StorageError
from strom_core.ports import ChargerLink, charger_link
from strom_storage.audit import record_in
from strom_storage.db import Database
from strom_storage.leases import CHARGER_PREFIX, db_now, holder
from strom_storage.schema import chargers, connectors, leases, status_history

__all__ = [
    "ChargerStore",
    "ConnectorRow",
    "all_connectors",
    "link_columns",
    "load_connector",
    "run_unheld_sweep",
    "set_connector_status",
]

log = logging.getLogger("strom_storage.chargers")


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    """Run-time state of one connector."""

    charger_id: str
    connector_id: int
    enabled: bool
    status: str
    error_code: str


_CONNECTOR = select(connectors).where(
    connectors.c.charger_id == bindparam("charger_id"),
    connectors.c.connector_id == bindparam("connector_id"),
)
_SET_STATUS = (
    update(connectors)
    .where(  # not the columns' names: those are reserved for the SET clause's parameters
        connectors.c.charger_id == bindparam("charger"),
        connectors.c.connector_id == bindparam("connector"),
    )
    .values(
        status=bindparam("status"),
        error_code=bindparam("error_code"),
        status_at=bindparam("at", type_=connectors.c.status_at.type),
    )
)


def _connector_row(row: Any) -> ConnectorRow:
    return ConnectorRow(
        row.charger_id, row.connector_id, bool(row.enabled), row.status, row.error_code
    )


def load_connector(conn: Connection, charger_id: str, connector_id: int) -> ConnectorRow | None:
    """One connector's run-time state, in the caller's transaction; None if not configured."""
    row = conn.execute(_CONNECTOR, {"charger_id": charger_id, "connector_id": connector_id}).first()
    return None if row is None else _connector_row(row)


def all_connectors(conn: Connection) -> list[ConnectorRow]:
    """Every connector's run-time state, in the caller's transaction."""
    return [_connector_row(row) for row in conn.execute(select(connectors))]


def link_columns(
    conn: Connection, charger_id: str | None = None
) -> dict[str, tuple[bool, datetime | None]]:
    """``(online, reconnect_until)`` by charger id, for :func:`charger_link` at any time.

    Args:
        conn: the caller's transaction.
        charger_id: only this charger's (an empty answer if it is not known).
    """
    query = select(chargers.c.id, chargers.c.online, chargers.c.reconnect_until)
    if charger_id is not None:
        query = query.where(chargers.c.id == charger_id)
    return {row.id: (bool(row.online), row.reconnect_until) for row in conn.execute(query)}


def _record_change(
    conn: Connection, charger_id: str, connector_id: int, status: str, error_code: str, at: datetime
) -> None:
    conn.execute(
        insert(status_history).values(
            charger_id=charger_id,
            connector_id=connector_id,
            status=status[:32],
            error_code=error_code[:50],
            at=at,
        )
    )


def _set_online(
    conn: Connection, charger_id: str, online: bool, at: datetime, process_id: str | None = None
) -> None:
    if not online and process_id is not None:
        current = holder(conn, f"{CHARGER_PREFIX}{charger_id}")
        if current is not None and current.owner != process_id:
            return  # another process holds its connection now: it is online there
    was = conn.scalar(select(chargers.c.online).where(chargers.c.id == charger_id))
    if was is None:
        return
    if bool(was) != online:
        _record_change(conn, charger_id, 0, "Online" if online else "Offline", "NoError", at)
    conn.execute(
        update(chargers)
        .where(chargers.c.id == charger_id)
        .values(online=online, last_seen_at=at, updated_at=at, reconnect_until=None)
    )


def set_connector_status(
    conn: Connection,
    charger_id: str,
    connector_id: int,
    status: str,
    error_code: str,
    at: datetime,
) -> None:
    """Record a StatusNotification for a known connector, in the caller's transaction.

    A change of status or error code is also kept in ``status_history`` (the availability
    timeline); a repeated notification is not.
    """
    before = conn.execute(
        select(connectors.c.status, connectors.c.error_code).where(
            connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id
        )
    ).first()
    if before is not None and (before.status, before.error_code) != (status, error_code):
        _record_change(conn, charger_id, connector_id, status, error_code, at)
    conn.execute(
        _SET_STATUS,
        {
            "charger": charger_id,
            "connector": connector_id,
            "status": status,
            "error_code": error_code,
            "at": at,
        },
    )


def _sync(conn: Connection, profiles: tuple[ProfileConfig, ...], now: datetime) -> None:
    known = set(conn.scalars(select(chargers.c.id)))
    have = {
        (r.charger_id, r.connector_id)
        for r in conn.execute(select(connectors.c.charger_id, connectors.c.connector_id))
    }
    for profile in profiles:
        if profile.id in known:
            conn.execute(
                update(chargers)
                .where(chargers.c.id == profile.id)
                .values(name=profile.name, updated_at=now)
            )
        else:
            conn.execute(
                insert(chargers).values(
                    id=profile.id,
                    name=profile.name,
                    enabled=True,
                    online=False,
                    created_at=now,
                    updated_at=now,
                )
            )
        for connector in profile.connectors:
            if (profile.id, connector.id) not in have:
                conn.execute(
                    insert(connectors).values(
                        charger_id=profile.id,
                        connector_id=connector.id,
                        enabled=True,
                        status="Unknown",
                        error_code="NoError",
                    )
                )


def _begin_reconnect_grace(
    conn: Connection,
    now: datetime,
    until: datetime | None,
    spare_held: bool = False,
    *,
    renew_graces: bool = True,
) -> list[str]:
    condition: ColumnElement[bool] = chargers.c.online.is_(True)
    if renew_graces:
        condition = or_(condition, chargers.c.reconnect_until > now)
    if spare_held:
        if conn.dialect.name == "postgresql":
            # Lock the candidates first, so that the lease check below (a statement of its
            # own, so a fresh snapshot) sees every lease taken before it; a process taking a
            # lease after it marks its charger online only once this transaction has ended.
            conn.execute(
                select(chargers.c.id).where(condition).order_by(chargers.c.id).with_for_update()
            )
        held = exists().where(
            leases.c.name == literal(CHARGER_PREFIX) + chargers.c.id,
            leases.c.expires_at > db_now(conn),
        )
        condition = and_(condition, ~held)
    returning = conn.scalars(
        update(chargers)
        .where(condition)
        .values(online=False, reconnect_until=until, updated_at=now)
        .returning(chargers.c.id)
    )
    ids = sorted(returning)
    for charger_id in ids:  # connected when Strom stopped: offline from its start on
        _record_change(conn, charger_id, 0, "Offline", "NoError", now)
    return ids


class ChargerStore:
    """Run-time charger state on the database.

    The statements a service runs inside its own one-hop transaction are the module-level
    functions; the methods here are transactions of their own.

    Args:
        db: the database.
        clock: the time stamped on rows when the caller gives none.
        process_id: this process's id in a cluster (its leases' owner): a charger is then
            marked offline only when no other process holds its lease. None: one process.
    """

    def __init__(
        self, db: Database, clock: Clock = SYSTEM_CLOCK, process_id: str | None = None
    ) -> None:
        self.db = db
        self.clock = clock
        self.process_id = process_id

    async def sync(self, profiles: tuple[ProfileConfig, ...], now: datetime | None = None) -> None:
        """Insert chargers and connectors that are new in the profiles; update names."""
        await self.db.write(partial(_sync, profiles=profiles, now=now or self.clock.now()))

    async def connectors(self, charger_id: str) -> list[ConnectorRow]:
        """The connectors of one charger, by id."""

        def read(conn: Connection) -> list[ConnectorRow]:
            rows = conn.execute(
                select(connectors)
                .where(connectors.c.charger_id == charger_id)
                .order_by(connectors.c.connector_id)
            )
            return [
                ConnectorRow(r.charger_id, r.connector_id, r.enabled, r.status, r.error_code)
                for r in rows
            ]

        return await self.db.read(read)

    async def set_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str, at: datetime
    ) -> None:
        """Record a StatusNotification for a known connector (:func:`set_connector_status`)."""
        await self.db.write(
            partial(
                set_connector_status,
                charger_id=charger_id,
                connector_id=connector_id,
                status=status,
                error_code=error_code,
                at=at,
            )
        )

    async def status(self, charger_id: str, connector_id: int) -> str | None:
        """The last status a connector reported (None: not a configured connector)."""
        value = await self.db.read(
            lambda conn: conn.scalar(
                select(connectors.c.status).where(
                    connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id
                )
            )
        )
        return None if value is None else str(value)

    async def set_online(self, charger_id: str, online: bool, at: datetime) -> None:
        """Record a charger connecting or going away (which ends any reconnect grace)."""
        await self.db.write(
            partial(
                _set_online,
                charger_id=charger_id,
                online=online,
                at=at,
                process_id=self.process_id,
            )
        )

    async def record_security_event(
        self, charger_id: str, kind: str, at: datetime, tech_info: str, received_at: datetime
    ) -> None:
        """Keep a charger's security event in the audit log (action ``charger_security_event``)."""
        detail = {"type": kind[:50], "at": at.isoformat(), "tech_info": tech_info[:255]}
        await self.db.write(
            partial(
                record_in,
                actor=f"charger:{charger_id}",
                action="charger_security_event",
                target=charger_id,
                detail=detail,
                now=received_at,
            )
        )

    async def begin_reconnect_grace(
        self, now: datetime, grace_s: int, *, spare_held: bool = False
    ) -> list[str]:
        """At start: chargers connected when Strom last stopped are reconnecting, not online.

        Nothing is connected yet when this runs (the OCPP server starts after it), so every
        ``online`` flag is left over from the last run. Those chargers, and those still within
        a grace of an earlier start, get ``grace_s`` to come back: until then they show their
        last connector status as reconnecting, and offers refuse them (not connected).

        In a cluster other processes are running and hold connections: with ``spare_held``
        a charger whose lease a live process holds is left as it is, and only the others (left
        over from a process that stopped or died) get the grace.

        Args:
            now: the start (aware UTC).
            grace_s: the reconnect grace (``ocpp.reconnect_grace_s``); 0 shows them offline.
            spare_held: leave chargers with a live ``charger:<id>`` lease alone (a cluster).

        Returns:
            The ids of the chargers given a grace, sorted.
        """
        until = now + timedelta(seconds=grace_s) if grace_s > 0 else None
        ids = await self.db.write(
            partial(_begin_reconnect_grace, now=now, until=until, spare_held=spare_held)
        )
        return ids if until is not None else []

    async def sweep_unheld(self, now: datetime, grace_s: int) -> list[str]:
        """In a cluster: chargers shown online that no live process holds are reconnecting.

        A process that stops cleanly leaves its chargers' ``online`` flags set (nothing is
        recorded while it stops), and a process that dies cannot clear them; the start of a
        process clears them (:meth:`begin_reconnect_grace`), but a cluster may run for long
        without one. The cluster's leader runs this every lease time to live: each charger
        shown online without a live ``charger:<id>`` lease gets ``grace_s`` to connect to any
        process, exactly as at a start, and is offline after that. A charger already within a
        grace keeps the one it has (it is not renewed), and one whose lease a process holds,
        or takes while this runs, is left online.

        Args:
            now: the time of the sweep (aware UTC).
            grace_s: the reconnect grace (``ocpp.reconnect_grace_s``); 0 shows them offline.

        Returns:
            The ids of the chargers no longer shown online, sorted.
        """
        until = now + timedelta(seconds=grace_s) if grace_s > 0 else None
        return await self.db.write(
            partial(
                _begin_reconnect_grace, now=now, until=until, spare_held=True, renew_graces=False
            )
        )

    async def links(self, now: datetime | None = None) -> dict[str, ChargerLink]:
        """Every charger's link (online, reconnecting, offline), by id."""
        at = now or self.clock.now()
        columns = await self.db.read(link_columns)
        return {charger_id: charger_link(*link, at) for charger_id, link in columns.items()}


async def run_unheld_sweep(
    store: ChargerStore,
    *,
    grace_s: int,
    interval_s: float,
    clock: Clock = SYSTEM_CLOCK,
    on_swept: Callable[[list[str]], object] | None = None,
) -> None:
    """A cluster leader's role: :meth:`ChargerStore.sweep_unheld` every ``interval_s``.

    Runs until cancelled; a database error waits for the next sweep.

    Args:
        store: the chargers.
        grace_s: the reconnect grace (``ocpp.reconnect_grace_s``).
        interval_s: time between two sweeps (the cluster's ``lease_ttl_s``).
        clock: the time of each sweep.
        on_swept: called with the ids of the chargers each sweep took offline, when any.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            swept = await store.sweep_unheld(clock.now(), grace_s)
        except StorageError as exc:
            log.warning("charger sweep failed, trying again later: %s", exc)
            continue
        if not swept:
            continue
        log.info(
            "%d charger(s) shown online are held by no process (it stopped or died); shown as "
            "reconnecting for up to %d s (ocpp.reconnect_grace_s), no payments until each is "
            "back: %s",
            len(swept),
            grace_s,
            ", ".join(swept[:10]) + (" …" if len(swept) > 10 else ""),
        )
        if on_swept is not None:
            on_swept(swept)
