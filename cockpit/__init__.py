"""The operator's cockpit: REST API, live websocket, Prometheus metrics and the admin UI.

* ``/api/v1/…`` — the REST API (:mod:`cockpit.api`), described by ``/api/v1/openapi.json``.
* ``/api/v1/ws`` — live events (:mod:`cockpit.live`).
* ``/metrics`` — Prometheus (:mod:`cockpit.metrics`); needs a token like the API.
* ``/admin/`` — the admin UI: static HTML, CSS and JavaScript served from ``cockpit/static``
  (no build step), which talks to the API and the websocket.

Only the composition root (``strom.app``) and the CLI import this package.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from cockpit.api import Api, ApiContext, ProfileApplier
from cockpit.auth import Authenticator, AuthFailed, Forbidden
from cockpit.endpoint import error_response
from cockpit.firstrun import FirstRun
from cockpit.live import LiveHub
from cockpit.metrics import CONTENT_TYPE, Metrics
from cockpit.openapi import API_PREFIX, openapi_document
from cockpit.tokens import TokenStore
from cockpit.uploads import ChargerUploads
from strom_core import __version__
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig
from strom_core.ports.agents import NostrAgents
from strom_core.ports.ocpi import OcpiPartners
from strom_core.ports.station import ChargerStation, QuirkCheck
from strom_lightning import LightningBackend, NodeWatch
from strom_prices import DynamicPricing
from strom_services.core_events import CoreEventSink
from strom_services.local_list import LocalListService
from strom_services.payments import PaymentService
from strom_services.power import PowerService
from strom_services.refunds import RefundService
from strom_services.roaming import RoamingService
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.outbox import OutboxStore
from strom_storage.reports import Reports
from strom_storage.sessions import SessionStore
from strom_web.csp import websocket_origin

__all__ = ["API_PREFIX", "Cockpit"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Aiohttp's own 404 and 405 below /api/v1 in the API's JSON error shape."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "error")
        response = error_response(exc.status, code, exc.reason)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response


class Cockpit:
    """The API, the websocket hub and the metrics over Strom's parts.

    Everything comes in here: the cockpit sets nothing on the parts it is given. It registers
    its hub as a listener of the session store, the OCPP events, the lightning node and the
    agents' status publications, each through the list or method the part offers for it.

    Args:
        config: the configuration in force, read at each use (a reload replaces it there).
        db: the database.
        sessions: the session store.
        chargers: the chargers' and connectors' rows.
        payments: the payment service.
        refunds: the refund service (checks a payer's session secret on the websocket).
        ocpp: the OCPP server, as the cockpit's port sees it.
        agents: the nostr agents, as the cockpit's port sees them.
        backend: the lightning backend (metrics ask it when no node watch is given).
        events: the OCPP events of the core.
        check_quirks: checks the OCPP quirk names of a profile written through the API.
        node: the lightning node's watch.
        apply_profile: applies a profile written through the API to the running Strom;
            without it a changed profile takes effect at the next start.
        power: the chargers' power limits (site limit, composite schedule).
        local_lists: keeps the chargers' local lists equal to their cards (the cards page
            reports what the charger answered to a change).
        prices: the dynamic prices and their providers' health (``GET .../prices``).
        setup_password: the owner's setup password for the first-run page
            (:mod:`cockpit.firstrun`); None makes one for this run.
        ocpi: the OCPI roaming partners, when ``[ocpi]`` is on.
        roaming: the roaming partners' receivables and payment terms (used with ``ocpi``).
        clock: the time of audit rows, tokens, NIP-98 checks and live messages.
    """

    def __init__(
        self,
        *,
        config: LiveConfig,
        db: Database,
        sessions: SessionStore,
        chargers: ChargerStore,
        payments: PaymentService,
        refunds: RefundService,
        ocpp: ChargerStation,
        agents: NostrAgents,
        backend: LightningBackend,
        events: CoreEventSink,
        check_quirks: QuirkCheck,
        node: NodeWatch | None = None,
        apply_profile: ProfileApplier | None = None,
        power: PowerService | None = None,
        local_lists: LocalListService | None = None,
        prices: DynamicPricing | None = None,
        setup_password: str | None = None,
        ocpi: OcpiPartners | None = None,
        roaming: RoamingService | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.config = config
        current = config.current
        reports = Reports(db)
        self.tokens = TokenStore(db, clock)
        self.auth = Authenticator(
            db, self.tokens, current.nostr.admin_npubs, current.server.public_url, clock
        )
        self.first_run = FirstRun(self.tokens, setup_password, clock)
        self.uploads = ChargerUploads(
            current.storage.data_dir / "diagnostics",
            lambda: config.current.uploads,
            lambda: config.current.server.public_url,
            clock,
        )
        self.api = Api(
            ApiContext(
                live=config,
                db=db,
                reports=reports,
                sessions=sessions,
                chargers=chargers,
                payments=payments,
                station=ocpp,
                agents=agents,
                check_quirks=check_quirks,
                clock=clock,
                node=node,
                apply_profile=apply_profile,
                power=power,
                local_lists=local_lists,
                prices=prices,
                ocpi=ocpi,
                roaming=roaming,
            ),
            self.uploads,
        )
        self.live = LiveHub(self.auth, refunds, clock)
        if node is not None:
            node.on_change(self.live.on_lightning)
        sessions.on_committed(self.live.on_transition)
        events.subscribe(self.live.on_ocpp_event)
        agents.add_status_listener(self.live.on_status)
        self.metrics = Metrics(
            config=config,
            reports=reports,
            outbox=OutboxStore(db),
            ocpp=ocpp,
            agents=agents,
            backend=backend,
            node=node,
            live_subscribers=lambda: self.live.subscribers,
            clock=clock,
        )
        self.endpoints = self.api.endpoints()
        self._openapi: bytes | None = None

    def api_app(self) -> web.Application:
        """The sub-application to mount at ``/api/v1``."""
        app = web.Application(middlewares=[_json_errors])
        app.add_routes([e.route(self.auth, self.api.write_audit) for e in self.endpoints])
        app.router.add_get("/openapi.json", self._openapi_json)
        app.router.add_get("/ws", self.live.handle)
        return app

    def routes(self) -> list[web.AbstractRouteDef]:
        """The routes outside ``/api/v1``: metrics, admin UI, first-run sign-in, charger uploads."""
        return [
            *self.first_run.routes(),
            *self.uploads.routes(),
            web.get("/metrics", self._metrics),
            web.get("/admin", self._admin_redirect),
            web.get("/admin/", self._admin_index),
            web.static("/admin/static", STATIC, append_version=False),
        ]

    def openapi(self) -> dict[str, Any]:
        """The OpenAPI document."""
        return openapi_document(self.endpoints, self.config.current.server.public_url, __version__)

    async def _openapi_json(self, request: web.Request) -> web.Response:
        if self._openapi is None:
            self._openapi = orjson.dumps(self.openapi())
        return web.Response(body=self._openapi, content_type="application/json")

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            await self.auth.authenticate(
                request.headers.get("Authorization"),
                method=request.method,
                path_qs=request.raw_path,
                body=None,
            )
        except AuthFailed as exc:
            return error_response(401, "unauthorized", str(exc))
        except Forbidden as exc:
            return error_response(403, "forbidden", str(exc))
        body = await self.metrics.render()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _admin_redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/admin/")

    async def _admin_index(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(
            STATIC / "index.html",
            headers={
                "Cache-Control": "no-store",
                # The UI loads nothing from elsewhere, runs no inline script, and talks only
                # to its own API and websocket (named explicitly too: see strom_web.csp).
                "Content-Security-Policy": (
                    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
                    "script-src 'self'; connect-src 'self' "
                    f"{websocket_origin(self.config.current.server.public_url)}; "
                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                ),
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
            },
        )
