"""Strom's OCPI endpoints under ``/ocpi/`` (aiohttp): versions, version details, the modules.

Theory of operation: the modules served are data. Each is a :class:`Module` (identifier, the
interface roles it implements, one handler per HTTP method, and who may call it) registered
with :meth:`OcpiServer.register`; the version details list exactly the registered modules, and
``/ocpi/2.2.1/<identifier>[/...]`` dispatches to them. Every request passes one middleware
that:

1. makes the answer's ``X-Request-ID`` / ``X-Correlation-ID`` (echoed, or new: see
   :func:`~ocpi_server.protocol.response_ids`);
2. finds the partner by its credentials token (``Authorization: Token …``): token A of an
   offer, the registered token, or the next token of an exchange Strom began. A missing or
   unknown token is HTTP 401 with OCPI status 2000; token A (or a token of an unfinished
   exchange) on anything but versions, details and credentials is 401 too (transport and
   format, "Authorization header"); a blocked partner gets HTTP 403 on the modules;
3. turns an :class:`~ocpi_server.protocol.OcpiError` into its envelope (a body that is not
   JSON: HTTP 400), a database failure into 3000 with HTTP 503;
4. records the request in ``ocpi_log`` (tokens in bodies masked).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import orjson
from aiohttp import web

from ocpi_server.client import excerpt
from ocpi_server.protocol import (
    CORRELATION_ID,
    OCPI_VERSION,
    REQUEST_ID,
    InterfaceRole,
    OcpiError,
    Routing,
    StatusCode,
    envelope,
    response_ids,
    token_candidates,
)
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig
from strom_core.errors import StorageError
from strom_storage.ocpi import OcpiLogEntry, OcpiPartnerRow, OcpiStore

__all__ = [
    "Access",
    "Answer",
    "Handler",
    "Module",
    "OcpiRequest",
    "OcpiServer",
    "Standing",
    "token_hash",
]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
Standing = Literal["a", "next", "registered"]


def token_hash(token: str) -> str:
    """The sha256 (hex) of a credentials token: what is stored instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Access(Enum):
    """Who may call a module."""

    REGISTERED = "registered"  # a registered partner's token only
    CREDENTIALS = "credentials"  # also token A and the token of an unfinished exchange


