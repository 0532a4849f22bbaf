"""API tokens for scripts: made by ``strom token create``, stored hashed, revocable.

A token is ``strom_`` + 32 random bytes (base64url). Only its sha256 is stored: 256 bits of
randomness need no slow hash, and a leaked database gives nobody a working token. A token
has a *scope*: ``admin`` may do everything, ``read`` only reads (a dashboard, a monitoring
script); a read token on a mutating call is a 403.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from strom_core.errors import StromError
from strom_storage.db import Database
from strom_storage.schema import api_tokens

__all__ = ["TOKEN_PREFIX", "Scope", "TokenError", "TokenInfo", "TokenStore", "hash_token"]

TOKEN_PREFIX = "strom_"  # noqa: S105 - a prefix, not a secret
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Scope(enum.StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    READ = "read"


class TokenError(StromError):
    """A token cannot be created or revoked as asked (the message says why)."""


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as listed (never the token itself)."""

    name: str
    scope: Scope
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


class TokenStore:
    """The ``api_tokens`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, scope: Scope = Scope.ADMIN) -> str:
        """Make a token; returns it (shown once, never stored).

        Raises:
            TokenError: the name is not a simple name, or is taken (revoked names too).
        """
        if not _NAME.match(name):
            raise TokenError(f"token name {name!r}: expected 1-64 letters, digits, '.', '_' or '-'")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    insert(api_tokens).values(
                        name=name,
                        token_hash=hash_token(token),
                        scope=scope.value,
                        created_at=_now(),
                    )
                )
        except IntegrityError:
            raise TokenError(f"a token named {name!r} exists already") from None
        return token

    async def revoke(self, name: str) -> bool:
        """Revoke a token by name; False when no live token has that name."""
        async with self.db.transaction() as conn:
            result = await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
        return bool(result.rowcount)

    async def list(self) -> list[TokenInfo]:
        """Every token, live and revoked, by name."""
        async with self.db.reader() as conn:
            rows = await conn.execute(select(api_tokens).order_by(api_tokens.c.name))
            return [
                TokenInfo(
                    name=row.name,
                    scope=Scope(row.scope),
                    created_at=row.created_at,
                    last_used_at=row.last_used_at,
                    revoked_at=row.revoked_at,
                )
                for row in rows
            ]

    async def check(self, token: str) -> TokenInfo | None:
        """The live token this is, or None (unknown, malformed or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        async with self.db.reader() as conn:
            row = (
                await conn.execute(
                    select(api_tokens).where(api_tokens.c.token_hash == hash_token(token))
                )
            ).first()
        if row is None or row.revoked_at is not None:
            return None
        return TokenInfo(
            name=row.name,
            scope=Scope(row.scope),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            revoked_at=None,
        )

    async def touch(self, name: str) -> None:
        """Record that a token was used (at most what an operator needs: the last time)."""
        async with self.db.transaction() as conn:
            await conn.execute(
                update(api_tokens).where(api_tokens.c.name == name).values(last_used_at=_now())
            )
