"""OCPP 1.6 FirmwareManagement, and GetLog and SignedUpdateFirmware of the security extension.

UpdateFirmware has the charger fetch firmware from a URL at a time; GetDiagnostics and GetLog
have it upload a file to a URL (Strom serves one per request, :mod:`cockpit.uploads`). The
answers say only whether the charger took the job (UpdateFirmware's answer is empty: a CALLRESULT
is ``ACCEPTED``); the progress comes later as FirmwareStatusNotification,
DiagnosticsStatusNotification, LogStatusNotification and SignedFirmwareStatusNotification,
recorded per charger by the handlers. SignedUpdateFirmware carries the firmware's signature and
signing certificate, which the charger verifies before it installs.

:class:`FirmwareManagement` is a part of :class:`~ocpp_server.v16.commands.Ocpp16Commands`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ocpp_server._connection import OutcomeKind
from ocpp_server.commands import VersionCommands, command_result
from ocpp_server.ocppj import format_timestamp
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.firmware import UploadResult

__all__ = ["FirmwareManagement"]


def _retries(payload: dict[str, Any], retries: int | None, retry_interval_s: int | None) -> None:
    if retries is not None:
        payload["retries"] = retries
    if retry_interval_s is not None:
        payload["retryInterval"] = retry_interval_s


class FirmwareManagement(VersionCommands):
    """UpdateFirmware, GetDiagnostics and GetLog to chargers connected with OCPP 1.6."""

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        *,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> CommandResult:
        """UpdateFirmware: fetch the firmware at ``location`` from ``retrieve_at`` on."""
        payload: dict[str, Any] = {
            "location": location,
            "retrieveDate": format_timestamp(retrieve_at),
        }
        _retries(payload, retries, retry_interval_s)
        outcome = await self._call(charger_id, "UpdateFirmware", payload)
        if outcome.kind == OutcomeKind.ANSWERED:  # the answer has no status: taken
            return CommandResult(CommandStatus.ACCEPTED)
        return command_result(outcome)

    async def signed_update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        *,
        request_id: int,
        signing_certificate: str,
        signature: str,
        install_at: datetime | None = None,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> CommandResult:
        """SignedUpdateFirmware (security edition): fetch, verify and install signed firmware.

        ``AcceptedCanceled`` is ``ACCEPTED`` with that detail; ``InvalidCertificate``,
        ``RevokedCertificate`` and ``Rejected`` are ``REJECTED``. Naive times are ``REJECTED``
        and nothing is sent.
        """
        if retrieve_at.tzinfo is None or (install_at is not None and install_at.tzinfo is None):
            return CommandResult(CommandStatus.REJECTED, "times must carry their time zone")
        firmware: dict[str, Any] = {
            "location": location,
            "retrieveDateTime": format_timestamp(retrieve_at),
            "signingCertificate": signing_certificate,
            "signature": signature,
        }
        if install_at is not None:
            firmware["installDateTime"] = format_timestamp(install_at)
        payload: dict[str, Any] = {"requestId": request_id, "firmware": firmware}
        _retries(payload, retries, retry_interval_s)
        return await self._command(charger_id, "SignedUpdateFirmware", payload)

    async def get_diagnostics(
        self,
        charger_id: str,
        location: str,
        *,
        start: datetime | None = None,
        stop: datetime | None = None,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> UploadResult:
        """GetDiagnostics: upload the diagnostics to ``location``.

        The answer names the file the charger will upload; without a name it has none
        (``REJECTED`` with the detail "no diagnostics").
        """
        payload: dict[str, Any] = {"location": location}
        _retries(payload, retries, retry_interval_s)
        if start is not None:
            payload["startTime"] = format_timestamp(start)
        if stop is not None:
            payload["stopTime"] = format_timestamp(stop)
        outcome = await self._call(charger_id, "GetDiagnostics", payload)
        if outcome.kind != OutcomeKind.ANSWERED:
            return UploadResult(command_result(outcome))
        name = outcome.payload.get("fileName")
        if name is None:
            return UploadResult(CommandResult(CommandStatus.REJECTED, "no diagnostics"))
        return UploadResult(CommandResult(CommandStatus.ACCEPTED), str(name))

    async def get_log(
        self,
        charger_id: str,
        location: str,
        request_id: int,
        *,
        security_log: bool = False,
        start: datetime | None = None,
        stop: datetime | None = None,
    ) -> UploadResult:
        """GetLog (security extension): upload the diagnostics or security log to ``location``."""
        log: dict[str, Any] = {"remoteLocation": location}
        if start is not None:
            log["oldestTimestamp"] = format_timestamp(start)
        if stop is not None:
            log["latestTimestamp"] = format_timestamp(stop)
        payload = {
            "logType": "SecurityLog" if security_log else "DiagnosticsLog",
            "requestId": request_id,
            "log": log,
        }
        outcome = await self._call(charger_id, "GetLog", payload)
        name = outcome.payload.get("filename") if outcome.kind == OutcomeKind.ANSWERED else None
        return UploadResult(command_result(outcome), None if name is None else str(name))
