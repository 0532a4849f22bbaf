"""Pieces shared by the two py_ocpi parties of the tests (the eMSP and the small CPO).

Runs only in the OCPI peer's own venv (``tests.peers.ocpi.python()``), next to
``ocpi_emsp_app.py`` and ``ocpi_cpo_app.py``, which put this directory on ``sys.path`` by being
run as scripts. Nothing here is OCPI protocol handling: that is py_ocpi's. This is what
py_ocpi leaves to its user: a record of every request the party received and sent, the
registration calls a party makes when it is the one that starts the credentials exchange
(py_ocpi only has the receiving side), and the loopback guard of the control routes.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import httpx
from fastapi import HTTPException, Request

# Headers a test may want to see on a logged request or response (lower case).
_HEADERS_OF_INTEREST = (
    "authorization",
    "content-type",
    "x-request-id",
    "x-correlation-id",
    "ocpi-to-country-code",
    "ocpi-to-party-id",
    "ocpi-from-country-code",
    "ocpi-from-party-id",
    "link",
    "x-total-count",
    "x-limit",
    "location",
)
_NEXT_LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')


class RequestLog:
    """Every OCPI request this party received and sent, in order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        entry["seq"] = len(self.entries)
        entry["at"] = time.time()
        self.entries.append(entry)


LOG = RequestLog()


def pick_headers(headers: Any) -> dict[str, str]:
    return {name: headers[name] for name in _HEADERS_OF_INTEREST if name in headers}


def parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def ocpi_status(body: Any) -> int | None:
    if isinstance(body, dict) and isinstance(body.get("status_code"), int):
        return int(body["status_code"])
    return None


