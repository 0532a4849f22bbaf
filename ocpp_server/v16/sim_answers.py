"""How the simulated OCPP 1.6 charge point answers the central system's CALLs.

Each ``on_<action>`` returns the answer and the work the request asks for, which the client runs
once the answer is sent (:class:`~ocpp_server.client.Answer`). The answers act on the charge
point only through its public face, :class:`ChargePoint`
(:class:`~ocpp_server.v16.charge_point.SimulatedChargePoint` is the one there is).
"""

from __future__ import annotations

import binascii
import contextlib
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Final, Protocol

from ocpp_server.client import Answer, CallFailed
from ocpp_server.sim_model import ConnectorState

__all__ = ["READONLY_KEYS", "ChargePoint", "SimulatorAnswers"]

READONLY_KEYS: Final = frozenset(
    {
        "LocalAuthListMaxLength",
        "NumberOfConnectors",
        "SendLocalListMaxLength",
        "SupportedFeatureProfiles",
    }
)


class ChargePoint(Protocol):
    """What the answers need of the simulated charge point."""

    connectors: dict[int, ConnectorState]
    configuration: dict[str, str]
    password: str | None

    async def notify(self) -> None:
        """Wake everything waiting for a change of state."""
        ...

    async def boot(self) -> None:
        """Send BootNotification until it is accepted."""
        ...

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload."""
        ...

    async def send_status(self, connector_id: int) -> None:
        """Send a StatusNotification for one connector (0: the charger as a whole)."""
        ...

    async def set_status(self, connector_id: int, status: str) -> None:
        """Change a connector's status and report it."""
        ...

    async def send_meter_values(self, connector_id: int, context: str = ...) -> None:
        """Send the connector's register now."""
        ...

    async def start_transaction(self, connector_id: int, id_tag: str) -> dict[str, Any]:
        """Start a transaction (StartTransaction.req)."""
        ...

    async def stop_transaction(self, connector_id: int, reason: str = ...) -> dict[str, Any]:
        """Stop the connector's transaction (StopTransaction.req)."""
        ...

    async def apply_availability(self, connector_id: int, operative: bool) -> None:
        """Make a connector (in)operative and report its status."""
        ...

    def drop_connection(self) -> None:
        """Lose the connection (the charger reconnects)."""
        ...


