"""The test eMSP works: proven against a CPO built from the same library (py_ocpi).

Strom's OCPI tests trust the eMSP peer to register, pull, receive pushes, send commands and
serve tokens the way an independent eMSP would. These tests show each of those against
``ocpi_cpo_app.py`` (a py_ocpi CPO), so a failure in Strom's suite points at Strom.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import peer_missing
from tests.peers.ocpi import PeerUnavailable
from tests.peers.ocpi_emsp import ControlError, OcpiCpoPeer, OcpiEmspPeer
from tests.waits import until

pytestmark = pytest.mark.peer

LOCATIONS = 5  # more than one page of 2


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def _start(kind: type[OcpiEmspPeer] | type[OcpiCpoPeer], workdir: Path) -> Any:
    try:
        if kind is OcpiCpoPeer:
            return OcpiCpoPeer.start(workdir, locations=LOCATIONS)
        return OcpiEmspPeer.start(workdir)
    except PeerUnavailable as exc:
        peer_missing(f"the OCPI peer (extrawest-ocpi) is not available: {exc}")
        raise


@pytest.fixture(scope="module")
def emsp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OcpiEmspPeer]:
    peer: OcpiEmspPeer = _start(OcpiEmspPeer, tmp_path_factory.mktemp("emsp"))
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
def cpo(tmp_path: Path) -> Iterator[OcpiCpoPeer]:
    """A fresh py_ocpi CPO for each test: its registration state is the test's own."""
    peer: OcpiCpoPeer = _start(OcpiCpoPeer, tmp_path)
    try:
        yield peer
    finally:
        peer.stop()


@pytest.fixture
async def registered(emsp: OcpiEmspPeer, cpo: OcpiCpoPeer) -> dict[str, Any]:
    """The eMSP registered with the CPO (the eMSP started it); the exchanged tokens."""
    await cpo.offer("token-a-for-emsp")
    return await emsp.register(cpo.versions_url, "token-a-for-emsp")


async def test_emsp_registration_exchanges_tokens_and_each_side_uses_the_others(
    emsp: OcpiEmspPeer, cpo: OcpiCpoPeer
) -> None:
    await cpo.offer("token-a-1")
    since = len(await emsp.log())

    tokens = await emsp.register(cpo.versions_url, "token-a-1")

    partner = (await cpo.partner())["emsp"]
    assert partner["token"] == tokens["token_b"]
    assert {e["identifier"] for e in partner["endpoints"]} >= {"locations", "commands", "tokens"}
    assert tokens["token_c"] in (await cpo.partner())["inbound_tokens"]
    log = await emsp.log(since)
    sent = [e for e in log if e["direction"] == "out"]
    assert [(e["method"], e["status"]) for e in sent] == [
        ("GET", 200),
        ("GET", 200),
        ("POST", 200),
    ]
    assert all(
        e["request_headers"]["authorization"] == _auth("token-a-1")["Authorization"] for e in sent
    )
    assert all("x-request-id" in e["request_headers"] for e in sent)
    callbacks = [e for e in log if e["direction"] == "in"]
    assert [e["path"] for e in callbacks] == ["/ocpi/versions", "/ocpi/2.2.1/details"]
    assert all(
        e["request_headers"]["authorization"] == _auth(tokens["token_b"])["Authorization"]
        for e in callbacks
    )
    # Token A was for the registration only.
    with pytest.raises(ControlError) as refused:
        await emsp.register(cpo.versions_url, "token-a-1")
    assert refused.value.status == 502


async def test_cpo_started_registration_needs_the_offered_token_a(
    emsp: OcpiEmspPeer, cpo: OcpiCpoPeer
) -> None:
    with pytest.raises(ControlError):
        await cpo.register(emsp.versions_url, "never-offered")

    await emsp.offer("token-a-2")
    tokens = await cpo.register(emsp.versions_url, "token-a-2")

    partner = await emsp.partner()
    assert partner["cpo"]["token"] == tokens["token_b"]
    assert partner["cpo"]["started_by"] == "CPO"
    assert tokens["token_c"] in partner["inbound_tokens"]
    pulled = await emsp.pull("tariffs")
    assert [t["id"].upper() for t in pulled["objects"]] == ["T1"]


async def test_pull_follows_the_next_links_to_the_last_page(
    emsp: OcpiEmspPeer, registered: dict[str, Any]
) -> None:
    pulled = await emsp.pull("locations", limit=2)

    assert pulled["errors"] == []
    assert [p["count"] for p in pulled["pages"]] == [2, 2, 1]
    assert {p["x_total_count"] for p in pulled["pages"]} == {str(LOCATIONS)}
    assert {p["x_limit"] for p in pulled["pages"]} == {"2"}
    assert "offset=2" in pulled["pages"][1]["url"]
    assert not pulled["pages"][-1]["link"]
    ids = [loc["id"].upper() for loc in pulled["objects"]]
    assert ids == [f"LOC{n}" for n in range(1, LOCATIONS + 1)]


async def test_pushed_location_and_evse_patch_are_stored_as_applied(
    emsp: OcpiEmspPeer, cpo: OcpiCpoPeer, registered: dict[str, Any]
) -> None:
    await cpo.set_evse_status("LOC1", "EVSE1", "CHARGING")
    async with httpx.AsyncClient(timeout=30.0) as client:
        pushed = await client.post(
            f"{cpo.url}/push/2.2.1",
            headers=_auth(registered["token_c"]),
            json={
                "module_id": "locations",
                "object_id": "LOC1",
                "receivers": [
                    {
                        "endpoints_url": f"{emsp.url}/ocpi/2.2.1/details",
                        "auth_token": registered["token_b"],
                    }
                ],
            },
        )
    assert pushed.status_code == 200, pushed.text

    def evse_status(received: dict[str, Any]) -> str:
        (location,) = [o for o in received["objects"] if o["id"] == "loc1"]
        return str(location["evses"][0]["status"])

    assert evse_status(await emsp.received("locations")) == "CHARGING"

    patched = await cpo.patch_evse("LOC1", "EVSE1", "AVAILABLE")

    assert patched["status"] == 200
    received = await emsp.received("locations")
    assert evse_status(received) == "AVAILABLE"
    assert received["errors"] == []


