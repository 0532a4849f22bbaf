"""OCPP-J 1.6 framing and validation, with no I/O.

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

:func:`validate_call` and :func:`validate_result` check payloads against the official OCPP 1.6
JSON schemas (shipped with the ``ocpp`` package) and map a violation onto the OCPP 1.6 error
codes (section 4.2.3 of OCPP-J 1.6, with the spellings the 1.6 errata keep: ``FormationViolation``
and ``OccurenceConstraintViolation``):

=========================== =================================================================
schema keyword              OCPP 1.6 error code
=========================== =================================================================
``type``, ``maxLength``     ``TypeConstraintViolation`` (a CiStringNType is a data type)
``required``                ``OccurenceConstraintViolation`` (a mandatory field occurs 0 times)
``minItems``/``maxItems``   ``OccurenceConstraintViolation``
``enum``, ``format``, ...   ``PropertyConstraintViolation`` (a field holds an invalid value)
``additionalProperties``    ``FormationViolation`` (the payload is not the action's PDU)
=========================== =================================================================

A CALL whose payload element is missing is ``ProtocolError`` ("payload incomplete"); a CALL
with a wrong structure (action not a string, payload not an object, extra elements) is
``FormationViolation``; an action OCPP 1.6 does not define is ``NotImplemented`` ("not known by
receiver"), one it defines that Strom does not serve is ``NotSupported``.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Final

import orjson
from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from strom_core.errors import RemoteProtocolError

__all__ = [
    "CENTRAL_TO_CHARGER",
    "CHARGER_TO_CENTRAL",
    "KNOWN_ACTIONS",
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
    "validate_call",
    "validate_request",
    "validate_result",
]

MAX_UNIQUE_ID_LENGTH: Final = 36  # OCPP-J 1.6: a unique id is at most 36 characters


class MessageType(enum.IntEnum):
    """The first element of every OCPP-J frame."""

    CALL = 2
    CALLRESULT = 3
    CALLERROR = 4


class ErrorCode(enum.StrEnum):
    """OCPP-J 1.6 CALLERROR codes, spelled as OCPP 1.6 spells them on the wire."""

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


# Actions a charge point sends (OCPP 1.6 Core and the other feature profiles, plus the
# notifications of the 1.6 security whitepaper).
CHARGER_TO_CENTRAL: Final = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
    }
)

# Actions a central system sends.
CENTRAL_TO_CHARGER: Final = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "InstallCertificate",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SignedUpdateFirmware",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)

KNOWN_ACTIONS: Final = CHARGER_TO_CENTRAL | CENTRAL_TO_CHARGER

# Schema fields that must stay within their declared length even when a charger's profile
# tolerates over-long strings: they are identifiers Strom stores and compares.
_ALWAYS_STRICT_LENGTH: Final = frozenset({"idTag", "parentIdTag"})


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

# RFC 3339 date-time as OCPP uses it. A missing offset is tolerated and read as UTC: several
# chargers omit the "Z", and refusing a StopTransaction for it would lose a bill.
_DATE_TIME: Final = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})?$"
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


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True  # the "type" keyword reports non-strings
    try:
        parse_timestamp(value)
    except PayloadInvalid:
        return False
    return True


_FORMATS: Final = FormatChecker(formats=())
_FORMATS.checks("date-time")(_is_date_time)


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


# --- schema validation -----------------------------------------------------------------------


@cache
def _validator(schema_name: str) -> Draft4Validator | None:
    schema_file = resources.files("ocpp.v16").joinpath("schemas", f"{schema_name}.json")
    try:
        schema = json.loads(schema_file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        return None
    return Draft4Validator(schema, format_checker=_FORMATS)


_CODE_BY_KEYWORD: Final[Mapping[str, ErrorCode]] = {
    "type": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "maxLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "minLength": ErrorCode.TYPE_CONSTRAINT_VIOLATION,
    "required": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "minItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "maxItems": ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
    "additionalProperties": ErrorCode.FORMATION_VIOLATION,
}


def _describe(error: ValidationError) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "payload"
    if error.validator == "required":
        return f"{where}: a required field is missing"
    if error.validator == "additionalProperties":
        return f"{where}: has a field the schema does not define"
    if error.validator == "maxLength":
        return f"{where}: longer than {error.validator_value} characters"
    if error.validator == "type":
        return f"{where}: expected {error.validator_value}"
    if error.validator == "enum":
        return f"{where}: not one of the allowed values"
    if error.validator == "format":
        return f"{where}: not an RFC 3339 date-time"
    return f"{where}: breaks the {error.validator} rule"


def _tolerated(error: ValidationError) -> bool:
    if error.validator != "maxLength":
        return False
    path = list(error.absolute_path)
    return not path or path[-1] not in _ALWAYS_STRICT_LENGTH


def _check(
    validator: Draft4Validator, payload: Mapping[str, Any], *, lenient_lengths: bool
) -> None:
    if validator.is_valid(payload):
        return
    errors: Iterable[ValidationError] = validator.iter_errors(payload)
    if lenient_lengths:
        errors = [error for error in errors if not _tolerated(error)]
    error = best_match(errors)
    if error is None:
        return
    code = _CODE_BY_KEYWORD.get(str(error.validator), ErrorCode.PROPERTY_CONSTRAINT_VIOLATION)
    raise PayloadInvalid(code, _describe(error))


def validate_call(call: Call, *, lenient_lengths: bool = False) -> None:
    """Check a CALL's action and payload against the OCPP 1.6 schemas.

    Args:
        call: the parsed CALL.
        lenient_lengths: tolerate over-long strings (a per-charger quirk), except for idTags.

    Raises:
        FrameRejected: with ``NotImplemented`` for an action OCPP 1.6 does not define, or the
            code of the first schema violation.
    """
    if call.action not in KNOWN_ACTIONS:
        raise FrameRejected(
            call.unique_id, ErrorCode.NOT_IMPLEMENTED, f"unknown action {call.action[:40]!r}"
        )
    validator = _validator(call.action)
    if validator is None:  # pragma: no cover - every known action ships a schema
        raise FrameRejected(call.unique_id, ErrorCode.NOT_SUPPORTED, "no schema for the action")
    try:
        _check(validator, call.payload, lenient_lengths=lenient_lengths)
    except PayloadInvalid as exc:
        raise FrameRejected(call.unique_id, exc.code, exc.description) from exc


def validate_result(
    action: str, payload: Mapping[str, Any], *, lenient_lengths: bool = False
) -> None:
    """Check the payload of a CALLRESULT answering ``action`` against its schema.

    Raises:
        PayloadInvalid: the payload breaks the response schema.
        ValueError: ``action`` is not an OCPP 1.6 action (a bug on our side).
    """
    validator = _validator(f"{action}Response")
    if validator is None:
        raise ValueError(f"no OCPP 1.6 response schema for {action!r}")
    _check(validator, payload, lenient_lengths=lenient_lengths)


def validate_request(action: str, payload: Mapping[str, Any]) -> None:
    """Check a request payload we are about to send (a failure is a bug on our side).

    Raises:
        PayloadInvalid: the payload breaks the request schema.
        ValueError: ``action`` is not an OCPP 1.6 action.
    """
    validator = _validator(action)
    if validator is None or action not in KNOWN_ACTIONS:
        raise ValueError(f"no OCPP 1.6 request schema for {action!r}")
    _check(validator, payload, lenient_lengths=False)
