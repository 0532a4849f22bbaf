"""What the operator's cockpit asks of the nostr agents, and what a status publication returns.

The agents (one per charger, over one relay pool) are an adapter; the cockpit reads their
keys and last status publication, the relays' states, a charger's newest status event, and
asks an agent to publish again or to show an operator's change. In a cluster an agent runs in
one process; the calls of :class:`NostrAgents` that name a charger are answered at any
process (the agents' adapter carries them to the agent's process). The cockpit sees them only
through the Protocols below, which the agents' runtime satisfies as it is (checked by mypy where the
composition root hands it to the cockpit).

Fan-out results are per destination (:class:`PublishResult`): one relay failing is not an
error, and callers decide what quorum they need.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "NostrAgent",
    "NostrAgents",
    "PublishResult",
    "RelayEvent",
    "RelayPoolView",
    "StatusListener",
]


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What the relays said to one published event.

    Attributes:
        event_id: the event's id.
        ok: relays that accepted it (relay URL → acknowledgement).
        failed: relays that did not (relay URL → reason).
    """

    event_id: str
    ok: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        """Whether at least one relay accepted the event."""
        return bool(self.ok)


StatusListener = Callable[[str, PublishResult], None]
"""Told about every status publication: the charger's id and what the relays said."""


class RelayEvent(Protocol):
    """A signed nostr event as a relay returned it."""

    @property
    def created_at(self) -> int:
        """Its ``created_at`` (unix seconds)."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object of NIP-01."""
        ...


class RelayPoolView(Protocol):
    """The agents' relay pool, as far as an operator looks at it."""

    @property
    def read_relays(self) -> Sequence[str]:
        """Relays the agents read from."""
        ...

    @property
    def write_relays(self) -> Sequence[str]:
        """Relays the agents publish to."""
        ...

    async def states(self) -> Mapping[str, str]:
        """Each relay's connection state (``Connected``, ...); raises while not started."""
        ...

    async def fetch(
        self, filters: Sequence[Mapping[str, Any]], *, timeout_s: float = ...
    ) -> Sequence[RelayEvent]:
        """Events matching NIP-01 ``filters`` from the read relays, within ``timeout_s``."""
        ...


class NostrAgent(Protocol):
    """One charger's agent: an actor that publishes the charger's status."""

    @property
    def pubkey(self) -> str:
        """The charger's public key (hex)."""
        ...

    @property
    def last_status(self) -> PublishResult | None:
        """The last status publication, or None before the first."""
        ...

    def set_enabled(self, connector_id: int, enabled: bool) -> None:
        """Record an operator's enable/disable of a connector; the status is re-published."""
        ...

    def mark_dirty(self) -> None:
        """Re-publish the status soon (after a price change)."""
        ...

    async def publish_status(self) -> PublishResult:
        """Sign and publish the status event now (run it through :meth:`call`)."""
        ...

    async def call(self, work: Callable[[], Awaitable[Any]], *, timeout_s: float = ...) -> Any:
        """Run ``work`` inside the actor, in order with its other input; return its result.

        Raises:
            RetryLater: the agent did not get to it within ``timeout_s`` (it is restarting).
        """
        ...


class NostrAgents(Protocol):
    """Every charger's agent over one relay pool."""

    @property
    def pool(self) -> RelayPoolView:
        """The relay pool."""
        ...

    def pubkey(self, charger_id: str) -> str | None:
        """The charger's public key (hex), or None for a charger without an agent."""
        ...

    def agent(self, charger_id: str) -> NostrAgent:
        """The agent of a charger.

        Raises:
            AgentUnavailable: no agent runs for it.
        """
        ...

    def add_status_listener(self, listener: StatusListener) -> None:
        """Tell ``listener`` about every status publication from now on."""
        ...

    async def status_of(self, charger_id: str) -> PublishResult | None:
        """The agent's last status publication, wherever it runs (None before the first).

        This and the calls below raise:
            AgentUnavailable: no agent runs for the charger; :class:`AgentMoving` (a kind of
                it) in a cluster when the process running it did not answer.
            RetryLater: the agent did not get to it (restarting or stopping).
        """
        ...

    async def publish_status(self, charger_id: str) -> PublishResult:
        """Sign and publish the charger's status event now, in its agent."""
        ...

    async def set_enabled(self, charger_id: str, connector_id: int, enabled: bool) -> None:
        """Show an operator's enable/disable of a connector in the charger's status."""
        ...

    async def mark_dirty(self, charger_id: str) -> None:
        """Re-publish the charger's status soon (after a price change)."""
        ...
