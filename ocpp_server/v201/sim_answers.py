"""How the simulated OCPP 2.0.1 charge point answers the central system's CALLs.

Each ``on_<action>`` returns the answer and the work the request asks for, which the client runs
once the answer is sent (:class:`~ocpp_server.client.Answer`): a transaction to start or end, a
reboot, a NotifyReport or NotifyDisplayMessages to send. The reports are paged: at most
:data:`REPORT_PAGE` entries a message, ``tbc`` true on every page but the last. A charger
whose device model has no DisplayMessageCtrlr (TariffCostCtrlr) answers the display messages
(CostUpdated) with a CALLERROR ``NotImplemented``, as firmware without them does; a message
in a format not among DisplayMessageCtrlr.SupportedFormats is ``NotSupportedMessageFormat``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Final

from ocpp_server.client import Answer
from ocpp_server.v201.sim_model import (
    EvseState,
    Variable,
    split_variable_name,
    variable_name,
)

if TYPE_CHECKING:
    from ocpp_server.v201.charge_point import SimulatedChargePoint201

__all__ = ["REPORT_PAGE", "SimulatorAnswers"]

REPORT_PAGE: Final = 4
"""Entries per NotifyReport / NotifyDisplayMessages message."""

_NOT_IMPLEMENTED: Final = Answer(error=("NotImplemented", "not offered by this charger"))

_TRIGGERED: Final = frozenset(
    {"BootNotification", "Heartbeat", "StatusNotification", "MeterValues", "TransactionEvent"}
)


class SimulatorAnswers:
    """The simulated 2.0.1 charge point's answers to the central system's CALLs.

    Args:
        charge_point: the charge point the answers act on.
    """

    def __init__(self, charge_point: SimulatedChargePoint201) -> None:
        self._cp = charge_point

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "RequestStartTransaction": self.on_request_start_transaction,
            "RequestStopTransaction": self.on_request_stop_transaction,
            "UnlockConnector": self.on_unlock_connector,
            "Reset": self.on_reset,
            "ChangeAvailability": self.on_change_availability,
            "TriggerMessage": self.on_trigger_message,
            "GetVariables": self.on_get_variables,
            "SetVariables": self.on_set_variables,
            "GetBaseReport": self.on_get_base_report,
            "SetDisplayMessage": self.on_set_display_message,
            "ClearDisplayMessage": self.on_clear_display_message,
            "GetDisplayMessages": self.on_get_display_messages,
            "CostUpdated": self.on_cost_updated,
            "DataTransfer": lambda _payload: Answer({"status": "UnknownVendorId"}),
        }

    def _evse(self, evse_id: object) -> EvseState | None:
        return self._cp.connectors.get(int(str(evse_id)))

    # --- transactions ----------------------------------------------------------------------

    def on_request_start_transaction(self, payload: Mapping[str, Any]) -> Answer:
        """Start on the wanted (or the first free) EVSE, now if plugged in, else on plug-in."""
        token = payload["idToken"]
        wanted = payload.get("evseId")
        candidates = [wanted] if wanted is not None else list(self._cp.connectors)
        for evse_id in candidates:
            evse = self._evse(evse_id)
            if evse is None or evse.transaction_id is not None or not evse.operative:
                continue
            if self._cp.is_waiting(evse.connector_id):
                continue
            number, remote_id = evse.connector_id, int(payload["remoteStartId"])
            tag, kind = str(token["idToken"]), str(token["type"])
            if evse.plugged:
                start = partial(self._cp.begin, number, tag, kind, "RemoteStart", remote_id)
                return Answer({"status": "Accepted"}, then=start)
            wait = partial(self._cp.wait_for_plug, number, tag, kind, remote_id)
            return Answer({"status": "Accepted"}, then=wait)
        return Answer({"status": "Rejected"})

    def on_request_stop_transaction(self, payload: Mapping[str, Any]) -> Answer:
        """End the transaction with that id, if this charger runs it."""
        for evse in self._cp.connectors.values():
            if evse.transaction_id == payload["transactionId"]:
                stop = partial(self._cp.stop_transaction, evse.connector_id, "Remote")
                return Answer({"status": "Accepted"}, then=stop)
        return Answer({"status": "Rejected"})

    def on_unlock_connector(self, payload: Mapping[str, Any]) -> Answer:
        """Unlock an idle connector; one with a transaction stays locked (2.0.1 F05)."""
        evse = self._evse(payload["evseId"])
        if evse is None or int(payload["connectorId"]) != 1:
            return Answer({"status": "UnknownConnector"})
        if evse.transaction_id is not None:
            return Answer({"status": "OngoingAuthorizedTransaction"})
        return Answer({"status": "Unlocked"})

    # --- the charger -----------------------------------------------------------------------

    def on_reset(self, payload: Mapping[str, Any]) -> Answer:
        """Immediate: end the transactions and reboot; OnIdle: reboot once none runs."""
        if payload.get("evseId") is not None:
            return Answer({"status": "Rejected"})  # an EVSE on its own does not reset
        busy = any(e.transaction_id is not None for e in self._cp.connectors.values())
        if payload["type"] == "OnIdle" and busy:
            self._cp.reset_when_idle = True
            return Answer({"status": "Scheduled"})
        return Answer({"status": "Accepted"}, then=self._cp.reset_now)

    def on_change_availability(self, payload: Mapping[str, Any]) -> Answer:
        """(In)operative now, or Scheduled after the running transaction."""
        operative = payload["operationalStatus"] == "Operative"
        target = payload.get("evse")
        ids = list(self._cp.connectors) if target is None else [int(target["id"])]
        if target is not None and int(target.get("connectorId", 1)) != 1:
            return Answer({"status": "Rejected"})
        if any(i not in self._cp.connectors for i in ids):
            return Answer({"status": "Rejected"})
        busy = [i for i in ids if self._cp.connectors[i].transaction_id is not None]
        for i in busy:
            self._cp.connectors[i].scheduled_operative = operative
        idle = [i for i in ids if i not in busy]

        async def apply() -> None:
            for i in idle:
                await self._cp.apply_availability(i, operative)

        return Answer({"status": "Scheduled" if busy else "Accepted"}, then=apply)

    def on_trigger_message(self, payload: Mapping[str, Any]) -> Answer:
        """Send the requested message after answering."""
        message = payload["requestedMessage"]
        target = payload.get("evse")
        if message not in _TRIGGERED:
            return Answer({"status": "NotImplemented"})
        if target is not None and self._evse(target["id"]) is None:
            return Answer({"status": "Rejected"})
        ids = [int(target["id"])] if target is not None else list(self._cp.connectors)
        work: Callable[[int], Awaitable[None]]
        if message == "BootNotification":
            self._cp.boot_reason = "Triggered"
            return Answer({"status": "Accepted"}, then=self._cp.boot)
        if message == "Heartbeat":
            return Answer({"status": "Accepted"}, then=lambda: self._cp.call("Heartbeat", {}))
        if message == "StatusNotification":
            work = self._cp.send_status
        elif message == "MeterValues":
            work = self._cp.send_meter_values
        else:
            ids = [i for i in ids if self._cp.connectors[i].transaction_id is not None]
            if not ids:
                return Answer({"status": "Rejected"})
            work = partial(_triggered_update, self._cp)

        async def send() -> None:
            for i in ids:
                await work(i)

        return Answer({"status": "Accepted"}, then=send)

    # --- the device model ------------------------------------------------------------------

    def _lookup(self, entry: Mapping[str, Any]) -> tuple[str, Variable | None]:
        """The attributeStatus a request entry meets, and the variable when it is known."""
        component = str(entry["component"]["name"])
        wanted = entry["variable"]
        variable = variable_name(str(wanted["name"]), wanted.get("instance"))
        if entry.get("attributeType", "Actual") != "Actual":
            return "NotSupportedAttributeType", None
        found = self._cp.device_model.variables.get((component, variable))
        if found is not None:
            return "Accepted", found
        if self._cp.device_model.knows_component(component):
            return "UnknownVariable", None
        return "UnknownComponent", None

    def on_get_variables(self, payload: Mapping[str, Any]) -> Answer:
        """Each wanted variable's value (a WriteOnly one is Rejected)."""
        results = []
        for entry in payload["getVariableData"]:
            status, variable = self._lookup(entry)
            result: dict[str, Any] = {
                "attributeStatus": status,
                "attributeType": entry.get("attributeType", "Actual"),
                "component": entry["component"],
                "variable": entry["variable"],
            }
            if variable is not None and variable.mutability == "WriteOnly":
                result["attributeStatus"] = "Rejected"
            elif variable is not None:
                result["attributeValue"] = variable.value
            results.append(result)
        return Answer({"getVariableResult": results})

    def on_set_variables(self, payload: Mapping[str, Any]) -> Answer:
        """Set each variable; ReadOnly ones and values of the wrong type are Rejected.

        SecurityCtrlr.BasicAuthPassword becomes the password of the next connection.
        """
        results = []
        for entry in payload["setVariableData"]:
            status, variable = self._lookup(entry)
            value = str(entry["attributeValue"])
            if variable is not None and (
                variable.mutability == "ReadOnly" or not variable.accepts(value)
            ):
                status = "Rejected"
            if status == "Accepted" and variable is not None:
                variable.value = value
                if (entry["component"]["name"], entry["variable"]["name"]) == (
                    "SecurityCtrlr",
                    "BasicAuthPassword",
                ):
                    self._cp.password = value
                    variable.value = ""  # write-only: never shown again
            results.append(
                {
                    "attributeStatus": status,
                    "attributeType": entry.get("attributeType", "Actual"),
                    "component": entry["component"],
                    "variable": entry["variable"],
                }
            )
        return Answer({"setVariableResult": results}, then=self._cp.notify)

    def on_get_base_report(self, payload: Mapping[str, Any]) -> Answer:
        """Accepted, then NotifyReport pages of the device model.

        FullInventory reports every variable, ConfigurationInventory the writable ones;
        SummaryInventory is NotSupported.
        """
        base = payload["reportBase"]
        if base == "SummaryInventory":
            return Answer({"status": "NotSupported"})
        entries = [
            _report_entry(component, name, variable)
            for (component, name), variable in self._cp.device_model.variables.items()
            if base == "FullInventory" or variable.mutability != "ReadOnly"
        ]
        request_id = int(payload["requestId"])

        async def report() -> None:
            await self._paged("NotifyReport", request_id, "reportData", entries)

        return Answer({"status": "Accepted"}, then=report)

    async def _paged(
        self, action: str, request_id: int, key: str, entries: list[dict[str, Any]]
    ) -> None:
        pages = [entries[i : i + REPORT_PAGE] for i in range(0, len(entries), REPORT_PAGE)]
        for seq_no, page in enumerate(pages or [[]]):
            message: dict[str, Any] = {"requestId": request_id, "tbc": seq_no < len(pages) - 1}
            if page:
                message[key] = page
            if action == "NotifyReport":
                message.update(generatedAt=self._cp.timestamp(), seqNo=seq_no)
            await self._cp.call(action, message)

    # --- display messages and costs --------------------------------------------------------

    def _offers(self, component: str) -> bool:
        return self._cp.device_model.knows_component(component)

    def on_set_display_message(self, payload: Mapping[str, Any]) -> Answer:
        """Keep the message (replacing the one with its id).

        A message for a transaction this charger does not run is UnknownTransaction.
        """
        if not self._offers("DisplayMessageCtrlr"):
            return _NOT_IMPLEMENTED
        message = dict(payload["message"])
        transaction = message.get("transactionId")
        running = {e.transaction_id for e in self._cp.connectors.values()}
        if transaction is not None and transaction not in running:
            return Answer({"status": "UnknownTransaction"})
        formats = self._cp.device_model.get("DisplayMessageCtrlr", "SupportedFormats")
        if message["message"]["format"] not in formats.split(","):
            return Answer({"status": "NotSupportedMessageFormat"})
        self._cp.display_messages[int(message["id"])] = message
        return Answer({"status": "Accepted"}, then=self._cp.notify)

    def on_clear_display_message(self, payload: Mapping[str, Any]) -> Answer:
        """Remove the message with that id."""
        if not self._offers("DisplayMessageCtrlr"):
            return _NOT_IMPLEMENTED
        if self._cp.display_messages.pop(int(payload["id"]), None) is None:
            return Answer({"status": "Unknown"})
        return Answer({"status": "Accepted"}, then=self._cp.notify)

    def on_get_display_messages(self, payload: Mapping[str, Any]) -> Answer:
        """Accepted, then NotifyDisplayMessages with the matching messages (Unknown: none)."""
        if not self._offers("DisplayMessageCtrlr"):
            return _NOT_IMPLEMENTED
        ids = {int(i) for i in payload.get("id", [])}
        matching = [
            m
            for number, m in sorted(self._cp.display_messages.items())
            if (not ids or number in ids)
            and payload.get("priority") in (None, m["priority"])
            and payload.get("state") in (None, m.get("state"))
        ]
        if not matching:
            return Answer({"status": "Unknown"})
        request_id = int(payload["requestId"])

        async def notify() -> None:
            await self._paged("NotifyDisplayMessages", request_id, "messageInfo", matching)

        return Answer({"status": "Accepted"}, then=notify)

    def on_cost_updated(self, payload: Mapping[str, Any]) -> Answer:
        """Keep the running cost the central system told for a transaction."""
        if not self._offers("TariffCostCtrlr"):
            return _NOT_IMPLEMENTED
        self._cp.costs[str(payload["transactionId"])] = Decimal(str(payload["totalCost"]))
        return Answer({}, then=self._cp.notify)


def _report_entry(component: str, key_name: str, variable: Variable) -> dict[str, Any]:
    attribute: dict[str, Any] = {"type": "Actual", "mutability": variable.mutability}
    if variable.mutability != "WriteOnly":
        attribute["value"] = variable.value
    characteristics: dict[str, Any] = {"dataType": variable.data_type, "supportsMonitoring": False}
    if variable.values_list:
        characteristics["valuesList"] = ",".join(variable.values_list)
    name, instance = split_variable_name(key_name)
    reported: dict[str, Any] = {"name": name}
    if instance is not None:
        reported["instance"] = instance
    return {
        "component": {"name": component},
        "variable": reported,
        "variableAttribute": [attribute],
        "variableCharacteristics": characteristics,
    }


async def _triggered_update(charge_point: SimulatedChargePoint201, evse_id: int) -> None:
    with contextlib.suppress(ValueError):  # it ended in the meantime
        await charge_point.send_update(evse_id, "Trigger", "Trigger")
