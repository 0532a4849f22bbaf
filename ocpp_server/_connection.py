"""The async shell around one charger websocket connection.

Theory of operation: :meth:`ChargerConnection.run` owns an :class:`asyncio.TaskGroup` for the
life of the socket. Its own task reads frames one at a time: a CALL from the charger is
validated, handled and answered before the next frame is read (OCPP-J allows one outstanding
CALL per direction), so everything a charger reports reaches the core and the event sink in the
order it was sent. A CALLRESULT/CALLERROR completes the one outstanding CALL the server sent.
Framing and call matching are the sans-IO :class:`~ocpp_server.peer.OcppJPeer`'s; the waiting
for answers is :class:`~ocpp_server.link.CallLink`'s. What the payloads must hold and how each
action is handled come from the :class:`Dialect` of the OCPP version the connection negotiated.

Lifecycle changes go through the pure table in :mod:`ocpp_server.connection_state`. Effects that
send CALLs to the charger or close the socket run in a worker task inside the same TaskGroup
(started on demand, one at a time), so the reader never waits for the charger's answer to our
own CALL. Commands from the rest of Strom call :meth:`ChargerConnection.call` from their own
tasks; the link keeps exactly one server CALL outstanding per connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Protocol

from websockets.exceptions import ConnectionClosed

from ocpp_server.certificates import ChargerCa
from ocpp_server.connection_state import (
    ConnectionEvent,
    ConnectionState,
    Effect,
    may_handle,
    transition,
)
from ocpp_server.link import CallLink, CallTimedOut, LinkLost
from ocpp_server.ocppj import (
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameRejected,
    PayloadInvalid,
    pack_call,
)
from ocpp_server.peer import (
    Answered,
    Ignored,
    IgnoredKind,
    IncomingCall,
    OcppJPeer,
    Refused,
)
from ocpp_server.records import ChargerRecord, PendingCharger
from ocpp_server.settings import ChargerAuth, ChargerAuthLookup, OcppServerSettings, Quirk
from strom_core.crashpoints import crashpoint
from strom_core.ports import (
    ChargerCommands,
    ChargerDisplays,
    ChargerOffline,
    ChargerOnline,
    EventSink,
    OcppCore,
)

__all__ = [
    "CallOutcome",
    "ChargerConnection",
    "ConnectionLookup",
    "Dialect",
    "DialectContext",
    "DialectFactory",
    "OutcomeKind",
    "Reply",
    "Schemas",
    "Transport",
]

log = logging.getLogger("ocpp_server.connection")

LIVE_STATES: Final = frozenset(
    {ConnectionState.CONNECTED, ConnectionState.BOOT_REQUESTED, ConnectionState.ACCEPTED}
)

_CLOSE_REASONS: Final = {
    ConnectionEvent.SILENT: "no message for 2.5 heartbeat intervals",
    ConnectionEvent.REPLACED: "replaced by a newer connection",
    ConnectionEvent.APPROVED: "configured: reconnect with credentials",
    ConnectionEvent.LEASE_LOST: "another Strom process holds the charger",
}


class Transport(Protocol):
    """The part of a websocket connection the shell uses."""

    async def recv(self) -> str | bytes:
        """The next message; raises ``ConnectionClosed`` at the end."""
        ...

    async def send(self, message: str) -> None:
        """Send a text message."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection."""
        ...

    async def ping(self) -> Awaitable[float]:
        """Send a websocket ping; the returned awaitable completes with the pong."""
        ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A handler's answer: the CALLRESULT payload and what follows once it is sent.

    Attributes:
        payload: the CALLRESULT payload.
        then: a lifecycle event to fire after it.
        after: work that sends CALLs of its own (e.g. CertificateSigned after SignCertificate);
            it runs in the connection's TaskGroup, so the reader goes on reading the answers.
    """

    payload: Mapping[str, Any]
    then: ConnectionEvent | None = None
    after: Callable[[], Awaitable[None]] | None = None


Handler = Callable[["ChargerConnection", Mapping[str, Any]], Awaitable[Reply]]


class OutcomeKind:
    """How a CALL from the server ended."""

    ANSWERED = "answered"
    CALL_ERROR = "call_error"
    INVALID = "invalid"
    TIMEOUT = "timeout"
    LOST = "lost"  # sent, then the connection closed: the outcome is unknown
    OFFLINE = "offline"  # nothing was sent


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """The result of :meth:`ChargerConnection.call`."""

    kind: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    error_code: str = ""
    detail: str = ""


class Schemas(Protocol):
    """An OCPP version's payload validation (a module such as :mod:`ocpp_server.v16.schemas`)."""

    def validate_call(self, call: Call, *, lenient_lengths: bool = False) -> None:
        """Check a CALL from the charger; raise ``FrameRejected`` to answer it with an error."""
        ...

    def validate_result(
        self, action: str, payload: Mapping[str, Any], *, lenient_lengths: bool = False
    ) -> None:
        """Check a CALLRESULT payload answering ``action``; raise ``PayloadInvalid``."""
        ...

    def validate_request(self, action: str, payload: Mapping[str, Any]) -> None:
        """Check a request we are about to send; raise ``PayloadInvalid`` (our bug)."""
        ...


