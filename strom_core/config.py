"""The sections of Strom's configuration: typed, frozen, validated where they are defined.

Each part of Strom receives the sections it needs from the composition root (``strom``), which
loads them from ``strom.toml``, the profile files and the environment
(:func:`strom.config.load_config`). Defaults are documented where they are defined, below.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from strom_core.cards import Card, CardMode, index_cards
from strom_core.errors import ConfigError
from strom_core.fiat import COMPONENTS, Conversion, FiatTerms
from strom_core.ids import CHARGER_ID_RULE, is_charger_id
from strom_core.lightning_config import FakeConfig, LightningConfig
from strom_core.tariff import MAX_RESERVATION_MINUTES, Tariff
from strom_core.time_of_use import TimeOfUse, parse_window
from strom_core.units import UnitError, sat_decimal_to_msat

__all__ = [
    "DEFAULT_TILE_URL",
    "BrandingConfig",
    "ClusterConfig",
    "ConnectorConfig",
    "DynamicTariffConfig",
    "LiveConfig",
    "LocationConfig",
    "LoggingConfig",
    "NostrConfig",
    "OcpiConfig",
    "OcppConfig",
    "OcppProfileConfig",
    "PathsConfig",
    "ProfileConfig",
    "RatesConfig",
    "RelayConfig",
    "RetentionConfig",
    "ServerConfig",
    "SessionsConfig",
    "StorageConfig",
    "StromConfig",
    "TariffConfig",
    "TlsConfig",
    "UploadsConfig",
    "charger_ocpp_url",
    "check_cluster",
    "check_managed_tls",
    "ocpp_beyond_loopback",
    "require_ocpp_password",
]


DEFAULT_TILE_URL: Final = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
"""OpenStreetMap's own tiles (their tile usage policy applies), the network map's default."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ServerConfig(_Section):
    """The HTTP server (LNURL, pages, API)."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    # The base URL wallets and browsers reach Strom at; LNURLs are built from it. A public
    # host must be https (LUD-01 allows http only for onion and local development).
    # Default: http://<host>:<port> (local development).
    public_url: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Deprecated: use [rates] (fixed, currency). Still read as [rates] fixed = fiat_per_btc,
    # currency = fiat_currency when [rates] gives neither sources nor a fixed rate.
    fiat_per_btc: Decimal = Field(Decimal(0), ge=0)
    fiat_currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    # The tile server of the network map at /map: an http(s) URL template with {z}, {x} and
    # {y}; empty shows the chargers on a plain background without tiles.
    map_tile_url: str = DEFAULT_TILE_URL
    # The reverse proxies in front of Strom (IP addresses or CIDR networks, e.g.
    # ["127.0.0.1", "10.0.0.0/8"]); default none: every client connects directly. Only from
    # these is the client's address read from the forwarding header, for rate limits and logs.
    trusted_proxies: tuple[str, ...] = ()
    # The header those proxies set: "X-Forwarded-For" (nginx, Caddy, Traefik, HAProxy) or
    # "Forwarded" (RFC 7239). Only this one is read.
    forwarded_header: Literal["X-Forwarded-For", "Forwarded"] = "X-Forwarded-For"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        networks = []
        for entry in value:
            try:
                networks.append(str(ipaddress.ip_network(entry.strip())))
            except ValueError as exc:
                raise ValueError(f"{entry!r}: {_network_problem(entry, exc)}") from None
        return tuple(networks)

    @field_validator("map_tile_url")
    @classmethod
    def _tile_url(cls, value: str) -> str:
        placeholders = all(part in value for part in ("{z}", "{x}", "{y}"))
        if value and not (re.match(r"^https?://[a-z0-9.-]+(:[0-9]+)?/", value) and placeholders):
            raise ValueError(
                "expected an http(s) tile URL with {z}, {x} and {y}, e.g. " + DEFAULT_TILE_URL
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("public_url"):
            host = data.get("host", "127.0.0.1")
            data = {**data, "public_url": f"http://{host}:{data.get('port', 8080)}"}
        return data

    @field_validator("public_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("expected an http:// or https:// base URL")
        return value.rstrip("/")


def _network_problem(entry: str, exc: ValueError) -> str:
    try:
        meant = ipaddress.ip_network(entry.strip(), strict=False)
    except ValueError:
        return "expected an IP address (192.0.2.10, 2001:db8::10) or a CIDR network (10.0.0.0/8)"
    return f"{exc}; did you mean {str(meant)!r}?"


class StorageConfig(_Section):
    """Where Strom keeps its data."""

    data_dir: Path = Path("data")
    # Empty: SQLite (WAL) at <data_dir>/strom.sqlite3. Otherwise an SQLAlchemy async URL,
    # e.g. postgresql+asyncpg://user@host/db.
    database_url: str = ""

    @field_validator("database_url")
    @classmethod
    def _db_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "expected sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db"
            )
        return value

    def url(self) -> str:
        """The SQLAlchemy URL to connect to."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'strom.sqlite3'}"


OCPP_VERSIONS: Final = ("ocpp1.6", "ocpp2.0.1")


