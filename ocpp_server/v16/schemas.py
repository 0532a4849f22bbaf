"""OCPP 1.6 payload validation against the official JSON schemas, with no I/O.

:func:`validate_call` and :func:`validate_result` check payloads against the OCPP 1.6 JSON
schemas (shipped with the ``ocpp`` package, ``ocpp.v16``) and map a violation onto the OCPP 1.6
error codes (section 4.2.3 of OCPP-J 1.6, with the spellings the 1.6 errata keep:
``FormationViolation`` and ``OccurenceConstraintViolation``):

=========================== =================================================================
schema keyword              OCPP 1.6 error code
=========================== =================================================================
``type``, ``maxLength``     ``TypeConstraintViolation`` (a CiStringNType is a data type)
``required``                ``OccurenceConstraintViolation`` (a mandatory field occurs 0 times)
``minItems``/``maxItems``   ``OccurenceConstraintViolation``
``enum``, ``format``, ...   ``PropertyConstraintViolation`` (a field holds an invalid value)
``additionalProperties``    ``FormationViolation`` (the payload is not the action's PDU)
=========================== =================================================================

An action OCPP 1.6 does not define is ``NotImplemented`` ("not known by receiver"); one it
defines that Strom does not serve is ``NotSupported`` (the connection decides that).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft4Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match

from ocpp_server.ocppj import (
    Call,
    ErrorCode,
    FrameRejected,
    PayloadInvalid,
    parse_timestamp,
)

__all__ = [
    "CENTRAL_TO_CHARGER",
    "CHARGER_TO_CENTRAL",
    "KNOWN_ACTIONS",
    "validate_call",
    "validate_request",
    "validate_result",
]

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
