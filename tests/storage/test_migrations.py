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


async def test_commands_queued_before_0016_name_their_chargers_lease(empty_db: Database) -> None:
    await empty_db.upgrade("0015")
    async with empty_db.transaction() as conn:
        for key, charger in (("start", "'CP-1'"), ("timer", "NULL")):
            await conn.execute(
                text(
                    "INSERT INTO outbox (idempotency_key, kind, payload, state, attempts, "
                    "run_after, last_error, created_at, charger_id) VALUES "
                    f"('{key}', 'k', '{{}}', 'pending', 0, CURRENT_TIMESTAMP, '', "
                    f"CURRENT_TIMESTAMP, {charger})"
                )
            )
    await empty_db.upgrade()
    async with empty_db.reader() as conn:
        rows = (await conn.execute(text("SELECT idempotency_key, lease FROM outbox"))).all()
    assert dict(rows) == {"start": "charger:CP-1", "timer": None}
