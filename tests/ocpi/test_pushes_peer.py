"""Strom's pushes, received by the independent eMSP (py_ocpi in its own process).

The eMSP registers with a whole Strom (OCPI on, a simulated charger): it pulls the locations
(validated by py_ocpi's schemas), receives the PATCH of a status change, the PUTs of a
partner's session and exactly one CDR whose total is Strom's bill, also when it could not be
reached at the stop and the CDR effect was retried.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from ocpi_server.objects.money import MSAT_PER_BTC
from strom_storage.outbox import OutboxStore
from strom_storage.partner_cdrs import PARTNER_CDR
from strom_storage.schema import ocpi_partners, outbox
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.ocpi.strom_cpo import OCPI_ON, charge_for_partner, ocpi_of
from tests.peers.ocpi_emsp import OcpiEmspPeer
from tests.ports import unused_port
from tests.waits import until

pytestmark = pytest.mark.peer

CDRS_PATH = "/ocpi/emsp/2.2.1/cdrs"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    env = {**OCPI_ON, "STROM_OCPI__SESSION_UPDATE_INTERVAL_S": "0"}
    async with running_stack(tmp_path, env=env) as running:
        yield running


async def registered(stack: Stack, peer: OcpiEmspPeer) -> int:
    """The eMSP registers with Strom (Strom's offer); its partner id at Strom."""
    offer = await ocpi_of(stack).partners.offer("py_ocpi eMSP")
    await peer.register(offer.versions_url, offer.token_a)
    partner = await ocpi_of(stack).partners.partner(offer.partner.id)
    assert partner.state == "registered"
    assert {"locations:RECEIVER", "sessions:RECEIVER", "cdrs:RECEIVER"} <= set(partner.modules)
    return offer.partner.id


def received(objects: list[dict[str, Any]], object_id: str) -> list[dict[str, Any]]:
    return [o for o in objects if str(o.get("id", "")).lower() == object_id.lower()]


async def test_locations_pulled_and_a_status_change_pushed(
    stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    await registered(stack, ocpi_emsp)
    pulled = await ocpi_emsp.pull("locations")
    assert pulled["errors"] == []
    assert [o["id"] for o in pulled["objects"]] == [CHARGER]
    assert pulled["pages"][-1]["x_total_count"] == "1"

    await stack.charger.unplug(1)  # Preparing -> Available at the charger

    async def patched() -> bool:
        found = received((await ocpi_emsp.received("locations"))["objects"], CHARGER)
        return bool(found) and found[0]["evses"][0]["status"] == "AVAILABLE"

    await until(patched, "the eMSP has the EVSE AVAILABLE")
    errors = (await ocpi_emsp.received("locations"))["errors"]
    # py_ocpi can PATCH only a Location it stored: Strom then PUTs it whole.
    assert all(e["method"] == "PATCH" and e["status"] == 404 for e in errors), errors

    await stack.charger.plug(1)  # Available -> Preparing: OCPI CHARGING, PATCHed now

    async def charging() -> bool:
        found = received((await ocpi_emsp.received("locations"))["objects"], CHARGER)
        return found[0]["evses"][0]["status"] == "CHARGING"

    await until(charging, "the eMSP has the EVSE in use")


async def test_a_partner_session_is_pushed_and_its_cdr_arrives_once_with_the_bill(
    stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    partner_id = await registered(stack, ocpi_emsp)
    sent: list[tuple[str, str, dict[str, Any]]] = []

    async def on_cdr_sent(partner: str, session_id: str, cdr: dict[str, Any]) -> None:
        sent.append((partner, session_id, cdr))

    ocpi_of(stack).on_cdr_sent(on_cdr_sent)
    session_id = await charge_for_partner(stack, partner_id, "ref-peer-1")
    bill = (await stack.strom.sessions.get(session_id)).postpaid_msat
    assert bill > 0

    async def completed() -> bool:
        found = received((await ocpi_emsp.received("sessions"))["objects"], session_id)
        return bool(found) and found[0]["status"] == "COMPLETED"

    await until(completed, "the eMSP has the session COMPLETED")
    assert (await ocpi_emsp.received("sessions"))["errors"] == []

    async def cdr_in() -> bool:
        return bool(received((await ocpi_emsp.received("cdrs"))["objects"], session_id))

    await until(cdr_in, "the eMSP has the CDR")
    cdr = received((await ocpi_emsp.received("cdrs"))["objects"], session_id)[0]
    assert Decimal(str(cdr["total_cost"]["excl_vat"])) == Decimal(bill) / MSAT_PER_BTC
    assert cdr["currency"] == "BTC"
    await until(lambda: bool(sent), "the hook ran")
    assert [(p, s) for p, s, _ in sent] == [(str(partner_id), session_id)]
    assert sent[0][2]["total_cost"]["excl_vat"] == Decimal(bill) / MSAT_PER_BTC
    posts = [
        e
        for e in await ocpi_emsp.log()
        if e["direction"] == "in"
        and e["method"] == "POST"
        and e["path"].startswith(CDRS_PATH)
        and str(e["request_body"].get("id")) == session_id
    ]
    assert len(posts) == 1


async def test_a_cdr_the_partner_missed_is_retried_and_arrives_once(
    stack: Stack, ocpi_emsp: OcpiEmspPeer
) -> None:
    partner_id = await registered(stack, ocpi_emsp)
    db = stack.strom.db
    row = await db.read(
        lambda c: c.execute(
            select(ocpi_partners.c.endpoints).where(ocpi_partners.c.id == partner_id)
        ).one()
    )
    endpoints = list(row.endpoints)
    closed = f"http://127.0.0.1:{unused_port()}/cdrs"
    down = [{**e, "url": closed} if e["identifier"] == "cdrs" else e for e in endpoints]

    async def set_endpoints(value: list[dict[str, Any]]) -> None:
        query = (
            update(ocpi_partners).where(ocpi_partners.c.id == partner_id).values(endpoints=value)
        )
        await db.write(lambda c: c.execute(query))

    await set_endpoints(down)  # the partner is unreachable when the session stops
    session_id = await charge_for_partner(stack, partner_id, "ref-peer-2")
    key = f"{PARTNER_CDR}:{session_id}"

    async def effect() -> Any:
        return await db.read(
            lambda c: c.execute(select(outbox).where(outbox.c.idempotency_key == key)).one()
        )

    async def failed_once() -> bool:
        return (await effect()).attempts >= 1

    await until(failed_once, "the CDR effect failed against the closed port")
    assert (await effect()).state == "pending"
    assert not received((await ocpi_emsp.received("cdrs"))["objects"], session_id)

    await set_endpoints(endpoints)  # the partner is back
    await OutboxStore(db).run_now([PARTNER_CDR], stack.strom.clock.now())
    stack.strom.runner.wake()

    async def done() -> bool:
        return (await effect()).state == "done"

    await until(done, "the CDR effect is done")
    cdrs = received((await ocpi_emsp.received("cdrs"))["objects"], session_id)
    assert len(cdrs) == 1
    posts = [
        e
        for e in await ocpi_emsp.log()
        if e["direction"] == "in"
        and e["method"] == "POST"
        and e["path"].startswith(CDRS_PATH)
        and str(e["request_body"].get("id")) == session_id
    ]
    assert len(posts) == 1
