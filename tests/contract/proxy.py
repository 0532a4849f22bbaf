"""A TCP proxy on 127.0.0.1 that can break the connection to a real peer on purpose.

Strom's backend talks to the proxy, the proxy to the peer (LNbits). Two faults:

* :meth:`ChaosProxy.outage`: every open connection is cut and new ones are closed at once
  until the block ends (the node is unreachable; the websocket drops);
* :meth:`ChaosProxy.drop_response_to`: the next request containing a marker is delivered to
  the peer, but the connection is cut as soon as the peer starts answering, so the client
  never learns the outcome (the classic "did my payment go through?").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class ChaosProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._refusing = False
        self._drop_marker: bytes | None = None
        self._links: set[asyncio.Task[None]] = set()
        self.port = 0
        self.dropped = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._cut_all()
        if self._server is not None:
            await self._server.wait_closed()

    def drop_response_to(self, marker: bytes) -> None:
        self._drop_marker = marker

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        self._refusing = True
        await self._cut_all()
        try:
            yield
        finally:
            self._refusing = False

    async def _cut_all(self) -> None:
        links = list(self._links)
        for link in links:
            link.cancel()
        if links:
            await asyncio.wait(links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._links.add(task)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            self._links.discard(task)
            return
        cut = asyncio.Event()
        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._pump_up(reader, upstream_writer, cut))
                    group.create_task(self._pump_down(upstream_reader, writer, cut))
            except* (ConnectionError, OSError):
                pass  # one side hung up (or was cut): the link is over
        except asyncio.CancelledError:
            pass  # cut by outage() or stop(): end this link quietly
        finally:
            for stream in (writer, upstream_writer):
                stream.transport.abort()
            self._links.discard(task)

    async def _pump_up(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        while data := await reader.read(65536):
            if self._drop_marker is not None and self._drop_marker in data:
                self._drop_marker = None
                cut.set()
            writer.write(data)
            await writer.drain()
        raise ConnectionError("client closed")

    async def _pump_down(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cut: asyncio.Event
    ) -> None:
        while data := await reader.read(65536):
            if cut.is_set():
                self.dropped += 1
                raise ConnectionError("cut on purpose")
            writer.write(data)
            await writer.drain()
        raise ConnectionError("peer closed")
