"""Parse ``lndconnect://`` URIs (pure).

An lndconnect URI carries everything needed to reach an LND node::

    lndconnect://<host>:<port>?cert=<base64url DER certificate>&macaroon=<base64url macaroon>

``cert`` is absent when the node presents a certificate signed by a public CA. Strom talks to
LND's REST interface, so the port must be the REST port (8080 on Umbrel and by default); when
the URI has no port, 8080 is assumed. The macaroon is a secret: :class:`LndConnect` never shows
it in its ``repr``.
"""

from __future__ import annotations

import base64
import binascii
import ssl
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from strom_core.errors import ConfigError

__all__ = ["DEFAULT_REST_PORT", "LndConnect", "parse_lndconnect"]

DEFAULT_REST_PORT = 8080


@dataclass(frozen=True, slots=True)
class LndConnect:
    """The parts of an lndconnect URI."""

    host: str
    port: int
    cert_pem: str | None
    macaroon: bytes = field(repr=False)

    @property
    def base_url(self) -> str:
        """``https://host:port`` (IPv6 hosts bracketed)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def __repr__(self) -> str:
        cert = "pinned" if self.cert_pem else "public CA"
        return f"LndConnect(host={self.host!r}, port={self.port}, cert={cert}, macaroon=<hidden>)"


def parse_lndconnect(uri: str) -> LndConnect:
    """Parse an lndconnect URI.

    Args:
        uri: ``lndconnect://host:port?cert=…&macaroon=…``.

    Returns:
        Host, port, the certificate as PEM (or None) and the macaroon bytes.

    Raises:
        ConfigError: the URI is not an lndconnect URI, or a part is missing or not base64url.
            The message never contains the macaroon.
    """
    text = uri.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"lndconnect URI: cannot parse host and port ({exc})") from None
    if parts.scheme.lower() != "lndconnect":
        raise ConfigError(
            f"lndconnect URI must start with lndconnect://, found {parts.scheme or 'nothing'}://"
        )
    if not parts.hostname:
        raise ConfigError("lndconnect URI has no host")
    query = parse_qs(parts.query, keep_blank_values=True)
    macaroons = query.get("macaroon", [])
    if len(macaroons) != 1 or not macaroons[0]:
        raise ConfigError("lndconnect URI must carry exactly one macaroon=… parameter")
    macaroon = _b64url("macaroon", macaroons[0])
    certs = query.get("cert", [])
    if len(certs) > 1:
        raise ConfigError("lndconnect URI carries more than one cert=… parameter")
    cert_pem = None
    if certs and certs[0]:
        der = _b64url("cert", certs[0])
        cert_pem = ssl.DER_cert_to_PEM_cert(der)
    return LndConnect(
        host=parts.hostname,
        port=port or DEFAULT_REST_PORT,
        cert_pem=cert_pem,
        macaroon=macaroon,
    )


def _b64url(what: str, value: str) -> bytes:
    # parse_qs turned any '+' of a standard-base64 value into a space: undo that, and accept
    # both alphabets, with or without padding.
    text = value.replace(" ", "+").strip().translate(str.maketrans("+/", "-_")).rstrip("=")
    text += "=" * (-len(text) % 4)
    try:
        decoded = base64.b64decode(text.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConfigError(f"lndconnect URI: the {what} parameter is not base64url") from None
    if not decoded:
        raise ConfigError(f"lndconnect URI: the {what} parameter is empty")
    return decoded
