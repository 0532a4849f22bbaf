"""Chargers and connectors: configured in profiles, mirrored in the database.

The profiles folder is the source of truth for *which* chargers exist and how they are built;
the database keeps what changes at run time (online, connector status, enabled flags set by the
operator). :meth:`ChargerStore.sync` makes the tables match the profiles at start without
touching run-time state of chargers that still exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from strom.config import ProfileConfig
from strom.storage.db import Database
from strom.storage.schema import chargers, connectors

__all__ = ["ChargerStore", "ConnectorRow"]


@dataclass(frozen=True, slots=True)
class ConnectorRow:
    """Run-time state of one connector."""

    charger_id: str
    connector_id: int
    enabled: bool
    status: str
    error_code: str


class ChargerStore:
    """Run-time charger state on the database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def sync(self, profiles: tuple[ProfileConfig, ...], now: datetime | None = None) -> None:
        """Insert chargers and connectors that are new in the profiles; update names."""
        now = now or datetime.now(UTC)
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

    async def set_status(
        self, charger_id: str, connector_id: int, status: str, error_code: str, at: datetime
    ) -> None:
        """Record a StatusNotification for a known connector."""
        async with self.db.transaction() as conn:
            await self.set_status_in(conn, charger_id, connector_id, status, error_code, at)

    async def set_status_in(
        self,
        conn: AsyncConnection,
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
        """Record a charger connecting or going silent."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(chargers)
                .where(chargers.c.id == charger_id)
                .values(online=online, last_seen_at=at, updated_at=at)
            )
