"""The charger CA: it signs chargers' CSRs and lets the server check their client certificates.

Security profile 3 of the OCPP 1.6 security edition (and OCPP 2.0.1) authenticates a charger by
a TLS client certificate instead of HTTP Basic credentials. This module holds the pure part,
with no file I/O: the composition root makes or loads the CA's key and certificate and gives
them here as PEM.

Theory of operation:

* **One CA per Strom.** :class:`ChargerCa` is a key and a self-signed CA certificate (made by
  :func:`new_ca`, or the operator's own). The OCPP server trusts exactly this CA for client
  certificates (:meth:`ChargerCa.require_clients`): a certificate another CA signed fails the
  TLS handshake.
* **Identity.** The charger's identity is the commonName of its certificate's subject (the
  whitepaper: "the serial number of the Charge Point" is the CN, which OCPP-J makes the last
  segment of its URL). :func:`certificate_identity` reads it from the peer certificate the
  handshake verified; the server admits a profile-3 charger only when it equals the charger id
  of the URL.
* **Signing** (SignCertificate): :meth:`ChargerCa.sign_csr` checks the CSR before it signs:
  its own signature, a key of at least 2048 bits RSA or 256 bits EC on a NIST curve (the
  whitepaper's minimum), and a subject whose CN is the charger's id. A CSR that fails any
  check raises :class:`CsrRefused` with the reason; nothing is signed. The certificate made is
  for TLS client authentication only and names the charger alone (the CSR's other subject
  fields are not copied).
* **Hash data** (InstallCertificate, GetInstalledCertificateIds, DeleteCertificate) names a
  certificate the way the security edition does: the hashes of its issuer's name and key and
  its serial number (:func:`certificate_hash_data`).
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "CA_DAYS",
    "CHARGER_CERTIFICATE_DAYS",
    "ChargerCa",
    "CsrRefused",
    "certificate_hash_data",
    "certificate_identity",
    "new_ca",
]

CA_DAYS: Final = 3650
CHARGER_CERTIFICATE_DAYS: Final = 730
MIN_RSA_BITS: Final = 2048
EC_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})
_HASHES: Final[dict[str, Callable[[], hashes.HashAlgorithm]]] = {
    "SHA256": hashes.SHA256,
    "SHA384": hashes.SHA384,
    "SHA512": hashes.SHA512,
}


class CsrRefused(ValueError):
    """A charger's certificate signing request that Strom does not sign, with the reason."""


@dataclass(frozen=True, slots=True)
class ChargerCa:
    """The CA that signs charger certificates (see the module docstring).

    Attributes:
        certificate: the CA certificate.
        key: its private key (RSA or EC).
    """

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def from_pem(cls, certificate_pem: bytes, key_pem: bytes) -> ChargerCa:
        """Load a CA from PEM.

        Raises:
            ValueError: unreadable PEM, a key of another kind, a key that does not match the
                certificate, or a certificate that is no CA.
        """
        certificate = x509.load_pem_x509_certificate(certificate_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError("the charger CA key must be RSA or EC")
        if key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ):
            raise ValueError("the charger CA key does not match its certificate")
        try:
            constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
        except x509.ExtensionNotFound:
            raise ValueError("the charger CA certificate is no CA (no basicConstraints)") from None
        if not constraints.value.ca:
            raise ValueError("the charger CA certificate is no CA (basicConstraints CA:FALSE)")
        return cls(certificate, key)

    @property
    def certificate_pem(self) -> str:
        """The CA certificate in PEM (what InstallCertificate sends)."""
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    def require_clients(self, context: ssl.SSLContext) -> None:
        """Make a server context ask every client for a certificate signed by this CA.

        A client that sends none still completes the handshake (chargers of profiles 1 and 2
        have none); one that sends a certificate of another CA fails it. Whether a charger must
        have one is decided at admission.
        """
        context.load_verify_locations(cadata=self.certificate_pem)
        context.verify_mode = ssl.CERT_OPTIONAL

    def sign_csr(self, charger_id: str, csr_pem: str, *, now: dt.datetime) -> str:
        """Check a charger's CSR and sign it; returns the certificate chain in PEM.

        Raises:
            CsrRefused: the CSR is unreadable, its signature is wrong, its key is weak or of
                another kind, or its CN is not ``charger_id``.
        """
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError:
            raise CsrRefused("the CSR is not a PEM certificate signing request") from None
        try:
            valid = csr.is_signature_valid
        except (InvalidSignature, ValueError, TypeError):
            valid = False
        if not valid:
            raise CsrRefused("the CSR's signature is not valid")
        public_key = _checked_key(csr.public_key())
        names = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        common_name = str(names[0].value) if len(names) == 1 else None
        if common_name != charger_id:
            raise CsrRefused(f"the CSR's CN is {common_name!r}, not the charger id {charger_id!r}")
        usage_rsa = isinstance(public_key, rsa.RSAPublicKey)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, charger_id)]))
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CHARGER_CERTIFICATE_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=usage_rsa,
                    data_encipherment=False,
                    key_agreement=not usage_rsa,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode()


def new_ca(name: str, *, now: dt.datetime) -> tuple[bytes, bytes]:
    """Make a CA for charger certificates: an EC P-256 key and a self-signed certificate.

    Args:
        name: the CA's common name.
        now: the start of its validity.

    Returns:
        The certificate and the private key (unencrypted PKCS#8), both PEM.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_identity(peer_certificate: Any) -> str | None:
    """The commonName of a verified peer certificate (``SSLObject.getpeercert()``), or None.

    None when there is no certificate (the client sent none) or its subject has no single CN.
    """
    if not isinstance(peer_certificate, dict):
        return None
    names = [
        value
        for rdn in peer_certificate.get("subject", ())
        for key, value in rdn
        if key == "commonName"
    ]
    return str(names[0]) if len(names) == 1 else None


def certificate_hash_data(certificate_pem: str, algorithm: str = "SHA256") -> dict[str, str]:
    """The security edition's CertificateHashDataType of a certificate.

    The issuer name hash is over the DER of the issuer's name, the issuer key hash over the
    issuer's public key bits; the certificates named so are roots (self-signed), whose issuer
    is themselves. The serial
    number is in hexadecimal, without leading zeroes.

    Raises:
        ValueError: unreadable PEM, or an algorithm other than SHA256/SHA384/SHA512.
    """
    if algorithm not in _HASHES:
        raise ValueError(f"hash algorithm {algorithm!r}: SHA256, SHA384 or SHA512")
    certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
    name_hash = hashes.Hash(_HASHES[algorithm]())
    name_hash.update(certificate.issuer.public_bytes())
    key_hash = hashes.Hash(_HASHES[algorithm]())
    # The certificates named this way are roots: their issuer's key is their own.
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        bits = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
    else:
        bits = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    key_hash.update(bits)
    return {
        "hashAlgorithm": algorithm,
        "issuerNameHash": name_hash.finalize().hex(),
        "issuerKeyHash": key_hash.finalize().hex(),
        "serialNumber": format(certificate.serial_number, "x"),
    }


def _checked_key(public_key: object) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise CsrRefused(
                f"the CSR's RSA key has {public_key.key_size} bits, at least {MIN_RSA_BITS} "
                "are needed"
            )
        return public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name not in EC_CURVES:
            raise CsrRefused(f"the CSR's EC curve {public_key.curve.name} is not accepted")
        return public_key
    raise CsrRefused(f"the CSR's key is {type(public_key).__name__}: RSA or EC is needed")
