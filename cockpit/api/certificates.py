"""``/chargers/{charger_id}/certificates``: the root certificates a charger trusts.

The OCPP 1.6 security edition's certificate commands, through
:class:`strom_core.ports.certificates.ChargerCertificates`:

* ``GET`` asks the charger (GetInstalledCertificateIds) for both types, the central system's
  root and the manufacturer's, and lists them by their hash data; a type it holds none of is
  no error. Read-only tokens may ask.
* ``POST`` installs one root certificate (InstallCertificate). The PEM is checked here before
  anything is sent: exactly one X.509 certificate, readable, a CA certificate, valid now. A
  charger that stops trusting the central system's root cannot connect over TLS any more, so
  a bad paste is refused at the door rather than by the charger.
* ``POST …/commands/renew-certificate`` asks the charger for a new client certificate of its
  own (ExtendedTriggerMessage SignChargePointCertificate): it sends a CSR, which Strom's charger
  CA checks and signs (:mod:`ocpp_server.v16.certificates`); the charger uses the certificate
  from its next connection (security profile 3).
* ``DELETE …/{serial}`` deletes the certificate with that serial number (DeleteCertificate
  needs its whole hash data: Strom asks the charger for its certificates first and sends the
  hash data of the one with that serial; none is a 404, two with the same serial a 409).

Changes are audited like every charger command.
"""

from __future__ import annotations

import re
from datetime import UTC

from cryptography import x509

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.ports import CommandStatus
from strom_core.ports.certificates import CERTIFICATE_TYPES, ChargerCertificates

__all__ = ["CertificatesResource", "check_root_pem"]

_SERIAL = re.compile(r"^[0-9A-Fa-f]{1,40}$")
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


def check_root_pem(pem: str, now_unix: float) -> x509.Certificate:
    """The one CA certificate in ``pem``, valid at ``now_unix``.

    Raises:
        ApiError: 400 naming what is wrong (not PEM, several certificates, no CA, expired).
    """
    if pem.count(_PEM_BEGIN) != 1:
        raise ApiError(400, "bad_request", "pem: expected exactly one PEM certificate")
    try:
        certificate = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ApiError(400, "bad_request", "pem: not a readable PEM certificate") from None
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        is_ca = constraints.value.ca
    except (x509.ExtensionNotFound, ValueError):
        is_ca = False
    if not is_ca:
        raise ApiError(400, "bad_request", "pem: a root certificate must be a CA certificate")
    starts = certificate.not_valid_before_utc.timestamp()
    ends = certificate.not_valid_after_utc.timestamp()
    if not starts <= now_unix <= ends:
        raise ApiError(400, "bad_request", "pem: the certificate is not valid now")
    return certificate


def _serial_key(serial: str) -> str:
    """A serial number as compared: lower-case hexadecimal without leading zeroes."""
    return serial.lower().lstrip("0") or "0"


