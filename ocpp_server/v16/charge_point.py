"""The simulated OCPP 1.6 charge point: its messages, meter values and transactions.

See :mod:`ocpp_server.simulator` for what it simulates and how to run it. Its life (connecting,
booting, heartbeats, reconnecting, the outbox of transaction messages across a lost connection,
the meter) is the version-neutral :class:`~ocpp_server.sim_base.SimulatorBase`'s; everything
here is OCPP 1.6: the messages it sends and what a driver does at the charger. How it answers
the central system's CALLs (``on_<action>``) is in :mod:`ocpp_server.v16.sim_answers`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Final

from ocpp_server.client import CallFailed
from ocpp_server.ocppj import Call
from ocpp_server.sim_base import SimulatorBase
from ocpp_server.sim_model import ConnectorState, SimulatorOptions
from ocpp_server.v16 import schemas
from ocpp_server.v16.sim_answers import SimulatorAnswers
from ocpp_server.v16.sim_certificates import SimulatedCertificates
from ocpp_server.v16.sim_firmware import SimulatedFirmware
from ocpp_server.v16.sim_local_list import LOCAL_LIST_CONFIGURATION, SimulatedLocalList
from ocpp_server.v16.sim_reservations import RESERVATION_CONFIGURATION, SimulatedReservations
from ocpp_server.v16.sim_smart import SimulatedProfiles
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = ["SimulatedChargePoint"]

SUBPROTOCOL: Final = "ocpp1.6"


class SimulatedChargePoint(SimulatorBase[ConnectorState]):
    """A simulated OCPP 1.6 charge point (see :mod:`ocpp_server.simulator`).

    Args:
        options: what to simulate and where to connect.
        clock: drives the meter and the intervals (monotonic) and the timestamps it sends.
        observe: told about every CALL from the central system as it arrives (before it is
            answered), for benchmarks and tests; the CALLs are also kept in
            :attr:`received_calls`.
    """

    SUBPROTOCOL = SUBPROTOCOL
    TRANSACTION_ACTIONS = frozenset({"StartTransaction", "StopTransaction"})

    def __init__(
        self,
        options: SimulatorOptions,
        *,
        clock: Clock = SYSTEM_CLOCK,
        observe: Callable[[Call], None] | None = None,
    ) -> None:
        self.configuration: dict[str, str] = {
            "HeartbeatInterval": "300",
            "MeterValueSampleInterval": "60",
            "MeterValuesSampledData": "Energy.Active.Import.Register",
            "StopTxnSampledData": "",
            "NumberOfConnectors": str(options.connectors),
            "SupportedFeatureProfiles": (
                "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger,"
                "Reservation,SmartCharging"
            ),
            "AuthorizeRemoteTxRequests": "false",
            **LOCAL_LIST_CONFIGURATION,
            **RESERVATION_CONFIGURATION,
        }
        super().__init__(options, schemas=schemas, clock=clock, observe=observe)
        answers = SimulatorAnswers(self)
        self.certificates = SimulatedCertificates(self, answers.on_trigger_message)
        self.charging_profiles = SimulatedProfiles(
            self.connectors, int(options.power_kw * 1000), self.timestamp, clock.now
        )
        self._answers = answers.table() | self.certificates.table() | self.charging_profiles.table()
        self._answers.update(SimulatedFirmware(self, options.charger_id).table())
        self.local_list = SimulatedLocalList(self.configuration)
        self._answers.update(self.local_list.table())
        self.reservations = SimulatedReservations(
            self, clock.now, answers.on_remote_start_transaction
        )
        self._answers.update(self.reservations.table())

    # --- the version's part of the life ----------------------------------------------------

    def _new_connector(self, number: int) -> ConnectorState:
        plugged = number in self.options.plugged
        return ConnectorState(
            number,
            status="Preparing" if plugged else "Available",
            plugged=plugged,
            meter_mwh=self.options.meter_start_wh * 1000,
        )

    def _boot_request(self) -> dict[str, Any]:
        return {
            "chargePointVendor": self.options.vendor,
            "chargePointModel": self.options.model,
            "chargePointSerialNumber": self.options.charger_id[:25],
            "firmwareVersion": "strom-simulator",
        }

    @property
    def heartbeat_interval_s(self) -> float:
        """HeartbeatInterval, as configured."""
        return int(self.configuration["HeartbeatInterval"])

    def _keep_heartbeat_interval(self, seconds: int) -> None:
        self.configuration["HeartbeatInterval"] = str(seconds)

    @property
    def sample_interval_s(self) -> float:
        """MeterValueSampleInterval, as configured."""
        return float(self.configuration["MeterValueSampleInterval"])

    async def send_statuses(self) -> None:
        """Report the charger (connector 0) and every connector."""
        for connector in [0, *self.connectors]:
            await self.send_status(connector)

    async def send_periodic_sample(self, connector_id: int) -> None:
        """MeterValues with the transaction's register."""
        await self.send_meter_values(connector_id)

    def _lose_power(self, connector: ConnectorState) -> None:
        # Firmware that keeps its transactions goes on with them after the boot; the
        # forgetful kind comes back Available (Preparing with a vehicle plugged in) and never
        # sends a StopTransaction for what it was charging.
        if self.options.persist_transactions:
            return
        connector.transaction_id = None
        connector.id_tag = None
        connector.waiting_tag = None
        idle = "Preparing" if connector.plugged else "Available"
        connector.status = idle if connector.operative else "Unavailable"

    async def _delivered(
        self, action: str, payload: Mapping[str, Any], connector_id: int | None, answer: Any
    ) -> None:
        if action == "StartTransaction" and connector_id is not None:
            await self._started(connector_id, answer)

    async def _started(self, connector_id: int, answer: Mapping[str, Any]) -> None:
        connector = self.connectors[connector_id]
        if answer["idTagInfo"]["status"] == "Accepted":
            self._advance()
            connector.transaction_id = int(answer["transactionId"])
            await self.set_status(connector_id, "Charging")
        else:
            connector.id_tag = None
            await self.set_status(connector_id, "Preparing" if connector.plugged else "Available")

    # --- CALLs to the central system -------------------------------------------------------

    async def send_status(self, connector_id: int) -> None:
        """Send a StatusNotification for one connector (0: the charger as a whole)."""
        status = (
            self.connectors[connector_id].status
            if connector_id
            else ("Available" if self.connectors[1].operative else "Unavailable")
        )
        await self.call(
            "StatusNotification",
            {
                "connectorId": connector_id,
                "errorCode": "NoError",
                "status": status,
                "timestamp": self._now(),
            },
        )

    async def set_status(self, connector_id: int, status: str) -> None:
        """Change a connector's status and report it (a lost connection is tolerated)."""
        self.connectors[connector_id].status = status
        await self.notify()
        with contextlib.suppress(CallFailed):
            await self.send_status(connector_id)

    def power_w(self, connector_id: int) -> int:
        """The power a charging connector draws: the least its charging profiles allow."""
        return self.charging_profiles.limit_w(connector_id)

    def _sampled(self, connector: ConnectorState, context: str) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = [
            {
                "value": str(connector.meter_wh),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            }
        ]
        measurands = self.configuration["MeterValuesSampledData"].split(",")
        if "Power.Active.Import" in measurands:
            charging = connector.status == "Charging"
            watts = self.power_w(connector.connector_id) if charging else 0
            values.append(
                {
                    "value": str(watts),
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "unit": "W",
                }
            )
        return values

    async def send_meter_values(self, connector_id: int, context: str = "Sample.Periodic") -> None:
        """Send the connector's register now (with its transaction id, if charging)."""
        self._advance()
        connector = self.connectors[connector_id]
        payload: dict[str, Any] = {
            "connectorId": connector_id,
            "meterValue": [
                {"timestamp": self._now(), "sampledValue": self._sampled(connector, context)}
            ],
        }
        if connector.transaction_id is not None:
            payload["transactionId"] = connector.transaction_id
        await self.call("MeterValues", payload)

    # --- what a driver does at the charger -------------------------------------------------

    async def plug(self, connector_id: int = 1) -> None:
        """Plug a vehicle in; a remote start waiting for it begins the transaction."""
        connector = self.connectors[connector_id]
        connector.plugged = True
        if connector.waiting_tag is not None:
            tag, connector.waiting_tag = connector.waiting_tag, None
            await self.start_transaction(connector_id, tag)
        elif connector.transaction_id is None:
            await self.set_status(connector_id, "Preparing")

    async def unplug(self, connector_id: int = 1) -> None:
        """Unplug the vehicle; an ongoing transaction stops with reason EVDisconnected."""
        connector = self.connectors[connector_id]
        connector.plugged = False
        if connector.transaction_id is not None:
            await self.stop_transaction(connector_id, "EVDisconnected")
        await self.set_status(connector_id, "Available" if connector.operative else "Unavailable")

    async def start_transaction(self, connector_id: int, id_tag: str) -> dict[str, Any]:
        """Start a transaction (StartTransaction.req); returns the central system's answer.

        The reserved idTag of a reserved connector uses the reservation up (``reservationId``).

        Raises:
            ConnectorReserved: the connector is reserved for another idTag (nothing is sent).
        """
        reservation_id = self.reservations.claim(connector_id, id_tag)
        connector = self.connectors[connector_id]
        connector.id_tag = id_tag
        payload: dict[str, Any] = {
            "connectorId": connector_id,
            "idTag": id_tag,
            "meterStart": connector.meter_wh,
            "timestamp": self._now(),
        }
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        return await self._deliver("StartTransaction", payload, connector_id)

    async def stop_transaction(self, connector_id: int, reason: str = "Local") -> dict[str, Any]:
        """Stop the connector's transaction (StopTransaction.req with transactionData)."""
        self._advance()
        connector = self.connectors[connector_id]
        if connector.transaction_id is None:
            raise ValueError(f"connector {connector_id} has no transaction")
        payload: dict[str, Any] = {
            "transactionId": connector.transaction_id,
            "meterStop": connector.meter_wh,
            "timestamp": self._now(),
            "reason": reason,
            "transactionData": [
                {
                    "timestamp": self._now(),
                    "sampledValue": self._sampled(connector, "Transaction.End"),
                }
            ],
        }
        if connector.id_tag is not None:
            payload["idTag"] = connector.id_tag
        connector.transaction_id = None
        connector.id_tag = None
        await self.notify()
        try:
            answer = await self._deliver("StopTransaction", payload, connector_id)
        finally:
            status = "Finishing" if connector.plugged else "Available"
            await self.set_status(connector_id, status)
            if connector.scheduled_operative is not None:
                await self.apply_availability(connector_id, connector.scheduled_operative)
        return answer

    async def apply_availability(self, connector_id: int, operative: bool) -> None:
        """Make a connector (in)operative and report its status."""
        connector = self.connectors[connector_id]
        connector.operative = operative
        connector.scheduled_operative = None
        if connector.transaction_id is None:
            status = (
                ("Preparing" if connector.plugged else "Available") if operative else "Unavailable"
            )
            await self.set_status(connector_id, status)
