"""The commands and tokens endpoints of a running Strom: happy paths, 401, bad input, pulls.

Strom runs whole with ``[ocpi]`` on and a simulated charger; the partner is the small in-test
eMSP (:class:`tests.ocpi.conftest.Emsp`) that Strom registers with, extended here with a
tokens Sender list (paginated) and a callback that records the CommandResults it receives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func, select

from ocpi_server.protocol import authorization_header
from strom_core.roaming import TokenType
from strom_storage.roaming_commands import token_pulled_at
from strom_storage.schema import roaming_commands, roaming_sessions, sessions
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.ocpi.conftest import Emsp, serve
from tests.ocpi.test_commands_peer import OCPI_ON, token
from tests.waits import until


@dataclass
class TokenEmsp(Emsp):
    """The in-test eMSP with a tokens list (``limit`` per page) and a commands callback."""

    tokens: list[dict[str, Any]] = field(default_factory=list)
    limit: int = 2
    token_queries: list[dict[str, str]] = field(default_factory=list)
    results: list[tuple[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        app = super().app()
        app.router.add_get("/emsp/tokens", self._tokens)
        app.router.add_post("/cb/{uid}", self._result)
        return app

    async def _tokens(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 2000, "timestamp": "x"}, status=401)
        self.token_queries.append(dict(request.query))
        offset = int(request.query.get("offset", "0"))
        chosen = self.tokens[offset : offset + self.limit]
        headers = {"X-Total-Count": str(len(self.tokens))}
        if offset + self.limit < len(self.tokens):
            headers["Link"] = f'<{self.base}/emsp/tokens?offset={offset + self.limit}>; rel="next"'
        body = {"data": chosen, "status_code": 1000, "timestamp": "2027-01-10T10:00:00Z"}
        return web.json_response(body, headers=headers)

    async def _result(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"status_code": 2000, "timestamp": "x"}, status=401)
        self.results.append((request.match_info["uid"], await request.json()))
        return web.json_response({"status_code": 1000, "timestamp": "2027-01-10T10:00:00Z"})


@dataclass
class Partnered:
    stack: Stack
    emsp: TokenEmsp
    partner_id: int

    @property
    def url(self) -> str:
        return f"{self.stack.base}/ocpi/2.2.1"

    async def call(
        self, method: str, path: str, json: Any = None, *, token: str | None = "", **kw: Any
    ) -> httpx.Response:
        given = self.emsp.strom_token if token == "" else token
        headers = {} if given is None else {"Authorization": authorization_header(given)}
        return await self.stack.http.request(
            method, self.url + path, json=json, headers=headers, **kw
        )


@pytest.fixture
async def partnered(tmp_path: Path) -> AsyncIterator[Partnered]:
    emsp = TokenEmsp(accepted={"token-a"})
    runner, emsp.base = await serve(emsp.app())
    async with running_stack(tmp_path, env=OCPI_ON) as stack:
        assert stack.strom.ocpi is not None
        partner = await stack.strom.ocpi.partners.register_with(
            f"{emsp.base}/emsp/versions", "token-a", "test eMSP"
        )
        yield Partnered(stack, emsp, partner.id)
    await runner.cleanup()


async def count(stack: Stack, table: Any) -> int:
    query = select(func.count()).select_from(table)
    return int(await stack.strom.db.read(lambda conn: conn.execute(query).scalar_one()))


def start_body(p: Partnered, **changes: Any) -> dict[str, Any]:
    body = {
        "response_url": f"{p.emsp.base}/cb/s1",
        "token": token("app-0009", country_code="NL", party_id="EMS"),
        "location_id": CHARGER,
        "evse_uid": f"{CHARGER}-1",
    }
    body.update(changes)
    return body


# --- commands ------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", [None, "not-a-token-strom-knows"])
async def test_commands_without_a_known_token_are_401_and_do_nothing(
    partnered: Partnered, credential: str | None
) -> None:
    answer = await partnered.call(
        "POST", "/commands/START_SESSION", start_body(partnered), token=credential
    )
    assert (answer.status_code, answer.json()["status_code"]) == (401, 2000)
    assert await count(partnered.stack, sessions) == 0


@pytest.mark.parametrize(
    "change",
    [
        {"response_url": None},
        {"response_url": "ftp://x"},
        {"location_id": ""},
        {"location_id": "x" * 37},
        {"token": {"uid": "only-a-uid"}},
        {"token": token("app", country_code="NL", party_id="EMS", type="CARD")},
        {"token": token("app", country_code="NL", party_id="EMS", last_updated="yesterday")},
    ],
)
async def test_a_bad_start_body_is_2001_and_starts_nothing(
    partnered: Partnered, change: dict[str, Any]
) -> None:
    body = {k: v for k, v in start_body(partnered, **change).items() if v is not None}
    answer = await partnered.call("POST", "/commands/START_SESSION", body)
    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001)
    assert answer.json()["status_message"]
    assert await count(partnered.stack, sessions) == 0
    assert await count(partnered.stack, roaming_commands) == 0


async def test_a_body_that_is_not_json_is_400(partnered: Partnered) -> None:
    answer = await partnered.stack.http.post(
        partnered.url + "/commands/STOP_SESSION",
        content=b"{nope",
        headers={"Authorization": authorization_header(partnered.emsp.strom_token or "")},
    )
    assert (answer.status_code, answer.json()["status_code"]) == (400, 2000)


async def test_unknown_commands_are_404(partnered: Partnered) -> None:
    unknown = await partnered.call("POST", "/commands/FLY_TO_MOON", {})
    assert (unknown.status_code, unknown.json()["status_code"]) == (404, 2000)
    assert (await partnered.call("GET", "/commands/START_SESSION")).status_code == 405


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"location_id": "no-such-charger"}, 2003),
        ({"evse_uid": f"{CHARGER}-9"}, 2003),
        ({"evse_uid": "other-1"}, 2003),
        ({"connector_id": "2"}, 2003),
        ({"token": token("app-0009")}, 1000),  # NL-EMP: not this partner's party (NL-EMS)
    ],
)
async def test_starts_strom_cannot_do_are_rejected_at_once(
    partnered: Partnered, change: dict[str, Any], status: int
) -> None:
    answer = await partnered.call(
        "POST", "/commands/START_SESSION", start_body(partnered, **change)
    )
    assert answer.json()["status_code"] == status
    assert answer.json()["data"]["result"] == "REJECTED"
    assert answer.json()["data"]["message"][0]["text"]
    assert await count(partnered.stack, sessions) == 0


async def test_a_blocked_partner_is_refused_with_403(partnered: Partnered) -> None:
    ocpi = partnered.stack.strom.ocpi
    assert ocpi is not None
    await ocpi.partners.set_flags(partnered.partner_id, settlement=None, blocked=True)
    answer = await partnered.call("POST", "/commands/START_SESSION", start_body(partnered))
    assert answer.status_code == 403
    assert await count(partnered.stack, sessions) == 0


async def test_a_start_is_accepted_and_its_result_posted_once_to_the_response_url(
    partnered: Partnered,
) -> None:
    answer = await partnered.call("POST", "/commands/START_SESSION", start_body(partnered))
    assert answer.json()["data"]["result"] == "ACCEPTED"
    await until(lambda: bool(partnered.emsp.results), "the CommandResult", within_s=20)
    assert partnered.emsp.results == [
        (
            "s1",
            {
                "result": "ACCEPTED",
                "message": [{"language": "en", "text": "the charger accepted the start"}],
            },
        )
    ]
    # The same request again (same response_url, no reference): the same session.
    again = await partnered.call("POST", "/commands/START_SESSION", start_body(partnered))
    assert again.json()["data"]["result"] == "ACCEPTED"
    assert await count(partnered.stack, roaming_sessions) == 1


async def test_unlock_connector_reaches_the_charger_and_reports_its_answer(
    partnered: Partnered,
) -> None:
    body = {
        "response_url": f"{partnered.emsp.base}/cb/u1",
        "location_id": CHARGER,
        "evse_uid": f"{CHARGER}-1",
        "connector_id": "1",
    }
    answer = await partnered.call("POST", "/commands/UNLOCK_CONNECTOR", body)
    assert answer.json()["data"] == {"result": "ACCEPTED", "timeout": 60}
    await until(lambda: bool(partnered.emsp.results), "the CommandResult", within_s=20)
    assert partnered.emsp.results[0][0] == "u1"
    assert partnered.emsp.results[0][1]["result"] == "ACCEPTED"
    missing = await partnered.call(
        "POST", "/commands/UNLOCK_CONNECTOR", {k: v for k, v in body.items() if k != "evse_uid"}
    )
    assert missing.json()["status_code"] == 2001


# --- tokens --------------------------------------------------------------------------------

WHERE = "/tokens/NL/EMS/04CAFE0001"


async def test_tokens_put_get_patch_and_the_newest_wins(partnered: Partnered) -> None:
    pushed = token("04CAFE0001", "RFID", country_code="NL", party_id="EMS")
    created = await partnered.call("PUT", WHERE, pushed)
    assert (created.status_code, created.json()["status_code"]) == (201, 1000)
    updated = await partnered.call("PUT", WHERE, pushed | {"issuer": "New Name"})
    assert updated.status_code == 200  # it existed
    older = pushed | {"issuer": "Old", "last_updated": "2025-01-01T00:00:00Z"}
    assert (await partnered.call("PUT", WHERE, older)).json()["status_code"] == 1000
    got = (await partnered.call("GET", WHERE)).json()["data"]
    assert (got["issuer"], got["uid"], got["country_code"]) == ("New Name", "04CAFE0001", "NL")
    patched = await partnered.call(
        "PATCH",
        WHERE + "?type=RFID",
        {"whitelist": "NEVER", "last_updated": "2026-02-01T00:00:00Z"},
    )
    assert patched.json()["status_code"] == 1000
    roaming = partnered.stack.strom.roaming
    assert roaming is not None
    stored = await roaming.token(str(partnered.partner_id), "04cafe0001", TokenType.RFID)
    assert stored is not None
    assert (stored.whitelist.value, stored.issuer) == ("NEVER", "New Name")
    # The card desk follows: a NEVER token is not accepted from the whitelist.
    answer = await partnered.stack.charger.start_transaction(1, "04CAFE0001")
    assert answer["idTagInfo"]["status"] == "Invalid"


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("GET", "/tokens/NL/EMS/unknown", None, (404, 2004)),
        ("GET", WHERE + "?type=CARD", None, (200, 2001)),
        ("GET", "/tokens/DE/OTH/04CAFE0001", None, (404, 2000)),  # another party's path
        ("GET", "/tokens/NL/EMS", None, (404, 2000)),
        ("PUT", "/tokens/DE/OTH/04CAFE0001", token("04CAFE0001", "RFID"), (404, 2000)),
        ("PUT", WHERE, token("04CAFE0001", "RFID"), (200, 2001)),  # body: NL-EMP
        (
            "PUT",
            WHERE,
            token("04CAFE0002", "RFID", country_code="NL", party_id="EMS"),
            (200, 2001),
        ),
        ("PUT", WHERE, {"uid": "04CAFE0001"}, (200, 2001)),
        ("PATCH", WHERE, {"valid": False}, (200, 2001)),  # no last_updated
        ("PATCH", WHERE, {"valid": False, "last_updated": "2027-01-01T00:00:00Z"}, (404, 2004)),
        ("PATCH", WHERE, {"uid": "other", "last_updated": "2027-01-01T00:00:00Z"}, (200, 2001)),
        ("DELETE", WHERE, None, (405, 2000)),
    ],
)
async def test_bad_token_requests_are_refused_and_store_nothing(
    partnered: Partnered, method: str, path: str, body: Any, expected: tuple[int, int]
) -> None:
    answer = await partnered.call(method, path, body)
    assert (answer.status_code, answer.json()["status_code"]) == expected
    roaming = partnered.stack.strom.roaming
    assert roaming is not None
    assert await roaming.tokens(str(partnered.partner_id)) == []


async def test_tokens_without_a_known_token_are_401(partnered: Partnered) -> None:
    body = token("04CAFE0001", "RFID", country_code="NL", party_id="EMS")
    answer = await partnered.call("PUT", WHERE, body, token=None)
    assert (answer.status_code, answer.json()["status_code"]) == (401, 2000)


async def test_the_pull_follows_every_page_then_asks_only_for_newer_tokens(
    partnered: Partnered,
) -> None:
    ocpi = partnered.stack.strom.ocpi
    assert ocpi is not None
    puller = ocpi.tokens
    assert puller is not None
    emsp = partnered.emsp

    async def first_pull_done() -> bool:
        read = partial(token_pulled_at, partner_id=partnered.partner_id)
        return await partnered.stack.strom.db.read(read) is not None

    # A registration wakes the pull loop: its first pull (of an empty list) ends first.
    await until(first_pull_done, "the pull after the registration", within_s=20)
    emsp.tokens = [
        token(f"04BEEF000{i}", "RFID", country_code="NL", party_id="EMS") for i in range(5)
    ] + [token("04BEEF0099", "RFID")]  # another party's: skipped
    partner = await ocpi.store.get(partnered.partner_id)
    assert partner is not None
    before = len(emsp.token_queries)
    assert await puller.pull(partner) == 5
    assert [q.get("offset", "0") for q in emsp.token_queries[before:]] == ["0", "2", "4"]
    roaming = partnered.stack.strom.roaming
    assert roaming is not None
    assert len(await roaming.tokens(str(partnered.partner_id))) == 5
    before = len(emsp.token_queries)
    await puller.pull_due()  # pulled just now: not due again
    assert len(emsp.token_queries) == before
    await puller.pull(partner, since=partnered.stack.strom.clock.now())
    assert "date_from" in emsp.token_queries[before]
