"""One declaration per endpoint: the aiohttp route, the checks around it, and its OpenAPI entry.

Every endpoint is an :class:`Endpoint`: method, path, handler, the pydantic models of its
query, body and answer, and — for calls that change something — the audit action. The
dispatcher wraps each handler the same way: read the body (64 KiB at most), authenticate,
require the admin scope for mutating calls, validate query and body, run, and write the
audit row with the outcome. The OpenAPI document (:mod:`cockpit.openapi`) is generated from
the same declarations, so it cannot drift from what is served.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from cockpit.auth import Authenticator, AuthFailed, Forbidden, Principal
from strom_core.errors import StorageError
from strom_core.ids import CHARGER_ID_RULE, is_charger_id
from strom_web.clients import client_of

__all__ = [
    "MAX_BODY_BYTES",
    "ApiError",
    "Call",
    "Endpoint",
    "Handler",
    "Resource",
    "error_response",
    "validation_text",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


class ApiError(Exception):
    """An answer other than success: HTTP status, machine code, sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> web.Response:
    """The JSON body of every error."""
    response = web.json_response(
        {"error": code, "message": message}, status=status, dumps=lambda v: orjson.dumps(v).decode()
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="strom", Nostr'
    return response


@dataclass(slots=True)
class Call:
    """One authenticated, validated request."""

    request: web.Request
    principal: Principal
    query: Any
    body: Any
    audit_detail: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> str:
        """A path parameter."""
        return self.request.match_info[name]


Handler = Callable[[Call], Awaitable[BaseModel | web.StreamResponse]]
Audit = Callable[[Principal, str, str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One API operation."""

    method: str
    path: str  # below /api/v1, OpenAPI style: /chargers/{charger_id}
    handler: Handler
    summary: str
    tag: str
    response: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    action: str | None = None  # audit action: set for every call that changes something
    target: str = ""  # the path parameter naming what is acted on, for the audit row
    media: tuple[str, ...] = ("application/json",)
    not_found: bool = True  # whether a path parameter can name nothing (404)
    conflict: bool = False  # whether the call can be refused in the current state (409)
    operation_id: str = ""

    def route(self, auth: Authenticator, audit: Audit) -> web.RouteDef:
        """The aiohttp route that runs this endpoint with every check."""

        async def dispatch(request: web.Request) -> web.StreamResponse:
            return await self._dispatch(request, auth, audit)

        return web.route(self.method, self.path, dispatch)

    async def _dispatch(
        self, request: web.Request, auth: Authenticator, audit: Audit
    ) -> web.StreamResponse:
        try:
            call = await self._admit(request, auth)
        except ApiError as exc:
            if exc.status in (401, 403):
                log.warning(
                    "api: %s %s from %s refused: %s",
                    request.method,
                    request.path,
                    client_of(request).address,
                    exc.message,
                )
            return error_response(exc.status, exc.code, exc.message)
        status = 500
        try:
            answer = await self.handler(call)
            if isinstance(answer, web.StreamResponse):
                status = answer.status
                return answer
            status = 200
            return web.Response(
                body=answer.model_dump_json().encode(),
                content_type="application/json",
                headers={"Cache-Control": "no-store"},  # some answers carry a secret once
            )
        except ApiError as exc:
            status = exc.status
            return error_response(exc.status, exc.code, exc.message)
        except StorageError as exc:
            status = 503
            log.error("api: %s %s: storage failed: %s", request.method, request.path, exc)
            return error_response(503, "storage_unavailable", "the database failed; try again")
        finally:
            if self.action is not None and status != 500:
                target = request.match_info.get(self.target, "") if self.target else ""
                detail = {**call.audit_detail, "http": status}
                try:
                    await audit(call.principal, self.action, target, detail)
                except StorageError as exc:  # the answer stands; the log says what is missing
                    log.error(
                        "api: audit row lost for %s %s %s %s: %s",
                        call.principal.actor,
                        self.action,
                        target,
                        detail,
                        exc,
                    )

    async def _admit(self, request: web.Request, auth: Authenticator) -> Call:
        """Read, authenticate, authorise and validate a request.

        Raises:
            ApiError: 413, 401, 403 or 400.
        """
        body = await _read_body(request)
        try:
            principal = await auth.authenticate(
                request.headers.get("Authorization"),
                method=request.method,
                path_qs=request.raw_path,
                body=body,
            )
            if self.action is not None:
                principal.require_admin(self.action)
        except AuthFailed as exc:
            raise ApiError(401, "unauthorized", str(exc)) from None
        except Forbidden as exc:
            raise ApiError(403, "forbidden", str(exc)) from None
        charger_id = request.match_info.get("charger_id")
        if charger_id is not None and not is_charger_id(charger_id):
            raise ApiError(
                400, "bad_request", f"charger_id {charger_id!r}: expected {CHARGER_ID_RULE}"
            )
        return Call(request, principal, self._query(request), self._body(body))

    def _query(self, request: web.Request) -> Any:
        if self.query is None:
            if request.query:
                raise ApiError(400, "bad_request", "this endpoint takes no query parameters")
            return None
        values: dict[str, str] = {}
        for key, value in request.query.items():
            if key in values:
                raise ApiError(400, "bad_request", f"query parameter {key!r} is given twice")
            values[key] = value
        try:
            return self.query.model_validate(values)
        except ValidationError as exc:
            raise ApiError(400, "bad_request", validation_text(exc)) from None

    def _body(self, body: bytes) -> Any:
        if self.body is None:
            return None
        if not body:
            raise ApiError(400, "bad_request", "a JSON body is required")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ApiError(400, "bad_request", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "bad_request", "the body must be a JSON object")
        try:
            return self.body.model_validate(data)
        except ValidationError as exc:
            raise ApiError(400, "bad_request", validation_text(exc)) from None


class Resource(Protocol):
    """A part of the API: it declares its operations."""

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource, in the order of the OpenAPI document."""
        ...


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    body = b""
    while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body)):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, "too_large", f"the body is larger than {MAX_BODY_BYTES} bytes")
    return body


def validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(item) for item in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