class SimulatorAnswers:
    """The simulated charge point's answers to the central system's CALLs.

    Args:
        charge_point: the charge point the answers act on.
    """

    def __init__(self, charge_point: ChargePoint) -> None:
        self._cp = charge_point

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "RemoteStartTransaction": self.on_remote_start_transaction,
            "RemoteStopTransaction": self.on_remote_stop_transaction,
            "UnlockConnector": self.on_unlock_connector,
            "Reset": self.on_reset,
            "ChangeAvailability": self.on_change_availability,
            "ChangeConfiguration": self.on_change_configuration,
            "GetConfiguration": self.on_get_configuration,
            "ClearCache": lambda _payload: Answer({"status": "Accepted"}),
            "DataTransfer": self.on_data_transfer,
            "TriggerMessage": self.on_trigger_message,
        }

    def on_remote_start_transaction(self, payload: Mapping[str, Any]) -> Answer:
        """Start on the wanted (or the first free) connector, now or once plugged."""
        tag = str(payload["idTag"])
        wanted = payload.get("connectorId")
        candidates = [wanted] if wanted is not None else list(self._cp.connectors)
        for connector_id in candidates:
            connector = self._cp.connectors.get(int(connector_id))
            if connector is None or connector.transaction_id is not None:
                continue
            if not connector.operative or connector.waiting_tag is not None:
                continue
            number = connector.connector_id
            if connector.plugged:
                return Answer(
                    {"status": "Accepted"}, then=partial(self._cp.start_transaction, number, tag)
                )
            connector.waiting_tag = tag
            return Answer(
                {"status": "Accepted"}, then=partial(self._cp.set_status, number, "Preparing")
            )
        return Answer({"status": "Rejected"})

    def on_remote_stop_transaction(self, payload: Mapping[str, Any]) -> Answer:
        """Stop the transaction with that id, if this charger runs it."""
        for connector in self._cp.connectors.values():
            if connector.transaction_id == payload["transactionId"]:
                stop = partial(self._cp.stop_transaction, connector.connector_id, "Remote")
                return Answer({"status": "Accepted"}, then=stop)
        return Answer({"status": "Rejected"})

    def on_unlock_connector(self, payload: Mapping[str, Any]) -> Answer:
        """Unlock; a transaction on the connector stops (UnlockCommand)."""
        connector = self._cp.connectors.get(int(payload["connectorId"]))
        if connector is None:
            return Answer({"status": "UnlockFailed"})
        if connector.transaction_id is not None:
            number = connector.connector_id
            return Answer(
                {"status": "Unlocked"},
                then=lambda: self._cp.stop_transaction(number, "UnlockCommand"),
            )
        return Answer({"status": "Unlocked"})

    def on_reset(self, payload: Mapping[str, Any]) -> Answer:
        """Stop every transaction, then reboot (drop the connection and boot again)."""
        reason = "HardReset" if payload["type"] == "Hard" else "SoftReset"

        async def reboot() -> None:
            for connector in self._cp.connectors.values():
                if connector.transaction_id is not None:
                    with contextlib.suppress(CallFailed):
                        await self._cp.stop_transaction(connector.connector_id, reason)
            self._cp.drop_connection()

        return Answer({"status": "Accepted"}, then=reboot)

    def on_change_availability(self, payload: Mapping[str, Any]) -> Answer:
        """(In)operative now, or Scheduled after the running transaction."""
        operative = payload["type"] == "Operative"
        target = int(payload["connectorId"])
        ids = list(self._cp.connectors) if target == 0 else [target]
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

    def on_change_configuration(self, payload: Mapping[str, Any]) -> Answer:
        """Change a key; ``AuthorizationKey`` (hexadecimal) becomes the next password."""
        key, value = str(payload["key"]), str(payload["value"])
        if key == "AuthorizationKey":
            # The security whitepaper sends the key as hexadecimal digits.
            try:
                self._cp.password = bytes.fromhex(value).decode()
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return Answer({"status": "Rejected"})
            return Answer({"status": "Accepted"})
        if key not in self._cp.configuration:
            return Answer({"status": "NotSupported"})
        if key in READONLY_KEYS:
            return Answer({"status": "Rejected"})
        self._cp.configuration[key] = value
        return Answer({"status": "Accepted"}, then=self._cp.notify)

    def on_get_configuration(self, payload: Mapping[str, Any]) -> Answer:
        """The wanted keys (all when none), and the ones this charger does not know."""
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
        return Answer(answer)

    def on_data_transfer(self, payload: Mapping[str, Any]) -> Answer:
        """Echo the data for vendor ``Strom``; any other vendor is unknown."""
        if payload["vendorId"] != "Strom":
            return Answer({"status": "UnknownVendorId"})
        return Answer({"status": "Accepted", "data": str(payload.get("data", ""))})

    def on_trigger_message(self, payload: Mapping[str, Any]) -> Answer:
        """Send the requested message after answering."""
        message = payload["requestedMessage"]
        connector_id = payload.get("connectorId")
        if connector_id is not None and int(connector_id) not in self._cp.connectors:
            return Answer({"status": "Rejected"})
        if message == "BootNotification":
            return Answer({"status": "Accepted"}, then=self._cp.boot)
        if message == "Heartbeat":
            return Answer({"status": "Accepted"}, then=lambda: self._cp.call("Heartbeat", {}))
        if message == "StatusNotification":
            ids = [int(connector_id)] if connector_id is not None else [0, *self._cp.connectors]

            async def statuses() -> None:
                for i in ids:
                    await self._cp.send_status(i)

            return Answer({"status": "Accepted"}, then=statuses)
        if message == "MeterValues":
            ids = [int(connector_id)] if connector_id is not None else list(self._cp.connectors)

            async def meters() -> None:
                for i in ids:
                    await self._cp.send_meter_values(i, "Trigger")

            return Answer({"status": "Accepted"}, then=meters)
        return Answer({"status": "NotImplemented"})
