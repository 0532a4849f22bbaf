"""Strom's error tree: one root, split by fault, mapped to the wire at each boundary.

``LocalProtocolError`` means *we* were asked to do something illegal (a bug or a race we lost);
``RemoteProtocolError`` means a peer (charger, wallet, relay) sent something wrong. Backend errors
say whether the outcome is known. Third-party exceptions are translated where they are raised and
never cross a package boundary.
"""

from __future__ import annotations

__all__ = [
    "AgentError",
    "AgentMoving",
    "AgentUnavailable",
    "BackendError",
    "BackendRejected",
    "BackendTimeout",
    "BackendUnavailable",
    "BusError",
    "BusUnavailable",
    "ConfigError",
    "IllegalTransition",
    "InvariantViolation",
    "LedgerError",
    "LocalProtocolError",
    "NoReply",
    "PayloadTooLarge",
    "ProtocolError",
    "RelayError",
    "RemoteProtocolError",
    "StorageError",
    "StromError",
]


class StromError(Exception):
    """Root of every error Strom raises on purpose."""


class ProtocolError(StromError):
    """A protocol rule was broken."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol or state machine forbids."""


class RemoteProtocolError(ProtocolError):
    """A peer sent something the protocol forbids."""


class IllegalTransition(LocalProtocolError):
    """An event that is not allowed in the current state; nothing was changed."""

    def __init__(self, state: str, event: str, detail: str = "") -> None:
        self.state = state
        self.event = event
        message = f"event {event} is not allowed in state {state}"
        super().__init__(f"{message}: {detail}" if detail else message)


class LedgerError(StromError):
    """A write would break the ledger's rules (lost money, double payment)."""


class InvariantViolation(StromError):
    """A computed state breaks the ledger invariant: a bug, not a user error; nothing is stored."""


class StorageError(StromError):
    """The database could not be reached or used."""


class BackendError(StromError):
    """A lightning backend failed."""


class BackendTimeout(BackendError):
    """No answer in time: the outcome is unknown."""


class BackendUnavailable(BackendError):
    """The backend cannot be reached or answered 5xx: the outcome is unknown."""


class BackendRejected(BackendError):
    """The backend definitely refused the request: nothing happened."""


class ConfigError(StromError):
    """A configuration file or value is wrong; the message names file, key, expected and found."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AgentError(StromError):
    """Base of the agent runtime's errors."""


class RelayError(AgentError):
    """A relay operation failed as a whole (no relay could be asked).

    Per-relay failures are reported with each relay's answer instead.
    """


class AgentUnavailable(AgentError):
    """No running agent for that charger (unknown, or stopped)."""


class AgentMoving(AgentUnavailable):
    """The charger's agent runs in another process of a cluster, which did not answer.

    It is moving to another process (the one running it died or handed it over), or the bus
    is down; asking again in a few seconds reaches its new process.
    """


class BusError(StromError):
    """The bus between Strom's processes failed (:mod:`strom_core.ports.cluster`)."""


class NoReply(BusError):
    """A request got no reply: it timed out, no process serves the target, or its handler failed.

    The outcome is unknown: the command may have run on the target process (its reply may be
    the part that was lost). A caller reports "charger offline or outcome unknown" and never
    assumes that nothing happened.
    """

    def __init__(self, process_id: str, subject: str, reason: str) -> None:
        self.process_id = process_id
        self.subject = subject
        self.reason = reason
        super().__init__(f"no reply from process {process_id!r} to {subject!r}: {reason}")


class BusUnavailable(BusError):
    """The bus could not be reached to publish: the event may or may not have gone out."""


class PayloadTooLarge(BusError):
    """A payload is larger than the bus carries: refused before anything was sent."""

    def __init__(self, size: int, limit: int, detail: str = "") -> None:
        self.size = size
        self.limit = limit
        message = f"a payload of {size} bytes is larger than the bus carries ({limit} bytes)"
        super().__init__(f"{message}: {detail}" if detail else message)
