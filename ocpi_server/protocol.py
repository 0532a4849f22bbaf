"""OCPI 2.2.1 transport rules as plain functions: envelope, status codes, headers, pages.

Theory of operation: everything here is pure (no sockets, no event loop, no clock of its own;
the time and the ids are passed in), so the server (:mod:`ocpi_server.server`) and the client
(:mod:`ocpi_server.client`) share one reading of the spec's "Transport and format" chapter and
it is tested without a network:

* every answer is the envelope ``{data, status_code, status_message, timestamp}``
  (:func:`envelope`), its time in OCPI's DateTime form (UTC, ``Z``: :func:`format_datetime`);
* :class:`StatusCode` holds the codes of the "Status codes" chapter (1xxx success, 2xxx client
  errors, 3xxx server errors, 4xxx hub errors);
* the ``Authorization: Token <base64>`` header (:func:`authorization_header`,
  :func:`token_candidates`);
* pagination (:class:`PageRequest`, :func:`page`): ``offset``, ``limit`` (capped by the
  server's maximum), ``date_from`` (inclusive), ``date_to`` (exclusive); the answer's ``Link``
  to the next page keeps the other filters, ``X-Total-Count`` and ``X-Limit``;
* routing headers (:class:`Routing`) and request/correlation ids (:func:`response_ids`);
* the limits of the spec's types (CiString, string(n)) that input is checked against, and
  pydantic models of what a partner sends (credentials, versions, version details).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import Annotated, Any, Final, TypeVar
from urllib.parse import urlencode

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from strom_core.errors import RemoteProtocolError

__all__ = [
    "OCPI_VERSION",
    "BusinessDetails",
    "Credentials",
    "CredentialsRole",
    "Endpoint",
    "InterfaceRole",
    "ModuleId",
    "OcpiError",
    "Page",
    "PageRequest",
    "Role",
    "Routing",
    "StatusCode",
    "Version",
    "VersionDetails",
    "authorization_header",
    "check_cistring",
    "check_string",
    "envelope",
    "format_datetime",
    "new_id",
    "page",
    "parse_datetime",
    "parse_model",
    "response_ids",
    "token_candidates",
    "validation_text",
]

OCPI_VERSION: Final = "2.2.1"
M = TypeVar("M", bound=BaseModel)

REQUEST_ID: Final = "X-Request-ID"
CORRELATION_ID: Final = "X-Correlation-ID"
ROUTING_HEADERS: Final = (
    "OCPI-from-country-code",
    "OCPI-from-party-id",
    "OCPI-to-country-code",
    "OCPI-to-party-id",
)


class StatusCode(IntEnum):
    """OCPI status codes (status_codes.asciidoc): 1xxx success, 2xxx client, 3xxx server."""

    SUCCESS = 1000
    CLIENT_ERROR = 2000
    INVALID_PARAMETERS = 2001
    NOT_ENOUGH_INFORMATION = 2002
    UNKNOWN_LOCATION = 2003
    UNKNOWN_TOKEN = 2004
    SERVER_ERROR = 3000
    CLIENT_API_UNUSABLE = 3001
    UNSUPPORTED_VERSION = 3002
    NO_MATCHING_ENDPOINTS = 3003
    HUB_ERROR = 4000
    HUB_UNKNOWN_RECEIVER = 4001
    HUB_TIMEOUT = 4002
    HUB_CONNECTION_PROBLEM = 4003

    @property
    def success(self) -> bool:
        """Whether this is a success code (1xxx)."""
        return 1000 <= self.value < 2000


class OcpiError(RemoteProtocolError):
    """A request Strom refuses (or an answer Strom cannot use), with its OCPI and HTTP status.

    Args:
        status_code: the OCPI status code to answer with.
        message: the ``status_message``: what was wrong, for the partner's developers.
        http_status: the HTTP status of the answer (the spec's 401, 404, 405; else 200 or
            400 for bodies that are not JSON).
    """

    def __init__(self, status_code: StatusCode, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.http_status = http_status


class Role(StrEnum):
    """The roles of a party (types.asciidoc, Role)."""

    CPO = "CPO"
    EMSP = "EMSP"
    HUB = "HUB"
    NAP = "NAP"
    NSP = "NSP"
    OTHER = "OTHER"
    SCSP = "SCSP"


class InterfaceRole(StrEnum):
    """Which side of a module an endpoint implements (version_information_endpoint)."""

    SENDER = "SENDER"
    RECEIVER = "RECEIVER"


class ModuleId(StrEnum):
    """The modules of OCPI 2.2.1 (ModuleID)."""

    CDRS = "cdrs"
    CHARGING_PROFILES = "chargingprofiles"
    COMMANDS = "commands"
    CREDENTIALS = "credentials"
    HUB_CLIENT_INFO = "hubclientinfo"
    LOCATIONS = "locations"
    SESSIONS = "sessions"
    TARIFFS = "tariffs"
    TOKENS = "tokens"


# --- type limits ---------------------------------------------------------------------------

_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


def check_cistring(value: str, max_length: int) -> str:
    """A CiString(n): printable ASCII, at most ``max_length`` characters; returned as given.

    Raises:
        ValueError: another character, or too long.
    """
    if not _PRINTABLE.match(value):
        raise ValueError("only printable ASCII is allowed")
    if len(value) > max_length:
        raise ValueError(f"at most {max_length} characters")
    return value


def check_string(value: str, max_length: int) -> str:
    """A string(n): at most ``max_length`` characters, no control characters.

    Raises:
        ValueError: a control character, or too long.
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("control characters are not allowed")
    if len(value) > max_length:
        raise ValueError(f"at most {max_length} characters")
    return value


