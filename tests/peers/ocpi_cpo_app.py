"""A small OCPI 2.2.1 CPO built on py_ocpi, to prove the test eMSP before Strom's CPO exists.

Run only by the OCPI peer's own Python, as a script, with the same environment as
``ocpi_emsp_app.py`` plus ``OCPI_CPO_LOCATIONS`` (how many locations to hold, one EVSE each).
It holds those locations and one tariff in memory, accepts every command (and reports the
result ``ACCEPTED`` through py_ocpi's own background task), and exposes py_ocpi's HTTP push
(``/push/2.2.1``). Its ``/control/`` routes (loopback only) let a test offer a token A,
start a registration with an eMSP, change an EVSE's status, and send a location PATCH
(py_ocpi's push only ever PUTs whole objects).

Two workarounds for py_ocpi bugs, so that the test eMSP is proven against a correct server
(the bugs are reported, not hidden):

* py_ocpi's next-page ``Link`` cannot be followed: ``common.FixNextLink`` rewrites it;
* py_ocpi's CPO mounts the commands module but leaves it out of its version details:
  ``_advertise_commands`` adds the endpoint.
"""

from __future__ import annotations

import copy
import os
import secrets
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
from py_ocpi.core.dependencies import get_endpoints
from py_ocpi.core.enums import Action, ModuleID, RoleEnum
from py_ocpi.modules.versions.enums import VersionNumber
from py_ocpi.modules.versions.v_2_2_1.schemas import Endpoint, InterfaceRole

BASE_URL = f"http://{os.environ['OCPI_HOST']}"
VERSIONS_URL = f"{BASE_URL}/ocpi/versions"
COUNTRY_CODE = os.environ.get("COUNTRY_CODE", "NL")
PARTY_ID = os.environ.get("PARTY_ID", "CPO")
NOW = datetime(2025, 1, 1, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _location(number: int) -> dict[str, Any]:
    return {
        "country_code": COUNTRY_CODE,
        "party_id": PARTY_ID,
        "id": f"LOC{number}",
        "publish": True,
        "address": f"Teststraat {number}",
        "city": "Utrecht",
        "country": "NLD",
        "coordinates": {"latitude": "52.090", "longitude": "5.120"},
        "time_zone": "Europe/Amsterdam",
        "evses": [
            {
                "uid": f"EVSE{number}",
                "evse_id": f"NL*CPO*E{number}",
                "status": "AVAILABLE",
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "max_voltage": 230,
                        "max_amperage": 16,
                        "tariff_ids": ["T1"],
                        "last_updated": NOW,
                    }
                ],
                "last_updated": NOW,
            }
        ],
        "last_updated": NOW,
    }


TARIFF = {
    "country_code": COUNTRY_CODE,
    "party_id": PARTY_ID,
    "id": "T1",
    "currency": "EUR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}],
    "last_updated": NOW,
}


class State:
    def __init__(self) -> None:
        count = int(os.environ.get("OCPI_CPO_LOCATIONS", "1"))
        self.locations = [_location(n) for n in range(1, count + 1)]
        self.offered_a: set[str] = set()
        self.inbound: set[str] = set()
        self.emsp: dict[str, Any] | None = None  # token, endpoints, credentials
        self.tokens: dict[str, Any] = {}


STATE = State()


def our_credentials(token: str) -> dict[str, Any]:
    return {
        "token": token,
        "url": VERSIONS_URL,
        "roles": [
            {
                "role": "CPO",
                "business_details": {"name": "py_ocpi test CPO"},
                "party_id": PARTY_ID,
                "country_code": COUNTRY_CODE,
            }
        ],
    }


def _find_location(location_id: Any) -> dict[str, Any] | None:
    for location in STATE.locations:
        if location["id"].lower() == str(location_id).lower():
            return location
    return None


def _take_emsp_credentials(data: dict[str, Any], previous: str | None) -> dict[str, Any]:
    STATE.emsp = {
        "token": data["credentials"]["token"],
        "endpoints": data["endpoints"]["endpoints"],
        "credentials": data["credentials"],
    }
    if previous is not None:
        STATE.inbound.discard(previous)
    token_c = secrets.token_urlsafe(24)
    STATE.inbound.add(token_c)
    return our_credentials(token_c)


