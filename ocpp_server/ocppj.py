"""OCPP-J framing, with no I/O: the RPC layer every OCPP version over JSON shares.

Theory of operation: a websocket text frame is one of three JSON arrays,

* CALL ``[2, "<uniqueId>", "<Action>", {payload}]``,
* CALLRESULT ``[3, "<uniqueId>", {payload}]``,
* CALLERROR ``[4, "<uniqueId>", "<errorCode>", "<errorDescription>", {errorDetails}]``.

:func:`parse_frame` turns text into one of the frozen dataclasses below, or raises:

* :class:`FrameRejected` for a CALL that can be answered (its unique id was read) but is broken;
  the shell answers it with :func:`pack_error` and the error's ``code``;
* :class:`UnreadableFrame` for anything that cannot be answered (not JSON, not an array, no
  readable unique id, a message type that is not a CALL/CALLRESULT/CALLERROR). The shell logs it
  and keeps the connection: OCPP-J has no way to answer a frame whose id it cannot read.

A CALL whose payload element is missing is ``ProtocolError`` ("payload incomplete"); a CALL
with a wrong structure (action not a string, payload not an object, extra elements) is
``FormationViolation``. The error codes are spelled as OCPP-J 1.6 spells them (with the errata's
``FormationViolation`` and ``OccurenceConstraintViolation``); what each action's payload must
hold is the business of a version package (:mod:`ocpp_server.v16.schemas`).

Timestamps (:func:`parse_timestamp`, :func:`format_timestamp`) are RFC 3339 date-times in
every OCPP version.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from strom_core.errors import RemoteProtocolError

__all__ = [
    "Call",
    "CallError",
    "CallResult",
    "ErrorCode",
    "Frame",
    "FrameRejected",
    "MessageType",
    "PayloadInvalid",
    "UnreadableFrame",
    "format_timestamp",
    "pack_call",
    "pack_error",
    "pack_result",
    "parse_frame",
    "parse_timestamp",
]

MAX_UNIQUE_ID_LENGTH: Final = 36  # OCPP-J 1.6: a unique id is at most 36 characters


class MessageType(enum.IntEnum):
    """The first element of every OCPP-J frame."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


class ErrorCode(enum.StrEnum):
    """OCPP-J CALLERROR codes, as each version spells them on the wire.

    This layer raises OCPP 1.6's spellings. OCPP-J 2.0.1 renames two (``FormatViolation``,
    ``OccurrenceConstraintViolation``) and adds ``RpcFrameworkError`` and
    ``MessageTypeNotSupported``; a version's :class:`~ocpp_server.schemas.ErrorSpelling` turns
    a 1.6 spelling into its own before a CALLERROR is sent.
    """

    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"
    # OCPP-J 2.0.1 only
    FORMAT_VIOLATION = "FormatViolation"
    OCCURRENCE_CONSTRAINT_VIOLATION = "OccurrenceConstraintViolation"
    RPC_FRAMEWORK_ERROR = "RpcFrameworkError"
    MESSAGE_TYPE_NOT_SUPPORTED = "MessageTypeNotSupported"


@dataclass(frozen=True, slots=True)
class Call:
    """A request: ``[2, unique_id, action, payload]``."""

    unique_id: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallResult:
    """A successful answer: ``[3, unique_id, payload]``."""

    unique_id: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CallError:
    """An error answer: ``[4, unique_id, code, description, details]``."""

    unique_id: str
    code: str
    description: str
    details: dict[str, Any] = field(default_factory=dict)


Frame = Call | CallResult | CallError


class UnreadableFrame(RemoteProtocolError):
    """A frame that cannot be answered: not JSON, not an OCPP-J array, or no readable id."""


