"""A simulated OCPP 1.6J charge point, for the demo and the tests.

It behaves like a well-mannered charger: it boots (BootNotification, then StatusNotification
for every connector), sends Heartbeat and MeterValues at the intervals it is configured with,
accepts RemoteStart/RemoteStop, UnlockConnector, Reset, ChangeAvailability, ChangeConfiguration,
GetConfiguration, ClearCache, DataTransfer and TriggerMessage, and reconnects when its
connection drops. Transaction messages (StartTransaction, StopTransaction) that could not be
delivered are kept and sent again after reconnecting, with the same payload, as OCPP 1.6 asks
of a charger for transaction-related messages.

Its meter runs ``speed`` times faster than real time at ``power_kw`` while a connector is
charging. Both directions are validated against the OCPP 1.6 schemas: a CALL from the central
system that breaks them is answered with a CALLERROR and kept in ``validation_failures``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from ocpp_server.protocol import (
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameRejected,
    PayloadInvalid,
    UnreadableFrame,
    format_timestamp,
    pack_call,
    pack_error,
    pack_result,
    parse_frame,
    validate_call,
    validate_request,
    validate_result,
)

__all__ = [
    "CallFailed",
    "ConnectorState",
    "SimulatedChargePoint",
    "SimulatorOptions",
    "add_arguments",
    "options_from_args",
    "run_simulator",
]

log = logging.getLogger("ocpp_server.simulator")

_TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", "StopTransaction"})
_READONLY: Final = frozenset({"NumberOfConnectors", "SupportedFeatureProfiles"})


@dataclass(frozen=True, slots=True)
class SimulatorOptions:
    """How to run one simulated charge point.

    Attributes:
        url: the central system's base URL; the charger id is appended
            (``ws://host:9000/ocpp`` -> ``ws://host:9000/ocpp/<charger_id>``).
        charger_id: the charge point identity.
        password: the AuthorizationKey for HTTP Basic auth, or None.
        connectors: number of connectors.
        power_kw: charging power per connector.
        speed: how many times faster than real time the meter runs.
        meter_start_wh: every connector's register at start.
        plugged: connectors with a vehicle plugged in at start.
        ca_file: CA certificate to trust for ``wss://`` (the system store when None).
        reconnect: reconnect after the connection drops.
        reconnect_delay_s: wait before reconnecting.
        boot_on_reconnect: send BootNotification after every reconnect (False models a
            charger that only lost its network and resumes without booting).
        duration_s: stop after this long (None: run until cancelled).
        call_timeout_s: how long to wait for the central system's answers.
        vendor: chargePointVendor in BootNotification.
        model: chargePointModel in BootNotification.
    """

    url: str = "ws://127.0.0.1:9000/ocpp"
    charger_id: str = "sim-1"
    password: str | None = None
    connectors: int = 1
    power_kw: Decimal = Decimal(11)
    speed: float = 1.0
    meter_start_wh: int = 0
    plugged: tuple[int, ...] = ()
    ca_file: Path | None = None
    reconnect: bool = True
    reconnect_delay_s: float = 1.0
    boot_on_reconnect: bool = True
    duration_s: float | None = None
    call_timeout_s: float = 30.0
    vendor: str = "Strom"
    model: str = "Simulator"

    def __post_init__(self) -> None:
        if not 1 <= self.connectors <= 99:
            raise ValueError("connectors must be 1-99")
        if self.power_kw < 0 or self.speed <= 0 or self.meter_start_wh < 0:
            raise ValueError("power_kw and meter_start_wh must be >= 0 and speed > 0")
        if any(not 1 <= c <= self.connectors for c in self.plugged):
            raise ValueError("plugged connectors must exist")

    @property
    def endpoint(self) -> str:
        """The full websocket URL of this charger."""
        return f"{self.url.rstrip('/')}/{self.charger_id}"


class CallFailed(Exception):
    """A CALL from the simulator got a CALLERROR, no answer, or the connection dropped."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


@dataclass(slots=True)
class ConnectorState:
    """One connector of the simulated charger."""

    connector_id: int
    status: str = "Available"
    plugged: bool = False
    operative: bool = True
    transaction_id: int | None = None
    id_tag: str | None = None
    meter_mwh: int = 0  # milliwatt-hours, so slow meters still advance
    waiting_tag: str | None = None  # remote start accepted, waiting for the plug
    scheduled_operative: bool | None = None

    @property
    def meter_wh(self) -> int:
        """The register in whole Wh."""
        return self.meter_mwh // 1000


@dataclass
class _Session:
    ws: ClientConnection
    tg: asyncio.TaskGroup
    next_id: int = 0
    pending: tuple[str, asyncio.Future[CallResult | CallError]] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class _Disconnected(Exception):
    pass


# A CALL's answer payload, and the work it asks for once the answer is sent.
_Answer = tuple[dict[str, Any], Callable[[], Awaitable[Any]] | None]


class SimulatedChargePoint:
    """A simulated charge point (see the module docstring).

    Args:
        options: what to simulate and where to connect.
        monotonic: clock driving the meter and the intervals.
    """

    def __init__(
        self, options: SimulatorOptions, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.options = options
        self._monotonic = monotonic
        self.connectors = {
            n: ConnectorState(
                n,
                status="Preparing" if n in options.plugged else "Available",
                plugged=n in options.plugged,
                meter_mwh=options.meter_start_wh * 1000,
            )
            for n in range(1, options.connectors + 1)
        }
        self.configuration: dict[str, str] = {
            "HeartbeatInterval": "300",
            "MeterValueSampleInterval": "60",
            "MeterValuesSampledData": "Energy.Active.Import.Register",
            "StopTxnSampledData": "",
            "NumberOfConnectors": str(options.connectors),
            "SupportedFeatureProfiles": "Core,RemoteTrigger",
            "AuthorizeRemoteTxRequests": "false",
        }
        self.password = options.password
        self.received_calls: list[Call] = []
        self.validation_failures: list[str] = []
        self.boots = 0
        self.connections = 0
        self.boot_status: str | None = None
        self._session: _Session | None = None
        self._outbox: deque[tuple[str, dict[str, Any], int | None]] = deque()
        self._changed = asyncio.Condition()
        self._stopping = False
        self._last_tick = monotonic()

    # --- observation -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a websocket is open now."""
        return self._session is not None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], within_s: float = 10.0) -> None:
        """Wait until ``predicate()`` holds; it is checked on every change of state.

        Raises:
            TimeoutError: when it did not hold in time.
        """
        async with asyncio.timeout(within_s), self._changed:
            while not predicate():
                await self._changed.wait()

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, boot and serve; reconnect after a drop unless told not to.

        Raises:
            InvalidStatus: the central system refused the handshake and ``reconnect`` is off.
            OSError: the central system cannot be reached and ``reconnect`` is off.
        """
        while not self._stopping:
            try:
                await self._connect_once()
            except (OSError, InvalidStatus, TimeoutError) as exc:
                if not self.options.reconnect or self._stopping:
                    raise
                log.info("%s: cannot connect (%s); retrying", self.options.charger_id, exc)
            if not self.options.reconnect or self._stopping:
                return
            await asyncio.sleep(self.options.reconnect_delay_s)

    def stop(self) -> None:
        """Stop after the current connection (closing it)."""
        self._stopping = True
        self.drop_connection()

    def drop_connection(self) -> None:
        """Lose the connection as a network failure would (the charger reconnects)."""
        session = self._session
        if session is not None:
            session.ws.transport.abort()

    def _headers(self) -> dict[str, str]:
        if self.password is None:
            return {}
        token = f"{self.options.charger_id}:{self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(token).decode()}

    def _ssl(self) -> ssl.SSLContext | None:
        if not self.options.url.startswith("wss:"):
            return None
        context = ssl.create_default_context()
        if self.options.ca_file is not None:
            context.load_verify_locations(self.options.ca_file)
        return context

    async def _connect_once(self) -> None:
        async with connect(
            self.options.endpoint,
            subprotocols=[Subprotocol("ocpp1.6")],
            additional_headers=self._headers(),
            ssl=self._ssl(),
            ping_interval=None,
            open_timeout=10,
        ) as ws:
            first = self.connections == 0
            self.connections += 1
            try:
                async with asyncio.TaskGroup() as tg:
                    self._session = _Session(ws, tg)
                    await self._notify()
                    tg.create_task(self._read(self._session))
                    tg.create_task(self._start(boot=first or self.options.boot_on_reconnect))
            except* (_Disconnected, ConnectionClosed, CallFailed):
                pass
            finally:
                self._session = None
                await self._notify()

    async def _read(self, session: _Session) -> None:
        while True:
            try:
                message = await session.ws.recv()
            except ConnectionClosed:
                if session.pending is not None and not session.pending[1].done():
                    session.pending[1].set_exception(_Disconnected())
                raise _Disconnected() from None
            if isinstance(message, bytes):
                continue
            try:
                frame = parse_frame(message)
            except UnreadableFrame:
                self.validation_failures.append(f"unreadable frame: {message[:200]}")
                continue
            except FrameRejected as exc:
                self.validation_failures.append(str(exc))
                await session.ws.send(pack_error(exc.unique_id, exc.code, exc.description))
                continue
            if isinstance(frame, Call):
                await self._on_call(session, frame)
            elif session.pending is not None and session.pending[0] == frame.unique_id:
                session.pending[1].set_result(frame)

    async def _start(self, *, boot: bool) -> None:
        if boot:
            await self._boot()
        for connector in [0, *self.connectors]:
            await self._send_status(connector)
        while self._outbox:
            action, payload, connector_id = self._outbox[0]
            await self._deliver(action, payload, connector_id)
            self._outbox.popleft()
        session = self._session
        if session is not None:
            session.tg.create_task(self._heartbeats())
            session.tg.create_task(self._sample_meters())

    async def _boot(self) -> None:
        while True:
            answer = await self.call(
                "BootNotification",
                {
                    "chargePointVendor": self.options.vendor,
                    "chargePointModel": self.options.model,
                    "chargePointSerialNumber": self.options.charger_id[:25],
                    "firmwareVersion": "strom-simulator",
                },
            )
            self.boot_status = str(answer["status"])
            self.configuration["HeartbeatInterval"] = str(answer["interval"])
            await self._notify()
            if answer["status"] == "Accepted":
                self.boots += 1
                await self._notify()
                return
            await asyncio.sleep(max(int(answer["interval"]), 1))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(max(int(self.configuration["HeartbeatInterval"]), 1))
            await self._tolerate(self.call("Heartbeat", {}))

    async def _sample_meters(self) -> None:
        while True:
            await asyncio.sleep(max(float(self.configuration["MeterValueSampleInterval"]), 0.05))
            for connector in self.connectors.values():
                if connector.transaction_id is not None:
                    await self._tolerate(self.send_meter_values(connector.connector_id))

    async def _tolerate(self, work: Awaitable[Any]) -> None:
        """Run a periodic CALL; a refusal or timeout is logged, a lost connection ends it."""
        try:
            await work
        except CallFailed as exc:
            if exc.code == "Disconnected":
                raise
            log.info("%s: %s", self.options.charger_id, exc)

    # --- CALLs to the central system -------------------------------------------------------

    async def call(self, action: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send a CALL and return the CALLRESULT payload.

        Raises:
            CallFailed: a CALLERROR (its code), no answer in time (``Timeout``), the
                connection dropped (``Disconnected``), or an answer that breaks the schema.
        """
        validate_request(action, payload)
        session = self._session
        if session is None:
            raise CallFailed("Disconnected", "not connected")
        async with session.lock:
            session.next_id += 1
            unique_id = f"c{session.next_id}"
            future: asyncio.Future[CallResult | CallError] = (
                asyncio.get_running_loop().create_future()
            )
            session.pending = (unique_id, future)
            try:
                await session.ws.send(pack_call(Call(unique_id, action, dict(payload))))
                async with asyncio.timeout(self.options.call_timeout_s):
                    answer = await future
            except TimeoutError:
                raise CallFailed("Timeout", f"no answer to {action}") from None
            except (_Disconnected, ConnectionClosed):
                raise CallFailed("Disconnected", f"connection lost during {action}") from None
            finally:
                session.pending = None
                if future.done() and not future.cancelled():
                    future.exception()
        if isinstance(answer, CallError):
            raise CallFailed(answer.code, answer.description)
        try:
            validate_result(action, answer.payload)
        except PayloadInvalid as exc:
            self.validation_failures.append(f"{action} answer: {exc}")
            raise CallFailed("InvalidAnswer", str(exc)) from exc
        return answer.payload

    async def _deliver(
        self, action: str, payload: dict[str, Any], connector_id: int | None
    ) -> dict[str, Any]:
        """Send a transaction message; keep it for after reconnecting if the link drops."""
        try:
            answer = await self.call(action, payload)
        except CallFailed as exc:
            entry = (action, payload, connector_id)
            retry = exc.code == "Disconnected" and action in _TRANSACTION_ACTIONS
            if retry and entry not in self._outbox:
                self._outbox.append(entry)
            raise
        if action == "StartTransaction" and connector_id is not None:
            await self._started(connector_id, answer)
        return answer

    async def _started(self, connector_id: int, answer: Mapping[str, Any]) -> None:
        connector = self.connectors[connector_id]
        if answer["idTagInfo"]["status"] == "Accepted":
            connector.transaction_id = int(answer["transactionId"])
            self._last_tick = self._monotonic()
            await self._set_status(connector_id, "Charging")
        else:
            connector.id_tag = None
            await self._set_status(connector_id, "Preparing" if connector.plugged else "Available")

    def _now(self) -> str:
        return format_timestamp(datetime.now(UTC))

    async def _send_status(self, connector_id: int) -> None:
        status = (
            self.connectors[connector_id].status
            if connector_id
            else ("Available" if self.connectors[1].operative else "Unavailable")
        )
        await self.call(
            "StatusNotification",
            {
                "connectorId": connector_id,
                "errorCode": "NoError",
                "status": status,
                "timestamp": self._now(),
            },
        )

    async def _set_status(self, connector_id: int, status: str) -> None:
        self.connectors[connector_id].status = status
        await self._notify()
        with contextlib.suppress(CallFailed):
            await self._send_status(connector_id)

    def _advance(self) -> None:
        now = self._monotonic()
        elapsed = now - self._last_tick
        self._last_tick = now
        power_w = float(self.options.power_kw) * 1000
        for connector in self.connectors.values():
            if connector.transaction_id is not None and connector.status == "Charging":
                added = power_w * elapsed * self.options.speed / 3.6  # W*s -> mWh
                connector.meter_mwh += int(added)

    def _sampled(self, connector: ConnectorState, context: str) -> list[dict[str, Any]]:
        values: list[dict[str, Any]] = [
            {
                "value": str(connector.meter_wh),
                "context": context,
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
            }
        ]
        measurands = self.configuration["MeterValuesSampledData"].split(",")
        if "Power.Active.Import" in measurands:
            charging = connector.status == "Charging"
            watts = int(self.options.power_kw * 1000) if charging else 0
            values.append(
                {
                    "value": str(watts),
                    "context": context,
                    "measurand": "Power.Active.Import",
                    "unit": "W",
                }
            )
        return values

    async def send_meter_values(self, connector_id: int, context: str = "Sample.Periodic") -> None:
        """Send the connector's register now (with its transaction id, if charging)."""
        self._advance()
        connector = self.connectors[connector_id]
        payload: dict[str, Any] = {
            "connectorId": connector_id,
            "meterValue": [
                {"timestamp": self._now(), "sampledValue": self._sampled(connector, context)}
            ],
        }
        if connector.transaction_id is not None:
            payload["transactionId"] = connector.transaction_id
        await self.call("MeterValues", payload)

    # --- what a driver does at the charger -------------------------------------------------

    async def plug(self, connector_id: int = 1) -> None:
        """Plug a vehicle in; a remote start waiting for it begins the transaction."""
        connector = self.connectors[connector_id]
        connector.plugged = True
        if connector.waiting_tag is not None:
            tag, connector.waiting_tag = connector.waiting_tag, None
            await self.start_transaction(connector_id, tag)
        elif connector.transaction_id is None:
            await self._set_status(connector_id, "Preparing")

    async def unplug(self, connector_id: int = 1) -> None:
        """Unplug the vehicle; an ongoing transaction stops with reason EVDisconnected."""
        connector = self.connectors[connector_id]
        connector.plugged = False
        if connector.transaction_id is not None:
            await self.stop_transaction(connector_id, "EVDisconnected")
        await self._set_status(connector_id, "Available" if connector.operative else "Unavailable")

    async def start_transaction(self, connector_id: int, id_tag: str) -> dict[str, Any]:
        """Start a transaction (StartTransaction.req); returns the central system's answer."""
        connector = self.connectors[connector_id]
        connector.id_tag = id_tag
        payload = {
            "connectorId": connector_id,
            "idTag": id_tag,
            "meterStart": connector.meter_wh,
            "timestamp": self._now(),
        }
        return await self._deliver("StartTransaction", payload, connector_id)

    async def stop_transaction(self, connector_id: int, reason: str = "Local") -> dict[str, Any]:
        """Stop the connector's transaction (StopTransaction.req with transactionData)."""
        self._advance()
        connector = self.connectors[connector_id]
        if connector.transaction_id is None:
            raise ValueError(f"connector {connector_id} has no transaction")
        payload: dict[str, Any] = {
            "transactionId": connector.transaction_id,
            "meterStop": connector.meter_wh,
            "timestamp": self._now(),
            "reason": reason,
            "transactionData": [
                {
                    "timestamp": self._now(),
                    "sampledValue": self._sampled(connector, "Transaction.End"),
                }
            ],
        }
        if connector.id_tag is not None:
            payload["idTag"] = connector.id_tag
        connector.transaction_id = None
        connector.id_tag = None
        await self._notify()
        try:
            answer = await self._deliver("StopTransaction", payload, connector_id)
        finally:
            status = "Finishing" if connector.plugged else "Available"
            await self._set_status(connector_id, status)
            if connector.scheduled_operative is not None:
                await self._apply_availability(connector_id, connector.scheduled_operative)
        return answer

    # --- CALLs from the central system -----------------------------------------------------

    async def _on_call(self, session: _Session, call: Call) -> None:
        self.received_calls.append(call)
        await self._notify()
        try:
            validate_call(call)
        except FrameRejected as exc:
            self.validation_failures.append(f"{call.action}: {exc}")
            await session.ws.send(pack_error(call.unique_id, exc.code, exc.description))
            return
        handler = self._handlers().get(call.action)
        if handler is None:
            await session.ws.send(
                pack_error(call.unique_id, ErrorCode.NOT_SUPPORTED, f"{call.action} unsupported")
            )
            return
        answer, then = handler(call.payload)
        await session.ws.send(pack_result(call.unique_id, answer))
        if then is not None:
            session.tg.create_task(self._after(then))

    async def _after(self, action: Callable[[], Awaitable[Any]]) -> None:
        # Work a CALL asks for runs after its answer was sent, in the session's TaskGroup.
        with contextlib.suppress(CallFailed):
            await action()

    def _handlers(self) -> dict[str, Callable[[Mapping[str, Any]], _Answer]]:
        return {
            "RemoteStartTransaction": self._remote_start,
            "RemoteStopTransaction": self._remote_stop,
            "UnlockConnector": self._unlock,
            "Reset": self._reset,
            "ChangeAvailability": self._change_availability,
            "ChangeConfiguration": self._change_configuration,
            "GetConfiguration": self._get_configuration,
            "ClearCache": lambda _payload: ({"status": "Accepted"}, None),
            "DataTransfer": self._data_transfer,
            "TriggerMessage": self._trigger,
        }

    def _remote_start(self, payload: Mapping[str, Any]) -> _Answer:
        tag = str(payload["idTag"])
        wanted = payload.get("connectorId")
        candidates = [wanted] if wanted is not None else list(self.connectors)
        for connector_id in candidates:
            connector = self.connectors.get(int(connector_id))
            if connector is None or connector.transaction_id is not None:
                continue
            if not connector.operative or connector.waiting_tag is not None:
                continue
            if connector.plugged:
                return {
                    "status": "Accepted"
                }, lambda c=connector.connector_id: self.start_transaction(c, tag)
            connector.waiting_tag = tag
            return {"status": "Accepted"}, lambda c=connector.connector_id: self._set_status(
                c, "Preparing"
            )
        return {"status": "Rejected"}, None

    def _remote_stop(self, payload: Mapping[str, Any]) -> _Answer:
        for connector in self.connectors.values():
            if connector.transaction_id == payload["transactionId"]:
                return {
                    "status": "Accepted"
                }, lambda c=connector.connector_id: self.stop_transaction(c, "Remote")
        return {"status": "Rejected"}, None

    def _unlock(self, payload: Mapping[str, Any]) -> _Answer:
        connector = self.connectors.get(int(payload["connectorId"]))
        if connector is None:
            return {"status": "UnlockFailed"}, None
        if connector.transaction_id is not None:
            return {"status": "Unlocked"}, lambda c=connector.connector_id: self.stop_transaction(
                c, "UnlockCommand"
            )
        return {"status": "Unlocked"}, None

    def _reset(self, payload: Mapping[str, Any]) -> _Answer:
        reason = "HardReset" if payload["type"] == "Hard" else "SoftReset"

        async def reboot() -> None:
            for connector in self.connectors.values():
                if connector.transaction_id is not None:
                    with contextlib.suppress(CallFailed):
                        await self.stop_transaction(connector.connector_id, reason)
            self.drop_connection()

        return {"status": "Accepted"}, reboot

    def _change_availability(self, payload: Mapping[str, Any]) -> _Answer:
        operative = payload["type"] == "Operative"
        target = int(payload["connectorId"])
        ids = list(self.connectors) if target == 0 else [target]
        if any(i not in self.connectors for i in ids):
            return {"status": "Rejected"}, None
        busy = [i for i in ids if self.connectors[i].transaction_id is not None]
        for i in busy:
            self.connectors[i].scheduled_operative = operative
        idle = [i for i in ids if i not in busy]

        async def apply() -> None:
            for i in idle:
                await self._apply_availability(i, operative)

        return {"status": "Scheduled" if busy else "Accepted"}, apply

    async def _apply_availability(self, connector_id: int, operative: bool) -> None:
        connector = self.connectors[connector_id]
        connector.operative = operative
        connector.scheduled_operative = None
        if connector.transaction_id is None:
            status = (
                ("Preparing" if connector.plugged else "Available") if operative else "Unavailable"
            )
            await self._set_status(connector_id, status)

    def _change_configuration(self, payload: Mapping[str, Any]) -> _Answer:
        key, value = str(payload["key"]), str(payload["value"])
        if key == "AuthorizationKey":
            # The security whitepaper sends the key as hexadecimal digits.
            try:
                self.password = bytes.fromhex(value).decode()
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return {"status": "Rejected"}, None
            return {"status": "Accepted"}, None
        if key not in self.configuration:
            return {"status": "NotSupported"}, None
        if key in _READONLY:
            return {"status": "Rejected"}, None
        self.configuration[key] = value
        return {"status": "Accepted"}, self._notify

    def _get_configuration(self, payload: Mapping[str, Any]) -> _Answer:
        wanted = [str(k) for k in payload.get("key", [])] or list(self.configuration)
        known = [
            {"key": k, "readonly": k in _READONLY, "value": self.configuration[k]}
            for k in wanted
            if k in self.configuration
        ]
        unknown = [k for k in wanted if k not in self.configuration]
        answer: dict[str, Any] = {"configurationKey": known}
        if unknown:
            answer["unknownKey"] = unknown
        return answer, None

    def _data_transfer(self, payload: Mapping[str, Any]) -> _Answer:
        if payload["vendorId"] != "Strom":
            return {"status": "UnknownVendorId"}, None
        return {"status": "Accepted", "data": str(payload.get("data", ""))}, None

    def _trigger(self, payload: Mapping[str, Any]) -> _Answer:
        message = payload["requestedMessage"]
        connector_id = payload.get("connectorId")
        if connector_id is not None and int(connector_id) not in self.connectors:
            return {"status": "Rejected"}, None
        if message == "BootNotification":
            return {"status": "Accepted"}, self._boot
        if message == "Heartbeat":
            return {"status": "Accepted"}, lambda: self.call("Heartbeat", {})
        if message == "StatusNotification":
            ids = [int(connector_id)] if connector_id is not None else [0, *self.connectors]

            async def statuses() -> None:
                for i in ids:
                    await self._send_status(i)

            return {"status": "Accepted"}, statuses
        if message == "MeterValues":
            ids = [int(connector_id)] if connector_id is not None else list(self.connectors)

            async def meters() -> None:
                for i in ids:
                    await self.send_meter_values(i, "Trigger")

            return {"status": "Accepted"}, meters
        return {"status": "NotImplemented"}, None


