"""The ``ocpi_partners`` and ``ocpi_log`` tables: OCPI roaming partners and every OCPI request.

A partner row moves ``offered`` → ``registered`` → ``unregistered`` (and ``registered`` again
when the partner registers anew). Every change of the credentials is one conditional
``UPDATE`` guarded by the state (and, for a rotation, by the token being replaced), so of two
racing registrations or rotations exactly one wins and the other learns it (False). This
module stores what it is given: hashes of the partner's tokens and the sealed token Strom uses
on the partner (``ocpi_server`` hashes and seals; no token passes here in the clear).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Literal

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Connection

from strom_storage.db import Database
from strom_storage.schema import ocpi_log, ocpi_partners

__all__ = [
    "Credentials",
    "OcpiLogEntry",
    "OcpiLogRow",
    "OcpiPartnerRow",
    "OcpiStore",
    "PartnerState",
]

PartnerState = Literal["offered", "registered", "unregistered"]
EXCERPT_CHARS = 500


@dataclass(frozen=True, slots=True)
class OcpiPartnerRow:
    """One roaming partner (never a token in the clear)."""

    id: int
    name: str
    country_code: str | None
    party_id: str | None
    roles: list[dict[str, Any]]
    state: PartnerState
    token_a_hash: str | None
    token_hash: str | None
    next_token_hash: str | None
    their_token: str | None  # sealed
    versions_url: str | None
    version: str | None
    endpoints: list[dict[str, Any]]
    settlement: str
    blocked: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a completed credentials exchange stores on a partner.

    Attributes:
        token_hash: sha256 (hex) of the token the partner now uses on Strom.
        their_token: the token Strom now uses on the partner, sealed.
        versions_url: the partner's versions endpoint.
        version: the version chosen (``2.2.1``).
        endpoints: the partner's endpoints of that version.
        roles: the partner's roles (the first names its party).
    """

    token_hash: str
    their_token: str
    versions_url: str
    version: str
    endpoints: list[dict[str, Any]]
    roles: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class OcpiLogEntry:
    """One OCPI request, in (a partner called) or out (Strom called a partner)."""

    partner_id: int | None
    direction: Literal["in", "out"]
    method: str
    url: str
    http_status: int | None
    status_code: int | None
    request_id: str
    correlation_id: str
    at: datetime
    excerpt: str = ""


@dataclass(frozen=True, slots=True)
class OcpiLogRow:
    """A stored :class:`OcpiLogEntry` with its id."""

    id: int
    entry: OcpiLogEntry


