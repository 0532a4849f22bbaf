"""An older installation's ``agent/agent.sqlite3`` is imported into the database once."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, update

from agent.legacy_store import import_legacy_store, legacy_path
from agent.sealing import SEALED_PREFIX, Sealer, SealError
from agent.store import Outgoing
from strom_core.session_events import TransactionStopped
from strom_nostr.dm import nip04_message
from strom_storage.db import Database
from strom_storage.schema import imported_secrets, sessions
from strom_storage.sessions import hash_secret
from tests.agent.conftest import World, build_world
from tests.agent.test_dms import _at, _lnurl_target

DAY = 86_400
MASTER_KEY = "ab" * 32
# The old store's tables, as earlier versions created them.
OLD_SCHEMA = (
    "CREATE TABLE session_secrets (session_id TEXT PRIMARY KEY, sealed TEXT NOT NULL, "
    "created_at INTEGER NOT NULL)",
    "CREATE TABLE outgoing (key TEXT PRIMARY KEY, items TEXT NOT NULL, "
    "published INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL)",
)


def _old_store(
    path: Path,
    secrets: list[tuple[str, str, int]],
    outgoing: list[tuple[str, str, int, int]],
) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    for statement in OLD_SCHEMA:
        db.execute(statement)
    db.executemany("INSERT INTO session_secrets VALUES (?, ?, ?)", secrets)
    db.executemany("INSERT INTO outgoing VALUES (?, ?, ?, ?)", outgoing)
    db.commit()
    db.close()


def _dm_items(world: World, text: str) -> str:
    event = nip04_message(
        world.charger.key.secret, world.driver.pubkey, text, created_at=int(world.clock.unix())
    )
    return orjson.dumps([Outgoing(event, (world.relay_url,)).to_json()]).decode()


async def _pre_upgrade_session(world: World, old_secret: str) -> str:
    """A zap session as an older version made it: its random secret's hash is stored."""
    opened, _ = await world.open_zap_session(world.driver)
    async with world.db.transaction() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.id == opened.session_id)
            .values(secret_hash=hash_secret(old_secret))
        )
    return opened.session_id


