"""Two charge points the session suite drives the same way.

* :class:`PythonDriver`: raw websockets plus Strom's own framing and schema checks.
* :class:`OcppRpcDriver`: ocpp-rpc (npm, by mikuso) in a Node process, an OCPP-J stack that
  shares no code with Strom or the Python ``ocpp`` library and validates both directions
  against its own OCPP 1.6 or 2.0.1 schemas in strict mode.

Both raise :class:`HandshakeRefused` when the HTTP upgrade is refused and
:class:`CallErrorReceived` when the server answers a CALL with a CALLERROR; both answer the
server's CALLs from canned answers and record them; both record schema failures they saw in
what the server sent (``validation_failures``), which every test expects to stay empty.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ocpp_server.ocppj import (
    Call,
    FrameRejected,
    UnreadableFrame,
    pack_call,
    pack_error,
    pack_result,
    parse_frame,
)
from ocpp_server.v16 import schemas as v16_schemas
from ocpp_server.v201 import schemas as v201_schemas
from tests.conftest import peer_missing

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "peers" / "ocpp_rpc_install.sh"
NODE_DRIVER = REPO / "tests" / "peers" / "ocpp_rpc_driver.js"

DEFAULT_ANSWERS: dict[str, dict[str, Any]] = {
    "GetConfiguration": {"configurationKey": []},
    "UnlockConnector": {"status": "Unlocked"},
    "DataTransfer": {"status": "UnknownVendorId"},
    # Strom asks every charger after its boot (its local list of the operator's cards)
    "GetLocalListVersion": {"listVersion": 0},
}

# OCPP 2.0.1 answers whose schema needs more than a status.
DEFAULT_ANSWERS_201: dict[str, dict[str, Any]] = {
    **DEFAULT_ANSWERS,
    "GetLocalListVersion": {"versionNumber": 0},
    "CostUpdated": {},
    "SetVariables": {
        "setVariableResult": [
            {
                "attributeStatus": "Accepted",
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedInterval"},
            }
        ]
    },
    "GetVariables": {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "60",
                "component": {"name": "SampledDataCtrlr"},
                "variable": {"name": "TxUpdatedInterval"},
            }
        ]
    },
}

_ACCEPTED: dict[str, Any] = {"status": "Accepted"}

# The schemas and canned answers of each OCPP version a driver can speak.
_VERSIONS: dict[str, tuple[Any, dict[str, dict[str, Any]]]] = {
    "ocpp1.6": (v16_schemas, DEFAULT_ANSWERS),
    "ocpp2.0.1": (v201_schemas, DEFAULT_ANSWERS_201),
}


async def handshake_status(
    url: str, identity: str, password: str | None, *, source: str | None = None
) -> int:
    """The HTTP status of one OCPP handshake at ``url/identity`` (101: admitted, then closed)."""
    headers = {}
    if password is not None:
        token = base64.b64encode(f"{identity}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    extra: dict[str, Any] = {"local_addr": (source, 0)} if source else {}
    try:
        async with connect(
            f"{url}/{identity}",
            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            additional_headers=headers,
            open_timeout=120,
            **extra,
        ):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


class HandshakeRefused(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class CallErrorReceived(Exception):
    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


class ChargePointDriver(Protocol):
    kind: str
    validation_failures: list[str]

    async def connect(
        self,
        url: str,
        identity: str,
        password: str | None = None,
        *,
        ca: Path | None = None,
        protocols: tuple[str, ...] = ("ocpp1.6",),
    ) -> None: ...

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]: ...

    async def raw(self, frame: str) -> None: ...

    async def reply_to(self, unique_id: str, within_s: float = 5.0) -> list[Any]: ...

    async def answer(
        self,
        method: str,
        result: Mapping[str, Any] | None = None,
        *,
        error: str | None = None,
        silent: bool = False,
    ) -> None: ...

    async def server_call(self, method: str, within_s: float = 5.0) -> dict[str, Any]: ...

    async def closed(self, within_s: float = 5.0) -> None: ...

    async def close(self, *, force: bool = False) -> None: ...


class _Inbox:
    """Frames and CALLs received, with waiting on a condition (no sleeps)."""

    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.consumed: dict[str, int] = {}
        self.is_closed = False
        self.changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def reply_to(self, unique_id: str, within_s: float) -> list[Any]:
        def found() -> list[Any] | None:
            for frame in self.frames:
                if len(frame) > 1 and frame[0] in (3, 4) and frame[1] == unique_id:
                    return frame
            return None

        async with asyncio.timeout(within_s), self.changed:
            while (frame := found()) is None:
                await self.changed.wait()
            return frame

    async def server_call(self, method: str, within_s: float) -> dict[str, Any]:
        async with asyncio.timeout(within_s), self.changed:
            while True:
                seen = [params for name, params in self.calls if name == method]
                index = self.consumed.get(method, 0)
                if len(seen) > index:
                    self.consumed[method] = index + 1
                    return seen[index]
                await self.changed.wait()

    async def wait_closed(self, within_s: float) -> None:
        async with asyncio.timeout(within_s), self.changed:
            while not self.is_closed:
                await self.changed.wait()


class PythonDriver:
    """A charge point over raw websockets (Strom's own framing and schemas).

    Args:
        version: the OCPP version it speaks (``ocpp1.6`` or ``ocpp2.0.1``): the subprotocol it
            offers by default, the schemas it checks and its canned answers.
    """

    kind = "python"

    def __init__(self, version: str = "ocpp1.6") -> None:
        self.version = version
        self._schemas, self._defaults = _VERSIONS[version]
        self.validation_failures: list[str] = []
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._inbox = _Inbox()
        self._answers: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    async def connect(
        self,
        url: str,
        identity: str,
        password: str | None = None,
        *,
        ca: Path | None = None,
        protocols: tuple[str, ...] | None = None,
        source: str | None = None,
        server_hostname: str | None = None,
    ) -> None:
        if protocols is None:
            protocols = (self.version,)
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{identity}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        context = None
        if ca is not None:
            context = ssl.create_default_context(cafile=str(ca))
        # On Linux all of 127.0.0.0/8 is this machine: a source address there plays a
        # charger (or an attacker) at another address.
        extra: dict[str, Any] = {"local_addr": (source, 0)} if source else {}
        if server_hostname is not None:  # the name the certificate is for, not the URL's host
            extra["server_hostname"] = server_hostname
        try:
            self._ws = await connect(
                f"{url}/{identity}",
                subprotocols=list(protocols) or None,  # type: ignore[arg-type]
                additional_headers=headers,
                ssl=context,
                ping_interval=None,
                **extra,
            )
        except InvalidStatus as exc:
            raise HandshakeRefused(exc.response.status_code) from exc
        self._reader = asyncio.create_task(self._read(self._ws))

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for message in ws:
                await self._on_message(ws, message)
        except ConnectionClosed:
            pass
        finally:
            self._inbox.is_closed = True
            await self._inbox.notify()

    async def _on_message(self, ws: ClientConnection, message: str | bytes) -> None:
        try:
            frame = parse_frame(message)
        except (UnreadableFrame, FrameRejected) as exc:
            self.validation_failures.append(f"unreadable frame from server: {exc}")
            return
        self._inbox.frames.append(json.loads(message))
        if isinstance(frame, Call):
            try:
                self._schemas.validate_call(frame)
            except FrameRejected as exc:
                self.validation_failures.append(f"{frame.action}: {exc}")
                await ws.send(pack_error(frame.unique_id, exc.code, exc.description))
                return
            self._inbox.calls.append((frame.action, frame.payload))
            answer = self._answers.get(frame.action, {})
            if answer.get("error"):
                await ws.send(pack_error(frame.unique_id, answer["error"], "refused by the test"))
            elif not answer.get("silent"):
                result = answer.get("result")
                if result is None:  # an empty answer ({}) is an answer too
                    result = self._defaults.get(frame.action, _ACCEPTED)
                self._schemas.validate_result(frame.action, result)
                await ws.send(pack_result(frame.unique_id, result))
        await self._inbox.notify()

    def peer_certificate(self) -> bytes | None:
        """The certificate the server presented on this connection (DER); None over ws://."""
        assert self._ws is not None
        ssl_object = self._ws.transport.get_extra_info("ssl_object")
        return None if ssl_object is None else ssl_object.getpeercert(binary_form=True)

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        assert self._ws is not None
        unique_id = f"t{next(self._ids)}"
        await self._ws.send(pack_call(Call(unique_id, action, dict(payload))))
        frame = await self._inbox.reply_to(unique_id, 10.0)
        if frame[0] == 4:
            raise CallErrorReceived(frame[2], frame[3])
        try:
            self._schemas.validate_result(action, frame[2])
        except Exception as exc:
            self.validation_failures.append(f"{action} answer: {exc}")
        return dict(frame[2])

    async def raw(self, frame: str) -> None:
        assert self._ws is not None
        await self._ws.send(frame)

    async def reply_to(self, unique_id: str, within_s: float = 5.0) -> list[Any]:
        return await self._inbox.reply_to(unique_id, within_s)

    async def answer(
        self,
        method: str,
        result: Mapping[str, Any] | None = None,
        *,
        error: str | None = None,
        silent: bool = False,
    ) -> None:
        self._answers[method] = {"result": result, "error": error, "silent": silent}

    async def server_call(self, method: str, within_s: float = 5.0) -> dict[str, Any]:
        return await self._inbox.server_call(method, within_s)

    async def closed(self, within_s: float = 5.0) -> None:
        await self._inbox.wait_closed(within_s)

    def go_half_open(self) -> None:
        """Stop reading, like a charger that left the network without closing: no pong."""
        assert self._ws is not None
        self._ws.transport.pause_reading()

    async def close(self, *, force: bool = False) -> None:
        if self._ws is not None:
            if force:
                self._ws.transport.abort()
            else:
                await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


def install_ocpp_rpc() -> Path:
    """Install ocpp-rpc into .peers (once) and return its node_modules, or skip the test."""
    try:
        done = subprocess.run(
            [str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        peer_missing(f"ocpp-rpc install failed: {exc}")
        raise
    if done.returncode != 0:
        peer_missing(f"ocpp-rpc unavailable: {done.stderr.strip() or done.stdout.strip()}")
    return Path(done.stdout.strip().splitlines()[-1])


class OcppRpcDriver:
    """A charge point played by ocpp-rpc in a Node process (see tests/peers/ocpp_rpc_driver.js).

    Args:
        node_modules: where ocpp-rpc is installed (:func:`install_ocpp_rpc`).
        version: the OCPP version it offers by default (``ocpp1.6`` or ``ocpp2.0.1``) and whose
            canned answers it gives; ocpp-rpc checks against its schemas of the version agreed.
    """

    kind = "ocpp-rpc"

    def __init__(self, node_modules: Path, version: str = "ocpp1.6") -> None:
        self.version = version
        self._defaults = _VERSIONS[version][1]
        self.validation_failures: list[str] = []
        self._node_modules = node_modules
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._inbox = _Inbox()

    async def start(self) -> None:
        env = dict(os.environ, NODE_PATH=str(self._node_modules))
        self._process = await asyncio.create_subprocess_exec(
            "node",
            str(NODE_DRIVER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=2**22,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        while line := await self._process.stdout.readline():
            message = json.loads(line)
            if "id" in message:
                future = self._replies.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            await self._on_event(message)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(ConnectionError("the ocpp-rpc driver exited"))

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "inbound":
            with contextlib.suppress(ValueError):
                frame = json.loads(event["message"])
                if isinstance(frame, list):
                    self._inbox.frames.append(frame)
        elif kind == "call":
            self._inbox.calls.append((event["method"], event["params"]))
        elif kind == "strictValidationFailure":
            self.validation_failures.append(f"{event['method']}: {event['error']}")
        elif kind == "close":
            self._inbox.is_closed = True
        await self._inbox.notify()

    @property
    def frames(self) -> list[list[Any]]:
        """Every frame received from the server, decoded, in order."""
        return self._inbox.frames

    async def _command(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self._process is not None
        assert self._process.stdin is not None
        command_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[command_id] = future
        line = json.dumps({"id": command_id, "op": op, **fields}) + "\n"
        self._process.stdin.write(line.encode())
        await self._process.stdin.drain()
        async with asyncio.timeout(20):
            return await future

    async def connect(
        self,
        url: str,
        identity: str,
        password: str | None = None,
        *,
        ca: Path | None = None,
        protocols: tuple[str, ...] | None = None,
    ) -> None:
        reply = await self._command(
            "connect",
            url=url,
            identity=identity,
            password=password,
            ca=str(ca) if ca else None,
            protocols=list((self.version,) if protocols is None else protocols),
            defaults=self._defaults,
        )
        if not reply["ok"]:
            if reply["code"].isdigit():
                raise HandshakeRefused(int(reply["code"]))
            raise ConnectionError(reply["message"])

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        reply = await self._command("call", method=action, params=dict(payload))
        if not reply["ok"]:
            raise CallErrorReceived(reply["code"], reply["message"])
        return dict(reply["result"])

    async def raw(self, frame: str) -> None:
        await self._command("raw", frame=frame)

    async def reply_to(self, unique_id: str, within_s: float = 5.0) -> list[Any]:
        return await self._inbox.reply_to(unique_id, within_s)

    async def answer(
        self,
        method: str,
        result: Mapping[str, Any] | None = None,
        *,
        error: str | None = None,
        silent: bool = False,
    ) -> None:
        fields: dict[str, Any] = {"method": method, "silent": silent}
        if error is not None:
            fields["error"] = error
        fields["result"] = (
            dict(result) if result is not None else self._defaults.get(method, _ACCEPTED)
        )
        await self._command("answer", **fields)

    async def server_call(self, method: str, within_s: float = 5.0) -> dict[str, Any]:
        return await self._inbox.server_call(method, within_s)

    async def closed(self, within_s: float = 5.0) -> None:
        await self._inbox.wait_closed(within_s)

    async def close(self, *, force: bool = False) -> None:
        if self._process is None:
            return
        if self._process.returncode is None:
            with contextlib.suppress(TimeoutError, ConnectionError):
                await self._command("close", force=force)
        if force:
            return

    async def stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            async with asyncio.timeout(5):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()
        if self._reader is not None:
            await self._reader