@dataclass(frozen=True, slots=True)
class Answer:
    """What a handler answers: the envelope's data and status, the HTTP status and headers."""

    data: Any = None
    status: StatusCode = StatusCode.SUCCESS
    message: str | None = None
    http_status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class OcpiRequest:
    """One authenticated request to a module.

    Attributes:
        request: the aiohttp request.
        partner: the calling partner.
        token: the credentials token it authenticated with.
        standing: which of the partner's tokens that is.
        routing: the routing headers.
        ids: the answer's request and correlation ids.
        tail: the path below the module's URL ("" or "/…").
        body: the request body (at most 1 MiB).
    """

    request: web.Request
    partner: OcpiPartnerRow
    token: str
    standing: Standing
    routing: Routing
    ids: dict[str, str]
    tail: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON.

        Raises:
            OcpiError: HTTP 400, status 2000: no body, or not JSON.
        """
        if not self.body:
            raise OcpiError(StatusCode.CLIENT_ERROR, "a JSON body is required", 400)
        try:
            return orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise OcpiError(StatusCode.CLIENT_ERROR, "the body is not valid JSON", 400) from None


Handler = Callable[[OcpiRequest], Awaitable[Answer]]


@dataclass(frozen=True, slots=True)
class Module:
    """One OCPI module Strom serves.

    Attributes:
        identifier: the ModuleID (``locations``) and the last part of its URL.
        roles: the interface roles listed for it in the version details.
        handlers: HTTP method → handler.
        access: who may call it.
        offered_to: which partners it is announced to and serves (a custom module is only
            for the partners that agreed to it); None: every partner.
    """

    identifier: str
    roles: tuple[InterfaceRole, ...]
    handlers: Mapping[str, Handler]
    access: Access = Access.REGISTERED
    offered_to: Callable[[OcpiPartnerRow], bool] | None = None

    def offered(self, partner: OcpiPartnerRow | None) -> bool:
        """Whether ``partner`` (None: nobody in particular) is offered this module."""
        return self.offered_to is None or (partner is not None and self.offered_to(partner))


@dataclass(slots=True)
class _State:
    """What the middleware learns about one request, for the answer and the log."""

    ids: dict[str, str]
    body: bytes = b""
    partner_id: int | None = None
    status_code: int | None = None


_STATE = web.RequestKey("ocpi_state", _State)


class OcpiServer:
    """The ``/ocpi`` sub-application.

    Args:
        live: the configuration in force (``server.public_url``, ``[ocpi]``).
        store: partners and the log.
        clock: the envelope's timestamp and the log's time.
    """

    def __init__(self, live: LiveConfig, store: OcpiStore, clock: Clock = SYSTEM_CLOCK) -> None:
        self.live = live
        self.store = store
        self.clock = clock
        self.modules: dict[str, Module] = {}

    @property
    def base_url(self) -> str:
        """The public URL of ``/ocpi``."""
        return self.live.current.server.public_url + "/ocpi"

    @property
    def versions_url(self) -> str:
        """The versions endpoint handed to partners."""
        return self.base_url + "/versions"

    @property
    def page_limit(self) -> int:
        """The most objects one page of a list answers (``[ocpi] page_limit``)."""
        return self.live.current.ocpi.page_limit

    def register(self, module: Module) -> None:
        """Serve a module (and list it in the version details).

        Raises:
            ValueError: a module with that identifier is served already.
        """
        if module.identifier in self.modules:
            raise ValueError(f"OCPI module {module.identifier!r} is registered already")
        self.modules[module.identifier] = module

    def app(self) -> web.Application:
        """The sub-application to mount at ``/ocpi``."""
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/versions", self._versions)
        app.router.add_get(f"/{OCPI_VERSION}", self._details)
        app.router.add_route("*", f"/{OCPI_VERSION}/{{module}}", self._module)
        app.router.add_route("*", f"/{OCPI_VERSION}/{{module}}/{{tail:.*}}", self._module)
        app.router.add_route("*", "/{anything:.*}", self._not_found)
        return app

    # --- the two configuration endpoints ---------------------------------------------------

    async def _versions(self, request: web.Request) -> web.Response:
        await self._partner(request, Access.CREDENTIALS)
        data = [{"version": OCPI_VERSION, "url": f"{self.base_url}/{OCPI_VERSION}"}]
        return self._respond(request, Answer(data))

    async def _details(self, request: web.Request) -> web.Response:
        partner, _, _ = await self._partner(request, Access.CREDENTIALS)
        return self._respond(request, Answer(self.details(partner)))

    def details(self, partner: OcpiPartnerRow | None = None) -> dict[str, Any]:
        """The version details: every module offered to ``partner``, once per role."""
        root = f"{self.base_url}/{OCPI_VERSION}"
        endpoints = [
            {"identifier": module.identifier, "role": role.value, "url": f"{root}/{identifier}"}
            for identifier, module in self.modules.items()
            if module.offered(partner)
            for role in module.roles
        ]
        return {"version": OCPI_VERSION, "endpoints": endpoints}

    # --- modules ------------------------------------------------------------------------------

    async def _module(self, request: web.Request) -> web.Response:
        module = self.modules.get(request.match_info["module"])
        if module is None:
            await self._partner(request, Access.REGISTERED)  # strangers learn nothing
            raise OcpiError(StatusCode.CLIENT_ERROR, "no such OCPI module here", 404)
        partner, token, kind = await self._partner(request, module.access)
        if not module.offered(partner):  # a custom module this partner did not agree to
            raise OcpiError(StatusCode.CLIENT_ERROR, "no such OCPI module here", 404)
        if module.access is Access.REGISTERED and partner.blocked:
            raise OcpiError(StatusCode.CLIENT_ERROR, "this partner is blocked by the CPO", 403)
        handler = module.handlers.get(request.method)
        if handler is None:
            raise OcpiError(
                StatusCode.CLIENT_ERROR,
                f"{request.method} is not served by {module.identifier}",
                405,
            )
        body = _state(request).body
        tail = request.match_info.get("tail", "")
        call = OcpiRequest(
            request=request,
            partner=partner,
            token=token,
            standing=kind,
            routing=Routing.parse(request.headers),
            ids=_state(request).ids,
            tail=f"/{tail}" if tail else "",
            body=body,
        )
        return self._respond(request, await handler(call))

    async def _not_found(self, request: web.Request) -> web.Response:
        await self._partner(request, Access.CREDENTIALS)
        raise OcpiError(StatusCode.CLIENT_ERROR, "no such OCPI endpoint", 404)

    async def _partner(
        self, request: web.Request, access: Access
    ) -> tuple[OcpiPartnerRow, str, Standing]:
        """The calling partner, the token it used and which token that is.

        Raises:
            OcpiError: HTTP 401: no token, an unknown one, or one not good for ``access``.
        """
        candidates = token_candidates(request.headers.get("Authorization"))
        if not candidates:
            raise OcpiError(
                StatusCode.CLIENT_ERROR, "missing Authorization: Token <credentials token>", 401
            )
        for token in candidates:
            digest = token_hash(token)
            partner = await self.store.by_any_token(digest)
            if partner is None:
                continue
            _state(request).partner_id = partner.id
            kind: Standing = (
                "registered"
                if digest == partner.token_hash and partner.state == "registered"
                else "a"
                if digest == partner.token_a_hash
                else "next"
            )
            if access is Access.REGISTERED and kind != "registered":
                raise OcpiError(
                    StatusCode.CLIENT_ERROR,
                    "this token is only good for versions and credentials until registration",
                    401,
                )
            return partner, token, kind
        raise OcpiError(StatusCode.CLIENT_ERROR, "unknown credentials token", 401)

    # --- answers and the log -------------------------------------------------------------------

    def _respond(self, request: web.Request, answer: Answer) -> web.Response:
        state = _state(request)
        state.status_code = int(answer.status)
        body = envelope(answer.data, self.clock.now(), answer.status, answer.message)
        return web.Response(
            body=orjson.dumps(body),
            status=answer.http_status,
            content_type="application/json",
            headers={**answer.headers, **state.ids},
        )

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        state = _State(response_ids(request.headers))
        request[_STATE] = state
        try:
            state.body = await request.read()
            response = await handler(request)
        except OcpiError as exc:
            response = self._respond(
                request,
                Answer(status=exc.status_code, message=exc.message, http_status=exc.http_status),
            )
        except web.HTTPRequestEntityTooLarge:
            response = self._respond(
                request,
                Answer(
                    status=StatusCode.CLIENT_ERROR, message="the body is too large", http_status=413
                ),
            )
        except StorageError as exc:
            log.error("ocpi: %s %s: storage failed: %s", request.method, request.path, exc)
            response = self._respond(
                request,
                Answer(status=StatusCode.SERVER_ERROR, message="try again later", http_status=503),
            )
        await self._log(request, response, state)
        return response

    async def _log(self, request: web.Request, response: web.StreamResponse, state: _State) -> None:
        if state.status_code is not None and state.status_code != StatusCode.SUCCESS:
            log.warning(
                "ocpi in: %s %s partner=%s http=%s status_code=%s request_id=%s",
                request.method,
                request.path,
                state.partner_id,
                response.status,
                state.status_code,
                state.ids[REQUEST_ID],
            )
        body = state.body
        if not body and isinstance(response, web.Response) and isinstance(response.body, bytes):
            body = response.body
        try:
            await self.store.log(
                OcpiLogEntry(
                    partner_id=state.partner_id,
                    direction="in",
                    method=request.method,
                    url=request.path_qs,
                    http_status=response.status,
                    status_code=state.status_code,
                    request_id=state.ids[REQUEST_ID],
                    correlation_id=state.ids[CORRELATION_ID],
                    at=self.clock.now(),
                    excerpt=excerpt(body),
                )
            )
        except StorageError as exc:
            log.error("ocpi: log row lost for %s %s: %s", request.method, request.path, exc)


def _state(request: web.Request) -> _State:
    return request[_STATE]  # set by the middleware before any handler runs
