"""The Locations module, Sender interface: Strom's chargers for partners to GET.

``GET /ocpi/2.2.1/locations`` lists every charger's Location (paginated, ``date_from`` /
``date_to`` on ``last_updated``); ``/{location_id}``, ``/{location_id}/{evse_uid}`` and
``/{location_id}/{evse_uid}/{connector_id}`` answer one object, or HTTP 404 with status 2003
(unknown location) for an id Strom does not have. What a Location carries is
:mod:`ocpi_server.catalogue`'s; the PATCH pushed on a status change is :mod:`ocpi_server.pushes`'.
"""

from __future__ import annotations

from typing import Any

from ocpi_server.catalogue import Catalogue
from ocpi_server.listing import exact, list_answer, page_request, segments
from ocpi_server.protocol import InterfaceRole, ModuleId, OcpiError, StatusCode
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer

__all__ = ["Locations"]


def _unknown(what: str) -> OcpiError:
    return OcpiError(StatusCode.UNKNOWN_LOCATION, f"unknown {what}", 404)


def _child(items: list[dict[str, Any]], key: str, wanted: str, what: str) -> dict[str, Any]:
    for item in items:
        if str(item[key]).lower() == wanted.lower():  # CiString ids
            return item
    raise _unknown(f"{what} {wanted!r}")


class Locations:
    """Serves the Locations module (Sender) on ``server``.

    Args:
        server: the OCPI server the module is registered on.
        catalogue: Strom's chargers as Locations.
    """

    def __init__(self, server: OcpiServer, catalogue: Catalogue) -> None:
        self.server = server
        self.catalogue = catalogue
        server.register(
            Module(ModuleId.LOCATIONS.value, (InterfaceRole.SENDER,), {"GET": self._get})
        )

    async def _get(self, call: OcpiRequest) -> Answer:
        parts = segments(call.tail, 3)
        if not parts:
            request = page_request(call.request, self.server)
            items = await self.catalogue.locations()
            return list_answer(items, request, self.server, ModuleId.LOCATIONS.value)
        found = await self.catalogue.location(parts[0])
        if found is None:
            raise _unknown(f"location {parts[0]!r}")
        obj: dict[str, Any] = found.obj
        if len(parts) >= 2:
            obj = _child(obj["evses"], "uid", parts[1], "EVSE")
        if len(parts) == 3:
            obj = _child(obj["connectors"], "id", parts[2], "connector")
        return Answer(exact(obj))
