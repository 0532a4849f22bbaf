"""An OCPI 2.2.1 eMSP built on py_ocpi (PyPI ``extrawest-ocpi``), for Strom's roaming tests.

Run only by the OCPI peer's own Python (``tests.peers.ocpi.python()``), as a script, with the
environment py_ocpi reads its settings from at import time (``OCPI_HOST=127.0.0.1:<port>``,
``PROTOCOL=http``, ``COUNTRY_CODE``, ``PARTY_ID``) plus ``OCPI_PEER_PORT``;
``tests/peers/ocpi_emsp.py`` starts it that way. Strom's own lint sees this file but its type
checker does not (it checks Strom's packages only), so importing py_ocpi here is harmless.

Everything OCPI is py_ocpi's: its routers receive the CPO's pushes and validate them with its
schemas, serve our tokens with its pagination, take the command results, and answer a
registration the CPO starts. What is ours:

* ``EmspCrud``: the in-memory storage py_ocpi calls (one CPO partner at a time);
* ``EmspAuthenticator``: which credentials tokens py_ocpi accepts (the offered token A during
  a CPO-started registration, then the token we gave the CPO);
* ``common.FixNextLink``: py_ocpi's next-page ``Link`` on our tokens list is unfollowable
  (https, the CPO's path, enum names); it is mended to the spec's form;
* the ``/control/`` routes the tests drive (no OCPI auth, loopback only), including the
  requests py_ocpi has no client for: registering with a CPO (the eMSP as credentials
  sender), credentials update and unregistration, pulling a CPO module, sending a command.
"""

from __future__ import annotations

import os
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import ocpi_peer_common as common
import uvicorn
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from py_ocpi import get_application
from py_ocpi.core.authentication.authenticator import Authenticator
from py_ocpi.core.crud import Crud
from py_ocpi.core.enums import Action, ModuleID, RoleEnum
from py_ocpi.modules.cdrs.v_2_2_1.schemas import Cdr
from py_ocpi.modules.commands.v_2_2_1.schemas import (
    CancelReservation,
    CommandResponse,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
)
from py_ocpi.modules.credentials.v_2_2_1.schemas import Credentials
from py_ocpi.modules.locations.v_2_2_1.schemas import Location
from py_ocpi.modules.sessions.v_2_2_1.schemas import Session
from py_ocpi.modules.tariffs.v_2_2_1.schemas import Tariff
from py_ocpi.modules.tokens.v_2_2_1.schemas import Token
from py_ocpi.modules.versions.enums import VersionNumber
from pydantic import ValidationError

BASE_URL = f"http://{os.environ['OCPI_HOST']}"
VERSIONS_URL = f"{BASE_URL}/ocpi/versions"
COMMANDS_CALLBACK = f"{BASE_URL}/ocpi/emsp/2.2.1/commands/"
COUNTRY_CODE = os.environ.get("COUNTRY_CODE", "NL")
PARTY_ID = os.environ.get("PARTY_ID", "EMP")

# The objects the CPO pushes to us, by module; what ``/control/received`` reports.
RECEIVED_MODULES = ("locations", "sessions", "cdrs", "tariffs")
# The CPO modules ``/control/pull`` can fetch, with the schema each object must satisfy.
PULL_SCHEMAS: dict[str, Any] = {
    "locations": Location,
    "tariffs": Tariff,
    "sessions": Session,
    "cdrs": Cdr,
}
COMMAND_SCHEMAS: dict[str, Any] = {
    "START_SESSION": StartSession,
    "STOP_SESSION": StopSession,
    "UNLOCK_CONNECTOR": UnlockConnector,
    "RESERVE_NOW": ReserveNow,
    "CANCEL_RESERVATION": CancelReservation,
}
MAX_PAGES = 1000


def new_token() -> str:
    return secrets.token_urlsafe(24)


