"""What the operator's cockpit asks of the OCPP server: who is connected, what was said, keys.

The OCPP server is an adapter; the cockpit shows each charger's connection and boot details,
its recent frames and message counters, the unknown chargers waiting for approval, makes new
charger keys and sends commands. It sees the server only through :class:`ChargerStation`,
which the server satisfies as it is (checked by mypy where the composition root hands it to
the cockpit). Every record below is a read-only view: the server's own records fit it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from strom_core.ports.certificates import ChargerCertificates
from strom_core.ports.chargers import ChargerCommands
from strom_core.ports.device_model import DeviceModelCommands
from strom_core.ports.firmware import FirmwareCommands

__all__ = [
    "BootView",
    "ChargerStation",
    "ConnectionView",
    "CounterView",
    "FrameView",
    "KeyMaker",
    "NewKey",
    "PendingView",
    "QuirkCheck",
]


class BootView(Protocol):
    """What a charger said about itself when it booted."""

    @property
    def vendor(self) -> str:
        """The vendor."""
        ...

    @property
    def model(self) -> str:
        """The model."""
        ...

    @property
    def serial_number(self) -> str | None:
        """The charge point's serial number, if sent."""
        ...

    @property
    def charge_box_serial_number(self) -> str | None:
        """The charge box's serial number, if sent."""
        ...

    @property
    def firmware_version(self) -> str | None:
        """The firmware version, if sent."""
        ...


class ConnectionView(Protocol):
    """The server's view of one charger's connection."""

    @property
    def state(self) -> str:
        """The connection's state, as words."""
        ...

    @property
    def connected_since(self) -> datetime | None:
        """When the live connection was admitted, or None."""
        ...

    @property
    def boot(self) -> BootView | None:
        """The last boot notification, or None."""
        ...

    @property
    def ocpp_version(self) -> str | None:
        """The websocket subprotocol of its latest connection (``ocpp1.6``, ``ocpp2.0.1``)."""
        ...

    @property
    def variables(self) -> Mapping[str, str]:
        """OCPP 2.0.1 device-model variables it reported, ``Component/Variable`` -> value."""
        ...

    @property
    def notifications(self) -> Mapping[str, str]:
        """The last status of each notification it sent (``FirmwareStatusNotification`` ...)."""
        ...

    @property
    def security_events(self) -> Sequence[SecurityEventView]:
        """Its latest OCPP 2.0.1 security events, oldest first (bounded)."""
        ...


class SecurityEventView(Protocol):
    """One SecurityEventNotification."""

    @property
    def type(self) -> str:
        """The event type (``FirmwareUpdated``, ``InvalidCsmsCertificate`` ...)."""
        ...

    @property
    def timestamp(self) -> datetime:
        """When the station says it happened."""
        ...

    @property
    def tech_info(self) -> str | None:
        """The station's technical detail, if any."""
        ...


class CounterView(Protocol):
    """Websocket messages received from and sent to chargers."""

    @property
    def received(self) -> int:
        """Messages received."""
        ...

    @property
    def sent(self) -> int:
        """Messages sent."""
        ...


class FrameView(Protocol):
    """One logged protocol frame."""

    @property
    def at(self) -> datetime:
        """When it was received or sent."""
        ...

    @property
    def direction(self) -> str:
        """``in`` (from the charger) or ``out`` (to it)."""
        ...

    @property
    def frame(self) -> str:
        """The frame as text (possibly cut short)."""
        ...


class PendingView(Protocol):
    """An unknown charger held for the operator's approval."""

    @property
    def charger_id(self) -> str:
        """The id it connected with."""
        ...

    @property
    def remote_address(self) -> str:
        """Where it connected from."""
        ...

    @property
    def first_seen(self) -> datetime:
        """Its first connection."""
        ...

    @property
    def last_seen(self) -> datetime:
        """Its latest connection."""
        ...

    @property
    def presented_credentials(self) -> bool:
        """Whether it sent a password."""
        ...

    @property
    def boot(self) -> BootView | None:
        """Its boot notification, if it sent one."""
        ...


class NewKey(Protocol):
    """A freshly generated charger key: show ``key`` once, store ``password_hash``."""

    @property
    def key(self) -> str:
        """The password to enter in the charger."""
        ...

    @property
    def password_hash(self) -> str:
        """The stored form, for the charger's profile."""
        ...

    @property
    def key_hex(self) -> str:
        """The key in hexadecimal (as some chargers take it)."""
        ...


class KeyMaker(Protocol):
    """Makes charger keys hashed under the server's secret."""

    def new_password(self) -> NewKey:
        """A new random key and its hash."""
        ...


QuirkCheck = Callable[[Sequence[str]], object]
"""Checks the names of a profile's protocol workarounds; raises ValueError naming an unknown
one and the known ones."""


class ChargerStation(Protocol):
    """The OCPP server as the operator's cockpit sees it."""

    @property
    def commands(self) -> ChargerCommands:
        """Commands to chargers."""
        ...

    @property
    def firmware(self) -> FirmwareCommands:
        """Firmware updates and uploads of diagnostics and logs."""
        ...

    @property
    def certificates(self) -> ChargerCertificates:
        """The root certificates chargers trust (install, list, delete)."""
        ...

    @property
    def password_key(self) -> KeyMaker:
        """Makes new charger keys."""
        ...

    def online_chargers(self) -> Sequence[str]:
        """Ids of configured chargers with a live connection."""
        ...

    def charger_info(self, charger_id: str) -> ConnectionView | None:
        """What the server knows about a charger, or None if it never connected."""
        ...

    def device_model(self) -> DeviceModelCommands | None:
        """OCPP 2.0.1 GetVariables, SetVariables, GetBaseReport (None when 2.0.1 is not served)."""
        ...

    def counters(self, charger_id: str | None = None) -> CounterView:
        """Messages received and sent, for one charger or the whole server."""
        ...

    def message_log(self, charger_id: str) -> Sequence[FrameView]:
        """The charger's recent frames, oldest first (bounded)."""
        ...

    def pending_chargers(self) -> Sequence[PendingView]:
        """Unknown chargers waiting for approval, oldest first."""
        ...

    def forget_pending(self, charger_id: str) -> bool:
        """Drop a waiting charger (and its connection); True if it was waiting."""
        ...
