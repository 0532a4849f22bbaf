"""Migration 0008: an archived (reused) OCPP 2.0.1 reference is longer than a reference.

Downgrading gives the 36-character column back while no archived name is longer, and refuses
(changing nothing) when one is.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from strom_services.ocpp_core import DatabaseOcppCore
from strom_storage.db import Database
from tests.storage.test_migration_charger_references import MIGRATIONS, T0, _downgrade
from tests.storage.test_session_store import make

UUID = "0b5f3c1e-8d2a-4c47-9f61-2a7d3e9b4c10"


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def _version(db: Database) -> str:
    async with db.reader() as conn:
        return str(await conn.scalar(text("SELECT version_num FROM alembic_version")))


async def test_downgrading_keeps_short_references(empty_db: Database) -> None:
    db = empty_db
    await db.upgrade()
    core = DatabaseOcppCore(await make(db))
    await core.start_transaction("cp1", 1, "X", 0, T0, transaction="tx-1")
    await _downgrade(db, "0007")
    assert await _version(db) == "0007"


async def test_downgrading_refuses_to_cut_an_archived_reference(empty_db: Database) -> None:
    db = empty_db
    await db.upgrade()
    core = DatabaseOcppCore(await make(db))
    await core.start_transaction("cp1", 1, "X", 0, T0, transaction=UUID)  # refused: ended
    await core.start_transaction("cp1", 1, "Y", 0, T0 + timedelta(hours=1), transaction=UUID)
    with pytest.raises(RuntimeError, match="archived transaction reference"):
        await _downgrade(db, "0007")
    assert await _version(db) == _head()  # nothing undone
