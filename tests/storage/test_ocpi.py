"""OCPI partners and the OCPI log (strom_storage.ocpi), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from strom_storage.db import Database
from strom_storage.ocpi import Credentials, OcpiLogEntry, OcpiStore
from strom_storage.retention import Retention, RetentionPolicy

T0 = datetime(2027, 1, 10, 10, tzinfo=UTC)


def creds(token_hash: str, their: str = "sealed1:xyz") -> Credentials:
    return Credentials(
        token_hash=token_hash,
        their_token=their,
        versions_url="https://emsp.example/ocpi/versions",
        version="2.2.1",
        endpoints=[{"identifier": "credentials", "role": "SENDER", "url": "https://e/c"}],
        roles=[{"role": "EMSP", "party_id": "EMS", "country_code": "NL"}],
    )


async def test_a_partner_is_offered_registered_rotated_and_unregistered(db: Database) -> None:
    store = OcpiStore(db)
    offered = await store.create("Roaming One", "a" * 64, T0)
    assert (offered.state, offered.token_a_hash, offered.token_hash) == ("offered", "a" * 64, None)
    assert (await store.by_token_a("a" * 64)) == offered
    assert await store.register(offered.id, creds("c" * 64), T0, states=("offered",))
    # A second registration of the same offer loses: the state moved on.
    assert not await store.register(offered.id, creds("d" * 64), T0, states=("offered",))
    registered = await store.get(offered.id)
    assert registered is not None
    assert registered.state == "registered"
    assert registered.token_a_hash is None  # token A is thrown away
    assert await store.by_token_a("a" * 64) is None
    assert (registered.country_code, registered.party_id) == ("NL", "EMS")
    assert registered.endpoints[0]["identifier"] == "credentials"
    assert (await store.by_token("c" * 64)) == registered
    # A rotation replaces only the current token; a stale one loses.
    assert await store.rotate(offered.id, "c" * 64, creds("e" * 64), T0 + timedelta(minutes=1))
    assert not await store.rotate(offered.id, "c" * 64, creds("f" * 64), T0)
    assert await store.by_token("c" * 64) is None
    assert (await store.by_token("e" * 64)) is not None
    assert await store.unregister(offered.id, T0 + timedelta(minutes=2))
    assert not await store.unregister(offered.id, T0)
    gone = await store.get(offered.id)
    assert gone is not None
    assert (gone.state, gone.token_hash, gone.their_token) == ("unregistered", None, None)
    # A partner that unregistered may register anew (from its unregistered state).
    assert await store.register(offered.id, creds("g" * 64), T0, states=("unregistered",))


async def test_settlement_and_blocked_are_set_and_a_partner_deleted(db: Database) -> None:
    store = OcpiStore(db)
    partner = await store.create("P", "a" * 64, T0)
    assert (partner.settlement, partner.blocked) == ("after_cdr", False)
    assert await store.set_flags(partner.id, T0, settlement="streaming", blocked=None)
    assert await store.set_flags(partner.id, T0, settlement=None, blocked=True)
    changed = await store.get(partner.id)
    assert changed is not None
    assert (changed.settlement, changed.blocked) == ("streaming", True)
    assert not await store.set_flags(9999, T0, settlement="streaming", blocked=None)
    assert [p.id for p in await store.all()] == [partner.id]
    assert await store.delete(partner.id)
    assert not await store.delete(partner.id)
    assert await store.all() == []


async def test_two_racing_registrations_of_one_offer_store_one(db: Database) -> None:
    store = OcpiStore(db)
    partner = await store.create("P", "a" * 64, T0)
    results = await asyncio.gather(
        *(store.register(partner.id, creds(c * 64), T0, states=("offered",)) for c in "bcd")
    )
    assert sorted(results) == [False, False, True]


def entry(at: datetime, partner_id: int | None = 1, excerpt: str = "") -> OcpiLogEntry:
    return OcpiLogEntry(
        partner_id=partner_id,
        direction="in",
        method="GET",
        url="/ocpi/2.2.1",
        http_status=200,
        status_code=1000,
        request_id="r",
        correlation_id="c",
        at=at,
        excerpt=excerpt,
    )


async def test_log_rows_are_newest_first_cut_to_size_and_pruned_by_retention(
    db: Database,
) -> None:
    store = OcpiStore(db)
    await store.log(entry(T0 - timedelta(days=40), excerpt="old"))
    await store.log(entry(T0 - timedelta(days=1), partner_id=2, excerpt="x" * 2000))
    await store.log(entry(T0, partner_id=None))
    rows = await store.log_rows(10)
    assert [row.entry.partner_id for row in rows] == [None, 2, 1]
    assert len(rows[1].entry.excerpt) == 500
    assert [row.entry.partner_id for row in await store.log_rows(10, partner_id=2)] == [2]
    assert len(await store.log_rows(1)) == 1
    removed = await Retention(db, RetentionPolicy(ocpi_log_days=30)).sweep(T0)
    assert removed == {"ocpi_log": 1}
    assert [row.entry.excerpt for row in await store.log_rows(10)][-1].startswith("x")
    assert (
        await Retention(db, RetentionPolicy(ocpi_log_days=0)).sweep(T0 + timedelta(days=999)) == {}
    )


async def test_any_of_a_partners_tokens_finds_it_and_a_new_offer_reopens_it(db: Database) -> None:
    store = OcpiStore(db)
    partner = await store.create("P", "a" * 64, T0)
    assert await store.set_next_token(partner.id, "b" * 64, T0, states=("offered",))
    for token_hash in ("a" * 64, "b" * 64):
        found = await store.by_any_token(token_hash)
        assert found is not None
        assert found.id == partner.id
    assert await store.by_any_token("z" * 64) is None
    assert await store.register(partner.id, creds("b" * 64), T0, states=("offered",))
    registered = await store.get(partner.id)
    assert registered is not None
    assert registered.next_token_hash is None
    assert not await store.reoffer(partner.id, "q" * 64, T0)  # registered: no new token A
    assert await store.unregister(partner.id, T0)
    assert await store.reoffer(partner.id, "q" * 64, T0)
    reopened = await store.by_token_a("q" * 64)
    assert reopened is not None
    assert reopened.state == "offered"