class CertificatesResource:
    """The root certificates of each charger."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    @property
    def _certificates(self) -> ChargerCertificates:
        return self.ctx.station.certificates

    async def _installed(self, charger_id: str) -> m.CertificatesOut:
        types: list[m.CertificateTypeStatus] = []
        found: list[m.CertificateOut] = []
        for certificate_type in CERTIFICATE_TYPES:
            answer = await self._certificates.get_installed_certificate_ids(
                charger_id, certificate_type
            )
            types.append(
                m.CertificateTypeStatus(
                    certificate_type=certificate_type,
                    status=answer.result.status.value,
                    detail=answer.result.detail,
                )
            )
            found += [
                m.CertificateOut(
                    certificate_type=certificate_type,
                    hash_algorithm=data.get("hashAlgorithm", ""),
                    issuer_name_hash=data.get("issuerNameHash", ""),
                    issuer_key_hash=data.get("issuerKeyHash", ""),
                    serial_number=data.get("serialNumber", ""),
                )
                for data in answer.certificates
            ]
            if answer.result.status is not CommandStatus.ACCEPTED:
                break  # offline, not supported, no answer: the second type would say the same
        worst = next((t for t in types if t.status != CommandStatus.ACCEPTED.value), None)
        return m.CertificatesOut(
            charger_id=charger_id,
            status=worst.status if worst else CommandStatus.ACCEPTED.value,
            detail=worst.detail if worst else "",
            types=types,
            certificates=found,
        )

    async def list_certificates(self, call: Call) -> m.CertificatesOut:
        """``GET /chargers/{charger_id}/certificates``."""
        profile = self.ctx.profile(call)
        return await self._installed(profile.id)

    async def install(self, call: Call) -> m.CertificateAnswer:
        """``POST /chargers/{charger_id}/certificates``."""
        profile = self.ctx.profile(call)
        body: m.CertificateIn = call.body
        certificate = check_root_pem(body.pem, self.ctx.clock.unix())
        serial = format(certificate.serial_number, "x")
        subject = certificate.subject.rfc4514_string()
        result = await self._certificates.install_certificate(
            profile.id, body.pem, body.certificate_type
        )
        call.audit_detail.update(
            certificate_type=body.certificate_type,
            subject=subject,
            serial_number=serial,
            charger=result.status.value,
        )
        return m.CertificateAnswer(
            status=result.status.value,
            detail=result.detail,
            certificate_type=body.certificate_type,
            subject=subject,
            serial_number=serial,
            not_after=certificate.not_valid_after_utc.astimezone(UTC),
        )

    async def delete(self, call: Call) -> m.CertificateAnswer:
        """``DELETE /chargers/{charger_id}/certificates/{serial}``."""
        profile = self.ctx.profile(call)
        serial = call.path("serial")
        if not _SERIAL.match(serial):
            raise ApiError(400, "bad_request", "serial: expected 1 to 40 hexadecimal digits")
        installed = await self._installed(profile.id)
        if installed.status != CommandStatus.ACCEPTED.value:
            raise ApiError(
                409,
                "conflict",
                f"the charger did not list its certificates: {installed.status} "
                f"{installed.detail}".strip(),
            )
        matching = [
            c for c in installed.certificates if _serial_key(c.serial_number) == _serial_key(serial)
        ]
        if not matching:
            raise ApiError(404, "not_found", f"the charger has no certificate with serial {serial}")
        if len(matching) > 1:
            many = f"the charger has {len(matching)} certificates with serial {serial}"
            raise ApiError(409, "conflict", many)
        chosen = matching[0]
        result = await self._certificates.delete_certificate(
            profile.id,
            {
                "hashAlgorithm": chosen.hash_algorithm,
                "issuerNameHash": chosen.issuer_name_hash,
                "issuerKeyHash": chosen.issuer_key_hash,
                "serialNumber": chosen.serial_number,
            },
        )
        call.audit_detail.update(
            certificate_type=chosen.certificate_type,
            serial_number=chosen.serial_number,
            charger=result.status.value,
        )
        return m.CertificateAnswer(
            status=result.status.value,
            detail=result.detail,
            certificate_type=chosen.certificate_type,
            serial_number=chosen.serial_number,
        )

    async def renew(self, call: Call) -> m.CommandAnswer:
        """``POST /chargers/{charger_id}/commands/renew-certificate``."""
        profile = self.ctx.profile(call)
        result = await self._certificates.request_charger_certificate(profile.id)
        call.audit_detail.update(charger=result.status.value)
        return m.CommandAnswer(status=result.status.value, detail=result.detail)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/chargers/{charger_id}/certificates",
                self.list_certificates,
                "GetInstalledCertificateIds: the root certificates the charger holds (both types)",
                "chargers",
                m.CertificatesOut,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/certificates",
                self.install,
                "InstallCertificate: a root certificate (one PEM CA certificate, checked first)",
                "chargers",
                m.CertificateAnswer,
                body=m.CertificateIn,
                action="charger.install_certificate",
                target="charger_id",
            ),
            e(
                "DELETE",
                "/chargers/{charger_id}/certificates/{serial}",
                self.delete,
                "DeleteCertificate: the root certificate with this serial number (hexadecimal)",
                "chargers",
                m.CertificateAnswer,
                action="charger.delete_certificate",
                target="charger_id",
                conflict=True,
            ),
            e(
                "POST",
                "/chargers/{charger_id}/commands/renew-certificate",
                self.renew,
                "ExtendedTriggerMessage SignChargePointCertificate: the charger sends a CSR, "
                "Strom's charger CA signs it (its client certificate, security profile 3)",
                "chargers",
                m.CommandAnswer,
                action="charger.renew_certificate",
                target="charger_id",
            ),
        ]
