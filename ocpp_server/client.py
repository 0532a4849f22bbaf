"""The charge-point end of an OCPP-J connection, for the simulated charge point.

Version-neutral: :class:`OcppClient` opens the websocket (the version's subprotocol, HTTP Basic
auth, TLS), reads frames through the same sans-IO :class:`~ocpp_server.peer.OcppJPeer` as the
server, hands each CALL from the central system to its ``serve`` callback and sends the
answer, and sends the charge point's own CALLs through a :class:`~ocpp_server.link.CallLink`.
What the CALLs mean is the simulated charge point's business (:mod:`ocpp_server.sim_base`
and the version's ``charge_point`` module).

Each connection owns an :class:`asyncio.TaskGroup`: the reader, the work started when the
connection opens, and whatever :meth:`OcppClient.spawn` starts end together when it drops.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from ocpp_server.link import CallLink, CallTimedOut, LinkLost
from ocpp_server.ocppj import Call, CallError, CallResult
from ocpp_server.peer import Answered, IgnoredKind, IncomingCall, OcppJPeer, Refused

__all__ = ["Answer", "CallFailed", "OcppClient"]


class CallFailed(Exception):
    """A CALL from the charge point got a CALLERROR, no answer, or the connection dropped."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


@dataclass(frozen=True, slots=True)
class Answer:
    """How to answer a CALL.

    Attributes:
        payload: the CALLRESULT payload.
        error: a CALLERROR (code, description) instead.
        then: the work the request asks for, run once the answer is sent.
    """

    payload: Mapping[str, Any] = field(default_factory=dict)
    error: tuple[str, str] | None = None
    then: Callable[[], Awaitable[Any]] | None = None


