"""The Sessions module, Sender interface: the calling partner's own sessions.

``GET /ocpi/2.2.1/sessions`` lists the sessions of the calling partner only (its remote
starts and its drivers' tokens at the chargers), paginated with ``date_from`` / ``date_to`` on
``last_updated`` (the session row's last change). Another partner's sessions are never
listed. The pushes of a session (PUT on the partner's Sessions endpoint) are
:mod:`ocpi_server.pushes`'.
"""

from __future__ import annotations

from ocpi_server.catalogue import Catalogue
from ocpi_server.listing import list_answer, page_request, segments
from ocpi_server.protocol import InterfaceRole, ModuleId
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer

__all__ = ["Sessions"]


class Sessions:
    """Serves the Sessions module (Sender) on ``server``."""

    def __init__(self, server: OcpiServer, catalogue: Catalogue) -> None:
        self.server = server
        self.catalogue = catalogue
        server.register(
            Module(ModuleId.SESSIONS.value, (InterfaceRole.SENDER,), {"GET": self._get})
        )

    async def _get(self, call: OcpiRequest) -> Answer:
        segments(call.tail, 0)
        request = page_request(call.request, self.server)
        items = await self.catalogue.sessions_for(call.partner)
        return list_answer(items, request, self.server, ModuleId.SESSIONS.value)