def _country(value: str) -> str:
    check_cistring(value, 2)
    if not re.match(r"^[A-Za-z]{2}$", value):
        raise ValueError("expected an ISO 3166 alpha-2 country code")
    return value.upper()


def _party(value: str) -> str:
    check_cistring(value, 3)
    if not re.match(r"^[A-Za-z0-9]{3}$", value):
        raise ValueError("expected a 3-character party id (letters and digits)")
    return value.upper()


def _token(value: str) -> str:
    if not _TOKEN_CHARS.match(value) or len(value) > 64:
        raise ValueError("expected 1 to 64 printable ASCII characters without spaces")
    return value


def _url(value: str) -> str:
    check_string(value, 255)
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("expected an http(s) URL")
    return value


CountryCode = Annotated[str, AfterValidator(_country)]
PartyId = Annotated[str, AfterValidator(_party)]
Url = Annotated[str, AfterValidator(_url)]
CredentialsToken = Annotated[str, AfterValidator(_token)]


class _Received(BaseModel):
    # Partners may send fields of later versions or their own; unknown fields are ignored.
    model_config = ConfigDict(frozen=True, extra="ignore")


class BusinessDetails(_Received):
    """A party's business details (name, website; the logo is not used)."""

    name: Annotated[str, AfterValidator(lambda v: check_string(v, 100))] = Field(min_length=1)
    website: Url | None = None


class CredentialsRole(_Received):
    """One role of a party: the role, its business details, party id and country."""

    role: Role
    business_details: BusinessDetails
    party_id: PartyId
    country_code: CountryCode


class Credentials(_Received):
    """The credentials object: a token for the other party, a versions URL, the roles."""

    token: CredentialsToken
    url: Url
    roles: list[CredentialsRole] = Field(min_length=1, max_length=20)


class Version(_Received):
    """One entry of a versions list."""

    version: Annotated[str, AfterValidator(lambda v: check_string(v, 10))]
    url: Url


class Endpoint(_Received):
    """One endpoint of a version's details."""

    identifier: Annotated[str, AfterValidator(lambda v: check_string(v, 50))]
    role: InterfaceRole
    url: Url


