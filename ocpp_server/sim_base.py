"""What every simulated charge point does, whatever OCPP version it speaks.

:class:`SimulatorBase` runs the charger's life: it connects (through the version-neutral
:class:`~ocpp_server.client.OcppClient`), boots, reports its connectors, sends Heartbeat and a
periodic meter sample at the version's intervals, and reconnects after a drop. It keeps the
transaction messages that could not be delivered in an outbox and sends them again, in order,
after reconnecting (both OCPP versions ask that of a charger); a version may mark them on the
way (OCPP 2.0.1's ``offline`` flag). ``power_cut()`` makes the next connection a boot and, with
``persist_transactions=False``, forgets the transactions and their queued messages. The meter of
every charging connector advances ``speed`` times faster than real time at ``power_kw``.

Both directions are validated against the version's schemas (a :class:`PayloadSchemas`): a
CALL from the central system that breaks them is answered with a CALLERROR and kept in
``validation_failures``, and so is an answer of the central system that breaks them.

A version's charge point (:mod:`ocpp_server.v16.charge_point`,
:mod:`ocpp_server.v201.charge_point`) supplies the messages: the boot request, the status
reports, the periodic sample, what a power loss does to a transaction it keeps, and its
answers to the central system's CALLs.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

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
from ocpp_server.sim_model import ConnectorState, SimulatorOptions
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = ["Outgoing", "PayloadSchemas", "SimulatorBase"]

log = logging.getLogger("ocpp_server.simulator")

C = TypeVar("C", bound=ConnectorState)

Outgoing = tuple[str, dict[str, Any], int | None]
"""A queued transaction message: action, payload, connector (None: the charger)."""


class PayloadSchemas(Protocol):
    """An OCPP version's payload validation (the module ``ocpp_server.<version>.schemas``)."""

    def validate_call(self, call: Call) -> None:
        """Check a CALL from the central system; raises FrameRejected."""
        ...

    def validate_request(self, action: str, payload: Mapping[str, Any]) -> None:
        """Check a request we are about to send; raises PayloadInvalid."""
        ...

    def validate_result(self, action: str, payload: Mapping[str, Any]) -> None:
        """Check the central system's answer to ``action``; raises PayloadInvalid."""
        ...


