"""One end of an OCPP-J link, with no I/O: framing, call matching and call deadlines.

Theory of operation: the central system and a charge point speak the same RPC (OCPP-J): each
may send CALLs, and each CALL is answered by one CALLRESULT or CALLERROR with its unique id.
OCPP-J allows one outstanding CALL per direction, so a peer tracks at most one CALL of its own.
:class:`OcppJPeer` holds that state and nothing else; it never touches a socket, a task or a
clock of its own (the caller passes the time), so the server's connection and the simulated
charge point share it, and it is tested without an event loop.

* :meth:`OcppJPeer.receive` turns one websocket message into what the shell must do:
  :class:`IncomingCall` (answer it), :class:`Answered` (our CALL got its answer),
  :class:`Refused` (a broken CALL: send ``reply``), or :class:`Ignored` (log it: an unreadable
  frame, a binary frame, or an answer to no outstanding CALL — also one that came too late).
* :meth:`OcppJPeer.start_call` allocates a unique id (``<prefix><n>``), records the CALL with its
  deadline and returns the frame to send. :meth:`OcppJPeer.expire` gives up a CALL past its
  deadline; :meth:`OcppJPeer.abandon` gives it up now (the connection dropped, or the caller
  stopped waiting). An answer to a CALL given up is :class:`Ignored`, never matched later.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ocpp_server.ocppj import (
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameRejected,
    UnreadableFrame,
    pack_call,
    pack_error,
    pack_result,
    parse_frame,
)

__all__ = [
    "Answered",
    "CallInProgress",
    "Ignored",
    "IgnoredKind",
    "IncomingCall",
    "OcppJPeer",
    "OutgoingCall",
    "Received",
    "Refused",
]


@dataclass(frozen=True, slots=True)
class OutgoingCall:
    """A CALL this peer sent and waits for, until ``deadline`` (the caller's clock)."""

    unique_id: str
    action: str
    deadline: float


@dataclass(frozen=True, slots=True)
class IncomingCall:
    """A well-formed CALL from the other side: answer it (its payload is not validated yet)."""

    call: Call


@dataclass(frozen=True, slots=True)
class Answered:
    """The answer to this peer's outstanding CALL."""

    call: OutgoingCall
    answer: CallResult | CallError


@dataclass(frozen=True, slots=True)
class Refused:
    """A CALL that cannot be served as sent: send ``reply`` (a CALLERROR)."""

    error: FrameRejected
    reply: str


class IgnoredKind(enum.Enum):
    """Why a message needs no answer."""

    BINARY = "binary"  # OCPP-J uses text frames
    UNREADABLE = "unreadable"  # no unique id can be read, so no answer can be sent
    STRAY = "stray"  # an answer to no outstanding CALL (or to one given up)


@dataclass(frozen=True, slots=True)
class Ignored:
    """A message the shell logs and otherwise drops."""

    kind: IgnoredKind
    reason: str
    unique_id: str = ""


Received = IncomingCall | Answered | Refused | Ignored


class CallInProgress(RuntimeError):
    """A CALL was started while another one is outstanding (a bug in the shell)."""


class OcppJPeer:
    """The OCPP-J state of one connection (see the module docstring).

    Args:
        id_prefix: prefix of the unique ids of this peer's CALLs (``s`` gives ``s1``, ``s2``…).
    """

    __slots__ = ("_next_id", "_pending", "_prefix")

    def __init__(self, id_prefix: str) -> None:
        self._prefix = id_prefix
        self._next_id = 0
        self._pending: OutgoingCall | None = None

    @property
    def pending(self) -> OutgoingCall | None:
        """The outstanding CALL, if any."""
        return self._pending

    def receive(self, message: str | bytes) -> Received:
        """Read one websocket message (see the module docstring for the outcomes)."""
        if isinstance(message, bytes):
            return Ignored(IgnoredKind.BINARY, "binary frame ignored (OCPP-J uses text)")
        try:
            frame = parse_frame(message)
        except UnreadableFrame as exc:
            return Ignored(IgnoredKind.UNREADABLE, str(exc))
        except FrameRejected as exc:
            return Refused(exc, pack_error(exc.unique_id, exc.code, exc.description))
        if isinstance(frame, Call):
            return IncomingCall(frame)
        pending = self._pending
        if pending is None or pending.unique_id != frame.unique_id:
            return Ignored(IgnoredKind.STRAY, "answer to no outstanding CALL", frame.unique_id)
        self._pending = None
        return Answered(pending, frame)

    def start_call(
        self, action: str, payload: Mapping[str, Any], *, now: float, timeout_s: float
    ) -> tuple[OutgoingCall, str]:
        """Record a new outstanding CALL and return it with the frame to send.

        Raises:
            CallInProgress: another CALL is outstanding.
        """
        if self._pending is not None:
            raise CallInProgress(f"{self._pending.action} is still outstanding")
        self._next_id += 1
        outgoing = OutgoingCall(f"{self._prefix}{self._next_id}", action, now + timeout_s)
        self._pending = outgoing
        return outgoing, pack_call(Call(outgoing.unique_id, action, dict(payload)))

    def expire(self, now: float) -> OutgoingCall | None:
        """Give up the outstanding CALL if its deadline passed; returns it then."""
        pending = self._pending
        if pending is None or now < pending.deadline:
            return None
        self._pending = None
        return pending

    def abandon(self) -> OutgoingCall | None:
        """Give up the outstanding CALL now (returns it, if there was one)."""
        pending, self._pending = self._pending, None
        return pending

    @staticmethod
    def answer(call: Call, payload: Mapping[str, Any]) -> str:
        """The CALLRESULT frame answering ``call``."""
        return pack_result(call.unique_id, payload)

    @staticmethod
    def refuse(unique_id: str, code: ErrorCode | str, description: str) -> str:
        """The CALLERROR frame refusing the CALL with ``unique_id``."""
        return pack_error(unique_id, code, description)
