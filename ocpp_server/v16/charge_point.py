"""The simulated OCPP 1.6 charge point: boot, heartbeats, meter, transactions.

See :mod:`ocpp_server.simulator` for what it simulates and how to run it. The websocket, the
framing and the matching of answers are the version-neutral
:class:`~ocpp_server.client.OcppClient`'s; everything here is OCPP 1.6 behaviour: the messages
it sends, what a driver does at the charger, and the transaction messages it keeps across a lost
connection. How it answers the central system's CALLs (``on_<action>``) is in
:mod:`ocpp_server.v16.sim_answers`; this module validates those CALLs and dispatches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from websockets.exceptions import InvalidHandshake

from ocpp_server.client import Answer, CallFailed, OcppClient
from ocpp_server.ocppj import (
    Call,
    CallError,
    ErrorCode,
    FrameRejected,
    PayloadInvalid,
    format_timestamp,
)
from ocpp_server.v16.schemas import validate_call, validate_request, validate_result
from ocpp_server.v16.sim_answers import SimulatorAnswers
from ocpp_server.v16.sim_model import ConnectorState, SimulatorOptions
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = ["SimulatedChargePoint"]

log = logging.getLogger("ocpp_server.simulator")

SUBPROTOCOL: Final = "ocpp1.6"
_TRANSACTION_ACTIONS: Final = frozenset({"StartTransaction", "StopTransaction"})


class SimulatedChargePoint:
    """A simulated charge point (see the module docstring).

    Args:
        options: what to simulate and where to connect.
        clock: drives the meter and the intervals (monotonic) and the timestamps it sends.
        observe: told about every CALL from the central system as it arrives (before it is
            answered), for benchmarks and tests; the CALLs are also kept in
            :attr:`received_calls`.
    """

    def __init__(
        self,
        options: SimulatorOptions,
        *,
        clock: Clock = SYSTEM_CLOCK,
        observe: Callable[[Call], None] | None = None,
    ) -> None:
        self.options = options
        self._observe = observe
        self._clock = clock
        self._monotonic = clock.monotonic
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
        self.received_calls: list[Call] = []
        self.validation_failures: list[str] = []
        self.boots = 0
        self.connections = 0
        self.boot_status: str | None = None
        self._client = OcppClient(
            endpoint=options.endpoint,
            subprotocol=SUBPROTOCOL,
            charger_id=options.charger_id,
            serve=self._serve,
            on_problem=self.validation_failures.append,
            on_change=self.notify,
            ca_file=options.ca_file,
            call_timeout_s=options.call_timeout_s,
            monotonic=clock.monotonic,
        )
        self._client.password = options.password
        self._outbox: deque[tuple[str, dict[str, Any], int | None]] = deque()
        self._changed = asyncio.Condition()
        self._stopping = False
        self._rebooting = False
        self._last_tick = clock.monotonic()
        self._answers = SimulatorAnswers(self).table()

    # --- observation -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a websocket is open now."""
        return self._client.connected

    @property
    def password(self) -> str | None:
        """The AuthorizationKey presented with HTTP Basic auth (None: no credentials)."""
        return self._client.password

    @password.setter
    def password(self, value: str | None) -> None:
        self._client.password = value

    async def notify(self) -> None:
        """Wake everything waiting in :meth:`wait_until`."""
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
            websockets.exceptions.InvalidStatus: the central system refused the handshake and
                ``reconnect`` is off.
            websockets.exceptions.InvalidHandshake: the handshake failed otherwise (e.g. the
                central system went away in the middle of it) and ``reconnect`` is off.
            OSError: the central system cannot be reached and ``reconnect`` is off.
        """
        while not self._stopping:
            try:
                await self._connect_once()
            # A real charger retries whatever broke the handshake: a refusal, a server that
            # died half-way through it (InvalidMessage), a timeout, no route.
            except (OSError, InvalidHandshake, TimeoutError) as exc:
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
        self._client.drop()

    def power_cut(self) -> None:
        """Lose power: the connection drops, and the charger boots when it reconnects.

        The meter keeps its register and a plugged vehicle stays plugged. Without
        ``persist_transactions`` the charger forgets its transactions, the idTags it was given
        and its queued transaction messages: it comes back ``Available`` (``Preparing`` with
        a vehicle plugged in) and never sends a StopTransaction for what it was charging.
        """
        self._advance()
        self._rebooting = True
        if not self.options.persist_transactions:
            self._outbox.clear()
            for connector in self.connectors.values():
                connector.transaction_id = None
                connector.id_tag = None
                connector.waiting_tag = None
                idle = "Preparing" if connector.plugged else "Available"
                connector.status = idle if connector.operative else "Unavailable"
        self.drop_connection()

    async def _connect_once(self) -> None:
        boot = self.connections == 0 or self.options.boot_on_reconnect or self._rebooting

        async def opened() -> None:
            log.info("%s: connected%s", self.options.charger_id, " (booting)" if boot else "")
            self._rebooting = False
            self.connections += 1
            await self._start(boot=boot)

        await self._client.connect_once(opened)

    async def _start(self, *, boot: bool) -> None:
        if boot:
            await self.boot()
        for connector in [0, *self.connectors]:
            await self.send_status(connector)
        while self._outbox:
            action, payload, connector_id = self._outbox[0]
            await self._deliver(action, payload, connector_id)
            self._outbox.popleft()
        self._client.spawn(self._heartbeats)
        self._client.spawn(self._sample_meters)

    async def boot(self) -> None:
        """Send BootNotification until it is accepted (waiting the interval when not)."""
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
            await self.notify()
            if answer["status"] == "Accepted":
                self.boots += 1
                await self.notify()
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
        answer = await self._client.call(action, payload)
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
            await self.set_status(connector_id, "Charging")
        else:
            connector.id_tag = None
            await self.set_status(connector_id, "Preparing" if connector.plugged else "Available")

    def _now(self) -> str:
        return format_timestamp(self._clock.now())

    async def send_status(self, connector_id: int) -> None:
        """Send a StatusNotification for one connector (0: the charger as a whole)."""
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

    async def set_status(self, connector_id: int, status: str) -> None:
        """Change a connector's status and report it (a lost connection is tolerated)."""
        self.connectors[connector_id].status = status
        await self.notify()
        with contextlib.suppress(CallFailed):
            await self.send_status(connector_id)

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
            await self.set_status(connector_id, "Preparing")

    async def unplug(self, connector_id: int = 1) -> None:
        """Unplug the vehicle; an ongoing transaction stops with reason EVDisconnected."""
        connector = self.connectors[connector_id]
        connector.plugged = False
        if connector.transaction_id is not None:
            await self.stop_transaction(connector_id, "EVDisconnected")
        await self.set_status(connector_id, "Available" if connector.operative else "Unavailable")

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
        await self.notify()
        try:
            answer = await self._deliver("StopTransaction", payload, connector_id)
        finally:
            status = "Finishing" if connector.plugged else "Available"
            await self.set_status(connector_id, status)
            if connector.scheduled_operative is not None:
                await self.apply_availability(connector_id, connector.scheduled_operative)
        return answer

    async def apply_availability(self, connector_id: int, operative: bool) -> None:
        """Make a connector (in)operative and report its status."""
        connector = self.connectors[connector_id]
        connector.operative = operative
        connector.scheduled_operative = None
        if connector.transaction_id is None:
            status = (
                ("Preparing" if connector.plugged else "Available") if operative else "Unavailable"
            )
            await self.set_status(connector_id, status)

    # --- CALLs from the central system -----------------------------------------------------

    async def _serve(self, call: Call) -> Answer:
        if self._observe is not None:
            self._observe(call)
        self.received_calls.append(call)
        await self.notify()
        try:
            validate_call(call)
        except FrameRejected as exc:
            self.validation_failures.append(f"{call.action}: {exc}")
            return Answer(error=(exc.code, exc.description))
        answer = self._answers.get(call.action)
        if answer is None:
            return Answer(error=(ErrorCode.NOT_SUPPORTED, f"{call.action} unsupported"))
        return answer(call.payload)
