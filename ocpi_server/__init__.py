"""The OCPI 2.2.1 front door: Strom as a Charge Point Operator (CPO) for roaming partners.

eMSPs (the apps and cards drivers already have) connect with the credentials handshake, pull
Strom's locations and tariffs, receive sessions and CDRs, send commands and share their
tokens. ``protocol`` (the envelope, status codes, headers, pagination) and ``objects``
(Strom's chargers, tariffs and sessions as OCPI objects) are pure; the rest speaks HTTP.
See docs/ocpi.md.
"""

from __future__ import annotations

from aiohttp import web

from ocpi_server.client import OcpiClient
from ocpi_server.commands import Commands
from ocpi_server.partners import Partners
from ocpi_server.server import OcpiServer
from ocpi_server.tokens import TokenPuller, Tokens
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig
from strom_core.ports import ChargerCommands
from strom_services.effects import Handler
from strom_services.roaming import RoamingService
from strom_storage.db import Database
from strom_storage.ocpi import OcpiStore
from strom_storage.sealing import Sealer

__all__ = ["OcpiFrontDoor"]


class OcpiFrontDoor:
    """The OCPI parts, built together: the ``/ocpi`` server, the partners, the client.

    Args:
        live: the configuration in force (``[ocpi]``, ``server.public_url``).
        db: the database (partners, the log).
        sealer: seals the tokens Strom uses on its partners.
        clock: the time of envelopes, changes and log rows.
    """

    def __init__(
        self, live: LiveConfig, db: Database, sealer: Sealer, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        store = OcpiStore(db)
        self.db = db
        self.store = store
        self.sealer = sealer
        self.clock = clock
        self.server = OcpiServer(live, store, clock)
        self.client = OcpiClient(store, timeout_s=live.current.ocpi.request_timeout_s, clock=clock)
        self.partners = Partners(self.server, store, self.client, sealer, clock)
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
        """The outbox handlers of the modules served (none before :meth:`serve_roaming`)."""
        return {} if self.commands is None else self.commands.handlers()

    def app(self) -> web.Application:
        """The sub-application to mount at ``/ocpi``."""
        return self.server.app()

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self.client.aclose()
