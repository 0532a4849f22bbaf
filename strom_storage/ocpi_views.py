"""What Strom's OCPI modules read of the chargers and of partners' sessions.

Reads only, each a function of the caller's transaction; :class:`OcpiViews` runs them in reads
of their own. The CDR effect is queued by :mod:`strom_storage.partner_cdrs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from strom_core.roaming import RoamingStart, StartedBy, TokenType
from strom_core.session import Session
from strom_storage.db import Database
from strom_storage.schema import chargers, connectors, roaming_sessions, sessions
from strom_storage.sessions import row_to_session

__all__ = [
    "ChargerView",
    "OcpiViews",
    "PartnerSession",
    "charger_views",
    "partner_session",
    "partner_sessions",
]


@dataclass(frozen=True, slots=True)
class ChargerView:
    """A charger's run-time state, as a Location shows it.

    Attributes:
        charger_id: the charger.
        online: whether a process holds its connection (or it reconnects within a grace).
        reconnect_until: the end of its reconnect grace, if any.
        updated_at: when its row last changed (the profile synced).
        statuses: the last OCPP status of each connector.
        status_at: when each connector last reported one (None: never).
    """

    charger_id: str
    online: bool
    reconnect_until: datetime | None
    updated_at: datetime
    statuses: Mapping[int, str]
    status_at: Mapping[int, datetime | None]

    @property
    def last_updated(self) -> datetime:
        """The newest change of the charger or any of its connectors."""
        times = [self.updated_at, *(t for t in self.status_at.values() if t is not None)]
        return max(times)


@dataclass(frozen=True, slots=True)
class PartnerSession:
    """A roaming partner's session: the session, its OCPI side record, its row's times."""

    session: Session
    start: RoamingStart
    created_at: datetime
    updated_at: datetime


def charger_views(conn: Connection) -> dict[str, ChargerView]:
    """Every charger's run-time state, by id."""
    statuses: dict[str, dict[int, str]] = {}
    status_at: dict[str, dict[int, datetime | None]] = {}
    for row in conn.execute(select(connectors)):
        statuses.setdefault(row.charger_id, {})[row.connector_id] = row.status
        status_at.setdefault(row.charger_id, {})[row.connector_id] = row.status_at
    return {
        row.id: ChargerView(
            charger_id=row.id,
            online=bool(row.online),
            reconnect_until=row.reconnect_until,
            updated_at=row.updated_at,
            statuses=statuses.get(row.id, {}),
            status_at=status_at.get(row.id, {}),
        )
        for row in conn.execute(select(chargers))
    }


_R = roaming_sessions.c
_PARTNER_SESSIONS = select(
    sessions,
    _R.partner_id,
    _R.token_uid,
    _R.token_type,
    _R.contract_id,
    _R.authorization_reference,
    _R.started_by,
    _R.created_at.label("roaming_created_at"),
).join(roaming_sessions, _R.session_id == sessions.c.id)


def _partner_session(row: Any) -> PartnerSession:
    start = RoamingStart(
        session_id=row.id,
        partner_id=row.partner_id,
        token_uid=row.token_uid,
        token_type=TokenType(row.token_type),
        contract_id=row.contract_id,
        authorization_reference=row.authorization_reference,
        started_by=StartedBy(row.started_by),
        created_at=row.roaming_created_at,
    )
    return PartnerSession(row_to_session(row), start, row.created_at, row.updated_at)


def partner_sessions(conn: Connection, partner_id: str) -> list[PartnerSession]:
    """The partner's sessions, oldest change first."""
    query = _PARTNER_SESSIONS.where(roaming_sessions.c.partner_id == partner_id).order_by(
        sessions.c.updated_at, sessions.c.id
    )
    return [_partner_session(row) for row in conn.execute(query)]


def partner_session(conn: Connection, session_id: str) -> PartnerSession | None:
    """One partner's session, or None (not a partner's session)."""
    row = conn.execute(_PARTNER_SESSIONS.where(sessions.c.id == session_id)).first()
    return None if row is None else _partner_session(row)


class OcpiViews:
    """The reads above, each in a read of its own."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def chargers(self) -> dict[str, ChargerView]:
        """Every charger's run-time state (:func:`charger_views`)."""
        return await self.db.read(charger_views)

    async def partner_sessions(self, partner_id: str) -> list[PartnerSession]:
        """The partner's sessions (:func:`partner_sessions`)."""
        return await self.db.read(partial(partner_sessions, partner_id=partner_id))

    async def partner_session(self, session_id: str) -> PartnerSession | None:
        """One partner's session (:func:`partner_session`)."""
        return await self.db.read(partial(partner_session, session_id=session_id))
