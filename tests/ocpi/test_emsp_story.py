"""The whole roaming story with an independent eMSP (py_ocpi), in the order a partner lives it.

Strom runs whole (HTTP with ``/ocpi`` mounted, a simulated charger on a real OCPP websocket, the
fake lightning backend); the eMSP is py_ocpi in its own process. Nothing below reaches into
Strom to make things happen: the eMSP registers, pulls, commands; the charger meters; the
partner's wallet pays the BOLT 11 invoices Strom offers on its ``strom-invoices`` module (which
py_ocpi does not know: the test reads it with the token the eMSP got in the handshake, as the
partner's own code would).

1. The credentials handshake (Strom offers token A, the eMSP registers).
2. Locations pulled through the eMSP (validated by py_ocpi's models).
3. START_SESSION → the charger charges → session updates pushed → STOP_SESSION → one CDR whose
   total is Strom's bill → the Lightning invoice for it paid → the receivable closed.
4. The partner settles by streaming: an interval left unpaid → the session is stopped.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from ocpi_server.protocol import authorization_header
from strom_core.partner_invoices import InvoiceStatus
from strom_core.roaming import ReceivableState
from strom_core.session import State
from strom_core.session_events import StopReason
from strom_storage.partner_invoices import session_invoices
from strom_storage.schema import roaming_sessions
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.ocpi.test_commands_peer import OCPI_ON, partner_session, result_of, token, wait_state
from tests.peers.ocpi_emsp import OcpiEmspPeer
from tests.waits import until

pytestmark = pytest.mark.peer

MSAT_PER_BTC = Decimal(100_000_000_000)


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    env = {
        **OCPI_ON,
        "STROM_OCPI__SESSION_UPDATE_INTERVAL_S": "0",
        "STROM_OCPI__STREAM_INTERVAL_S": "1",
        "STROM_OCPI__STREAM_DUE_S": "3",
        "STROM_OCPI__INVOICE_CHECK_S": "1",
    }
    async with running_stack(tmp_path, env=env) as running:
        yield running


async def partner_sessions(stack: Stack) -> list[str]:
    rows = await stack.strom.db.read(lambda conn: conn.execute(select(roaming_sessions)).all())
    return [str(row.session_id) for row in rows]


def by_id(objects: list[dict[str, Any]], object_id: str) -> list[dict[str, Any]]:
    """py_ocpi keeps ids lowercased: compare as OCPI does (CiString)."""
    return [o for o in objects if str(o.get("id", "")).lower() == object_id.lower()]


async def invoices(stack: Stack, token_c: str, **params: str) -> list[dict[str, Any]]:
    """The partner's invoices, read from Strom's strom-invoices SENDER interface."""
    answer = await stack.http.get(
        f"{stack.base}/ocpi/2.2.1/strom-invoices",
        params=params,
        headers={"Authorization": authorization_header(token_c)},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status_code"] == 1000, body
    return list(body["data"])


async def start_session(peer: OcpiEmspPeer, uid: str, reference: str) -> None:
    start = await peer.command(
        "START_SESSION",
        {
            "token": token(uid),
            "location_id": CHARGER,
            "evse_uid": f"{CHARGER}-1",
            "connector_id": "1",
            "authorization_reference": reference,
        },
    )
    assert start["body"]["data"]["result"] == "ACCEPTED", start
    assert (await result_of(peer, start["uid"]))["result"]["result"] == "ACCEPTED"


async def test_an_emsp_registers_pulls_starts_stops_and_pays_the_cdr_over_lightning(
    stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    ocpi, roaming = stack.strom.ocpi, stack.strom.roaming
    assert ocpi is not None
    assert roaming is not None
    # 1. The handshake: the operator offers token A, the eMSP registers with it.
    offer = await ocpi.partners.offer("py_ocpi eMSP")
    registered = await ocpi_emsp.register(offer.versions_url, offer.token_a)
    token_c = registered["token_c"]
    partner = await ocpi.partners.partner(offer.partner.id)
    assert partner.state == "registered"
    assert {"cdrs:RECEIVER", "sessions:RECEIVER", "commands:SENDER"} <= set(partner.modules)

    # 2. Locations pulled by the eMSP, valid to py_ocpi.
    pulled = await ocpi_emsp.pull("locations")
    assert pulled["errors"] == []
    assert [o["id"].lower() for o in pulled["objects"]] == [CHARGER.lower()]

    # 3. START_SESSION: the charger charges; the eMSP sees the session ACTIVE.
    await start_session(ocpi_emsp, "app-story-1", "story-1")
    session_id = await partner_session(stack)
    await wait_state(stack, session_id, State.CHARGING)
    await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")

    async def active() -> bool:
        found = by_id((await ocpi_emsp.received("sessions"))["objects"], session_id)
        return bool(found) and found[0]["status"] == "ACTIVE"

    await until(active, "the eMSP has the session ACTIVE")

    stop = await ocpi_emsp.command("STOP_SESSION", {"session_id": session_id})
    assert stop["body"]["data"]["result"] == "ACCEPTED", stop
    assert (await result_of(ocpi_emsp, stop["uid"]))["result"]["result"] == "ACCEPTED"
    await wait_state(stack, session_id, State.CLOSED)
    session = await stack.strom.sessions.get(session_id)
    bill = session.postpaid_msat
    assert bill > 0

    async def cdr_in() -> bool:
        return bool(by_id((await ocpi_emsp.received("cdrs"))["objects"], session_id))

    await until(cdr_in, "the eMSP has the CDR")
    received = await ocpi_emsp.received("cdrs")
    assert received["errors"] == []
    [cdr] = by_id(received["objects"], session_id)
    assert cdr["currency"] == "BTC"
    assert Decimal(str(cdr["total_cost"]["excl_vat"])) == Decimal(bill) / MSAT_PER_BTC

    # The invoice for the CDR's total, offered on strom-invoices; the partner's wallet pays it.
    async def offered() -> bool:
        return bool(by_id(await invoices(stack, token_c), session_id))

    await until(offered, "the CDR's invoice is offered", within_s=30)
    [invoice] = by_id(await invoices(stack, token_c), session_id)
    assert (invoice["kind"], invoice["amount_msat"], invoice["status"]) == ("CDR", bill, "OPEN")
    await stack.wallet.pay(invoice["bolt11"])

    async def closed() -> bool:
        receivable = await roaming.receivable_of(session_id)
        return receivable is not None and receivable.state is ReceivableState.PAID

    await until(closed, "the receivable is paid", within_s=30)
    [invoice] = by_id(await invoices(stack, token_c), session_id)
    assert invoice["status"] == "PAID"
    await stack.ledgers_balance()

    # 4. The partner settles by streaming from now on: the next session is invoiced by
    # interval; the first is paid, the second is left unpaid, and the session is stopped.
    changed = await ocpi.partners.set_flags(offer.partner.id, settlement="streaming", blocked=None)
    assert changed.settlement == "streaming"
    await stack.charger.unplug(1)
    await stack.charger.plug(1)
    await start_session(ocpi_emsp, "app-story-2", "story-2")
    second = next(s for s in await partner_sessions(stack) if s != session_id)
    await wait_state(stack, second, State.CHARGING)

    async def interval(seq: int) -> dict[str, Any] | None:
        found = by_id(await invoices(stack, token_c), f"{second}-{seq}")
        return found[0] if found else None

    async def invoiced(seq: int) -> bool:
        return await interval(seq) is not None

    await until(lambda: invoiced(1), "the first interval is invoiced", within_s=30)
    first = await interval(1)
    assert first is not None
    assert first["kind"] == "INTERVAL"
    await stack.wallet.pay(first["bolt11"])
    await until(lambda: invoiced(2), "the second interval is invoiced", within_s=30)
    await wait_state(stack, second, State.CLOSED)  # unpaid at its due time: stopped
    stopped = await stack.strom.sessions.get(second)
    assert stopped.stop_reason == StopReason.INTERVAL_UNPAID
    rows = await stack.strom.db.read(lambda c: session_invoices(c, second))
    status = {row.seq: row.status for row in rows}
    assert status[1] is InvoiceStatus.PAID
    assert status[2] is InvoiceStatus.OPEN or status[2] is InvoiceStatus.EXPIRED
    # Billed once: what the paid interval did not cover stays owed by the partner.
    receivable = await roaming.receivable_of(second)
    assert receivable is not None
    paid = sum(row.amount_msat for row in rows if row.status is InvoiceStatus.PAID)
    assert stopped.postpaid_msat == paid + receivable.amount_msat
    await stack.ledgers_balance()
