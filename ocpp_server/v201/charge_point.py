"""The simulated OCPP 2.0.1 charge point: its messages, transactions and device model.

See :mod:`ocpp_server.simulator` for how to run it. Its life (connecting with the
``ocpp2.0.1`` subprotocol and Basic auth, booting, heartbeats, reconnecting, the outbox of
transaction messages, the meter) is the version-neutral
:class:`~ocpp_server.sim_base.SimulatorBase`'s; everything here is OCPP 2.0.1:

* BootNotification with a reason (``PowerUp``; ``RemoteReset`` after a Reset), then a
  StatusNotification per EVSE (``evseId`` N, ``connectorId`` 1): Available, Occupied (a
  vehicle plugged in), Unavailable.
* Transactions are the charger's own: a ``transactionId`` (a uuid4 string) and a ``seqNo``
  from 0, told in TransactionEvent Started / Updated / Ended with a ``triggerReason``, the
  ``transactionInfo.chargingState``, the ``idToken`` (Started) and the ``remoteStartId``
  (Started, when RequestStartTransaction asked for it), and the energy register in Wh inside
  the events (``Transaction.Begin``, ``Sample.Periodic`` every TxUpdatedInterval,
  ``Transaction.End``). A transaction starts when a vehicle is plugged in and the driver is
  authorized (TxStartPoint ``PowerPathClosed``): the trigger is whichever came last.
* A TransactionEvent that could not be delivered is queued and sent after reconnecting with
  ``offline: true``, its transactionId and seqNo unchanged. After a power loss a charger that
  persisted its transactions ends them (Ended, stoppedReason ``PowerLoss``, sent after the
  boot); the forgetful kind never mentions them again.
* The device model (:class:`~ocpp_server.v201.sim_model.DeviceModel`), the display messages the
  central system set (:attr:`SimulatedChargePoint201.screen` is what the screen shows) and the
  last cost the central system told per transaction (:attr:`SimulatedChargePoint201.costs`:
  a CostUpdated, or the ``totalCost`` of its answer to an Ended, noted in
  :attr:`SimulatedChargePoint201.ended_costs`).

How it answers the central system's CALLs is in :mod:`ocpp_server.v201.sim_answers`; its
reservations (ReserveNow, CancelReservation) are in :mod:`ocpp_server.v201.sim_reservations`.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final

from ocpp_server.client import CallFailed
from ocpp_server.ocppj import Call
from ocpp_server.sim_base import SimulatorBase
from ocpp_server.sim_model import SimulatorOptions
from ocpp_server.v201 import SUBPROTOCOL, schemas
from ocpp_server.v201.sim_answers import SimulatorAnswers
from ocpp_server.v201.sim_model import DeviceModel, EvseState
from ocpp_server.v201.sim_reservations import SimulatedReservations201
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = ["SimulatedChargePoint201"]

# stoppedReason -> the triggerReason of the Ended event it comes with.
TRIGGER_OF_STOP: Final = {
    "Local": "StopAuthorized",
    "Remote": "RemoteStop",
    "EVDisconnected": "EVCommunicationLost",
    "PowerLoss": "AbnormalCondition",
    "ImmediateReset": "ResetCommand",
    "DeAuthorized": "Deauthorized",
    "Timeout": "EVConnectTimeout",
}

_PRIORITY_ORDER: Final = {"AlwaysFront": 0, "InFront": 1, "NormalCycle": 2}


class SimulatedChargePoint201(SimulatorBase[EvseState]):
    """A simulated OCPP 2.0.1 charge point (see the module docstring).

    Args:
        options: what to simulate and where to connect (``connectors``: the EVSEs, one
            connector each).
        clock: drives the meter and the intervals (monotonic) and the timestamps it sends.
        observe: told about every CALL from the central system as it arrives (before it is
            answered), for benchmarks and tests; the CALLs are also kept in
            :attr:`received_calls`.
    """

    SUBPROTOCOL = SUBPROTOCOL
    TRANSACTION_ACTIONS = frozenset({"TransactionEvent"})

    def __init__(
        self,
        options: SimulatorOptions,
        *,
        clock: Clock = SYSTEM_CLOCK,
        observe: Callable[[Call], None] | None = None,
    ) -> None:
        self.device_model = DeviceModel.of_charger(
            options.charger_id,
            options.vendor,
            options.model,
            options.connectors,
            screen=options.screen,
            qr_codes=options.qr_codes,
            running_cost=options.running_cost,
        )
        self.display_messages: dict[int, dict[str, Any]] = {}
        self.costs: dict[str, Decimal] = {}
        self.ended_costs: set[str] = set()  # transactions whose Ended answer told their cost
        self.boot_reason = "PowerUp"
        self.reset_when_idle = False
        super().__init__(options, schemas=schemas, clock=clock, observe=observe)
        answers = SimulatorAnswers(self)
        self.reservations = SimulatedReservations201(
            self, clock.now, answers.on_request_start_transaction
        )
        self._answers = answers.table() | self.reservations.table()

    # --- observation -----------------------------------------------------------------------

    @property
    def screen(self) -> list[str]:
        """What the screen shows: the display messages' contents, the most urgent first."""
        shown = sorted(
            self.display_messages.values(),
            key=lambda m: (_PRIORITY_ORDER.get(str(m["priority"]), 3), int(m["id"])),
        )
        return [str(m["message"]["content"]) for m in shown]

    # --- the version's part of the life ----------------------------------------------------

    def _new_connector(self, number: int) -> EvseState:
        plugged = number in self.options.plugged
        return EvseState(
            number,
            status="Occupied" if plugged else "Available",
            plugged=plugged,
            meter_mwh=self.options.meter_start_wh * 1000,
        )

    def _boot_request(self) -> dict[str, Any]:
        return {
            "reason": self.boot_reason,
            "chargingStation": {
                "model": self.options.model,
                "vendorName": self.options.vendor,
                "serialNumber": self.options.charger_id[:25],
                "firmwareVersion": "strom-simulator",
            },
        }

    async def boot(self) -> None:
        """Send BootNotification (with the reason of this boot) until it is accepted."""
        await super().boot()
        self.boot_reason = "PowerUp"

    @property
    def heartbeat_interval_s(self) -> float:
        """OCPPCommCtrlr.HeartbeatInterval."""
        return int(self.device_model.get("OCPPCommCtrlr", "HeartbeatInterval"))

    def _keep_heartbeat_interval(self, seconds: int) -> None:
        self.device_model.set("OCPPCommCtrlr", "HeartbeatInterval", str(seconds))

    @property
    def sample_interval_s(self) -> float:
        """SampledDataCtrlr.TxUpdatedInterval."""
        return float(self.device_model.get("SampledDataCtrlr", "TxUpdatedInterval"))

    async def send_statuses(self) -> None:
        """A StatusNotification per EVSE."""
        for evse_id in self.connectors:
            await self.send_status(evse_id)

    async def send_periodic_sample(self, connector_id: int) -> None:
        """TransactionEvent Updated (MeterValuePeriodic) with the register."""
        await self.send_update(connector_id, "MeterValuePeriodic", "Sample.Periodic")

    def _lose_power(self, connector: EvseState) -> None:
        connector.waiting_tag = None
        connector.waiting_remote_start_id = None
        if connector.transaction_id is not None and self.options.persist_transactions:
            # It ends with the power, and the charger tells so once it is back.
            self._end(connector, "PowerLoss", queue=True)
        else:
            self._forget(connector)
        idle = "Occupied" if connector.plugged else "Available"
        connector.status = idle if connector.operative else "Unavailable"

    def _queued(self, payload: dict[str, Any]) -> dict[str, Any]:
        if payload.get("offline"):
            return payload
        return {**payload, "offline": True}

    async def _delivered(
        self, action: str, payload: Mapping[str, Any], connector_id: int | None, answer: Any
    ) -> None:
        # A transaction the central system does not authorize ends at once.
        if action != "TransactionEvent" or connector_id is None:
            return
        if payload["eventType"] == "Ended" and "totalCost" in answer:
            transaction = str(payload["transactionInfo"]["transactionId"])
            self.costs[transaction] = Decimal(str(answer["totalCost"]))
            self.ended_costs.add(transaction)
            await self.notify()
        status = answer.get("idTokenInfo", {}).get("status", "Accepted")
        evse = self.connectors[connector_id]
        ours = evse.transaction_id == payload["transactionInfo"]["transactionId"]
        if payload["eventType"] == "Started" and status != "Accepted" and ours:
            await self.stop_transaction(connector_id, "DeAuthorized")

    # --- messages --------------------------------------------------------------------------

    def _sampled(self, evse: EvseState, context: str, measurands_of: str) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = [
            {
                "value": evse.meter_wh,
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unitOfMeasure": {"unit": "Wh"},
            }
        ]
        measurands = self.device_model.get("SampledDataCtrlr", measurands_of).split(",")
        if "Power.Active.Import" in measurands:
            watts = int(self.options.power_kw * 1000) if evse.charging else 0
            values.append(
                {
                    "value": watts,
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "unitOfMeasure": {"unit": "W"},
                }
            )
        return values

    def _meter_value(self, evse: EvseState, context: str, measurands_of: str) -> dict[str, Any]:
        return {
            "timestamp": self._now(),
            "sampledValue": self._sampled(evse, context, measurands_of),
        }

    def _event(
        self,
        evse: EvseState,
        event_type: str,
        trigger: str,
        context: str | None,
        **info: Any,
    ) -> dict[str, Any]:
        """The next TransactionEvent of the EVSE's transaction (its seqNo taken)."""
        payload: dict[str, Any] = {
            "eventType": event_type,
            "timestamp": self._now(),
            "triggerReason": trigger,
            "seqNo": evse.seq_no,
            "transactionInfo": {
                "transactionId": str(evse.transaction_id),
                "chargingState": evse.charging_state,
                **info,
            },
            "evse": {"id": evse.connector_id, "connectorId": 1},
        }
        evse.seq_no += 1
        if context is not None:
            measurands = "TxEndedMeasurands" if event_type == "Ended" else "TxUpdatedMeasurands"
            payload["meterValue"] = [self._meter_value(evse, context, measurands)]
        return payload

    async def send_status(self, evse_id: int) -> None:
        """Send a StatusNotification for one EVSE (its connector 1)."""
        await self.call(
            "StatusNotification",
            {
                "timestamp": self._now(),
                "connectorStatus": self.connectors[evse_id].status,
                "evseId": evse_id,
                "connectorId": 1,
            },
        )

    async def set_status(self, evse_id: int, status: str) -> None:
        """Change an EVSE's status and report it (a lost connection is tolerated)."""
        self.connectors[evse_id].status = status
        await self.notify()
        with contextlib.suppress(CallFailed):
            await self.send_status(evse_id)

    async def send_meter_values(self, evse_id: int, context: str = "Trigger") -> None:
        """Send the EVSE's register in a MeterValues message (outside any transaction event)."""
        self._advance()
        evse = self.connectors[evse_id]
        meter_value = self._meter_value(evse, context, "TxUpdatedMeasurands")
        await self.call("MeterValues", {"evseId": evse_id, "meterValue": [meter_value]})

    async def send_update(self, evse_id: int, trigger: str, context: str | None = None) -> None:
        """Send TransactionEvent Updated for the EVSE's transaction."""
        self._advance()
        evse = self.connectors[evse_id]
        if evse.transaction_id is None:
            raise ValueError(f"EVSE {evse_id} has no transaction")
        await self._deliver(
            "TransactionEvent", self._event(evse, "Updated", trigger, context), evse_id
        )

    # --- transactions ----------------------------------------------------------------------

    async def begin(
        self,
        evse_id: int,
        id_token: str,
        token_type: str,
        trigger: str,
        remote_start_id: int | None = None,
    ) -> dict[str, Any]:
        """Start a transaction on a plugged-in EVSE (TransactionEvent Started).

        Returns:
            the central system's answer (``idTokenInfo`` says whether it authorizes).

        The reserved idToken of a reserved EVSE uses the reservation up (``reservationId``).

        Raises:
            ConnectorReserved: the EVSE is reserved for another idToken (nothing is sent).
            CallFailed: it could not be delivered now (``Disconnected``: it is queued and the
                transaction goes on offline).
        """
        reservation_id = self.reservations.claim(evse_id, id_token)
        self._advance()
        evse = self.connectors[evse_id]
        evse.transaction_id = str(uuid.uuid4())
        evse.seq_no = 0
        evse.id_tag, evse.token_type = id_token, token_type
        evse.remote_start_id = remote_start_id
        evse.charging_state = "Charging"
        await self.notify()
        info = {} if remote_start_id is None else {"remoteStartId": remote_start_id}
        payload = self._event(evse, "Started", trigger, "Transaction.Begin", **info)
        payload["idToken"] = {"idToken": id_token, "type": token_type}
        if reservation_id is not None:
            payload["reservationId"] = reservation_id
        return await self._deliver("TransactionEvent", payload, evse_id)

    async def start_transaction(self, connector_id: int, id_tag: str) -> dict[str, Any]:
        """A driver presents a card at a plugged-in EVSE (triggerReason Authorized)."""
        return await self.begin(connector_id, id_tag, "ISO14443", "Authorized")

    def _end(self, evse: EvseState, reason: str, *, queue: bool = False) -> dict[str, Any]:
        evse.charging_state = "EVConnected" if evse.plugged else "Idle"
        trigger = TRIGGER_OF_STOP.get(reason, "AbnormalCondition")
        payload = self._event(evse, "Ended", trigger, "Transaction.End", stoppedReason=reason)
        if queue:
            self._keep_for_later("TransactionEvent", payload, evse.connector_id)
        transaction = evse.transaction_id
        self._forget(evse)
        for number, message in list(self.display_messages.items()):
            if message.get("transactionId") == transaction:  # shown for its transaction only
                del self.display_messages[number]
        return payload

    def _forget(self, evse: EvseState) -> None:
        evse.transaction_id = None
        evse.id_tag = None
        evse.remote_start_id = None
        evse.charging_state = "EVConnected" if evse.plugged else "Idle"

    async def stop_transaction(self, connector_id: int, reason: str = "Local") -> dict[str, Any]:
        """End the EVSE's transaction (TransactionEvent Ended with ``reason``).

        Raises:
            ValueError: the EVSE runs no transaction.
            CallFailed: it could not be delivered now (``Disconnected``: it is queued).
        """
        self._advance()
        evse = self.connectors[connector_id]
        if evse.transaction_id is None:
            raise ValueError(f"EVSE {connector_id} has no transaction")
        payload = self._end(evse, reason)
        await self.notify()
        try:
            return await self._deliver("TransactionEvent", payload, connector_id)
        finally:
            await self._settle(evse)

    async def set_charging_state(self, evse_id: int, state: str) -> None:
        """The vehicle changes what it draws (SuspendedEV, Charging): Updated is sent."""
        self._advance()
        evse = self.connectors[evse_id]
        evse.charging_state = state
        await self.notify()
        await self.send_update(evse_id, "ChargingStateChanged")

    async def _settle(self, evse: EvseState) -> None:
        """After a transaction: a scheduled availability change, a Reset waiting for idle."""
        if evse.scheduled_operative is not None:
            await self.apply_availability(evse.connector_id, evse.scheduled_operative)
        if self.reset_when_idle and all(e.transaction_id is None for e in self.connectors.values()):
            await self.reset_now()

    async def reset_now(self) -> None:
        """End every transaction (ImmediateReset), then reboot (BootNotification RemoteReset)."""
        self.reset_when_idle = False
        for evse in self.connectors.values():
            if evse.transaction_id is not None:
                with contextlib.suppress(CallFailed):
                    await self.stop_transaction(evse.connector_id, "ImmediateReset")
        self.boot_reason = "RemoteReset"
        self.reboot()

    # --- what a driver does at the charger -------------------------------------------------

    async def plug(self, connector_id: int = 1) -> None:
        """Plug a vehicle in; a remote start waiting for it begins the transaction."""
        evse = self.connectors[connector_id]
        evse.plugged = True
        if evse.transaction_id is None and evse.operative:
            await self.set_status(connector_id, "Occupied")
        tag, remote_start_id = evse.waiting_tag, evse.waiting_remote_start_id
        waited = self.is_waiting(connector_id)
        evse.waiting_tag = evse.waiting_remote_start_id = None
        if waited and tag is not None:
            await self.begin(connector_id, tag, evse.token_type, "CablePluggedIn", remote_start_id)

    async def unplug(self, connector_id: int = 1) -> None:
        """Unplug the vehicle; a transaction ends with stoppedReason EVDisconnected."""
        evse = self.connectors[connector_id]
        evse.plugged = False
        if evse.transaction_id is not None:
            with contextlib.suppress(CallFailed):
                await self.stop_transaction(connector_id, "EVDisconnected")
        await self.set_status(connector_id, "Available" if evse.operative else "Unavailable")

    async def wait_for_plug(
        self, evse_id: int, id_token: str, token_type: str, remote_start_id: int
    ) -> None:
        """Let a remote start wait for a vehicle (TxCtrlr.EVConnectionTimeOut seconds at most).

        The transaction begins when the vehicle is plugged in before the time is up.
        """
        evse = self.connectors[evse_id]
        timeout_s = int(self.device_model.get("TxCtrlr", "EVConnectionTimeOut"))
        evse.waiting_tag, evse.token_type = id_token, token_type
        evse.waiting_remote_start_id = remote_start_id
        evse.waiting_deadline = self._monotonic() + timeout_s
        await self.notify()

    def is_waiting(self, evse_id: int) -> bool:
        """Whether a remote start waits for a vehicle to be plugged into the EVSE."""
        evse = self.connectors[evse_id]
        return evse.waiting_tag is not None and self._monotonic() <= evse.waiting_deadline

    async def apply_availability(self, connector_id: int, operative: bool) -> None:
        """Make an EVSE (in)operative and report its status."""
        evse = self.connectors[connector_id]
        evse.operative = operative
        evse.scheduled_operative = None
        if evse.transaction_id is None:
            idle = "Occupied" if evse.plugged else "Available"
            await self.set_status(connector_id, idle if operative else "Unavailable")
