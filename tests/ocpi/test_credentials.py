"""The credentials exchange over real HTTP on 127.0.0.1, both ways, and the auth around it."""

from __future__ import annotations

from typing import Any

import pytest

from ocpi_server.protocol import InterfaceRole, StatusCode
from ocpi_server.server import Access, Answer, Module, OcpiRequest
from strom_core.ports.ocpi import OcpiOffer, PartnerUnreachable
from strom_storage.sealing import SEALED_PREFIX
from tests.ocpi.conftest import Cpo


async def register_emsp(cpo: Cpo) -> tuple[int, str]:
    """The eMSP registers with Strom: the partner's id and the token C it got."""
    offer = await cpo.partners.offer("Example eMSP")
    cpo.emsp.accepted = {"token-b-of-emsp"}
    answer = await cpo.call(
        "POST",
        "/ocpi/2.2.1/credentials",
        offer.token_a,
        json=cpo.emsp.credentials("token-b-of-emsp"),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["status_code"] == 1000
    return offer.partner.id, answer.json()["data"]["token"]


async def test_versions_and_details_list_the_served_modules_with_the_cpos_roles(cpo: Cpo) -> None:
    offer = await cpo.partners.offer("P")
    assert offer.versions_url == f"{cpo.base}/ocpi/versions"
    versions = await cpo.call("GET", offer.versions_url, offer.token_a)
    assert versions.json()["data"] == [{"version": "2.2.1", "url": f"{cpo.base}/ocpi/2.2.1"}]
    assert versions.json()["timestamp"].endswith("Z")
    details = (await cpo.call("GET", "/ocpi/2.2.1", offer.token_a)).json()["data"]
    assert details["version"] == "2.2.1"
    assert {(e["identifier"], e["role"]) for e in details["endpoints"]} == {
        ("credentials", "SENDER"),
        ("credentials", "RECEIVER"),
    }
    # A module registered later is listed (the list is data, not code).
    cpo.server.register(Module("locations", (InterfaceRole.SENDER,), {}))
    details = (await cpo.call("GET", "/ocpi/2.2.1", offer.token_a)).json()["data"]
    assert ("locations", "SENDER") in {(e["identifier"], e["role"]) for e in details["endpoints"]}


async def test_a_partner_registers_with_token_a_and_then_uses_only_token_c(cpo: Cpo) -> None:
    offer = await cpo.partners.offer("Example eMSP")
    cpo.emsp.accepted = {"token-b-of-emsp"}
    answer = await cpo.call(
        "POST",
        "/ocpi/2.2.1/credentials",
        offer.token_a,
        json=cpo.emsp.credentials("token-b-of-emsp"),
        headers={"X-Request-ID": "req-1", "X-Correlation-ID": "corr-1"},
    )
    assert answer.status_code == 200
    assert (answer.headers["X-Request-ID"], answer.headers["X-Correlation-ID"]) == (
        "req-1",
        "corr-1",
    )
    ours = answer.json()["data"]
    assert ours["url"] == f"{cpo.base}/ocpi/versions"
    assert ours["roles"] == [
        {
            "role": "CPO",
            "business_details": {"name": "Strom Test CPO"},
            "party_id": "STR",
            "country_code": "DE",
        }
    ]
    token_c = ours["token"]
    assert token_c != offer.token_a
    # Strom fetched the eMSP's versions and details with token B, base64-encoded.
    fetched = [r.path for r in cpo.emsp.seen]
    assert fetched == ["/emsp/versions", "/emsp/2.2.1"]
    assert all(r.headers["Authorization"] != "Token token-b-of-emsp" for r in cpo.emsp.seen)
    assert all(r.headers["X-Correlation-ID"] == "corr-1" for r in cpo.emsp.seen)
    partner = await cpo.partners.partner(offer.partner.id)
    assert (partner.state, partner.country_code, partner.party_id) == ("registered", "NL", "EMS")
    assert partner.version == "2.2.1"
    assert "tokens:SENDER" in partner.modules
    row = await cpo.store.get(offer.partner.id)
    assert row is not None
    assert row.their_token is not None
    assert row.their_token.startswith(SEALED_PREFIX)  # token B sealed, not in the clear
    assert "token-b-of-emsp" not in repr(row)
    assert token_c not in repr(row)
    assert offer.token_a not in repr(row)
    # Token A is thrown away; token C works, and GET returns Strom's credentials with it.
    assert (await cpo.call("GET", "/ocpi/versions", offer.token_a)).status_code == 401
    got = await cpo.call("GET", "/ocpi/2.2.1/credentials", token_c)
    assert got.json()["data"]["token"] == token_c


async def test_post_when_registered_and_put_or_delete_when_not_are_405(cpo: Cpo) -> None:
    offer = await cpo.partners.offer("P")
    for method in ("PUT", "DELETE", "GET"):
        refused = await cpo.call(method, "/ocpi/2.2.1/credentials", offer.token_a, json={})
        assert refused.status_code == 405, method
        assert refused.json()["status_code"] == 2000
    _, token_c = await register_emsp(cpo)
    again = await cpo.call(
        "POST", "/ocpi/2.2.1/credentials", token_c, json=cpo.emsp.credentials("other")
    )
    assert again.status_code == 405


async def test_a_put_rotates_token_c_and_the_old_one_is_refused(cpo: Cpo) -> None:
    partner_id, token_c = await register_emsp(cpo)
    cpo.emsp.accepted = {"token-b2"}
    rotated = await cpo.call(
        "PUT", "/ocpi/2.2.1/credentials", token_c, json=cpo.emsp.credentials("token-b2")
    )
    assert rotated.status_code == 200, rotated.text
    token_c2 = rotated.json()["data"]["token"]
    assert token_c2 != token_c
    old = await cpo.call("GET", "/ocpi/2.2.1/credentials", token_c)
    assert old.status_code == 401
    assert old.json()["status_code"] == 2000
    assert (await cpo.call("GET", "/ocpi/2.2.1/credentials", token_c2)).status_code == 200
    assert (await cpo.partners.partner(partner_id)).state == "registered"


async def test_a_delete_unregisters_and_the_token_is_refused_after(cpo: Cpo) -> None:
    partner_id, token_c = await register_emsp(cpo)
    gone = await cpo.call("DELETE", "/ocpi/2.2.1/credentials", token_c)
    assert gone.status_code == 200
    assert gone.json()["status_code"] == 1000
    assert "data" not in gone.json()
    assert (await cpo.call("GET", "/ocpi/versions", token_c)).status_code == 401
    assert (await cpo.partners.partner(partner_id)).state == "unregistered"


@pytest.mark.parametrize("header", [None, "Token bm9wZQ==", "Bearer x", "Token"])
async def test_a_missing_or_unknown_token_is_401_with_status_2000_and_logged(
    cpo: Cpo, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    answer = await cpo.http.get(f"{cpo.base}/ocpi/versions", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["status_code"] == 2000
    assert answer.json()["status_message"]
    assert answer.headers["X-Request-ID"]
    (line,) = await cpo.partners.log(10)
    assert (line.direction, line.http_status, line.status_code, line.partner_id) == (
        "in",
        401,
        2000,
        None,
    )


async def test_token_a_is_refused_on_modules_but_credentials_and_blocked_partners_get_403(
    cpo: Cpo,
) -> None:
    async def hello(call: OcpiRequest) -> Answer:
        return Answer({"partner": call.partner.id})

    cpo.server.register(
        Module("locations", (InterfaceRole.SENDER,), {"GET": hello}, Access.REGISTERED)
    )
    offer = await cpo.partners.offer("P")
    early = await cpo.call("GET", "/ocpi/2.2.1/locations", offer.token_a)
    assert early.status_code == 401
    partner_id, token_c = await register_emsp(cpo)
    served = await cpo.call("GET", "/ocpi/2.2.1/locations", token_c)
    assert served.json()["data"] == {"partner": partner_id}
    missing = await cpo.call("GET", "/ocpi/2.2.1/nothing", token_c)
    assert (missing.status_code, missing.json()["status_code"]) == (404, 2000)
    assert (await cpo.call("GET", "/ocpi/2.2.1/nothing", None)).status_code == 401
    wrong_method = await cpo.call("DELETE", "/ocpi/2.2.1/locations", token_c)
    assert wrong_method.status_code == 405
    await cpo.partners.set_flags(partner_id, settlement=None, blocked=True)
    blocked = await cpo.call("GET", "/ocpi/2.2.1/locations", token_c)
    assert blocked.status_code == 403
    assert (await cpo.call("GET", "/ocpi/2.2.1/credentials", token_c)).status_code == 200


async def _refused_post(
    cpo: Cpo, body: Any, *, raw: bytes | None = None
) -> tuple[int, dict[str, Any], OcpiOffer]:
    offer = await cpo.partners.offer("P")
    headers = {"Content-Type": "application/json"}
    if raw is not None:
        answer = await cpo.call(
            "POST", "/ocpi/2.2.1/credentials", offer.token_a, content=raw, headers=headers
        )
    else:
        answer = await cpo.call("POST", "/ocpi/2.2.1/credentials", offer.token_a, json=body)
    # Nothing was stored: the partner is still offered, and token A still works.
    partner = await cpo.partners.partner(offer.partner.id)
    assert partner.state == "offered"
    assert partner.versions_url is None
    assert (await cpo.call("GET", "/ocpi/versions", offer.token_a)).status_code == 200
    return answer.status_code, answer.json(), offer


async def test_malformed_json_is_http_400_and_changes_nothing(cpo: Cpo) -> None:
    http, body, _ = await _refused_post(cpo, None, raw=b'{"token": ')
    assert (http, body["status_code"]) == (400, 2000)


async def test_missing_fields_are_2001_naming_them(cpo: Cpo) -> None:
    http, body, _ = await _refused_post(cpo, {"token": "abc"})
    assert (http, body["status_code"]) == (200, 2001)
    assert "url" in body["status_message"]
    assert "roles" in body["status_message"]


async def test_a_partner_without_2_2_1_is_3002(cpo: Cpo) -> None:
    cpo.emsp.accepted = {"b"}
    cpo.emsp.versions = ["2.1.1"]
    _http, body, _ = await _refused_post(cpo, cpo.emsp.credentials("b"))
    assert body["status_code"] == 3002
    assert "2.1.1" in body["status_message"]


async def test_a_partner_whose_api_refuses_token_b_is_3001(cpo: Cpo) -> None:
    cpo.emsp.accepted = {"something-else"}
    _, body, offer = await _refused_post(cpo, cpo.emsp.credentials("b"))
    assert body["status_code"] == 3001
    assert "HTTP 401" in body["status_message"]
    lines = await cpo.partners.log(10, offer.partner.id)
    out = [line for line in lines if line.direction == "out"]
    assert [(line.url, line.http_status) for line in out] == [
        (f"{cpo.emsp.base}/emsp/versions", 401)
    ]


async def test_strom_registers_with_a_partner_rotates_and_unregisters(cpo: Cpo) -> None:
    cpo.emsp.accepted = {"token-a-from-emsp"}
    partner = await cpo.partners.register_with(
        f"{cpo.emsp.base}/emsp/versions", "token-a-from-emsp", "Example eMSP"
    )
    assert (partner.state, partner.party_id, partner.version) == ("registered", "EMS", "2.2.1")
    # The eMSP called Strom back with token B while handling the POST, and was let in.
    assert cpo.emsp.called_back == [200]
    (posted,) = cpo.emsp.bodies
    token_b = posted["token"]
    assert posted["url"] == f"{cpo.base}/ocpi/versions"
    assert (await cpo.call("GET", "/ocpi/2.2.1/credentials", token_b)).status_code == 200
    # Strom's own requests carried the token base64-encoded and fresh request ids.
    post = cpo.emsp.seen[-1]
    assert post.method == "POST"
    assert post.headers["Authorization"].startswith("Token ")
    assert post.headers["Authorization"] != "Token token-a-from-emsp"
    ids = {r.headers["X-Request-ID"] for r in cpo.emsp.seen}
    assert len(ids) == len(cpo.emsp.seen)
    # Rotation by Strom: a PUT with a new token B; the old one is refused after.
    rotated = await cpo.partners.rotate(partner.id)
    assert not isinstance(rotated, OcpiOffer)
    assert cpo.emsp.seen[-1].method == "PUT"
    token_b2 = cpo.emsp.bodies[-1]["token"]
    assert (await cpo.call("GET", "/ocpi/2.2.1/credentials", token_b)).status_code == 401
    assert (await cpo.call("GET", "/ocpi/2.2.1/credentials", token_b2)).status_code == 200
    await cpo.partners.remove(partner.id)
    assert cpo.emsp.seen[-1].method == "DELETE"
    assert cpo.emsp.strom_token is None
    assert (await cpo.call("GET", "/ocpi/versions", token_b2)).status_code == 401
    assert await cpo.partners.partners() == []
    directions = {line.direction for line in await cpo.partners.log(100)}
    assert directions == {"in", "out"}


async def test_a_failed_registration_with_a_partner_stores_nothing(cpo: Cpo) -> None:
    cpo.emsp.accepted = {"right"}
    with pytest.raises(PartnerUnreachable, match="HTTP 401"):
        await cpo.partners.register_with(f"{cpo.emsp.base}/emsp/versions", "wrong", "E")
    assert await cpo.partners.partners() == []
    cpo.emsp.versions = ["2.1.1"]
    with pytest.raises(PartnerUnreachable, match=r"2\.2\.1"):
        await cpo.partners.register_with(f"{cpo.emsp.base}/emsp/versions", "right", "E")
    with pytest.raises(PartnerUnreachable, match="no answer"):
        await cpo.partners.register_with("http://127.0.0.1:1/versions", "right", "E")
    # A URL the HTTP client cannot even build a request for is the partner's fault too.
    with pytest.raises(PartnerUnreachable, match="not a usable URL"):
        await cpo.partners.register_with("http://127.0.0.1:1/\x1cversions", "right", "E")
    assert await cpo.partners.partners() == []


async def test_log_rows_mask_tokens_in_bodies(cpo: Cpo) -> None:
    await register_emsp(cpo)
    for line in await cpo.partners.log(100):
        assert "token-b-of-emsp" not in line.excerpt
    assert StatusCode.SUCCESS in {line.status_code for line in await cpo.partners.log(100)}
