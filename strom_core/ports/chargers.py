"""What the core asks of chargers, and how connected a charger is.

:class:`ChargerCommands` is what the services and the agents call to act on a charger; the OCPP
server implements it (typed results, timeouts, one outstanding CALL per charger).
:class:`ChargerDisplays` reaches the screens of chargers that have one the central system may
write to (OCPP 2.0.1 display messages and running cost); chargers without one are simply left
alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

__all__ = [
    "NO_SCREEN",
    "ChargerCommands",
    "ChargerDisplays",
    "ChargerIdentities",
    "ChargerLink",
    "CommandResult",
    "CommandStatus",
    "ScreenCapabilities",
    "ScreenMessage",
    "charger_link",
]


class CommandStatus(enum.StrEnum):
    """Outcome of a command sent to a charger."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    NOT_SUPPORTED = "NotSupported"
    OFFLINE = "Offline"  # the charger is not connected: nothing was sent
    TIMEOUT = "Timeout"  # sent, no answer in time: the outcome is unknown
    ERROR = "Error"  # the charger answered with a CALLERROR


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A typed answer from a charger to one command."""

    status: CommandStatus
    detail: str = ""

    @property
    def accepted(self) -> bool:
        """True when the charger accepted the command."""
        return self.status is CommandStatus.ACCEPTED


class ChargerLink(enum.StrEnum):
    """Whether Strom can reach a charger, as offers, pages, the API and nostr show it."""

    ONLINE = "online"  # a live OCPP connection: offers are made
    # Connected when Strom last stopped (or crashed), not back yet, within its reconnect grace
    # (``ocpp.reconnect_grace_s``): offers refuse, but its connectors keep their last status.
    RECONNECTING = "reconnecting"
    OFFLINE = "offline"


def charger_link(online: bool, reconnect_until: datetime | None, now: datetime) -> ChargerLink:
    """A charger's link from its database columns (``chargers.online``, ``reconnect_until``).

    Args:
        online: a process holds a live connection of the charger.
        reconnect_until: the end of its reconnect grace after a restart of Strom, if any.
        now: the current time (aware UTC).
    """
    if online:
        return ChargerLink.ONLINE
    if reconnect_until is not None and now < reconnect_until:
        return ChargerLink.RECONNECTING
    return ChargerLink.OFFLINE


class ChargerIdentities(Protocol):
    """Each charge point's nostr identity, as the HTTP front door needs it for zaps."""

    def pubkey(self, charger_id: str) -> str | None:
        """The charger's public key (hex), or None when it has no nostr identity."""
        ...


class ChargerCommands(Protocol):
    """Commands to chargers. Each returns a typed result; none raises for a charger's answer."""

    def is_online(self, charger_id: str) -> bool:
        """Whether the charger has a live connection now."""
        ...

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        """RemoteStartTransaction for one connector with a per-session idTag."""
        ...

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        """Stop a transaction by its reference (OCPP 1.6 RemoteStopTransaction)."""
        ...

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        """UnlockConnector."""
        ...

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        """ChangeAvailability (Operative / Inoperative)."""
        ...

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        """Reset (Soft / Hard)."""
        ...

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        """TriggerMessage StatusNotification."""
        ...


@dataclass(frozen=True, slots=True)
class ScreenCapabilities:
    """What a charger's screen can show, as the charger reported it.

    Attributes:
        messages: it shows text the central system sets (OCPP 2.0.1 SetDisplayMessage).
        qr: it shows a URI message as a QR code.
        cost: it shows the running cost of a transaction (OCPP 2.0.1 CostUpdated).
    """

    messages: bool = False
    qr: bool = False
    cost: bool = False


NO_SCREEN = ScreenCapabilities()


@dataclass(frozen=True, slots=True)
class ScreenMessage:
    """One message on a charger's screen; a new message with the same id replaces it.

    Attributes:
        message_id: the charger's id of the message (a positive integer).
        connector_id: the connector it is about (0: the whole charger).
        text: what it says (plain text, at most 512 characters), or the URI of a QR code.
        uri: ``text`` is a URI to show as a QR code (``lightning:LNURL1...``).
        urgent: shown in front of the charger's other messages (what the driver must do now).
    """

    message_id: int
    connector_id: int
    text: str
    uri: bool = False
    urgent: bool = False


class ChargerDisplays(Protocol):
    """The screens of connected chargers. No method raises for a charger's answer."""

    def screen_of(self, charger_id: str) -> ScreenCapabilities:
        """What the charger's screen can show (nothing, when offline or unknown)."""
        ...

    async def show(self, charger_id: str, message: ScreenMessage) -> CommandResult:
        """Show a message (replacing the one with its id)."""
        ...

    async def clear(self, charger_id: str, message_id: int) -> CommandResult:
        """Remove a message."""
        ...

    async def show_cost(self, charger_id: str, connector_id: int, total: Decimal) -> CommandResult:
        """Show the running cost of the transaction on a connector, in the screen's currency."""
        ...
