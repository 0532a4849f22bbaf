"""Settings of the OCPP server and of each charger it admits.

The composition root maps Strom's configuration onto these frozen dataclasses; nothing here
reads files or the environment. Defaults are the values a small site needs.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

from ocpp_server.passwords import StoredHash, parse_password_hash
from strom_core.ids import check_charger_id

__all__ = [
    "DEFAULT_MEASURANDS",
    "ChargerAuth",
    "ChargerAuthLookup",
    "OcppServerSettings",
    "Quirk",
    "StaticChargerAuth",
    "parse_quirks",
]

# What Strom asks chargers to sample: the energy register bills the session, the power shows
# progress on the session page.
DEFAULT_MEASURANDS: Final = ("Energy.Active.Import.Register", "Power.Active.Import")


class Quirk(enum.StrEnum):
    """Named workarounds for chargers that break OCPP (1.6 or 2.0.1) in known ways.

    Each flag is set per charger in its profile and does one narrow thing.
    """

    # Schneider Electric EVlink Smart Wallbox sends a 26-character chargePointSerialNumber and
    # a 33-character chargeBoxSerialNumber in BootNotification (the schema allows 25), so
    # strict validation refuses its boot forever (mobilityhouse/ocpp#122 and #273,
    # lbbrhzn/ocpp#213 and #1622). With this flag over-long strings are accepted in every
    # message from the charger, except idTags, which Strom stores and compares.
    LENIENT_STRING_LENGTHS = "lenient_string_lengths"

    # OpenEVSE (ESP32 firmware 4.2.x) reports Energy.Active.Import.Register in kWh while
    # labelling it "Wh" (openevse_esp32_firmware#703): 361 kWh arrives as "361" "Wh". With this
    # flag a register labelled Wh, or not labelled, is read as kWh. meterStart/meterStop are
    # integers in Wh by definition and are taken as sent.
    ENERGY_KWH_LABELLED_WH = "energy_kwh_labelled_wh"

    # Grizzl-E reports Energy.Active.Import.Register in MeterValues relative to the start of
    # the transaction, but the lifetime register in StartTransaction/StopTransaction
    # (lbbrhzn/ocpp#2093). With this flag a MeterValues register is added to the transaction's
    # meterStart; when the server never saw that StartTransaction the sample is dropped (never
    # guessed). Billing stays meterStop - meterStart either way.
    SESSION_RELATIVE_METER_VALUES = "session_relative_meter_values"

    # OCPP-J (1.6 security whitepaper, 2.0.1 Part 4 section 3.1) makes the HTTP Basic user name
    # the charger's identity; some firmware sends its serial number or a fixed string instead
    # (thoughtworks/maeve-csms "allow invalid username for specific charge stations"). With
    # this flag any user name is taken; the password must still match the charger's.
    ANY_BASIC_AUTH_USERNAME = "any_basic_auth_username"


def parse_quirks(names: Iterable[str]) -> frozenset[Quirk]:
    """Turn quirk names from a profile into flags.

    Raises:
        ValueError: naming the unknown flag and the known ones.
    """
    quirks: set[Quirk] = set()
    for name in names:
        try:
            quirks.add(Quirk(name))
        except ValueError:
            known = ", ".join(sorted(q.value for q in Quirk))
            raise ValueError(f"unknown OCPP quirk {name!r}; known quirks: {known}") from None
    return frozenset(quirks)


@dataclass(frozen=True, slots=True)
class ChargerAuth:
    """One charger the server admits.

    Attributes:
        charger_id: the charge point identity, the last path segment of its URL.
        password_hash: the stored hash of its AuthorizationKey (``hmac-sha256$...`` for a
            generated key, ``scrypt$...`` for a chosen one; security profiles 1/2), or None for
            a charger admitted on its identity alone (profile 0, a trusted network only).
        quirks: named workarounds, see :class:`Quirk`.
        connectors: number of connectors (ids 1..n).
        client_certificate: security profile 3: admitted only on a TLS client certificate
            signed by the charger CA whose CN is its id; Basic credentials are not asked for.
    """

    charger_id: str
    password_hash: str | None = None
    quirks: frozenset[Quirk] = frozenset()
    connectors: int = 1
    client_certificate: bool = False
    _parsed_hash: StoredHash | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_charger_id(self.charger_id)
        if not 1 <= self.connectors <= 99:
            raise ValueError(f"charger {self.charger_id}: connectors must be 1-99")
        if self.password_hash is not None:
            parsed = parse_password_hash(self.password_hash)
            object.__setattr__(self, "_parsed_hash", parsed)

    @property
    def parsed_hash(self) -> StoredHash | None:
        """The parsed password hash (checked when the settings were built)."""
        return self._parsed_hash

    def has(self, quirk: Quirk) -> bool:
        """Whether this charger's profile sets ``quirk``."""
        return quirk in self.quirks


class ChargerAuthLookup(Protocol):
    """Where the server finds the chargers it admits (configuration, database, ...)."""

    async def charger_auth(self, charger_id: str) -> ChargerAuth | None:
        """The charger's settings, or None when the id is not configured."""
        ...