class CpoCrud(Crud):
    """py_ocpi's storage for the CPO role: a few fixed locations, one tariff, one eMSP."""

    async def get(self, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kw: Any) -> Any:
        if module == ModuleID.credentials_and_registration:
            token = kw.get("auth_token")
            return our_credentials(token) if token in STATE.inbound else None
        if module == ModuleID.locations:
            return _find_location(id)
        if module == ModuleID.tariffs:
            return TARIFF
        if module == ModuleID.commands:
            return {"result": "ACCEPTED"}  # what the charger did, polled by py_ocpi
        return STATE.tokens.get(str(id).lower()) if module == ModuleID.tokens else None

    async def list(
        self, module: ModuleID, role: RoleEnum, filters: dict[str, Any], *args: Any, **kw: Any
    ) -> tuple[list[Any], int, bool]:
        items: list[Any] = {
            ModuleID.locations: STATE.locations,
            ModuleID.tariffs: [TARIFF],
        }.get(module, [])
        offset, limit = filters["offset"], filters["limit"]
        return items[offset : offset + limit], len(items), offset + limit >= len(items)

    async def create(
        self, module: ModuleID, role: RoleEnum, data: dict[str, Any], *args: Any, **kw: Any
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            STATE.offered_a.discard(kw.get("auth_token") or "")
            return _take_emsp_credentials(data, previous=None)
        STATE.tokens[str(data.get("uid", "")).lower()] = data
        return data

    async def update(
        self, module: ModuleID, role: RoleEnum, data: dict[str, Any], id: Any, *args: Any, **kw: Any
    ) -> Any:
        if module == ModuleID.credentials_and_registration:
            return _take_emsp_credentials(data, previous=kw.get("auth_token"))
        STATE.tokens[str(id).lower()] = data
        return data

    async def delete(
        self, module: ModuleID, role: RoleEnum, id: Any, *args: Any, **kw: Any
    ) -> None:
        if module == ModuleID.credentials_and_registration:
            STATE.inbound.discard(kw.get("auth_token"))
            STATE.emsp = None

    async def do(
        self,
        module: ModuleID,
        role: RoleEnum | None,
        action: Action,
        *args: Any,
        data: dict[str, Any] | None = None,
        **kw: Any,
    ) -> Any:
        if action == Action.send_command:
            return {"result": "ACCEPTED", "timeout": 30}
        if action == Action.get_client_token:
            return STATE.emsp["token"] if STATE.emsp else None
        return None


class CpoAuthenticator(Authenticator):
    @classmethod
    async def get_valid_token_c(cls) -> list[str]:
        return sorted(STATE.inbound)

    @classmethod
    async def get_valid_token_a(cls) -> list[str]:
        return sorted(STATE.offered_a)


def _advertise_commands(application: Any) -> None:
    endpoints = application.dependency_overrides[get_endpoints]()
    endpoints[VersionNumber.v_2_2_1].append(
        Endpoint(
            identifier=ModuleID.commands,
            role=InterfaceRole.receiver,
            url=f"{BASE_URL}/ocpi/cpo/2.2.1/commands/",
        )
    )


common.log_outbound_requests()
app = get_application(
    version_numbers=[VersionNumber.v_2_2_1],
    roles=[RoleEnum.cpo],
    modules=[
        ModuleID.credentials_and_registration,
        ModuleID.locations,
        ModuleID.tariffs,
        ModuleID.commands,
        ModuleID.tokens,
    ],
    crud=CpoCrud(),
    authenticator=CpoAuthenticator,
    http_push=True,
)
_advertise_commands(app)
app.add_middleware(common.FixNextLink, base_url=BASE_URL, role="cpo")
# Outermost, so that the log shows what went over the wire.
app.add_middleware(common.InboundLogMiddleware)


@app.exception_handler(common.RemoteFailed)
async def _remote_failed(request: Request, exc: common.RemoteFailed) -> JSONResponse:
    return JSONResponse(status_code=502, content={"detail": exc.detail})


@app.post("/control/offer")
async def control_offer(request: Request) -> dict[str, Any]:
    common.loopback_only(request)
    STATE.offered_a.add((await request.json())["token_a"])
    return {"versions_url": VERSIONS_URL}


@app.post("/control/register")
async def control_register(request: Request) -> dict[str, Any]:
    """Start the registration with an eMSP (this CPO as the credentials sender)."""
    common.loopback_only(request)
    body = await request.json()
    token_b = secrets.token_urlsafe(24)
    async with httpx.AsyncClient(timeout=30.0) as client:
        endpoints = await common.fetch_endpoints(client, body["versions_url"], body["token_a"])
        STATE.inbound.add(token_b)
        theirs = await common.send_credentials(
            client,
            "POST",
            common.endpoint_url(endpoints, "credentials"),
            body["token_a"],
            our_credentials(token_b),
        )
    STATE.emsp = {"token": theirs["token"], "endpoints": endpoints, "credentials": theirs}
    return {"token_b": token_b, "token_c": theirs["token"], "endpoints": endpoints}


@app.get("/control/partner")
async def control_partner(request: Request) -> dict[str, Any]:
    common.loopback_only(request)
    return {"emsp": STATE.emsp, "inbound_tokens": sorted(STATE.inbound)}


def _evse(location_id: str, evse_uid: str) -> dict[str, Any]:
    location = _find_location(location_id)
    for evse in (location or {}).get("evses", []):
        if evse["uid"].lower() == evse_uid.lower():
            return dict(evse)
    raise HTTPException(404, f"no EVSE {evse_uid} at {location_id}")


@app.post("/control/evse-status")
async def control_evse_status(request: Request) -> dict[str, Any]:
    """Change an EVSE's status here (then trigger py_ocpi's push to send the location)."""
    common.loopback_only(request)
    body = await request.json()
    _evse(body["location_id"], body["evse_uid"])
    location = _find_location(body["location_id"])
    assert location is not None
    updated = copy.deepcopy(location)
    for evse in updated["evses"]:
        if evse["uid"].lower() == body["evse_uid"].lower():
            evse["status"] = body["status"]
    STATE.locations[STATE.locations.index(location)] = updated
    return updated


@app.post("/control/patch-evse")
async def control_patch_evse(request: Request) -> dict[str, Any]:
    """Send the eMSP a PATCH of one EVSE (``status`` and ``last_updated`` only)."""
    common.loopback_only(request)
    body = await request.json()
    if STATE.emsp is None:
        raise HTTPException(409, "no eMSP registered")
    base = common.endpoint_url(STATE.emsp["endpoints"], "locations", "RECEIVER").rstrip("/")
    url = f"{base}/{COUNTRY_CODE}/{PARTY_ID}/{body['location_id']}/{body['evse_uid']}"
    patch = {"status": body["status"], "last_updated": body.get("last_updated", NOW)}
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.patch(
            url, json=patch, headers=common.ocpi_headers(STATE.emsp["token"])
        )
    return {"status": response.status_code, "body": common.parse_json(response.content)}


@app.get("/control/log")
async def control_log(request: Request) -> list[dict[str, Any]]:
    common.loopback_only(request)
    return common.LOG.entries


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["OCPI_PEER_PORT"]), log_level="info")
