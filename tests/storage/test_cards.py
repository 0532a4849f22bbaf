"""The operator's cards: a post-paid start in the same session table and ledger.

A free card charges and is billed to nobody (recorded as free); an account card's energy is
billed to its account at the charger's tariff, exactly once; every other idTag stays refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from strom_core.cards import Card, CardMode, index_cards
from strom_core.config import (
    CardConfig,
    ConnectorConfig,
    LocationConfig,
    ProfileConfig,
    TariffConfig,
)
from strom_core.ports import Authorization, MeterSample
from strom_core.session import State
from strom_services.cards import ProfileCards
from strom_services.ocpp_core import DatabaseOcppCore
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.schema import ledger_entries, ocpp_transactions, sessions
from strom_storage.sessions import SessionStore, ledger_totals

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
PROFILE = ProfileConfig(
    id="cp1",
    name="Test charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(ConnectorConfig(id=1, max_power_kw=11), ConnectorConfig(id=2, max_power_kw=11)),
    tariff=TariffConfig(per_kwh_sat="300.5", session_fee_sat=7),
    cards=(
        CardConfig(id_tag="STAFF-1", label="Workshop"),
        CardConfig(id_tag="Fleet-7", label="Van 7", mode=CardMode.ACCOUNT, account="acme"),
    ),
)


async def core_with_cards(db: Database) -> DatabaseOcppCore:
    await ChargerStore(db).sync((PROFILE,))
    cards = ProfileCards(
        (PROFILE,), lambda p: p.tariff.to_tariff(), meter_interval_s=60, start_timeout_s=90
    )
    return DatabaseOcppCore(SessionStore(db), cards=cards)


async def session_of(core: DatabaseOcppCore, reference: str) -> str:
    query = select(ocpp_transactions.c.session_id).where(ocpp_transactions.c.id == int(reference))
    found = await core.db.read(lambda conn: conn.execute(query).scalar())
    assert found is not None
    return str(found)


async def charge(core: DatabaseOcppCore, connector: int, tag: str, wh: int) -> str:
    """Start with ``tag``, report a sample, stop ``wh`` later; the session's id."""
    assert await core.authorize("cp1", tag) is Authorization.ACCEPTED
    started = await core.start_transaction("cp1", connector, tag, 1_000, T0)
    assert started.status is Authorization.ACCEPTED
    sample = MeterSample("cp1", connector, started.transaction, 1_000 + wh // 2, T0)
    await core.record_meter(sample)
    stop_at = T0 + timedelta(minutes=30)
    decision = await core.stop_transaction(
        "cp1", started.transaction, 1_000 + wh, stop_at, "Local", tag
    )
    assert decision.known
    replay = await core.stop_transaction(
        "cp1", started.transaction, 1_000 + wh, stop_at, "Local", tag
    )
    assert replay.replayed  # billed exactly once
    return await session_of(core, started.transaction)


async def test_free_card_charges_and_is_billed_to_nobody_but_recorded_as_free(
    db: Database,
) -> None:
    core = await core_with_cards(db)
    session_id = await charge(core, 1, "staff-1", 10_000)  # idTags compare case-insensitively
    session = await core.store.get(session_id)
    assert session.state is State.CLOSED
    assert session.payer == "free"
    assert (session.paid_msat, session.consumed_msat, session.refundable_msat) == (0, 0, 0)
    assert session.energy_wh == 10_000
    assert session.postpaid_msat == 10 * 300_500_000 // 1000 + 7_000
    totals = await db.read(lambda conn: ledger_totals(conn, session_id))
    assert totals == {"consumption": 0, "free": session.postpaid_msat}


async def test_account_card_energy_is_billed_to_its_account_at_the_charger_tariff(
    db: Database,
) -> None:
    core = await core_with_cards(db)
    session_id = await charge(core, 2, "Fleet-7", 12_345)
    session = await core.store.get(session_id)
    # 12.345 kWh at 300.5 sat/kWh = 3,709,672.5 msat, rounded as the tariff rounds, + 7 sat.
    expected = PROFILE.tariff.to_tariff().cost(12_345, 30 * 60)
    assert expected == 3_709_672 + 7_000
    assert (session.state, session.payer, session.postpaid_msat) == (
        State.CLOSED,
        "account:acme",
        expected,
    )
    query = select(ledger_entries.c.kind, ledger_entries.c.amount_msat).where(
        ledger_entries.c.session_id == session_id
    )
    rows = [tuple(r) for r in await db.read(lambda conn: conn.execute(query).all())]
    assert sorted(rows) == [("consumption", 0), ("receivable", expected)]


async def test_two_starts_with_one_card_are_two_sessions(db: Database) -> None:
    core = await core_with_cards(db)
    first = await charge(core, 1, "STAFF-1", 1_000)
    second = await charge(core, 2, "STAFF-1", 2_000)
    assert first != second


async def test_unknown_tag_is_still_refused_and_opens_no_session(db: Database) -> None:
    core = await core_with_cards(db)
    assert await core.authorize("cp1", "STAFF-2") is Authorization.INVALID
    assert await core.authorize("cp9", "STAFF-1") is Authorization.INVALID  # not its card
    decision = await core.start_transaction("cp1", 1, "STAFF-2", 0, T0)
    assert decision.status is Authorization.INVALID
    assert await db.read(lambda conn: conn.execute(select(sessions.c.id)).all()) == []


async def test_replayed_card_start_opens_one_session(db: Database) -> None:
    core = await core_with_cards(db)
    first = await core.start_transaction("cp1", 1, "STAFF-1", 0, T0)
    again = await core.start_transaction("cp1", 1, "STAFF-1", 0, T0)
    assert again.replayed
    assert again.transaction == first.transaction
    assert len(await db.read(lambda conn: conn.execute(select(sessions.c.id)).all())) == 1


def test_card_rules() -> None:
    with pytest.raises(ValueError, match="20"):
        Card("X" * 21)
    with pytest.raises(ValueError, match="account"):
        Card("A1", mode=CardMode.ACCOUNT)
    with pytest.raises(ValueError, match="twice"):
        index_cards([Card("abc"), Card("ABC")])
    assert Card("F1", mode=CardMode.ACCOUNT, account="acme").payer == "account:acme"
