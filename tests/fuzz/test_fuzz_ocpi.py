"""Hostile OCPI request bodies against a running Strom: never a 5xx, an OCPI envelope always,
and a refused request changes nothing.

Strom runs whole (OCPI on, a simulated charger) with a registered partner (the small in-test
eMSP of ``tests/ocpi/strom_cpo.py``). Each case sends one request with that partner's token to
one of the endpoints that take a body (credentials, commands, tokens) or a query (the lists),
built from a valid body with one rule broken (a member dropped, a value replaced by a hostile
one, an unknown member added) or from arbitrary JSON. The answer must be an OCPI envelope with
a status code; a request that is not accepted (status code other than 1000) must leave the
sessions, tokens, commands and partners as they were; and after the campaign the partner
still lists the locations.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ocpi_server.protocol import authorization_header
from strom_storage.schema import (
    ocpi_partners,
    roaming_commands,
    roaming_tokens,
    sessions,
)
from tests.e2e.conftest import CHARGER
from tests.fuzz.conftest import CASES, examples
from tests.ocpi.strom_cpo import Cpo, strom_cpo

TOKEN = {
    "country_code": "NL",
    "party_id": "EMS",
    "uid": "fuzz-0001",
    "type": "RFID",
    "contract_id": "NL-EMS-C00000001",
    "issuer": "Example eMSP",
    "valid": True,
    "whitelist": "ALLOWED",
    "last_updated": "2027-01-01T00:00:00Z",
}
START = {
    "response_url": "http://127.0.0.1:1/emsp/commands/START_SESSION/1",
    "token": TOKEN,
    "location_id": CHARGER,
    "evse_uid": f"{CHARGER}-1",
    "connector_id": "1",
    "authorization_reference": "fuzz-ref-1",
}
STOP = {"response_url": "http://127.0.0.1:1/emsp/commands/STOP_SESSION/1", "session_id": "x"}
UNLOCK = {
    "response_url": "http://127.0.0.1:1/emsp/commands/UNLOCK_CONNECTOR/1",
    "location_id": CHARGER,
    "evse_uid": f"{CHARGER}-1",
    "connector_id": "1",
}
RESERVE = {
    "response_url": "http://127.0.0.1:1/emsp/commands/RESERVE_NOW/1",
    "token": TOKEN,
    "expiry_date": "2027-01-01T01:00:00Z",
    "reservation_id": "fuzz-res-1",
    "location_id": CHARGER,
    "evse_uid": f"{CHARGER}-1",
}
CANCEL = {
    "response_url": "http://127.0.0.1:1/emsp/commands/CANCEL_RESERVATION/1",
    "reservation_id": "fuzz-res-1",
}
CREDENTIALS = {
    "token": "fuzz-token-b",
    "url": "http://127.0.0.1:1/emsp/versions",
    "roles": [
        {
            "role": "EMSP",
            "party_id": "EMS",
            "country_code": "NL",
            "business_details": {"name": "Example eMSP"},
        }
    ],
}
# (method, path below /ocpi/2.2.1, a valid body)
TARGETS: list[tuple[str, str, Any]] = [
    ("POST", "/commands/START_SESSION", START),
    ("POST", "/commands/STOP_SESSION", STOP),
    ("POST", "/commands/UNLOCK_CONNECTOR", UNLOCK),
    ("POST", "/commands/RESERVE_NOW", RESERVE),
    ("POST", "/commands/CANCEL_RESERVATION", CANCEL),
    ("PUT", "/tokens/NL/EMS/fuzz-0001?type=RFID", TOKEN),
    ("PATCH", "/tokens/NL/EMS/fuzz-0001?type=RFID", {"valid": False, "last_updated": "x"}),
    ("PUT", "/credentials", CREDENTIALS),
    ("POST", "/credentials", CREDENTIALS),
]
LISTS = ["/locations", "/tariffs", "/sessions", "/cdrs", "/strom-invoices"]

hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
    st.sampled_from(["", "a" * 5000, "\x00", "2027-13-45T99:99:99Z", "../../x", "%00", "[]"]),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=15,
)


@st.composite
def broken(draw: st.DrawFn, body: Any) -> Any:
    """The valid ``body`` with one rule broken, or arbitrary JSON."""
    how = draw(st.sampled_from(["drop", "replace", "extra", "nested", "any"]))
    if how == "any" or not isinstance(body, dict):
        return draw(json_values)
    changed = copy.deepcopy(body)
    key = draw(st.sampled_from(sorted(changed)))
    if how == "drop":
        del changed[key]
    elif how == "replace":
        changed[key] = draw(hostile)
    elif how == "extra":
        changed[draw(st.text(min_size=1, max_size=12))] = draw(hostile)
    else:
        inner = next((k for k in sorted(changed) if isinstance(changed[k], dict)), None)
        if inner is None:
            changed[key] = draw(hostile)
        else:
            field = draw(st.sampled_from(sorted(changed[inner])))
            changed[inner][field] = draw(hostile)
    return changed


@pytest.fixture
async def cpo(tmp_path: Path) -> AsyncIterator[Cpo]:
    async with strom_cpo(tmp_path) as running:
        yield running


async def snapshot(cpo: Cpo) -> tuple[Any, ...]:
    # A command that is taken is a row of roaming_commands (its effects follow from it, some of
    # them later: an earlier accepted command's result is queued when the charger answers, so
    # the outbox is not compared); a start is a session; a token is a row.
    tables = (sessions, roaming_tokens, roaming_commands)
    async with cpo.stack.strom.db.reader() as conn:
        counts = [await conn.scalar(select(func.count()).select_from(t)) for t in tables]
        partners = (await conn.execute(select(ocpi_partners).order_by(ocpi_partners.c.id))).all()
        tokens = (await conn.execute(select(roaming_tokens))).all()
    return (*counts, [tuple(p) for p in partners], sorted(tuple(t) for t in tokens))


def envelope(answer: Any) -> dict[str, Any]:
    body = orjson.loads(answer.content)
    assert isinstance(body, dict), answer.text[:300]
    assert isinstance(body.get("status_code"), int), body
    assert isinstance(body.get("timestamp"), str), body
    return body


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), target=st.sampled_from(TARGETS))
async def test_hostile_ocpi_bodies_are_refused_clearly_and_change_nothing(
    cpo: Cpo, data: st.DataObject, target: tuple[str, str, Any]
) -> None:
    CASES["OCPI request bodies (live server)"] += 1
    method, path, valid = target
    body = data.draw(broken(valid))
    before = await snapshot(cpo)
    answer = await cpo.stack.http.request(
        method,
        f"{cpo.base}{path}",
        content=json.dumps(body).encode(),
        headers={
            "Authorization": authorization_header(cpo.token),
            "Content-Type": "application/json",
        },
    )
    assert answer.status_code < 500, (method, path, body, answer.text[:300])
    if envelope(answer)["status_code"] != 1000:
        assert await snapshot(cpo) == before, (method, path, body, answer.text[:300])


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    path=st.sampled_from(LISTS),
    params=st.dictionaries(
        st.sampled_from(["offset", "limit", "date_from", "date_to"]),
        st.one_of(
            st.text(max_size=30),
            st.integers(min_value=-(2**40), max_value=2**40).map(str),
            st.sampled_from(["2027-01-01T00:00:00Z", "2027-01-01", "NaN", "1e9", ""]),
        ),
        max_size=4,
    ),
)
async def test_hostile_list_queries_get_an_envelope_never_a_crash(
    cpo: Cpo, path: str, params: dict[str, str]
) -> None:
    CASES["OCPI list queries (live server)"] += 1
    answer = await cpo.get(path, **params)
    assert answer.status_code < 500, (path, params, answer.text[:300])
    body = envelope(answer)
    if body["status_code"] == 1000:
        assert isinstance(body["data"], list), body
    listed = await cpo.get("/locations")  # and the partner is still served
    assert envelope(listed)["status_code"] == 1000
