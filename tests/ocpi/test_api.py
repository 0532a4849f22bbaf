"""The operator's OCPI API (/api/v1/ocpi/…) on a running Strom, with /ocpi/ mounted beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from ocpi_server.protocol import authorization_header
from tests.cockpit.conftest import Cockpit, start_cockpit
from tests.ocpi.conftest import Emsp, serve

OCPI_ON = {
    "STROM_OCPI__ENABLED": "true",
    "STROM_OCPI__COUNTRY_CODE": "DE",
    "STROM_OCPI__PARTY_ID": "STR",
    "STROM_OCPI__BUSINESS_NAME": "Strom API Test",
}


@pytest.fixture
async def ocpi_cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path, OCPI_ON):
        yield running


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path):
        yield running


@pytest.fixture
async def emsp() -> AsyncIterator[Emsp]:
    party = Emsp()
    runner: web.AppRunner
    runner, party.base = await serve(party.app())
    yield party
    await runner.cleanup()


async def test_with_ocpi_off_the_routes_answer_409_and_ocpi_is_not_served(
    cockpit: Cockpit,
) -> None:
    answer = await cockpit.call("GET", "/ocpi/partners")
    assert answer.status_code == 409
    assert answer.json()["error"] == "ocpi_disabled"
    assert (await cockpit.http.get(f"{cockpit.base}/ocpi/versions")).status_code == 404


async def test_an_offer_is_made_used_changed_logged_and_removed(ocpi_cockpit: Cockpit) -> None:
    c = ocpi_cockpit
    made = await c.call("POST", "/ocpi/partners", json={"name": "Roaming One"})
    assert made.status_code == 200, made.text
    offer = made.json()
    assert offer["versions_url"] == f"{c.base}/ocpi/versions"
    assert offer["partner"]["state"] == "offered"
    partner_id = offer["partner"]["id"]
    # The token A opens Strom's versions endpoint, served by the running Strom.
    versions = await c.http.get(
        offer["versions_url"], headers={"Authorization": authorization_header(offer["token_a"])}
    )
    assert versions.json()["data"][0]["version"] == "2.2.1"
    listed = (await c.call("GET", "/ocpi/partners")).json()["partners"]
    assert [p["id"] for p in listed] == [partner_id]
    assert "token" not in str(listed)
    changed = await c.call(
        "PATCH", f"/ocpi/partners/{partner_id}", json={"settlement": "streaming", "blocked": True}
    )
    assert (changed.json()["settlement"], changed.json()["blocked"]) == ("streaming", True)
    # A new token A replaces the old one for a partner not registered.
    rotated = (await c.call("POST", f"/ocpi/partners/{partner_id}/rotate")).json()
    assert rotated["token_a"] != offer["token_a"]
    old = await c.http.get(
        offer["versions_url"], headers={"Authorization": authorization_header(offer["token_a"])}
    )
    assert old.status_code == 401
    # The old token A names nobody any more: its 401 is logged without a partner.
    log = (await c.call("GET", "/ocpi/log")).json()["lines"]
    assert [(line["http_status"], line["partner_id"]) for line in log] == [
        (401, None),
        (200, partner_id),
    ]
    mine = (await c.call("GET", "/ocpi/log", params={"partner_id": str(partner_id)})).json()
    assert [line["http_status"] for line in mine["lines"]] == [200]
    assert (await c.call("DELETE", f"/ocpi/partners/{partner_id}")).json()["removed"]
    assert (await c.call("GET", f"/ocpi/partners/{partner_id}")).status_code == 404
    assert (await c.call("DELETE", f"/ocpi/partners/{partner_id}")).status_code == 404


async def test_read_tokens_may_look_but_not_change(ocpi_cockpit: Cockpit) -> None:
    c = ocpi_cockpit
    assert (await c.call("GET", "/ocpi/partners", token=c.read_token)).status_code == 200
    assert (await c.call("GET", "/ocpi/log", token=c.read_token)).status_code == 200
    refused = await c.call("POST", "/ocpi/partners", token=c.read_token, json={"name": "x"})
    assert refused.status_code == 403
    assert (await c.call("GET", "/ocpi/partners")).json()["partners"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "x", "versions_url": "https://e.example/versions"},  # no token
        {"name": "x", "token": "with space", "versions_url": "https://e.example/v"},
        {"name": "x", "extra": 1},
    ],
)
async def test_bad_bodies_are_400_and_make_nothing(ocpi_cockpit: Cockpit, body: dict) -> None:
    answer = await ocpi_cockpit.call("POST", "/ocpi/partners", json=body)
    assert answer.status_code == 400
    assert (await ocpi_cockpit.call("GET", "/ocpi/partners")).json()["partners"] == []


async def test_strom_registers_with_a_partner_through_the_api(
    ocpi_cockpit: Cockpit, emsp: Emsp
) -> None:
    c = ocpi_cockpit
    emsp.accepted = {"token-a-of-emsp"}
    made = await c.call(
        "POST",
        "/ocpi/partners",
        json={
            "name": "E",
            "versions_url": f"{emsp.base}/emsp/versions",
            "token": "token-a-of-emsp",
        },
    )
    assert made.status_code == 200, made.text
    partner = made.json()["partner"]
    assert (partner["state"], partner["party_id"]) == ("registered", "EMS")
    assert made.json()["token_a"] is None
    assert emsp.called_back == [200]  # the partner reached Strom's /ocpi/ with token B
    rotated = await c.call("POST", f"/ocpi/partners/{partner['id']}/rotate")
    assert rotated.status_code == 200
    assert emsp.seen[-1].method == "PUT"
    # A partner that refuses: 502 with the step, and nothing stored.
    emsp.accepted = set()
    failed = await c.call(
        "POST",
        "/ocpi/partners",
        json={"name": "F", "versions_url": f"{emsp.base}/emsp/versions", "token": "wrong"},
    )
    assert failed.status_code == 502
    assert "HTTP 401" in failed.json()["message"]
    assert len((await c.call("GET", "/ocpi/partners")).json()["partners"]) == 1
