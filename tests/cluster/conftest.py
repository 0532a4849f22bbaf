"""Several "processes" (Database objects with engines of their own) on one PostgreSQL schema."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from strom_storage.db import Database
from tests.storage.conftest import _postgres_processes


@pytest.fixture
async def postgres_processes() -> AsyncIterator[tuple[Database, ...]]:
    """Three databases on one migrated PostgreSQL schema: what three Strom processes see."""
    async with _postgres_processes(3) as databases:
        yield databases