class InboundLogMiddleware:
    """ASGI middleware recording each request under ``/ocpi/`` and ``/push/`` with its answer.

    Pure ASGI (not Starlette's BaseHTTPMiddleware) so that reading the bodies here does not
    take them away from py_ocpi's routes.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/control/"):
            await self.app(scope, receive, send)
            return
        request_body = bytearray()
        response_body = bytearray()
        answer: dict[str, Any] = {}

        async def logged_receive() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                request_body.extend(message.get("body", b""))
            return message

        async def logged_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                response_body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, logged_receive, logged_send)
        finally:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            body = parse_json(bytes(response_body))
            LOG.add(
                {
                    "direction": "in",
                    "method": scope["method"],
                    "path": path,
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "request_headers": pick_headers(headers),
                    "request_body": parse_json(bytes(request_body)),
                    "status": answer.get("status"),
                    "response_headers": pick_headers(answer.get("headers", {})),
                    "response_body": body,
                    "ocpi_status": ocpi_status(body),
                }
            )


async def _log_outbound(response: httpx.Response) -> None:
    await response.aread()
    request = response.request
    body = parse_json(response.content)
    LOG.add(
        {
            "direction": "out",
            "method": request.method,
            "url": str(request.url),
            "request_headers": pick_headers(request.headers),
            "request_body": parse_json(request.content),
            "status": response.status_code,
            "response_headers": pick_headers(response.headers),
            "response_body": body,
            "ocpi_status": ocpi_status(body),
        }
    )


_original_init = httpx.AsyncClient.__init__


def _logging_init(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
    hooks = dict(kwargs.pop("event_hooks", None) or {})
    hooks["response"] = [*hooks.get("response", []), _log_outbound]
    _original_init(self, *args, event_hooks=hooks, **kwargs)


def log_outbound_requests() -> None:
    """Record every request sent with an ``httpx.AsyncClient`` in this process.

    py_ocpi makes its own clients (the credentials callbacks, command results, pushes); a
    response hook on every client is the one place that sees those requests and ours alike.
    """
    httpx.AsyncClient.__init__ = _logging_init  # type: ignore[method-assign]


def authorization(token: str) -> str:
    """The 2.2.1 header value: the credentials token, Base64 of its UTF-8 bytes."""
    return "Token " + base64.b64encode(token.encode()).decode()


def ocpi_headers(token: str) -> dict[str, str]:
    return {
        "Authorization": authorization(token),
        "X-Request-ID": str(uuid.uuid4()),
        "X-Correlation-ID": str(uuid.uuid4()),
    }


def next_link(link_header: str | None) -> str | None:
    if not link_header:
        return None
    match = _NEXT_LINK.search(link_header)
    return match.group(1) if match else None


def loopback_only(request: Request) -> None:
    """The control routes are for the tests on this machine, never for another host."""
    host = request.client.host if request.client else ""
    if host not in ("127.0.0.1", "::1"):
        raise HTTPException(403, "control routes answer loopback only")


_LINK_TARGET = re.compile(r"<https://[^/]+/ocpi/cpo(/[^>]*)>")
_UNSET_FILTER = re.compile(r"(date_from|date_to)=None&?")
_ENUM_VERSION = re.compile(r"VersionNumber\.v_(\d+)_(\d+)_(\d+)")
_ENUM_MODULE = re.compile(r"ModuleID\.(\w+)")


class FixNextLink:
    """Rewrite py_ocpi's next-page ``Link`` header into the URL the spec asks for.

    py_ocpi builds it as ``https://<OCPI_HOST>/ocpi/cpo/VersionNumber.v_2_2_1/ModuleID.x/
    ?date_from=None&date_to=None&offset=..``: always https, always the CPO path (an eMSP's
    tokens too), its str enums formatted by name (Python 3.11), unset filters as ``None``.
    Nobody could follow that link, so the peers mend it; the report lists the bug.
    """

    def __init__(self, app: Any, base_url: str, role: str) -> None:
        self.app = app
        self.prefix = f"{base_url}/ocpi/{role}"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def fixed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [self._fixed(k, v) for k, v in message.get("headers", [])]
            await send(message)

        await self.app(scope, receive, fixed_send if scope["type"] == "http" else send)

    def _fixed(self, name: bytes, value: bytes) -> tuple[bytes, bytes]:
        if name.lower() != b"link" or not value:
            return name, value
        text = _LINK_TARGET.sub(lambda m: f"<{self.prefix}{m.group(1)}>", value.decode("latin-1"))
        text = _ENUM_VERSION.sub(r"\1.\2.\3", _ENUM_MODULE.sub(r"\1", text))
        return name, _UNSET_FILTER.sub("", text).encode("latin-1")


class RemoteFailed(Exception):
    """The other party answered a registration step with something other than success."""

    def __init__(self, step: str, response: httpx.Response) -> None:
        super().__init__(f"{step}: HTTP {response.status_code}")
        self.detail = {
            "step": step,
            "status": response.status_code,
            "body": parse_json(response.content),
        }


def _ok_data(step: str, response: httpx.Response) -> Any:
    body = parse_json(response.content)
    if response.status_code != 200 or ocpi_status(body) != 1000:
        raise RemoteFailed(step, response)
    return body["data"]


async def fetch_endpoints(
    client: httpx.AsyncClient, versions_url: str, token: str
) -> list[dict[str, Any]]:
    """GET the versions, pick 2.2.1, GET its details; return the endpoints."""
    versions = _ok_data("GET versions", await client.get(versions_url, headers=ocpi_headers(token)))
    chosen = [v for v in versions if v.get("version") == "2.2.1"]
    if not chosen:
        raise RemoteFailed("GET versions (no 2.2.1)", httpx.Response(200, json={"data": versions}))
    details = _ok_data(
        "GET version details", await client.get(chosen[0]["url"], headers=ocpi_headers(token))
    )
    endpoints: list[dict[str, Any]] = details["endpoints"]
    return endpoints


def endpoint_url(endpoints: list[dict[str, Any]], module: str, role: str | None = None) -> str:
    for endpoint in endpoints:
        if endpoint.get("identifier") == module and role in (None, endpoint.get("role")):
            return str(endpoint["url"])
    raise HTTPException(409, f"the other party has no {module} endpoint ({role or 'any role'})")


async def send_credentials(
    client: httpx.AsyncClient,
    method: str,
    credentials_url: str,
    token: str,
    credentials: dict[str, Any],
) -> dict[str, Any]:
    """POST (register) or PUT (update) our credentials; return the other party's."""
    response = await client.request(
        method, credentials_url, json=credentials, headers=ocpi_headers(token)
    )
    data: dict[str, Any] = _ok_data(f"{method} credentials", response)
    return data
