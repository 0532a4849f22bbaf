"""The Alembic migrations produce exactly the schema the code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from strom_storage.db import MIGRATIONS, Database
from strom_storage.schema import metadata


async def test_migrated_database_matches_the_declared_schema(db: Database) -> None:
    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection)
        return list(compare_metadata(context, metadata))

    async with db.reader() as conn:
        assert await conn.run_sync(diff) == []


async def test_upgrading_twice_is_harmless(db: Database) -> None:
    await db.upgrade()
    async with db.reader() as conn:
        version = await conn.scalar(text("SELECT version_num FROM alembic_version"))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert version == ScriptDirectory.from_config(config).get_current_head()