ConnectionLookup = Callable[[str], "ChargerConnection | None"]
"""A charger's current connection by charger id, or None."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """What a connection needs of the OCPP version it negotiated.

    Attributes:
        subprotocol: the websocket subprotocol (``ocpp1.6``).
        schemas: the version's payload validation.
        handlers: action name to handler of what a charger sends.
        configure: the CALLs sent once a charger's boot was accepted.
        trigger_boot: the BootNotification backstop.
        commands: makes the version's command set; it gets the lookup of the chargers whose
            live connection speaks this version (None for every other charger).
        wire_code: the version's spelling of an error code the version-neutral layers raise
            in OCPP 1.6's spelling (OCPP 2.0.1 says ``FormatViolation``); unchanged by default.
        displays: makes the version's screens (as ``commands``); None: its chargers have no
            screen the central system writes to.
        on_screen_reported: registers a listener told the charger id whenever a charger has
            reported what its screen can do (a no-op for a version without screens).
    """

    subprotocol: str
    schemas: Schemas
    handlers: Mapping[str, Handler]
    configure: Callable[[ChargerConnection], Awaitable[None]]
    trigger_boot: Callable[[ChargerConnection], Awaitable[None]]
    commands: Callable[[ConnectionLookup], ChargerCommands]
    wire_code: Callable[[ErrorCode], ErrorCode] = lambda code: code
    displays: Callable[[ConnectionLookup], ChargerDisplays] | None = None
    on_screen_reported: Callable[[Callable[[str], None]], None] = lambda _listener: None


@dataclass(frozen=True, slots=True)
class DialectContext:
    """What the server gives every OCPP version's handlers.

    Attributes:
        settings: the server's settings.
        core: the core's OCPP seam.
        events: where OCPP events are published.
        chargers: where configured chargers are looked up.
        now: wall time (aware UTC).
        pending: the pending entry of a connection held for approval, if any.
        update_pending: replaces a pending entry (while the charger is still pending).
        charger_ca: signs chargers' CSRs (SignCertificate); None when Strom has no charger CA.
    """

    settings: OcppServerSettings
    core: OcppCore
    events: EventSink
    chargers: ChargerAuthLookup
    now: Callable[[], datetime]
    pending: Callable[[ChargerConnection], PendingCharger | None]
    update_pending: Callable[[PendingCharger], None]
    charger_ca: ChargerCa | None = None


DialectFactory = Callable[[DialectContext], Dialect]
"""Makes an OCPP version's :class:`Dialect` for one server (``ocpp_server.v16.dialect``)."""


@dataclass(slots=True)
class ConnectionContext:
    """What every connection shares with the server."""

    settings: OcppServerSettings
    events: EventSink
    monotonic: Callable[[], float]
    now: Callable[[], datetime]
    totals: list[int]  # [received, sent] over all chargers


