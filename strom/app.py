"""The composition root: builds Strom's parts from the configuration and runs them.

This is the one module of the core that may import the I/O packages (``ocpp_server``,
``agent``, ``lnurl_server``). Everything it starts is owned by one :class:`asyncio.TaskGroup`,
so a failure in any part stops the service instead of leaving it half-alive.

Start order: database (migrate, sync chargers) → lightning backend (one probe: Strom starts
whether or not the node answers) → reconcile pending invoices (when it answers) → OCPP server →
HTTP server → background loops (effect runner, settlement stream, node watch, invoice expiry,
retention sweep, the chargers' screens). Stop order is the reverse, and bounded: what still runs
:attr:`Strom.shutdown_timeout_s` after the stop is logged and cancelled (:mod:`strom.shutdown`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from agent.cluster import SUBJECT as AGENT_SUBJECT
from agent.cluster import ClusteredAgents
from agent.identity import POOL_KEY_NAME, SERVER_KEY_NAME
from agent.runtime import AgentRuntime
from agent.shared_keys import SharedKeyStore
from cockpit import API_PREFIX, Cockpit
from cockpit.live_bus import LiveFanout
from lnurl_server.map import NetworkMap
from lnurl_server.pages import Pages
from lnurl_server.ratelimit import RateLimiter
from lnurl_server.routes import FrontDoor, storage_errors
from ocpi_server import OcpiFrontDoor
from ocpp_server import (
    OcppServer,
    StaticChargerAuth,
    parse_quirks,
)
from ocpp_server.cluster import SUBJECT as OCPP_SUBJECT
from ocpp_server.cluster import ClusterChargers
from ocpp_server.local_list import OcppLocalList
from ocpp_server.power import OcppPowerLimits
from strom.acme import challenge_app
from strom.charger_ca import charger_ca
from strom.cluster import ClusterNode, Work
from strom.config import StromConfig
from strom.config_sync import ConfigSync
from strom.parts import admission as profile_admission
from strom.parts import (
    charger_auth,
    check_public_url,
    ocpp_dialects,
    ocpp_password_key,
    ocpp_settings,
    purpose_key,
    retention_sweep,
    screen_keeper,
    ssl_context,
    write_charger_password,
)
from strom.prices import PriceParts, RoutedPrices, build_prices
from strom.readiness import NamedCheck, Readiness, managed_certificate_check, standard_checks
from strom.shutdown import run_until_stopped
from strom.sockets import claim_http_socket
from strom.tls import ManagedCertificate
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import (
    LiveConfig,
    ProfileConfig,
    check_cluster,
    check_managed_tls,
)
from strom_core.errors import BackendError
from strom_core.ports import ChargerCommands, CommandResult
from strom_core.ports.prices import PriceSource, RateSource
from strom_core.ports.reservations import ReservationCommands
from strom_core.session_secrets import SESSION_KEY_LABEL, SessionSecrets
from strom_lightning import (
    FakeBackend,
    LightningBackend,
    NodeState,
    NodeWatch,
    SettlementStream,
    create_backend,
)
from strom_nostr.keys import encode_npub
from strom_services.cards import ProfileCards
from strom_services.charging import ChargingEffects
from strom_services.cheap import CheapCharging
from strom_services.core_events import CoreEventSink
from strom_services.effects import EffectRunner, Handler, RetryLater
from strom_services.idle import IdleWatch
from strom_services.local_list import LocalListService, profile_cards
from strom_services.ocpp_core import DatabaseOcppCore
from strom_services.orphans import OrphanWatch
from strom_services.partner_invoices import PartnerInvoices
from strom_services.payments import PaymentService
from strom_services.power import PowerService
from strom_services.profile_prices import ProfilePrices
from strom_services.refunds import RefundService
from strom_services.reservations import PayerReservations, ReservationEffects
from strom_services.roaming import PartnerTokenIndex, RoamingCards, RoamingService
from strom_services.screens import ScreenKeeper
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore, run_unheld_sweep
from strom_storage.db import Database, redact_url
from strom_storage.outbox import OutboxRow, OutboxStore
from strom_storage.outbox_claims import ClaimingOutboxStore
from strom_storage.partner_cdrs import PARTNER_CDR
from strom_storage.retention import Retention
from strom_storage.sealing import sealer_from_environ
from strom_storage.sessions import SessionStore
from strom_storage.tariffs import TariffRepository
from strom_web.clients import CLIENTS, ClientAddresses

__all__ = [
    "Strom",
    "check_public_url",
    "ocpp_password_key",
    "write_charger_password",
]

log = logging.getLogger(__name__)

EXPIRY_SWEEP_S = 15.0
SETUP_PASSWORD_VARIABLE: Final = "STROM_SETUP_PASSWORD"  # noqa: S105 - a variable name
SHUTDOWN_TIMEOUT_S = 10.0  # Docker's stop timeout: what hangs longer is logged and cancelled


async def _shared_keys(config: StromConfig, db: Database) -> SharedKeyStore:
    """A cluster's keys (agents', the relay pool's, the server's), one set in the database.

    Every process must sign as the same charger, hash passwords and derive session secrets
    with the same keys; this machine's key files are imported once, when the database has none.
    """
    names = [*(p.id for p in config.profiles), POOL_KEY_NAME, SERVER_KEY_NAME]
    return await SharedKeyStore.open(db, names, data_dir=config.storage.data_dir)


def _cluster_chargers(config: StromConfig, cluster: ClusterNode | None) -> ClusterChargers | None:
    """In a cluster: charger leases for this process's connections, commands to the owner."""
    if cluster is None:
        return None
    chargers = ClusterChargers(
        cluster.bus,
        cluster.leases,
        cluster.process_id,
        ttl_s=cluster.ttl_s,
        # The owner waits up to its command timeout for the charger; the bus adds little.
        request_timeout_s=config.ocpp.command_timeout_s + 5.0,
    )
    cluster.serve(OCPP_SUBJECT, chargers.handle)
    cluster.participate(chargers)  # the heartbeat renews the charger leases
    return chargers


