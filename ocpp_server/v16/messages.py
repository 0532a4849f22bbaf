"""Typed views of the OCPP 1.6 requests a charger sends, with no I/O.

Payloads arrive as JSON objects that already passed schema validation (unless a quirk relaxed
it). The functions here read them into frozen dataclasses with exact types and re-check what
the code relies on, so a payload that slipped past a relaxed schema becomes a
:class:`~ocpp_server.ocppj.PayloadInvalid` (and a CALLERROR), never an exception elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ocpp_server.fields import integer as _int
from ocpp_server.fields import optional_string as _opt_str
from ocpp_server.fields import string as _str
from ocpp_server.fields import timestamp as _time
from ocpp_server.ocppj import ErrorCode, PayloadInvalid
from ocpp_server.records import BootInfo
from strom_core.ports import Authorization

__all__ = [
    "AUTHORIZATION_STATUS",
    "MeterValuesRequest",
    "StartRequest",
    "StatusReport",
    "StopRequest",
    "boot_info",
    "meter_values_request",
    "start_request",
    "status_report",
    "stop_request",
    "transaction_id",
    "transaction_reference",
]

MAX_ID: Final = 2**31 - 1  # OCPP integers are 32-bit on most chargers and in Strom's tables

AUTHORIZATION_STATUS: Final[Mapping[Authorization, str]] = {
    Authorization.ACCEPTED: "Accepted",
    Authorization.BLOCKED: "Blocked",
    Authorization.EXPIRED: "Expired",
    Authorization.INVALID: "Invalid",
    Authorization.IN_USE: "ConcurrentTx",
}
"""The OCPP 1.6 ``AuthorizationStatus`` of each of the core's decisions."""


def transaction_reference(transaction_id: int) -> str:
    """The core's reference of an OCPP 1.6 ``transactionId``: its decimal string."""
    return str(transaction_id)


def transaction_id(reference: str) -> int:
    """The OCPP 1.6 ``transactionId`` of a transaction reference.

    Raises:
        ValueError: the reference is not a 1.6 transaction id (``1``..``2^31-1`` in decimal,
            as :func:`transaction_reference` writes it).
    """
    if not reference.isascii() or not reference.isdigit() or reference != str(int(reference)):
        raise ValueError(f"{reference[:40]!r} is not an OCPP 1.6 transaction id")
    value = int(reference)
    if not 1 <= value <= MAX_ID:
        raise ValueError(f"{reference[:40]!r} is not an OCPP 1.6 transaction id")
    return value


def _id(payload: Mapping[str, Any], key: str, *, minimum: int = 0) -> int:
    value = _int(payload, key)
    if not minimum <= value <= MAX_ID:
        raise PayloadInvalid(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, f"{key}: must be {minimum}..{MAX_ID}"
        )
    return value


def boot_info(payload: Mapping[str, Any]) -> BootInfo:
    """Read a BootNotification.req (an empty vendor is accepted: the schema allows it)."""
    return BootInfo(
        vendor=_str(payload, "chargePointVendor"),
        model=_str(payload, "chargePointModel"),
        serial_number=_opt_str(payload, "chargePointSerialNumber"),
        charge_box_serial_number=_opt_str(payload, "chargeBoxSerialNumber"),
        firmware_version=_opt_str(payload, "firmwareVersion"),
        iccid=_opt_str(payload, "iccid"),
        imsi=_opt_str(payload, "imsi"),
        meter_type=_opt_str(payload, "meterType"),
        meter_serial_number=_opt_str(payload, "meterSerialNumber"),
    )


@dataclass(frozen=True, slots=True)
class StartRequest:
    """A StartTransaction.req."""

    connector_id: int
    id_tag: str
    meter_start_wh: int
    timestamp: datetime
    reservation_id: int | None = None


def start_request(payload: Mapping[str, Any]) -> StartRequest:
    """Read a StartTransaction.req.

    Raises:
        PayloadInvalid: connector 0 or a negative meterStart (no transaction can be recorded).
    """
    meter_start = _int(payload, "meterStart")
    if meter_start < 0:
        raise PayloadInvalid(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "meterStart: must not be negative"
        )
    reservation = payload.get("reservationId")
    return StartRequest(
        connector_id=_id(payload, "connectorId", minimum=1),
        id_tag=_str(payload, "idTag"),
        meter_start_wh=meter_start,
        timestamp=_time(payload, "timestamp"),
        reservation_id=None if reservation is None else _id(payload, "reservationId"),
    )


@dataclass(frozen=True, slots=True)
class StopRequest:
    """A StopTransaction.req (``meter_stop`` as sent: some chargers send -1 for unknown)."""

    transaction_id: int
    meter_stop: int
    timestamp: datetime
    reason: str
    id_tag: str | None
    transaction_data: tuple[Mapping[str, Any], ...]


def stop_request(payload: Mapping[str, Any]) -> StopRequest:
    """Read a StopTransaction.req (an absent reason means "Local", as OCPP 1.6 defines)."""
    data = payload.get("transactionData") or []
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise PayloadInvalid(
            ErrorCode.TYPE_CONSTRAINT_VIOLATION, "transactionData: expected MeterValue objects"
        )
    return StopRequest(
        transaction_id=_id(payload, "transactionId"),
        meter_stop=_int(payload, "meterStop"),
        timestamp=_time(payload, "timestamp"),
        reason=_opt_str(payload, "reason") or "Local",
        id_tag=_opt_str(payload, "idTag"),
        transaction_data=tuple(data),
    )


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A StatusNotification.req (connector 0 is the charger as a whole)."""

    connector_id: int
    status: str
    error_code: str
    timestamp: datetime | None
    info: str
    vendor_id: str | None
    vendor_error_code: str | None


def status_report(payload: Mapping[str, Any]) -> StatusReport:
    """Read a StatusNotification.req."""
    return StatusReport(
        connector_id=_id(payload, "connectorId"),
        status=_str(payload, "status"),
        error_code=_str(payload, "errorCode"),
        timestamp=_time(payload, "timestamp") if "timestamp" in payload else None,
        info=_opt_str(payload, "info") or "",
        vendor_id=_opt_str(payload, "vendorId"),
        vendor_error_code=_opt_str(payload, "vendorErrorCode"),
    )


@dataclass(frozen=True, slots=True)
class MeterValuesRequest:
    """A MeterValues.req; ``transaction_id`` None when absent or 0 (no transaction)."""

    connector_id: int
    transaction_id: int | None
    meter_values: tuple[Mapping[str, Any], ...]


def meter_values_request(payload: Mapping[str, Any]) -> MeterValuesRequest:
    """Read a MeterValues.req. ``transactionId`` 0 is read as "no transaction".

    Several chargers send 0 between or even during transactions (mobilityhouse/ocpp#478);
    Strom never allocates 0, so such samples cannot belong to a transaction it knows.
    """
    values = payload.get("meterValue")
    if not isinstance(values, list) or not all(isinstance(entry, dict) for entry in values):
        raise PayloadInvalid(
            ErrorCode.TYPE_CONSTRAINT_VIOLATION, "meterValue: expected MeterValue objects"
        )
    transaction = payload.get("transactionId")
    transaction_id = None if transaction is None else _id(payload, "transactionId")
    return MeterValuesRequest(
        connector_id=_id(payload, "connectorId"),
        transaction_id=transaction_id or None,
        meter_values=tuple(values),
    )
