"""Who is asking: the client's address behind trusted reverse proxies, and its rate-limit key.

Theory of operation. Without a proxy the client is the TCP peer. Behind a reverse proxy the peer
is the proxy, and the client's address is in a header the proxy adds: ``X-Forwarded-For``
(``client, proxy1, proxy2``; the default, what nginx, Caddy, Traefik and HAProxy send) or
``Forwarded`` (RFC 7239, ``for=client, for=proxy1``), whichever ``server.forwarded_header``
names. Only one of the two is read: a proxy that appends to one passes the other through from
the client untouched, so reading both would let anyone choose their address.

A header is read only when the peer is one of ``server.trusted_proxies``. Each proxy appends the
address it received the request from, so the chain is read from the right: every address that
is itself a trusted proxy is skipped, and the first one that is not is the client ("rightmost
untrusted"). Whatever a client writes into the header itself ends up left of that, so it
cannot choose its address by prepending. When every address in the chain is trusted the
leftmost is the client. A hop that is not an IP address (``unknown``, an obfuscated name,
garbage) where the walk needs one, or an element without ``for=``, makes the header unusable:
the client is then the peer — a client that breaks the header shares the proxy's bucket and
gains nothing.

Rate limits count per client *key*: an IPv4 address, or the /64 network of an IPv6 address
(one subscriber line or phone usually gets a whole /64 and may use a fresh address for every
request). An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, what a dual-stack socket reports
for an IPv4 peer) is its IPv4 address, for the trusted list and the key alike.

Every part of the HTTP server that needs a client address — rate limits, log lines — asks
:func:`client_of`, which reads the one :class:`ClientAddresses` the composition root puts on
the application (:data:`CLIENTS`).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import hdrs, web

__all__ = [
    "CLIENTS",
    "Client",
    "ClientAddresses",
    "ForwardedHeader",
    "IpAddress",
    "IpNetwork",
    "client_of",
    "parse_hop",
]

log = logging.getLogger(__name__)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
ForwardedHeader = Literal["X-Forwarded-For", "Forwarded"]

IPV6_PREFIX: Final = 64
"""IPv6 clients are counted per network of this prefix length."""

_PORT = re.compile(r":[0-9]{1,5}")


@dataclass(frozen=True, slots=True)
class Client:
    """One client as the server sees it.

    Attributes:
        address: its IP address (or the peer's text when that is not one), for log lines.
        key: what rate limits count it under: the IPv4 address, or the IPv6 /64.
    """

    address: str
    key: str


def _plain(address: IpAddress) -> IpAddress:
    """Without a zone, and an IPv4-mapped IPv6 address as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            return ipaddress.IPv6Address(str(address).split("%", 1)[0])
    return address


def _address(text: str) -> IpAddress | None:
    try:
        return _plain(ipaddress.ip_address(text))
    except ValueError:
        return None


def parse_hop(text: str) -> IpAddress | None:
    """The address of one hop of a forwarding header, or None when it names none.

    Accepted: ``192.0.2.1``, ``192.0.2.1:4711``, ``2001:db8::1``, ``[2001:db8::1]`` and
    ``[2001:db8::1]:4711``. Refused: ``unknown``, obfuscated names (``_hidden``), anything else.
    """
    text = text.strip()
    if text.startswith("["):
        inside, bracket, port = text[1:].partition("]")
        if not bracket or (port and not _PORT.fullmatch(port)):
            return None
        address = _address(inside)
        return address if isinstance(address, ipaddress.IPv6Address) else None
    host, colon, port = text.partition(":")
    if colon and ":" not in port:  # IPv4 with a port; a bare IPv6 has more than one colon
        if not _PORT.fullmatch(colon + port):
            return None
        address = _address(host)
        return address if isinstance(address, ipaddress.IPv4Address) else None
    return _address(text)


def _key(address: IpAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


def _client(address: IpAddress) -> Client:
    return Client(address=str(address), key=_key(address))


class ClientAddresses:
    """Finds the client of a request (see the module docstring for the rule).

    Args:
        trusted_proxies: addresses and networks of the reverse proxies in front of Strom
            (``server.trusted_proxies``); empty when clients connect directly.
        header: the forwarding header those proxies set (``server.forwarded_header``).
    """

    def __init__(
        self,
        trusted_proxies: Iterable[str | IpNetwork] = (),
        header: ForwardedHeader = "X-Forwarded-For",
    ) -> None:
        self.trusted = tuple(
            ipaddress.ip_network(entry) if isinstance(entry, str) else entry
            for entry in trusted_proxies
        )
        self.header = header
        self._warned = False

    def is_trusted(self, address: IpAddress) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        return any(address in network for network in self.trusted)

    def client(self, request: web.Request) -> Client:
        """The client of ``request``: its address for logs and its rate-limit key."""
        remote = request.remote or "unknown"
        peer = _address(remote)
        if peer is None:  # not an IP socket (a Unix socket, a test transport)
            return Client(address=remote, key=remote)
        if not self.trusted:
            self._warn_unconfigured(request, peer)
            return _client(peer)
        if not self.is_trusted(peer):
            return _client(peer)
        hops = self._hops(request)
        client = peer
        for hop in reversed(hops):
            address = None if hop is None else parse_hop(hop)
            if address is None:
                log.debug("client %s: unusable %s header; counted as the proxy", peer, self.header)
                return _client(peer)
            client = address
            if not self.is_trusted(address):
                break
        return _client(client)

    def _hops(self, request: web.Request) -> Sequence[str | None]:
        """The header's chain, left (client side) to right (nearest proxy)."""
        if self.header == "Forwarded":
            # aiohttp parses RFC 7239 (quoted strings, escapes) into one mapping per element.
            return [element.get("for") for element in request.forwarded]
        values = request.headers.getall(hdrs.X_FORWARDED_FOR, ())
        if not values:
            return []
        return [hop.strip() for hop in ",".join(values).split(",")]

    def _warn_unconfigured(self, request: web.Request, peer: IpAddress) -> None:
        # A proxy on this host or the LAN forwards for everyone: say once that they all share
        # one rate-limit bucket until it is trusted.
        if self._warned or not (peer.is_loopback or peer.is_private):
            return
        if hdrs.X_FORWARDED_FOR in request.headers or hdrs.FORWARDED in request.headers:
            self._warned = True
            log.warning(
                "requests from %s carry a forwarding header, but server.trusted_proxies is "
                "empty: every client behind that proxy shares one rate limit; list the proxy "
                "in server.trusted_proxies",
                peer,
            )


CLIENTS: Final = web.AppKey("strom_clients", ClientAddresses)
"""Where the composition root puts the server's :class:`ClientAddresses`."""

_DIRECT: Final = ClientAddresses()


def client_of(request: web.Request) -> Client:
    """The client of ``request``, by the rule of the application's :data:`CLIENTS`.

    Without one configured (an application built in a test), no proxy is trusted.
    """
    addresses = request.config_dict.get(CLIENTS, _DIRECT)
    return addresses.client(request)
