"""A migrated, empty database per test: SQLite always, PostgreSQL too when configured.

Set ``STROM_TEST_DATABASE_URL=postgresql+asyncpg://user@127.0.0.1:5432/test`` to run every
storage test on PostgreSQL as well; each test then gets its own schema, dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from strom_storage.db import Database

PG_URL = os.environ.get("STROM_TEST_DATABASE_URL", "")
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def _postgres(schema: str) -> Database:
    admin = create_async_engine(PG_URL)
    async with admin.begin() as conn:
        await conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    await admin.dispose()
    return Database.from_url(PG_URL, search_path=schema)


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'strom.sqlite3'}")
        await database.upgrade()
        yield database
        await database.close()
        return
    async with _postgres_database() as database:
        yield database


@asynccontextmanager
async def _postgres_database(revision: str | None = "head") -> AsyncIterator[Database]:
    async with _postgres_processes(1, revision) as (database,):
        yield database


@asynccontextmanager
async def _postgres_processes(
    count: int, revision: str | None = "head"
) -> AsyncIterator[tuple[Database, ...]]:
    if not PG_URL:
        pytest.skip("PostgreSQL run needs STROM_TEST_DATABASE_URL (set by .ci/run)")
    schema = f"t_{secrets.token_hex(6)}"
    database = await _postgres(schema)
    if revision is not None:
        await database.upgrade(revision)
    others = tuple(Database.from_url(PG_URL, search_path=schema) for _ in range(count - 1))
    try:
        yield (database, *others)
    finally:
        for each in (database, *others):
            await each.close()
        admin = create_async_engine(PG_URL)
        async with admin.begin() as conn:
            await conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()


@pytest.fixture
async def postgres_db() -> AsyncIterator[Database]:
    """A migrated PostgreSQL database, for behaviour only a database server has."""
    async with _postgres_database() as database:
        yield database


@pytest.fixture
async def postgres_processes() -> AsyncIterator[tuple[Database, ...]]:
    """Three databases on one migrated PostgreSQL schema, each with engines of its own: what
    three Strom processes sharing one database see."""
    async with _postgres_processes(3) as databases:
        yield databases


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database, for behaviour only SQLite has (its single writer)."""
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'strom.sqlite3'}")
    await database.upgrade()
    yield database
    await database.close()


@pytest.fixture(params=BACKENDS)
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A database without any schema yet, for migration tests (SQLite, and PostgreSQL)."""
    if request.param == "sqlite":
        database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'strom.sqlite3'}")
        yield database
        await database.close()
        return
    async with _postgres_database(revision=None) as database:
        yield database
