"""The OCPP 1.6 command set (implements :class:`strom_core.ports.ChargerCommands`).

The server's :class:`ocpp_server.commands.OcppCommands` routes a charger's commands here when its
live connection speaks OCPP 1.6; the lookup this command set gets finds only those connections.
The 1.6 commands beyond the port (configuration keys, cache, TriggerMessage, DataTransfer, and
the firmware and upload commands of :mod:`ocpp_server.v16.firmware`) are reached through
:meth:`ocpp_server.commands.OcppCommands.command_set`; the security edition's certificate
commands come from :class:`~ocpp_server.v16.certificates.CertificateCommands`; the SmartCharging
commands (:mod:`ocpp_server.v16.smart_charging`) are used through
:class:`ocpp_server.power.OcppPowerLimits`, the local authorization list
(:mod:`ocpp_server.v16.local_list`) through :class:`ocpp_server.local_list.OcppLocalList`,
the Reservation commands (:mod:`ocpp_server.v16.reservations`) through
:class:`ocpp_server.reservations.OcppReservations`.

Every command returns a :class:`~strom_core.ports.CommandResult` and never raises for what a charger
does: ``OFFLINE`` when it is not connected (nothing was sent), ``TIMEOUT`` when it did not answer
in time or the connection dropped after sending (the outcome is unknown), ``ERROR`` for a
CALLERROR or an answer that breaks the schema, ``NOT_SUPPORTED`` when the charger says so.
Exactly one CALL is outstanding per charger: commands queue behind each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from ocpp_server._connection import OutcomeKind
from ocpp_server.commands import command_result
from ocpp_server.v16.certificates import CertificateCommands
from ocpp_server.v16.firmware import FirmwareManagement
from ocpp_server.v16.local_list import LocalList16
from ocpp_server.v16.messages import transaction_id
from ocpp_server.v16.reservations import Reservations16
from ocpp_server.v16.smart_charging import SmartCharging16
from strom_core.ports import ChargerCommands, CommandResult, CommandStatus

__all__ = [
    "TRIGGERABLE_MESSAGES",
    "ConfigurationKey",
    "DataTransferResult",
    "GetConfigurationResult",
    "Ocpp16Commands",
]

TRIGGERABLE_MESSAGES: Final = frozenset(
    {
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    }
)


@dataclass(frozen=True, slots=True)
class ConfigurationKey:
    """One entry of GetConfiguration.conf."""

    key: str
    readonly: bool
    value: str | None


@dataclass(frozen=True, slots=True)
class GetConfigurationResult:
    """GetConfiguration: the command result, the keys, and keys the charger does not know."""

    result: CommandResult
    keys: tuple[ConfigurationKey, ...] = ()
    unknown_keys: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataTransferResult:
    """DataTransfer: the command result and the charger's ``data``, if any."""

    result: CommandResult
    data: str | None = None


class Ocpp16Commands(
    SmartCharging16, LocalList16, CertificateCommands, FirmwareManagement, Reservations16
):
    """Commands to chargers connected with OCPP 1.6, by charger id.

    Args:
        connection: a charger's live OCPP 1.6 connection, or None.
    """

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        """RemoteStartTransaction for one connector with a per-session idTag (<= 20 chars)."""
        payload = {"connectorId": connector_id, "idTag": id_tag}
        return await self._command(charger_id, "RemoteStartTransaction", payload)

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        """RemoteStopTransaction for a transaction reference.

        A reference that is no OCPP 1.6 transaction id is REJECTED and nothing is sent.
        """
        try:
            payload = {"transactionId": transaction_id(transaction)}
        except ValueError as exc:
            return CommandResult(CommandStatus.REJECTED, str(exc))
        return await self._command(charger_id, "RemoteStopTransaction", payload)

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        """UnlockConnector (Unlocked is ACCEPTED, UnlockFailed REJECTED)."""
        return await self._command(charger_id, "UnlockConnector", {"connectorId": connector_id})

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        """ChangeAvailability (Scheduled is ACCEPTED with detail "Scheduled")."""
        payload = {
            "connectorId": connector_id,
            "type": "Operative" if operative else "Inoperative",
        }
        return await self._command(charger_id, "ChangeAvailability", payload)

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        """Reset (Soft / Hard)."""
        return await self._command(charger_id, "Reset", {"type": "Hard" if hard else "Soft"})

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        """TriggerMessage StatusNotification (all connectors when ``connector_id`` is None)."""
        return await self.trigger_message(charger_id, "StatusNotification", connector_id)

    async def trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult:
        """TriggerMessage for any message OCPP 1.6 lets a central system request.

        Raises:
            ValueError: for a message that cannot be triggered.
        """
        if message not in TRIGGERABLE_MESSAGES:
            raise ValueError(f"TriggerMessage cannot request {message!r}")
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector_id is not None:
            payload["connectorId"] = connector_id
        return await self._command(charger_id, "TriggerMessage", payload)

    async def change_configuration(self, charger_id: str, key: str, value: str) -> CommandResult:
        """ChangeConfiguration (RebootRequired is ACCEPTED with that detail)."""
        return await self._command(charger_id, "ChangeConfiguration", {"key": key, "value": value})

    async def clear_cache(self, charger_id: str) -> CommandResult:
        """ClearCache (the charger's authorization cache)."""
        return await self._command(charger_id, "ClearCache", {})

    async def get_configuration(
        self, charger_id: str, keys: tuple[str, ...] = ()
    ) -> GetConfigurationResult:
        """GetConfiguration for some keys, or all when ``keys`` is empty."""
        payload: dict[str, Any] = {"key": list(keys)} if keys else {}
        outcome = await self._call(charger_id, "GetConfiguration", payload)
        if outcome.kind != OutcomeKind.ANSWERED:
            return GetConfigurationResult(command_result(outcome))
        entries = tuple(
            ConfigurationKey(
                str(entry["key"]),
                bool(entry["readonly"]),
                None if entry.get("value") is None else str(entry["value"]),
            )
            for entry in outcome.payload.get("configurationKey", [])
        )
        unknown = tuple(str(key) for key in outcome.payload.get("unknownKey", []))
        return GetConfigurationResult(CommandResult(CommandStatus.ACCEPTED), entries, unknown)

    async def data_transfer(
        self,
        charger_id: str,
        vendor_id: str,
        message_id: str | None = None,
        data: str | None = None,
    ) -> DataTransferResult:
        """DataTransfer to a vendor extension on the charger."""
        payload: dict[str, Any] = {"vendorId": vendor_id}
        if message_id is not None:
            payload["messageId"] = message_id
        if data is not None:
            payload["data"] = data
        outcome = await self._call(charger_id, "DataTransfer", payload)
        answer = outcome.payload.get("data") if outcome.kind == OutcomeKind.ANSWERED else None
        return DataTransferResult(command_result(outcome), None if answer is None else str(answer))


if TYPE_CHECKING:
    from strom_core.ports.firmware import FirmwareCommands
    from strom_core.ports.reservations import ReservationCommands

    _IS_CHARGER_COMMANDS: type[ChargerCommands] = Ocpp16Commands
    _IS_FIRMWARE_COMMANDS: type[FirmwareCommands] = Ocpp16Commands
    _IS_RESERVATION_COMMANDS: type[ReservationCommands] = Ocpp16Commands
