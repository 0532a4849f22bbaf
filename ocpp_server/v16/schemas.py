"""OCPP 1.6 payload validation against the official JSON schemas, with no I/O.

:func:`validate_call` and :func:`validate_result` check payloads against the OCPP 1.6 JSON
schemas (shipped with the ``ocpp`` package, ``ocpp.v16``, Draft 4), through the version-neutral
:class:`~ocpp_server.schemas.SchemaSet`, and map a violation onto the OCPP 1.6 error codes
(section 4.2.3 of OCPP-J 1.6, with the spellings the 1.6 errata keep: ``FormationViolation``
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

An action OCPP 1.6 does not define is ``NotImplemented`` ("not known by receiver"); one it
defines that Strom does not serve is ``NotSupported`` (the connection decides that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jsonschema import Draft4Validator

from ocpp_server.ocppj import Call, ErrorCode
from ocpp_server.schemas import ErrorSpelling, SchemaSet

__all__ = [
    "CENTRAL_TO_CHARGER",
    "CHARGER_TO_CENTRAL",
    "KNOWN_ACTIONS",
    "SCHEMAS",
    "SPELLING",
    "validate_call",
    "validate_request",
    "validate_result",
    "wire_code",
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

SPELLING: Final = ErrorSpelling(
    formation=ErrorCode.FORMATION_VIOLATION,
    occurrence=ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION,
)

SCHEMAS: Final = SchemaSet(
    version="OCPP 1.6",
    package="ocpp.v16",
    validator=Draft4Validator,
    request_suffix="",
    spelling=SPELLING,
    known_actions=KNOWN_ACTIONS,
    # Identifiers Strom stores and compares stay within their length under any quirk.
    always_strict_length=frozenset({"idTag", "parentIdTag"}),
)


def validate_call(call: Call, *, lenient_lengths: bool = False) -> None:
    """Check a CALL's action and payload against the OCPP 1.6 schemas.

    Args:
        call: the parsed CALL.
        lenient_lengths: tolerate over-long strings (a per-charger quirk), except for idTags.

    Raises:
        FrameRejected: with ``NotImplemented`` for an action OCPP 1.6 does not define, or the
            code of the first schema violation.
    """
    SCHEMAS.validate_call(call, lenient_lengths=lenient_lengths)


def validate_result(
    action: str, payload: Mapping[str, Any], *, lenient_lengths: bool = False
) -> None:
    """Check the payload of a CALLRESULT answering ``action`` against its schema.

    Raises:
        PayloadInvalid: the payload breaks the response schema.
        ValueError: ``action`` is not an OCPP 1.6 action (a bug on our side).
    """
    SCHEMAS.validate_result(action, payload, lenient_lengths=lenient_lengths)


def validate_request(action: str, payload: Mapping[str, Any]) -> None:
    """Check a request payload we are about to send (a failure is a bug on our side).

    Raises:
        PayloadInvalid: the payload breaks the request schema.
        ValueError: ``action`` is not an OCPP 1.6 action.
    """
    SCHEMAS.validate_request(action, payload)


def wire_code(code: ErrorCode) -> ErrorCode:
    """OCPP 1.6's spelling of an error code."""
    return SPELLING.wire_code(code)
