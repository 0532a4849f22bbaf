"""API tokens for scripts: made by ``strom token create``, stored hashed, revocable.

A token is ``strom_`` + 32 random bytes (base64url). Only its sha256 is stored: 256 bits of
randomness need no slow hash, and a leaked database gives nobody a working token. A token
has a *scope*: ``admin`` may do everything, ``read`` only reads (a dashboard, a monitoring
script); a read token on a mutating call is a 403. The rows live in
:mod:`strom_storage.tokens`; the rules (names, format, hashing, scopes) are the cockpit's.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import StromError
from strom_storage.db import Database
from strom_storage.tokens import TokenRepository, TokenRow

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


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(
        name=row.name,
        scope=Scope(row.scope),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


class TokenStore:
    """The API tokens: made, checked, listed and revoked.

    Args:
        db: the database (the rows are kept by :class:`strom_storage.tokens.TokenRepository`).
        clock: the time written as created, used and revoked.
    """

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.rows = TokenRepository(db)
        self.clock = clock

    async def create(self, name: str, scope: Scope = Scope.ADMIN) -> str:
        """Make a token; returns it (shown once, never stored).

        Raises:
            TokenError: the name is not a simple name, or is taken (revoked names too).
        """
        if not _NAME.match(name):
            raise TokenError(f"token name {name!r}: expected 1-64 letters, digits, '.', '_' or '-'")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        if not await self.rows.add(name, hash_token(token), scope.value, self.clock.now()):
            raise TokenError(f"a token named {name!r} exists already")
        return token

    async def revoke(self, name: str) -> bool:
        """Revoke a token by name; False when no live token has that name."""
        return await self.rows.revoke(name, self.clock.now())

    async def list(self) -> list[TokenInfo]:
        """Every token, live and revoked, by name."""
        return [_info(row) for row in await self.rows.all()]

    async def check(self, token: str) -> TokenInfo | None:
        """The live token this is, or None (unknown, malformed or revoked)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        row = await self.rows.by_hash(hash_token(token))
        if row is None or row.revoked_at is not None:
            return None
        return _info(row)

    async def touch(self, name: str) -> None:
        """Record that a token was used (at most what an operator needs: the last time)."""
        await self.rows.touch(name, self.clock.now())
