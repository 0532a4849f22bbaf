"""Roaming partners end to end: a partner's token at the charger, a partner's remote start,
the receivable invoiced after the stop and paid over Lightning, and the overdue block.

The whole stack runs (HTTP, the simulated charger on a real websocket, the fake lightning
backend minting real invoices); the partner is an id string, as the OCPI front door will pass.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from strom_core.roaming import (
    PartnerRefused,
    PartnerTerms,
    ReceivableState,
    RoamingToken,
    TokenType,
    Whitelist,
)
from strom_core.session import State, check_ledger
from strom_services.roaming import RoamingService
from strom_storage.schema import ledger_entries, payments, roaming_sessions, sessions
from strom_storage.sessions import ledger_totals
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack
from tests.e2e.test_offline_refusal import take_offline
from tests.waits import until

PARTNER = "NL-EMS"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def token(uid: str, **fields: object) -> RoamingToken:
    values: dict[str, object] = {
        "partner_id": PARTNER,
        "uid": uid,
        "type": TokenType.RFID,
        "contract_id": f"NL-EMS-C{uid[:8]}",
        "last_updated": T0,
    }
    values.update(fields)
    return RoamingToken(**values)  # type: ignore[arg-type]


def roaming_of(stack: Stack) -> RoamingService:
    assert stack.strom.roaming is not None
    return stack.strom.roaming


async def session_count(stack: Stack) -> int:
    query = select(func.count()).select_from(sessions)
    return int(await stack.strom.db.read(lambda conn: conn.execute(query).scalar_one()))


async def wait_state(stack: Stack, session_id: str, *states: State) -> None:
    async def reached() -> bool:
        return (await stack.strom.sessions.get(session_id)).state in states

    await until(reached, f"session {session_id} in {states}", within_s=20)


async def settle_receivable(stack: Stack, session_id: str) -> str:
    """Invoice the session's receivable, pay it from the wallet; the invoice's hash."""
    roaming = roaming_of(stack)
    receivable = await roaming.receivable_of(session_id)
    assert receivable is not None
    invoiced = await roaming.invoice(receivable.id)
    assert invoiced.state is ReceivableState.INVOICED
    assert invoiced.bolt11 is not None
    assert invoiced.due_at is not None
    await stack.wallet.pay(invoiced.bolt11)

    async def paid() -> bool:
        now = await roaming.receivable_of(session_id)
        return now is not None and now.state is ReceivableState.PAID

    await until(paid, "the receivable is paid", within_s=20)
    assert invoiced.payment_hash is not None
    return invoiced.payment_hash


async def test_partner_token_starts_at_the_charger_is_billed_once_and_paid_once(
    stack: Stack,
) -> None:
    roaming = roaming_of(stack)
    assert await roaming.upsert_token(token("04A1B2C3D4"))
    answer = await stack.charger.start_transaction(1, "04a1b2c3d4")  # CiString: any case
    assert answer["idTagInfo"]["status"] == "Accepted"
    found = await stack.strom.db.read(lambda conn: conn.execute(select(roaming_sessions)).one())
    assert (found.partner_id, found.token_uid, found.started_by) == (PARTNER, "04A1B2C3D4", "token")
    session_id = found.session_id
    await wait_state(stack, session_id, State.CHARGING)
    await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")
    await stack.charger.stop_transaction(1)
    await wait_state(stack, session_id, State.CLOSED)
    session = await stack.strom.sessions.get(session_id)
    assert session.payer == f"partner:{PARTNER}"
    assert session.paid_msat == 0
    assert session.postpaid_msat > 0
    receivable = await roaming.receivable_of(session_id)
    assert receivable is not None
    assert (receivable.amount_msat, receivable.state) == (
        session.postpaid_msat,
        ReceivableState.OPEN,
    )

    payment_hash = await settle_receivable(stack, session_id)
    totals = await stack.strom.db.read(lambda conn: ledger_totals(conn, session_id))
    assert totals["receivable"] == totals["receivable_paid"] == session.postpaid_msat
    # The settlement delivered again (the stream, a reconciliation) changes nothing.
    assert not await stack.strom.payments.settle(payment_hash, session.postpaid_msat)
    assert await stack.strom.db.read(lambda conn: ledger_totals(conn, session_id)) == totals
    check_ledger(await stack.strom.sessions.get(session_id))
    await stack.ledgers_balance()


@pytest.mark.parametrize(
    "stored",
    [
        None,  # unknown
        token("DEADBEEF01", valid=False),
        token("DEADBEEF01", whitelist=Whitelist.NEVER),
        token("DEADBEEF01", type=TokenType.APP_USER),  # not presented at a charger
    ],
)
async def test_tokens_that_may_not_start_are_refused_and_create_nothing(
    stack: Stack, stored: RoamingToken | None
) -> None:
    if stored is not None:
        await roaming_of(stack).upsert_token(stored)
    answer = await stack.charger.start_transaction(1, "DEADBEEF01")
    assert answer["idTagInfo"]["status"] == "Invalid"
    assert await session_count(stack) == 0


async def test_a_blocked_partner_token_is_refused(stack: Stack) -> None:
    roaming = roaming_of(stack)
    await roaming.upsert_token(token("CAFE0001"))
    await roaming.set_terms(PARTNER, PartnerTerms(block_when_overdue=True, payment_terms_days=0))
    session_id = await roaming.start_for_partner(PARTNER, token("CAFE0001"), CHARGER, 1, "ref-1")
    await wait_state(stack, session_id, State.CHARGING)
    await roaming.stop_for_partner(PARTNER, session_id)
    await wait_state(stack, session_id, State.CLOSED)
    receivable = await roaming.receivable_of(session_id)
    assert receivable is not None
    await roaming.invoice(receivable.id)  # due at once: 0 days of terms
    later = stack.strom.clock.now() + timedelta(seconds=1)
    assert [r.id for r in await roaming.overdue(later)] == [receivable.id]
    await until(lambda: roaming.blocked(PARTNER), "the partner is blocked")
    before = await session_count(stack)
    answer = await stack.charger.start_transaction(1, "CAFE0001")
    assert answer["idTagInfo"]["status"] == "Invalid"
    with pytest.raises(PartnerRefused, match="blocked"):
        await roaming.start_for_partner(PARTNER, token("CAFE0001"), CHARGER, 1, "ref-2")
    assert await session_count(stack) == before
    # The terms say otherwise: the same partner may start again.
    await roaming.set_terms(PARTNER, PartnerTerms(block_when_overdue=False, payment_terms_days=0))
    assert not await roaming.blocked(PARTNER)


@BOTH_VERSIONS
async def test_partner_remote_start_charges_stops_and_bills_once(stack: Stack) -> None:
    roaming = roaming_of(stack)
    app_token = token("app-user-0001", type=TokenType.APP_USER)
    session_id = await roaming.start_for_partner(PARTNER, app_token, CHARGER, None, "auth-42")
    again = await roaming.start_for_partner(PARTNER, app_token, CHARGER, None, "auth-42")
    assert again == session_id  # the same command twice: one session
    assert await session_count(stack) == 1
    await wait_state(stack, session_id, State.CHARGING)
    with pytest.raises(PartnerRefused, match="no session"):
        await roaming.stop_for_partner("DE-OTH", session_id)  # another partner cannot stop it
    with pytest.raises(PartnerRefused):  # the connector is taken now
        await roaming.start_for_partner(PARTNER, app_token, CHARGER, 1, "auth-43")
    await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")
    await roaming.stop_for_partner(PARTNER, session_id)
    await wait_state(stack, session_id, State.CLOSED)
    session = await stack.strom.sessions.get(session_id)
    assert session.payer == f"partner:{PARTNER}"
    assert session.energy_wh > 0
    query = select(ledger_entries.c.kind, ledger_entries.c.amount_msat).where(
        ledger_entries.c.session_id == session_id
    )
    rows = sorted(tuple(r) for r in await stack.strom.db.read(lambda c: c.execute(query).all()))
    assert rows == [("consumption", 0), ("receivable", session.postpaid_msat)]
    receivable = await roaming.receivable_of(session_id)
    assert receivable is not None
    assert receivable.amount_msat == session.postpaid_msat
    started = await stack.strom.db.read(lambda conn: conn.execute(select(roaming_sessions)).one())
    assert (started.started_by, started.authorization_reference) == ("command", "auth-42")
    await stack.ledgers_balance()


async def test_remote_start_refusals_create_nothing(stack: Stack) -> None:
    roaming = roaming_of(stack)
    app_token = token("app-user-0002", type=TokenType.APP_USER)
    with pytest.raises(PartnerRefused, match="unknown charger"):
        await roaming.start_for_partner(PARTNER, app_token, "nope", 1, "a1")
    with pytest.raises(PartnerRefused, match="no connector 9"):
        await roaming.start_for_partner(PARTNER, app_token, CHARGER, 9, "a2")
    with pytest.raises(PartnerRefused, match="not the partner"):
        await roaming.start_for_partner("DE-OTH", app_token, CHARGER, 1, "a3")
    await take_offline(stack)
    with pytest.raises(PartnerRefused, match="offline"):
        await roaming.start_for_partner(PARTNER, app_token, CHARGER, 1, "a4")
    assert await session_count(stack) == 0
    query = select(func.count()).select_from(payments)
    assert await stack.strom.db.read(lambda conn: conn.execute(query).scalar_one()) == 0
