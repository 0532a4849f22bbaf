"""An independent eMSP (py_ocpi) drives a running Strom: commands and tokens, end to end.

Strom runs whole (HTTP with ``/ocpi`` mounted, a simulated charger on a real OCPP websocket,
the fake lightning backend); the eMSP is py_ocpi in its own process, registered with Strom
through the credentials handshake. It sends START_SESSION, STOP_SESSION and RESERVE_NOW and
receives the CommandResults on its own callback; it serves tokens that Strom pulls; a token
pushed by PUT and invalidated by PATCH is refused at the charger.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from ocpi_server.protocol import authorization_header, format_datetime
from strom.app import Strom
from strom_core.roaming import ReceivableState, TokenType
from strom_core.session import State
from strom_storage.schema import roaming_sessions
from strom_storage.sessions import ledger_totals
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, Stack, running_stack
from tests.e2e.test_reservations import free_connector, offer_reservations
from tests.peers.ocpi_emsp import OcpiEmspPeer
from tests.waits import until

pytestmark = pytest.mark.peer

OCPI_ON = {
    "STROM_OCPI__ENABLED": "true",
    "STROM_OCPI__COUNTRY_CODE": "DE",
    "STROM_OCPI__PARTY_ID": "STR",
    "STROM_OCPI__BUSINESS_NAME": "Strom Commands Test",
}


def token(uid: str, token_type: str = "APP_USER", **fields: Any) -> dict[str, Any]:
    """A Token object of the peer's party (NL-EMP)."""
    return {
        "country_code": "NL",
        "party_id": "EMP",
        "uid": uid,
        "type": token_type,
        "contract_id": f"NL-EMP-C{uid[:10]}",
        "issuer": "Test eMSP",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2026-01-01T00:00:00Z",
        **fields,
    }


@pytest.fixture
async def ocpi_stack(tmp_path: Path, ocpp_version: str) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path, env=OCPI_ON, ocpp_version=ocpp_version) as running:
        yield running


async def register(strom: Strom, peer: OcpiEmspPeer) -> int:
    """The operator offers a token A; the peer registers with it. Strom's partner id."""
    assert strom.ocpi is not None
    offer = await strom.ocpi.partners.offer("py_ocpi eMSP")
    await peer.register(offer.versions_url, offer.token_a)
    return offer.partner.id


