"""The OCPP 2.0.1 command set (implements :class:`strom_core.ports.ChargerCommands`).

The server's :class:`ocpp_server.commands.OcppCommands` routes a charger's commands here when
its live connection speaks OCPP 2.0.1. The port's commands map as follows (connector N is
EVSE N, :mod:`ocpp_server.v201.messages`):

=========================== ================================================================
port                        OCPP 2.0.1
=========================== ================================================================
``remote_start``            RequestStartTransaction (evseId, idToken type ``Central``,
                            remoteStartId from the idTag, remembered for the charger)
``remote_stop``             RequestStopTransaction (the station's transactionId)
``unlock``                  UnlockConnector (evseId, connectorId 1)
``change_availability``     ChangeAvailability (Operative/Inoperative; connector 0: station)
``reset``                   Reset: soft is ``OnIdle`` (after running transactions end), hard
                            is ``Immediate`` (transactions are stopped first)
``trigger_status``          TriggerMessage StatusNotification (one EVSE, or the station)
=========================== ================================================================

Beyond the port (through :meth:`ocpp_server.commands.OcppCommands.command_set`): GetVariables
and SetVariables with component/variable addressing and typed results, and GetBaseReport. The
reservation commands (:mod:`ocpp_server.v201.reservations`) are used through
:class:`ocpp_server.reservations.OcppReservations`.
Answers map onto :class:`~strom_core.ports.CommandResult` as in every version
(:func:`ocpp_server.commands.command_result`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count
from typing import TYPE_CHECKING, Any

from ocpp_server._connection import ConnectionLookup, OutcomeKind
from ocpp_server.commands import VersionCommands, command_result
from ocpp_server.v201.messages import remote_start_id
from ocpp_server.v201.reservations import Reservations201
from strom_core.ports import ChargerCommands, CommandResult, CommandStatus
from strom_core.ports.device_model import (
    BASE_REPORTS,
    DeviceModelCommands,
    VariableResult,
    VariableSetting,
    VariablesResult,
)

__all__ = [
    "BASE_REPORTS",
    "Ocpp201Commands",
    "VariableResult",
    "VariableSetting",
    "VariablesResult",
]


class Ocpp201Commands(Reservations201, VersionCommands):
    """Commands to chargers connected with OCPP 2.0.1, by charger id.

    Args:
        connection: a charger's live OCPP 2.0.1 connection, or None.
        remember_remote_start: told of every remoteStartId sent with its idTag, so the
            transaction that follows is recognised by it.
    """

    def __init__(
        self,
        connection: ConnectionLookup,
        remember_remote_start: Callable[[str, int, str], None] = lambda *_: None,
    ) -> None:
        super().__init__(connection)
        self._remember = remember_remote_start
        self._request_ids = count(1)

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        """RequestStartTransaction on EVSE ``connector_id`` for a per-session idTag."""
        start_id = remote_start_id(id_tag)
        self._remember(charger_id, start_id, id_tag)
        payload = {
            "evseId": connector_id,
            "idToken": {"idToken": id_tag, "type": "Central"},
            "remoteStartId": start_id,
        }
        return await self._command(charger_id, "RequestStartTransaction", payload)

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        """RequestStopTransaction for the station's transaction id (at most 36 characters).

        A longer reference cannot be a 2.0.1 transaction id: REJECTED, nothing is sent.
        """
        if not 0 < len(transaction) <= 36:
            return CommandResult(CommandStatus.REJECTED, "not an OCPP 2.0.1 transaction id")
        return await self._command(
            charger_id, "RequestStopTransaction", {"transactionId": transaction}
        )

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        """UnlockConnector of EVSE ``connector_id`` (its connector 1)."""
        payload = {"evseId": connector_id, "connectorId": 1}
        return await self._command(charger_id, "UnlockConnector", payload)

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        """ChangeAvailability of EVSE ``connector_id`` (0: the whole station)."""
        payload: dict[str, Any] = {"operationalStatus": "Operative" if operative else "Inoperative"}
        if connector_id > 0:
            payload["evse"] = {"id": connector_id}
        return await self._command(charger_id, "ChangeAvailability", payload)

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        """Reset: hard is ``Immediate``, soft is ``OnIdle`` (Scheduled is ACCEPTED)."""
        return await self._command(charger_id, "Reset", {"type": "Immediate" if hard else "OnIdle"})

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        """TriggerMessage StatusNotification (the station's connectors when None)."""
        payload: dict[str, Any] = {"requestedMessage": "StatusNotification"}
        if connector_id is not None:
            payload["evse"] = {"id": connector_id, "connectorId": 1}
        return await self._command(charger_id, "TriggerMessage", payload)

    async def get_variables(
        self, charger_id: str, variables: Sequence[VariableSetting]
    ) -> VariablesResult:
        """GetVariables (Actual values) for some variables."""
        payload = {"getVariableData": [setting.address() for setting in variables]}
        outcome = await self._call(charger_id, "GetVariables", payload)
        if outcome.kind != OutcomeKind.ANSWERED:
            return VariablesResult(command_result(outcome))
        results = tuple(
            VariableResult(
                str(entry["component"]["name"]),
                str(entry["variable"]["name"]),
                str(entry["attributeStatus"]),
                None if entry.get("attributeValue") is None else str(entry["attributeValue"]),
            )
            for entry in outcome.payload.get("getVariableResult", [])
        )
        return VariablesResult(CommandResult(CommandStatus.ACCEPTED), results)

    async def set_variables(
        self, charger_id: str, variables: Sequence[VariableSetting]
    ) -> VariablesResult:
        """SetVariables (Actual values); each variable's status says whether it was taken."""
        payload = {
            "setVariableData": [
                {"attributeValue": setting.value, **setting.address()} for setting in variables
            ]
        }
        outcome = await self._call(charger_id, "SetVariables", payload)
        if outcome.kind != OutcomeKind.ANSWERED:
            return VariablesResult(command_result(outcome))
        results = tuple(
            VariableResult(
                str(entry["component"]["name"]),
                str(entry["variable"]["name"]),
                str(entry["attributeStatus"]),
            )
            for entry in outcome.payload.get("setVariableResult", [])
        )
        return VariablesResult(CommandResult(CommandStatus.ACCEPTED), results)

    async def get_base_report(
        self, charger_id: str, report: str = "FullInventory"
    ) -> CommandResult:
        """GetBaseReport: the station answers with NotifyReport messages (kept per charger).

        Raises:
            ValueError: for a report base OCPP 2.0.1 does not define.
        """
        if report not in BASE_REPORTS:
            raise ValueError(f"no base report {report!r}")
        payload = {"requestId": next(self._request_ids), "reportBase": report}
        return await self._command(charger_id, "GetBaseReport", payload)


if TYPE_CHECKING:
    from strom_core.ports.reservations import ReservationCommands

    _IS_CHARGER_COMMANDS: type[ChargerCommands] = Ocpp201Commands
    _IS_DEVICE_MODEL: type[DeviceModelCommands] = Ocpp201Commands
    _IS_RESERVATION_COMMANDS: type[ReservationCommands] = Ocpp201Commands
