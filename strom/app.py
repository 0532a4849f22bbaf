"""The composition root: builds Strom's parts from the configuration and runs them.

This is the one module of the core that may import the I/O packages (``ocpp_server``,
``agent``, ``lnurl_server``). Everything it starts is owned by one :class:`asyncio.TaskGroup`,
so a failure in any part stops the service instead of leaving it half-alive.

Start order: database (migrate, sync chargers) → lightning backend (node info) → reconcile
pending invoices → OCPP server → HTTP server → background loops (effect runner, settlement
stream, invoice expiry). Stop order is the reverse, and bounded: what still runs
:attr:`Strom.shutdown_timeout_s` after the stop is logged and cancelled (:mod:`strom.shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from agent.nostr.keys import encode_npub
from agent.runtime import AgentRuntime
from cockpit import API_PREFIX, Cockpit
from lnurl_server.lnurl import LnurlError, bech32_lnurl
from lnurl_server.pages import Pages
from lnurl_server.ratelimit import RateLimiter
from lnurl_server.routes import FrontDoor, storage_errors
from ocpp_server import (
    ChargerAuth,
    OcppServer,
    OcppServerSettings,
    StaticChargerAuth,
    parse_quirks,
)
from strom.charging import ChargingEffects
from strom.config import ProfileConfig, StromConfig
from strom.core_events import CoreEventSink
from strom.effects import EffectRunner, Handler
from strom.errors import BackendError, ConfigError
from strom.lightning import FakeBackend, LightningBackend, create_backend
from strom.ocpp_core import DatabaseOcppCore
from strom.payments import PaymentService
from strom.refunds import RefundService
from strom.shutdown import run_until_stopped
from strom.sockets import claim_http_socket
from strom.storage.chargers import ChargerStore
from strom.storage.db import Database, redact_url
from strom.storage.outbox import OutboxStore
from strom.storage.sessions import SessionStore

__all__ = ["Strom", "check_public_url"]

log = logging.getLogger(__name__)

EXPIRY_SWEEP_S = 15.0
SHUTDOWN_TIMEOUT_S = 10.0  # Docker's stop timeout: what hangs longer is logged and cancelled


class _ClientErrors(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's server logger, with a client's malformed request as a warning, not an error.

    aiohttp logs every unparseable request (an 8 KB URL, a broken header) with the traceback
    at ERROR; anyone on the internet can send those, and operators should not be paged for
    them. Errors of Strom's own handlers stay errors.
    """

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        exc = exc if isinstance(exc, BaseException) else sys.exc_info()[1]
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 500) < 500:
            kwargs.pop("exc_info", None)
            self.warning(f"{msg}: %s", *args, exc.message, **kwargs)
            return
        super().exception(msg, *args, **kwargs)


def check_public_url(public_url: str) -> None:
    """Refuse to advertise LNURLs wallets must reject (LUD-01: https, or http for onion/local).

    Raises:
        ConfigError: the public URL is plain http on a public host.
    """
    try:
        bech32_lnurl(f"{public_url}/lnurlp/x/1")
    except LnurlError:
        raise ConfigError(
            f"server.public_url {public_url!r}: LNURLs on a public host must be https:// "
            "(LUD-01 allows http:// only for .onion and local development); configure "
            "server.tls_cert/tls_key or a TLS proxy and an https:// public_url"
        ) from None


def _ssl_context(cert: Path | None, key: Path | None, what: str) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError(f"{what}: tls_cert and tls_key must be given together")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{what}: cannot load TLS certificate {cert} / key {key}: {exc}"
        ) from None
    return context


def _ocpp_settings(config: StromConfig) -> OcppServerSettings:
    ocpp = config.ocpp
    return OcppServerSettings(
        host=ocpp.host,
        port=ocpp.port,
        tls_cert=ocpp.tls_cert,
        tls_key=ocpp.tls_key,
        heartbeat_interval_s=ocpp.heartbeat_interval_s,
        meter_value_sample_interval_s=ocpp.meter_interval_s,
        auto_register=ocpp.auto_register,
        command_timeout_s=ocpp.command_timeout_s,
    )


def _admission(profile: ProfileConfig) -> ChargerAuth:
    """How the OCPP server admits this charger.

    Raises:
        ConfigError: unknown OCPP quirks in the profile.
    """
    try:
        quirks = parse_quirks(profile.ocpp.quirks)
    except ValueError as exc:
        raise ConfigError(f"profiles/{profile.id}.toml: key 'ocpp': {exc}") from None
    return ChargerAuth(
        charger_id=profile.id,
        password_hash=profile.ocpp.password_hash or None,
        quirks=quirks,
        connectors=max(c.id for c in profile.connectors),
    )


def _charger_auth(config: StromConfig) -> StaticChargerAuth:
    return StaticChargerAuth(_admission(profile) for profile in config.profiles)