class State:
    """What this eMSP knows: its one CPO partner, the objects received, the tokens it serves."""

    def __init__(self) -> None:
        self.offered_a: set[str] = set()  # tokens A a CPO may register with
        self.inbound: set[str] = set()  # the token we gave the CPO (two during an update)
        self.cpo: dict[str, Any] | None = None  # token, versions_url, endpoints, credentials
        self.objects: dict[str, dict[tuple[str, ...], Any]] = {m: {} for m in RECEIVED_MODULES}
        self.tokens: list[dict[str, Any]] = []
        self.commands_sent: dict[str, dict[str, Any]] = {}
        self.command_results: list[dict[str, Any]] = []


STATE = State()


def our_credentials(token: str) -> dict[str, Any]:
    return {
        "token": token,
        "url": VERSIONS_URL,
        "roles": [
            {
                "role": "EMSP",
                "business_details": {"name": "Strom test eMSP (py_ocpi)"},
                "party_id": PARTY_ID,
                "country_code": COUNTRY_CODE,
            }
        ],
    }


def _key(module: str, object_id: Any, kwargs: dict[str, Any]) -> tuple[str, ...]:
    if module == "cdrs":
        return (str(object_id).lower(),)
    return (
        str(kwargs.get("country_code", "")).lower(),
        str(kwargs.get("party_id", "")).lower(),
        str(object_id).lower(),
    )


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _updated_within(token: dict[str, Any], filters: dict[str, Any]) -> bool:
    """``date_from`` inclusive, ``date_to`` exclusive, on ``last_updated`` (the spec's rule)."""
    stamp = _as_utc(datetime.fromisoformat(str(token["last_updated"]).replace("Z", "+00:00")))
    date_from, date_to = filters.get("date_from"), filters.get("date_to")
    if date_from is not None and stamp < _as_utc(date_from):
        return False
    return not (date_to is not None and stamp >= _as_utc(date_to))