async def result_of(peer: OcpiEmspPeer, uid: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    async def arrived() -> bool:
        found[:] = [r for r in await peer.command_results() if r["uid"] == uid]
        return bool(found)

    await until(arrived, f"the CommandResult of {uid}", within_s=30)
    assert len(found) == 1, found  # exactly once
    return found[0]


async def partner_session(stack: Stack) -> str:
    rows = await stack.strom.db.read(lambda conn: conn.execute(select(roaming_sessions)).all())
    assert len(rows) == 1
    return str(rows[0].session_id)


async def wait_state(stack: Stack, session_id: str, *states: State) -> None:
    async def reached() -> bool:
        return (await stack.strom.sessions.get(session_id)).state in states

    await until(reached, f"session {session_id} in {states}", within_s=30)


@BOTH_VERSIONS
async def test_start_and_stop_session_from_the_peer_charge_bill_once_and_report_results(
    ocpi_stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    stack = ocpi_stack
    partner_id = await register(stack.strom, ocpi_emsp)
    start = await ocpi_emsp.command(
        "START_SESSION",
        {
            "token": token("app-0001"),
            "location_id": CHARGER,
            "evse_uid": f"{CHARGER}-1",
            "connector_id": "1",
            "authorization_reference": "auth-0001",
        },
    )
    assert start["status"] == 200, start
    assert start["errors"] == []  # py_ocpi's CommandResponse schema
    assert start["body"]["data"]["result"] == "ACCEPTED"
    assert start["body"]["data"]["timeout"] > 0
    assert (await result_of(ocpi_emsp, start["uid"]))["result"]["result"] == "ACCEPTED"
    session_id = await partner_session(stack)
    await wait_state(stack, session_id, State.CHARGING)
    await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")

    stop = await ocpi_emsp.command("STOP_SESSION", {"session_id": session_id})
    assert stop["body"]["data"]["result"] == "ACCEPTED", stop
    assert (await result_of(ocpi_emsp, stop["uid"]))["result"]["result"] == "ACCEPTED"
    session = await stack.strom.sessions.get(session_id)
    assert session.state is State.CLOSED
    assert session.payer == f"partner:{partner_id}"
    assert session.postpaid_msat > 0
    roaming = stack.strom.roaming
    assert roaming is not None
    receivable = await roaming.receivable_of(session_id)
    assert receivable is not None
    assert receivable.amount_msat == session.postpaid_msat
    # Open, or already invoiced: its invoice is offered as soon as the CDR was accepted.
    assert receivable.state in (ReceivableState.OPEN, ReceivableState.INVOICED)
    # Stopping it again: it has ended, which is what the partner is told; nothing changes.
    totals = await stack.strom.db.read(lambda conn: ledger_totals(conn, session_id))
    again = await ocpi_emsp.command("STOP_SESSION", {"session_id": session_id})
    assert again["body"]["data"]["result"] == "ACCEPTED"
    assert (await result_of(ocpi_emsp, again["uid"]))["result"]["result"] == "ACCEPTED"
    assert await stack.strom.db.read(lambda conn: ledger_totals(conn, session_id)) == totals
    # Another partner's, or no, session: UNKNOWN_SESSION.
    unknown = await ocpi_emsp.command("STOP_SESSION", {"session_id": "0123456789abcdef"})
    assert unknown["body"]["data"]["result"] == "UNKNOWN_SESSION"
    await stack.ledgers_balance()


async def test_a_start_on_a_busy_connector_is_rejected_at_once_and_starts_nothing(
    ocpi_stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    stack = ocpi_stack
    await register(stack.strom, ocpi_emsp)
    body = {"token": token("app-0002"), "location_id": CHARGER, "evse_uid": f"{CHARGER}-1"}
    first = await ocpi_emsp.command("START_SESSION", body)
    assert first["body"]["data"]["result"] == "ACCEPTED"
    session_id = await partner_session(stack)
    await wait_state(stack, session_id, State.CHARGING)
    second = await ocpi_emsp.command("START_SESSION", body)  # another response_url
    assert second["body"]["data"]["result"] == "REJECTED"
    assert second["body"]["data"]["message"][0]["text"]
    assert len(await stack.strom.db.read(lambda c: c.execute(select(roaming_sessions)).all())) == 1


async def test_tokens_are_pulled_from_the_peer_and_start_at_the_charger_post_paid(
    ocpi_stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    stack = ocpi_stack
    await ocpi_emsp.set_tokens([token("04AABBCC01", "RFID"), token("04AABBCC02", "RFID")])
    partner_id = await register(stack.strom, ocpi_emsp)
    roaming = stack.strom.roaming
    assert roaming is not None

    # Pulled, stored, and in the index the chargers' Authorize reads.
    await until(
        lambda: roaming.index.token("04AABBCC02") is not None,
        "Strom pulled the peer's tokens",
        within_s=30,
    )
    assert len(await roaming.tokens(str(partner_id))) == 2
    answer = await stack.charger.start_transaction(1, "04AABBCC01")
    assert answer["idTagInfo"]["status"] == "Accepted"
    session_id = await partner_session(stack)
    await wait_state(stack, session_id, State.CHARGING)
    session = await stack.strom.sessions.get(session_id)
    assert session.payer == f"partner:{partner_id}"
    assert session.paid_msat == 0


async def test_a_token_pushed_then_invalidated_by_patch_is_refused_at_the_charger(
    ocpi_stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    stack = ocpi_stack
    partner_id = await register(stack.strom, ocpi_emsp)
    cpo = (await ocpi_emsp.partner())["cpo"]
    url = next(
        e["url"]
        for e in cpo["endpoints"]
        if e["identifier"] == "tokens" and e["role"] == "RECEIVER"
    )
    where = f"{url.rstrip('/')}/NL/EMP/04DDEEFF01"
    headers = {"Authorization": authorization_header(cpo["token"])}
    async with httpx.AsyncClient(timeout=10) as http:
        put = await http.put(where, json=token("04DDEEFF01", "RFID"), headers=headers)
        assert (put.status_code, put.json()["status_code"]) == (201, 1000)
        got = await http.get(where, headers=headers)
        assert got.json()["data"]["uid"] == "04DDEEFF01"
        patch = await http.patch(
            where,
            json={"valid": False, "last_updated": "2026-01-02T00:00:00Z"},
            headers=headers,
        )
        assert patch.json()["status_code"] == 1000
    roaming = stack.strom.roaming
    assert roaming is not None
    stored = await roaming.token(str(partner_id), "04DDEEFF01", TokenType.RFID)
    assert stored is not None
    assert not stored.valid
    answer = await stack.charger.start_transaction(1, "04DDEEFF01")
    assert answer["idTagInfo"]["status"] == "Invalid"
    assert await stack.strom.db.read(lambda c: c.execute(select(roaming_sessions)).all()) == []


async def test_a_reserve_now_from_the_peer_reserves_the_connector_and_reports_accepted(
    ocpi_stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    stack = ocpi_stack
    partner_id = await register(stack.strom, ocpi_emsp)
    await offer_reservations(stack)
    await free_connector(stack)
    expiry = stack.strom.clock.now() + timedelta(minutes=30)
    reserve = await ocpi_emsp.command(
        "RESERVE_NOW",
        {
            "token": token("04AB0C0D01", "RFID"),
            "expiry_date": format_datetime(expiry),
            "reservation_id": "peer-res-1",
            "location_id": CHARGER,
            "evse_uid": f"{CHARGER}-1",
        },
    )
    assert reserve["status"] == 200, reserve
    assert reserve["errors"] == []  # py_ocpi's CommandResponse schema
    assert reserve["body"]["data"]["result"] == "ACCEPTED"
    assert (await result_of(ocpi_emsp, reserve["uid"]))["result"]["result"] == "ACCEPTED"
    await stack.charger.wait_until(lambda: stack.charger.connectors[1].status == "Reserved")
    session = await stack.strom.sessions.get(await partner_session(stack))
    assert (session.state, session.payer) == (State.RESERVED, f"partner:{partner_id}")
    # The token was never pulled nor pushed: the reservation alone lets it in at the charger.
    authorized = await stack.charger.call("Authorize", {"idTag": "04AB0C0D01"})
    assert authorized["idTagInfo"]["status"] == "Accepted"
    started = await stack.charger.start_transaction(1, "04AB0C0D01")
    assert started["idTagInfo"]["status"] == "Accepted"
    await wait_state(stack, session.id, State.CHARGING)
