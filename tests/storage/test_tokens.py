"""The token table (strom_storage.tokens) and the cockpit's token rules over it, on SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cockpit.tokens import Scope, TokenError, TokenStore
from strom_storage.db import Database
from strom_storage.tokens import TokenRepository

T0 = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)


async def test_token_rows_are_added_once_found_by_hash_touched_and_revoked(db: Database) -> None:
    rows = TokenRepository(db)
    assert await rows.add("ops", "a" * 64, "admin", T0)
    assert await rows.add("grafana", "b" * 64, "read", T0 + timedelta(seconds=1))
    assert not await rows.add("ops", "c" * 64, "read", T0)  # a name is taken for good
    found = await rows.by_hash("a" * 64)
    assert found is not None
    assert (found.name, found.scope, found.created_at) == ("ops", "admin", T0)
    assert (found.last_used_at, found.revoked_at) == (None, None)
    assert await rows.by_hash("c" * 64) is None
    await rows.touch("ops", T0 + timedelta(minutes=5))
    assert await rows.revoke("ops", T0 + timedelta(minutes=6))
    assert not await rows.revoke("ops", T0 + timedelta(minutes=7))  # revoked already
    assert not await rows.revoke("nobody", T0)
    listed = await rows.all()
    assert [row.name for row in listed] == ["grafana", "ops"]
    ops = listed[1]
    assert ops.last_used_at == T0 + timedelta(minutes=5)
    assert ops.revoked_at == T0 + timedelta(minutes=6)
    assert listed[0].revoked_at is None


async def test_tokens_are_stored_hashed_checked_and_revoked(db: Database) -> None:
    tokens = TokenStore(db)
    token = await tokens.create("ops")
    read = await tokens.create("grafana", Scope.READ)
    info = await tokens.check(token)
    assert info is not None
    assert (info.name, info.scope) == ("ops", Scope.ADMIN)
    assert (await tokens.check(read)).scope is Scope.READ  # type: ignore[union-attr]
    assert await tokens.check(token + "x") is None
    assert await tokens.check("not-ours") is None
    with pytest.raises(TokenError):
        await tokens.create("ops")
    assert await tokens.revoke("ops")
    assert not await tokens.revoke("ops")
    assert await tokens.check(token) is None
    listed = {t.name: t for t in await tokens.list()}
    assert listed["ops"].revoked_at is not None
    assert listed["grafana"].revoked_at is None
