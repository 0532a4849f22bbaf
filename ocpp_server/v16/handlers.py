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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from ocpp_server._connection import (
    CallOutcome,
    ChargerConnection,
    DialectContext,
    Handler,
    OutcomeKind,
    Reply,
)
from ocpp_server.connection_state import ConnectionEvent, ConnectionState
from ocpp_server.ocppj import format_timestamp
from ocpp_server.records import OpenTransaction, PendingCharger
from ocpp_server.settings import Quirk
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
from ocpp_server.v16.meter import RegisterReading, register_readings
from strom_core.ports import (
    Authorization,
    ChargerBooted,
    ConnectorStatusChanged,
    MeterSample,
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
    "SecurityEventNotification": "type",
}


class ChargerHandlers:
    """The ``on_<action>`` handlers and post-boot CALLs, shared by all connections."""

    def __init__(self, context: DialectContext) -> None:
        self._settings = context.settings
        self._core = context.core
        self._events = context.events
        self._chargers = context.chargers
        self._now = context.now
        self._pending = context.pending
        self._update_pending = context.update_pending

    def table(self) -> Mapping[str, Handler]:
        """Action name to handler."""
        table: dict[str, Handler] = {
            "Authorize": self.on_authorize,
            "BootNotification": self.on_boot_notification,
            "DataTransfer": self.on_data_transfer,
            "Heartbeat": self.on_heartbeat,
            "MeterValues": self.on_meter_values,
            "StartTransaction": self.on_start_transaction,
            "StatusNotification": self.on_status_notification,
            "StopTransaction": self.on_stop_transaction,
        }
        for action in _NOTIFICATIONS:
            table[action] = self._notification(action)
        return table

    # --- charger -> central system ---------------------------------------------------------

    async def on_boot_notification(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        info = boot_info(payload)
        conn.record.boot = info
        now = self._now()
        if conn.state is ConnectionState.PENDING_APPROVAL:
            pending = self._pending(conn)
            if pending is not None:
                self._update_pending(
                    PendingCharger(
                        pending.charger_id,
                        pending.remote_address,
                        pending.first_seen,
                        now,
                        pending.presented_credentials,
                        info,
                    )
                )
            approved = await self._chargers.charger_auth(conn.charger_id) is not None
            return Reply(
                {
                    "status": "Pending",
                    "currentTime": format_timestamp(now),
                    "interval": self._settings.pending_retry_interval_s,
                },
                ConnectionEvent.APPROVED if approved else ConnectionEvent.BOOT_PENDING,
            )
        log.info(
            "cp_id=%s: booted (%s %s, firmware %s)",
            conn.charger_id,
            info.vendor,
            info.model,
            info.firmware_version,
        )
        # A boot may have lost the charger's transactions: the core watches for that.
        await self._events.publish(ChargerBooted(conn.charger_id, now))
        return Reply(
            {
                "status": "Accepted",
                "currentTime": format_timestamp(now),
                "interval": self._settings.heartbeat_interval_s,
            },
            ConnectionEvent.BOOT_ACCEPTED,
        )

    async def on_heartbeat(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        return Reply({"currentTime": format_timestamp(self._now())})

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
                )
            )
        log.info(
            "cp_id=%s: StartTransaction connector %d -> transaction %d %s%s",
            conn.charger_id,
            request.connector_id,
            number,
            AUTHORIZATION_STATUS[decision.status],
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

    def _stop_register(
        self,
        conn: ChargerConnection,
        transaction: str,
        opened: OpenTransaction | None,
        readings: list[RegisterReading],
    ) -> int:
        # Some chargers send meterStop -1 when their meter could not be read (ocpp-go #114).
        # Take the best register Strom has, never a guess: the stop's own transactionData,
        # the last MeterValues register, then meterStart (no energy billed).
        candidates = [reading.register_wh for reading in readings]
        last = conn.record.last_register(transaction)
        if last is not None:
            candidates.append(last)
        if candidates:
            register = max(candidates)
        elif opened is not None:
            register = opened.meter_start_wh
        else:
            register = 0
        log.warning(
            "cp_id=%s: StopTransaction %s without a meter reading; recorded with %d Wh",
            conn.charger_id,
            transaction,
            register,
        )
        return register

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

    def _readings(
        self, conn: ChargerConnection, meter_values: tuple[Mapping[str, Any], ...]
    ) -> list[RegisterReading]:
        readings, notes = register_readings(
            meter_values, kwh_labelled_wh=conn.has(Quirk.ENERGY_KWH_LABELLED_WH)
        )
        for note in notes:
            log.info("cp_id=%s: %s", conn.charger_id, note)
        return readings

    async def _sample(
        self,
        conn: ChargerConnection,
        transaction: str,
        opened: OpenTransaction | None,
        reading: RegisterReading,
        *,
        connector_id: int | None = None,
    ) -> None:
        register = reading.register_wh
        if conn.has(Quirk.SESSION_RELATIVE_METER_VALUES):
            if opened is None:
                log.info(
                    "cp_id=%s: session-relative sample for transaction %s dropped: its "
                    "meterStart is unknown here",
                    conn.charger_id,
                    transaction,
                )
                return
            register += opened.meter_start_wh
        if connector_id is None:
            connector_id = opened.connector_id if opened is not None else 0
        conn.record.register_seen(transaction, register)
        sample = MeterSample(
            conn.charger_id, connector_id, transaction, register, reading.timestamp
        )
        await self._core.record_meter(sample)
        await self._events.publish(sample)

    async def on_data_transfer(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        # No vendor extension is implemented: OCPP 1.6 DataTransfer says to answer so.
        log.info(
            "cp_id=%s: DataTransfer from vendor %r ignored",
            conn.charger_id,
            str(payload.get("vendorId"))[:255],
        )
        return Reply({"status": "UnknownVendorId"})

    def _notification(
        self, action: str
    ) -> Callable[[ChargerConnection, Mapping[str, Any]], Awaitable[Reply]]:
        field_name = _NOTIFICATIONS[action]

        async def on_notification(conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
            value = str(payload.get(field_name, ""))[:50]
            conn.record.notifications[action] = value
            log.info("cp_id=%s: %s %s", conn.charger_id, action, value)
            return Reply({})

        return on_notification

    # --- central system -> charger after boot ----------------------------------------------

    async def configure(self, conn: ChargerConnection) -> None:
        """Set meter sampling, then ask for connector status and meter values."""
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