class SimulatorBase(ABC, Generic[C]):
    """The shared life of a simulated charge point (see the module docstring).

    Args:
        options: what to simulate and where to connect.
        schemas: the version's payload validation.
        clock: drives the meter and the intervals (monotonic) and the timestamps it sends.
        observe: told about every CALL from the central system as it arrives (before it is
            answered), for benchmarks and tests; the CALLs are also kept in
            :attr:`received_calls`.
    """

    SUBPROTOCOL: ClassVar[str]
    """The websocket subprotocol of the version."""

    TRANSACTION_ACTIONS: ClassVar[frozenset[str]]
    """The actions kept in the outbox when the connection drops under them."""

    def __init__(
        self,
        options: SimulatorOptions,
        *,
        schemas: PayloadSchemas,
        clock: Clock = SYSTEM_CLOCK,
        observe: Callable[[Call], None] | None = None,
    ) -> None:
        self.options = options
        self._schemas = schemas
        self._observe = observe
        self._clock = clock
        self._monotonic = clock.monotonic
        self.connectors: dict[int, C] = {
            n: self._new_connector(n) for n in range(1, options.connectors + 1)
        }
        self.received_calls: list[Call] = []
        self.validation_failures: list[str] = []
        self.boots = 0
        self.connections = 0
        self._failed_attempts = 0
        self.boot_status: str | None = None
        self._client = OcppClient(
            endpoint=options.endpoint,
            subprotocol=self.SUBPROTOCOL,
            charger_id=options.charger_id,
            serve=self._serve,
            on_problem=self.validation_failures.append,
            on_change=self.notify,
            ca_file=options.ca_file,
            call_timeout_s=options.call_timeout_s,
            monotonic=clock.monotonic,
        )
        self._client.password = options.password
        self._outbox: deque[Outgoing] = deque()
        self._changed = asyncio.Condition()
        self._stopping = False
        self._rebooting = False
        self._last_tick = clock.monotonic()
        self._answers: dict[str, Callable[[Mapping[str, Any]], Answer]] = {}

    # --- what a version supplies -----------------------------------------------------------

    @abstractmethod
    def _new_connector(self, number: int) -> C:
        """A connector as it is when the charger starts."""

    @abstractmethod
    def _boot_request(self) -> dict[str, Any]:
        """The BootNotification payload."""

    @abstractmethod
    async def send_statuses(self) -> None:
        """Report every connector (after a boot or a reconnect)."""

    @abstractmethod
    async def send_periodic_sample(self, connector_id: int) -> None:
        """Send the periodic meter sample of a connector that runs a transaction."""

    @abstractmethod
    def _lose_power(self, connector: C) -> None:
        """What a power loss does to a connector (its transaction kept or forgotten)."""

    @property
    @abstractmethod
    def heartbeat_interval_s(self) -> float:
        """Seconds between Heartbeats (the version keeps it in its configuration)."""

    @abstractmethod
    def _keep_heartbeat_interval(self, seconds: int) -> None:
        """Keep the interval the central system asked for at boot."""

    @property
    @abstractmethod
    def sample_interval_s(self) -> float:
        """Seconds between the periodic meter samples of a transaction."""

    def _queued(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The payload a queued transaction message is sent again with (by default the same)."""
        return payload

    async def _delivered(
        self, action: str, payload: Mapping[str, Any], connector_id: int | None, answer: Any
    ) -> None:
        """Act on the central system's answer to a transaction message (nothing by default)."""

    # --- observation -----------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a websocket is open now."""
        return self._client.connected

    @property
    def charger_id(self) -> str:
        """The charge point's identity (the last segment of its URL)."""
        return self.options.charger_id

    @property
    def password(self) -> str | None:
        """The password presented with HTTP Basic auth (None: no credentials)."""
        return self._client.password

    @password.setter
    def password(self, value: str | None) -> None:
        self._client.password = value

    @property
    def client_certificate(self) -> tuple[bytes, bytes] | None:
        """The TLS client certificate chain and key presented over ``wss://`` (profile 3)."""
        return self._client.client_certificate

    @client_certificate.setter
    def client_certificate(self, value: tuple[bytes, bytes] | None) -> None:
        self._client.client_certificate = value

    @property
    def queued(self) -> list[Outgoing]:
        """The transaction messages waiting for a connection, oldest first."""
        return list(self._outbox)

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
                self._failed_attempts += 1  # the next URL, if there are several
                self._client.endpoint = self.options.endpoint_at(self._failed_attempts)
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

    def reboot(self) -> None:
        """Restart: the connection drops and the charger boots when it reconnects."""
        self._rebooting = True
        self.drop_connection()

    def power_cut(self) -> None:
        """Lose power: the connection drops, and the charger boots when it reconnects.

        The meter keeps its register and a plugged vehicle stays plugged. What becomes of a
        running transaction is the version's (:meth:`_lose_power`); without
        ``persist_transactions`` the charger also forgets its queued transaction messages.
        """
        self._advance()
        if not self.options.persist_transactions:
            self._outbox.clear()
        for connector in self.connectors.values():
            self._lose_power(connector)
        self.reboot()

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
        await self.send_statuses()
        while self._outbox:
            action, payload, connector_id = self._outbox[0]
            await self._deliver(action, payload, connector_id)
            self._outbox.popleft()
        self._client.spawn(self._heartbeats)
        self._client.spawn(self._sample_meters)

    async def boot(self) -> None:
        """Send BootNotification until it is accepted (waiting the interval when not)."""
        while True:
            answer = await self.call("BootNotification", self._boot_request())
            self.boot_status = str(answer["status"])
            self._keep_heartbeat_interval(int(answer["interval"]))
            await self.notify()
            if answer["status"] == "Accepted":
                self.boots += 1
                await self.notify()
                return
            await asyncio.sleep(max(int(answer["interval"]), 1))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(max(self.heartbeat_interval_s, 1))
            await self._tolerate(self.call("Heartbeat", {}))

    async def _sample_meters(self) -> None:
        # Short naps, so a new interval (set by the central system) takes effect at once.
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            interval = max(self.sample_interval_s, 0.05)
            await asyncio.sleep(min(interval, max(last + interval - loop.time(), 0.0), 1.0))
            if loop.time() < last + interval:
                continue
            last = loop.time()
            for connector in self.connectors.values():
                if connector.transaction_id is not None:
                    await self._tolerate(self.send_periodic_sample(connector.connector_id))

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
        self._schemas.validate_request(action, payload)
        answer = await self._client.call(action, payload)
        if isinstance(answer, CallError):
            raise CallFailed(answer.code, answer.description)
        try:
            self._schemas.validate_result(action, answer.payload)
        except PayloadInvalid as exc:
            self.validation_failures.append(f"{action} answer: {exc}")
            raise CallFailed("InvalidAnswer", str(exc)) from exc
        return answer.payload

    def _keep_for_later(self, action: str, payload: dict[str, Any], connector_id: int) -> None:
        """Queue a transaction message that happened offline, to send after reconnecting."""
        self._outbox.append((action, self._queued(payload), connector_id))

    async def _deliver(
        self, action: str, payload: dict[str, Any], connector_id: int | None
    ) -> dict[str, Any]:
        """Send a transaction message; keep it for after reconnecting if the link drops."""
        try:
            answer = await self.call(action, payload)
        except CallFailed as exc:
            entry = (action, self._queued(payload), connector_id)
            retry = exc.code == "Disconnected" and action in self.TRANSACTION_ACTIONS
            if retry and entry not in self._outbox:
                self._outbox.append(entry)
            raise
        await self._delivered(action, payload, connector_id, answer)
        return answer

    def timestamp(self) -> str:
        """The current time as OCPP writes it."""
        return format_timestamp(self._clock.now())

    def _now(self) -> str:
        return self.timestamp()

    def _advance(self) -> None:
        now = self._monotonic()
        elapsed = now - self._last_tick
        self._last_tick = now
        for number, connector in self.connectors.items():
            if connector.charging:
                power_w = self.power_w(number)
                added = power_w * elapsed * self.options.speed / 3.6  # W*s -> mWh
                connector.meter_mwh += int(added)

    def power_w(self, connector_id: int) -> int:
        """The power a charging connector draws, in watts: the charger's own power here."""
        return int(self.options.power_kw * 1000)

    # --- CALLs from the central system -----------------------------------------------------

    async def _serve(self, call: Call) -> Answer:
        if self._observe is not None:
            self._observe(call)
        self.received_calls.append(call)
        await self.notify()
        try:
            self._schemas.validate_call(call)
        except FrameRejected as exc:
            self.validation_failures.append(f"{call.action}: {exc}")
            return Answer(error=(exc.code, exc.description))
        answer = self._answers.get(call.action)
        if answer is None:
            return Answer(error=(ErrorCode.NOT_SUPPORTED, f"{call.action} unsupported"))
        return answer(call.payload)
