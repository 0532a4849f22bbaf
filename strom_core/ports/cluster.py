"""The bus between Strom's processes: commands to one process, events to all of them.

Theory of operation
-------------------
Several identical Strom processes may share one PostgreSQL. A charger's websocket is held by
one of them (its lease owner); a command for that charger (remote start or stop, an operator's
action, an agent's command) is sent to that process by its *process id* and answered back
(:meth:`Bus.request` / :meth:`Bus.serve`). Live events (the admin websocket, session pages,
metrics) go to every process (:meth:`Bus.publish` / :meth:`Bus.subscribe`).

Delivery is *at most once* and nothing is kept: the state is in PostgreSQL, the bus only says
"do this now" or "this just changed". So:

* a request that gets no reply raises :class:`~strom_core.errors.NoReply`, whose outcome is
  unknown (the command may have run and its reply been lost); a late command is never
  delivered after its caller gave up waiting by a retry of the bus's own;
* an event published while a process was disconnected is lost for that process, which reloads
  what it shows from the database when it is back (each implementation says when that is).

Payloads are bytes (JSON, written by the caller); each bus carries at most
:attr:`Bus.max_payload` bytes and refuses a larger one with
:class:`~strom_core.errors.PayloadTooLarge` before sending anything. Process ids, subjects and
topics are short names (:func:`check_name`), so that every implementation can carry them
unchanged (NATS subject tokens, PostgreSQL channel names).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol

from strom_core.errors import LocalProtocolError

__all__ = ["MAX_NAME_LENGTH", "Bus", "Handler", "Subscription", "check_name"]

MAX_NAME_LENGTH = 48  # a PostgreSQL channel name is at most 63 bytes, with a prefix
_NAME = re.compile(rf"[A-Za-z0-9_-]{{1,{MAX_NAME_LENGTH}}}")

Handler = Callable[[str, bytes], Awaitable[bytes]]
"""Serves a request: called with its subject and payload, returns the reply's payload."""


def check_name(kind: str, name: str) -> str:
    """A process id, subject or topic, checked.

    Args:
        kind: what the name is, for the error (``"process id"``, ``"subject"``, ``"topic"``).
        name: the name.

    Returns:
        ``name``.

    Raises:
        LocalProtocolError: not 1 to 48 letters, digits, ``_`` or ``-``.
    """
    if not isinstance(name, str) or _NAME.fullmatch(name) is None:
        raise LocalProtocolError(
            f"a bus {kind} is 1 to {MAX_NAME_LENGTH} letters, digits, '_' or '-', got {name!r}"
        )
    return name


class Subscription(Protocol):
    """The events of one topic, in the order one publisher sent them, from subscription on.

    Iterating ends when the subscription or its bus is closed.
    """

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None:
        """Stop receiving; iterating ends."""
        ...


class Bus(Protocol):
    """Commands to one process and events to all, between the processes of one Strom."""

    @property
    def max_payload(self) -> int:
        """The largest payload, in bytes, that this bus carries."""
        ...

    async def request(
        self,
        process_id: str,
        subject: str,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109 - the bus keeps the request's correlation that long
    ) -> bytes:
        """Send a request to one process and wait for its reply.

        Args:
            process_id: the process that serves it (:meth:`serve`).
            subject: what is asked (the handler's first argument).
            payload: the request.
            timeout: seconds to wait for the reply.

        Returns:
            The reply's payload.

        Raises:
            NoReply: no reply in time, no process serves ``process_id``, its handler failed,
                or the bus is down; the outcome is unknown.
            PayloadTooLarge: the payload is larger than :attr:`max_payload`; nothing was sent.
            LocalProtocolError: a name is not a bus name (:func:`check_name`).
        """
        ...

    async def serve(self, process_id: str, handler: Handler) -> None:
        """Answer the requests sent to ``process_id`` with ``handler``, from when this returns.

        Each request runs in its own task; a handler that raises is logged and its requester
        gets :class:`~strom_core.errors.NoReply`. Serving stops when the bus is closed.

        Raises:
            LocalProtocolError: ``process_id`` is not a bus name, or this bus serves it already.
        """
        ...

    async def publish(self, topic: str, payload: bytes) -> None:
        """Send an event to every process subscribed to ``topic`` (this one too).

        Raises:
            PayloadTooLarge: the payload is larger than :attr:`max_payload`; nothing was sent.
            BusUnavailable: the bus could not be reached; the event may be lost.
        """
        ...

    async def subscribe(self, topic: str) -> Subscription:
        """The events of ``topic`` published from when this returns."""
        ...

    async def aclose(self) -> None:
        """Stop serving, end every subscription and disconnect; a second call does nothing."""
        ...
