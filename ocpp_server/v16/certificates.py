"""Certificate management of the OCPP 1.6 security edition: signing, installing, listing.

Theory of operation:

* **A charger's own certificate** (security profile 3). Strom asks for a CSR with
  ExtendedTriggerMessage ``SignChargePointCertificate``
  (:meth:`CertificateCommands.request_charger_certificate`); the charger sends SignCertificate
  with its CSR. :func:`on_sign_certificate` has the charger CA check it
  (:meth:`~ocpp_server.certificates.ChargerCa.sign_csr`: signature, key strength, CN = the
  charger id): a refused CSR is answered ``Rejected`` with the reason logged; an accepted one
  is answered ``Accepted`` and, once that answer is sent, the signed certificate goes to the
  charger in CertificateSigned. Without a charger CA every CSR is ``Rejected``. The charger
  then reconnects with its certificate when it likes (the whitepaper leaves the moment to it).
* **The roots a charger trusts**: InstallCertificate (Strom's own CA certificate, or any PEM
  the operator gives), GetInstalledCertificateIds and DeleteCertificate are typed commands
  here; certificates are named by their hash data
  (:func:`~ocpp_server.certificates.certificate_hash_data`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ocpp_server._connection import ChargerConnection, DialectContext, OutcomeKind, Reply
from ocpp_server.certificates import CsrRefused
from ocpp_server.commands import VersionCommands, command_result
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.certificates import CERTIFICATE_TYPES as _TYPES
from strom_core.ports.certificates import ChargerCertificates, InstalledCertificates

__all__ = [
    "CERTIFICATE_TYPES",
    "EXTENDED_TRIGGERS",
    "CertificateCommands",
    "InstalledCertificates",
    "on_sign_certificate",
]

log = logging.getLogger("ocpp_server.handlers")

CERTIFICATE_TYPES: Final = frozenset(_TYPES)

EXTENDED_TRIGGERS: Final = frozenset(
    {
        "BootNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "LogStatusNotification",
        "MeterValues",
        "SignChargePointCertificate",
        "StatusNotification",
    }
)


async def on_sign_certificate(
    context: DialectContext, conn: ChargerConnection, payload: Mapping[str, Any]
) -> Reply:
    """SignCertificate: check and sign the charger's CSR, then send it in CertificateSigned."""
    ca = context.charger_ca
    if ca is None:
        log.warning("cp_id=%s: SignCertificate rejected: Strom has no charger CA", conn.charger_id)
        return Reply({"status": "Rejected"})
    try:
        chain = ca.sign_csr(conn.charger_id, str(payload["csr"]), now=context.now())
    except CsrRefused as exc:
        log.warning("cp_id=%s: SignCertificate rejected: %s", conn.charger_id, exc)
        return Reply({"status": "Rejected"})

    async def deliver() -> None:
        outcome = await conn.call("CertificateSigned", {"certificateChain": chain})
        result = command_result(outcome)
        log.info(
            "cp_id=%s: CertificateSigned: %s %s",
            conn.charger_id,
            result.status.value,
            result.detail,
        )

    log.info("cp_id=%s: SignCertificate: CSR signed by the charger CA", conn.charger_id)
    return Reply({"status": "Accepted"}, after=deliver)


class CertificateCommands(VersionCommands):
    """The security edition's certificate commands to OCPP 1.6 chargers, by charger id."""

    async def extended_trigger_message(
        self, charger_id: str, message: str, connector_id: int | None = None
    ) -> CommandResult:
        """ExtendedTriggerMessage for any message the security edition lets Strom request.

        Raises:
            ValueError: for a message that cannot be requested this way.
        """
        if message not in EXTENDED_TRIGGERS:
            raise ValueError(f"ExtendedTriggerMessage cannot request {message!r}")
        payload: dict[str, Any] = {"requestedMessage": message}
        if connector_id is not None:
            payload["connectorId"] = connector_id
        return await self._command(charger_id, "ExtendedTriggerMessage", payload)

    async def request_charger_certificate(self, charger_id: str) -> CommandResult:
        """Ask the charger for a CSR (it answers with SignCertificate; Strom signs it)."""
        return await self.extended_trigger_message(charger_id, "SignChargePointCertificate")

    async def install_certificate(
        self,
        charger_id: str,
        certificate_pem: str,
        certificate_type: str = "CentralSystemRootCertificate",
    ) -> CommandResult:
        """InstallCertificate: a root certificate the charger is to trust.

        Raises:
            ValueError: an unknown certificate type.
        """
        _check_type(certificate_type)
        payload = {"certificateType": certificate_type, "certificate": certificate_pem}
        return await self._command(charger_id, "InstallCertificate", payload)

    async def get_installed_certificate_ids(
        self, charger_id: str, certificate_type: str = "CentralSystemRootCertificate"
    ) -> InstalledCertificates:
        """GetInstalledCertificateIds for one type (``NotFound`` is ACCEPTED with none).

        Raises:
            ValueError: an unknown certificate type.
        """
        _check_type(certificate_type)
        outcome = await self._call(
            charger_id, "GetInstalledCertificateIds", {"certificateType": certificate_type}
        )
        if outcome.kind != OutcomeKind.ANSWERED:
            return InstalledCertificates(command_result(outcome))
        status = str(outcome.payload.get("status", ""))
        if status == "NotFound":
            return InstalledCertificates(CommandResult(CommandStatus.ACCEPTED, "NotFound"))
        found = tuple(
            {str(key): str(value) for key, value in entry.items()}
            for entry in outcome.payload.get("certificateHashData", [])
        )
        return InstalledCertificates(command_result(outcome), found)

    async def delete_certificate(
        self, charger_id: str, hash_data: Mapping[str, str]
    ) -> CommandResult:
        """DeleteCertificate named by its hash data (``NotFound`` is REJECTED with that detail)."""
        payload = {"certificateHashData": dict(hash_data)}
        return await self._command(charger_id, "DeleteCertificate", payload)


def _check_type(certificate_type: str) -> None:
    if certificate_type not in CERTIFICATE_TYPES:
        known = ", ".join(sorted(CERTIFICATE_TYPES))
        raise ValueError(f"certificate type {certificate_type!r}: one of {known}")


if TYPE_CHECKING:
    _IS_CHARGER_CERTIFICATES: type[ChargerCertificates] = CertificateCommands