class ChargerConnection:
    """One websocket connection of one charger (see the module docstring)."""

    __slots__ = (
        "_close_reason",
        "_ctx",
        "_effects",
        "_link",
        "_peer",
        "_tg",
        "_transport",
        "_worker",
        "auth",
        "charger_id",
        "connected_at",
        "dialect",
        "last_seen",
        "record",
        "remote_address",
        "state",
    )

    def __init__(
        self,
        *,
        charger_id: str,
        transport: Transport,
        record: ChargerRecord,
        auth: ChargerAuth | None,
        context: ConnectionContext,
        dialect: Dialect,
        remote_address: str = "",
    ) -> None:
        self.charger_id = charger_id
        self.auth = auth  # None for a charger held for approval
        self.record = record
        self.remote_address = remote_address
        self.state = ConnectionState.DISCONNECTED
        self._transport = transport
        self._ctx = context
        self.dialect = dialect
        now = context.monotonic()
        self.connected_at = now
        self.last_seen = now
        self._peer = OcppJPeer("s")
        self._link = CallLink(self._peer, self._send_call, context.monotonic, lambda: self.online)
        self._effects: deque[Effect] = deque()
        self._worker = False
        self._tg: asyncio.TaskGroup | None = None
        self._close_reason = ""

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def online(self) -> bool:
        """A configured charger with a live connection."""
        return self.state in LIVE_STATES

    def has(self, quirk: Quirk) -> bool:
        """Whether the charger's profile sets ``quirk``."""
        return self.auth is not None and quirk in self.auth.quirks

    async def responsive(self, within_s: float) -> bool:
        """Whether the charger answers a websocket ping within ``within_s`` (a live link).

        A half-open connection (the charger moved to another network and its old TCP
        connection was never closed) does not answer.
        """
        try:
            async with asyncio.timeout(within_s):
                pong = await self._transport.ping()
                await pong
        except (TimeoutError, ConnectionClosed):
            return False
        return True

    async def refuse(self, code: int, reason: str) -> None:
        """Close the socket before the connection was ever served (nothing is published)."""
        await self._transport.close(code, reason)

    async def run(self) -> None:
        """Serve the connection until it closes."""
        opened = (
            ConnectionEvent.OPENED if self.auth is not None else ConnectionEvent.OPENED_UNREGISTERED
        )
        async with asyncio.TaskGroup() as tg:
            self._tg = tg
            await self._execute(self._fire(opened))
            await self._receive_loop()
            self._tg = None
            await self._execute(self._fire(ConnectionEvent.CLOSED))
            if not self._worker:
                # Events queued after the reader stopped (a ChargerOffline) still go out;
                # CALLs and closing are no-ops on a closed connection.
                while self._effects:
                    await self._apply(self._effects.popleft())

    def fire_background(self, event: ConnectionEvent) -> None:
        """Apply a lifecycle event from outside the connection's task (sweeper, new connection).

        The state changes now; publishing and closing run in the connection's TaskGroup.
        """
        effects = self._fire(event)
        self._queue(effects)

    def _fire(self, event: ConnectionEvent) -> tuple[Effect, ...]:
        self.state, effects = transition(self.state, event)
        if event in _CLOSE_REASONS:
            self._close_reason = _CLOSE_REASONS[event]
        if Effect.FAIL_PENDING_CALLS in effects:
            self._link.lose()
        return tuple(effect for effect in effects if effect is not Effect.FAIL_PENDING_CALLS)

    async def _execute(self, effects: tuple[Effect, ...]) -> None:
        """Publish inline (keeps event order with the reader); queue CALLs and closing."""
        for effect in effects:
            if effect in (Effect.CONFIGURE, Effect.TRIGGER_BOOT, Effect.CLOSE_SOCKET):
                self._queue((effect,))
            else:
                await self._apply(effect)

    def _queue(self, effects: tuple[Effect, ...]) -> None:
        if not effects:
            return
        self._effects.extend(effects)
        if self._worker:
            return
        if self._tg is None:
            # The reader has finished: the socket is closed, only events can still matter.
            return
        self._worker = True
        self._tg.create_task(self._work(), name=f"ocpp-effects-{self.charger_id}")

    async def _work(self) -> None:
        try:
            while self._effects:
                await self._apply(self._effects.popleft())
        finally:
            self._worker = False

    async def _apply(self, effect: Effect) -> None:
        ctx = self._ctx
        if effect is Effect.PUBLISH_ONLINE:
            self.record.connected_since = ctx.now()
            self.record.ocpp_version = self.dialect.subprotocol
            await ctx.events.publish(ChargerOnline(self.charger_id, ctx.now()))
        elif effect is Effect.PUBLISH_OFFLINE_CLOSED:
            await ctx.events.publish(ChargerOffline(self.charger_id, ctx.now(), "disconnected"))
        elif effect is Effect.PUBLISH_OFFLINE_SILENT:
            reason = "silent for 2.5 heartbeat intervals"
            await ctx.events.publish(ChargerOffline(self.charger_id, ctx.now(), reason))
        elif effect is Effect.CONFIGURE:
            if self.online:
                await self.dialect.configure(self)
        elif effect is Effect.TRIGGER_BOOT:
            if self.online:
                await self.dialect.trigger_boot(self)
        elif effect is Effect.CLOSE_SOCKET:
            await self._transport.close(1000, self._close_reason)

    # --- reading ---------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        while self.state is not ConnectionState.DISCONNECTED:
            try:
                message = await self._transport.recv()
            except ConnectionClosed:
                return
            self.last_seen = self._ctx.monotonic()
            self._ctx.totals[0] += 1
            logged = message if isinstance(message, str) else repr(message[:200])
            self.record.log("in", logged, self._ctx.now())
            try:
                await self._on_message(message)
            except ConnectionClosed:
                return

    async def _on_message(self, message: str | bytes) -> None:
        received = self._peer.receive(message)
        if isinstance(received, IncomingCall):
            await self._on_call(received.call)
        elif isinstance(received, Answered):
            self._link.deliver(received)
        elif isinstance(received, Refused):
            error = received.error
            log.warning("cp_id=%s: malformed CALL: %s", self.charger_id, error)
            code = self.dialect.wire_code(error.code)
            await self._send(self._peer.refuse(error.unique_id, code, error.description))
        else:
            self._ignore(received)

    def _ignore(self, ignored: Ignored) -> None:
        if ignored.kind is IgnoredKind.BINARY:
            log.warning("cp_id=%s: binary frame ignored (OCPP-J uses text)", self.charger_id)
        elif ignored.kind is IgnoredKind.UNREADABLE:
            log.warning("cp_id=%s: unreadable frame ignored: %s", self.charger_id, ignored.reason)
        else:
            log.warning(
                "cp_id=%s: answer to no outstanding CALL (id %s) ignored",
                self.charger_id,
                ignored.unique_id[:40],
            )

    async def _on_call(self, call: Call) -> None:
        try:
            reply = await self._serve(call)
        except FrameRejected as exc:
            log.warning("cp_id=%s: %s refused: %s", self.charger_id, call.action, exc)
            code = self.dialect.wire_code(exc.code)
            await self._send(self._peer.refuse(exc.unique_id, code, exc.description))
            return
        crashpoint("ocpp.before_reply")
        await self._send(self._peer.answer(call, reply.payload))
        if reply.then is not None:
            await self._execute(self._fire(reply.then))
        if reply.after is not None and self._tg is not None:
            self._tg.create_task(
                _logged(reply.after, self.charger_id, call.action),
                name=f"ocpp-after-{call.action}-{self.charger_id}",
            )

    async def _serve(self, call: Call) -> Reply:
        if not may_handle(self.state, call.action):
            raise FrameRejected(
                call.unique_id, ErrorCode.SECURITY_ERROR, "not accepted by the central system yet"
            )
        schemas = self.dialect.schemas
        schemas.validate_call(call, lenient_lengths=self.has(Quirk.LENIENT_STRING_LENGTHS))
        handler = self.dialect.handlers.get(call.action)
        if handler is None:
            raise FrameRejected(
                call.unique_id, ErrorCode.NOT_SUPPORTED, f"{call.action} is not served here"
            )
        try:
            reply = await handler(self, call.payload)
        except PayloadInvalid as exc:
            raise FrameRejected(call.unique_id, exc.code, exc.description) from exc
        except Exception as exc:
            # The boundary between a charger's request and Strom's core: a failure in the core
            # (database down, a bug) is logged with context and answered InternalError without
            # detail, so the charger retries; the connection keeps running.
            log.exception("cp_id=%s: %s failed in the core", self.charger_id, call.action)
            raise FrameRejected(
                call.unique_id, ErrorCode.INTERNAL_ERROR, "the central system failed"
            ) from exc
        try:
            schemas.validate_result(call.action, reply.payload)
        except PayloadInvalid as exc:  # our own answer breaks the schema: a bug
            log.error("cp_id=%s: invalid %s answer: %s", self.charger_id, call.action, exc)
            raise FrameRejected(
                call.unique_id, ErrorCode.INTERNAL_ERROR, "the central system failed"
            ) from exc
        return reply

    # --- writing ---------------------------------------------------------------------------

    async def _send(self, frame: str, *, logged: str | None = None) -> None:
        self.record.log("out", frame if logged is None else logged, self._ctx.now())
        self._ctx.totals[1] += 1
        await self._transport.send(frame)

    async def _send_call(self, frame: str, call: Call) -> None:
        await self._send(frame, logged=_redacted(call))

    async def call(
        self, action: str, payload: Mapping[str, Any], *, wait_s: float | None = None
    ) -> CallOutcome:
        """Send one CALL to the charger and wait for its answer.

        Args:
            action: the action, in the OCPP version of the connection.
            payload: its request payload (checked against the schema: a bad one is our bug).
            wait_s: seconds to wait, including the wait for an earlier CALL to finish;
                the server's command timeout by default.

        Returns:
            How it ended; never raises for the charger's behaviour.

        Raises:
            PayloadInvalid: the payload breaks the request schema (a bug in the caller).
        """
        self.dialect.schemas.validate_request(action, payload)
        if not self.online:
            return CallOutcome(OutcomeKind.OFFLINE, detail="the charger is not connected")
        limit = self._ctx.settings.command_timeout_s if wait_s is None else wait_s
        try:
            answer = await self._link.call(action, payload, timeout_s=limit)
        except CallTimedOut as exc:
            detail = "no answer in time" if exc.sent else "busy with another command; nothing sent"
            return CallOutcome(OutcomeKind.TIMEOUT, detail=detail)
        except LinkLost as exc:
            if not exc.sent:
                return CallOutcome(OutcomeKind.OFFLINE, detail="the charger disconnected")
            return CallOutcome(OutcomeKind.LOST, detail="connection closed before the answer")
        return self._outcome(action, answer)

    def _outcome(self, action: str, answer: CallResult | CallError) -> CallOutcome:
        if isinstance(answer, CallError):
            return CallOutcome(
                OutcomeKind.CALL_ERROR,
                error_code=answer.code[:50],
                detail=answer.description[:200],
            )
        try:
            self.dialect.schemas.validate_result(
                action, answer.payload, lenient_lengths=self.has(Quirk.LENIENT_STRING_LENGTHS)
            )
        except PayloadInvalid as exc:
            log.warning("cp_id=%s: invalid %s answer: %s", self.charger_id, action, exc)
            return CallOutcome(OutcomeKind.INVALID, error_code=exc.code, detail=exc.description)
        return CallOutcome(OutcomeKind.ANSWERED, payload=answer.payload)


def _redacted(call: Call) -> str | None:
    """The frame to keep in the message log when the real one carries a secret."""
    if call.action == "ChangeConfiguration" and call.payload.get("key") == "AuthorizationKey":
        return pack_call(Call(call.unique_id, call.action, {**call.payload, "value": "(redacted)"}))
    if call.action == "SetVariables":  # OCPP 2.0.1: the password is BasicAuthPassword
        entries = call.payload.get("setVariableData")
        if isinstance(entries, list) and any(_is_password(entry) for entry in entries):
            hidden = [
                {**entry, "attributeValue": "(redacted)"} if _is_password(entry) else entry
                for entry in entries
            ]
            return pack_call(
                Call(call.unique_id, call.action, {**call.payload, "setVariableData": hidden})
            )
    return None


def _is_password(entry: object) -> bool:
    if not isinstance(entry, dict):
        return False
    variable = entry.get("variable")
    return isinstance(variable, dict) and variable.get("name") == "BasicAuthPassword"


async def _logged(work: Callable[[], Awaitable[None]], charger_id: str, action: str) -> None:
    """Run a handler's follow-up work; a failure is logged and ends that work only."""
    try:
        await work()
    except Exception:
        log.exception("cp_id=%s: the work after %s failed", charger_id, action)
