"""How the simulated charge point answers the central system's CALLs.

Each answer function returns the CALLRESULT payload and, optionally, the work the request asks
for (start a transaction, send a StatusNotification, reboot); the charger runs that work after
the answer is sent, in its connection's TaskGroup.
"""

from __future__ import annotations

import binascii
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from ocpp_server._simulated_charger import SimulatedChargePoint

__all__ = ["READONLY_KEYS", "Answer", "CallFailed", "CentralSystemRequests", "ConnectorState"]

READONLY_KEYS: Final = frozenset({"NumberOfConnectors", "SupportedFeatureProfiles"})

# A CALL's answer payload, and the work it asks for once the answer is sent.
Answer = tuple[dict[str, Any], Callable[[], Awaitable[Any]] | None]


class CallFailed(Exception):
    """A CALL from the simulator got a CALLERROR, no answer, or the connection dropped."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


@dataclass(slots=True)
class ConnectorState:
    """One connector of the simulated charger."""

    connector_id: int
    status: str = "Available"
    plugged: bool = False
    operative: bool = True
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_mwh: int = 0  # milliwatt-hours, so slow meters still advance
    waiting_tag: str | None = None  # remote start accepted, waiting for the plug
    scheduled_operative: bool | None = None

    @property
    def meter_wh(self) -> int:
        """The register in whole Wh."""
        return self.meter_mwh // 1000


class CentralSystemRequests:
    """The answers of one simulated charge point to the central system's requests."""

    def __init__(self, charge_point: SimulatedChargePoint) -> None:
        self._cp = charge_point

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer function."""
        return {
            "RemoteStartTransaction": self.remote_start,
            "RemoteStopTransaction": self.remote_stop,
            "UnlockConnector": self.unlock,
            "Reset": self.reset,
            "ChangeAvailability": self.change_availability,
            "ChangeConfiguration": self.change_configuration,
            "GetConfiguration": self.get_configuration,
            "ClearCache": lambda _payload: ({"status": "Accepted"}, None),
            "DataTransfer": self.data_transfer,
            "TriggerMessage": self.trigger,
        }

    def remote_start(self, payload: Mapping[str, Any]) -> Answer:
        tag = str(payload["idTag"])
        wanted = payload.get("connectorId")
        candidates = [wanted] if wanted is not None else list(self._cp.connectors)
        for connector_id in candidates:
            connector = self._cp.connectors.get(int(connector_id))
            if connector is None or connector.transaction_id is not None:
                continue
            if not connector.operative or connector.waiting_tag is not None:
                continue
            if connector.plugged:
                return {
                    "status": "Accepted"
                }, lambda c=connector.connector_id: self._cp.start_transaction(c, tag)
            connector.waiting_tag = tag
            return {"status": "Accepted"}, lambda c=connector.connector_id: self._cp.set_status(
                c, "Preparing"
            )
        return {"status": "Rejected"}, None

    def remote_stop(self, payload: Mapping[str, Any]) -> Answer:
        for connector in self._cp.connectors.values():
            if connector.transaction_id == payload["transactionId"]:
                return {
                    "status": "Accepted"
                }, lambda c=connector.connector_id: self._cp.stop_transaction(c, "Remote")
        return {"status": "Rejected"}, None

    def unlock(self, payload: Mapping[str, Any]) -> Answer:
        connector = self._cp.connectors.get(int(payload["connectorId"]))
        if connector is None:
            return {"status": "UnlockFailed"}, None
        if connector.transaction_id is not None:
            return {
                "status": "Unlocked"
            }, lambda c=connector.connector_id: self._cp.stop_transaction(c, "UnlockCommand")
        return {"status": "Unlocked"}, None

    def reset(self, payload: Mapping[str, Any]) -> Answer:
        reason = "HardReset" if payload["type"] == "Hard" else "SoftReset"

        async def reboot() -> None:
            for connector in self._cp.connectors.values():
                if connector.transaction_id is not None:
                    with contextlib.suppress(CallFailed):
                        await self._cp.stop_transaction(connector.connector_id, reason)
            self._cp.drop_connection()

        return {"status": "Accepted"}, reboot

    def change_availability(self, payload: Mapping[str, Any]) -> Answer:
        operative = payload["type"] == "Operative"
        target = int(payload["connectorId"])
        ids = list(self._cp.connectors) if target == 0 else [target]
        if any(i not in self._cp.connectors for i in ids):
            return {"status": "Rejected"}, None
        busy = [i for i in ids if self._cp.connectors[i].transaction_id is not None]
        for i in busy:
            self._cp.connectors[i].scheduled_operative = operative
        idle = [i for i in ids if i not in busy]

        async def apply() -> None:
            for i in idle:
                await self._cp.apply_availability(i, operative)

        return {"status": "Scheduled" if busy else "Accepted"}, apply

    def change_configuration(self, payload: Mapping[str, Any]) -> Answer:
        key, value = str(payload["key"]), str(payload["value"])
        if key == "AuthorizationKey":
            # The security whitepaper sends the key as hexadecimal digits.
            try:
                self._cp.password = bytes.fromhex(value).decode()
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return {"status": "Rejected"}, None
            return {"status": "Accepted"}, None
        if key not in self._cp.configuration:
            return {"status": "NotSupported"}, None
        if key in READONLY_KEYS:
            return {"status": "Rejected"}, None
        self._cp.configuration[key] = value
        return {"status": "Accepted"}, self._cp.notify

    def get_configuration(self, payload: Mapping[str, Any]) -> Answer:
        wanted = [str(k) for k in payload.get("key", [])] or list(self._cp.configuration)
        known = [
            {"key": k, "readonly": k in READONLY_KEYS, "value": self._cp.configuration[k]}
            for k in wanted
            if k in self._cp.configuration
        ]
        unknown = [k for k in wanted if k not in self._cp.configuration]
        answer: dict[str, Any] = {"configurationKey": known}
        if unknown:
            answer["unknownKey"] = unknown
        return answer, None

    def data_transfer(self, payload: Mapping[str, Any]) -> Answer:
        if payload["vendorId"] != "Strom":
            return {"status": "UnknownVendorId"}, None
        return {"status": "Accepted", "data": str(payload.get("data", ""))}, None

    def trigger(self, payload: Mapping[str, Any]) -> Answer:
        message = payload["requestedMessage"]
        connector_id = payload.get("connectorId")
        if connector_id is not None and int(connector_id) not in self._cp.connectors:
            return {"status": "Rejected"}, None
        if message == "BootNotification":
            return {"status": "Accepted"}, self._cp.boot
        if message == "Heartbeat":
            return {"status": "Accepted"}, lambda: self._cp.call("Heartbeat", {})
        if message == "StatusNotification":
            ids = [int(connector_id)] if connector_id is not None else [0, *self._cp.connectors]

            async def statuses() -> None:
                for i in ids:
                    await self._cp.send_status(i)

            return {"status": "Accepted"}, statuses
        if message == "MeterValues":
            ids = [int(connector_id)] if connector_id is not None else list(self._cp.connectors)

            async def meters() -> None:
                for i in ids:
                    await self._cp.send_meter_values(i, "Trigger")

            return {"status": "Accepted"}, meters
        return {"status": "NotImplemented"}, None
