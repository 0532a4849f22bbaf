"""The agents' DM journal and imported secrets, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from strom_storage.agent_journal import (
    JOURNAL_RETENTION,
    DmJournal,
    JournalEntry,
    SealedSecret,
    SecretRecords,
)
from strom_storage.db import Database
from strom_storage.retention import Retention, RetentionPolicy
from strom_storage.sessions import hash_secret
from tests.storage.test_session_store import make

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DM = {"event": {"id": "e1", "kind": 4}, "relays": ["wss://relay.example"], "only": False}


async def test_a_journal_entry_is_stored_once_and_the_first_dms_win(db: Database) -> None:
    journal = DmJournal(db)
    assert await journal.get("notify:s1:paid") is None
    assert await journal.prepare("notify:s1:paid", [DM], T0) == [DM]
    again = await journal.prepare("notify:s1:paid", [{**DM, "only": True}], T0)
    assert again == [DM]  # the run after a crash publishes the very same event
    entry = await journal.get("notify:s1:paid")
    assert entry == JournalEntry("notify:s1:paid", [DM], False, T0)
    await journal.mark_published("notify:s1:paid")
    entry = await journal.get("notify:s1:paid")
    assert entry is not None
    assert entry.published


async def test_the_sweep_removes_journal_entries_a_week_old_and_only_those(
    db: Database,
) -> None:
    journal, sweep = DmJournal(db), Retention(db, RetentionPolicy())
    for days in range(4):
        await journal.prepare(f"notify:s{days}", [DM], T0 + timedelta(days=days))
    removed = await sweep.sweep(T0 + JOURNAL_RETENTION + timedelta(days=2))
    assert removed == {"dm_journal": 2}
    assert await journal.get("notify:s1") is None
    assert await journal.get("notify:s2") is not None
    assert await sweep.sweep(T0 + JOURNAL_RETENTION + timedelta(days=2)) == {}


async def test_imported_entries_keep_their_state_and_never_replace_one_stored(
    db: Database,
) -> None:
    journal = DmJournal(db)
    await journal.prepare("notify:a", [DM], T0)
    entries = [
        JournalEntry("notify:a", [], True, T0),
        *(JournalEntry(f"notify:{n}", [DM], n % 2 == 0, T0) for n in range(1200)),
    ]
    assert await journal.add_entries(entries) == 1201
    assert await journal.get("notify:a") == JournalEntry("notify:a", [DM], False, T0)
    assert await journal.get("notify:1198") == JournalEntry("notify:1198", [DM], True, T0)


async def test_a_sealed_secret_is_read_until_it_expires_then_pruned(db: Database) -> None:
    records = SecretRecords(db)
    assert await records.secret_hash("s1") is None
    await make(db, "s1")  # its secret is "x" * 32
    assert await records.secret_hash("s1") == hash_secret("x" * 32)
    assert await records.secret_hashes(["s1", "nope"]) == {"s1": hash_secret("x" * 32)}
    until = T0 + timedelta(days=14)
    assert await records.add_sealed([SealedSecret("s1", "sealed1:abc", until)]) == 1
    await records.add_sealed([SealedSecret("s1", "sealed1:other", until)])  # first one stays
    assert await records.sealed("s1", T0) == "sealed1:abc"
    assert await records.sealed("s1", until) is None
    sweep = Retention(db, RetentionPolicy())
    assert "imported_secrets" not in await sweep.sweep(until)
    assert (await sweep.sweep(until + timedelta(seconds=1)))["imported_secrets"] == 1
    assert await records.sealed("s1", T0) is None