class OcppConfig(_Section):
    """The OCPP-J central system chargers connect to (OCPP 1.6J and 2.0.1)."""

    host: str = "0.0.0.0"  # noqa: S104 - chargers are on the LAN; operators narrow it
    port: int = Field(9000, ge=0, le=65535)
    heartbeat_interval_s: int = Field(300, ge=10, le=86_400)
    meter_interval_s: int = Field(60, ge=1, le=3_600)
    command_timeout_s: float = Field(30.0, gt=0, le=300)
    auto_register: bool = False  # unknown chargers are held for operator approval when on
    # The retry interval told to an unknown charger held for approval (BootNotification Pending).
    pending_retry_interval_s: int = Field(60, ge=10, le=86_400)
    # At most this many unknown chargers are held for approval at once.
    max_pending_chargers: int = Field(100, ge=0, le=10_000)
    # A charger that connected without BootNotification is asked for one after this long.
    boot_backstop_delay_s: float = Field(60.0, gt=0, le=3_600)
    # Recent OCPP frames kept per charger for the admin UI's log view.
    message_log_size: int = Field(20, ge=0, le=1_000)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # The CA that signs chargers' certificates (SignCertificate) and admits chargers of
    # security profile 3: the operator's own PEM files, or (both empty) one Strom makes in
    # <data_dir>/charger-ca/ on first start.
    charger_ca_cert: Path | None = None
    charger_ca_key: Path | None = None
    # After a restart of Strom, chargers that were connected get this long to come back before
    # their connectors are shown offline (nostr status, charger page, API); meanwhile they are
    # shown as reconnecting with their last status, and offers refuse them (not connected).
    # 0 shows them offline at once.
    reconnect_grace_s: int = Field(90, ge=0, le=3_600)
    # What chargers are told to connect to, up to /ocpp/ (e.g. "ws://umbrel.local:9000/ocpp/");
    # shown with each new charger's password. Default: ws(s)://<public URL's host>:<port>/ocpp/.
    public_url: str = ""
    # The OCPP versions served (websocket subprotocols), in order of preference: a charger that
    # offers several speaks the first of them here; one that offers one speaks it.
    versions: tuple[str, ...] = OCPP_VERSIONS

    @model_validator(mode="after")
    def _charger_ca_pair(self) -> OcppConfig:
        if (self.charger_ca_cert is None) != (self.charger_ca_key is None):
            raise ValueError(
                "charger_ca_cert and charger_ca_key go together: set both (your CA) or "
                "neither (Strom makes one)"
            )
        return self

    @field_validator("versions")
    @classmethod
    def _versions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError(f"serve at least one OCPP version: {', '.join(OCPP_VERSIONS)}")
        for version in value:
            if version not in OCPP_VERSIONS:
                raise ValueError(
                    f"unknown OCPP version {version!r}: expected {' or '.join(OCPP_VERSIONS)}"
                )
        if len(set(value)) != len(value):
            raise ValueError("an OCPP version is listed twice")
        return value

    @field_validator("public_url")
    @classmethod
    def _ocpp_url(cls, value: str) -> str:
        if value and not re.match(r"^wss?://[^/\s]+", value):
            raise ValueError("expected a ws:// or wss:// URL, e.g. ws://umbrel.local:9000/ocpp/")
        return value


LETS_ENCRYPT: Final = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING: Final = "https://acme-staging-v02.api.letsencrypt.org/directory"
# Short names an operator may write instead of a directory URL.
ACME_DIRECTORIES: Final = {"letsencrypt": LETS_ENCRYPT, "letsencrypt-staging": LETS_ENCRYPT_STAGING}
_DNS_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"