# --- command line --------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to a command-line parser (``strom simulate``)."""
    parser.add_argument("--url", default="ws://127.0.0.1:9000/ocpp", help="central system base URL")
    parser.add_argument("--id", dest="charger_id", default="sim-1", help="charge point identity")
    parser.add_argument("--password", default=None, help="AuthorizationKey for Basic auth")
    parser.add_argument("--connectors", type=int, default=1)
    parser.add_argument("--power-kw", type=Decimal, default=Decimal(11))
    parser.add_argument("--speed", type=float, default=1.0, help="meter speed factor")
    parser.add_argument("--meter-start-wh", type=int, default=0)
    parser.add_argument(
        "--plug", type=int, action="append", default=[], help="connector plugged at start"
    )
    parser.add_argument("--ca-file", type=Path, default=None, help="CA to trust for wss://")
    parser.add_argument("--duration", type=float, default=None, help="stop after seconds")
    parser.add_argument("--no-reconnect", action="store_true")


def options_from_args(ns: argparse.Namespace) -> SimulatorOptions:
    """Build :class:`SimulatorOptions` from parsed :func:`add_arguments` options."""
    return SimulatorOptions(
        url=ns.url,
        charger_id=ns.charger_id,
        password=ns.password,
        connectors=ns.connectors,
        power_kw=ns.power_kw,
        speed=ns.speed,
        meter_start_wh=ns.meter_start_wh,
        plugged=tuple(ns.plug),
        ca_file=ns.ca_file,
        duration_s=ns.duration,
        reconnect=not ns.no_reconnect,
    )


async def run_simulator(options: SimulatorOptions) -> int:
    """Run one simulated charge point until ``duration_s`` elapses or the task is cancelled.

    Returns:
        0 after a normal end, 2 when the central system refused the charger (HTTP status),
        1 when it could not be reached (only with ``reconnect`` off).
    """
    charger = SimulatedChargePoint(options)
    try:
        async with asyncio.timeout(options.duration_s):
            await charger.run()
    except TimeoutError:
        return 0
    except InvalidStatus as exc:
        log.error("%s: refused by the central system: %s", options.charger_id, exc)
        return 2
    except OSError as exc:
        log.error("%s: cannot reach %s: %s", options.charger_id, options.endpoint, exc)
        return 1
    return 0
