"""Errors of the agent runtime (the pure nostr core has its own in :mod:`strom_nostr.errors`)."""

from __future__ import annotations

from strom_core.errors import StromError

__all__ = ["AgentError", "AgentUnavailable", "RelayError"]


class AgentError(StromError):
    """Base of the agent runtime's errors."""


class RelayError(AgentError):
    """A relay operation failed as a whole (no relay could be asked).

    Per-relay failures are reported in :class:`agent.relays.PublishResult` instead.
    """


class AgentUnavailable(AgentError):
    """No running agent for that charger (unknown, or stopped)."""
