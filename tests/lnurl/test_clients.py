"""Who the client is behind reverse proxies: the "rightmost untrusted" rule and the /64 key.

The requests are aiohttp's own (``make_mocked_request``), so the headers go through aiohttp's
parsing exactly as on the server; ``clone(remote=…)`` sets the TCP peer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from strom.config import load_config
from strom.scaffold import write_scaffold
from strom_core.errors import ConfigError
from strom_web.clients import Client, ClientAddresses, ForwardedHeader, parse_hop

PROXIES = ("10.0.0.0/8", "2001:db8:ffff::/48")


def request(peer: str, *headers: tuple[str, str]) -> web.Request:
    made = make_mocked_request("GET", "/lnurlp/cp-1/1/callback", headers=CIMultiDict(headers))
    return made.clone(remote=peer)


def client(
    peer: str,
    *headers: tuple[str, str],
    trusted: tuple[str, ...] = PROXIES,
    header: ForwardedHeader = "X-Forwarded-For",
) -> Client:
    return ClientAddresses(trusted, header).client(request(peer, *headers))


def xff(value: str) -> tuple[str, str]:
    return ("X-Forwarded-For", value)


def fwd(value: str) -> tuple[str, str]:
    return ("Forwarded", value)


def test_a_direct_client_is_its_peer_and_its_headers_are_ignored() -> None:
    spoof = xff("198.51.100.1"), fwd("for=198.51.100.2")
    assert client("203.0.113.9", *spoof) == Client("203.0.113.9", "203.0.113.9")
    assert client("203.0.113.9", *spoof, header="Forwarded").key == "203.0.113.9"
    # With no proxy trusted at all, a header from anywhere (even loopback) means nothing.
    assert client("127.0.0.1", *spoof, trusted=()).key == "127.0.0.1"


def test_behind_a_trusted_proxy_the_client_is_the_address_it_forwards() -> None:
    assert client("10.0.0.2", xff("198.51.100.1")) == Client("198.51.100.1", "198.51.100.1")
    assert client("10.0.0.2", fwd("for=198.51.100.1"), header="Forwarded").key == "198.51.100.1"


def test_a_client_cannot_choose_its_address_by_prepending_to_the_header() -> None:
    # The client sent "X-Forwarded-For: 192.0.2.66"; the proxy appended the real address.
    assert client("10.0.0.2", xff("192.0.2.66, 198.51.100.1")).key == "198.51.100.1"
    assert client("10.0.0.2", xff("10.0.0.7, 198.51.100.1")).key == "198.51.100.1"
    forwarded = fwd('for=192.0.2.66, for="198.51.100.1:51000"')
    assert client("10.0.0.2", forwarded, header="Forwarded").key == "198.51.100.1"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    chain = xff("192.0.2.66, 198.51.100.1, 10.1.1.1, 2001:db8:ffff::5")
    assert client("10.0.0.2", chain).key == "198.51.100.1"
    forwarded = fwd(
        'for=192.0.2.66;proto=https, for="[2001:db8:1:2::abc]:4711", '
        'for=10.1.1.1;by="[2001:db8:ffff::1]", for="[2001:db8:ffff::5]"'
    )
    found = client("10.0.0.2", forwarded, header="Forwarded")
    assert found == Client("2001:db8:1:2::abc", "2001:db8:1:2::/64")
    # Several header lines are one list, in order.
    two_lines = client("10.0.0.2", xff("198.51.100.1"), xff("10.1.1.1"))
    assert two_lines.key == "198.51.100.1"
    two_fields = client(
        "10.0.0.2", fwd("for=198.51.100.1"), fwd("for=10.1.1.1"), header="Forwarded"
    )
    assert two_fields.key == "198.51.100.1"


def test_when_every_hop_is_trusted_the_leftmost_is_the_client() -> None:
    assert client("10.0.0.2", xff("10.9.9.9, 10.1.1.1")).key == "10.9.9.9"


def test_only_the_configured_header_is_read() -> None:
    # A proxy that appends X-Forwarded-For passes a client's own Forwarded header through.
    both = xff("198.51.100.1"), fwd("for=192.0.2.66")
    assert client("10.0.0.2", *both).key == "198.51.100.1"
    assert client("10.0.0.2", *both, header="Forwarded").key == "192.0.2.66"
    assert client("10.0.0.2", fwd("for=192.0.2.66")).key == "10.0.0.2"


@pytest.mark.parametrize(
    "value",
    [
        "unknown",
        "_hidden",
        "garbage, 198.51.100.1 junk",
        "198.51.100.1,",
        "",
        "2001:db8::1:99999",
        "[2001:db8::1",
        "[192.0.2.1]:80",
        "198.51.100.1:http",
        "300.1.2.3",
    ],
)
def test_a_malformed_x_forwarded_for_counts_as_the_proxy(value: str) -> None:
    assert client("10.0.0.2", xff(value)) == Client("10.0.0.2", "10.0.0.2")


@pytest.mark.parametrize(
    "value",
    [
        "for=unknown",
        "for=_hidden",
        "proto=https",  # an element without for=
        'for="198.51.100.1',  # an unterminated quoted string
        "for=2001:db8::1",  # IPv6 must be quoted and bracketed
        'for="[2001:db8::1]:port"',
        "for=198.51.100.1, proto=https",
        "\x00\x01",
    ],
)
def test_a_malformed_forwarded_header_counts_as_the_proxy(value: str) -> None:
    assert client("10.0.0.2", fwd(value), header="Forwarded").key == "10.0.0.2"


def test_garbage_left_of_the_client_is_never_read() -> None:
    assert client("10.0.0.2", xff("not an address, 198.51.100.1")).key == "198.51.100.1"
    forwarded = fwd("for=unknown, for=198.51.100.1")
    assert client("10.0.0.2", forwarded, header="Forwarded").key == "198.51.100.1"


def test_ipv6_clients_share_a_bucket_per_64() -> None:
    first = client("2001:db8:1:2::1").key
    assert first == "2001:db8:1:2::/64"
    assert client("2001:db8:1:2:ffff:ffff:ffff:ffff").key == first
    assert client("2001:db8:1:3::1").key != first
    assert client("10.0.0.2", xff("2001:db8:1:2::77")).key == first
    # An IPv4 client is counted per address.
    assert client("198.51.100.1").key != client("198.51.100.2").key


def test_an_ipv4_mapped_address_is_the_ipv4_address() -> None:
    assert client("::ffff:198.51.100.1") == Client("198.51.100.1", "198.51.100.1")
    # A dual-stack socket reports the proxy mapped too: it is still trusted.
    assert client("::ffff:10.0.0.2", xff("198.51.100.1")).key == "198.51.100.1"
    assert client("10.0.0.2", xff("::ffff:198.51.100.1")).key == "198.51.100.1"


def test_a_trusted_ipv6_proxy_and_a_zone_id() -> None:
    assert client("2001:db8:ffff::1", xff("198.51.100.1")).key == "198.51.100.1"
    assert client("fe80::1%eth0").key == "fe80::/64"


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("192.0.2.1:4711", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("unknown", None),
        ("192.0.2.1:", None),
        ("[2001:db8::1]4711", None),
    ],
)
def test_parse_hop(text: str, address: str | None) -> None:
    parsed = parse_hop(text)
    assert (None if parsed is None else str(parsed)) == address


def test_a_proxy_that_is_not_trusted_yet_is_pointed_out_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    addresses = ClientAddresses()
    with caplog.at_level(logging.WARNING, logger="strom_web.clients"):
        for _ in range(3):
            assert addresses.client(request("127.0.0.1", xff("198.51.100.1"))).key == "127.0.0.1"
        addresses.client(request("203.0.113.9", xff("198.51.100.1")))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "server.trusted_proxies" in warnings[0]


def test_trusted_proxies_are_read_from_the_config_and_a_bad_entry_is_named(
    tmp_path: Path,
) -> None:
    write_scaffold(tmp_path)
    config = load_config(
        tmp_path / "strom.toml",
        environ={"STROM_SERVER__TRUSTED_PROXIES": '["127.0.0.1", "fd00::/8"]'},
    )
    assert config.server.trusted_proxies == ("127.0.0.1/32", "fd00::/8")
    assert config.server.forwarded_header == "X-Forwarded-For"
    assert load_config(tmp_path / "strom.toml", environ={}).server.trusted_proxies == ()
    for entry, says in [
        ("10.0.0.1/8", "did you mean '10.0.0.0/8'?"),
        ("nginx", "expected an IP address"),
        ("2001:db8::/129", "expected an IP address"),
    ]:
        with pytest.raises(ConfigError) as refused:
            load_config(
                tmp_path / "strom.toml",
                environ={"STROM_SERVER__TRUSTED_PROXIES": f'["127.0.0.1", "{entry}"]'},
            )
        assert "trusted_proxies" in refused.value.message
        assert entry in refused.value.message
        assert says in refused.value.message
    with pytest.raises(ConfigError, match="forwarded_header"):
        load_config(
            tmp_path / "strom.toml", environ={"STROM_SERVER__FORWARDED_HEADER": "X-Real-IP"}
        )
