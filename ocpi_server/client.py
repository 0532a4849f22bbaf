"""Strom's requests to its OCPI partners (httpx): Token header, ids, envelope check, log.

Every request carries ``Authorization: Token <base64>``, a fresh ``X-Request-ID`` and an
``X-Correlation-ID`` (fresh, or the one of the exchange it belongs to), and is recorded in
``ocpi_log`` whatever happens. An answer counts only when it is HTTP 2xx with a JSON envelope
whose ``status_code`` is 1000; everything else raises :class:`OcpiRequestFailed` with a
sentence saying what went wrong (httpx's exceptions never leave this module).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from ocpi_server.protocol import (
    CORRELATION_ID,
    REQUEST_ID,
    StatusCode,
    authorization_header,
    new_id,
)
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import RemoteProtocolError
from strom_storage.ocpi import OcpiLogEntry, OcpiStore

__all__ = ["OcpiClient", "OcpiRequestFailed", "Reply", "excerpt"]

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 4 * 1024 * 1024
_TOKEN_FIELD = re.compile(r'("token"\s*:\s*")[^"]*(")')


def excerpt(body: bytes | str, limit: int = 300) -> str:
    """The start of a body for the log, with any credentials token masked."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return _TOKEN_FIELD.sub(r"\1***\2", text)[:limit]


class OcpiRequestFailed(RemoteProtocolError):
    """A request to a partner got no usable answer; the message says why.

    Attributes:
        status_code: the envelope's OCPI status code, when there was an envelope.
        http_status: the answer's HTTP status, when there was an answer.
    """

    def __init__(
        self, message: str, status_code: int | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class Reply:
    """A successful answer: the envelope's data and the response headers."""

    data: Any
    headers: httpx.Headers


class OcpiClient:
    """Requests to partners, each logged.

    Args:
        store: where requests are logged.
        timeout_s: how long one request may take in all.
        clock: the time of log rows.
        transport: httpx's transport (None: the network).
        make_id: request and correlation ids.
    """

    def __init__(
        self,
        store: OcpiStore,
        *,
        timeout_s: float = 15.0,
        clock: Clock = SYSTEM_CLOCK,
        transport: httpx.AsyncBaseTransport | None = None,
        make_id: Callable[[], str] = new_id,
    ) -> None:
        self.store = store
        self.clock = clock
        self.make_id = make_id
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            headers={"User-Agent": "strom-ocpi"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connections."""
        await self._http.aclose()

    async def request(
        self,
        method: str,
        url: str,
        token: str,
        *,
        partner_id: int | None,
        body: Any = None,
        correlation_id: str | None = None,
    ) -> Reply:
        """One request; the answer's data when it succeeded.

        Raises:
            OcpiRequestFailed: no answer, not HTTP 2xx, not an envelope, or status_code ≠ 1000.
        """
        ids = {REQUEST_ID: self.make_id(), CORRELATION_ID: correlation_id or self.make_id()}
        headers = {"Authorization": authorization_header(token), **ids}
        content = None if body is None else orjson.dumps(body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        http_status: int | None = None
        status_code: int | None = None
        note = excerpt(content or b"")
        try:
            try:
                response = await self._http.request(method, url, content=content, headers=headers)
            except httpx.TimeoutException:
                note = "timed out"
                raise OcpiRequestFailed(f"{method} {url}: no answer in time") from None
            except httpx.HTTPError as exc:
                note = f"no answer: {type(exc).__name__}"
                raise OcpiRequestFailed(f"{method} {url}: no answer ({exc})") from None
            except httpx.InvalidURL as exc:  # not an HTTPError: a URL a partner gave, unusable
                note = "invalid URL"
                raise OcpiRequestFailed(f"{method} {url!r}: not a usable URL ({exc})") from None
            http_status = response.status_code
            raw = response.content[:MAX_ANSWER_BYTES]
            note = excerpt(raw)
            data, status_code = _envelope(method, url, response, raw)
            return Reply(data, response.headers)
        finally:
            await self._log(partner_id, method, url, http_status, status_code, ids, note)

    async def _log(
        self,
        partner_id: int | None,
        method: str,
        url: str,
        http_status: int | None,
        status_code: int | None,
        ids: dict[str, str],
        note: str,
    ) -> None:
        log.info(
            "ocpi out: %s %s partner=%s http=%s status_code=%s request_id=%s",
            method,
            url,
            partner_id,
            http_status,
            status_code,
            ids[REQUEST_ID],
        )
        await self.store.log(
            OcpiLogEntry(
                partner_id=partner_id,
                direction="out",
                method=method,
                url=url,
                http_status=http_status,
                status_code=status_code,
                request_id=ids[REQUEST_ID],
                correlation_id=ids[CORRELATION_ID],
                at=self.clock.now(),
                excerpt=note,
            )
        )


def _envelope(method: str, url: str, response: httpx.Response, raw: bytes) -> tuple[Any, int]:
    """The data and status_code of a successful answer.

    Raises:
        OcpiRequestFailed: anything but HTTP 2xx with an envelope of status_code 1000.
    """
    where = f"{method} {url}"
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        body = None
    code = body.get("status_code") if isinstance(body, dict) else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    message = body.get("status_message") if isinstance(body, dict) else None
    said = f": {message}" if isinstance(message, str) and message else ""
    if not 200 <= response.status_code < 300:
        raise OcpiRequestFailed(
            f"{where}: HTTP {response.status_code}"
            + (f", OCPI status {code}{said}" if code is not None else ""),
            code,
            response.status_code,
        )
    if code is None:
        raise OcpiRequestFailed(
            f"{where}: the answer is not an OCPI response (no status_code)",
            http_status=response.status_code,
        )
    if code != StatusCode.SUCCESS:
        raise OcpiRequestFailed(f"{where}: OCPI status {code}{said}", code, response.status_code)
    return body.get("data"), code