async def test_a_push_that_does_not_validate_is_an_error_and_changes_nothing(
    emsp: OcpiEmspPeer, cpo: OcpiCpoPeer, registered: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.put(
            f"{emsp.url}/ocpi/emsp/2.2.1/locations/NL/CPO/LOC9",
            headers=_auth(registered["token_b"]),
            json={"id": "LOC9", "status": "NOT_A_LOCATION"},
        )

    assert response.status_code == 422
    received = await emsp.received("locations")
    assert not [o for o in received["objects"] if o["id"] == "loc9"]
    (error,) = [e for e in received["errors"] if e["path"].endswith("/LOC9")]
    assert error["status"] == 422
    assert error["response_body"]["detail"]  # py_ocpi's validation errors


async def test_start_session_gets_a_command_response_then_the_async_result(
    emsp: OcpiEmspPeer, registered: dict[str, Any]
) -> None:
    token = {
        "country_code": "NL",
        "party_id": "EMP",
        "uid": "RFID0001",
        "type": "RFID",
        "contract_id": "NL-EMP-C00001",
        "issuer": "Test eMSP",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2025-01-01T00:00:00Z",
    }

    sent = await emsp.command(
        "START_SESSION", {"token": token, "location_id": "LOC1", "evse_uid": "EVSE1"}
    )

    assert sent["status"] == 200
    assert sent["errors"] == []
    assert sent["body"]["data"][0]["result"] == "ACCEPTED"
    assert sent["response_url"].endswith(sent["uid"])

    async def result_arrived() -> bool:
        return any(r["uid"] == sent["uid"] for r in await emsp.command_results())

    await until(result_arrived, "the CommandResult at the eMSP's response_url")
    (result,) = [r for r in await emsp.command_results() if r["uid"] == sent["uid"]]
    assert result["known"] is True
    assert result["result"]["result"] == "ACCEPTED"


async def test_a_command_the_schema_refuses_is_not_sent(
    emsp: OcpiEmspPeer, registered: dict[str, Any]
) -> None:
    def commands_sent(log: list[dict[str, Any]]) -> int:
        return sum(1 for e in log if "/commands/" in e.get("url", ""))

    before = commands_sent(await emsp.log())

    with pytest.raises(ControlError) as refused:
        await emsp.command("START_SESSION", {"location_id": "LOC1"})  # no token

    assert refused.value.status == 400
    assert commands_sent(await emsp.log()) == before


async def test_tokens_are_served_page_by_page_and_authorized(
    emsp: OcpiEmspPeer, registered: dict[str, Any]
) -> None:
    tokens = [
        {
            "country_code": "NL",
            "party_id": "EMP",
            "uid": f"RFID000{n}",
            "type": "RFID",
            "contract_id": f"NL-EMP-C0000{n}",
            "issuer": "Test eMSP",
            "valid": n != 3,
            "whitelist": "ALLOWED",
            "last_updated": f"2025-01-0{n}T00:00:00Z",
        }
        for n in (1, 2, 3)
    ]
    await emsp.set_tokens(tokens)
    headers = _auth(registered["token_b"])  # the token the CPO uses with the eMSP
    url: str | None = f"{emsp.url}/ocpi/emsp/2.2.1/tokens/?limit=2"
    uids: list[str] = []
    async with httpx.AsyncClient(timeout=30.0) as client:
        while url:
            page = await client.get(url, headers=headers)
            assert page.status_code == 200
            assert page.headers["x-total-count"] == "3"
            uids += [t["uid"].upper() for t in page.json()["data"]]
            link = page.headers.get("link", "")
            url = link[1 : link.index(">")] if link else None
        allowed = await client.post(
            f"{emsp.url}/ocpi/emsp/2.2.1/tokens/RFID0001/authorize", headers=headers
        )
        blocked = await client.post(
            f"{emsp.url}/ocpi/emsp/2.2.1/tokens/RFID0003/authorize", headers=headers
        )
        unknown = await client.post(
            f"{emsp.url}/ocpi/emsp/2.2.1/tokens/NOSUCH/authorize", headers=headers
        )

    assert uids == ["RFID0001", "RFID0002", "RFID0003"]
    assert allowed.json()["data"][0]["allowed"] == "ALLOWED"
    assert blocked.json()["data"][0]["allowed"] == "BLOCKED"
    assert unknown.status_code == 404


async def test_rotate_replaces_both_tokens_and_unregister_ends_the_partnership(
    emsp: OcpiEmspPeer, cpo: OcpiCpoPeer, registered: dict[str, Any]
) -> None:
    rotated = await emsp.rotate()

    partner = await cpo.partner()
    assert partner["emsp"]["token"] == rotated["token_b"] != registered["token_b"]
    assert rotated["token_c"] in partner["inbound_tokens"]
    assert registered["token_c"] not in partner["inbound_tokens"]
    async with httpx.AsyncClient(timeout=30.0) as client:
        old = await client.get(
            f"{emsp.url}/ocpi/emsp/2.2.1/credentials/", headers=_auth(registered["token_b"])
        )
    assert old.status_code in (401, 403)  # py_ocpi answers 403 (the spec says 401)

    gone = await emsp.unregister()

    assert gone["status"] == 200
    assert (await cpo.partner())["emsp"] is None
    assert (await emsp.partner())["cpo"] is None
