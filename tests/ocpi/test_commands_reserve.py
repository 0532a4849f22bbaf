"""RESERVE_NOW and CANCEL_RESERVATION of a running Strom: post-paid reservations for partners.

Strom runs whole with ``[ocpi]`` on and a simulated charger (which honours ReserveNow and
CancelReservation, both OCPP versions); the partner is the in-test eMSP of
:mod:`tests.ocpi.test_commands_tokens`, which records the CommandResults it receives. The
partner owes, as a receivable: the bill only when its driver charges in time; the tariff's
kept share of the reservation fee when the reservation is cancelled or runs out (none when
that share is 0); nothing when Strom refuses. The ledger balances throughout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ocpi_server.protocol import format_datetime
from strom_core.session import State
from strom_storage.outbox import run_session_now
from strom_storage.schema import roaming_reservations, sessions
from tests.e2e.conftest import BOTH_VERSIONS, CHARGER, running_stack
from tests.e2e.test_reservations import FEE_30, KEPT_30, free_connector, offer_reservations
from tests.ocpi.conftest import serve
from tests.ocpi.test_commands_peer import OCPI_ON, token
from tests.ocpi.test_commands_tokens import Partnered, TokenEmsp, count
from tests.waits import until

UID = "04EE5E0001"
WHERE = f"/tokens/NL/EMS/{UID}"


@pytest.fixture
async def reserving(tmp_path: Path, ocpp_version: str) -> AsyncIterator[Partnered]:
    """Strom with reservations offered, the partner registered, its RFID token pushed."""
    emsp = TokenEmsp(accepted={"token-a"})
    runner, emsp.base = await serve(emsp.app())
    async with running_stack(tmp_path, env=OCPI_ON, ocpp_version=ocpp_version) as stack:
        assert stack.strom.ocpi is not None
        partner = await stack.strom.ocpi.partners.register_with(
            f"{emsp.base}/emsp/versions", "token-a", "test eMSP"
        )
        partnered = Partnered(stack, emsp, partner.id)
        pushed = token(UID, "RFID", country_code="NL", party_id="EMS")
        assert (await partnered.call("PUT", WHERE, pushed)).status_code == 201
        await offer_reservations(stack)
        await free_connector(stack)
        yield partnered
    await runner.cleanup()


def reserve_body(p: Partnered, minutes: int = 30, **changes: Any) -> dict[str, Any]:
    expiry = p.stack.strom.clock.now() + timedelta(minutes=minutes)
    body = {
        "response_url": f"{p.emsp.base}/cb/r1",
        "token": token(UID, "RFID", country_code="NL", party_id="EMS"),
        "expiry_date": format_datetime(expiry),
        "reservation_id": "res-0001",
        "location_id": CHARGER,
        "evse_uid": f"{CHARGER}-1",
    }
    body.update(changes)
    return body


async def result(p: Partnered, uid: str) -> dict[str, Any]:
    """The one CommandResult posted to the callback ``uid``."""
    await until(
        lambda: any(u == uid for u, _ in p.emsp.results), f"the result of {uid}", within_s=20
    )
    found = [body for u, body in p.emsp.results if u == uid]
    assert len(found) == 1, found  # exactly once
    return found[0]


async def reserved(p: Partnered) -> str:
    """Reserve connector 1 for the token; the charger holds it. The session id."""
    answer = await p.call("POST", "/commands/RESERVE_NOW", reserve_body(p))
    assert answer.json()["data"]["result"] == "ACCEPTED", answer.json()
    assert (await result(p, "r1"))["result"] == "ACCEPTED"
    await p.stack.charger.wait_until(lambda: p.stack.charger.connectors[1].status == "Reserved")
    rows = await p.stack.strom.db.read(lambda c: c.execute(select(roaming_reservations)).all())
    assert [(r.partner_id, r.reservation_id) for r in rows] == [(str(p.partner_id), "res-0001")]
    session = await p.stack.strom.sessions.get(rows[0].session_id)
    assert session.state is State.RESERVED
    assert session.payer == f"partner:{p.partner_id}"
    assert (session.reservation_fee_msat, session.paid_msat) == (FEE_30, 0)
    return str(rows[0].session_id)


async def wait_state(p: Partnered, session_id: str, *states: State) -> None:
    async def reached() -> bool:
        return (await p.stack.strom.sessions.get(session_id)).state in states

    await until(reached, f"session {session_id} in {states}", within_s=20)


async def owed(p: Partnered, session_id: str) -> int | None:
    roaming = p.stack.strom.roaming
    assert roaming is not None
    receivable = await roaming.receivable_of(session_id)
    return None if receivable is None else receivable.amount_msat


@BOTH_VERSIONS
async def test_reserved_then_the_token_charges_and_the_partner_owes_exactly_the_bill(
    reserving: Partnered,
) -> None:
    p = reserving
    session_id = await reserved(p)
    # The driver presents the token at the charger (1.6: idTagInfo; 2.0.1: idTokenInfo).
    answer = await p.stack.charger.start_transaction(1, UID)
    assert (answer.get("idTagInfo") or answer["idTokenInfo"])["status"] == "Accepted"
    await wait_state(p, session_id, State.CHARGING)
    assert await count(p.stack, sessions) == 1  # the reserved session, no second one
    await until(lambda: p.stack.charger.connectors[1].meter_wh > 0, "energy flows")
    await p.stack.charger.stop_transaction(1)
    await wait_state(p, session_id, State.CLOSED)
    session = await p.stack.strom.sessions.get(session_id)
    assert session.postpaid_msat > 0
    assert session.postpaid_msat == session.cost_msat()  # the bill; no fee on top
    assert await owed(p, session_id) == session.postpaid_msat
    roaming = p.stack.strom.roaming
    assert roaming is not None
    assert len(await roaming.receivables(str(p.partner_id))) == 1
    await p.stack.ledgers_balance()


@BOTH_VERSIONS
async def test_a_cancelled_reservation_owes_the_kept_share_and_frees_the_connector(
    reserving: Partnered,
) -> None:
    p = reserving
    session_id = await reserved(p)
    body = {"response_url": f"{p.emsp.base}/cb/c1", "reservation_id": "res-0001"}
    answer = await p.call("POST", "/commands/CANCEL_RESERVATION", body)
    assert answer.json()["data"]["result"] == "ACCEPTED"
    assert (await result(p, "c1"))["result"] == "ACCEPTED"
    await p.stack.charger.wait_until(lambda: p.stack.charger.connectors[1].status == "Available")
    session = await p.stack.strom.sessions.get(session_id)
    assert (session.state, session.postpaid_msat) == (State.CLOSED, KEPT_30)
    assert await owed(p, session_id) == KEPT_30
    # Cancelled already, or never made: REJECTED, nothing changes.
    again = await p.call("POST", "/commands/CANCEL_RESERVATION", body)
    assert again.json()["data"]["result"] == "REJECTED"
    other = body | {"reservation_id": "res-9999"}
    assert (await p.call("POST", "/commands/CANCEL_RESERVATION", other)).json()["data"][
        "result"
    ] == "REJECTED"
    assert await owed(p, session_id) == KEPT_30
    await p.stack.ledgers_balance()


@pytest.mark.parametrize(("kept_percent", "expected"), [(50, KEPT_30), (0, None)])
async def test_an_expired_reservation_owes_the_kept_share_or_nothing(
    reserving: Partnered, kept_percent: int, expected: int | None
) -> None:
    p = reserving
    profile = p.stack.strom.config.profile_by_name(CHARGER)
    book = p.stack.strom.payments.tariffs
    tariff = replace(book.in_force(profile), reservation_kept_percent=kept_percent)
    await book.set(profile, tariff, source="test")
    session_id = await reserved(p)
    now = p.stack.strom.clock.now()  # thirty minutes pass: the durable timer comes due
    await p.stack.strom.db.write(
        lambda conn: run_session_now(conn, session_id, ["reservation_expiry"], now)
    )
    await wait_state(p, session_id, State.CLOSED)
    session = await p.stack.strom.sessions.get(session_id)
    assert session.stop_reason == "reservation expired"
    assert session.postpaid_msat == (expected or 0)
    assert await owed(p, session_id) == expected
    await p.stack.charger.wait_until(lambda: p.stack.charger.connectors[1].status == "Available")
    await p.stack.ledgers_balance()


async def test_a_start_session_for_the_reserved_token_starts_the_reservation(
    reserving: Partnered,
) -> None:
    p = reserving
    session_id = await reserved(p)
    start = {
        "response_url": f"{p.emsp.base}/cb/s1",
        "token": token(UID, "RFID", country_code="NL", party_id="EMS"),
        "location_id": CHARGER,
        "evse_uid": f"{CHARGER}-1",
    }
    answer = await p.call("POST", "/commands/START_SESSION", start)
    assert answer.json()["data"]["result"] == "ACCEPTED", answer.json()
    await p.stack.charger.plug(1)
    await wait_state(p, session_id, State.CHARGING)
    assert await count(p.stack, sessions) == 1
    assert p.stack.charger.connectors[1].id_tag == UID


@pytest.mark.parametrize(
    "change",
    [
        {"expiry_date": None},
        {"expiry_date": 12345},
        {"expiry_date": "tomorrow"},
        {"reservation_id": "x" * 37},
        {"reservation_id": None},
        {"token": {"uid": UID}},
        {"response_url": "not a url"},
        {"location_id": None},
    ],
)
async def test_a_bad_reserve_body_is_2001_and_reserves_nothing(
    reserving: Partnered, change: dict[str, Any]
) -> None:
    p = reserving
    body = {k: v for k, v in (reserve_body(p) | change).items() if v is not None}
    answer = await p.call("POST", "/commands/RESERVE_NOW", body)
    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001)
    cancel = await p.call("POST", "/commands/CANCEL_RESERVATION", {"reservation_id": "r"})
    assert cancel.json()["status_code"] == 2001  # no response_url
    assert await count(p.stack, sessions) == 0
    assert await count(p.stack, roaming_reservations) == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"minutes": 61}, "1 to 60 minutes"),  # beyond the tariff's limit: not capped
        ({"minutes": -5}, "in the past"),
        ({"token": token("app-0001", country_code="NL", party_id="EMS")}, "RFID"),
        ({"token": token(UID, "RFID")}, "not of your party"),
    ],
)
async def test_reservations_strom_cannot_make_are_rejected_at_once(
    reserving: Partnered, change: dict[str, Any], reason: str
) -> None:
    p = reserving
    minutes = change.pop("minutes", 30)
    answer = await p.call("POST", "/commands/RESERVE_NOW", reserve_body(p, minutes, **change))
    assert answer.json()["data"]["result"] == "REJECTED"
    assert reason in answer.json()["data"]["message"][0]["text"]
    assert await count(p.stack, sessions) == 0


async def test_a_reservation_id_is_never_reserved_twice(reserving: Partnered) -> None:
    p = reserving
    await reserved(p)
    again = reserve_body(p, 45, response_url=f"{p.emsp.base}/cb/r2")
    answer = await p.call("POST", "/commands/RESERVE_NOW", again)
    assert answer.json()["data"]["result"] == "REJECTED"
    assert "in use" in answer.json()["data"]["message"][0]["text"]
    assert await count(p.stack, sessions) == 1