class FrameRejected(RemoteProtocolError):
    """A CALL that must be answered with a CALLERROR.

    Attributes:
        unique_id: the CALL's unique id, to answer with.
        code: the OCPP error code.
        description: a short, charger-facing description (never internal detail).
    """

    def __init__(self, unique_id: str, code: ErrorCode, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.unique_id = unique_id
        self.code = code
        self.description = description


class PayloadInvalid(RemoteProtocolError):
    """A payload that breaks its schema.

    Attributes:
        code: the OCPP error code the violation maps to.
        description: which field broke which rule.
    """

    def __init__(self, code: ErrorCode, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description


# --- timestamps ------------------------------------------------------------------------------

# RFC 3339 date-time as OCPP uses it, read leniently: a missing offset is read as UTC (several
# chargers omit the "Z", and refusing a StopTransaction for it would lose a bill), an offset may
# be short (``+03``, ``+0300``: monta-app/ocpp-emulator#5 and #53) and the fraction may have any
# number of digits (OCPP 2.0.1 allows three; more are cut to microseconds).
_DATE_TIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse_timestamp(value: object) -> datetime:
    """Parse an OCPP ``dateTime`` into an aware UTC datetime.

    Raises:
        PayloadInvalid: (PropertyConstraintViolation) when it is not an RFC 3339 date-time.
    """
    if not isinstance(value, str) or not _DATE_TIME.match(value):
        raise PayloadInvalid(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "not an RFC 3339 date-time")
    text = value
    if "." in text:  # Python reads at most six fractional digits
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise PayloadInvalid(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "not an RFC 3339 date-time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """Format an aware datetime as OCPP ``dateTime`` in UTC with milliseconds."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


# --- framing ---------------------------------------------------------------------------------


def _loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers beyond 64 bits, which are still JSON; the standard parser takes
    # them (NaN and Infinity are not JSON and stay refused).
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, TypeError) as exc:
        raise UnreadableFrame("the frame is not JSON") from exc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_frame(text: str | bytes) -> Frame:
    """Parse one websocket text frame.

    Args:
        text: the frame as received.

    Returns:
        The CALL, CALLRESULT or CALLERROR it holds.

    Raises:
        UnreadableFrame: the frame cannot be answered (see the module docstring).
        FrameRejected: a CALL with a readable unique id that is malformed.
    """
    message = _loads(text)
    if not isinstance(message, list) or not message:
        raise UnreadableFrame("the frame is not a non-empty JSON array")
    kind = message[0]
    if type(kind) is not int or kind not in (2, 3, 4):
        raise UnreadableFrame(f"unknown message type {kind!r}")
    if len(message) < 2 or not isinstance(message[1], str):
        raise UnreadableFrame("the frame has no readable unique id")
    unique_id: str = message[1]
    if kind == MessageType.CALL:
        return _parse_call(unique_id, message)
    if kind == MessageType.CALLRESULT:
        if len(message) != 3 or not isinstance(message[2], dict):
            raise UnreadableFrame("a CALLRESULT must be [3, id, {payload}]")
        return CallResult(unique_id, message[2])
    if len(message) != 5 or not isinstance(message[2], str) or not isinstance(message[3], str):
        raise UnreadableFrame("a CALLERROR must be [4, id, code, description, {details}]")
    details = message[4] if isinstance(message[4], dict) else {}
    return CallError(unique_id, message[2], message[3], details)


def _parse_call(unique_id: str, message: list[Any]) -> Call:
    if len(unique_id) > MAX_UNIQUE_ID_LENGTH or not unique_id:
        raise FrameRejected(
            unique_id, ErrorCode.FORMATION_VIOLATION, "the unique id must be 1-36 characters"
        )
    if len(message) < 3 or not isinstance(message[2], str):
        raise FrameRejected(
            unique_id, ErrorCode.FORMATION_VIOLATION, "a CALL must be [2, id, action, {payload}]"
        )
    action: str = message[2]
    if len(message) == 3:
        raise FrameRejected(unique_id, ErrorCode.PROTOCOL_ERROR, "the CALL has no payload")
    if len(message) > 4 or not isinstance(message[3], dict):
        raise FrameRejected(
            unique_id, ErrorCode.FORMATION_VIOLATION, "a CALL must be [2, id, action, {payload}]"
        )
    return Call(unique_id, action, message[3])


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def pack_call(call: Call) -> str:
    """Serialise a CALL frame."""
    return _dumps([MessageType.CALL.value, call.unique_id, call.action, call.payload])


def pack_result(unique_id: str, payload: Mapping[str, Any]) -> str:
    """Serialise a CALLRESULT frame."""
    return _dumps([MessageType.CALLRESULT.value, unique_id, payload])


def pack_error(
    unique_id: str, code: ErrorCode | str, description: str, details: Mapping[str, Any] = {}
) -> str:
    """Serialise a CALLERROR frame (``details`` is an object, empty unless given)."""
    return _dumps([MessageType.CALLERROR.value, unique_id, str(code), description, dict(details)])