class StaticChargerAuth:
    """A fixed set of chargers, e.g. built from the profile files at start."""

    def __init__(self, chargers: Iterable[ChargerAuth] = ()) -> None:
        self._chargers: dict[str, ChargerAuth] = {}
        for charger in chargers:
            if charger.charger_id in self._chargers:
                raise ValueError(f"charger {charger.charger_id} is configured twice")
            self._chargers[charger.charger_id] = charger

    async def charger_auth(self, charger_id: str) -> ChargerAuth | None:
        """The charger's settings, or None when the id is not configured."""
        return self._chargers.get(charger_id)

    def add(self, charger: ChargerAuth) -> None:
        """Admit one more charger (or replace its settings), e.g. after operator approval."""
        self._chargers[charger.charger_id] = charger

    def remove(self, charger_id: str) -> None:
        """Stop admitting a charger (its live connection is not touched)."""
        self._chargers.pop(charger_id, None)

    @property
    def chargers(self) -> Mapping[str, ChargerAuth]:
        """The configured chargers by id."""
        return dict(self._chargers)


@dataclass(frozen=True, slots=True)
class OcppServerSettings:
    """The OCPP 1.6J central system.

    Attributes:
        host: interface to listen on.
        port: TCP port (0 picks a free one; see ``OcppServer.port``).
        tls_cert: PEM certificate chain for ``wss://`` (security profile 2); None for ``ws://``.
        tls_key: PEM private key matching ``tls_cert``.
        heartbeat_interval_s: the interval given to chargers in BootNotification.conf; a
            charger silent for ``offline_after_intervals`` of these is marked offline.
        meter_value_sample_interval_s: MeterValueSampleInterval set after boot.
        measurands: MeterValuesSampledData set after boot (the energy register is required).
        auto_register: hold unknown chargers for operator approval instead of refusing them.
        command_timeout_s: how long a command waits for the charger's answer.
        boot_backstop_delay_s: a charger that connected without BootNotification gets a
            TriggerMessage(BootNotification) after this long.
        offline_after_intervals: silence, in heartbeat intervals, that marks a charger offline.
        pending_retry_interval_s: the interval told to a charger held for approval.
        max_pending_chargers: cap on unknown chargers held at once (auto-registration).
        message_log_size: recent OCPP frames kept per charger for the admin view.
        max_message_bytes: largest websocket message accepted.
        websocket_ping_interval_s: server-side websocket pings; None relies on OCPP heartbeats
            (and saves a task per connection).
        websocket_compression: offer permessage-deflate; off by default because each
            compressed connection holds zlib buffers (tens of KB) for frames of a few hundred
            bytes.
        handshake_timeout_s: a charger's HTTP upgrade, password check included, must be done
            within this long (else its connection is closed and it tries again).
        replace_probe_s: a connection admitted without a password replaces a charger's live
            connection only when the live one does not answer a websocket ping within this
            long (a half-open connection after a network change); see ``OcppServer``.
        close_timeout_s: how long closing a connection waits for the charger's half of the
            websocket close handshake before dropping the TCP connection (a charger busy
            sending, or one that never answers, must not hold up a stopping Strom).
    """

    host: str = "127.0.0.1"
    port: int = 9000
    tls_cert: Path | None = None
    tls_key: Path | None = None
    heartbeat_interval_s: int = 300
    meter_value_sample_interval_s: int = 60
    measurands: tuple[str, ...] = DEFAULT_MEASURANDS
    auto_register: bool = False
    command_timeout_s: float = 30.0
    boot_backstop_delay_s: float = 60.0
    offline_after_intervals: float = 2.5
    pending_retry_interval_s: int = 60
    max_pending_chargers: int = 100
    message_log_size: int = 20
    max_message_bytes: int = 256 * 1024
    websocket_ping_interval_s: float | None = None
    websocket_compression: bool = False
    handshake_timeout_s: float = 10.0
    replace_probe_s: float = 5.0
    close_timeout_s: float = 1.5

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be 0-65535")
        positive = {
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "meter_value_sample_interval_s": self.meter_value_sample_interval_s,
            "command_timeout_s": self.command_timeout_s,
            "boot_backstop_delay_s": self.boot_backstop_delay_s,
            "offline_after_intervals": self.offline_after_intervals,
            "pending_retry_interval_s": self.pending_retry_interval_s,
            "max_message_bytes": self.max_message_bytes,
            "replace_probe_s": self.replace_probe_s,
            "handshake_timeout_s": self.handshake_timeout_s,
            "close_timeout_s": self.close_timeout_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        if self.message_log_size < 0 or self.max_pending_chargers < 0:
            raise ValueError("message_log_size and max_pending_chargers must be >= 0")
        if "Energy.Active.Import.Register" not in self.measurands:
            raise ValueError("measurands must include Energy.Active.Import.Register")

    @property
    def offline_after_s(self) -> float:
        """Silence after which a charger is marked offline."""
        return self.heartbeat_interval_s * self.offline_after_intervals

    @property
    def uses_tls(self) -> bool:
        """Whether the server speaks ``wss://``."""
        return self.tls_cert is not None
