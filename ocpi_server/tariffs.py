"""The Tariffs module, Sender interface: each charger's tariff in the partner's currency.

``GET /ocpi/2.2.1/tariffs`` lists one Tariff per charger (its id is the charger id, as the
Locations' connectors say), paginated with ``date_from`` / ``date_to`` on ``last_updated``.
The currency is the calling partner's (:meth:`ocpi_server.catalogue.Catalogue.currency`):
BTC by default; a fiat currency is converted at the rate in force now, and without a fresh
rate the answer is status 3000 (try again later), never a price at a stale rate.
"""

from __future__ import annotations

from ocpi_server.catalogue import Catalogue
from ocpi_server.listing import list_answer, page_request, segments
from ocpi_server.protocol import InterfaceRole, ModuleId
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer

__all__ = ["Tariffs"]


class Tariffs:
    """Serves the Tariffs module (Sender) on ``server``."""

    def __init__(self, server: OcpiServer, catalogue: Catalogue) -> None:
        self.server = server
        self.catalogue = catalogue
        server.register(Module(ModuleId.TARIFFS.value, (InterfaceRole.SENDER,), {"GET": self._get}))

    async def _get(self, call: OcpiRequest) -> Answer:
        segments(call.tail, 0)
        request = page_request(call.request, self.server)
        items = await self.catalogue.tariffs_for(call.partner.id)
        return list_answer(items, request, self.server, ModuleId.TARIFFS.value)
