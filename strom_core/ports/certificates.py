"""The root certificates a charger trusts, as the cockpit manages them.

OCPP 1.6 security edition (and OCPP 2.0.1) let the central system install a root certificate
on a charger (InstallCertificate: the CA that signed the central system's TLS certificate, or
the manufacturer's firmware-signing root), list what it holds (GetInstalledCertificateIds) and
delete one (DeleteCertificate); and ask the charger for a new client certificate of its own
(ExtendedTriggerMessage SignChargePointCertificate: it sends a CSR, which Strom's charger CA
signs, security profile 3). A charger names each certificate by its *hash data*: the hash
algorithm, the hashes of the issuer's name and key, and the serial number in hexadecimal
(``hashAlgorithm``, ``issuerNameHash``, ``issuerKeyHash``, ``serialNumber``, the wire names,
kept as the charger sent them).

The port is version-neutral: a version that does not implement these commands answers
``NOT_SUPPORTED`` and sends nothing; no method raises for what a charger does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable

from strom_core.ports.chargers import CommandResult

__all__ = ["CERTIFICATE_TYPES", "ChargerCertificates", "InstalledCertificates"]

CERTIFICATE_TYPES: Final = ("CentralSystemRootCertificate", "ManufacturerRootCertificate")
"""The kinds of root certificate a charger keeps (the OCPP 1.6 security edition's names)."""


@dataclass(frozen=True, slots=True)
class InstalledCertificates:
    """GetInstalledCertificateIds: the command result and the certificates' hash data.

    A charger that holds none of the type answers ``NotFound``: ``ACCEPTED`` with that detail
    and no certificates.
    """

    result: CommandResult
    certificates: tuple[Mapping[str, str], ...] = ()


@runtime_checkable
class ChargerCertificates(Protocol):
    """Root certificates on chargers, by charger id."""

    async def install_certificate(
        self,
        charger_id: str,
        certificate_pem: str,
        certificate_type: str = "CentralSystemRootCertificate",
    ) -> CommandResult:
        """InstallCertificate: a root certificate of ``certificate_type`` for the charger.

        Raises:
            ValueError: an unknown certificate type (nothing is sent).
        """
        ...

    async def get_installed_certificate_ids(
        self, charger_id: str, certificate_type: str = "CentralSystemRootCertificate"
    ) -> InstalledCertificates:
        """GetInstalledCertificateIds for one type.

        Raises:
            ValueError: an unknown certificate type (nothing is sent).
        """
        ...

    async def delete_certificate(
        self, charger_id: str, hash_data: Mapping[str, str]
    ) -> CommandResult:
        """DeleteCertificate named by its hash data (``NotFound``: REJECTED with that detail)."""
        ...

    async def request_charger_certificate(self, charger_id: str) -> CommandResult:
        """Ask the charger for a CSR (it sends SignCertificate; the charger CA signs it)."""
        ...
