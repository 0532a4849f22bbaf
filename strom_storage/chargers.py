"""Chargers and connectors: configured in profiles, mirrored in the database.

The profiles folder is the source of truth for *which* chargers exist and how they are built;
the database keeps what changes at run time (online, connector status, enabled flags set by the
operator). :meth:`ChargerStore.sync` makes the tables match the profiles at start without
touching run-time state of chargers that still exist.

Whether a charger is connected is kept here too, not only in the OCPP server's memory, so that
every process sharing the database reads the same answer (offers refuse a charger that is not
connected). A charger connected when Strom stops or dies keeps ``online`` until the next start,
which turns it into a short reconnect grace (:meth:`ChargerStore.begin_reconnect_grace`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ProfileConfig
from strom_core.ports import ChargerLink, charger_link
from strom_storage.db import Database, Transaction
from strom_storage.schema import chargers, connectors

__all__ = ["ChargerStore", "ConnectorRow", "load_connector"]


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


def load_connector(conn: Connection, charger_id: str, connector_id: int) -> ConnectorRow | None:
    """One connector's run-time state, in the caller's transaction; None if not configured."""
    row = conn.execute(_CONNECTOR, {"charger_id": charger_id, "connector_id": connector_id}).first()
    if row is None:
        return None
    return ConnectorRow(
        row.charger_id, row.connector_id, bool(row.enabled), row.status, row.error_code
    )


class ChargerStore:
    """Run-time charger state on the database.

    Args:
        db: the database.
        clock: the time stamped on rows when the caller gives none.
    """

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock

    async def sync(self, profiles: tuple[ProfileConfig, ...], now: datetime | None = None) -> None:
        """Insert chargers and connectors that are new in the profiles; update names."""
        now = now or self.clock.now()
        async with self.db.transaction() as conn:
            known = set((await conn.execute(select(chargers.c.id))).scalars())
            have = {
                (r.charger_id, r.connector_id)
                for r in await conn.execute(
                    select(connectors.c.charger_id, connectors.c.connector_id)
                )
            }
            for profile in profiles:
                if profile.id in known:
                    await conn.execute(
                        update(chargers)
                        .where(chargers.c.id == profile.id)
                        .values(name=profile.name, updated_at=now)
                    )
                else:
                    await conn.execute(
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
                        await conn.execute(
                            insert(connectors).values(
                                charger_id=profile.id,
                                connector_id=connector.id,
                                enabled=True,
                                status="Unknown",
                                error_code="NoError",
                            )
                        )

    async def connectors(self, charger_id: str) -> list[ConnectorRow]:
        """The connectors of one charger, by id."""
        async with self.db.reader() as conn:
            rows = await conn.execute(
                select(connectors)
                .where(connectors.c.charger_id == charger_id)
                .order_by(connectors.c.connector_id)
            )
            return [
                ConnectorRow(r.charger_id, r.connector_id, r.enabled, r.status, r.error_code)
                for r in rows
            ]

    async def connector(
        self, tx: Transaction, charger_id: str, connector_id: int
    ) -> ConnectorRow | None:
        """One connector's run-time state, in the caller's transaction; None if not configured."""
        return await tx.run_sync(load_connector, charger_id, connector_id)

    async def all_connectors(self, tx: Transaction) -> list[ConnectorRow]:
        """Every connector's run-time state, in the caller's transaction."""
        rows = await tx.execute(select(connectors))
        return [
            ConnectorRow(r.charger_id, r.connector_id, bool(r.enabled), r.status, r.error_code)
            for r in rows
        ]

    async def link_columns(
        self, tx: Transaction, charger_id: str | None = None
    ) -> dict[str, tuple[bool, datetime | None]]:
        """``(online, reconnect_until)`` by charger id, for :func:`charger_link` at any time.

        Args:
            tx: the caller's transaction.
            charger_id: only this charger's (an empty answer if it is not known).
        """
        query = select(chargers.c.id, chargers.c.online, chargers.c.reconnect_until)
        if charger_id is not None:
            query = query.where(chargers.c.id == charger_id)
        return {row.id: (bool(row.online), row.reconnect_until) for row in await tx.execute(query)}

    async def set_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str, at: datetime
    ) -> None:
        """Record a StatusNotification for a known connector."""
        async with self.db.transaction() as conn:
            await self.set_status_in(conn, charger_id, connector_id, status, error_code, at)

    async def set_status_in(
        self,
        conn: Transaction,
        charger_id: str,
        connector_id: int,
        status: str,
        error_code: str,
        at: datetime,
    ) -> None:
        """Like :meth:`set_status`, inside a transaction the caller owns."""
        await conn.execute(
            update(connectors)
            .where(connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id)
            .values(status=status, error_code=error_code, status_at=at)
        )

    async def status(self, charger_id: str, connector_id: int) -> str | None:
        """The last status a connector reported (None: not a configured connector)."""
        async with self.db.reader() as conn:
            value = await conn.scalar(
                select(connectors.c.status).where(
                    connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id
                )
            )
            return None if value is None else str(value)

    async def set_online(self, charger_id: str, online: bool, at: datetime) -> None:
        """Record a charger connecting or going away (which ends any reconnect grace)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(chargers)
                .where(chargers.c.id == charger_id)
                .values(online=online, last_seen_at=at, updated_at=at, reconnect_until=None)
            )

    async def begin_reconnect_grace(self, now: datetime, grace_s: int) -> list[str]:
        """At start: chargers connected when Strom last stopped are reconnecting, not online.

        Nothing is connected yet when this runs (the OCPP server starts after it), so every
        ``online`` flag is left over from the last run. Those chargers, and those still within
        a grace of an earlier start, get ``grace_s`` to come back: until then they show their
        last connector status as reconnecting, and offers refuse them (not connected).

        Args:
            now: the start (aware UTC).
            grace_s: the reconnect grace (``ocpp.reconnect_grace_s``); 0 shows them offline.

        Returns:
            The ids of the chargers given a grace, sorted.
        """
        until = now + timedelta(seconds=grace_s) if grace_s > 0 else None
        async with self.db.transaction() as conn:
            returning = (
                await conn.execute(
                    update(chargers)
                    .where(or_(chargers.c.online.is_(True), chargers.c.reconnect_until > now))
                    .values(online=False, reconnect_until=until, updated_at=now)
                    .returning(chargers.c.id)
                )
            ).scalars()
            ids = sorted(returning)
        return ids if until is not None else []

    async def links(self, now: datetime | None = None) -> dict[str, ChargerLink]:
        """Every charger's link (online, reconnecting, offline), by id."""
        now = now or self.clock.now()
        async with self.db.reader() as conn:
            rows = await conn.execute(
                select(chargers.c.id, chargers.c.online, chargers.c.reconnect_until)
            )
            return {row.id: charger_link(row.online, row.reconnect_until, now) for row in rows}
