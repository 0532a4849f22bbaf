"""The agents', cockpit's and operator's stores: one transaction is one hop to the database
(one ``Database.write`` or ``Database.read``, never the per-statement ``transaction()`` or
``reader()``), and what one transaction wrote still commits or rolls back as a whole (SQLite
and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert

from strom_core.ports.tariffs import TariffRecord
from strom_core.tariff import Tariff
from strom_storage import agents
from strom_storage import retention as retention_module
from strom_storage.agent_journal import DmJournal, JournalEntry, SealedSecret, SecretRecords
from strom_storage.chargers import ChargerStore
from strom_storage.db import Connection, Database
from strom_storage.reports import Reports
from strom_storage.retention import RULES, Retention, RetentionPolicy
from strom_storage.schema import nostr_events
from strom_storage.tariffs import TariffRepository
from strom_storage.tokens import TokenRepository
from tests.storage.test_agent_queries import PROFILE

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
DM = {"event": {"id": "e1", "kind": 4}, "relays": ["wss://relay.example"], "only": False}
TARIFF = Tariff(
    energy_msat_per_kwh=250_000,
    time_msat_per_minute=0,
    session_fee_msat=0,
    min_prepay_msat=1_000,
    max_prepay_msat=1_000_000,
)


class Hops:
    """Counts a database's one-hop transactions and refuses its per-statement ones."""

    def __init__(self, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        write, read = db.write, db.read

        async def counted_write(work: Callable[[Connection], Any], *, urgent: bool = False) -> Any:
            self.seen.append("write")
            return await write(work, urgent=urgent)

        async def counted_read(work: Callable[[Connection], Any]) -> Any:
            self.seen.append("read")
            return await read(work)

        def per_statement(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("a per-statement transaction where one hop was expected")

        monkeypatch.setattr(db, "write", counted_write)
        monkeypatch.setattr(db, "read", counted_read)
        monkeypatch.setattr(db, "transaction", per_statement)
        monkeypatch.setattr(db, "reader", per_statement)

    async def of(self, call: Awaitable[object]) -> list[str]:
        """The hops ``call`` made."""
        self.seen.clear()
        await call
        return list(self.seen)


async def test_each_agent_query_and_write_is_one_hop(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = Hops(db, monkeypatch)
    event, pubkey = "ab" * 32, "cd" * 32
    assert await hops.of(agents.claim_event(db, event, 4, pubkey, now=1e9)) == ["write"]
    assert await hops.of(agents.claim_event(db, event, 4, pubkey, now=1e9)) == ["write"]
    assert await hops.of(agents.release_event(db, event)) == ["write"]
    assert await hops.of(agents.charger_snapshots(db)) == ["read"]
    assert await hops.of(agents.initiator_of(db, "s1")) == ["read"]
    assert await hops.of(agents.latest_session_of(db, "cp1", pubkey)) == ["read"]
    assert await hops.of(agents.payers_since(db, T0)) == ["read"]
    assert await hops.of(agents.open_sessions(db, "cp1")) == ["read"]
    assert await hops.of(agents.active_zap_sessions(db, ["cp1"])) == ["read"]
    assert await hops.of(agents.zap_request_of(db, "00" * 32)) == ["read"]
    assert await hops.of(agents.zap_relays_of(db, "s1")) == ["read"]
    assert await hops.of(agents.set_connector_enabled(db, "cp1", 1, enabled=False)) == ["write"]
    audit = agents.audit(db, actor="cli", action="price", target="cp1", detail={}, now=1e9)
    assert await hops.of(audit) == ["write"]


async def test_the_journal_and_the_secrets_make_one_hop_however_many_rows(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    hops = Hops(db, monkeypatch)
    journal, records = DmJournal(db), SecretRecords(db)
    many = [JournalEntry(f"notify:{n}", [DM], False, T0) for n in range(1200)]
    sealed = [SealedSecret(f"s{n}", "sealed", T0) for n in range(1200)]
    assert await hops.of(journal.prepare("notify:a", [DM], T0)) == ["write"]
    assert await hops.of(journal.get("notify:a")) == ["read"]
    assert await hops.of(journal.mark_published("notify:a")) == ["write"]
    assert await hops.of(journal.add_entries(many)) == ["write"]  # three statements
    assert await hops.of(records.add_sealed(sealed)) == ["write"]
    assert await hops.of(records.secret_hash("s1")) == ["read"]
    assert await hops.of(records.secret_hashes(f"s{n}" for n in range(1200))) == ["read"]
    assert await hops.of(records.sealed("s1", T0)) == ["read"]


async def test_an_import_that_fails_in_its_last_statement_keeps_nothing(db: Database) -> None:
    journal = DmJournal(db)
    entries = [JournalEntry(f"notify:{n}", [DM], False, T0) for n in range(1001)]
    entries.append(JournalEntry("notify:bad", [{"not json": object()}], False, T0))
    with pytest.raises(Exception):  # noqa: B017, PT011 - the driver's own error for bad JSON
        await journal.add_entries(entries)
    assert await journal.get("notify:0") is None  # the first 500 rolled back with the rest


async def test_the_operators_stores_and_reports_are_one_hop_each(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ChargerStore(db).sync((PROFILE,))  # a tariff belongs to a charger
    hops = Hops(db, monkeypatch)
    tokens, tariffs, reports = TokenRepository(db), TariffRepository(db), Reports(db)
    record = TariffRecord("cp1", TARIFF, TARIFF, "cli", T0)
    assert await hops.of(tokens.add("ops", "h" * 64, "read", T0)) == ["write"]
    assert await hops.of(tokens.add("ops", "i" * 64, "read", T0)) == ["write"]
    assert await hops.of(tokens.by_hash("h" * 64)) == ["read"]
    assert await hops.of(tokens.touch("ops", T0)) == ["write"]
    assert await hops.of(tokens.all()) == ["read"]
    assert await hops.of(tokens.revoke("ops", T0)) == ["write"]
    assert await hops.of(tariffs.save(record)) == ["write"]
    assert await hops.of(tariffs.save(record)) == ["write"]  # replaces: delete and insert
    assert await hops.of(tariffs.all()) == ["read"]
    window: dict[str, Any] = {"since": None, "until": None}
    page = {**window, "limit": 10, "cursor": None}
    assert await hops.of(reports.page_sessions(charger=None, state=None, **page)) == ["read"]
    assert await hops.of(reports.page_payments(**page)) == ["read"]
    assert await hops.of(reports.page_refunds(**page)) == ["read"]
    assert await hops.of(reports.session_row("s1")) == ["read"]
    assert await hops.of(reports.running_sessions("cp1")) == ["read"]
    assert await hops.of(reports.payments_of("s1")) == ["read"]
    assert await hops.of(reports.refunds_of("s1")) == ["read"]
    assert await hops.of(reports.period_totals(period="day", **window)) == ["read"]
    assert await hops.of(reports.counts_by_state()) == ["read"]
    assert await hops.of(reports.money_totals()) == ["read"]
    assert await hops.of(reports.audit_entries(10)) == ["read"]


async def test_the_sweep_makes_one_write_per_batch(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention_module, "BATCH", 50)
    old = T0 - timedelta(days=30)
    rows = [
        {"event_id": f"{n:064x}", "kind": 4, "pubkey": "", "received_at": old} for n in range(120)
    ]
    await db.write(lambda conn: conn.execute(insert(nostr_events), rows))
    hops = Hops(db, monkeypatch)
    sweep = Retention(db, RetentionPolicy(claim_windows_s={4: 720}), rules=RULES[:1])
    assert await hops.of(sweep.sweep(T0)) == ["write"] * 3  # 50, 50, then the last 20