def _partner(row: Any) -> OcpiPartnerRow:
    return OcpiPartnerRow(
        id=row.id,
        name=row.name,
        country_code=row.country_code,
        party_id=row.party_id,
        roles=list(row.roles or []),
        state=row.state,
        token_a_hash=row.token_a_hash,
        token_hash=row.token_hash,
        next_token_hash=row.next_token_hash,
        their_token=row.their_token,
        versions_url=row.versions_url,
        version=row.version,
        endpoints=list(row.endpoints or []),
        settlement=row.settlement,
        blocked=bool(row.blocked),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _one(conn: Connection, **where: Any) -> OcpiPartnerRow | None:
    query = select(ocpi_partners)
    for name, value in where.items():
        query = query.where(ocpi_partners.c[name] == value)
    row = conn.execute(query).first()
    return None if row is None else _partner(row)


def _create(conn: Connection, name: str, token_a_hash: str | None, now: datetime) -> OcpiPartnerRow:
    result = conn.execute(
        insert(ocpi_partners).values(
            name=name,
            roles=[],
            state="offered",
            token_a_hash=token_a_hash,
            endpoints=[],
            settlement="after_cdr",
            blocked=False,
            created_at=now,
            updated_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # an INSERT of one row has one
    found = _one(conn, id=key[0])
    assert found is not None  # written just now, in this transaction
    return found


def _store_credentials(
    conn: Connection,
    partner_id: int,
    creds: Credentials,
    now: datetime,
    *,
    states: Sequence[str],
    replacing: str | None,
) -> bool:
    party = creds.roles[0] if creds.roles else {}
    query = update(ocpi_partners).where(
        ocpi_partners.c.id == partner_id, ocpi_partners.c.state.in_(list(states))
    )
    if replacing is not None:
        query = query.where(ocpi_partners.c.token_hash == replacing)
    result = conn.execute(
        query.values(
            state="registered",
            token_a_hash=None,
            token_hash=creds.token_hash,
            next_token_hash=None,
            their_token=creds.their_token,
            versions_url=creds.versions_url,
            version=creds.version,
            endpoints=creds.endpoints,
            roles=creds.roles,
            country_code=party.get("country_code"),
            party_id=party.get("party_id"),
            updated_at=now,
        )
    )
    return bool(result.rowcount)


def _log_rows(conn: Connection, limit: int, partner_id: int | None) -> list[OcpiLogRow]:
    query = select(ocpi_log).order_by(ocpi_log.c.id.desc()).limit(limit)
    if partner_id is not None:
        query = query.where(ocpi_log.c.partner_id == partner_id)
    return [
        OcpiLogRow(
            id=row.id,
            entry=OcpiLogEntry(
                partner_id=row.partner_id,
                direction=row.direction,
                method=row.method,
                url=row.url,
                http_status=row.http_status,
                status_code=row.status_code,
                request_id=row.request_id,
                correlation_id=row.correlation_id,
                at=row.at,
                excerpt=row.excerpt,
            ),
        )
        for row in conn.execute(query)
    ]


class OcpiStore:
    """Rows of ``ocpi_partners`` and ``ocpi_log``, each method one transaction.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, token_a_hash: str | None, now: datetime) -> OcpiPartnerRow:
        """A new partner, ``offered``, with the hash of its token A (None: Strom registers)."""
        return await self.db.write(partial(_create, name=name, token_a_hash=token_a_hash, now=now))

    async def get(self, partner_id: int) -> OcpiPartnerRow | None:
        """The partner of that id, or None."""
        return await self.db.read(partial(_one, id=partner_id))

    async def by_token_a(self, token_a_hash: str) -> OcpiPartnerRow | None:
        """The partner offered the token A of this hash (only while offered), or None."""
        return await self.db.read(partial(_one, token_a_hash=token_a_hash))

    async def by_token(self, token_hash: str) -> OcpiPartnerRow | None:
        """The partner whose registered token has this hash, or None."""
        return await self.db.read(partial(_one, token_hash=token_hash))

    async def by_any_token(self, token_hash: str) -> OcpiPartnerRow | None:
        """The partner with a token of this hash: token A, registered, or next; or None."""
        c = ocpi_partners.c
        query = select(ocpi_partners).where(
            or_(
                c.token_a_hash == token_hash,
                c.token_hash == token_hash,
                c.next_token_hash == token_hash,
            )
        )

        def read(conn: Connection) -> OcpiPartnerRow | None:
            row = conn.execute(query).first()
            return None if row is None else _partner(row)

        return await self.db.read(read)

    async def set_next_token(
        self, partner_id: int, token_hash: str | None, now: datetime, *, states: Sequence[str]
    ) -> bool:
        """Accept (or, with None, stop accepting) the token of an exchange Strom begins."""
        query = (
            update(ocpi_partners)
            .where(ocpi_partners.c.id == partner_id, ocpi_partners.c.state.in_(list(states)))
            .values(next_token_hash=token_hash, updated_at=now)
        )
        return await self.db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def reoffer(self, partner_id: int, token_a_hash: str, now: datetime) -> bool:
        """A new token A for a partner not registered; False when it is registered."""
        query = (
            update(ocpi_partners)
            .where(
                ocpi_partners.c.id == partner_id,
                ocpi_partners.c.state.in_(["offered", "unregistered"]),
            )
            .values(state="offered", token_a_hash=token_a_hash, updated_at=now)
        )
        return await self.db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def all(self) -> list[OcpiPartnerRow]:
        """Every partner, oldest first."""
        query = select(ocpi_partners).order_by(ocpi_partners.c.id)
        return await self.db.read(lambda conn: [_partner(row) for row in conn.execute(query)])

    async def register(
        self, partner_id: int, creds: Credentials, now: datetime, *, states: Sequence[str]
    ) -> bool:
        """Store a completed registration; False when the partner is no longer in ``states``."""
        return await self.db.write(
            partial(
                _store_credentials,
                partner_id=partner_id,
                creds=creds,
                now=now,
                states=states,
                replacing=None,
            )
        )

    async def rotate(
        self, partner_id: int, replacing: str, creds: Credentials, now: datetime
    ) -> bool:
        """Replace a registered partner's credentials; False when ``replacing`` is not current."""
        return await self.db.write(
            partial(
                _store_credentials,
                partner_id=partner_id,
                creds=creds,
                now=now,
                states=("registered",),
                replacing=replacing,
            )
        )

    async def unregister(self, partner_id: int, now: datetime) -> bool:
        """Forget the partner's tokens (both ways); False when it was not registered."""
        query = (
            update(ocpi_partners)
            .where(ocpi_partners.c.id == partner_id, ocpi_partners.c.state == "registered")
            .values(
                state="unregistered",
                token_hash=None,
                next_token_hash=None,
                their_token=None,
                updated_at=now,
            )
        )
        return await self.db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def set_flags(
        self, partner_id: int, now: datetime, *, settlement: str | None, blocked: bool | None
    ) -> bool:
        """Change the settlement mode and/or the blocked flag; False when there is no partner."""
        values: dict[str, Any] = {"updated_at": now}
        if settlement is not None:
            values["settlement"] = settlement
        if blocked is not None:
            values["blocked"] = blocked
        query = update(ocpi_partners).where(ocpi_partners.c.id == partner_id).values(**values)
        return await self.db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def delete(self, partner_id: int) -> bool:
        """Remove the partner's row (its log rows stay); False when there was none."""
        query = delete(ocpi_partners).where(ocpi_partners.c.id == partner_id)
        return await self.db.write(lambda conn: bool(conn.execute(query).rowcount))

    async def log(self, entry: OcpiLogEntry) -> None:
        """Record one request (the excerpt and URL cut to their columns)."""
        row = {
            "partner_id": entry.partner_id,
            "direction": entry.direction,
            "method": entry.method[:8],
            "url": entry.url[:500],
            "http_status": entry.http_status,
            "status_code": entry.status_code,
            "request_id": entry.request_id[:100],
            "correlation_id": entry.correlation_id[:100],
            "at": entry.at,
            "excerpt": entry.excerpt[:EXCERPT_CHARS],
        }
        await self.db.write(lambda conn: conn.execute(insert(ocpi_log), row))

    async def log_rows(self, limit: int, partner_id: int | None = None) -> list[OcpiLogRow]:
        """The newest ``limit`` log rows (of one partner, or all), newest first."""
        return await self.db.read(partial(_log_rows, limit=limit, partner_id=partner_id))
