"""Roaming partners' records on SQLite and PostgreSQL: tokens (newest wins), the token index,
receivables opened with the final bill, due dates and the overdue list.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.roaming import (
    PartnerTerms,
    ReceivableState,
    RoamingToken,
    TokenType,
    Whitelist,
    local_start_refusal,
)
from strom_core.session import new_session
from strom_core.tariff import Tariff
from strom_services.roaming import PartnerTokenIndex
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.roaming import (
    get_token,
    invoice_receivable,
    list_tokens,
    load_receivable,
    open_receivable,
    overdue_receivables,
    partner_blocked,
    patch_token,
    save_terms,
    upsert_token,
)
from strom_storage.sessions import insert_sessions, new_session_row

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
PROFILE = ProfileConfig(
    id="cp1",
    name="Test charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(ConnectorConfig(id=1, max_power_kw=11),),
    tariff=TariffConfig(per_kwh_sat="300"),
)


def token(uid: str = "04AB", partner: str = "NL-EMS", **fields: object) -> RoamingToken:
    values: dict[str, object] = {
        "partner_id": partner,
        "uid": uid,
        "type": TokenType.RFID,
        "contract_id": "NL-EMS-C1",
        "last_updated": T0,
    }
    values.update(fields)
    return RoamingToken(**values)  # type: ignore[arg-type]


async def test_token_upsert_is_idempotent_and_never_goes_back_in_time(db: Database) -> None:
    assert await db.write(lambda conn: upsert_token(conn, token()))
    assert not await db.write(lambda conn: upsert_token(conn, token()))  # the same again
    newer = token(valid=False, last_updated=T0 + timedelta(hours=1))
    assert await db.write(lambda conn: upsert_token(conn, newer))
    older = token(whitelist=Whitelist.NEVER, last_updated=T0 - timedelta(hours=1))
    assert not await db.write(lambda conn: upsert_token(conn, older))
    stored = await db.read(lambda conn: get_token(conn, "NL-EMS", "04ab", TokenType.RFID))
    assert stored == newer  # found case-insensitively, the newest kept
    patched = await db.write(
        lambda conn: patch_token(
            conn,
            "NL-EMS",
            "04AB",
            TokenType.RFID,
            {"valid": True, "last_updated": T0 + timedelta(hours=2)},
        )
    )
    assert patched is not None
    assert patched.valid
    with pytest.raises(ValueError, match="last_updated"):
        await db.write(lambda conn: patch_token(conn, "NL-EMS", "04AB", TokenType.RFID, {}))
    with pytest.raises(ValueError, match="cannot be patched"):
        await db.write(
            lambda conn: patch_token(conn, "NL-EMS", "04AB", TokenType.RFID, {"uid": "x"})
        )
    assert [t.uid for t in await db.read(lambda conn: list_tokens(conn, "NL-EMS"))] == ["04AB"]


def test_token_rules_and_the_index() -> None:
    with pytest.raises(ValueError, match="partner id"):
        token(partner="X" * 37)
    with pytest.raises(ValueError, match="uid"):
        token(uid="U" * 37)
    long_uid = token(uid="U" * 21)  # a valid OCPI uid, but no charger can present it
    assert local_start_refusal(long_uid, partner_blocked=False) is not None
    index = PartnerTokenIndex([long_uid, token("AA01"), token("aa01", partner="DE-OTH")])
    assert index.token("U" * 21) is None
    assert index.token("AA01") is None  # two partners send the same uid: nobody's
    assert PartnerTokenIndex([token("AA01")]).token("aa01") == token("AA01")
    assert local_start_refusal(token(), partner_blocked=True) == (
        "partner blocked: an overdue receivable"
    )
    with pytest.raises(ValueError, match="365"):
        PartnerTerms(payment_terms_days=400)


async def test_receivable_once_per_session_due_by_the_first_invoice(db: Database) -> None:
    await ChargerStore(db).sync((PROFILE,))
    session = new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=1,
        id_tag="Ps1",
        tariff=Tariff(300_000, 0, 0, 1_000, 10_000_000),
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=90,
        payer="partner:NL-EMS",
    )
    await db.write(
        lambda conn: insert_sessions(conn, [new_session_row(session, "x", "p", None, T0)])
    )
    assert await db.write(lambda conn: open_receivable(conn, "s1", "NL-EMS", 5_000, T0))
    assert not await db.write(lambda conn: open_receivable(conn, "s1", "NL-EMS", 5_000, T0))
    await db.write(lambda conn: save_terms(conn, "NL-EMS", PartnerTerms(True, 3), T0))
    first = await db.read(lambda conn: load_receivable(conn, 1))
    assert first is not None
    assert first.state is ReceivableState.OPEN
    await db.write(
        lambda conn: invoice_receivable(
            conn, first.id, payment_hash="a" * 64, bolt11="lnbc1", now=T0, terms_days=3
        )
    )
    later = T0 + timedelta(days=2)
    await db.write(
        lambda conn: invoice_receivable(
            conn, first.id, payment_hash="b" * 64, bolt11="lnbc2", now=later, terms_days=3
        )
    )
    again = await db.read(lambda conn: load_receivable(conn, first.id))
    assert again is not None
    assert (again.payment_hash, again.due_at) == ("b" * 64, T0 + timedelta(days=3))
    assert await db.read(lambda conn: overdue_receivables(conn, T0 + timedelta(days=3))) == []
    after = T0 + timedelta(days=3, seconds=1)
    assert [r.id for r in await db.read(lambda conn: overdue_receivables(conn, after))] == [1]
    assert await db.read(lambda conn: partner_blocked(conn, "NL-EMS", after))
    assert not await db.read(lambda conn: partner_blocked(conn, "DE-OTH", after))
