"""What every OCPP version's handlers share: boot decisions, heartbeats, meter samples.

A version's handlers (:mod:`ocpp_server.v16.handlers`, :mod:`ocpp_server.v201.handlers`) read
their own payloads into typed requests and answer in their own words; what they decide in
common lives here, in :class:`BaseHandlers`:

* a BootNotification is answered ``Pending`` with the retry interval while the charger is
  held for approval (and the connection is told when an operator approved it meanwhile), else
  ``Accepted`` with the heartbeat interval, after publishing ChargerBooted (a boot may have
  lost the charger's transactions: the core watches for that). Both versions name the answer's
  fields alike (``status``, ``currentTime``, ``interval``);
* a meter sample is normalised (the session-relative quirk), remembered as the transaction's
  best register, recorded in the core and published;
* a stop without a meter reading takes the best register Strom has, never a guess;
* DataTransfer is answered ``UnknownVendorId`` (no vendor extension is implemented) and the
  notifications Strom only records keep their last value per kind in the charger's record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from ocpp_server._connection import ChargerConnection, DialectContext, Reply
from ocpp_server.connection_state import ConnectionEvent, ConnectionState
from ocpp_server.fields import optional_string, string, timestamp
from ocpp_server.meter import RegisterReading
from ocpp_server.ocppj import format_timestamp
from ocpp_server.records import BootInfo, OpenTransaction, PendingCharger, SecurityEvent
from ocpp_server.settings import Quirk
from strom_core.ports import ChargerBooted, MeterSample, SecurityEventReported

__all__ = ["BaseHandlers", "ReadingsReader"]

log = logging.getLogger("ocpp_server.handlers")

ReadingsReader = Callable[..., tuple[list[RegisterReading], list[str]]]
"""A version's ``register_readings(meter_values, *, kwh_labelled_wh=...)``."""


class BaseHandlers:
    """The handler logic every OCPP version shares (see the module docstring).

    Args:
        context: what the server gives every version's handlers.
        readings: the version's reader of meter values into register readings.
    """

    def __init__(self, context: DialectContext, readings: ReadingsReader) -> None:
        self._settings = context.settings
        self._core = context.core
        self._events = context.events
        self._chargers = context.chargers
        self._now = context.now
        self._pending = context.pending
        self._update_pending = context.update_pending
        self._register_readings = readings

    async def _boot(self, conn: ChargerConnection, info: BootInfo) -> Reply:
        """Decide a BootNotification (Pending while held for approval, else Accepted)."""
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
        """Heartbeat: the current time."""
        return Reply({"currentTime": format_timestamp(self._now())})

    async def on_data_transfer(self, conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        """DataTransfer: no vendor extension is implemented, as both versions say to answer."""
        log.info(
            "cp_id=%s: DataTransfer from vendor %r ignored",
            conn.charger_id,
            str(payload.get("vendorId"))[:255],
        )
        return Reply({"status": "UnknownVendorId"})

    async def on_security_event_notification(
        self, conn: ChargerConnection, payload: Mapping[str, Any]
    ) -> Reply:
        """SecurityEventNotification (2.0.1, and 1.6 with the security extension).

        Kept (bounded) per charger for the operator's page, in the audit log, and logged.
        """
        event = SecurityEvent(
            type=string(payload, "type"),
            timestamp=timestamp(payload, "timestamp"),
            tech_info=optional_string(payload, "techInfo"),
        )
        conn.record.security_events.append(event)
        conn.record.notifications["SecurityEventNotification"] = event.type[:50]
        log.warning(
            "cp_id=%s: security event %s at %s%s",
            conn.charger_id,
            event.type,
            event.timestamp.isoformat(),
            f": {event.tech_info}" if event.tech_info else "",
        )
        reported = SecurityEventReported(
            conn.charger_id, event.type, event.timestamp, event.tech_info or ""
        )
        await self._events.publish(reported)
        return Reply({})

    def _notifications(
        self, fields: Mapping[str, str]
    ) -> dict[str, Callable[[ChargerConnection, Mapping[str, Any]], Awaitable[Reply]]]:
        """Handlers that record the last ``fields[action]`` value of each notification."""
        return {action: _notification(action, name) for action, name in fields.items()}

    def _readings(
        self, conn: ChargerConnection, meter_values: Iterable[Mapping[str, Any]]
    ) -> list[RegisterReading]:
        readings, notes = self._register_readings(
            meter_values, kwh_labelled_wh=conn.has(Quirk.ENERGY_KWH_LABELLED_WH)
        )
        for note in notes:
            log.info("cp_id=%s: %s", conn.charger_id, note)
        return list(readings)

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

    def _stop_register(
        self,
        conn: ChargerConnection,
        transaction: str,
        opened: OpenTransaction | None,
        readings: list[RegisterReading],
    ) -> int:
        # A stop without a meter reading (1.6: meterStop -1, ocpp-go #114; 2.0.1: no register
        # in the Ended event). Take the best register Strom has, never a guess: the stop's own
        # readings, the last register seen, then meterStart (no energy billed).
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
            "cp_id=%s: stop of transaction %s without a meter reading; recorded with %d Wh",
            conn.charger_id,
            transaction,
            register,
        )
        return register


def _notification(
    action: str, field_name: str
) -> Callable[[ChargerConnection, Mapping[str, Any]], Awaitable[Reply]]:
    async def on_notification(conn: ChargerConnection, payload: Mapping[str, Any]) -> Reply:
        value = str(payload.get(field_name, ""))[:50]
        conn.record.notifications[action] = value
        log.info("cp_id=%s: %s %s", conn.charger_id, action, value)
        return Reply({})

    return on_notification
