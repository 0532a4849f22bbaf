"""The ``api_tokens`` table: API tokens by name, found by the hash of the token.

Only the hash of a token is stored (the cockpit decides how tokens are made, hashed and what
their scope allows); this module reads and writes the rows, each method in one transaction
and one hop (:meth:`Database.write` or :meth:`Database.read`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_storage.db import Database
from strom_storage.schema import api_tokens

__all__ = ["TokenRepository", "TokenRow"]


@dataclass(frozen=True, slots=True)
class TokenRow:
    """One stored token (never the token itself)."""

    name: str
    scope: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def _token_row(row: Any) -> TokenRow:
    return TokenRow(
        name=row.name,
        scope=row.scope,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


# Every API request looks its token up (and stamps it now and then): built once.
_BY_HASH = select(api_tokens).where(api_tokens.c.token_hash == bindparam("token_hash"))
_TOUCH = (
    update(api_tokens)
    .where(api_tokens.c.name == bindparam("token_name"))
    .values(last_used_at=bindparam("now", type_=api_tokens.c.last_used_at.type))
)


def _revoke(conn: Connection, name: str, now: datetime) -> bool:
    result = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(result.rowcount)


def _by_hash(conn: Connection, token_hash: str) -> TokenRow | None:
    row = conn.execute(_BY_HASH, {"token_hash": token_hash}).first()
    return None if row is None else _token_row(row)


class TokenRepository:
    """Rows of ``api_tokens``.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, name: str, token_hash: str, scope: str, now: datetime) -> bool:
        """Store a new token; False when a token (live or revoked) has that name already."""
        row = {"name": name, "token_hash": token_hash, "scope": scope, "created_at": now}
        try:
            await self.db.write(lambda conn: conn.execute(insert(api_tokens), row))
        except IntegrityError:
            return False
        return True

    async def revoke(self, name: str, now: datetime) -> bool:
        """Revoke the live token of that name; False when there is none."""
        return await self.db.write(partial(_revoke, name=name, now=now))

    async def all(self) -> list[TokenRow]:
        """Every token, live and revoked, by name."""
        query = select(api_tokens).order_by(api_tokens.c.name)
        return await self.db.read(lambda conn: [_token_row(row) for row in conn.execute(query)])

    async def by_hash(self, token_hash: str) -> TokenRow | None:
        """The token stored with this hash (live or revoked), or None."""
        return await self.db.read(partial(_by_hash, token_hash=token_hash))

    async def touch(self, name: str, now: datetime) -> None:
        """Record when a token was used last."""
        await self.db.write(lambda conn: conn.execute(_TOUCH, {"token_name": name, "now": now}))
