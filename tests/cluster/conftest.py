"""Fixtures of the cluster tests: a fresh PostgreSQL database per test, migrated, dropped
afterwards; and three "processes" (Database objects with engines of their own) on one schema.

A database rather than a schema: ``strom run`` children take a plain database URL, and
LISTEN/NOTIFY channels are per database, so tests running at once never hear each other.
Needs ``STROM_TEST_DATABASE_URL`` (set by ``.ci/run``); without it the tests skip.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from strom_storage.db import Database
from tests.storage.conftest import _postgres_processes

PG_URL = os.environ.get("STROM_TEST_DATABASE_URL", "")


async def _admin(sql: str) -> None:
    engine = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


@pytest.fixture
async def cluster_url() -> AsyncIterator[str]:
    """The URL of a new, migrated PostgreSQL database that only this test uses."""
    if not PG_URL:
        pytest.skip("cluster tests need STROM_TEST_DATABASE_URL (PostgreSQL)")
    name = f"strom_cluster_{secrets.token_hex(5)}"
    await _admin(f'CREATE DATABASE "{name}"')
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    db = Database.from_url(url)
    try:
        await db.upgrade()
    finally:
        await db.close()
    try:
        yield url
    finally:
        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
async def cluster_db(cluster_url: str) -> AsyncIterator[Database]:
    """The test's database, connected."""
    db = Database.from_url(cluster_url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def postgres_processes() -> AsyncIterator[tuple[Database, ...]]:
    """Three databases on one migrated PostgreSQL schema: what three Strom processes see."""
    async with _postgres_processes(3) as databases:
        yield databases
