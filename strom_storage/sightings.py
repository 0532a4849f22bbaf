"""When each charger was last seen on its OCPP connection (for ``strom doctor``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from strom_storage.db import Database
from strom_storage.schema import chargers

__all__ = ["charger_sightings"]

_SIGHTINGS = select(chargers.c.id, chargers.c.last_seen_at)


def _sightings(conn: Connection) -> dict[str, datetime | None]:
    return {row.id: row.last_seen_at for row in conn.execute(_SIGHTINGS)}


async def charger_sightings(db: Database) -> dict[str, datetime | None]:
    """Every charger the database knows, with the time it was last seen (None: never)."""
    return await db.read(_sightings)