class VersionDetails(_Received):
    """A version's details: the version and its endpoints."""

    version: Annotated[str, AfterValidator(lambda v: check_string(v, 10))]
    endpoints: list[Endpoint] = Field(min_length=1, max_length=100)


def validation_text(exc: ValidationError) -> str:
    """A short sentence naming the first few fields that were wrong."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(item) for item in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def parse_model(model: type[M], data: Any, what: str) -> M:
    """``data`` as ``model``, or an :class:`OcpiError` 2001 naming what was wrong.

    Raises:
        OcpiError: 2001 (invalid or missing parameters).
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"{what}: {validation_text(exc)}") from None


# --- time and envelope ---------------------------------------------------------------------

_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z?$")


def format_datetime(moment: datetime) -> str:
    """OCPI's DateTime: UTC, seconds (milliseconds when there are any), ``Z``.

    Raises:
        ValueError: ``moment`` has no time zone.
    """
    if moment.tzinfo is None:
        raise ValueError("an OCPI DateTime needs an aware datetime")
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str) -> datetime:
    """An OCPI DateTime (``Z`` or no designator: UTC) as an aware datetime.

    Raises:
        ValueError: another form (an offset such as ``+00:00`` is not allowed by the spec).
    """
    if not _DATETIME.match(text):
        raise ValueError(f"{text!r}: expected an OCPI DateTime such as 2015-06-29T20:39:09Z")
    return datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=UTC)


def envelope(
    data: Any, now: datetime, status: StatusCode = StatusCode.SUCCESS, message: str | None = None
) -> dict[str, Any]:
    """The response envelope around ``data`` (``data`` is left out when None)."""
    body: dict[str, Any] = {}
    if data is not None:
        body["data"] = data
    body["status_code"] = int(status)
    if message:
        body["status_message"] = message
    body["timestamp"] = format_datetime(now)
    return body


# --- authorization --------------------------------------------------------------------------


def authorization_header(token: str) -> str:
    """``Token <base64 of the UTF-8 token>``, as OCPI 2.2.1 requires."""
    return "Token " + base64.b64encode(token.encode()).decode()


def token_candidates(header: str | None) -> tuple[str, ...]:
    """The credentials tokens an ``Authorization`` header may carry, the base64 reading first.

    OCPI 2.2.1 requires the token base64-encoded, and that is what Strom sends and what the
    2.2.1 peers tested (py_ocpi) send. Many OCPI 2.1.1 and 2.2 implementations send it raw,
    and the spec's own note advises accepting both "by trial and error": so the raw value is
    the second candidate. The tokens Strom issues are 43 URL-safe characters, which never
    decode as standard base64 (not a multiple of 4), so the two readings cannot collide.

    Returns:
        The candidates, best first; empty when the header is missing or not ``Token <value>``.
    """
    if not header:
        return ()
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "token" or not value or len(value) > 200:
        return ()
    candidates: list[str] = []
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, ValueError):
        decoded = ""
    if decoded and _TOKEN_CHARS.match(decoded):
        candidates.append(decoded)
    if _TOKEN_CHARS.match(value) and value not in candidates:
        candidates.append(value)
    return tuple(candidates)


# --- ids and routing --------------------------------------------------------------------------


def new_id() -> str:
    """A fresh request or correlation id (a UUID, as the spec advises)."""
    return str(uuid.uuid4())


def response_ids(headers: Mapping[str, str], make_id: Callable[[], str] = new_id) -> dict[str, str]:
    """The ``X-Request-ID`` and ``X-Correlation-ID`` of the answer to a request.

    Both are echoed (the spec: the response carries the request's ids); a request without one
    gets a fresh one, so the answer and the log always have both. An id that is not a short
    printable string is replaced too, never echoed.
    """
    ids = {}
    for name in (REQUEST_ID, CORRELATION_ID):
        given = headers.get(name, "")
        ids[name] = (
            given if given and _TOKEN_CHARS.match(given) and len(given) <= 100 else make_id()
        )
    return ids


