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
from pathlib import Path
from urllib.parse import urlsplit

from agent.nostr_sdk_adapter import SdkLocalRelay

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


class RestartableRelay:
    """An in-process relay at a fixed address that can go away and come back empty.

    The address belongs to a forwarder of this process; each :meth:`start` puts a fresh
    nostr-sdk relay (on a port of its own) behind it. Starting a new nostr-sdk relay on the
    port the old one had is a race with its shutdown: the old listener lets go "a moment" later,
    and CI saw that moment exceed ten seconds. Python's own listener is closed at once by
    :meth:`shutdown`, so the next :meth:`start` binds again without waiting. While it is stopped
    the address refuses connections, as a relay that is down does.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = unused_port(host)
        self.url = f"ws://{host}:{self.port}"
        self._relay: SdkLocalRelay | None = None
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        """Serve a new, empty relay at :attr:`url` (returned)."""
        self.shutdown()
        relay = SdkLocalRelay(host=self.host)
        inner = urlsplit(await relay.start())
        assert inner.port is not None
        self._relay = relay
        self._server = await asyncio.start_server(
            lambda reader, writer: self._forward(reader, writer, inner.port or 0),
            self.host,
            self.port,
            reuse_address=True,
        )
        return self.url

    def shutdown(self) -> None:
        """Stop serving and drop every connection (idempotent)."""
        if self._server is not None:
            self._server.close()  # the listening socket is closed now, not later
            self._server = None
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        if self._relay is not None:
            self._relay.shutdown()
            self._relay = None

    async def _forward(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, inner_port: int
    ) -> None:
        pair = {writer}
        self._writers.add(writer)
        try:
            inner_reader, inner_writer = await asyncio.open_connection(self.host, inner_port)
            pair.add(inner_writer)
            self._writers.add(inner_writer)
            await asyncio.gather(_pipe(reader, inner_writer), _pipe(inner_reader, writer))
        except (OSError, asyncio.CancelledError):
            # The relay behind went away, or the loop ends under a live connection: nobody
            # awaits this task, so it ends quietly instead of being logged as an error.
            pass
        finally:
            for each in pair:
                each.close()
            self._writers -= pair


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy bytes until either side closes, then close the other."""
    try:
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.close()