class TlsConfig(_Section):
    """Managed TLS: a certificate from an ACME CA (Let's Encrypt), renewed by Strom itself.

    Off while ``acme_domain`` is empty. On, Strom serves HTTPS on ``[server] port`` with the
    certificate, answers the CA's HTTP-01 challenges on ``http_port`` (which must be reachable
    as port 80 of the domain), and serves OCPP over ``wss://`` with the same certificate
    unless ``ocpp = false``. Account key and certificate live in ``<data_dir>/acme/``.
    """

    # The domain the certificate is for (one DNS name, no wildcard: HTTP-01 cannot prove one).
    acme_domain: str = ""
    # The contact address given to the CA (expiry and policy mail); required with a domain.
    acme_email: str = ""
    # The CA's ACME directory URL, or "letsencrypt" / "letsencrypt-staging".
    acme_directory: str = LETS_ENCRYPT
    # A PEM bundle to trust for the directory's own HTTPS (a private CA's ACME server);
    # default: the system's roots.
    acme_ca_bundle: Path | None = None
    # The plain-HTTP port for challenges (everything else there is redirected to https).
    http_port: int = Field(80, ge=0, le=65535)
    # OCPP over wss:// with the managed certificate too (false: [ocpp] tls_cert/tls_key or ws://).
    ocpp: bool = True
    # A failed issuance or renewal is retried after acme_retry_s, doubling up to acme_retry_max_s;
    # the certificate in use is kept meanwhile. Renewal starts at two thirds of its lifetime.
    acme_retry_s: float = Field(60.0, gt=0, le=86_400)
    acme_retry_max_s: float = Field(6 * 3_600.0, gt=0, le=7 * 86_400)

    @property
    def managed(self) -> bool:
        """Whether Strom obtains its certificate itself."""
        return bool(self.acme_domain)

    @field_validator("acme_domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        domain = value.strip().lower().rstrip(".")
        if not domain:
            return ""
        if domain.startswith("*."):
            raise ValueError("expected one DNS name; HTTP-01 cannot prove a wildcard")
        labels = domain.split(".")
        if (
            len(domain) > 253
            or len(labels) < 2
            or not all(re.fullmatch(_DNS_LABEL, label) for label in labels)
            or labels[-1].isdigit()
        ):
            raise ValueError(
                "expected the DNS name the certificate is for, e.g. charge.example.org "
                "(not an IP address, no scheme or port)"
            )
        return domain

    @field_validator("acme_email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[^@\s:/]+@[^@\s:/]+\.[^@\s:/]+", value):
            raise ValueError("expected a contact e-mail address, e.g. ops@example.org")
        return value

    @field_validator("acme_directory")
    @classmethod
    def _directory(cls, value: str) -> str:
        value = ACME_DIRECTORIES.get(value.strip(), value.strip())
        if not re.match(r"^https://[^/\s]+", value):
            raise ValueError(
                'expected the https:// URL of an ACME directory, "letsencrypt" or '
                '"letsencrypt-staging"'
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> TlsConfig:
        if self.acme_domain and not self.acme_email:
            raise ValueError(
                "acme_email (a contact address for the CA) is required with acme_domain"
            )
        if self.acme_retry_max_s < self.acme_retry_s:
            raise ValueError("acme_retry_max_s must be at least acme_retry_s")
        return self


class SessionsConfig(_Section):
    """Charging-session timing."""

    invoice_expiry_s: int = Field(600, ge=60, le=86_400)
    start_timeout_s: int = Field(180, ge=10, le=3_600)  # no vehicle started in time: refund
    refund_expiry_s: int = Field(7 * 86_400, ge=600)  # how long a refund link stays valid
    refund_max_fee_ppm: int = Field(5_000, ge=0, le=100_000)  # routing fee cap, paid by operator
    # A charger that shows no transaction on a connector where Strom holds one open (it
    # rebooted without it) gets this long to send its StopTransaction; then the session ends,
    # billed up to the last reading. At least two meter intervals are always given.
    orphan_grace_s: int = Field(120, ge=1, le=3_600)
    # How long opening the withdraw link of a running session waits for the charger to confirm
    # the stop, in all; wallets give up on an LNURL after about 30 s.
    withdraw_stop_wait_s: int = Field(20, ge=1, le=25)
    # A dynamic tariff's prices are frozen for this many hours from the payment (the longest
    # session); a session that outlives them keeps the last price.
    price_schedule_hours: int = Field(24, ge=1, le=168)


class NostrConfig(_Section):
    """The agents' nostr settings."""

    admin_npubs: tuple[str, ...] = ()  # npubs whose DMs are operator commands

    @field_validator("admin_npubs")
    @classmethod
    def _npubs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for npub in value:
            if not re.fullmatch(r"npub1[02-9ac-hj-np-z]{58}", npub):
                raise ValueError(f"expected npub1… (bech32, 63 chars), found {npub!r}")
        return value


class RetentionConfig(_Section):
    """How long rows that only record history are kept (see docs/architecture.md, retention).

    Every ``*_days`` key counts whole days; 0 keeps those rows forever. Money records
    (sessions, payments, ledger entries, refunds that were claimed) are never deleted; claimed
    nostr event ids are kept exactly as long as a replay could still pass the freshness check,
    which is not configurable.
    """

    outbox_days: int = Field(30, ge=0)  # effects that ran (state done)
    # Effects given up after 25 attempts (state dead): operators look into them.
    outbox_dead_days: int = Field(365, ge=0)
    # Meter readings of sessions the charger reported stopped (the bill is final); readings
    # of a running session are never deleted.
    meter_readings_days: int = Field(90, ge=0)
    unknown_stops_days: int = Field(90, ge=0)  # StopTransactions for unknown transactions
    # The availability timeline's changes (status_history); each connector's last change
    # before the cutoff stays, so a report still knows the state in force at its start.
    status_history_days: int = Field(400, ge=0)
    ocpi_log_days: int = Field(30, ge=0)  # the log of OCPI requests in and out
    sweep_interval_s: int = Field(300, ge=1, le=86_400)  # how often the sweep runs


class UploadsConfig(_Section):
    """Files chargers upload to Strom: diagnostics and logs (see docs/operations.md, uploads).

    Each upload URL holds a one-time token; the file lands in ``<data_dir>/diagnostics/<charger>/``.
    """

    max_bytes: int = Field(50 * 1024 * 1024, ge=1)  # larger uploads are refused, nothing kept
    window_s: int = Field(3_600, ge=60, le=7 * 86_400)  # how long an upload URL stays valid
    retention_days: int = Field(30, ge=0)  # uploaded files older than this are deleted; 0 keeps


class PathsConfig(_Section):
    """Folders next to strom.toml."""

    profiles: Path = Path("profiles")
    relay_config: Path = Path("relay_config")


class LoggingConfig(_Section):
    """Log output."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


# --- profiles (one file per charge point) ------------------------------------------------------


class LocationConfig(_Section):
    """Where the charge point is."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str = ""


class ConnectorConfig(_Section):
    """One connector of a charge point."""

    id: int = Field(ge=1, le=99)
    type: str = "Type2"
    max_power_kw: Decimal = Field(gt=0, le=1000)

    @property
    def max_power_w(self) -> int:
        """Maximum power in whole watts."""
        return int(self.max_power_kw * 1000)


class DynamicTariffConfig(_Section):
    """A dynamic energy price (``[tariff.dynamic]`` in a profile); see docs/tariffs.md.

    The energy price of each interval is ``(spot + grid_fees + taxes) x (1 + margin)``,
    clamped to ``[min, max]``, in ``currency`` per kWh, converted to sats at the BTC rate of
    ``[rates]``. It replaces ``per_kwh_sat``; the other prices of the tariff stay as they are.
    """

    # awattar (DE-LU, AT), energidataservice (DK1, DK2, ...), entsoe (an EIC zone or DE-LU,
    # AT, NL, BE, FR, DK1, DK2), octopus (<product code>/<tariff code>, Agile, GBP incl. VAT).
    provider: Literal["awattar", "energidataservice", "entsoe", "octopus"]
    area: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9./_-]+$")
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    grid_fees: Decimal = Field(Decimal(0), ge=-1000, le=1000)  # currency per kWh
    taxes: Decimal = Field(Decimal(0), ge=-1000, le=1000)  # currency per kWh
    margin: Decimal = Field(Decimal(0), ge=-1, le=100)  # a fraction: 0.2 adds 20 %
    min: Decimal | None = Field(None, ge=-1000, le=1000)  # currency per kWh; below 0 bills 0
    max: Decimal | None = Field(None, ge=0, le=1000)  # currency per kWh
    # A reference to the provider's token, never the token itself: "env:NAME" (a variable of
    # Strom's environment) or "file:/path" (a secret file). ENTSO-E needs one.
    token: str = Field("", pattern=r"^((env|file):.+)?$")
    # The times of day (UTC, "HH:MM") after which the next day's prices are fetched; besides,
    # prices are fetched whenever a time beyond the known ones is asked.
    refresh_at: tuple[str, ...] = ("12:15", "17:00")

    @field_validator("refresh_at")
    @classmethod
    def _times(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for moment in value:
            if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", moment):
                raise ValueError(f"{moment!r}: expected a time of day HH:MM (UTC)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DynamicTariffConfig:
        allowed = _PROVIDER_CURRENCIES[self.provider]
        if self.currency not in allowed:
            raise ValueError(f"{self.provider} gives prices in {' or '.join(allowed)}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError("min is above max")
        if self.provider == "entsoe" and not self.token:
            raise ValueError('entsoe needs a token reference (token = "env:ENTSOE_TOKEN")')
        if self.provider == "octopus" and self.area.count("/") != 1:
            raise ValueError("octopus: area must be <product code>/<tariff code>")
        return self


_PROVIDER_CURRENCIES: Final = {
    "awattar": ("EUR",),
    "energidataservice": ("EUR", "DKK"),
    "entsoe": ("EUR",),
    "octopus": ("GBP",),
}


class TariffConfig(_Section):
    """Prices in sats (decimals allowed down to 1 msat).

    Reservations: ``reservation_max_minutes > 0`` lets drivers reserve a connector for up to
    that many minutes, for ``reservation_fee_sat + reservation_fee_per_minute_sat * minutes``;
    ``reservation_kept_percent`` of the fee is kept when the payer does not start in time.

    Idle fee: ``idle_per_minute_sat`` per whole minute the car stays plugged after it finished,
    beyond ``idle_grace_minutes``. Time of use: ``[tariff.time_of_use]`` windows
    (``"07:00-22:00" = 450``, sat/kWh) on the clock of ``time_zone`` (UTC unless given) make
    the tariff dynamic (:mod:`strom_core.time_of_use`); ``per_kwh_sat`` holds outside them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    per_kwh_sat: Decimal = Decimal(0)
    per_minute_sat: Decimal = Decimal(0)
    session_fee_sat: Decimal = Decimal(0)
    min_prepay_sat: Decimal = Decimal(1_000)
    max_prepay_sat: Decimal = Decimal(500_000)
    reservation_fee_sat: Decimal = Decimal(0)
    reservation_fee_per_minute_sat: Decimal = Decimal(0)
    reservation_max_minutes: int = Field(0, ge=0, le=MAX_RESERVATION_MINUTES, strict=True)
    reservation_kept_percent: int = Field(100, ge=0, le=100, strict=True)
    idle_per_minute_sat: Decimal = Decimal(0)
    idle_grace_minutes: int = Field(0, ge=0, le=24 * 60, strict=True)
    time_zone: str = "UTC"
    time_of_use: dict[str, Decimal] = Field(default_factory=dict, max_length=96)
    # [tariff.dynamic]: an energy price from a provider instead of per_kwh_sat
    # (docs/tariffs.md); None: static. Named dynamic_price in Python, "dynamic" in the files.
    dynamic_price: DynamicTariffConfig | None = Field(None, alias="dynamic")
    # Components priced in a fiat currency instead of sats (strom_core.fiat, docs/tariffs.md):
    # `currency` and any of per_kwh, per_minute, session_fee, idle_per_minute, converted at
    # the BTC rate of [rates] when the invoice is made ("at_payment", the default) or when the
    # session is billed ("at_billing", priced meanwhile rate_headroom_percent (10) below the
    # payment's rate). None leaves each out of the written profile.
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    per_kwh: Decimal | None = Field(None, ge=0, le=10_000)
    per_minute: Decimal | None = Field(None, ge=0, le=10_000)
    session_fee: Decimal | None = Field(None, ge=0, le=10_000)
    idle_per_minute: Decimal | None = Field(None, ge=0, le=10_000)
    convert: Literal["at_payment", "at_billing"] | None = None
    rate_headroom_percent: int | None = Field(None, ge=0, le=50, strict=True)

    @field_validator(
        "idle_per_minute_sat",
        "per_kwh_sat",
        "per_minute_sat",
        "session_fee_sat",
        "min_prepay_sat",
        "max_prepay_sat",
        "reservation_fee_sat",
        "reservation_fee_per_minute_sat",
    )
    @classmethod
    def _exact(cls, value: Decimal) -> Decimal:
        try:
            sat_decimal_to_msat(value)
        except UnitError as exc:
            raise ValueError(
                f"expected a non-negative number of sats down to 0.001: {exc}"
            ) from None
        return value

    @field_validator("time_of_use")
    @classmethod
    def _windows(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for price in value.values():
            cls._exact(price)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TariffConfig:
        if self.time_of_use and self.dynamic_price is not None:
            raise ValueError(
                "a tariff has [tariff.time_of_use] or [tariff.dynamic], not both: "
                "which energy price applies would be unclear"
            )
        self._check_fiat()
        self.to_tariff()
        try:
            self.to_time_of_use()
        except ConfigError as exc:
            raise ValueError(str(exc)) from exc
        return self

    def _check_fiat(self) -> None:
        given = {key: getattr(self, key) for key in COMPONENTS}
        given = {key: amount for key, amount in given.items() if amount is not None}
        if not given:
            if self.currency is not None or self.convert is not None:
                raise ValueError(
                    "currency and convert are for components priced in fiat; "
                    "give per_kwh, per_minute, session_fee or idle_per_minute too"
                )
            return
        if self.currency is None:
            raise ValueError(
                f'{", ".join(given)} in fiat need the tariff\'s currency, e.g. currency = "EUR"'
            )
        for key in given:
            if getattr(self, f"{key}_sat"):
                raise ValueError(
                    f"{key} is given both in sats ({key}_sat) and in {self.currency} ({key}): "
                    "give one"
                )
        if "per_kwh" in given and (self.time_of_use or self.dynamic_price is not None):
            raise ValueError(
                "per_kwh in fiat and [tariff.time_of_use] or [tariff.dynamic] both price the "
                "energy: give one"
            )
        if self.rate_headroom_percent is not None and self.convert != "at_billing":
            raise ValueError('rate_headroom_percent is for convert = "at_billing" only')

    def to_fiat(self) -> FiatTerms | None:
        """The components priced in fiat, or None for a tariff in sats only."""
        prices = tuple(
            (key, getattr(self, key)) for key in COMPONENTS if getattr(self, key) is not None
        )
        if not prices or self.currency is None:
            return None
        return FiatTerms(
            currency=self.currency,
            prices=prices,
            convert=Conversion(self.convert or Conversion.AT_PAYMENT),
            headroom_percent=10
            if self.rate_headroom_percent is None
            else self.rate_headroom_percent,
        )

    @property
    def dynamic(self) -> bool:
        """Whether the energy price changes over time (a price schedule is frozen at payment).

        It does with time-of-use windows or a price provider's ``[tariff.dynamic]``.
        """
        return bool(self.time_of_use) or self.dynamic_price is not None

    def to_time_of_use(self) -> TimeOfUse | None:
        """The time-of-use windows in msat, or None for a static price.

        Raises:
            ConfigError: a malformed or overlapping window, or an unknown time zone.
        """
        if not self.time_of_use:
            if self.time_zone != "UTC":
                TimeOfUse((), 0, self.time_zone)  # still check the name
            return None
        windows = tuple(
            parse_window(text, sat_decimal_to_msat(price))
            for text, price in sorted(self.time_of_use.items())
        )
        return TimeOfUse(windows, sat_decimal_to_msat(self.per_kwh_sat), self.time_zone)

    def to_tariff(self) -> Tariff:
        """The exact msat tariff."""
        try:
            return Tariff(
                energy_msat_per_kwh=sat_decimal_to_msat(self.per_kwh_sat),
                time_msat_per_minute=sat_decimal_to_msat(self.per_minute_sat),
                session_fee_msat=sat_decimal_to_msat(self.session_fee_sat),
                min_prepay_msat=sat_decimal_to_msat(self.min_prepay_sat),
                max_prepay_msat=sat_decimal_to_msat(self.max_prepay_sat),
                reservation_fee_msat=sat_decimal_to_msat(self.reservation_fee_sat),
                reservation_fee_msat_per_minute=sat_decimal_to_msat(
                    self.reservation_fee_per_minute_sat
                ),
                reservation_max_minutes=self.reservation_max_minutes,
                reservation_kept_percent=self.reservation_kept_percent,
                idle_msat_per_minute=sat_decimal_to_msat(self.idle_per_minute_sat),
                idle_grace_minutes=self.idle_grace_minutes,
            )
        except (UnitError, ConfigError) as exc:
            raise ValueError(str(exc)) from exc


class BrandingConfig(_Section):
    """How the charge point presents itself (profile, pages)."""

    picture: str = ""
    website: str = ""


class OcppProfileConfig(_Section):
    """How this charge point talks OCPP."""

    # The hash of its OCPP password, written by `strom init`, `strom charger password` or the
    # API. Empty: no Basic auth (security profile 0), which Strom refuses when OCPP listens
    # beyond loopback unless allow_unauthenticated is true.
    password_hash: str = ""
    # Accept this charger without a password on a non-loopback address: anyone who can reach
    # the OCPP port can then connect as it. Warned about at every start.
    allow_unauthenticated: bool = False
    quirks: tuple[str, ...] = ()
    # 3: admitted only on a TLS client certificate of the charger CA whose CN is its id (needs
    # wss://; no password is asked). 0-2 follow from password_hash and TLS.
    security_profile: int = Field(0, ge=0, le=3)


def ocpp_beyond_loopback(host: str) -> bool:
    """Whether an OCPP server listening on ``host`` can be reached from other machines."""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a host name or a wildcard


class CardConfig(_Section):
    """One of the operator's cards (``[[cards]]`` in a profile): see :mod:`strom_core.cards`."""

    id_tag: str
    label: str = ""
    mode: CardMode = CardMode.FREE
    account: str = ""

    @model_validator(mode="after")
    def _valid(self) -> CardConfig:
        if self.mode is CardMode.PARTNER:
            raise ValueError("a roaming partner's token is sent by the partner, not listed here")
        self.to_card()
        return self

    def to_card(self) -> Card:
        """The card."""
        return Card(self.id_tag, self.label, self.mode, self.account)


class ProfileConfig(_Section):
    """One charge point (``profiles/<id>.toml``)."""

    id: str
    name: str
    description: str = ""
    location: LocationConfig
    connectors: tuple[ConnectorConfig, ...] = Field(min_length=1)
    tariff: TariffConfig
    branding: BrandingConfig = BrandingConfig()
    ocpp: OcppProfileConfig = OcppProfileConfig()
    # The most the whole charge point may draw (a site limit: the house connection, a shared
    # fuse), sent to it as its maximum charging profile after every boot. None: no limit.
    site_limit_kw: Decimal | None = Field(None, ge=1, le=1000)
    cards: tuple[CardConfig, ...] = ()

    @field_validator("cards")
    @classmethod
    def _cards(cls, value: tuple[CardConfig, ...]) -> tuple[CardConfig, ...]:
        index_cards(c.to_card() for c in value)  # raises on a tag listed twice
        return value

    @property
    def site_limit_w(self) -> int | None:
        """The site limit in whole watts, or None."""
        return None if self.site_limit_kw is None else int(self.site_limit_kw * 1000)

    def session_power_w(self, connector_id: int) -> int:
        """The most a session on a connector may draw: its power, capped by the site limit.

        Raises:
            StopIteration: no such connector.
        """
        connector = next(c for c in self.connectors if c.id == connector_id)
        site = self.site_limit_w
        return connector.max_power_w if site is None else min(connector.max_power_w, site)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not is_charger_id(value):
            raise ValueError(f"expected {CHARGER_ID_RULE} (used in URLs and file names)")
        return value

    @field_validator("connectors")
    @classmethod
    def _unique(cls, value: tuple[ConnectorConfig, ...]) -> tuple[ConnectorConfig, ...]:
        ids = [c.id for c in value]
        if len(ids) != len(set(ids)):
            raise ValueError(f"connector ids must be unique, found {ids}")
        return value


class RatesConfig(_Section):
    """BTC exchange rates (``[rates]``): fiat prices and estimates are converted with them.

    The rate is the median of the ``sources`` that answered within ``timeout_s``, without the
    quotes more than ``outlier_percent`` away from the median; a quote older than ``max_age_s``
    is not used, and with none fresh, payments that need a rate are refused. ``fixed`` (fiat
    per BTC in ``currency``) replaces the live sources. Default: no sources, no rate (prices
    in sats need none).
    """

    # Any of kraken, coinbase, bitstamp, coingecko, bitfinex (public tickers, no keys).
    sources: tuple[Literal["kraken", "coinbase", "bitstamp", "coingecko", "bitfinex"], ...] = ()
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")  # the fiat of estimates on the pages
    max_age_s: int = Field(900, ge=10, le=86_400)
    timeout_s: float = Field(5.0, gt=0, le=60)
    outlier_percent: Decimal = Field(Decimal(5), gt=0, le=100)
    refresh_s: int = Field(300, ge=10, le=86_400)  # how often the sources are asked
    fixed: Decimal = Field(Decimal(0), ge=0)  # fiat per BTC; 0: use the sources

    @model_validator(mode="after")
    def _fresh_enough(self) -> RatesConfig:
        if self.sources and self.fixed == 0 and self.refresh_s >= self.max_age_s:
            raise ValueError(
                f"refresh_s ({self.refresh_s}) must be below max_age_s ({self.max_age_s}), "
                "or the rate goes stale between two rounds"
            )
        return self


class ClusterConfig(_Section):
    """Several identical Strom processes on one PostgreSQL (``[cluster]``, ``strom run --cluster``).

    Off by default: one process, no coordination, exactly as before. On, every process holds
    the leases of the chargers connected to it and of the agents it runs, claims outbox rows
    instead of reading them, and talks to the other processes over a bus; see
    docs/operations.md ("Running a cluster").
    """

    enabled: bool = False
    # The bus between the processes: "postgresql" (LISTEN/NOTIFY on the storage database,
    # nothing else to run) or "nats" (a NATS server at nats_url; faster under load).
    bus: Literal["postgresql", "nats"] = "postgresql"
    nats_url: str = "nats://127.0.0.1:4222"
    # This process's name in leases and on the bus (letters, digits, '_' and '-', at most 48).
    # Empty (the default): <host name>-<8 random hex digits>, new at every start, so that a
    # restarted process never renews its predecessor's leases (the chargers it held have
    # reconnected elsewhere, or will). A fixed id is allowed: a process started with it waits
    # until the previous holder of that id has been silent for lease_ttl_s.
    process_id: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,48}$")
    # How long a lease lasts unrenewed: a process that dies frees its chargers, agents and
    # leader roles this long after its last heartbeat (renewed every third of it).
    lease_ttl_s: float = Field(10.0, ge=1.0, le=300.0)

    @field_validator("nats_url")
    @classmethod
    def _nats(cls, value: str) -> str:
        for url in value.split(","):
            if not re.match(r"^(nats|tls)://[^/\s]+$", url.strip()):
                raise ValueError(
                    "expected nats://host:port (several separated by commas), "
                    "e.g. nats://127.0.0.1:4222"
                )
        return value


class OcpiConfig(_Section):
    """OCPI 2.2.1: roaming partners (eMSPs) see and sell Strom's chargers (``[ocpi]``).

    Off by default: nothing is served under ``/ocpi/`` and the API's OCPI routes answer 409.
    Strom is the CPO; its versions endpoint is ``<server.public_url>/ocpi/versions``. See
    docs/ocpi.md.
    """

    enabled: bool = False
    # Strom's party: the ISO 3166 alpha-2 country and the 3-character party id (letters and
    # digits, e.g. "STR") the partners know this CPO by; both required when enabled.
    country_code: str = Field("", pattern=r"^([A-Z]{2})?$")
    party_id: str = Field("", pattern=r"^([A-Z0-9]{3})?$")
    # The business name (and website) partners show for this CPO.
    business_name: str = Field("", max_length=100)
    website: str = Field("", max_length=255, pattern=r"^(https?://\S+)?$")
    # The most objects one page of a list answers (a partner may ask for fewer).
    page_limit: int = Field(50, ge=1, le=1_000)
    # How long Strom waits for a partner's answer, in seconds.
    request_timeout_s: float = Field(15.0, gt=0, le=120)
    # The currency of the prices and costs partners get: "BTC" (msat-exact, Strom's
    # settlement extension) or an ISO 4217 code converted at a fresh rate of [rates].
    currency: str = Field("BTC", pattern=r"^[A-Z]{3}$")
    # Another currency for some partners: OCPI partner id (as the API lists it) -> currency.
    partner_currencies: dict[str, Annotated[str, Field(pattern=r"^[A-Z]{3}$")]] = {}
    # The least time between two pushes of a running session's meter updates to its partner,
    # in seconds (a change of its state is pushed at once).
    session_update_interval_s: int = Field(60, ge=0, le=3_600)
    # Settlement in bitcoin (docs/ocpi-lightning.md). A streaming partner's session is
    # invoiced every stream_interval_s seconds while it charges, each interval invoice due
    # (and its BOLT 11 expiring) stream_due_s seconds after it is made; unpaid then, the
    # session is stopped.
    stream_interval_s: int = Field(300, ge=1, le=86_400)
    stream_due_s: int = Field(120, ge=1, le=86_400)
    # How long a receivable's BOLT 11 invoice (after the CDR) stays payable before a new one
    # replaces it, in seconds.
    invoice_expiry_s: int = Field(86_400, ge=1, le=30 * 86_400)
    # How often Strom looks for intervals to invoice, due dates passed and expired invoices.
    invoice_check_s: float = Field(5.0, gt=0, le=300)

    @field_validator("country_code", "party_id", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _party_when_enabled(self) -> OcpiConfig:
        if self.enabled and not (self.country_code and self.party_id and self.business_name):
            raise ValueError(
                "[ocpi] enabled needs country_code (e.g. DE), party_id (3 letters or digits, "
                "e.g. STR) and business_name"
            )
        return self


class RelayConfig(_Section):
    """One nostr relay; ``url = "embedded"`` is the in-process relay."""

    url: str
    read: bool = True
    write: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value != "embedded" and not re.match(r"^wss?://[^/\s]+", value):
            raise ValueError('expected "embedded" or a ws:// / wss:// relay URL')
        return value


class StromConfig(_Section):
    """Everything Strom needs, loaded once."""

    config_path: Path | None = None
    server: ServerConfig = ServerConfig()
    storage: StorageConfig = StorageConfig()
    ocpp: OcppConfig = OcppConfig()
    tls: TlsConfig = TlsConfig()
    sessions: SessionsConfig = SessionsConfig()
    nostr: NostrConfig = NostrConfig()
    retention: RetentionConfig = RetentionConfig()
    uploads: UploadsConfig = UploadsConfig()
    paths: PathsConfig = PathsConfig()
    logging: LoggingConfig = LoggingConfig()
    rates: RatesConfig = RatesConfig()
    cluster: ClusterConfig = ClusterConfig()
    ocpi: OcpiConfig = OcpiConfig()
    lightning: LightningConfig = FakeConfig()
    profiles: tuple[ProfileConfig, ...] = ()
    relays: tuple[RelayConfig, ...] = (RelayConfig(url="embedded"),)

    def rate_settings(self) -> RatesConfig:
        """``[rates]``, or the deprecated ``server.fiat_per_btc`` as its fixed rate.

        An older configuration with ``server.fiat_per_btc`` (and ``fiat_currency``) and no
        ``[rates]`` keeps working: the old key becomes the fixed rate.
        """
        rates = self.rates
        legacy = self.server.fiat_per_btc
        if legacy > 0 and rates.fixed == 0 and not rates.sources:
            return rates.model_copy(update={"fixed": legacy, "currency": self.server.fiat_currency})
        return rates

    def profile(self, charger_id: str) -> ProfileConfig:
        """The profile of one charge point.

        Raises:
            KeyError: no such charger is configured.
        """
        for profile in self.profiles:
            if profile.id == charger_id:
                return profile
        raise KeyError(charger_id)

    def profile_by_name(self, name: str) -> ProfileConfig:
        """The charge point a name means, its case ignored.

        Wallets and nostr clients lowercase lightning addresses (``CP-Up@host`` arrives as
        ``cp-up``), so names in URLs are matched like that; ids that differ only in case are
        refused when the configuration is loaded, so the match is unique.

        Raises:
            KeyError: no such charger is configured.
        """
        folded = name.casefold()
        for profile in self.profiles:
            if profile.id.casefold() == folded:
                return profile
        raise KeyError(name)


def charger_ocpp_url(config: StromConfig, charger_id: str) -> str:
    """The URL a charger connects to: ``ocpp.public_url`` (or the public host) + its id."""
    base = config.ocpp.public_url
    if not base:
        host = urlsplit(config.server.public_url).hostname or "localhost"
        host = f"[{host}]" if ":" in host else host
        scheme = "wss" if config.ocpp.tls_cert else "ws"
        base = f"{scheme}://{host}:{config.ocpp.port}/ocpp/"
    return f"{base.rstrip('/')}/{quote(charger_id, safe='')}"


def require_ocpp_password(config: StromConfig, profile: ProfileConfig) -> None:
    """Refuse a charger anyone on the network could impersonate.

    A charger without a password is admitted on its id alone, and the id is public (its page,
    its nostr status). That is refused when OCPP listens beyond loopback, unless the profile
    accepts it explicitly with ``allow_unauthenticated = true``.

    Raises:
        ConfigError: one line naming the profile and both ways out.
    """
    ocpp = profile.ocpp
    if ocpp.password_hash or ocpp.allow_unauthenticated or ocpp.security_profile == 3:
        return
    if not ocpp_beyond_loopback(config.ocpp.host):
        return
    config_arg = f" -c {config.config_path}" if config.config_path else ""
    raise ConfigError(
        f"{config.paths.profiles / (profile.id + '.toml')}: charger {profile.id!r} has no OCPP "
        f"password and OCPP listens on {config.ocpp.host!r}, beyond this machine, so anyone "
        f"could connect as it; give it one with `strom charger password {profile.id}"
        f"{config_arg}`, or set allow_unauthenticated = true under [ocpp] in its profile"
    )


def check_cluster(config: StromConfig) -> None:
    """Refuse a cluster on a database only one process can use.

    Raises:
        ConfigError: ``[cluster] enabled`` with SQLite as the database.
    """
    if config.cluster.enabled and not config.storage.url().startswith("postgresql"):
        raise ConfigError(
            "a cluster needs PostgreSQL: storage.database_url is SQLite, which serves one "
            'process; set storage.database_url = "postgresql+asyncpg://…" or run without '
            "--cluster ([cluster] enabled = false)"
        )


def check_managed_tls(config: StromConfig) -> None:
    """Refuse a managed-TLS configuration that contradicts the rest of the file.

    Raises:
        ConfigError: certificate files given as well as an ACME domain, the challenge port
            equal to the HTTPS port, or a public URL that is not https:// on the domain.
    """
    tls = config.tls
    if not tls.managed:
        return
    if config.server.tls_cert or config.server.tls_key:
        raise ConfigError(
            "tls.acme_domain and server.tls_cert/tls_key both give the HTTPS certificate: "
            "remove one (Strom obtains and renews the certificate itself with acme_domain)"
        )
    if tls.ocpp and (config.ocpp.tls_cert or config.ocpp.tls_key):
        raise ConfigError(
            "tls.ocpp = true serves OCPP with the managed certificate, and ocpp.tls_cert/tls_key "
            "give another: remove those or set tls.ocpp = false"
        )
    if tls.http_port and tls.http_port == config.server.port:
        raise ConfigError(
            f"tls.http_port and server.port are both {tls.http_port}: the challenge port "
            "serves plain HTTP and the server port HTTPS, they need one port each"
        )
    expected = f"https://{tls.acme_domain}"
    url = config.server.public_url
    if not (url == expected or url.startswith((f"{expected}:", f"{expected}/"))):
        raise ConfigError(
            f"server.public_url {url!r}: with tls.acme_domain = {tls.acme_domain!r} wallets "
            f"must reach Strom at {expected} (add :<port> when it is not 443)"
        )


class LiveConfig:
    """The configuration in force, replaced as a whole when the operator's files change.

    Parts that outlive a reload hold this object and read :attr:`current` when they act, so a
    reload is one assignment here instead of a copy into every part that keeps configuration.
    """

    def __init__(self, config: StromConfig) -> None:
        self._config = config
        self._listeners: list[Callable[[StromConfig], None]] = []

    @property
    def current(self) -> StromConfig:
        """The configuration in force now."""
        return self._config

    def on_change(self, listener: Callable[[StromConfig], None]) -> None:
        """Call ``listener`` with the new configuration after each :meth:`replace`."""
        self._listeners.append(listener)

    def replace(self, config: StromConfig) -> None:
        """Put ``config`` in force and tell the listeners, in the order they registered."""
        self._config = config
        for listener in self._listeners:
            listener(config)
