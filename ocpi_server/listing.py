"""Serving lists and single objects of Strom's OCPI modules: pages, exact numbers, not-found.

The objects carry exact ``Decimal`` numbers (:mod:`ocpi_server.objects`); they are written once
with :func:`ocpi_server.objects.dumps` and embedded as they are (:func:`exact`), so a partner
reads every amount digit for digit, in the answers and in the pushes alike.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from ocpi_server.catalogue import Dated
from ocpi_server.objects import dumps
from ocpi_server.protocol import OCPI_VERSION, OcpiError, PageRequest, StatusCode, page
from ocpi_server.server import Answer, OcpiServer

__all__ = ["exact", "list_answer", "page_request", "segments"]


def exact(data: Any) -> orjson.Fragment:
    """``data`` (OCPI objects with Decimal numbers) as JSON written exactly, ready to embed."""
    return orjson.Fragment(dumps(data))


def page_request(request: web.Request, server: OcpiServer) -> PageRequest:
    """The paging parameters of a list request, checked before any work is done.

    Raises:
        OcpiError: 2001 for a bad ``offset``, ``limit``, ``date_from`` or ``date_to``.
    """
    return PageRequest.parse(request.query, server.page_limit)


def list_answer(
    items: list[Dated], request: PageRequest, server: OcpiServer, module: str
) -> Answer:
    """The page ``request`` asks for of ``items`` (sorted, oldest first), with its headers."""
    chosen = [d.obj for d in items if request.admits(d.last_updated)]
    url = f"{server.base_url}/{OCPI_VERSION}/{module}"
    served = page(chosen, request, url, server.page_limit)
    return Answer(exact(served.data), headers=served.headers)


def segments(tail: str, most: int) -> list[str]:
    """The path segments below a module's URL (a trailing slash is tolerated).

    Raises:
        OcpiError: HTTP 404: more segments than the module serves, or an empty one.
    """
    parts = tail.strip("/").split("/") if tail.strip("/") else []
    if len(parts) > most or any(not part for part in parts):
        raise OcpiError(StatusCode.CLIENT_ERROR, "no such OCPI endpoint", 404)
    return parts
