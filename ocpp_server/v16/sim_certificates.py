"""The simulated OCPP 1.6 charge point's side of the security edition's certificates.

On ExtendedTriggerMessage ``SignChargePointCertificate`` it makes a new EC P-256 key and a CSR
whose CN is its charger id and sends SignCertificate; CertificateSigned with a certificate for
that key becomes its TLS client certificate from the next connection on (security profile 3).
InstallCertificate, GetInstalledCertificateIds and DeleteCertificate keep root certificates by
type, named by their hash data. Other ExtendedTriggerMessage requests are answered as
TriggerMessage answers them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ocpp_server.certificates import certificate_hash_data
from ocpp_server.client import Answer

__all__ = ["CertificateHolder", "SimulatedCertificates"]


class CertificateHolder(Protocol):
    """What the certificate answers need of the simulated charge point."""

    client_certificate: tuple[bytes, bytes] | None

    @property
    def charger_id(self) -> str:
        """The charger's identity (the CN of its certificate)."""
        ...

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload."""
        ...


class SimulatedCertificates:
    """The certificate answers and store of a simulated charge point.

    Args:
        holder: the charge point (its id, its CALLs, where the client certificate goes).
        trigger: the charge point's TriggerMessage answer, for the other extended triggers.
    """

    def __init__(
        self, holder: CertificateHolder, trigger: Callable[[Mapping[str, Any]], Answer]
    ) -> None:
        self._holder = holder
        self._trigger = trigger
        self._pending_key: ec.EllipticCurvePrivateKey | None = None
        self.installed: dict[str, list[str]] = {}
        self.csr_answers: list[str] = []

    def table(self) -> dict[str, Callable[[Mapping[str, Any]], Answer]]:
        """Action name to answer."""
        return {
            "ExtendedTriggerMessage": self.on_extended_trigger_message,
            "CertificateSigned": self.on_certificate_signed,
            "InstallCertificate": self.on_install_certificate,
            "GetInstalledCertificateIds": self.on_get_installed_certificate_ids,
            "DeleteCertificate": self.on_delete_certificate,
        }

    def on_extended_trigger_message(self, payload: Mapping[str, Any]) -> Answer:
        """Send a CSR for SignChargePointCertificate; the rest as TriggerMessage does."""
        if payload["requestedMessage"] != "SignChargePointCertificate":
            answer = self._trigger(payload)
            return answer
        return Answer({"status": "Accepted"}, then=self.send_csr)

    async def send_csr(self) -> None:
        """Make a new key and send its CSR in SignCertificate."""
        key = ec.generate_private_key(ec.SECP256R1())
        self._pending_key = key
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self._holder.charger_id)])
        csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
        pem = csr.public_bytes(serialization.Encoding.PEM).decode()
        answer = await self._holder.call("SignCertificate", {"csr": pem})
        self.csr_answers.append(str(answer.get("status")))

    def on_certificate_signed(self, payload: Mapping[str, Any]) -> Answer:
        """Keep a certificate for the key of the last CSR as the client certificate."""
        key = self._pending_key
        chain = str(payload["certificateChain"]).encode()
        try:
            certificate = x509.load_pem_x509_certificates(chain)[0]
        except (ValueError, IndexError):
            return Answer({"status": "Rejected"})
        if key is None or certificate.public_key() != key.public_key():
            return Answer({"status": "Rejected"})
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._holder.client_certificate = (chain, key_pem)
        self._pending_key = None
        return Answer({"status": "Accepted"})

    def on_install_certificate(self, payload: Mapping[str, Any]) -> Answer:
        """Keep a root certificate of its type (Rejected when it is no certificate)."""
        pem = str(payload["certificate"])
        try:
            certificate_hash_data(pem)
        except ValueError:
            return Answer({"status": "Rejected"})
        kept = self.installed.setdefault(str(payload["certificateType"]), [])
        if pem not in kept:
            kept.append(pem)
        return Answer({"status": "Accepted"})

    def on_get_installed_certificate_ids(self, payload: Mapping[str, Any]) -> Answer:
        """The hash data of the roots of the type asked for (NotFound when none)."""
        kept = self.installed.get(str(payload["certificateType"]), [])
        if not kept:
            return Answer({"status": "NotFound"})
        return Answer(
            {
                "status": "Accepted",
                "certificateHashData": [certificate_hash_data(pem) for pem in kept],
            }
        )

    def on_delete_certificate(self, payload: Mapping[str, Any]) -> Answer:
        """Delete the root named by its hash data (NotFound when none matches)."""
        wanted = dict(payload["certificateHashData"])
        for kept in self.installed.values():
            for pem in kept:
                if certificate_hash_data(pem, wanted["hashAlgorithm"]) == wanted:
                    kept.remove(pem)
                    return Answer({"status": "Accepted"})
        return Answer({"status": "NotFound"})
