"""What the server remembers about each charger between connections, and the admin views of it.

A :class:`ChargerRecord` lives as long as the server process: it survives reconnects and keeps
the last BootNotification, connector status, reported variables (OCPP 2.0.1), the recent OCPP
frames (a bounded log), message counters, and the transactions this process saw start
(connector and meterStart, needed to tag meter samples and for the session-relative meter
quirk). It holds no socket.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Literal, NamedTuple

__all__ = [
    "FEATURE_PROFILES",
    "BootInfo",
    "ChargerInfo",
    "ChargerRecord",
    "LoggedMessage",
    "MessageCounters",
    "OpenTransaction",
    "PendingCharger",
    "SecurityEvent",
]

FEATURE_PROFILES: Final = "SupportedFeatureProfiles"
"""The OCPP 1.6 configuration key naming the charger's feature profiles, read after its boot."""

_MAX_LOGGED_CHARS: Final = 2_000
_MAX_OPEN_TRANSACTIONS: Final = 32
_MAX_SECURITY_EVENTS: Final = 50

Direction = Literal["in", "out"]


@dataclass(frozen=True, slots=True)
class BootInfo:
    """What a charger says about itself when it boots (OCPP 1.6 BootNotification names)."""

    vendor: str
    model: str
    serial_number: str | None = None
    charge_box_serial_number: str | None = None
    firmware_version: str | None = None
    iccid: str | None = None
    imsi: str | None = None
    meter_type: str | None = None
    meter_serial_number: str | None = None


class LoggedMessage(NamedTuple):
    """One OCPP frame as received (``in``) or sent (``out``)."""

    at: datetime
    direction: Direction
    frame: str


@dataclass(frozen=True, slots=True)
class MessageCounters:
    """Websocket messages received from and sent to chargers."""

    received: int
    sent: int


@dataclass(frozen=True, slots=True)
class OpenTransaction:
    """A transaction this process saw start (accepted), until its stop."""

    connector_id: int
    meter_start_wh: int


@dataclass(frozen=True, slots=True)
class PendingCharger:
    """An unknown charger held for operator approval (auto-registration)."""

    charger_id: str
    remote_address: str
    first_seen: datetime
    last_seen: datetime
    presented_credentials: bool
    boot: BootInfo | None = None


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One OCPP 2.0.1 SecurityEventNotification: its type, the station's time, tech info."""

    type: str
    timestamp: datetime
    tech_info: str | None = None


@dataclass(frozen=True, slots=True)
class ChargerInfo:
    """A snapshot of one charger for the admin view."""

    charger_id: str
    online: bool
    state: str
    connected_since: datetime | None
    boot: BootInfo | None
    connector_status: dict[int, str]
    notifications: dict[str, str]
    counters: MessageCounters
    # Reported device-model variables (OCPP 2.0.1 NotifyReport): "Component/Variable" -> value.
    variables: dict[str, str] = field(default_factory=dict)
    # The websocket subprotocol of its latest connection (``ocpp1.6``, ``ocpp2.0.1``).
    ocpp_version: str | None = None
    # Its latest OCPP 2.0.1 SecurityEventNotifications, oldest first.
    security_events: tuple[SecurityEvent, ...] = ()


@dataclass(slots=True)
class ChargerRecord:
    """Mutable per-charger memory of the server (see the module docstring)."""

    charger_id: str
    log_size: int
    boot: BootInfo | None = None
    received: int = 0
    sent: int = 0
    connected_since: datetime | None = None
    connector_status: dict[int, str] = field(default_factory=dict)
    notifications: dict[str, str] = field(default_factory=dict)
    # OCPP 2.0.1 device-model variables the charger reported, "Component/Variable" -> value,
    # and the OCPP 1.6 configuration keys Strom read (FEATURE_PROFILES), by key
    variables: dict[str, str] = field(default_factory=dict)
    ocpp_version: str | None = None
    security_events: deque[SecurityEvent] = field(
        default_factory=lambda: deque(maxlen=_MAX_SECURITY_EVENTS)
    )
    # (epoch seconds, outgoing?, frame): compact; turned into LoggedMessage when read.
    _log: deque[tuple[float, bool, str]] | None = None
    _open: OrderedDict[str, OpenTransaction] | None = None  # by transaction reference
    _last_register: dict[str, int] | None = None

    def lacks_feature(self, profile: str) -> bool:
        """Whether the charger reported its OCPP 1.6 feature profiles without ``profile``.

        False when it reported none (2.0.1, or no answer yet): only a report counts.
        """
        reported = self.variables.get(FEATURE_PROFILES)
        if reported is None:
            return False
        return profile.casefold() not in (part.strip().casefold() for part in reported.split(","))

    def log(self, direction: Direction, frame: str, at: datetime) -> None:
        """Count a frame and keep it in the bounded log."""
        if direction == "in":
            self.received += 1
        else:
            self.sent += 1
        if self.log_size <= 0:
            return
        if self._log is None:
            self._log = deque(maxlen=self.log_size)
        self._log.append((at.timestamp(), direction == "out", frame[:_MAX_LOGGED_CHARS]))

    def messages(self) -> tuple[LoggedMessage, ...]:
        """The recent frames, oldest first."""
        return tuple(
            LoggedMessage(datetime.fromtimestamp(at, UTC), "out" if out else "in", frame)
            for at, out, frame in (self._log or ())
        )

    def counters(self) -> MessageCounters:
        """Messages received from and sent to this charger."""
        return MessageCounters(self.received, self.sent)

    def transaction_started(self, transaction: str, opened: OpenTransaction) -> None:
        """Remember an accepted transaction (the oldest is forgotten beyond a small bound)."""
        if self._open is None:
            self._open = OrderedDict()
        self._open[transaction] = opened
        while len(self._open) > _MAX_OPEN_TRANSACTIONS:
            self._open.popitem(last=False)

    def open_transaction(self, transaction: str) -> OpenTransaction | None:
        """The transaction if this process saw it start and not stop."""
        return self._open.get(transaction) if self._open else None

    def register_seen(self, transaction: str, register_wh: int) -> None:
        """Remember the highest register seen for a transaction (for a stop without one)."""
        if self._last_register is None:
            self._last_register = {}
        previous = self._last_register.get(transaction, -1)
        self._last_register[transaction] = max(previous, register_wh)
        while len(self._last_register) > _MAX_OPEN_TRANSACTIONS:
            del self._last_register[next(iter(self._last_register))]

    def last_register(self, transaction: str) -> int | None:
        """The highest register seen for a transaction, if any."""
        return self._last_register.get(transaction) if self._last_register else None

    def transaction_stopped(self, transaction: str) -> None:
        """Forget a stopped transaction."""
        if self._open:
            self._open.pop(transaction, None)
        if self._last_register:
            self._last_register.pop(transaction, None)