@dataclass(frozen=True, slots=True)
class Routing:
    """The message routing headers (``OCPI-from-…``, ``OCPI-to-…``); empty when absent."""

    from_country_code: str = ""
    from_party_id: str = ""
    to_country_code: str = ""
    to_party_id: str = ""

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> Routing:
        """The routing headers of a request.

        Raises:
            OcpiError: 2001 when one is present but not a country code or party id.
        """
        values = [headers.get(name, "").strip() for name in ROUTING_HEADERS]
        checks = (_country, _party, _country, _party)
        for name, value, check in zip(ROUTING_HEADERS, values, checks, strict=True):
            if value:
                try:
                    check(value)
                except ValueError as exc:
                    raise OcpiError(StatusCode.INVALID_PARAMETERS, f"{name}: {exc}") from None
        return cls(*(value.upper() for value in values))

    def headers(self) -> dict[str, str]:
        """The headers to send (only those set)."""
        values = (
            self.from_country_code,
            self.from_party_id,
            self.to_country_code,
            self.to_party_id,
        )
        return {name: value for name, value in zip(ROUTING_HEADERS, values, strict=True) if value}


# --- pagination ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The paging parameters of a GET on a list.

    Attributes:
        offset: the first object's position.
        limit: the objects asked for, capped at the server's maximum.
        date_from: only objects with ``last_updated`` at or after (inclusive).
        date_to: only objects with ``last_updated`` before (exclusive).
    """

    offset: int
    limit: int
    date_from: datetime | None = None
    date_to: datetime | None = None

    @classmethod
    def parse(cls, query: Mapping[str, str], max_limit: int) -> PageRequest:
        """The parameters of a request's query; a limit above ``max_limit`` is capped.

        Raises:
            OcpiError: 2001 for a parameter that is not a non-negative integer or a DateTime.
        """
        offset = _count(query, "offset", 0)
        limit = min(_count(query, "limit", max_limit), max_limit)
        dates = []
        for name in ("date_from", "date_to"):
            text = query.get(name)
            try:
                dates.append(None if text is None else parse_datetime(text))
            except ValueError as exc:
                raise OcpiError(StatusCode.INVALID_PARAMETERS, f"{name}: {exc}") from None
        return cls(offset, limit, dates[0], dates[1])

    def admits(self, last_updated: datetime) -> bool:
        """Whether an object last updated then is inside ``date_from``/``date_to``."""
        if self.date_from is not None and last_updated < self.date_from:
            return False
        return self.date_to is None or last_updated < self.date_to


def _count(query: Mapping[str, str], name: str, default: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 9:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, f"{name}: expected a non-negative integer")
    return int(text)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list: its objects and the headers of the answer."""

    data: list[Any]
    headers: dict[str, str]


def page(
    items: Sequence[Any],
    request: PageRequest,
    base_url: str,
    max_limit: int,
) -> Page:
    """The page ``request`` asks for of ``items`` (already filtered by its dates and sorted).

    Args:
        items: every object matching the request's filters, oldest first.
        request: offset, limit and the date filters (repeated in the next page's link).
        base_url: the list's URL without query.
        max_limit: the server's maximum, told in ``X-Limit``.

    Returns:
        The objects of the page, and ``X-Total-Count``, ``X-Limit`` and, unless this is the
        last page, ``Link: <next>; rel="next"``.
    """
    limit = min(request.limit, max_limit)
    chosen = list(items[request.offset : request.offset + limit])
    headers = {"X-Total-Count": str(len(items)), "X-Limit": str(max_limit)}
    following = request.offset + limit
    if limit > 0 and following < len(items):
        query: dict[str, str] = {}
        if request.date_from is not None:
            query["date_from"] = format_datetime(request.date_from)
        if request.date_to is not None:
            query["date_to"] = format_datetime(request.date_to)
        query.update(offset=str(following), limit=str(limit))
        headers["Link"] = f'<{base_url}?{urlencode(query)}>; rel="next"'
    return Page(chosen, headers)
