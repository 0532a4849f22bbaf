"""OCPP 2.0.1 payload validation against the official JSON schemas, with no I/O.

:func:`validate_call`, :func:`validate_result` and :func:`validate_request` check payloads
against the OCPP 2.0.1 JSON schemas (shipped with the ``ocpp`` package, ``ocpp.v201``, one
``<Action>Request.json`` and ``<Action>Response.json`` per action, JSON Schema Draft 6) through
the version-neutral :class:`~ocpp_server.schemas.SchemaSet`, and map a violation onto the
error codes of OCPP-J 2.0.1 (section 4.3):

=========================== =================================================================
schema keyword              OCPP 2.0.1 error code
=========================== =================================================================
``type``, ``maxLength``     ``TypeConstraintViolation``
``required``                ``OccurrenceConstraintViolation``
``minItems``/``maxItems``   ``OccurrenceConstraintViolation``
``enum``, ``format``, ...   ``PropertyConstraintViolation``
``additionalProperties``    ``FormatViolation``
=========================== =================================================================

An action OCPP 2.0.1 does not define is ``NotImplemented``; one it defines that Strom does not
serve is ``NotSupported``. :func:`wire_code` gives 2.0.1's spelling of the codes the
version-neutral OCPP-J layer raises (``FormationViolation`` becomes ``FormatViolation``).

Every 2.0.1 object may carry ``customData`` (an object with a ``vendorId`` and anything else):
the schemas allow it, so it passes; Strom reads none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from jsonschema import Draft6Validator

from ocpp_server.ocppj import Call, ErrorCode
from ocpp_server.schemas import ErrorSpelling, SchemaSet

__all__ = [
    "CHARGER_TO_CSMS",
    "CSMS_TO_CHARGER",
    "KNOWN_ACTIONS",
    "SCHEMAS",
    "SPELLING",
    "validate_call",
    "validate_request",
    "validate_result",
    "wire_code",
]

# Actions a charging station sends.
CHARGER_TO_CSMS: Final = frozenset(
    {
        "Authorize",
        "BootNotification",
        "ClearedChargingLimit",
        "DataTransfer",
        "FirmwareStatusNotification",
        "Get15118EVCertificate",
        "GetCertificateStatus",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "NotifyChargingLimit",
        "NotifyCustomerInformation",
        "NotifyDisplayMessages",
        "NotifyEVChargingNeeds",
        "NotifyEVChargingSchedule",
        "NotifyEvent",
        "NotifyMonitoringReport",
        "NotifyReport",
        "PublishFirmwareStatusNotification",
        "ReportChargingProfiles",
        "ReservationStatusUpdate",
        "SecurityEventNotification",
        "SignCertificate",
        "StatusNotification",
        "TransactionEvent",
    }
)

# Actions a CSMS sends.
CSMS_TO_CHARGER: Final = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DataTransfer",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "PublishFirmware",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateFirmware",
    }
)

KNOWN_ACTIONS: Final = CHARGER_TO_CSMS | CSMS_TO_CHARGER

SPELLING: Final = ErrorSpelling(
    formation=ErrorCode.FORMAT_VIOLATION,
    occurrence=ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION,
)

SCHEMAS: Final = SchemaSet(
    version="OCPP 2.0.1",
    package="ocpp.v201",
    validator=Draft6Validator,
    request_suffix="Request",
    spelling=SPELLING,
    known_actions=KNOWN_ACTIONS,
    # Identifiers Strom stores and compares stay within their length under any quirk.
    always_strict_length=frozenset({"idToken", "transactionId"}),
)


def validate_call(call: Call, *, lenient_lengths: bool = False) -> None:
    """Check a CALL's action and payload against the OCPP 2.0.1 schemas.

    Args:
        call: the parsed CALL.
        lenient_lengths: tolerate over-long strings (a per-charger quirk), except for idTokens
            and transaction ids.

    Raises:
        FrameRejected: with ``NotImplemented`` for an action OCPP 2.0.1 does not define, or the
            2.0.1 code of the first schema violation.
    """
    SCHEMAS.validate_call(call, lenient_lengths=lenient_lengths)


def validate_result(
    action: str, payload: Mapping[str, Any], *, lenient_lengths: bool = False
) -> None:
    """Check the payload of a CALLRESULT answering ``action`` against its schema.

    Raises:
        PayloadInvalid: the payload breaks the response schema.
        ValueError: ``action`` is not an OCPP 2.0.1 action (a bug on our side).
    """
    SCHEMAS.validate_result(action, payload, lenient_lengths=lenient_lengths)


def validate_request(action: str, payload: Mapping[str, Any]) -> None:
    """Check a request payload we are about to send (a failure is a bug on our side).

    Raises:
        PayloadInvalid: the payload breaks the request schema.
        ValueError: ``action`` is not an OCPP 2.0.1 action.
    """
    SCHEMAS.validate_request(action, payload)


def wire_code(code: ErrorCode) -> ErrorCode:
    """OCPP 2.0.1's spelling of an error code (``FormatViolation`` for ``FormationViolation``)."""
    return SPELLING.wire_code(code)