class EmspCrud(Crud):
    """py_ocpi's storage for the eMSP role: memory, one CPO partner."""

    async def get(self, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kw: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            token = kw.get("auth_token")
            return our_credentials(token) if token in STATE.inbound else None
        if module == ModuleID.tokens:
            return _find_token(str(id), kw.get("token_type"))
        return STATE.objects[module.value].get(_key(module.value, id, kw))

    async def list(
        self, module: ModuleID, role: RoleEnum, filters: dict[str, Any], *args: Any, **kw: Any
    ) -> tuple[list[Any], int, bool]:
        if module != ModuleID.tokens:
            return [], 0, True
        matching = [t for t in STATE.tokens if _updated_within(t, filters)]
        offset, limit = filters["offset"], filters["limit"]
        return matching[offset : offset + limit], len(matching), offset + limit >= len(matching)

    async def create(
        self, module: ModuleID, role: RoleEnum, data: dict[str, Any], *args: Any, **kw: Any
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            return _registered_by_cpo(data, kw.get("auth_token"))
        STATE.objects[module.value][_key(module.value, data["id"], kw)] = data
        return data

    async def update(
        self, module: ModuleID, role: RoleEnum, data: dict[str, Any], id: Any, *args: Any, **kw: Any
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            return _updated_by_cpo(data, kw.get("auth_token"))
        if module == ModuleID.commands:
            STATE.command_results.append(
                {"uid": id, "known": id in STATE.commands_sent, "result": data}
            )
            return data
        STATE.objects[module.value][_key(module.value, id, kw)] = data
        return data

    async def delete(
        self, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kw: Any
    ) -> None:
        if module == ModuleID.credentials_and_registration:
            STATE.inbound.discard(kw.get("auth_token"))
            STATE.cpo = None
            return
        STATE.objects[module.value].pop(_key(module.value, id, kw), None)

    async def do(
        self,
        module: ModuleID,
        role: RoleEnum | None,
        action: Action,
        *args: Any,
        data: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        if action != Action.authorize_token or data is None:
            return None
        token = _find_token(str(data["token_uid"]), data.get("token_type"))
        if token is None:
            return None
        return {
            "allowed": "ALLOWED" if token.get("valid") else "BLOCKED",
            "token": token,
            "location": data.get("location_reference"),
            "authorization_reference": uuid.uuid4().hex[:36],
        }


def _find_token(uid: str, token_type: Any) -> dict[str, Any] | None:
    wanted_type = getattr(token_type, "value", token_type)
    for token in STATE.tokens:
        if str(token["uid"]).lower() == uid.lower() and wanted_type in (None, token.get("type")):
            return token
    return None


def _registered_by_cpo(data: dict[str, Any], token_a: str | None) -> dict[str, Any]:
    """The CPO started the registration with our token A; py_ocpi fetched its endpoints."""
    STATE.offered_a.discard(token_a or "")
    return _take_cpo_credentials(data, previous=None)


def _updated_by_cpo(data: dict[str, Any], current: str | None) -> dict[str, Any]:
    """The CPO sent new credentials (PUT): a new token for it, the old one is gone."""
    return _take_cpo_credentials(data, previous=current)


def _take_cpo_credentials(data: dict[str, Any], previous: str | None) -> dict[str, Any]:
    theirs = data["credentials"]
    STATE.cpo = {
        "token": theirs["token"],
        "versions_url": theirs["url"],
        "endpoints": data["endpoints"]["endpoints"],
        "credentials": theirs,
        "started_by": "CPO",
    }
    token_c = new_token()
    if previous is not None:
        STATE.inbound.discard(previous)
    STATE.inbound.add(token_c)
    return our_credentials(token_c)


class EmspAuthenticator(Authenticator):
    """Accepts the token we gave the CPO, and an offered token A for registration only."""

    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        return sorted(STATE.inbound)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        return sorted(STATE.offered_a)


common.log_outbound_requests()
app = get_application(
    version_numbers=[VersionNumber.v_2_2_1],
    roles=[RoleEnum.emsp],
    modules=[
        ModuleID.credentials_and_registration,
        ModuleID.locations,
        ModuleID.sessions,
        ModuleID.cdrs,
        ModuleID.tariffs,
        ModuleID.commands,
        ModuleID.tokens,
    ],
    crud=EmspCrud(),
    authenticator=EmspAuthenticator,
)
app.add_middleware(common.FixNextLink, base_url=BASE_URL, role="emsp")
# Outermost, so that the log shows what went over the wire.
app.add_middleware(common.InboundLogMiddleware)


@app.exception_handler(common.RemoteFailed)
async def _remote_failed(request: Request, exc: common.RemoteFailed) -> JSONResponse:
    return JSONResponse(status_code=502, content={"detail": exc.detail})


def _cpo() -> dict[str, Any]:
    if STATE.cpo is None:
        raise HTTPException(409, "not registered with a CPO")
    return STATE.cpo


def _schema_errors(schema: Any, obj: Any) -> list[Any]:
    try:
        schema(**obj)
    except (ValidationError, TypeError) as exc:
        return exc.errors() if isinstance(exc, ValidationError) else [str(exc)]
    return []


@app.post("/control/register")
async def control_register(request: Request) -> dict[str, Any]:
    """Register with a CPO as the credentials sender: versions, details, POST credentials."""
    common.loopback_only(request)
    body = await request.json()
    token_a, token_b = body["token_a"], new_token()
    async with httpx.AsyncClient(timeout=30.0) as client:
        endpoints = await common.fetch_endpoints(client, body["versions_url"], token_a)
        credentials_url = common.endpoint_url(endpoints, "credentials")
        STATE.inbound.add(token_b)  # the CPO calls our versions with it while we wait
        try:
            theirs = await common.send_credentials(
                client, "POST", credentials_url, token_a, our_credentials(token_b)
            )
        except common.RemoteFailed:
            STATE.inbound.discard(token_b)
            raise
    errors = _schema_errors(Credentials, theirs)
    if errors:
        STATE.inbound.discard(token_b)
        raise HTTPException(502, {"step": "credentials response", "errors": errors})
    STATE.cpo = {
        "token": theirs["token"],
        "versions_url": body["versions_url"],
        "endpoints": endpoints,
        "credentials": theirs,
        "started_by": "EMSP",
    }
    return {"token_b": token_b, "token_c": theirs["token"], "endpoints": endpoints}


@app.post("/control/offer")
async def control_offer(request: Request) -> dict[str, Any]:
    """Let a CPO start the registration with this token A (at our versions URL)."""
    common.loopback_only(request)
    body = await request.json()
    STATE.offered_a.add(body["token_a"])
    return {"versions_url": VERSIONS_URL}


@app.get("/control/partner")
async def control_partner(request: Request) -> dict[str, Any]:
    """The CPO we are registered with (its token, endpoints) and the token it uses with us."""
    common.loopback_only(request)
    return {"cpo": STATE.cpo, "inbound_tokens": sorted(STATE.inbound)}


@app.post("/control/rotate")
async def control_rotate(request: Request) -> dict[str, Any]:
    """Update the credentials (PUT): a new token for the CPO to use, and a new one for us."""
    common.loopback_only(request)
    cpo = _cpo()
    old = set(STATE.inbound)
    token_b = new_token()
    STATE.inbound.add(token_b)
    async with httpx.AsyncClient(timeout=30.0) as client:
        url = common.endpoint_url(cpo["endpoints"], "credentials")
        try:
            theirs = await common.send_credentials(
                client, "PUT", url, cpo["token"], our_credentials(token_b)
            )
        except common.RemoteFailed:
            STATE.inbound.discard(token_b)
            raise
    STATE.inbound -= old
    cpo.update(token=theirs["token"], credentials=theirs)
    return {"token_b": token_b, "token_c": theirs["token"]}


@app.delete("/control/register")
async def control_unregister(request: Request) -> dict[str, Any]:
    """Unregister (DELETE credentials at the CPO); forget the CPO when it agreed."""
    common.loopback_only(request)
    cpo = _cpo()
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.delete(
            common.endpoint_url(cpo["endpoints"], "credentials"),
            headers=common.ocpi_headers(cpo["token"]),
        )
    body = common.parse_json(response.content)
    if response.status_code == 200 and common.ocpi_status(body) == 1000:
        STATE.cpo = None
        STATE.inbound.clear()
    return {"status": response.status_code, "body": body}


@app.get("/control/pull/{module}")
async def control_pull(module: str, request: Request) -> dict[str, Any]:
    """GET a CPO module's whole list, following ``Link: <...>; rel="next"`` to the end.

    The query (``limit``, ``offset``, ``date_from``, ``date_to``) goes on the first request.
    """
    common.loopback_only(request)
    if module not in PULL_SCHEMAS:
        raise HTTPException(404, f"cannot pull {module}")
    cpo = _cpo()
    url: str | None = common.endpoint_url(cpo["endpoints"], module, "SENDER")
    params: dict[str, str] | None = dict(request.query_params)
    objects: list[Any] = []
    pages: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    async with httpx.AsyncClient(timeout=30.0) as client:
        while url is not None and len(pages) < MAX_PAGES:
            response = await client.get(
                url, params=params, headers=common.ocpi_headers(cpo["token"])
            )
            params = None  # the next links carry the query themselves
            page, data = _page_record(response)
            pages.append(page)
            if page["status"] != 200 or page["ocpi_status"] != 1000 or not isinstance(data, list):
                errors.append({"page": len(pages) - 1, "error": "page not a success list"})
                break
            for index, obj in enumerate(data):
                problems = _schema_errors(PULL_SCHEMAS[module], obj)
                if problems:
                    errors.append({"page": len(pages) - 1, "index": index, "errors": problems})
            objects.extend(data)
            seen.add(str(response.request.url))
            url = common.next_link(response.headers.get("link"))
            if url is not None and url in seen:
                errors.append({"page": len(pages) - 1, "error": f"next link loops to {url}"})
                break
    return {"objects": objects, "pages": pages, "errors": errors}


def _page_record(response: httpx.Response) -> tuple[dict[str, Any], Any]:
    body = common.parse_json(response.content)
    data = body.get("data") if isinstance(body, dict) else None
    return {
        "url": str(response.request.url),
        "status": response.status_code,
        "ocpi_status": common.ocpi_status(body),
        "count": len(data) if isinstance(data, list) else None,
        "link": response.headers.get("link"),
        "x_total_count": response.headers.get("x-total-count"),
        "x_limit": response.headers.get("x-limit"),
    }, data


@app.post("/control/command/{command}")
async def control_command(command: str, request: Request) -> dict[str, Any]:
    """Send a command to the CPO with our callback as ``response_url``.

    The body is checked against py_ocpi's schema first (``?raw=1`` skips that, to send a
    malformed command on purpose) and then sent as given, not as py_ocpi would rewrite it.
    """
    common.loopback_only(request)
    if command not in COMMAND_SCHEMAS:
        raise HTTPException(404, f"unknown command {command}")
    cpo = _cpo()
    uid = uuid.uuid4().hex
    body = dict(await request.json())
    body.setdefault("response_url", COMMANDS_CALLBACK + uid)
    if request.query_params.get("raw") != "1":
        problems = _schema_errors(COMMAND_SCHEMAS[command], body)
        if problems:
            raise HTTPException(400, {"errors": problems})
    url = common.endpoint_url(cpo["endpoints"], "commands", "RECEIVER").rstrip("/") + "/" + command
    STATE.commands_sent[uid] = {"command": command, "body": body}
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(url, json=body, headers=common.ocpi_headers(cpo["token"]))
    answer = common.parse_json(response.content)
    data = answer.get("data") if isinstance(answer, dict) else None
    if isinstance(data, list) and len(data) == 1:
        data = data[0]  # py_ocpi's CPO wraps the CommandResponse in a list
    return {
        "uid": uid,
        "response_url": body["response_url"],
        "status": response.status_code,
        "body": answer,
        "errors": _schema_errors(CommandResponse, data) if isinstance(data, dict) else ["no data"],
    }


@app.get("/control/command-results")
async def control_command_results(request: Request) -> list[dict[str, Any]]:
    common.loopback_only(request)
    return STATE.command_results


@app.get("/control/received/{module}")
async def control_received(module: str, request: Request) -> dict[str, Any]:
    """What the CPO pushed (PATCHes applied) and every push py_ocpi refused or failed on."""
    common.loopback_only(request)
    if module not in RECEIVED_MODULES:
        raise HTTPException(404, f"nothing is received for {module}")
    prefix = f"/ocpi/emsp/2.2.1/{module}"
    errors = [
        entry
        for entry in common.LOG.entries
        if entry["direction"] == "in"
        and entry["path"].startswith(prefix)
        and entry["method"] != "GET"
        and (entry["status"] != 200 or entry["ocpi_status"] != 1000)
    ]
    return {"objects": list(STATE.objects[module].values()), "errors": errors}


@app.put("/control/tokens")
async def control_tokens(request: Request) -> dict[str, Any]:
    """Set the tokens we serve the CPO (in this order), each checked by py_ocpi's schema."""
    common.loopback_only(request)
    tokens = await request.json()
    problems = {i: e for i, t in enumerate(tokens) if (e := _schema_errors(Token, t))}
    if problems:
        raise HTTPException(400, {"errors": problems})
    STATE.tokens = list(tokens)
    return {"count": len(tokens)}


@app.get("/control/log")
async def control_log(request: Request) -> list[dict[str, Any]]:
    common.loopback_only(request)
    since = int(request.query_params.get("since", "0"))
    return common.LOG.entries[since:]


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["OCPI_PEER_PORT"]), log_level="info")