def _outbox(db: Database, cluster: ClusterNode | None) -> OutboxStore:
    """The effect runner's outbox: read (one process), or claimed (one of several)."""
    if cluster is None:
        return OutboxStore(db)
    # Effects that talk to a charger run on the process holding its connection.
    return ClaimingOutboxStore(db, cluster.process_id, only_my_chargers=True, living_claimants=True)


def _ocpi(
    live: LiveConfig,
    db: Database,
    clock: Clock,
    tariffs: TariffBook,
    prices: PriceSource,
    rates: RateSource,
    events: CoreEventSink,
    sessions: SessionStore,
    roaming: RoamingService,
    chargers: ChargerCommands,
) -> OcpiFrontDoor | None:
    """With ``[ocpi]`` on: the OCPI front door (status and sessions pushed, commands, tokens)."""
    if not live.current.ocpi.enabled:
        return None
    sealer = sealer_from_environ(None, purpose="ocpi partner tokens")
    ocpi = OcpiFrontDoor(live, db, sealer, clock, tariffs=tariffs, prices=prices, rates=rates)
    events.subscribe(ocpi.pushes.on_event)  # EVSE status changes to partners
    sessions.on_committed(ocpi.pushes.on_transition)  # partners' sessions to them
    ocpi.serve_roaming(roaming, chargers)
    return ocpi


async def _ocpi_off(row: OutboxRow) -> None:
    """A partner's CDR while ``[ocpi]`` is off: it waits (retried) until OCPI is on again."""
    raise RetryLater(f"CDR {row.key}: [ocpi] is off, the partner cannot be reached")


def _profile_of(live: LiveConfig, charger_id: str) -> ProfileConfig | None:
    """The charger's profile in the configuration in force, or None."""
    return next((p for p in live.current.profiles if p.id == charger_id), None)


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


