"""A port for a server that must be told its port before it starts (a child process, a relay
restarted on the same address).

A server started in this process binds port 0 and reports its port instead (Strom:
``server.port = 0`` / ``ocpp.port = 0``, then ``Strom.http_port`` / ``Strom.ocpp_port``).
Where that is not possible, picking a port by binding port 0 and closing it is a race: the
kernel hands out the same ephemeral range to every port-0 bind and every outgoing
connection, so the port may be taken before the server binds it (seen in CI while LNbits
started). :func:`unused_port` picks from below that range instead, where only an explicit
bind can take a port, at random so that parallel runs rarely try the same one.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path

from agent.nostr_sdk_adapter import SdkLocalRelay
from strom_core.errors import RelayError

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000  # below are many well-known services' ports


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for ephemeral ports (Linux; the IANA range elsewhere)."""
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 49152, 65535
    return low, high


def unused_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing listens on, outside the ephemeral range."""
    low, high = ephemeral_range()
    candidates = range(_LOWEST, low) if low - _LOWEST >= 1000 else range(high + 1, 65536)
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.choice(candidates)
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {candidates.start}..{candidates.stop - 1} on {host}")


async def relay_on(port: int, within_s: float = 10) -> SdkLocalRelay:
    """A fresh in-process relay on ``port``, as soon as a relay stopped there let go of it.

    nostr-sdk's relay closes its listening socket a moment after ``shutdown()``; starting
    another one on the port at once fails with "address already in use".
    """
    deadline = time.monotonic() + within_s
    while True:
        relay = SdkLocalRelay(port=port)
        try:
            await relay.start()
        except RelayError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)  # the port is not released yet: try again
            continue
        return relay
