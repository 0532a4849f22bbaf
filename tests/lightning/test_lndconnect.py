"""lndconnect URIs: the second way to configure LND."""

from __future__ import annotations

import base64
import ssl

import pytest

from strom_core.errors import ConfigError
from strom_lightning import parse_lndconnect
from tests.lightning.tls import TlsPair


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_full_uri_gives_host_port_pinned_cert_and_macaroon(lnd_tls: TlsPair) -> None:
    der = ssl.PEM_cert_to_DER_cert(lnd_tls.pem)
    macaroon = bytes(range(64))

    parsed = parse_lndconnect(
        f"lndconnect://umbrel.local:8080?cert={b64url(der)}&macaroon={b64url(macaroon)}"
    )

    assert (parsed.host, parsed.port) == ("umbrel.local", 8080)
    assert parsed.macaroon == macaroon
    assert parsed.cert_pem is not None
    assert ssl.PEM_cert_to_DER_cert(parsed.cert_pem) == der
    assert parsed.base_url == "https://umbrel.local:8080"


def test_without_cert_or_port_it_trusts_public_cas_on_the_rest_port() -> None:
    parsed = parse_lndconnect(f"lndconnect://node.example.com?macaroon={b64url(b'mac')}")

    assert parsed.cert_pem is None
    assert parsed.port == 8080


def test_ipv6_hosts_and_standard_base64_are_accepted() -> None:
    macaroon = b"\xfb\xff\xfe" * 20  # encodes with + and / in standard base64
    standard = base64.b64encode(macaroon).decode()

    parsed = parse_lndconnect(f"lndconnect://[::1]:8081?macaroon={standard}")

    assert parsed.host == "::1"
    assert parsed.base_url == "https://[::1]:8081"
    assert parsed.macaroon == macaroon


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("https://node:8080?macaroon=AA", "must start with lndconnect://"),
        ("lndconnect://node:8080?cert=AAAA", "exactly one macaroon"),
        ("lndconnect://node:8080?macaroon=", "exactly one macaroon"),
        ("lndconnect://node:8080?macaroon=%%%%", "not base64url"),
        ("lndconnect://node:99999?macaroon=AA", "port"),
        ("lndconnect://:8080?macaroon=AA", "no host"),
        ("lndconnect://node?macaroon=AA&cert=AA&cert=BB", "more than one cert"),
    ],
)
def test_bad_uris_are_refused_clearly(uri: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_lndconnect(uri)


def test_the_macaroon_never_shows_in_repr_or_errors() -> None:
    secret = b"super-secret-macaroon-bytes"
    encoded = b64url(secret)

    parsed = parse_lndconnect(f"lndconnect://node:8080?macaroon={encoded}")

    assert encoded not in repr(parsed)
    assert secret.hex() not in repr(parsed)
    assert "hidden" in repr(parsed)
    with pytest.raises(ConfigError) as refused:
        parse_lndconnect(f"lndconnect://node:8080?macaroon={encoded}&cert=%%%")
    assert encoded not in str(refused.value)
