"""Where Strom finds LND and how it proves who it is: address, macaroon, pinned certificate.

An ``[lightning]`` section of ``backend = "lnd"`` names them in one of two styles: the files
(``rest_host``, ``macaroon_path``, ``tls_cert_path``: Umbrel's layout) or an lndconnect URI
(``lndconnect`` inline, or in the file ``lndconnect_path``). :func:`load_lnd_credentials`
reads whichever is configured; the backend calls it again on every reconnect attempt while
the node is unreachable, so a certificate LND renewed (and a new pin written by ``strom
lightning pin-cert``) is taken up without a restart. :func:`cert_location` says where the
pinned certificate lives, for that command.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from strom_core.errors import ConfigError
from strom_core.lightning_config import LndConfig, read_secret_file
from strom_lightning.lndconnect import parse_lndconnect

__all__ = ["CertLocation", "LndCredentials", "cert_location", "load_lnd_credentials"]


@dataclass(frozen=True, slots=True)
class LndCredentials:
    """What reaching LND takes: its REST URL, the macaroon and the certificate to pin."""

    base_url: str
    macaroon: bytes = field(repr=False)
    cert_pem: str | None
    """The pinned certificate (PEM), or None for a publicly signed one."""


@dataclass(frozen=True, slots=True)
class CertLocation:
    """Where the pinned certificate of an LND configuration is kept."""

    kind: Literal["file", "lndconnect_file", "inline", "none"]
    """``file``: ``tls_cert_path``; ``lndconnect_file``: the ``cert=`` of the URI in
    ``lndconnect_path``; ``inline``: the ``cert=`` of the URI inside strom.toml; ``none``: no
    pin (a publicly signed certificate)."""
    path: Path | None = None
    """The file (resolved against the data folder), for ``file`` and ``lndconnect_file``."""


def _resolve(path: Path, data_dir: Path) -> Path:
    return path if path.is_absolute() else data_dir / path


def cert_location(config: LndConfig, *, data_dir: Path) -> CertLocation:
    """Where ``config`` keeps the certificate Strom pins."""
    if config.lndconnect_path is not None:
        return CertLocation("lndconnect_file", _resolve(config.lndconnect_path, data_dir))
    if config.lndconnect is not None:
        return CertLocation("inline")
    if config.tls_cert_path is not None:
        return CertLocation("file", _resolve(config.tls_cert_path, data_dir))
    return CertLocation("none")


def load_lnd_credentials(config: LndConfig, *, data_dir: Path, cert: bool = True) -> LndCredentials:
    """Read the configured files (or the inline URI) into :class:`LndCredentials`.

    With ``cert=False`` the ``tls_cert_path`` file is not read (it may be missing or stale:
    ``strom lightning pin-cert`` is about to write it).

    Raises:
        ConfigError: a file is missing, unreadable or empty, or the URI is malformed.
    """
    if config.lndconnect is not None or config.lndconnect_path is not None:
        if config.lndconnect is not None:
            uri = config.lndconnect.get_secret_value()
        else:
            assert config.lndconnect_path is not None
            raw = read_secret_file(config.lndconnect_path, "lnd.lndconnect_path", data_dir=data_dir)
            uri = raw.decode("utf-8", "replace").strip()
        parsed = parse_lndconnect(uri)
        return LndCredentials(parsed.base_url, parsed.macaroon, parsed.cert_pem)
    if config.rest_host is None or config.macaroon_path is None:
        # the config model refuses this; keep mypy and readers sure
        raise ConfigError("lnd: give rest_host + macaroon_path, or an lndconnect URI")
    macaroon = macaroon_bytes(
        read_secret_file(config.macaroon_path, "lnd.macaroon_path", data_dir=data_dir)
    )
    cert_pem = None
    if config.tls_cert_path is not None and cert:
        content = read_secret_file(config.tls_cert_path, "lnd.tls_cert_path", data_dir=data_dir)
        cert_pem = cert_to_pem(content)
    return LndCredentials(config.rest_host, macaroon, cert_pem)


def macaroon_bytes(content: bytes) -> bytes:
    """A macaroon file is binary; accept a hex dump of one too."""
    text = content.strip()
    try:
        return bytes.fromhex(text.decode("ascii")) if text.isascii() else content
    except ValueError:
        return content


def cert_to_pem(content: bytes) -> str:
    """A certificate file's content as PEM (LND writes PEM; a DER file is accepted too)."""
    if b"-----BEGIN CERTIFICATE-----" in content:
        return content.decode("ascii", "replace")
    return ssl.DER_cert_to_PEM_cert(content)
