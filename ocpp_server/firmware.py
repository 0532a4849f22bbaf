"""Firmware and upload commands, routed to the OCPP version the charger's connection speaks.

:class:`OcppFirmware` is the :class:`strom_core.ports.firmware.FirmwareCommands` of the server.
A version's command set implements them when it implements the port (OCPP 1.6:
:mod:`ocpp_server.v16.firmware`); a charger connected with a version that does not (OCPP 2.0.1
for now) is answered ``NOT_SUPPORTED`` and sent nothing, and one that is not connected
``OFFLINE`` (:meth:`ocpp_server.commands.OcppCommands.live_capable`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from ocpp_server.commands import OcppCommands
from strom_core.ports import CommandResult
from strom_core.ports.firmware import FirmwareCommands, UploadResult

__all__ = ["OcppFirmware"]


class OcppFirmware:
    """Firmware and upload commands by charger id, routed by the connection's version.

    Args:
        commands: the server's commands (one set per version served).
    """

    def __init__(self, commands: OcppCommands) -> None:
        self._commands = commands

    def _route(self, charger_id: str) -> FirmwareCommands | CommandResult:
        return self._commands.live_capable(charger_id, FirmwareCommands, "firmware commands")

    async def update_firmware(
        self,
        charger_id: str,
        location: str,
        retrieve_at: datetime,
        *,
        retries: int | None = None,
        retry_interval_s: int | None = None,
    ) -> CommandResult:
        """Have the charger fetch and install the firmware at ``location`` from ``retrieve_at``."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.update_firmware(
            charger_id, location, retrieve_at, retries=retries, retry_interval_s=retry_interval_s
        )

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
        """Have the charger fetch, verify and install signed firmware from ``location``."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.signed_update_firmware(
            charger_id,
            location,
            retrieve_at,
            request_id=request_id,
            signing_certificate=signing_certificate,
            signature=signature,
            install_at=install_at,
            retries=retries,
            retry_interval_s=retry_interval_s,
        )

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
        """Have the charger upload its diagnostics (from ``start`` to ``stop``) to ``location``."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return UploadResult(route)
        return await route.get_diagnostics(
            charger_id,
            location,
            start=start,
            stop=stop,
            retries=retries,
            retry_interval_s=retry_interval_s,
        )

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
        """Have the charger upload its diagnostics or security log to ``location``."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return UploadResult(route)
        return await route.get_log(
            charger_id, location, request_id, security_log=security_log, start=start, stop=stop
        )


if TYPE_CHECKING:
    _IS_FIRMWARE_COMMANDS: type[FirmwareCommands] = OcppFirmware