@dataclass(slots=True)
class _Connection:
    ws: ClientConnection
    tg: asyncio.TaskGroup
    peer: OcppJPeer
    link: CallLink
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` until it ends or the connection does."""
        task = self.tg.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def end(self) -> None:
        """The websocket closed: stop everything the connection runs."""
        for task in self.tasks:
            task.cancel()


class OcppClient:
    """One charge point's websocket to a central system (see the module docstring).

    Args:
        endpoint: the full websocket URL (``ws://host:9000/ocpp/<charger id>``).
        subprotocol: the OCPP version's websocket subprotocol.
        charger_id: the Basic auth user name.
        serve: answers one CALL from the central system.
        on_problem: told about frames that break OCPP-J (unreadable, malformed).
        on_change: awaited when the connection opens or closes.
        ca_file: CA certificate to trust for ``wss://`` (the system store when None).
        call_timeout_s: how long to wait for the central system's answers.
        monotonic: the clock of CALL deadlines.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        subprotocol: str,
        charger_id: str,
        serve: Callable[[Call], Awaitable[Answer]],
        on_problem: Callable[[str], None],
        on_change: Callable[[], Awaitable[None]],
        ca_file: Path | None = None,
        call_timeout_s: float = 30.0,
        monotonic: Callable[[], float],
    ) -> None:
        self.endpoint = endpoint
        self.subprotocol = subprotocol
        self.charger_id = charger_id
        self.password: str | None = None  # the AuthorizationKey; changes take effect on connect
        # Security profile 3: (certificate chain PEM, private key PEM) presented over wss://;
        # changes take effect on connect.
        self.client_certificate: tuple[bytes, bytes] | None = None
        self._serve = serve
        self._on_problem = on_problem
        self._on_change = on_change
        self._ca_file = ca_file
        self._call_timeout_s = call_timeout_s
        self._monotonic = monotonic
        self._connection: _Connection | None = None

    @property
    def connected(self) -> bool:
        """Whether a websocket is open now."""
        return self._connection is not None

    def drop(self) -> None:
        """Lose the connection as a network failure would."""
        connection = self._connection
        if connection is not None:
            connection.ws.transport.abort()

    def spawn(self, work: Callable[[], Awaitable[Any]]) -> None:
        """Run ``work()`` in the open connection's TaskGroup (nothing when not connected)."""
        connection = self._connection
        if connection is not None:
            connection.start(_ending_on_failure(connection, work))

    async def connect_once(self, on_open: Callable[[], Awaitable[None]]) -> None:
        """Connect, run ``on_open()`` next to the reader, and return when the connection ends.

        A drop, and a CALL failing because of it, end the connection quietly.

        Raises:
            websockets.exceptions.InvalidStatus: the central system refused the handshake.
            OSError, TimeoutError: it cannot be reached.
        """
        async with connect(
            self.endpoint,
            subprotocols=[Subprotocol(self.subprotocol)],
            additional_headers=self._headers(),
            ssl=self._ssl(),
            ping_interval=None,
            open_timeout=10,
        ) as ws:
            # No task of the group ends with an error when the connection drops (each one
            # ends quietly, see _ending_on_failure and _read), because a task group lets a
            # child's error win over a cancellation from outside: a charger powered off just
            # as its connection drops would otherwise swallow the cancel and run on.
            try:
                async with asyncio.TaskGroup() as tg:
                    peer = OcppJPeer("c")
                    link = CallLink(peer, lambda frame, _call: ws.send(frame), self._monotonic)
                    connection = _Connection(ws, tg, peer, link)
                    self._connection = connection
                    await self._on_change()
                    tg.create_task(self._read(connection))
                    connection.start(_ending_on_failure(connection, on_open))
            finally:
                self._connection = None
                await self._on_change()

    async def call(self, action: str, payload: Mapping[str, Any]) -> CallResult | CallError:
        """Send a CALL and return its answer (unvalidated).

        Raises:
            CallFailed: no answer in time (``Timeout``) or no connection (``Disconnected``).
        """
        connection = self._connection
        if connection is None:
            raise CallFailed("Disconnected", "not connected")
        try:
            return await connection.link.call(action, payload, timeout_s=self._call_timeout_s)
        except CallTimedOut:
            raise CallFailed("Timeout", f"no answer to {action}") from None
        except LinkLost:
            raise CallFailed("Disconnected", f"connection lost during {action}") from None

    def _headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        token = f"{self.charger_id}:{self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(token).decode()}

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.endpoint.startswith("wss:"):
            return None
        context = ssl.create_default_context()
        if self._ca_file is not None:
            context.load_verify_locations(self._ca_file)
        if self.client_certificate is not None:
            chain, key = self.client_certificate
            # ssl loads a certificate only from a file: a private temporary one.
            with tempfile.TemporaryDirectory() as folder:
                path = Path(folder) / "client.pem"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(key + b"\n" + chain)
                context.load_cert_chain(path)
        return context

    async def _read(self, connection: _Connection) -> None:
        try:
            while True:
                message = await connection.ws.recv()
                received = connection.peer.receive(message)
                if isinstance(received, IncomingCall):
                    await self._answer(connection, received.call)
                elif isinstance(received, Answered):
                    connection.link.deliver(received)
                elif isinstance(received, Refused):
                    self._on_problem(str(received.error))
                    await connection.ws.send(received.reply)
                elif received.kind is IgnoredKind.UNREADABLE:
                    text = message if isinstance(message, str) else ""
                    self._on_problem(f"unreadable frame: {text[:200]}")
        except ConnectionClosed:
            connection.link.lose()
            connection.end()

    async def _answer(self, connection: _Connection, call: Call) -> None:
        answer = await self._serve(call)
        if answer.error is not None:
            code, description = answer.error
            await connection.ws.send(connection.peer.refuse(call.unique_id, code, description))
            return
        await connection.ws.send(connection.peer.answer(call, answer.payload))
        if answer.then is not None:
            connection.start(_quietly(answer.then))


async def _ending_on_failure(connection: _Connection, work: Callable[[], Awaitable[Any]]) -> None:
    # A CALL of the charge point's own that fails (no answer, a drop) ends the connection,
    # and the charger connects again, as a real one does.
    try:
        await work()
    except (CallFailed, ConnectionClosed):
        connection.ws.transport.abort()


async def _quietly(work: Callable[[], Awaitable[Any]]) -> None:
    # Work a CALL asks for runs after its answer was sent; its own CALLs may fail.
    with contextlib.suppress(CallFailed):
        await work()
