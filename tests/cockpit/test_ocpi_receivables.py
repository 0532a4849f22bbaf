"""The operator's view of what roaming partners owe: receivables and payment terms in the API.

Against a running Strom with ``[ocpi]`` on: a partner offered through the API, its RFID token
presented at the simulated charger, the session stopped and billed (a receivable opened by the
session store, as in production), then listed, invoiced (a real BOLT11 from the fake backend),
overdue under terms of 0 days (the partner's next start is refused), and written off. Read-only
tokens change nothing; unknown ids are 404; bad input is 400 and changes nothing; with OCPI off
every route is 409 ``ocpi_disabled``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from strom_core.roaming import ReceivableState
from strom_core.session import State
from strom_services.roaming import RoamingService
from tests.cockpit.conftest import CHARGER, Cockpit, start_cockpit
from tests.e2e.test_roaming import token, wait_state
from tests.ocpi.test_api import OCPI_ON
from tests.waits import until

pytestmark = pytest.mark.slow

TAG = "04A1B2C3D4"
NEW_ROUTES = [
    ("GET", "/ocpi/receivables"),
    ("POST", "/ocpi/receivables/1/invoice"),
    ("POST", "/ocpi/receivables/1/write-off"),
]


@pytest.fixture
async def ocpi_cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path, OCPI_ON):
        yield running


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path):
        yield running


def roaming_of(c: Cockpit) -> RoamingService:
    assert c.stack.strom.roaming is not None
    return c.stack.strom.roaming


async def ok(c: Cockpit, method: str, path: str, **kw: Any) -> Any:
    response = await c.call(method, path, **kw)
    assert response.status_code == 200, (method, path, response.text)
    return response.json()


async def partner_bill(c: Cockpit, partner_id: int) -> str:
    """The partner starts a charge (its START_SESSION), stops it; the session store bills it."""
    roaming = roaming_of(c)
    partner, card = str(partner_id), token(TAG, partner_id=str(partner_id))
    assert await roaming.upsert_token(card)
    session_id = await roaming.start_for_partner(partner, card, CHARGER, 1, "ref-1")
    await wait_state(c.stack, session_id, State.CHARGING)
    await until(lambda: c.stack.charger.connectors[1].meter_wh > 0, "energy flows")
    await roaming.stop_for_partner(partner, session_id)
    await wait_state(c.stack, session_id, State.CLOSED)
    return session_id


async def test_a_partners_bill_is_listed_invoiced_overdue_blocking_and_written_off(
    ocpi_cockpit: Cockpit,
) -> None:
    c = ocpi_cockpit
    offer = await ok(c, "POST", "/ocpi/partners", json={"name": "Roaming One"})
    partner_id = offer["partner"]["id"]
    assert (offer["partner"]["payment_terms_days"], offer["partner"]["open_msat"]) == (14, 0)
    terms = {"payment_terms_days": 0, "block_when_overdue": True}
    patched = await ok(c, "PATCH", f"/ocpi/partners/{partner_id}", json=terms)
    assert (patched["payment_terms_days"], patched["block_when_overdue"]) == (0, True)
    assert patched["state"] == "offered"  # the OCPI record is untouched by a terms change

    session_id = await partner_bill(c, partner_id)
    session = await c.stack.strom.sessions.get(session_id)
    listed = (await ok(c, "GET", "/ocpi/receivables"))["receivables"]
    assert len(listed) == 1
    owed = listed[0]
    assert owed["session_id"] == session_id
    assert (owed["partner_id"], owed["partner_name"]) == (str(partner_id), "Roaming One")
    assert (owed["state"], owed["overdue"], owed["bolt11"]) == ("open", False, None)
    assert owed["amount_msat"] == session.postpaid_msat > 0
    assert Decimal(owed["amount_sat"]) * 1000 == owed["amount_msat"]
    partner = await ok(c, "GET", f"/ocpi/partners/{partner_id}")
    assert (partner["open_receivables"], partner["open_msat"]) == (1, owed["amount_msat"])
    assert (partner["overdue_receivables"], partner["blocked_by_overdue"]) == (0, False)

    invoiced = await ok(c, "POST", f"/ocpi/receivables/{owed['id']}/invoice")
    assert invoiced["state"] == "invoiced"
    assert invoiced["bolt11"].startswith("lnbcrt")
    assert invoiced["due_at"] == invoiced["invoiced_at"]  # terms of 0 days
    due = datetime.fromisoformat(invoiced["due_at"])
    await until(lambda: c.stack.strom.clock.now() > due, "the invoice is past due")
    again = await ok(c, "POST", f"/ocpi/receivables/{owed['id']}/invoice")
    assert again["bolt11"] == invoiced["bolt11"]  # still payable: asked twice, one invoice
    overdue = (await ok(c, "GET", "/ocpi/receivables", params={"overdue": "true"}))["receivables"]
    assert [(r["id"], r["overdue"]) for r in overdue] == [(owed["id"], True)]
    mine = {"overdue": "true", "partner_id": str(partner_id), "state": "invoiced"}
    assert (await ok(c, "GET", "/ocpi/receivables", params=mine))["receivables"] == overdue
    other = {"overdue": "true", "partner_id": str(partner_id + 1)}
    assert (await ok(c, "GET", "/ocpi/receivables", params=other))["receivables"] == []
    partner = await ok(c, "GET", f"/ocpi/partners/{partner_id}")
    assert (partner["overdue_msat"], partner["blocked_by_overdue"]) == (owed["amount_msat"], True)
    assert partner["blocked"] is False  # the operator's own flag stays apart
    # The block is real: the partner's token no longer starts a charge.
    refused = await c.stack.charger.start_transaction(1, TAG)
    assert refused["idTagInfo"]["status"] == "Invalid"

    written = await ok(c, "POST", f"/ocpi/receivables/{owed['id']}/write-off")
    assert (written["state"], written["overdue"]) == ("written_off", False)
    stored = await roaming_of(c).receivable_of(session_id)
    assert stored is not None
    assert stored.state is ReceivableState.WRITTEN_OFF
    partner = await ok(c, "GET", f"/ocpi/partners/{partner_id}")
    assert (partner["open_receivables"], partner["blocked_by_overdue"]) == (0, False)
    assert not await roaming_of(c).blocked(str(partner_id))
    for action in ("write-off", "invoice"):
        refused_again = await c.call("POST", f"/ocpi/receivables/{owed['id']}/{action}")
        assert refused_again.status_code == 409, refused_again.text
        assert "written_off" in refused_again.json()["message"]
    by_state = {"state": "written_off"}
    assert len((await ok(c, "GET", "/ocpi/receivables", params=by_state))["receivables"]) == 1
    assert (await ok(c, "GET", "/ocpi/receivables", params={"state": "open"}))["receivables"] == []
    audit = (await ok(c, "GET", "/audit", params={"limit": "10"}))["items"]
    outcomes = [(e["action"], e["detail"]["http"]) for e in audit]
    assert outcomes[:3] == [
        ("api.ocpi.invoice", 409),
        ("api.ocpi.write_off", 409),
        ("api.ocpi.write_off", 200),
    ]


async def test_read_only_tokens_unknown_ids_and_bad_input_change_nothing(
    ocpi_cockpit: Cockpit,
) -> None:
    c = ocpi_cockpit
    partner_id = (await ok(c, "POST", "/ocpi/partners", json={"name": "Roaming One"}))["partner"][
        "id"
    ]
    session_id = await partner_bill(c, partner_id)
    receivable = await roaming_of(c).receivable_of(session_id)
    assert receivable is not None
    rid = receivable.id

    read = c.read_token
    assert (await c.call("GET", "/ocpi/receivables", token=read)).status_code == 200
    for method, path, body in [
        ("POST", f"/ocpi/receivables/{rid}/invoice", None),
        ("POST", f"/ocpi/receivables/{rid}/write-off", None),
        ("PATCH", f"/ocpi/partners/{partner_id}", {"payment_terms_days": 1}),
    ]:
        refused = await c.call(method, path, token=read, json=body)
        assert refused.status_code == 403, (path, refused.text)
        assert "read-only" in refused.json()["message"]

    for bad_id in ("999", "0", "abc", "99999999999"):
        for action in ("invoice", "write-off"):
            missing = await c.call("POST", f"/ocpi/receivables/{bad_id}/{action}")
            assert missing.status_code == 404, (bad_id, missing.text)
            assert missing.json()["error"] == "not_found"
    unknown = await c.call("PATCH", "/ocpi/partners/999", json={"payment_terms_days": 3})
    assert unknown.status_code == 404
    assert not await c.stack.strom.db.read(
        lambda conn: conn.exec_driver_sql(
            "SELECT count(*) FROM roaming_partner_terms WHERE partner_id = '999'"
        ).scalar_one()
    )

    for body in [
        {"payment_terms_days": -1},
        {"payment_terms_days": 366},
        {"payment_terms_days": "7"},
        {"payment_terms_days": True},
        {"block_when_overdue": "yes"},
        {"payment_terms_days": 3, "grace": 1},
        {},
    ]:
        bad = await c.call("PATCH", f"/ocpi/partners/{partner_id}", json=body)
        assert bad.status_code == 400, (body, bad.text)
        assert bad.json()["message"]
    for params in [
        {"state": "lost"},
        {"partner_id": "0"},
        {"partner_id": "x"},
        {"overdue": "maybe"},
        {"limit": "5"},
    ]:
        bad = await c.call("GET", "/ocpi/receivables", params=params)
        assert bad.status_code == 400, (params, bad.text)

    partner = await ok(c, "GET", f"/ocpi/partners/{partner_id}")
    assert (partner["payment_terms_days"], partner["block_when_overdue"]) == (14, True)
    unchanged = await roaming_of(c).receivable_of(session_id)
    assert unchanged == receivable  # still open, no invoice made


async def test_with_ocpi_off_the_receivable_routes_answer_409(cockpit: Cockpit) -> None:
    for method, path in NEW_ROUTES:
        answer = await cockpit.call(method, path)
        assert answer.status_code == 409, (path, answer.text)
        assert answer.json()["error"] == "ocpi_disabled"
    terms = await cockpit.call("PATCH", "/ocpi/partners/1", json={"payment_terms_days": 3})
    assert terms.status_code == 409
    assert terms.json()["error"] == "ocpi_disabled"


async def test_a_versions_url_with_a_control_character_is_refused_and_nothing_is_stored(
    ocpi_cockpit: Cockpit,
) -> None:
    # Found by the API fuzzer with OCPI on: "\x1c" is not whitespace to the validator's regex
    # but the HTTP client refuses such a URL; the API must say 400 before anything is tried.
    c = ocpi_cockpit
    for url in ["http://emsp.example/\x1cversions", "http://emsp\x7f.example/v", "http://ü.de/v"]:
        body = {"name": "Roaming One", "versions_url": url, "token": "token-a"}
        refused = await c.call("POST", "/ocpi/partners", json=body)
        assert refused.status_code == 400, (url, refused.text)
        assert "versions_url" in refused.json()["message"]
    assert (await ok(c, "GET", "/ocpi/partners"))["partners"] == []
    good = await c.call(
        "POST",
        "/ocpi/partners",
        json={"name": "R", "versions_url": "http://127.0.0.1:9/v?x=1", "token": "token-a"},
    )
    assert good.status_code == 502  # valid input: Strom tried, nobody answered
