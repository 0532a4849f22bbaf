"""The operator API under hostile input: schemathesis from the OpenAPI document, and mutated
NIP-98 headers (pure checker and live server).

Schemathesis generates requests from ``/api/v1/openapi.json`` (valid and invalid ones, every
operation, plus stateful sequences) and checks that no answer is a server error and that every
answer matches the document (status codes, content types, schemas, headers, refused invalid
input). Its ``positive_data_acceptance`` check is left out: some schema-valid inputs are
refused on purpose (a minimum prepay above the maximum, a cursor this API never issued).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import shutil
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from strom_nostr.event import sign_event
from strom_nostr.http_auth import HttpAuthError, check_http_auth, http_auth_tags
from strom_storage.schema import audit_log
from tests.cockpit.conftest import ADMIN_SECRET, CHARGER, Cockpit, start_cockpit
from tests.fuzz.conftest import CASES, examples

URL = "https://charge.example.org/api/v1/chargers/cp/tariff"
BODY = b'{"per_kwh_sat":300}'
NOW = 1_800_000_000


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path):
        yield running


def schemathesis_cli() -> str:
    found = shutil.which("st", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is a development dependency (scripts/setup installs it)"
    return found


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_schemathesis_finds_no_server_error_and_no_mismatch_with_the_document(
    cockpit: Cockpit, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        schemathesis_cli(),
        "run",
        f"{cockpit.api}/openapi.json",
        "--header",
        f"Authorization: Bearer {cockpit.admin_token}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(examples(25)),
        "--seed",
        "20261124",
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text[-6000:]
    generated = re.search(r"(\d+) generated", text)
    assert generated, text[-2000:]
    CASES["REST API (schemathesis)"] += int(generated.group(1))
    # The server is still whole: the charger page and the API answer.
    assert (await cockpit.call("GET", "/me")).status_code == 200


# --- NIP-98 headers ----------------------------------------------------------------------------


def header_of(event_json: bytes) -> str:
    return "Nostr " + base64.b64encode(event_json).decode()


def valid_event() -> dict[str, object]:
    return sign_event(ADMIN_SECRET, 27235, http_auth_tags(URL, "PUT", BODY), "", NOW).to_dict()


mutations = st.one_of(
    st.tuples(st.just("created_at"), st.integers(min_value=-(2**40), max_value=2**40)),
    st.tuples(st.just("kind"), st.integers(min_value=0, max_value=70_000)),
    st.tuples(st.just("content"), st.text(max_size=40)),
    st.tuples(
        st.just("tags"),
        st.lists(st.lists(st.text(max_size=30), min_size=0, max_size=3), max_size=5),
    ),
    st.tuples(st.just("sig"), st.text(alphabet="0123456789abcdef", min_size=128, max_size=128)),
    st.tuples(st.just("id"), st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)),
    st.tuples(st.just("pubkey"), st.text(max_size=70)),
)
raw_headers = st.one_of(
    st.text(max_size=200),
    st.binary(max_size=300).map(lambda b: "Nostr " + base64.b64encode(b).decode()),
    st.text(max_size=300).map(lambda t: "Nostr " + t),
)


@settings(max_examples=examples(600), deadline=None)
@given(mutation=mutations)
def test_a_mutated_nip98_event_never_authorises(mutation: tuple[str, object]) -> None:
    CASES["NIP-98 mutated events (pure)"] += 1
    field, value = mutation
    event = valid_event()
    if event[field] == value:
        return
    event[field] = value
    with pytest.raises(HttpAuthError):
        check_http_auth(header_of(orjson.dumps(event)), url=URL, method="PUT", body=BODY, now=NOW)


@settings(max_examples=examples(600), deadline=None)
@given(header=raw_headers)
def test_any_authorization_header_is_refused_with_a_clear_reason_or_nothing_else(
    header: str,
) -> None:
    CASES["NIP-98 arbitrary headers (pure)"] += 1
    with pytest.raises(HttpAuthError) as refused:
        check_http_auth(header, url=URL, method="PUT", body=BODY, now=NOW)
    assert refused.value.reason


def test_the_unmutated_event_authorises_so_the_mutations_prove_something() -> None:
    event = check_http_auth(
        header_of(orjson.dumps(valid_event())), url=URL, method="PUT", body=BODY, now=NOW
    )
    assert dict(event.tags)["payload"] == hashlib.sha256(BODY).hexdigest()


@pytest.mark.slow
async def test_hostile_nip98_headers_against_the_server_change_nothing(cockpit: Cockpit) -> None:
    path = f"/chargers/{CHARGER}/tariff"
    url = cockpit.api + path
    body = orjson.dumps({"per_kwh_sat": 999})
    profile = cockpit.stack.strom.config.paths.profiles / f"{CHARGER}.toml"
    before = profile.read_text()
    good = sign_event(
        ADMIN_SECRET, 27235, http_auth_tags(url, "PUT", body), "", int(time.time())
    ).to_dict()
    headers: list[str] = []
    for field, value in [
        ("created_at", 0),
        ("kind", 1),
        ("content", "x"),
        ("tags", [["u", url]]),
        ("tags", [["u", url], ["method", "PUT"], ["payload", "00" * 32]]),
        ("sig", "00" * 64),
        ("id", "00" * 32),
        ("pubkey", "11" * 32),
    ]:
        headers.append(header_of(orjson.dumps({**good, field: value})))
    headers += ["Nostr", "Nostr  x", "Nostr ====", "Nostr " + "A" * 7_000, "nostr e30="]
    for header in headers:
        response = await cockpit.http.put(url, content=body, headers={"Authorization": header})
        CASES["NIP-98 hostile headers (live)"] += 1
        assert response.status_code in (401, 403), (header[:80], response.text)
    assert profile.read_text() == before
    async with cockpit.stack.strom.db.reader() as conn:
        assert await conn.scalar(select(func.count()).select_from(audit_log)) == 0
