"""Trust the certificate an LND node presents now: ``strom lightning pin-cert``.

LND makes its own self-signed TLS certificate and renews it at a restart (when it is close to
expiry, or when its IP addresses changed). Strom pins the certificate it was given, so after a
renewal it refuses the node ("TLS certificate changed") rather than trusting an unknown one.
Pinning again is trust on first use:

1. :func:`presented_certificate` opens a TLS connection without verifying and takes the
   certificate the node presents now, with its SHA-256 fingerprint (compare it on the node:
   ``openssl x509 -in tls.cert -noout -fingerprint -sha256``);
2. :func:`identify_node` asks that node ``getinfo`` over the new pin with Strom's macaroon,
   to show which node it is (alias, pubkey, network);
3. after the operator confirms, :func:`write_pin` writes it where the configuration points:
   the ``tls_cert_path`` file, or the ``cert=`` of the URI in ``lndconnect_path``. The file is
   replaced atomically, keeps its permissions, and the old one is kept as ``<file>.bak``.

A running Strom reads those files again before each reconnect attempt while the node is down,
so it takes the new pin up within a minute, without a restart. When ``tls_cert_path`` is
LND's own ``tls.cert`` on the same machine (Umbrel), LND rewrites it itself and no command is
needed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import shutil
import ssl
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from strom_core.errors import BackendUnavailable, ConfigError
from strom_core.lightning import NodeInfo
from strom_lightning.lnd import LndRestBackend
from strom_lightning.lnd_credentials import CertLocation, LndCredentials, cert_to_pem

__all__ = [
    "PresentedCertificate",
    "describe",
    "fingerprint",
    "identify_node",
    "pem_fingerprint",
    "pin_target",
    "pinned_fingerprint",
    "presented_certificate",
    "with_cert",
    "write_pin",
]


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    """The certificate a node presents, as DER and PEM, with its SHA-256 fingerprint."""

    der: bytes
    pem: str
    fingerprint: str


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint as ``openssl x509 -fingerprint -sha256`` prints it."""
    return ":".join(f"{byte:02X}" for byte in hashlib.sha256(der).digest())


def pem_fingerprint(pem: str) -> str:
    """The fingerprint of a PEM certificate (the one pinned now)."""
    return fingerprint(ssl.PEM_cert_to_DER_cert(pem))


async def presented_certificate(base_url: str, *, timeout_s: float = 10.0) -> PresentedCertificate:
    """Connect to ``base_url`` without verifying, and take the certificate it presents.

    Raises:
        BackendUnavailable: the node cannot be reached, or speaks no TLS.
    """
    parts = urlsplit(base_url)
    host, port = parts.hostname or "", parts.port or 443
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # nothing is trusted yet: the operator compares
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        raise BackendUnavailable(
            f"cannot reach {base_url} over TLS: {exc or type(exc).__name__}"
        ) from None
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if tls is not None else None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await writer.wait_closed()
    if not der:
        raise BackendUnavailable(f"{base_url} presented no certificate")
    return PresentedCertificate(der, ssl.DER_cert_to_PEM_cert(der), fingerprint(der))


async def identify_node(credentials: LndCredentials, cert_pem: str) -> NodeInfo:
    """``getinfo`` over ``cert_pem`` with the configured macaroon: which node presents it.

    Raises:
        strom_core.errors.BackendError: the node did not answer, or refused the macaroon.
    """
    backend = LndRestBackend(
        credentials.base_url, macaroon=credentials.macaroon, cert_pem=cert_pem, timeout_s=10.0
    )
    try:
        return await backend.node_info()
    finally:
        await backend.aclose()


def pin_target(location: CertLocation) -> Path:
    """The file a new pin is written to.

    Raises:
        ConfigError: the configuration keeps no certificate in a file (an inline lndconnect
            URI, or no pin at all: a publicly signed certificate).
    """
    if location.kind == "inline" or location.path is None:
        if location.kind == "inline":
            raise ConfigError(
                "lnd: the certificate is inside the inline `lndconnect` URI of strom.toml: "
                "move the URI into a file named by `lndconnect_path` so that pin-cert can "
                "update it, or paste a new URI from the node"
            )
        raise ConfigError(
            "lnd: no certificate is pinned (no tls_cert_path or lndconnect cert=): Strom "
            "trusts the node's publicly signed certificate; give tls_cert_path to pin one"
        )
    return location.path


def pinned_fingerprint(location: CertLocation, credentials: LndCredentials) -> str | None:
    """The fingerprint of the certificate pinned now; None when it cannot be read."""
    try:
        if location.kind == "file" and location.path is not None:
            return pem_fingerprint(cert_to_pem(location.path.read_bytes()))
        return pem_fingerprint(credentials.cert_pem) if credentials.cert_pem else None
    except (OSError, ValueError):
        return None


def write_pin(location: CertLocation, cert: PresentedCertificate) -> Path:
    """Write the certificate where the configuration points; the old file becomes ``.bak``.

    Returns:
        The file written.

    Raises:
        ConfigError: as :func:`pin_target`, or the file cannot be written.
    """
    path = pin_target(location)
    if location.kind == "file":
        content = cert.pem
    else:
        try:
            uri = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"lnd.lndconnect_path: cannot read {path}: {exc}") from None
        content = with_cert(uri, cert.der) + "\n"
    _replace(path, content)
    return path


def with_cert(uri: str, der: bytes) -> str:
    """The lndconnect URI with its ``cert=`` replaced (or added): base64url DER, no padding."""
    value = base64.urlsafe_b64encode(der).decode("ascii").rstrip("=")
    head, _, query = uri.partition("?")
    params = [part for part in query.split("&") if part and not part.startswith("cert=")]
    return f"{head}?{'&'.join([f'cert={value}', *params])}"


def _replace(path: Path, content: str) -> None:
    """Replace ``path`` atomically with ``content``, keeping its mode and a ``.bak`` copy."""
    temporary: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            shutil.copy2(path, path.with_name(path.name + ".bak"))
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(temporary, stat.S_IMODE(path.stat().st_mode))
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)
        raise ConfigError(f"{path}: cannot write the new certificate: {exc}") from None


def describe(info: NodeInfo) -> str:
    """One line about the node that answered."""
    return f"{info.alias or '(no alias)'}, pubkey {info.pubkey or '?'}, network {info.network}"
