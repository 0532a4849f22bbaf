"""The thin async shell over an :class:`~ocpp_server.peer.OcppJPeer`'s outgoing CALLs.

:class:`CallLink` lets several tasks send CALLs over one connection: a lock keeps exactly one
outstanding (OCPP-J), each caller waits on a future that the connection's reader completes with
:meth:`CallLink.deliver`, and :meth:`CallLink.lose` fails the waiting caller when the
connection goes away. The wait (queueing behind an earlier CALL included) is bounded by the
caller's timeout. The server's connection and the simulated charge point both use it; what a
CALL's answer means is theirs to decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from websockets.exceptions import ConnectionClosed

from ocpp_server.ocppj import Call, CallError, CallResult
from ocpp_server.peer import Answered, OcppJPeer

__all__ = ["CallLink", "CallTimedOut", "LinkLost"]


class CallTimedOut(Exception):
    """No answer in time (``sent`` False: the CALL waited behind another and was never sent)."""

    def __init__(self, *, sent: bool) -> None:
        super().__init__("no answer in time" if sent else "nothing sent in time")
        self.sent = sent


class LinkLost(Exception):
    """The connection went away (``sent`` True: after the CALL was sent; its outcome is unknown)."""

    def __init__(self, *, sent: bool) -> None:
        super().__init__("connection lost after sending" if sent else "not connected")
        self.sent = sent


class _Lost(Exception):
    """Completes a waiting CALL when its connection goes away."""


class CallLink:
    """Outgoing CALLs of one connection, one at a time (see the module docstring).

    Args:
        peer: the connection's OCPP-J state.
        send: writes one frame; gets the CALL too (to log it redacted, for instance).
        monotonic: the clock of the CALLs' deadlines (seconds).
        may_send: checked once a CALL's turn has come; False ends it with ``LinkLost``.
    """

    __slots__ = ("_lock", "_lost", "_may_send", "_monotonic", "_peer", "_send", "_waiting")

    def __init__(
        self,
        peer: OcppJPeer,
        send: Callable[[str, Call], Awaitable[None]],
        monotonic: Callable[[], float],
        may_send: Callable[[], bool] = lambda: True,
    ) -> None:
        self._peer = peer
        self._send = send
        self._monotonic = monotonic
        self._may_send = may_send
        self._lock = asyncio.Lock()
        self._waiting: tuple[str, asyncio.Future[CallResult | CallError]] | None = None
        self._lost = False

    async def call(
        self, action: str, payload: Mapping[str, Any], *, timeout_s: float
    ) -> CallResult | CallError:
        """Send one CALL and wait for its answer.

        Raises:
            CallTimedOut: no answer within ``timeout_s`` (the queueing included).
            LinkLost: the connection is gone, or went away before the answer.
        """
        sent = False
        try:
            async with asyncio.timeout(timeout_s), self._lock:
                if self._lost or not self._may_send():
                    raise LinkLost(sent=False)
                outgoing, frame = self._peer.start_call(
                    action, payload, now=self._monotonic(), timeout_s=timeout_s
                )
                future: asyncio.Future[CallResult | CallError] = (
                    asyncio.get_running_loop().create_future()
                )
                self._waiting = (outgoing.unique_id, future)
                try:
                    await self._send(frame, Call(outgoing.unique_id, action, dict(payload)))
                    sent = True
                    return await future
                finally:
                    self._waiting = None
                    if self._peer.pending is outgoing:
                        self._peer.abandon()  # a late answer is then ignored, never matched
                    if future.done() and not future.cancelled():
                        future.exception()  # retrieved: a loss before the await is no error
        except TimeoutError:
            raise CallTimedOut(sent=sent) from None
        except (_Lost, ConnectionClosed):
            raise LinkLost(sent=sent) from None

    def deliver(self, answered: Answered) -> None:
        """Complete the waiting CALL with the answer the peer matched to it."""
        waiting = self._waiting
        matches = waiting is not None and waiting[0] == answered.call.unique_id
        if waiting is not None and matches and not waiting[1].done():
            waiting[1].set_result(answered.answer)

    def lose(self) -> None:
        """The connection is gone: fail the waiting CALL, refuse the next ones."""
        self._lost = True
        self._peer.abandon()
        waiting = self._waiting
        if waiting is not None and not waiting[1].done():
            waiting[1].set_exception(_Lost())
