"""A charger id with a trailing newline (or any id outside the one rule) is refused over HTTP:
by the REST API with a 400 that states the rule, by the public pages with their 404 page."""

from __future__ import annotations

from tests.cockpit.conftest import CHARGER, Cockpit

PROFILE_BODY = {
    "name": "New charger",
    "location": {"lat": 48.1, "lon": 11.5},
    "connectors": [{"id": 1, "max_power_kw": 22}],
    "tariff": {"per_kwh_sat": 200},
}


async def test_the_api_refuses_an_id_with_a_trailing_newline_and_writes_no_file(
    cockpit: Cockpit,
) -> None:
    profiles = cockpit.stack.strom.config.paths.profiles
    before = sorted(p.name for p in profiles.iterdir())
    for method, path in [
        ("PUT", "/chargers/cp-new%0A"),
        ("PUT", "/chargers/..%2Fescape"),
        ("PUT", "/chargers/.hidden"),
        ("GET", f"/chargers/{CHARGER}%0A"),
        ("GET", f"/chargers/{CHARGER}%0A/tariff"),
        ("POST", "/pending-chargers/cp-new%0A/dismiss"),
    ]:
        answer = await cockpit.call(method, path, json=PROFILE_BODY if method == "PUT" else None)
        assert answer.status_code == 400, (method, path, answer.text)
        assert "expected 1-48 letters" in answer.json()["message"]
    sessions = await cockpit.call("GET", "/sessions", params={"charger": f"{CHARGER}\n"})
    assert sessions.status_code == 400
    assert "expected 1-48 letters" in sessions.json()["message"]
    assert sorted(p.name for p in profiles.iterdir()) == before
    # The same charger without the newline is found.
    assert (await cockpit.call("GET", f"/chargers/{CHARGER}")).status_code == 200


async def test_the_openapi_document_states_the_rule(cockpit: Cockpit) -> None:
    document = (await cockpit.http.get(f"{cockpit.api}/openapi.json")).json()
    [parameter] = document["paths"]["/chargers/{charger_id}"]["get"]["parameters"]
    assert parameter["schema"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$"


async def test_the_public_pages_answer_an_id_with_a_trailing_newline_with_their_404(
    cockpit: Cockpit,
) -> None:
    for path in (f"/c/{CHARGER}%0A", f"/c/{CHARGER}%0A/1", f"/lnurlp/{CHARGER}%0A/1"):
        answer = await cockpit.http.get(cockpit.base + path)
        assert answer.status_code == 404, path
        assert "There is no such charger here." in answer.text
    assert (await cockpit.http.get(f"{cockpit.base}/c/{CHARGER}")).status_code == 200