@dataclass
class Strom:
    """A running Strom: database, stores, lightning, OCPP and HTTP servers, loops."""

    config: StromConfig
    db: Database
    sessions: SessionStore
    chargers: ChargerStore
    backend: LightningBackend
    payments: PaymentService
    refunds: RefundService
    events: CoreEventSink
    ocpp: OcppServer
    runner: EffectRunner
    front: FrontDoor
    agents: AgentRuntime
    cockpit: Cockpit
    auth: StaticChargerAuth
    http: web.AppRunner | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S
    http_socket: socket.socket | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, config: StromConfig, *, backend: LightningBackend | None = None) -> Strom:
        """Build every part; connect the database and the lightning backend.

        With ``server.port = 0`` the HTTP socket is bound here, on any free port, and the
        configuration names that port (and the public URL too, unless one was configured),
        so links built from it are right; :meth:`serve` listens on that socket.

        Raises:
            ConfigError: an inconsistent configuration (public URL, TLS files, quirks).
            StorageError: the database cannot be reached or migrated.
            BackendError: the lightning backend cannot be reached.
            OSError: ``server.port = 0`` and no port can be bound on ``server.host``.
        """
        config, http_socket = claim_http_socket(config)
        try:
            strom = await cls._open(config, backend=backend)
        except BaseException:
            if http_socket is not None:
                http_socket.close()
            raise
        strom.http_socket = http_socket
        return strom

    @classmethod
    async def _open(cls, config: StromConfig, *, backend: LightningBackend | None) -> Strom:
        check_public_url(config.server.public_url)
        auth = _charger_auth(config)
        db = Database.from_url(config.storage.url())
        log.info("database: %s", redact_url(config.storage.url()))
        await db.upgrade()
        chargers = ChargerStore(db)
        await chargers.sync(config.profiles)
        sessions = SessionStore(db)
        if backend is None:
            backend = create_backend(config.lightning, data_dir=config.storage.data_dir)
        info = await backend.node_info()
        log.info(
            "lightning: %s (%s)%s",
            info.backend,
            info.network,
            "" if info.real_money else " — FAKE BACKEND, NO REAL MONEY MOVES",
        )
        payments = PaymentService(
            sessions, backend, config.sessions, meter_interval_s=config.ocpp.meter_interval_s
        )
        refunds = RefundService(sessions, backend, config.sessions, network=info.network)
        events = CoreEventSink(chargers)

        async def connector_changed(_event: object) -> None:
            payments.forget_view()  # offers answer from a view of connectors; keep it fresh

        events.subscribers.append(connector_changed)
        ocpp = OcppServer(_ocpp_settings(config), auth, DatabaseOcppCore(sessions), events)
        agents = AgentRuntime(
            config,
            db=db,
            sessions=sessions,
            payments=payments,
            backend=backend,
            commands=ocpp.commands,
        )
        payments.tariff_for = agents.tariff_for  # operators' price overrides (DM "price …")
        events.subscribers.append(agents.on_ocpp_event)
        handlers: dict[str, Handler] = {
            **ChargingEffects(sessions, ocpp.commands).handlers(),
            **agents.handlers(),
            "pay_refund": refunds.pay,
        }
        runner = EffectRunner(OutboxStore(db), handlers)
        sessions.listeners.append(lambda _transition: runner.wake())
        agents.on_outbox_due = runner.wake  # a relay came back: waiting DMs go now
        front = FrontDoor(
            config=config,
            store=sessions,
            chargers=chargers,
            payments=payments,
            refunds=refunds,
            pages=Pages(
                config.server.fiat_per_btc or None,
                config.server.fiat_currency,
                fake_backend=isinstance(backend, FakeBackend),
            ),
            per_client=RateLimiter(per_minute=20, burst=10),
            per_charger=RateLimiter(per_minute=120, burst=60),
            identities=agents,
            on_zap_session=agents.remember_session_secret,
        )
        cockpit = Cockpit(
            config=config,
            db=db,
            sessions=sessions,
            chargers=chargers,
            payments=payments,
            refunds=refunds,
            ocpp=ocpp,
            agents=agents,
            backend=backend,
            events=events,
        )
        strom = cls(
            config=config,
            db=db,
            sessions=sessions,
            chargers=chargers,
            backend=backend,
            payments=payments,
            refunds=refunds,
            events=events,
            ocpp=ocpp,
            runner=runner,
            front=front,
            agents=agents,
            cockpit=cockpit,
            auth=auth,
        )
        cockpit.api.apply_profile = strom.apply_profile
        return strom

    async def apply_profile(self, profile: ProfileConfig) -> None:
        """Add a charger, or change one, while Strom runs (the profile file is written already).

        Every part that knows the chargers learns it: the configuration every part reads
        (replaced, it stays immutable), the OCPP admission (from the charger's next
        connection), the database rows, the offers and the charger's agent.

        Raises:
            ConfigError: the profile's OCPP quirks are unknown.
        """
        admission = _admission(profile)
        profiles = [p for p in self.config.profiles if p.id != profile.id]
        config = self.config.model_copy(update={"profiles": (*profiles, profile)})
        self.config = config
        self.front.config = config
        self.cockpit.config = config
        self.cockpit.api.config = config
        self.cockpit.metrics.chargers = len(config.profiles)
        self.auth.add(admission)
        # A charger held for approval is let go: it reconnects at once and is admitted.
        self.ocpp.forget_pending(profile.id)
        await self.chargers.sync((profile,))
        self.payments.forget_view()
        await self.agents.apply_profile(profile)
        log.info("charger %s: profile applied (%d charger(s))", profile.id, len(config.profiles))

    def web_app(self) -> web.Application:
        """The aiohttp application: front door, health, operator API, metrics, admin UI."""
        app = web.Application(middlewares=[storage_errors])
        app.add_routes(self.front.routes())
        app.router.add_get("/healthz", self._healthz)
        app.add_routes(self.cockpit.routes())
        app.add_subapp(API_PREFIX, self.cockpit.api_app())
        return app

    @property
    def http_port(self) -> int:
        """The HTTP port served (the bound one when ``server.port`` was 0)."""
        return self.config.server.port

    @property
    def ocpp_port(self) -> int:
        """The OCPP port listened on, once serving (the bound one when ``ocpp.port`` was 0)."""
        return self.ocpp.port

    async def serve(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; then shut every part down in reverse order.

        The stop is bounded: what still runs :attr:`shutdown_timeout_s` after ``stop`` is
        logged (where it waits) and cancelled, so the call returns soon after that in any
        case (:func:`strom.shutdown.run_until_stopped`).
        """
        await run_until_stopped(self._serve(stop), stop, within_s=self.shutdown_timeout_s)

    async def _serve(self, stop: asyncio.Event) -> None:
        server = self.config.server
        context = _ssl_context(server.tls_cert, server.tls_key, "server")
        settled = await self.payments.reconcile()
        if settled:
            log.info("reconciled %d invoice(s) settled while Strom was down", settled)
        await self.ocpp.start()
        self.http = web.AppRunner(self.web_app(), access_log=None, logger=_ClientErrors(log))
        try:
            await self.http.setup()
            site: web.BaseSite
            if self.http_socket is not None:
                site = web.SockSite(self.http, self.http_socket, ssl_context=context)
            else:
                site = web.TCPSite(self.http, server.host, server.port, ssl_context=context)
            await site.start()
            log.info(
                "serving HTTP on %s:%s (public URL %s), OCPP on %s:%s; %d charger(s)",
                server.host,
                server.port,
                server.public_url,
                self.config.ocpp.host,
                self.ocpp_port,
                len(self.config.profiles),
            )
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(self.runner.run(), name="effect-runner"),
                    group.create_task(self._watch_settlements(), name="settlements"),
                    group.create_task(self._sweep_expired(), name="invoice-expiry"),
                ]
                agents = group.create_task(self.agents.run(stop), name="agents")
                await self._wait_ready(agents)
                self._announce()
                self.ready.set()
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            await self.http.cleanup()
            await self.ocpp.stop()
            await self.backend.aclose()
            await self.db.close()
            log.info("stopped")

    def _announce(self) -> None:
        """Log where each charger can be reached: page, OCPP URL, nostr identity."""
        base = self.config.server.public_url
        scheme = "wss" if self.config.ocpp.tls_cert else "ws"
        for profile in self.config.profiles:
            pubkey = self.agents.pubkey(profile.id)
            log.info(
                "charger %s: page %s/c/%s, OCPP %s://<this host>:%s/ocpp/%s, nostr %s",
                profile.id,
                base,
                profile.id,
                scheme,
                self.ocpp_port,
                profile.id,
                encode_npub(pubkey) if pubkey else "-",
            )

    async def _wait_ready(self, agents: asyncio.Task[None]) -> None:
        ready = asyncio.ensure_future(self.agents.ready.wait())
        try:
            await asyncio.wait({ready, agents}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
        if agents.done():
            agents.result()  # the agents failed to start: raise it

    async def _watch_settlements(self) -> None:
        async with self.backend.settled_invoices(self.payments.pending_hashes) as stream:
            async for settlement in stream:
                await self.payments.settle(settlement.payment_hash, settlement.amount_msat)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_S)
            try:
                await self.payments.expire_due()
            except BackendError as exc:
                log.warning("invoice expiry sweep: lightning backend unavailable: %s", exc)

    async def _healthz(self, request: web.Request) -> web.Response:
        outbox = await OutboxStore(self.db).counts()
        return web.json_response(
            {
                "status": "ok",
                "chargers": len(self.config.profiles),
                "chargers_online": len(self.ocpp.online_chargers()),
                "outbox": outbox,
            }
        )
