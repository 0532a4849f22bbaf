"""Typed views of the OCPP 2.0.1 requests a charging station sends, with no I/O.

Payloads arrive validated against the 2.0.1 schemas; the functions here read them into frozen
dataclasses and re-check what the code relies on (:mod:`ocpp_server.fields`), so a payload that
slipped past a relaxed schema becomes a :class:`~ocpp_server.ocppj.PayloadInvalid`.

Strom's connector numbering: **Strom connector N is 2.0.1 EVSE N.** An EVSE is what one car
charges at (only one of its connectors can be used at a time), so it is what Strom sells;
``evseId`` 0 is the station as a whole, like 1.6's connector 0. The connector within an EVSE is
kept only where a command needs it (UnlockConnector).

The remote start id (:func:`remote_start_id`) is a deterministic positive 31-bit function of
the idTag: a RequestStartTransaction sent again for the same session carries the same id, also
after a restart of Strom.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ocpp_server.fields import integer, optional_string, string, timestamp
from ocpp_server.ocppj import ErrorCode, PayloadInvalid
from ocpp_server.records import BootInfo
from strom_core.ports import Authorization

__all__ = [
    "AUTHORIZATION_STATUS",
    "NO_AUTHORIZATION",
    "StatusReport",
    "TransactionEvent",
    "boot_info",
    "id_token",
    "remote_start_id",
    "status_report",
    "transaction_event",
]

MAX_ID: Final = 2**31 - 1
NO_AUTHORIZATION: Final = "NoAuthorization"

AUTHORIZATION_STATUS: Final[Mapping[Authorization, str]] = {
    Authorization.ACCEPTED: "Accepted",
    Authorization.BLOCKED: "Blocked",
    Authorization.EXPIRED: "Expired",
    Authorization.INVALID: "Invalid",
    Authorization.IN_USE: "ConcurrentTx",
}
"""The OCPP 2.0.1 ``AuthorizationStatusEnumType`` of each of the core's decisions."""


def remote_start_id(id_tag: str) -> int:
    """The ``remoteStartId`` Strom sends with an idTag: 1..2^31-1, the same for the same tag."""
    digest = hashlib.sha256(id_tag.encode()).digest()
    return int.from_bytes(digest[:4], "big") % MAX_ID + 1


def _object(payload: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise PayloadInvalid(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{key}: expected an object")
    return value


def _optional_int(payload: Mapping[str, Any], key: str) -> int | None:
    return None if payload.get(key) is None else integer(payload, key)


def id_token(payload: Mapping[str, Any]) -> str | None:
    """The idToken string of a request's ``idToken`` (None when absent or NoAuthorization)."""
    token = _object(payload, "idToken")
    if token is None or token.get("type") == NO_AUTHORIZATION:
        return None
    return string(token, "idToken")


def boot_info(payload: Mapping[str, Any]) -> BootInfo:
    """Read a BootNotificationRequest (the station's description) into Strom's BootInfo."""
    station = _object(payload, "chargingStation") or {}
    modem = _object(station, "modem") or {}
    return BootInfo(
        vendor=string(station, "vendorName"),
        model=string(station, "model"),
        serial_number=optional_string(station, "serialNumber"),
        firmware_version=optional_string(station, "firmwareVersion"),
        iccid=optional_string(modem, "iccid"),
        imsi=optional_string(modem, "imsi"),
    )


@dataclass(frozen=True, slots=True)
class StatusReport:
    """A StatusNotificationRequest (``evse_id`` 0 is the station as a whole)."""

    evse_id: int
    connector_id: int
    status: str  # 2.0.1 ConnectorStatusEnumType: Available, Occupied, Reserved, ...
    timestamp: datetime


def status_report(payload: Mapping[str, Any]) -> StatusReport:
    """Read a StatusNotificationRequest.

    Raises:
        PayloadInvalid: a negative EVSE or connector id.
    """
    evse = integer(payload, "evseId")
    connector = integer(payload, "connectorId")
    if evse < 0 or connector < 0:
        raise PayloadInvalid(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "evseId/connectorId: must not be negative"
        )
    return StatusReport(
        evse_id=evse,
        connector_id=connector,
        status=string(payload, "connectorStatus"),
        timestamp=timestamp(payload, "timestamp"),
    )


@dataclass(frozen=True, slots=True)
class TransactionEvent:
    """A TransactionEventRequest.

    Attributes:
        event_type: ``Started``, ``Updated`` or ``Ended``.
        transaction_id: the station's transaction id (its reference in Strom).
        evse_id: the EVSE (Strom's connector), when the event names one.
        id_tag: the idToken string, when the event carries one.
        remote_start_id: the id of the RequestStartTransaction that started it, if any.
        charging_state: the transaction's chargingState, when given.
        stopped_reason: why it ended (``Local`` when an Ended event does not say).
        meter_values: the ``meterValue`` objects.
        reservation_id: the reservation the transaction ends, if the event names one.
    """

    event_type: str
    timestamp: datetime
    trigger_reason: str
    seq_no: int
    offline: bool
    transaction_id: str
    evse_id: int | None
    connector_id: int | None
    id_tag: str | None
    remote_start_id: int | None
    charging_state: str | None
    stopped_reason: str
    meter_values: tuple[Mapping[str, Any], ...]
    reservation_id: int | None = None


def transaction_event(payload: Mapping[str, Any]) -> TransactionEvent:
    """Read a TransactionEventRequest.

    Raises:
        PayloadInvalid: an EVSE id below 1 (a transaction is on an EVSE), or an empty
            transaction id.
    """
    info = _object(payload, "transactionInfo") or {}
    transaction = string(info, "transactionId")
    if not transaction:
        raise PayloadInvalid(
            ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "transactionId: must not be empty"
        )
    evse = _object(payload, "evse")
    evse_id = None if evse is None else integer(evse, "id")
    if evse_id is not None and evse_id < 1:
        raise PayloadInvalid(ErrorCode.PROPERTY_CONSTRAINT_VIOLATION, "evse.id: must be >= 1")
    values = payload.get("meterValue") or []
    if not isinstance(values, list) or not all(isinstance(entry, dict) for entry in values):
        raise PayloadInvalid(
            ErrorCode.TYPE_CONSTRAINT_VIOLATION, "meterValue: expected MeterValue objects"
        )
    return TransactionEvent(
        event_type=string(payload, "eventType"),
        timestamp=timestamp(payload, "timestamp"),
        trigger_reason=string(payload, "triggerReason"),
        seq_no=integer(payload, "seqNo"),
        offline=payload.get("offline") is True,
        transaction_id=transaction,
        evse_id=evse_id,
        connector_id=None if evse is None else _optional_int(evse, "connectorId"),
        id_tag=id_token(payload),
        remote_start_id=_optional_int(info, "remoteStartId"),
        charging_state=optional_string(info, "chargingState"),
        stopped_reason=optional_string(info, "stoppedReason") or "Local",
        meter_values=tuple(values),
        reservation_id=_optional_int(payload, "reservationId"),
    )
