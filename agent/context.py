"""What the handler modules see of a charger's agent: small Protocols, no agent class.

The handlers (:mod:`agent.zaps`, :mod:`agent.conversations`, :mod:`agent.operator`,
:mod:`agent.notifications`) each take the narrowest of these that covers what they use.
:class:`agent.agent.Agent` implements all of them and imports the handlers; no handler imports
the agent, so the agent's modules import one another in one direction only (a contract of
import-linter keeps it so).

* :class:`ChargerContext` - who the charger is and what all agents share: enough to sign,
  publish, read the database and read the clock (zap receipts, building and sending DMs).
* :class:`SessionWatch` - also told when a zap session starts or ends charging (session DMs
  and progress DMs).
* :class:`ChargerControl` - also the charger's profile and live state, which operator
  commands read and change (answering DMs, operator commands).
"""

from __future__ import annotations

from typing import Protocol

from agent.identity import AgentKey
from agent.services import AgentServices
from strom_core.config import ProfileConfig
from strom_core.ports import ChargerLink

__all__ = ["ChargerContext", "ChargerControl", "SessionWatch"]


class ChargerContext(Protocol):
    """A charger's identity and the services every agent shares."""

    @property
    def charger_id(self) -> str:
        """The charger's id."""
        ...

    @property
    def pubkey(self) -> str:
        """The charger's public key (hex)."""
        ...

    @property
    def key(self) -> AgentKey:
        """The charger's key: it signs the charger's events and opens its DMs."""
        ...

    @property
    def services(self) -> AgentServices:
        """The relay pool, the stores, the core services, the clock."""
        ...


class SessionWatch(ChargerContext, Protocol):
    """A charger's agent that keeps the list of its charging zap sessions (progress DMs)."""

    def session_started(self, session_id: str) -> None:
        """A zap session started charging: send it progress DMs."""
        ...

    def session_ended(self, session_id: str) -> None:
        """A zap session stopped: no more progress DMs."""
        ...


class ChargerControl(ChargerContext, Protocol):
    """A charger's agent as operator commands see it: its profile and live state."""

    @property
    def profile(self) -> ProfileConfig:
        """The charger's profile in use."""
        ...

    @property
    def link(self) -> ChargerLink:
        """Connected, reconnecting (within its grace after a restart of Strom) or offline."""
        ...

    @property
    def connectors(self) -> dict[int, tuple[str, bool]]:
        """Connector id -> (OCPP status, enabled), as last known."""
        ...

    def set_enabled(self, connector_id: int, enabled: bool) -> None:
        """Record an operator's enable/disable; the status is re-published."""
        ...

    def mark_dirty(self) -> None:
        """Re-publish the status soon (after a price change)."""
        ...

    @property
    def reservations(self) -> dict[int, tuple[str, int]]:
        """Connector id -> (holder, end in unix seconds) of the reservations Strom holds."""
        ...

    def note_reservation(self, connector_id: int, holder: str, until: int | None) -> None:
        """Note a reservation Strom holds on a connector (until ``until``), or its end (None)."""
        ...
