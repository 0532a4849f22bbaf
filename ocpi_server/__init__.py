"""The OCPI 2.2.1 front door: Strom as a Charge Point Operator (CPO) for roaming partners.

eMSPs (the apps and cards drivers already have) connect with the credentials handshake, pull
Strom's locations and tariffs, receive sessions and CDRs, send commands and share their
tokens. Served here: credentials, and the Sender interfaces of locations, tariffs, sessions
and CDRs; pushed: EVSE status changes and sessions (:mod:`.pushes`, best effort) and CDRs
(:mod:`.cdrs`, a durable effect). ``protocol`` (the envelope, status codes, headers,
pagination) and ``objects`` (Strom's chargers, tariffs and sessions as OCPI objects) are pure;
the rest speaks HTTP.
See docs/ocpi.md.
"""

from __future__ import annotations

from aiohttp import web

from ocpi_server.catalogue import Catalogue
from ocpi_server.cdrs import Cdrs, CdrSent
from ocpi_server.client import OcpiClient
from ocpi_server.commands import Commands
from ocpi_server.invoices import Invoices
from ocpi_server.locations import Locations
from ocpi_server.partners import Partners
from ocpi_server.pushes import Pushes
from ocpi_server.server import OcpiServer
from ocpi_server.sessions import Sessions
from ocpi_server.tariffs import Tariffs
from ocpi_server.tokens import TokenPuller, Tokens
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig
from strom_core.ports import ChargerCommands
from strom_core.ports.prices import PriceSource, RateSource
from strom_services.effects import Handler
from strom_services.roaming import RoamingService
from strom_services.tariffs import TariffBook
from strom_storage.db import Database
from strom_storage.ocpi import OcpiStore
from strom_storage.ocpi_views import OcpiViews
from strom_storage.sealing import Sealer

__all__ = ["CdrSent", "OcpiFrontDoor"]


class OcpiFrontDoor:
    """The OCPI parts, built together: server, partners, client, modules, pushes, invoices.

    Args:
        live: the configuration in force (``[ocpi]``, ``server.public_url``, the profiles).
        db: the database (partners, the log, chargers, sessions).
        sealer: seals the tokens Strom uses on its partners.
        clock: the time of envelopes, changes and log rows.
        tariffs: the tariffs in force (None: the profiles' own).
        prices: the known prices of dynamic tariffs (None: those are not published).
        rates: BTC exchange rates, for partners served in a fiat currency.
    """

    def __init__(
        self,
        live: LiveConfig,
        db: Database,
        sealer: Sealer,
        clock: Clock = SYSTEM_CLOCK,
        *,
        tariffs: TariffBook | None = None,
        prices: PriceSource | None = None,
        rates: RateSource | None = None,
    ) -> None:
        store = OcpiStore(db)
        views = OcpiViews(db)
        self.db = db
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.server = OcpiServer(live, store, clock)
        self.client = OcpiClient(store, timeout_s=live.current.ocpi.request_timeout_s, clock=clock)
        self.partners = Partners(self.server, store, self.client, sealer, clock)
        self.catalogue = Catalogue(
            live, views, tariffs=tariffs, prices=prices, rates=rates, clock=clock
        )
        self.locations = Locations(self.server, self.catalogue)
        self.tariffs = Tariffs(self.server, self.catalogue)
        self.sessions = Sessions(self.server, self.catalogue)
        token_of = self.partners.token_for
        self.cdrs = Cdrs(self.server, self.catalogue, views, store, self.client, token_of)
        self.pushes = Pushes(
            store,
            self.client,
            self.catalogue,
            views,
            token_of,
            session_interval_s=live.current.ocpi.session_update_interval_s,
        )

        # strom-invoices (docs/ocpi-lightning.md): the invoices' endpoints and pushes.
        self.invoices = Invoices(self.server, db, store, self.client, self.partners)
        self.commands: Commands | None = None
        self.tokens: TokenPuller | None = None

    def serve_roaming(self, roaming: RoamingService, chargers: ChargerCommands) -> None:
        """Serve the commands and tokens modules (partners start, stop, unlock; share tokens).

        Call before :meth:`app`. A partner that registers gets its tokens pulled soon after.
        """
        self.commands = Commands(
            self.server,
            self.store,
            self.db,
            roaming,
            chargers,
            self.client,
            self.sealer,
            self.clock,
        )
        Tokens(self.server, roaming)
        puller = TokenPuller(self.store, self.db, roaming, self.client, self.sealer, self.clock)
        self.partners.on_registered(puller.registered)
        self.tokens = puller

    def handlers(self) -> dict[str, Handler]:
        """The outbox handlers of the OCPI effects (CDRs; commands after :meth:`serve_roaming`)."""
        commands = {} if self.commands is None else self.commands.handlers()
        return {**self.cdrs.handlers(), **commands}

    def on_cdr_sent(self, callback: CdrSent) -> None:
        """Await ``callback(partner_id, session_id, cdr)`` after a partner accepted a CDR.

        Called before the CDR effect is marked done; a callback that raises makes the effect
        run again, so callbacks must be idempotent (:mod:`ocpi_server.cdrs`).
        """
        self.cdrs.on_cdr_sent(callback)

    def app(self) -> web.Application:
        """The sub-application to mount at ``/ocpi``."""
        return self.server.app()

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
