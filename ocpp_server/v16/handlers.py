"""Handlers for what a charger sends (``on_<action>``) and the CALLs Strom sends after boot.

Each handler reads the validated payload into a typed request (:mod:`ocpp_server.v16.messages`),
asks the core, publishes events, and returns the CALLRESULT payload. Transactions go through
the :class:`~strom_core.ports.OcppCore`, which decides and allocates; the handlers publish
TransactionStarted/TransactionStopped only for a first, non-replayed record.

This is the edge where OCPP 1.6 meets the version-neutral port: a 1.6 integer ``transactionId``
becomes the core's string reference (:func:`~ocpp_server.v16.messages.transaction_reference`)
and back, and the core's :class:`~strom_core.ports.Authorization` becomes a 1.6
``AuthorizationStatus``. A StopTransaction or MeterValues for an id the core never gave keeps
that id as its reference: the core records it as unknown and never guesses.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, Final

from ocpp_server._connection import (
    CallOutcome,
    ChargerConnection,
    DialectContext,
    Handler,
    OutcomeKind,
    Reply,
)
from ocpp_server.handlers import BaseHandlers
from ocpp_server.records import FEATURE_PROFILES, OpenTransaction
from ocpp_server.v16.certificates import on_sign_certificate
from ocpp_server.v16.messages import (
    AUTHORIZATION_STATUS,
    boot_info,
    meter_values_request,
    start_request,
    status_report,
    stop_request,
    transaction_id,
    transaction_reference,
)
from ocpp_server.v16.meter import register_readings
from strom_core.ports import (
    Authorization,
    ConnectorStatusChanged,
    TransactionStarted,
    TransactionStopped,
)

__all__ = ["ChargerHandlers"]

log = logging.getLogger("ocpp_server.handlers")

# Notifications that are accepted and recorded (last status per kind), nothing more.
_NOTIFICATIONS: Final = {
    "DiagnosticsStatusNotification": "status",
    "FirmwareStatusNotification": "status",
    "LogStatusNotification": "status",
    "SignedFirmwareStatusNotification": "status",
}


class ChargerHandlers(BaseHandlers):
    """The ``on_<action>`` handlers and post-boot CALLs, shared by all connections."""

    def __init__(self, context: DialectContext) -> None:
        super().__init__(context, register_readings)
        self._context = context

    def table(self) -> Mapping[str, Handler]:
        """Action name to handler."""
        table: dict[str, Handler] = {
            "Authorize": self.on_authorize,
            "BootNotification": self.on_boot_notification,
            "DataTransfer": self.on_data_transfer,
            "Heartbeat": self.on_heartbeat,
            "MeterValues": self.on_meter_values,
            "SecurityEventNotification": self.on_security_event_notification,
            "SignCertificate": partial(on_sign_certificate, self._context),
            "StartTransaction": self.on_start_transaction,
            "StatusNotification": self.on_status_notification,
            "StopTransaction": self.on_stop_transaction,
        }
        table.update(self._notifications(_NOTIFICATIONS))
        return table

    # --- charger -> central system ---------------------------------------------------------

    async def on_boot_notification(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        return await self._boot(conn, boot_info(payload))

    async def on_authorize(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        id_tag = payload.get("idTag")
        if not isinstance(id_tag, str):  # pragma: no cover - the schema requires it
            return Reply({"idTagInfo": {"status": AUTHORIZATION_STATUS[Authorization.INVALID]}})
        status = await self._core.authorize(conn.charger_id, id_tag)
        return Reply({"idTagInfo": {"status": AUTHORIZATION_STATUS[status]}})

    async def on_start_transaction(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        request = start_request(payload)
        decision = await self._core.start_transaction(
            conn.charger_id,
            request.connector_id,
            request.id_tag,
            request.meter_start_wh,
            request.timestamp,
        )
        # A reference that is no 1.6 id (a bug in the core) fails here: InternalError.
        number = transaction_id(decision.transaction)
        accepted = decision.status is Authorization.ACCEPTED
        if accepted:
            conn.record.transaction_started(
                decision.transaction,
                OpenTransaction(request.connector_id, request.meter_start_wh),
            )
        if accepted and not decision.replayed:
            await self._events.publish(
                TransactionStarted(
                    conn.charger_id,
                    request.connector_id,
                    decision.transaction,
                    request.id_tag,
                    request.meter_start_wh,
                    request.timestamp,
                    request.reservation_id,
                )
            )
        log.info(
            "cp_id=%s: StartTransaction connector %d -> transaction %d %s%s%s",
            conn.charger_id,
            request.connector_id,
            number,
            AUTHORIZATION_STATUS[decision.status],
            "" if request.reservation_id is None else f" (reservation {request.reservation_id})",
            " (replay)" if decision.replayed else "",
        )
        return Reply(
            {
                "transactionId": number,
                "idTagInfo": {"status": AUTHORIZATION_STATUS[decision.status]},
            }
        )

    async def on_stop_transaction(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        request = stop_request(payload)
        transaction = transaction_reference(request.transaction_id)
        opened = conn.record.open_transaction(transaction)
        readings = self._readings(conn, request.transaction_data)
        for reading in readings:
            await self._sample(conn, transaction, opened, reading)
        meter_stop = request.meter_stop
        if meter_stop < 0:
            meter_stop = self._stop_register(conn, transaction, opened, readings)
        decision = await self._core.stop_transaction(
            conn.charger_id,
            transaction,
            meter_stop,
            request.timestamp,
            request.reason,
            request.id_tag,
        )
        if decision.known and not decision.replayed:
            await self._events.publish(
                TransactionStopped(
                    conn.charger_id,
                    transaction,
                    meter_stop,
                    request.timestamp,
                    request.reason,
                )
            )
        conn.record.transaction_stopped(transaction)
        if not decision.known:
            log.warning(
                "cp_id=%s: StopTransaction for unknown transaction %d recorded, not matched",
                conn.charger_id,
                request.transaction_id,
            )
        if request.id_tag is None:
            return Reply({})
        return Reply({"idTagInfo": {"status": AUTHORIZATION_STATUS[decision.status]}})

    async def on_status_notification(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        report = status_report(payload)
        conn.record.connector_status[report.connector_id] = report.status
        if conn.auth is not None and report.connector_id > conn.auth.connectors:
            log.warning(
                "cp_id=%s: status for connector %d, configured with %d",
                conn.charger_id,
                report.connector_id,
                conn.auth.connectors,
            )
        await self._events.publish(
            ConnectorStatusChanged(
                conn.charger_id,
                report.connector_id,
                report.status,
                report.error_code,
                report.timestamp or self._now(),
                report.info,
            )
        )
        return Reply({})

    async def on_meter_values(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        request = meter_values_request(payload)
        if request.transaction_id is None:
            # Connector readings outside a transaction: nothing to bill, nothing to guess.
            return Reply({})
        transaction = transaction_reference(request.transaction_id)
        opened = conn.record.open_transaction(transaction)
        for reading in self._readings(conn, request.meter_values):
            await self._sample(
                conn, transaction, opened, reading, connector_id=request.connector_id
            )
        return Reply({})

    # --- central system -> charger after boot ----------------------------------------------

    async def configure(self, conn: ChargerConnection) -> None:
        """Set meter sampling, ask for status and meter values, read its feature profiles."""
        settings = self._settings
        await self._change(
            conn, "MeterValueSampleInterval", str(settings.meter_value_sample_interval_s)
        )
        measurands = ",".join(settings.measurands)
        outcome = await self._change(conn, "MeterValuesSampledData", measurands)
        if _refused(outcome) and len(settings.measurands) > 1:
            # Chargers refuse the whole list when one measurand is unknown to their meter.
            await self._change(conn, "MeterValuesSampledData", "Energy.Active.Import.Register")
        await self._change(conn, "StopTxnSampledData", "Energy.Active.Import.Register")
        await self._trigger(conn, "StatusNotification", None)
        connectors = conn.auth.connectors if conn.auth is not None else 1
        for connector in range(1, connectors + 1):
            await self._trigger(conn, "MeterValues", connector)
        await self._read_features(conn)

    async def _read_features(self, conn: ChargerConnection) -> None:
        """Keep the charger's ``SupportedFeatureProfiles`` in its record (a required key).

        What Strom offers drivers depends on it (charge when cheap needs SmartCharging); a
        charger that does not answer keeps no value, and is offered what its version carries.
        """
        outcome = await conn.call("GetConfiguration", {"key": [FEATURE_PROFILES]})
        if outcome.kind != OutcomeKind.ANSWERED:
            log.info(
                "cp_id=%s: GetConfiguration %s: %s", conn.charger_id, FEATURE_PROFILES, outcome.kind
            )
            return
        for entry in outcome.payload.get("configurationKey") or ():
            if isinstance(entry, dict) and entry.get("key") == FEATURE_PROFILES:
                value = entry.get("value")
                if isinstance(value, str):
                    conn.record.variables[FEATURE_PROFILES] = value[:500]
                return

    async def trigger_boot(self, conn: ChargerConnection) -> None:
        """The BootNotification backstop: ask a charger that resumed without booting."""
        log.info("cp_id=%s: connected without BootNotification; asking for one", conn.charger_id)
        await self._trigger(conn, "BootNotification", None)

    async def _change(self, conn: ChargerConnection, key: str, value: str) -> CallOutcome:
        outcome = await conn.call("ChangeConfiguration", {"key": key, "value": value})
        status = outcome.payload.get("status") if outcome.kind == OutcomeKind.ANSWERED else None
        if status not in ("Accepted", "RebootRequired"):
            log.info(
                "cp_id=%s: ChangeConfiguration %s=%s: %s %s",
                conn.charger_id,
                key,
                value,
                status or outcome.kind,
                outcome.error_code,
            )
        return outcome

    async def _trigger(
        self, conn: ChargerConnection, message: str, connector_id: int | None
    ) -> CallOutcome:
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector_id is not None:
            payload["connectorId"] = connector_id
        outcome = await conn.call("TriggerMessage", payload)
        if outcome.kind != OutcomeKind.ANSWERED or outcome.payload.get("status") != "Accepted":
            log.info(
                "cp_id=%s: TriggerMessage %s not accepted: %s",
                conn.charger_id,
                message,
                outcome.payload.get("status") or outcome.kind,
            )
        return outcome


def _refused(outcome: CallOutcome) -> bool:
    if outcome.kind == OutcomeKind.ANSWERED:
        return outcome.payload.get("status") in ("Rejected", "NotSupported")
    return outcome.kind == OutcomeKind.CALL_ERROR