@pytest.mark.parametrize("master_key", [None, MASTER_KEY], ids=["plain", "sealed"])
async def test_what_still_matters_is_imported_sealed_and_the_old_file_is_scrubbed_and_renamed(
    world: World, master_key: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    old_sealer = Sealer(master_key, purpose="session secret")
    now = int(world.clock.unix())
    retention = world.runtime.services.settings.secret_retention_s
    recent, too_old = "R" * 32, "O" * 32
    recent_id = await _pre_upgrade_session(world, recent)
    old_id = await _pre_upgrade_session(world, too_old)
    path = legacy_path(world.config.storage.data_dir)
    waiting_items = _dm_items(world, "not yet published")
    _old_store(
        path,
        secrets=[
            (recent_id, old_sealer.seal(f"session {recent_id}", recent), now - 3600),
            (old_id, old_sealer.seal(f"session {old_id}", too_old), now - retention - 60),
            ("0123456789abcdef", "a secret of a session the database does not know", now),
        ],
        outgoing=[
            ("notify:waiting", waiting_items, 0, now - 60),
            ("notify:done", _dm_items(world, "published"), 1, now - 120),
            ("notify:ancient", _dm_items(world, "long ago"), 0, now - 8 * DAY),
        ],
    )
    store = world.runtime.services.store
    with caplog.at_level(logging.INFO, logger="agent.legacy_store"):
        report = await import_legacy_store(
            world.config.storage.data_dir,
            store,
            old_sealer=old_sealer,
            retention_s=retention,
            now=now,
        )
    assert report is not None
    assert (report.secrets, report.secrets_dropped, report.dms) == (1, 2, 2)
    assert len([r for r in caplog.records if r.name == "agent.legacy_store"]) == 1
    # The secret that cannot be derived is kept sealed, and DMs can use it.
    assert await store.secret(recent_id, now) == recent
    assert await store.secret(old_id, now) is None
    async with world.db.reader() as conn:
        rows = list(await conn.execute(select(imported_secrets)))
    assert [row.session_id for row in rows] == [recent_id]
    assert rows[0].sealed.startswith(SEALED_PREFIX)
    assert recent not in rows[0].sealed
    assert await store.secret(recent_id, now + retention) is None  # its window has passed
    # Journal entries of the last week, as they were.
    waiting = await store.outgoing("notify:waiting")
    assert waiting is not None
    assert waiting[1] is False
    assert [item.to_json() for item in waiting[0]] == orjson.loads(waiting_items)
    done = await store.outgoing("notify:done")
    assert done is not None
    assert done[1] is True
    assert await store.outgoing("notify:ancient") is None
    # The old file is renamed, and holds no secret any more.
    assert not path.exists()
    assert report.renamed_to == path.with_name("agent.sqlite3.imported")
    assert [p.name for p in path.parent.iterdir()] == ["agent.sqlite3.imported"]
    data = report.renamed_to.read_bytes()
    assert recent.encode() not in data
    assert too_old.encode() not in data
    old = sqlite3.connect(report.renamed_to)
    assert old.execute("SELECT count(*) FROM session_secrets").fetchone() == (0,)
    assert old.execute("SELECT count(*) FROM outgoing").fetchone() == (3,)
    old.close()
    # Once is enough.
    assert (
        await import_legacy_store(
            world.config.storage.data_dir, store, old_sealer=old_sealer, retention_s=1, now=now
        )
        is None
    )


async def test_a_session_from_before_the_upgrade_gets_its_old_refund_link_by_dm(
    world: World,
) -> None:
    old_secret = "P" * 32
    opened = await world.charging_session(world.driver)
    async with world.db.transaction() as conn:
        await conn.execute(
            update(sessions)
            .where(sessions.c.id == opened.session_id)
            .values(secret_hash=hash_secret(old_secret))
        )
    sealer = Sealer(None, purpose="session secret")
    now = int(world.clock.unix())
    _old_store(
        legacy_path(world.config.storage.data_dir),
        [(opened.session_id, old_secret, now - 60)],
        [],
    )
    await import_legacy_store(
        world.config.storage.data_dir,
        world.runtime.services.store,
        old_sealer=sealer,
        retention_s=DAY,
        now=now,
    )
    await world.sessions.apply(opened.session_id, TransactionStopped(1000 + 4000, _at(world)))
    await world.runner.drain()
    texts = [(await world.driver.next_dm())[0] for _ in range(3)]
    assert texts[2].startswith("Charging stopped")
    assert f"secret={old_secret}" in _lnurl_target(texts[2])


async def test_a_secret_sealed_with_a_master_key_that_is_not_set_stops_the_import(
    world: World,
) -> None:
    session_id = await _pre_upgrade_session(world, "S" * 32)
    path = legacy_path(world.config.storage.data_dir)
    sealed = Sealer(MASTER_KEY, purpose="session secret").seal(f"session {session_id}", "S" * 32)
    _old_store(path, [(session_id, sealed, int(world.clock.unix()))], [])
    with pytest.raises(SealError, match="STROM_MASTER_KEY"):
        await import_legacy_store(
            world.config.storage.data_dir,
            world.runtime.services.store,
            old_sealer=Sealer(None, purpose="session secret"),
            retention_s=DAY,
            now=world.clock.unix(),
        )
    assert path.exists()  # nothing lost: set the key and start again
    async with world.db.reader() as conn:
        assert list(await conn.execute(select(imported_secrets))) == []


async def test_the_runtime_imports_the_old_store_when_it_starts(
    tmp_path: Path, database: Database, relay_url: str
) -> None:
    path = legacy_path(tmp_path / "data")
    _old_store(path, [], [])
    worlds = build_world(tmp_path, database, relay_url)
    await anext(worlds)
    try:
        assert not path.exists()
        assert path.with_name("agent.sqlite3.imported").exists()
    finally:
        await worlds.aclose()
