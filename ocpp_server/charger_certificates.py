"""Root-certificate commands, routed to the OCPP version the charger's connection speaks.

:class:`OcppCertificates` is the :class:`strom_core.ports.certificates.ChargerCertificates` of
the server. A version's command set implements them when it implements the port (OCPP 1.6
security edition: :mod:`ocpp_server.v16.certificates`); a charger connected with a version
that does not is answered ``NOT_SUPPORTED`` and sent nothing, and one that is not connected
``OFFLINE`` (:meth:`ocpp_server.commands.OcppCommands.live_capable`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ocpp_server.commands import OcppCommands
from strom_core.ports import CommandResult
from strom_core.ports.certificates import (
    CERTIFICATE_TYPES,
    ChargerCertificates,
    InstalledCertificates,
)

__all__ = ["OcppCertificates"]


def _check_type(certificate_type: str) -> None:
    if certificate_type not in CERTIFICATE_TYPES:
        raise ValueError(
            f"certificate type {certificate_type!r}: one of {', '.join(CERTIFICATE_TYPES)}"
        )


class OcppCertificates:
    """Root certificates on connected chargers, by charger id, routed by the version.

    Args:
        commands: the server's commands (one set per version served).
    """

    def __init__(self, commands: OcppCommands) -> None:
        self._commands = commands

    def _route(self, charger_id: str) -> ChargerCertificates | CommandResult:
        return self._commands.live_capable(charger_id, ChargerCertificates, "certificate commands")

    async def install_certificate(
        self,
        charger_id: str,
        certificate_pem: str,
        certificate_type: str = "CentralSystemRootCertificate",
    ) -> CommandResult:
        """InstallCertificate: a root certificate of ``certificate_type`` for the charger."""
        _check_type(certificate_type)
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.install_certificate(charger_id, certificate_pem, certificate_type)

    async def get_installed_certificate_ids(
        self, charger_id: str, certificate_type: str = "CentralSystemRootCertificate"
    ) -> InstalledCertificates:
        """GetInstalledCertificateIds for one type."""
        _check_type(certificate_type)
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return InstalledCertificates(route)
        return await route.get_installed_certificate_ids(charger_id, certificate_type)

    async def delete_certificate(
        self, charger_id: str, hash_data: Mapping[str, str]
    ) -> CommandResult:
        """DeleteCertificate named by its hash data."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.delete_certificate(charger_id, hash_data)

    async def request_charger_certificate(self, charger_id: str) -> CommandResult:
        """ExtendedTriggerMessage SignChargePointCertificate: the charger sends a new CSR."""
        route = self._route(charger_id)
        if isinstance(route, CommandResult):
            return route
        return await route.request_charger_certificate(charger_id)


if TYPE_CHECKING:
    _IS_CHARGER_CERTIFICATES: type[ChargerCertificates] = OcppCertificates