@dataclass
class Strom:
    """A running Strom: database, stores, lightning, OCPP and HTTP servers, loops."""

    live: LiveConfig  # the configuration in force, shared with every part that reads it later
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
    retention: Retention
    node: NodeWatch
    screens: ScreenKeeper  # what the chargers' own screens show
    clock: Clock = SYSTEM_CLOCK  # the one clock every part was given
    http: web.AppRunner | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    _settlements: SettlementStream | None = None
    shutdown_timeout_s: float = SHUTDOWN_TIMEOUT_S
    http_socket: socket.socket | None = field(default=None, repr=False)
    # Managed TLS (``[tls] acme_domain``): the certificate, and the plain-HTTP listener that
    # answers the CA's HTTP-01 challenges and redirects everything else to HTTPS.
    certificate: ManagedCertificate | None = None
    challenge_http: web.AppRunner | None = None
    readiness: Readiness = field(default_factory=Readiness)  # /readyz; parts may add checks
    prices: PriceParts | None = None  # exchange rates and dynamic prices (strom/prices.py)
    # One of several processes ([cluster] enabled): its id, bus and leases; None: alone.
    cluster: ClusterNode | None = None
    live_fanout: LiveFanout | None = None  # live events to and from the other processes
    config_sync: ConfigSync | None = None  # profile and tariff changes, told to the others
    clustered_agents: ClusteredAgents | None = None  # which agents run here (their leases)
    ocpp_cluster: ClusterChargers | None = None  # charger leases here, commands to the owner
    roaming: RoamingService | None = None  # roaming partners' sessions and receivables
    ocpi: OcpiFrontDoor | None = None  # [ocpi] enabled: /ocpi/ and the roaming partners
    partner_invoices: PartnerInvoices | None = None  # [ocpi] enabled: settlement in bitcoin

    @property
    def config(self) -> StromConfig:
        """The configuration in force now."""
        return self.live.current

    @classmethod
    async def open(cls, config: StromConfig, *, backend: LightningBackend | None = None) -> Strom:
        """Build every part; connect the database and the lightning backend.

        With ``server.port = 0`` the HTTP socket is bound here, on any free port, and the
        configuration names that port (and the public URL too, unless one was configured),
        so links built from it are right; :meth:`serve` listens on that socket.

        Raises:
            ConfigError: an inconsistent configuration (public URL, TLS files, quirks).
            StorageError: the database cannot be reached or migrated.
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

    def _settle_after_cdrs(self) -> None:
        """Offer a receivable's invoice as soon as the partner accepted the session's CDR.

        The invoices' loop also offers any receivable still open (a partner without a CDR
        receiver, a CDR that is late), so none is forgotten.
        """
        if self.ocpi is not None and self.partner_invoices is not None:
            self.ocpi.on_cdr_sent(self.partner_invoices.on_cdr_sent)

    @classmethod
    async def _open(cls, config: StromConfig, *, backend: LightningBackend | None) -> Strom:
        check_public_url(config.server.public_url)
        check_managed_tls(config)
        check_cluster(config)  # before anything connects: SQLite serves one process
        db = Database.from_url(config.storage.url())
        log.info("database: %s", redact_url(config.storage.url()))
        await db.upgrade()
        cluster = shared_keys = None
        if config.cluster.enabled:
            cluster = await ClusterNode.open(config.cluster, db, config.storage.url())
            shared_keys = await _shared_keys(config, db)
            if any(relay.url == "embedded" for relay in config.relays):
                log.warning(
                    "cluster: the embedded nostr relay lives in this process only: DMs and "
                    "zaps sent to it reach only the agents running here; configure external "
                    "relays (relay_config/) for a cluster"
                )
        password_key = ocpp_password_key(config.storage.data_dir, keys=shared_keys)
        auth = charger_auth(config, password_key)
        clock = SYSTEM_CLOCK  # the one clock: every part below is given it
        certificate = None
        if config.tls.managed:
            certificate = ManagedCertificate(config.tls, config.storage.data_dir, clock=clock)
            certificate.load()
        chargers = ChargerStore(db, clock, cluster.process_id if cluster else None)
        await chargers.sync(config.profiles)
        sessions = SessionStore(db, clock)
        live = LiveConfig(config)
        if backend is None:
            backend = create_backend(
                config.lightning,
                data_dir=config.storage.data_dir,
                clock=clock,
                config_file=config.config_path,
            )
        # An unreachable node does not stop Strom: it is reported, payments are refused
        # until it answers, and the watch keeps asking (strom_lightning/watch.py).
        node = NodeWatch(backend, clock=clock)
        await node.probe()
        # Session secrets are derived from the server key (keys/_server.key), never stored.
        session_key = purpose_key(
            config.storage.data_dir, SESSION_KEY_LABEL, None, keys=shared_keys
        )
        tariffs = TariffBook(TariffRepository(db), clock)
        await tariffs.load()  # operators' changes made while Strom ran before
        prices = build_prices(config, clock)  # [rates] and the profiles' [tariff.dynamic]
        # Each charger's energy prices: a provider's for [tariff.dynamic], else the profile's
        # own (time of use, or the static price as a flat schedule). One source for the price
        # frozen at payment and the price the charger page shows.
        price_source = RoutedPrices(
            prices.pricing, ProfilePrices(lambda charger_id: _profile_of(live, charger_id), clock)
        )
        payments = PaymentService(
            sessions,
            backend,
            config.sessions,
            meter_interval_s=config.ocpp.meter_interval_s,
            session_secrets=SessionSecrets(session_key),
            tariffs=tariffs,
            chargers=chargers,
            clock=clock,
            prices=price_source,
            rates=prices.rates,  # a tariff's fiat components, converted when an invoice is made
        )
        refunds = RefundService(
            sessions,
            backend,
            config.sessions,
            network=lambda: node.network,  # the node's, learned on first contact
            clock=clock,
            stop_wait_s=config.sessions.withdraw_stop_wait_s,
            # per session
            admit_opening=RateLimiter(per_minute=12, burst=5, clock=clock.monotonic).allow,
        )
        orphans = OrphanWatch(
            sessions,
            chargers,
            grace_s=config.sessions.orphan_grace_s,
            clock=clock,
            rates=prices.rates,
        )
        events = CoreEventSink(chargers, orphans)

        async def connector_changed(_event: object) -> None:
            payments.forget_view()  # offers answer from a view of connectors; keep it fresh

        events.subscribe(connector_changed)
        cards = ProfileCards(
            config.profiles,
            tariffs.in_force,
            meter_interval_s=config.ocpp.meter_interval_s,
            start_timeout_s=config.sessions.start_timeout_s,
        )
        cards.watch(live)  # a card saved through the API is accepted (or refused) at once
        # Roaming partners' tokens come after the operator's cards (strom_services.roaming).
        tokens = PartnerTokenIndex()
        roaming = RoamingService(
            sessions,
            backend,
            cards,
            tokens,
            clock=clock,
            invoice_expiry_s=config.ocpi.invoice_expiry_s,
        )
        await roaming.load_tokens()
        ocpp_cluster = _cluster_chargers(config, cluster)
        ocpp = OcppServer(
            ocpp_settings(config),
            auth,
            DatabaseOcppCore(
                sessions, clock, cards=RoamingCards(cards, tokens), rates=prices.rates
            ),
            events,
            clock=clock,
            password_key=password_key,
            ssl_context=certificate.ocpp_context() if certificate and config.tls.ocpp else None,
            dialects=ocpp_dialects(config),
            charger_ca=charger_ca(config, clock=clock),
            cluster=ocpp_cluster,
        )
        agents = AgentRuntime(
            config,
            db=db,
            sessions=sessions,
            payments=payments,
            backend=backend,
            commands=ocpp.commands,
            session_key=session_key,
            clock=clock,
            keys=shared_keys,
            autostart=cluster is None,  # a cluster: each agent runs where its lease is held
        )
        events.subscribe(agents.on_ocpp_event)
        screens = screen_keeper(live, tariffs, payments, ocpp.commands, clock)
        sessions.on_committed(screens.on_transition)
        events.subscribe(screens.on_event)
        limits = OcppPowerLimits(ocpp.commands)
        power = PowerService(live, sessions, limits)
        events.subscribe(power.on_event)
        events.subscribe(IdleWatch(sessions).on_event)  # the idle fee's clock
        agents.services.power = power  # the operator's DM "limit"
        agents.services.prices = price_source  # the status event's prices and schedule
        agents.services.firmware = ocpp.firmware  # the operator's DM "firmware <url>"
        agents.services.charger_info = ocpp.charger_info  # ... and "firmware" alone
        agents.services.reservations = ocpp.reservations  # the operator's DM "reserve"
        sessions.on_committed(power.on_transition)
        local_lists = LocalListService(profile_cards(live), OcppLocalList(ocpp.commands))
        events.subscribe(local_lists.on_event)
        local_lists.watch(live)  # changed cards reach the connected chargers at once
        # Offer reservations only where the charger's live OCPP version carries them.
        payments.offers.reservable = lambda charger_id: (
            not isinstance(
                ocpp.commands.live_capable(charger_id, ReservationCommands, "reservations"),
                CommandResult,
            )
        )
        ocpi = _ocpi(
            live,
            db,
            clock,
            tariffs,
            price_source,
            prices.rates,
            events,
            sessions,
            roaming,
            ocpp.commands,
        )
        handlers: dict[str, Handler] = {
            **({} if ocpi is None else ocpi.invoices.handlers()),
            **ChargingEffects(sessions, ocpp.commands, orphans).handlers(),
            **ReservationEffects(sessions, ocpp.reservations, clock).handlers(),
            **orphans.handlers(),
            **agents.handlers(),
            "pay_refund": refunds.pay,
            PARTNER_CDR: _ocpi_off,
            **({} if ocpi is None else ocpi.handlers()),
        }
        runner = EffectRunner(_outbox(db, cluster), handlers, clock=clock)
        sessions.on_committed(lambda _transition: runner.wake())
        agents.on_outbox_due(runner.wake)  # a relay came back: waiting DMs go now
        front = FrontDoor(
            live=live,
            store=sessions,
            chargers=chargers,
            payments=payments,
            refunds=refunds,
            pages=Pages(
                None,
                prices.currency,
                fiat_rate=prices.estimate_rate,  # no estimate while no rate is fresh
                fake_backend=isinstance(backend, FakeBackend),
            ),
            per_client=RateLimiter(per_minute=20, burst=10, clock=clock.monotonic),
            per_charger=RateLimiter(per_minute=120, burst=60, clock=clock.monotonic),
            identities=agents,
            node=node,
            clock=clock,
            power=power,
            reservations=PayerReservations(sessions),
            prices=price_source,
            cheap=CheapCharging(
                sessions,
                limits,
                limits.offered,  # the charger's version, and its 1.6 feature profiles
                clock,
            ),
        )
        front.network_map = NetworkMap(
            live, front.pages, identities=agents, embedded_relay=lambda: agents.pool.embedded_url
        )

        async def apply_profile(profile: ProfileConfig) -> None:
            await strom.apply_written_profile(profile)  # called by the API once Strom is built

        cockpit = Cockpit(
            config=live,
            db=db,
            sessions=sessions,
            chargers=chargers,
            payments=payments,
            refunds=refunds,
            ocpp=ocpp,
            agents=agents,
            backend=backend,
            events=events,
            check_quirks=parse_quirks,
            node=node,
            apply_profile=apply_profile,
            power=power,
            local_lists=local_lists,
            prices=prices.pricing,
            setup_password=os.environ.get(SETUP_PASSWORD_VARIABLE),
            ocpi=None if ocpi is None else ocpi.partners,
            roaming=roaming,
            clock=clock,
        )
        strom = cls(
            live=live,
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
            retention=retention_sweep(config, db, agents, front, clock),
            node=node,
            screens=screens,
            clock=clock,
            certificate=certificate,
            prices=prices,
            cluster=cluster,
            ocpp_cluster=ocpp_cluster,
            roaming=roaming,
            ocpi=ocpi,
            partner_invoices=(
                None if ocpi is None else PartnerInvoices(roaming, backend, live, clock)
            ),
        )
        strom._settle_after_cdrs()
        if cluster is not None:
            strom.live_fanout = LiveFanout(cockpit.live, cluster.bus, cluster.process_id)
            strom.config_sync = strom._config_sync(cluster, tariffs)
            strom.clustered_agents = ClusteredAgents(
                agents,
                bus=cluster.bus,
                leases=cluster.leases,
                process_id=cluster.process_id,
                ttl_s=cluster.ttl_s,
            )
            cluster.serve(AGENT_SUBJECT, strom.clustered_agents.handle)  # the API's agent calls
        node.on_change(strom._node_changed)
        for check in strom._standard_checks():
            strom.readiness.add(check.name, check.run)
        if certificate is not None:
            managed = certificate
            strom.readiness.add(
                "tls_managed",
                managed_certificate_check(
                    config.tls.acme_domain or "",
                    managed.problem,
                    lambda: managed.state().not_after,
                    clock=clock,
                ),
            )
        return strom

    def _standard_checks(self) -> list[NamedCheck]:
        """The checks of ``/readyz``: started, database, lightning, relays, TLS certificates."""
        config = self.config
        certificates = {
            what: cert
            for what, cert in (("server", config.server.tls_cert), ("ocpp", config.ocpp.tls_cert))
            if cert is not None
        }
        return standard_checks(
            started=self.ready.is_set,
            database=self.db.check,
            lightning_up=lambda: self.node.up,
            relays=[relay.url for relay in config.relays],
            relay_states=self.agents.pool.states,
            certificates=certificates,
            clock=self.clock,
        )

    async def apply_profile(self, profile: ProfileConfig) -> None:
        """Add a charger, or change one, while Strom runs (the profile file is written already).

        Every part that knows the chargers learns it: the configuration every part reads
        (replaced, it stays immutable), the OCPP admission (from the charger's next
        connection), the database rows, the offers, the dynamic prices and the charger's agent.

        Raises:
            ConfigError: the profile's OCPP quirks are unknown, its password hash is malformed,
                or it has none where one is required.
        """
        admission = profile_admission(self.config, profile, self.ocpp.password_key)
        profiles = [p for p in self.config.profiles if p.id != profile.id]
        config = self.config.model_copy(update={"profiles": (*profiles, profile)})
        self.live.replace(config)  # every part reads it from here
        self.auth.add(admission)
        # A charger held for approval is let go: it reconnects at once and is admitted.
        self.ocpp.forget_pending(profile.id)
        await self.chargers.sync((profile,))
        self.payments.forget_view()
        if self.prices is not None:
            self.prices.apply_profile(profile)  # its [tariff.dynamic], or none any more
        await self.agents.apply_profile(profile)
        log.info("charger %s: profile applied (%d charger(s))", profile.id, len(config.profiles))

    async def apply_written_profile(self, profile: ProfileConfig) -> None:
        """Apply a profile the API wrote (:meth:`apply_profile`); in a cluster, tell the others.

        Raises:
            ConfigError: as :meth:`apply_profile`; nothing is told.
        """
        await self.apply_profile(profile)
        if self.config_sync is not None:
            self.config_sync.note(profile.id, "profile")

    def _config_sync(self, cluster: ClusterNode, tariffs: TariffBook) -> ConfigSync:
        """In a cluster: the changes of profiles and tariffs, told to and from the others."""
        live = self.live
        return ConfigSync(
            cluster.bus,
            cluster.process_id,
            self.config.paths.profiles,
            in_force=lambda charger_id: _profile_of(live, charger_id),
            apply=self.apply_profile,
            tariffs=tariffs,
            tariff_reloaded=self._tariff_reloaded,
        )

    def _tariff_reloaded(self, charger_id: str) -> None:
        """Another process changed the charger's tariff: its agent, if here, shows the new one."""
        if self.agents.runs(charger_id):
            self.agents.agent(charger_id).mark_dirty()

    def web_app(self) -> web.Application:
        """The aiohttp application: front door, health, operator API, metrics, admin UI."""
        app = web.Application(middlewares=[storage_errors])
        server = self.config.server
        app[CLIENTS] = ClientAddresses(server.trusted_proxies, server.forwarded_header)
        app.add_routes(self.front.routes())
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self.readiness.handle)
        app.add_routes(self.cockpit.routes())
        app.add_subapp(API_PREFIX, self.cockpit.api_app())
        if self.ocpi is not None:
            app.add_subapp("/ocpi", self.ocpi.app())
        return app

    @property
    def http_port(self) -> int:
        """The HTTP port served (the bound one when ``server.port`` was 0)."""
        return self.config.server.port

    @property
    def challenge_port(self) -> int | None:
        """The plain-HTTP port of the ACME challenges, once serving (None without managed TLS)."""
        if self.challenge_http is None:
            return None
        for address in self.challenge_http.addresses:
            return int(address[1])
        return None

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
        if self.certificate is not None:
            context: ssl.SSLContext | None = self.certificate.server_context()
        else:
            context = ssl_context(server.tls_cert, server.tls_key, "server")
        await self._reconcile()
        await self._begin_reconnect_grace()
        await self._join_cluster()
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
            await self._serve_challenges()
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
                tasks = self._background(group)
                agents = group.create_task(self.agents.run(stop), name="agents")
                if self.clustered_agents is not None:  # takes its share once agents are ready
                    group.create_task(self.clustered_agents.run(stop), name="agent-leases")
                await self._wait_ready(agents)
                self._announce()
                await self.cockpit.first_run.announce(self.config.server.public_url)
                self.ready.set()
                await stop.wait()
                for task in tasks:
                    task.cancel()
        finally:
            if self.challenge_http is not None:
                await self.challenge_http.cleanup()
            await self.http.cleanup()
            self.events.server_stopping()  # connected chargers get a reconnect grace next start
            await self.ocpp.stop()
            await self.backend.aclose()
            if self.ocpi is not None:
                await self.ocpi.aclose()
            if self.prices is not None:
                await self.prices.aclose()
            await self._leave_cluster()
            await self.db.close()
            log.info("stopped")

    def _background(self, group: asyncio.TaskGroup) -> list[asyncio.Task[None]]:
        """Start the background loops in ``group``; returns their tasks (cancelled at stop)."""
        loops: dict[str, Coroutine[Any, Any, None]] = {
            "effect-runner": self.runner.run(),
            "settlements": self._once("settlements", self._watch_settlements),
            "lightning-watch": self.node.run(),
            "invoice-expiry": self._once("invoice-expiry", self._sweep_expired),
            "retention": self._once("retention", self.retention.run),
            "screens": self.screens.run(),
        }
        if self.cluster is not None:
            loops["cluster-heartbeat"] = self.cluster.run()
            # Chargers left online by a process that stopped or died: reconnecting, then offline.
            sweep = partial(
                run_unheld_sweep,
                self.chargers,
                grace_s=self.config.ocpp.reconnect_grace_s,
                interval_s=self.cluster.ttl_s,
                clock=self.clock,
                on_swept=self.payments.forget_view,
            )
            loops["charger-sweep"] = self.cluster.lead("charger-sweep", sweep)
        if self.live_fanout is not None:
            loops["live-fanout"] = self.live_fanout.run()
        if self.config_sync is not None:
            loops["config-sync"] = self.config_sync.run()
        if self.certificate is not None:
            loops["tls-renewal"] = self.certificate.run()
        if self.prices is not None:
            loops["prices"] = self.prices.run()
        if self.ocpi is not None:
            loops["ocpi-pushes"] = self.ocpi.pushes.run()
        if self.ocpi is not None and self.ocpi.tokens is not None:
            loops["ocpi-tokens"] = self.ocpi.tokens.run()  # partners' tokens, pulled
        if self.partner_invoices is not None:  # intervals, due dates, expiries: once
            loops["partner-invoices"] = self._once("partner-invoices", self.partner_invoices.run)
        return [group.create_task(loop, name=name) for name, loop in loops.items()]

    def _once(self, role: str, work: Work) -> Coroutine[Any, Any, None]:
        """``work`` here (one process), or on the one process leading ``role`` (cluster).

        The roles run once in a cluster: the settlement stream (every process settling every
        invoice would be idempotent, but N streams on the node and N transactions per
        payment for nothing), the invoice-expiry sweep and the retention sweep.
        """
        if self.cluster is None:
            return work()
        return self.cluster.lead(role, work)

    async def _join_cluster(self) -> None:
        """In a cluster: answer the other processes' requests, learn who holds which charger."""
        if self.cluster is not None:
            await self.cluster.start()
        if self.ocpp_cluster is not None:
            await self.ocpp_cluster.start()

    async def _leave_cluster(self) -> None:
        """In a cluster: give every lease up at once, so the others take over now."""
        if self.ocpp_cluster is not None:
            await self.ocpp_cluster.aclose()
        if self.cluster is not None:
            await self.cluster.aclose()

    async def _serve_challenges(self) -> None:
        """With managed TLS: listen on ``tls.http_port`` for the CA's HTTP-01 challenges."""
        if self.certificate is None:
            return
        config = self.config
        runner = web.AppRunner(
            challenge_app(self.certificate.board, config.server.public_url),
            access_log=None,
            logger=_ClientErrors(log),
        )
        self.challenge_http = runner
        await runner.setup()
        await web.TCPSite(runner, config.server.host, config.tls.http_port).start()
        log.info(
            "tls %s: HTTP-01 challenges on http://%s:%s (the CA asks at port 80 of the domain)",
            config.tls.acme_domain,
            config.server.host,
            self.challenge_port,
        )

    async def _begin_reconnect_grace(self) -> None:
        """Chargers connected when Strom last stopped are reconnecting, not offline, for a while."""
        grace_s = self.config.ocpp.reconnect_grace_s
        waiting = await self.chargers.begin_reconnect_grace(
            self.clock.now(), grace_s, spare_held=self.cluster is not None
        )
        if waiting:
            log.info(
                "%d charger(s) were connected when Strom stopped; shown as reconnecting for up "
                "to %d s (ocpp.reconnect_grace_s), no payments until each is back: %s",
                len(waiting),
                grace_s,
                ", ".join(waiting[:10]) + (" …" if len(waiting) > 10 else ""),
            )
        self.payments.forget_view()

    def _announce(self) -> None:
        """Log where each charger can be reached: page, OCPP URL, nostr identity."""
        base = self.config.server.public_url
        tls = self.config.tls
        scheme = "wss" if self.config.ocpp.tls_cert or (tls.managed and tls.ocpp) else "ws"
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

    async def _reconcile(self) -> None:
        """Settle or expire every pending invoice by asking the node (when it answers)."""
        if not self.node.up:
            log.info("pending invoices are reconciled once the lightning node answers")
            return
        try:
            settled = await self.payments.reconcile()
        except BackendError as exc:
            log.info("reconcile of pending invoices interrupted (%s); the watch retries", exc)
            self.node.check_soon()
            return
        if settled:
            log.info("reconciled %d invoice(s) settled while the node was out of reach", settled)

    async def _node_changed(self, state: NodeState) -> None:
        """The node came back: reconnect the settlement stream and credit what was paid."""
        if not state.up:
            return
        if self._settlements is not None:
            self._settlements.nudge()
        if self.ready.is_set():
            await self._reconcile()

    async def _watch_settlements(self) -> None:
        stream = self.backend.settled_invoices(
            self.payments.pending_hashes, quiet=lambda: not self.node.up
        )
        self._settlements = stream
        async with stream:
            async for settlement in stream:
                await self.payments.settle(settlement.payment_hash, settlement.amount_msat)

    async def _sweep_expired(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SWEEP_S)
            if not self.node.up:
                continue  # expiry waits for one last look at the node: it may have been paid
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
                "lightning": "up" if self.node.up else "down",
                "outbox": outbox,
            }
        )
