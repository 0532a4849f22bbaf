"""The ``api_tokens`` table: API tokens by name, found by the hash of the token.

Only the hash of a token is stored (the cockpit decides how tokens are made, hashed and what
their scope allows); this module reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
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


class TokenRepository:
    """Rows of ``api_tokens``.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, name: str, token_hash: str, scope: str, now: datetime) -> bool:
        """Store a new token; False when a token (live or revoked) has that name already."""
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    insert(api_tokens).values(
                        name=name, token_hash=token_hash, scope=scope, created_at=now
                    )
                )
        except IntegrityError:
            return False
        return True

    async def revoke(self, name: str, now: datetime) -> bool:
        """Revoke the live token of that name; False when there is none."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        return bool(result.rowcount)

    async def all(self) -> list[TokenRow]:
        """Every token, live and revoked, by name."""
        async with self.db.reader() as conn:
            rows = await conn.execute(select(api_tokens).order_by(api_tokens.c.name))
            return [_token_row(row) for row in rows]

    async def by_hash(self, token_hash: str) -> TokenRow | None:
        """The token stored with this hash (live or revoked), or None."""
        async with self.db.reader() as conn:
            query = select(api_tokens).where(api_tokens.c.token_hash == token_hash)
            row = (await conn.execute(query)).first()
        return None if row is None else _token_row(row)

    async def touch(self, name: str, now: datetime) -> None:
        """Record when a token was used last."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(api_tokens).where(api_tokens.c.name == name).values(last_used_at=now)
            )
