"""The REST API's request and response bodies (pydantic), which are also its OpenAPI schemas.

Money is integer msat everywhere, with a ``*_sat`` twin as a decimal string where a person
reads it; energy is integer Wh. Times are ISO 8601 UTC. Requests forbid unknown fields, so a
typo is a 400 rather than a silently ignored setting.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
)

from strom_core.config import BrandingConfig, LocationConfig
from strom_core.ids import CHARGER_ID_PATTERN, check_charger_id
from strom_core.session import State

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]")


def _iso_only(value: Any) -> Any:
    # pydantic would read "0" or 1700000000 as unix time; the API documents ISO 8601 only.
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("expected an ISO 8601 time with its zone, e.g. 2026-11-24T00:00:00Z")
    return value


ChargerId = Annotated[
    str,
    AfterValidator(check_charger_id),
    WithJsonSchema({"type": "string", "pattern": f"^{CHARGER_ID_PATTERN}$"}),
]
"""A charger id given to the API (Strom's one rule, :mod:`strom_core.ids`)."""

IsoTime = Annotated[
    AwareDatetime,
    BeforeValidator(_iso_only),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _amount(maximum: int, places: int = 3, *, positive: bool = False) -> Any:
    """A non-negative (or positive) decimal given as a JSON number or a decimal string."""
    pattern = rf"^[0-9]{{1,{len(str(maximum))}}}(\.[0-9]{{1,{places}}})?$"
    low: dict[str, Any] = {"exclusiveMinimum": 0} if positive else {"minimum": 0}
    bound = (
        Field(gt=0, le=maximum, decimal_places=places)
        if positive
        else Field(ge=0, le=maximum, decimal_places=places)
    )
    return Annotated[
        Decimal,
        bound,
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", **low, "maximum": maximum},
                    {"type": "string", "pattern": pattern},
                ]
            }
        ),
    ]


def _json_int(value: Any) -> Any:
    # JSON has one number type: 1 and 1.0 are the same integer; "1" and true are not.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("expected an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("expected an integer")
        return int(value)
    return value


def _signed(limit: int, places: int) -> Any:
    """A decimal from -limit to limit given as a JSON number or a decimal string."""
    pattern = rf"^-?[0-9]{{1,{len(str(limit))}}}(\.[0-9]{{1,{places}}})?$"
    return Annotated[
        Decimal,
        Field(ge=-limit, le=limit, decimal_places=places),
        WithJsonSchema(
            {
                "anyOf": [
                    {"type": "number", "minimum": -limit, "maximum": limit},
                    {"type": "string", "pattern": pattern},
                ]
            }
        ),
    ]


Sats = _amount(100_000_000)
Fiat = _signed(1000, 6)  # a fiat amount per kWh, or a fraction (a margin)
Kilowatts = _amount(1000, positive=True)
FiatPrice = _amount(10_000, 6)  # a tariff component in a fiat currency
JsonInt = Annotated[int, BeforeValidator(_json_int)]
ConnectorId = Annotated[int, BeforeValidator(_json_int), Field(ge=1, le=99)]

__all__ = [
    "AuditEntry",
    "AuditPage",
    "AuditQuery",
    "Availability",
    "BaseReportIn",
    "ChargerDetail",
    "ChargerList",
    "ChargerSummary",
    "CommandAnswer",
    "ConnectorIn",
    "ConnectorOut",
    "ErrorOut",
    "GetVariablesIn",
    "LedgerQuery",
    "LedgerTotals",
    "LogQuery",
    "Me",
    "NostrCharger",
    "NostrOverview",
    "OcppFrame",
    "OcppLog",
    "PaymentOut",
    "PaymentPage",
    "PendingList",
    "PendingOut",
    "PeriodTotal",
    "ProfileIn",
    "ProfileWritten",
    "PublishAnswer",
    "Quote",
    "RefundOut",
    "RefundPage",
    "RelayOut",
    "ResetIn",
    "SecurityEventOut",
    "SessionDetail",
    "SessionOut",
    "SessionPage",
    "SessionQuery",
    "SetVariablesIn",
    "StatusEventOut",
    "StickerQuery",
    "TariffIn",
    "TariffOut",
    "TariffPatch",
    "TotalsQuery",
    "TriggerIn",
    "UnlockIn",
    "VariableIn",
    "VariableOut",
    "VariableValueIn",
    "VariablesAnswer",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorOut(_Out):
    """Every error: a machine code and a sentence for a person."""

    error: str
    message: str


class Me(_Out):
    """Who the caller is."""

    actor: str
    scope: Literal["admin", "read"]
    method: Literal["token", "nip98"]


# --- lightning ---------------------------------------------------------------------------------


class LightningOut(_Out):
    """The lightning node as Strom sees it now (probed every 30 s, every 5-60 s while down)."""

    backend: str
    state: Literal["up", "down", "unknown"]
    """``unknown`` only before the first probe."""
    since: datetime
    """When the state last changed."""
    reason: str
    """Why the node is down, in words ("" while up)."""
    checked_at: datetime | None
    next_retry_s: float | None
    """While down: seconds from the last probe to the next (5 s doubling to 60 s)."""
    alias: str | None
    pubkey: str | None
    network: str | None
    """The node's network (``bc``, ``tb``, ``tbs``, ``bcrt``), from its last answer."""
    real_money: bool | None
    notes: list[str]


# --- chargers ----------------------------------------------------------------------------------


class ConnectorOut(_Out):
    connector_id: int
    type: str
    max_power_kw: str
    status: str
    error_code: str
    enabled: bool
    session_id: str | None = None


class SecurityEventOut(_Out):
    type: str
    timestamp: datetime
    tech_info: str | None = None


class ChargerSummary(_Out):
    charger_id: str
    name: str
    online: bool = Field(description="connected: payments open (the same as link 'online')")
    link: Literal["online", "reconnecting", "offline"] = Field(
        description="online: connected (payments open); reconnecting: it was connected when "
        "Strom last stopped and is not back yet, within ocpp.reconnect_grace_s (shown with its "
        "last status, no payments); offline: not connected (no payments)"
    )
    connectors: list[ConnectorOut]
    energy_msat_per_kwh: int | None = Field(
        description="the energy price a driver paying now gets; an energy price in fiat "
        "converted at the current rate, null when no fresh rate converts it"
    )
    energy_price: str = Field(
        description="the energy price as drivers read it, e.g. '250 sat/kWh' or, in fiat, "
        "'0.39 EUR/kWh (about 433 sat at the current rate)'"
    )
    npub: str | None
    ocpp_password_set: bool = Field(
        description="whether the charger must present its OCPP password (never the password)"
    )
    allow_unauthenticated: bool = Field(
        description="its profile admits it without a password ([ocpp] allow_unauthenticated)"
    )
    ocpp_version: str | None = Field(
        None, description="the OCPP version of its latest connection (ocpp1.6, ocpp2.0.1)"
    )
    security_event_count: int = Field(
        0, description="how many OCPP 2.0.1 security events it sent are kept (the last 50)"
    )
    latest_security_event: SecurityEventOut | None = Field(
        None, description="the newest of them, to notice a new one (the detail has them all)"
    )


class BootOut(_Out):
    vendor: str
    model: str
    serial: str | None = None
    firmware: str | None = None


class ChargerList(_Out):
    items: list[ChargerSummary]


class ChargerDetail(ChargerSummary):
    description: str
    address: str
    lat: float
    lon: float
    connection: str
    connected_since: datetime | None
    boot: BootOut | None
    messages_received: int
    messages_sent: int
    pay_urls: dict[str, str]
    recent_sessions: list[SessionOut]
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="OCPP 2.0.1 device-model variables it reported (NotifyReport), "
        "'Component[.instance][@evse]/Variable[.instance]' -> actual value; for OCPP 1.6 the "
        "configuration keys Strom read after its boot (SupportedFeatureProfiles)",
    )
    security_events: list[SecurityEventOut] = Field(
        default_factory=list, description="its latest OCPP 2.0.1 security events, oldest first"
    )


class ConnectorIn(_In):
    id: ConnectorId
    type: str = Field("Type2", min_length=1, max_length=32)
    max_power_kw: Kilowatts  # type: ignore[valid-type]


class PendingOut(_Out):
    """An unknown charger that connected and waits for the operator (``ocpp.auto_register``)."""

    charger_id: str
    remote_address: str
    first_seen: datetime
    last_seen: datetime
    presented_credentials: bool
    boot: BootOut | None


class PendingList(_Out):
    items: list[PendingOut]


class ProfileIn(_In):
    """A charge point's profile, as in ``profiles/<id>.toml`` (without the OCPP password)."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    location: LocationConfig
    connectors: list[ConnectorIn] = Field(min_length=1, max_length=99)
    tariff: TariffIn
    branding: BrandingConfig = BrandingConfig()
    quirks: list[str] = Field(default_factory=list, max_length=20)


class ProfileWritten(_Out):
    charger_id: str
    created: bool
    file: str
    applied_now: list[str]
    restart_required: bool
    ocpp_password: str | None = Field(
        None,
        description="a new charger's generated OCPP password (AuthorizationKey), in this "
        "answer only: Strom keeps only its hash; null when the charger existed",
    )
    ocpp_password_hex: str | None = Field(
        None, description="the same key in hex, for ChangeConfiguration AuthorizationKey"
    )
    ocpp_url: str = Field(
        "", description="the URL to enter in the charger (its OCPP central system address)"
    )


class OcppPasswordOut(_Out):
    """A charger's new OCPP password: shown once, Strom keeps only its hash."""

    charger_id: str
    ocpp_password: str
    ocpp_password_hex: str
    restart_required: bool
    ocpp_url: str = Field(
        "", description="the URL to enter in the charger (its OCPP central system address)"
    )


class Availability(_In):
    enabled: StrictBool


class UnlockIn(_In):
    connector_id: ConnectorId


class ResetIn(_In):
    kind: Literal["soft", "hard"] = "soft"


class TriggerIn(_In):
    connector_id: ConnectorId | None = None


class CommandAnswer(_Out):
    """What the charger answered (accepted, rejected, offline, timeout, …)."""

    status: str
    detail: str = ""
    session_id: str | None = None


class VariableIn(_In):
    """One OCPP 2.0.1 device-model variable, addressed by component and variable."""

    component: str = Field(min_length=1, max_length=50)
    variable: str = Field(min_length=1, max_length=50)
    component_instance: str | None = Field(None, min_length=1, max_length=50)
    variable_instance: str | None = Field(None, min_length=1, max_length=50)
    evse_id: int | None = Field(None, ge=0, le=99)


class VariableValueIn(VariableIn):
    value: str = Field(max_length=1000)


class GetVariablesIn(_In):
    variables: list[VariableIn] = Field(min_length=1, max_length=50)


class SetVariablesIn(_In):
    variables: list[VariableValueIn] = Field(min_length=1, max_length=50)


class BaseReportIn(_In):
    report: Literal["ConfigurationInventory", "FullInventory", "SummaryInventory"] = "FullInventory"


class VariableOut(_Out):
    component: str
    variable: str
    status: str = Field(
        description="Accepted, Rejected, UnknownComponent, UnknownVariable, "
        "NotSupportedAttributeType, RebootRequired"
    )
    value: str | None = None


class VariablesAnswer(_Out):
    """The charger's answer: the command status, then one result per variable."""

    status: str
    detail: str = ""
    variables: list[VariableOut]


class OcppFrame(_Out):
    at: datetime
    direction: str
    frame: str


class LogQuery(_In):
    limit: int = Field(100, ge=1, le=1000)


class StickerQuery(_In):
    connector: int = Field(1, ge=1, le=99)


class OcppLog(_Out):
    charger_id: str
    frames: list[OcppFrame]


# --- tariffs -----------------------------------------------------------------------------------


TariffMode = Literal["static", "time_of_use", "dynamic"]


class TariffIn(_In):
    """Prices in sats (decimals down to 0.001 sat = 1 msat)."""

    per_kwh_sat: Sats  # type: ignore[valid-type]
    per_minute_sat: Sats = Decimal(0)  # type: ignore[valid-type]
    session_fee_sat: Sats = Decimal(0)  # type: ignore[valid-type]
    min_prepay_sat: Sats = Decimal(1000)  # type: ignore[valid-type]
    max_prepay_sat: Sats = Decimal(500_000)  # type: ignore[valid-type]
    reservation_fee_sat: Sats = Decimal(0)  # type: ignore[valid-type]
    reservation_fee_per_minute_sat: Sats = Decimal(0)  # type: ignore[valid-type]
    reservation_max_minutes: Annotated[JsonInt, Field(ge=0, le=1440)] = 0  # 0: none
    reservation_kept_percent: Annotated[JsonInt, Field(ge=0, le=100)] = 100


class DynamicPatch(_In):
    """The dynamic formula (``[tariff.dynamic]``): the fields given replace those on file.

    ``min`` or ``max`` given as null removes that bound. A tariff without a formula yet needs
    at least ``provider`` and ``area``.
    """

    provider: Literal["awattar", "energidataservice", "entsoe", "octopus"] | None = None
    area: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9./_-]+$")
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    grid_fees: Fiat | None = None  # type: ignore[valid-type]
    taxes: Fiat | None = None  # type: ignore[valid-type]
    margin: Fiat | None = None  # type: ignore[valid-type]
    min: Fiat | None = None  # type: ignore[valid-type]
    max: Fiat | None = None  # type: ignore[valid-type]
    token: str | None = Field(None, max_length=300, pattern=r"^((env|file):.+)?$")
    refresh_at: list[Annotated[str, Field(max_length=5)]] | None = Field(None, max_length=24)


class FiatPatch(_In):
    """Components priced in a fiat currency: the fields given replace those on file.

    A component given as null is removed (its ``*_sat`` price applies again); ``currency``
    null removes every fiat component. ``convert``: when the fiat prices become sats.
    """

    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$")
    per_kwh: FiatPrice | None = None  # type: ignore[valid-type]
    per_minute: FiatPrice | None = None  # type: ignore[valid-type]
    session_fee: FiatPrice | None = None  # type: ignore[valid-type]
    idle_per_minute: FiatPrice | None = None  # type: ignore[valid-type]
    convert: Literal["at_payment", "at_billing"] | None = None
    rate_headroom_percent: Annotated[JsonInt, Field(ge=0, le=50)] | None = None


class FiatOut(_Out):
    """A tariff's fiat components as on file (absent ones are null)."""

    currency: str
    per_kwh: str | None
    per_minute: str | None
    session_fee: str | None
    idle_per_minute: str | None
    convert: Literal["at_payment", "at_billing"]
    rate_headroom_percent: int | None


class TariffPatch(_In):
    """A change of prices in sats: the fields given replace the tariff in force, the rest stay.

    An empty object changes nothing (and previews the tariff in force).
    """

    per_kwh_sat: Sats | None = None  # type: ignore[valid-type]
    per_minute_sat: Sats | None = None  # type: ignore[valid-type]
    session_fee_sat: Sats | None = None  # type: ignore[valid-type]
    min_prepay_sat: Sats | None = None  # type: ignore[valid-type]
    max_prepay_sat: Sats | None = None  # type: ignore[valid-type]
    reservation_fee_sat: Sats | None = None  # type: ignore[valid-type]
    reservation_fee_per_minute_sat: Sats | None = None  # type: ignore[valid-type]
    reservation_max_minutes: Annotated[JsonInt, Field(ge=0, le=1440)] | None = None
    reservation_kept_percent: Annotated[JsonInt, Field(ge=0, le=100)] | None = None
    idle_per_minute_sat: Sats | None = None  # type: ignore[valid-type]
    idle_grace_minutes: Annotated[JsonInt, Field(ge=0, le=1440)] | None = None
    # Which energy price: per_kwh_sat alone, time-of-use windows, or a provider's formula.
    # Not given: the one the other fields name (time_of_use or dynamic), else the one in force.
    mode: TariffMode | None = None
    time_zone: str | None = Field(None, min_length=1, max_length=64)
    time_of_use: (
        Annotated[dict[Annotated[str, Field(max_length=11)], Sats], Field(max_length=96)]  # type: ignore[valid-type]
        | None
    ) = None
    dynamic: DynamicPatch | None = None
    fiat: FiatPatch | None = None


class Quote(_Out):
    """What a driver pays for ``energy_wh`` at the connector's full power."""

    energy_wh: int
    minutes: int
    total_msat: int
    total_sat: str


class DynamicOut(_Out):
    """A dynamic tariff's formula, as on file.

    The price is ``(spot + grid_fees + taxes) x (1 + margin)`` in ``currency`` per kWh,
    clamped to ``[min, max]`` (null: unbounded).
    """

    provider: str
    area: str
    currency: str
    grid_fees: str
    taxes: str
    margin: str
    min: str | None
    max: str | None
    token: str  # a reference (env:NAME, file:/path), never the token itself
    refresh_at: list[str]


class TariffOut(_Out):
    charger_id: str
    per_kwh_sat: str
    per_minute_sat: str
    session_fee_sat: str
    min_prepay_sat: str
    max_prepay_sat: str
    energy_msat_per_kwh: int
    time_msat_per_minute: int
    session_fee_msat: int
    min_prepay_msat: int
    max_prepay_msat: int
    reservation_fee_sat: str
    reservation_fee_per_minute_sat: str
    reservation_max_minutes: int  # 0: no reservations
    reservation_kept_percent: int
    idle_per_minute_sat: str  # after the car finished, beyond the grace minutes
    idle_msat_per_minute: int
    idle_grace_minutes: int
    mode: TariffMode
    time_zone: str
    time_of_use: dict[str, str]  # window "HH:MM-HH:MM" -> sat per kWh; per_kwh_sat outside
    dynamic: DynamicOut | None  # the formula of a dynamic tariff, as on file
    fiat: FiatOut | None  # the components priced in a fiat currency, as on file
    quotes: list[Quote]
    saved: bool = False


# --- sessions and ledger -----------------------------------------------------------------------


class SessionQuery(_In):
    charger: ChargerId | None = None
    state: State | None = None
    since: IsoTime | None = None
    until: IsoTime | None = None
    limit: int = Field(50, ge=1, le=500)
    cursor: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    format: Literal["json", "csv"] = "json"


class SessionOut(_Out):
    session_id: str
    charger_id: str
    connector_id: int
    state: str
    initiator: str
    paid_msat: int
    consumed_msat: int
    refunded_msat: int
    refundable_msat: int
    refund_in_flight_msat: int
    energy_wh: int
    elapsed_s: int
    stop_reason: str
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None


class RefundOut(_Out):
    refund_id: str
    session_id: str
    state: str
    amount_msat: int | None
    fee_msat: int | None
    detail: str
    created_at: datetime
    updated_at: datetime


class PaymentOut(_Out):
    payment_hash: str
    session_id: str
    kind: str
    state: str
    amount_msat: int
    zap: bool
    created_at: datetime
    settled_at: datetime | None


class SessionDetail(SessionOut):
    energy_msat_per_kwh: int
    payments: list[PaymentOut]
    refunds: list[RefundOut]


class SessionPage(_Out):
    items: list[SessionOut]
    next_cursor: str | None


class LedgerQuery(_In):
    since: IsoTime | None = None
    until: IsoTime | None = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")
    format: Literal["json", "csv"] = "json"


class PaymentPage(_Out):
    items: list[PaymentOut]
    next_cursor: str | None


class RefundPage(_Out):
    items: list[RefundOut]
    next_cursor: str | None


class TotalsQuery(_In):
    period: Literal["day", "month"] = "day"
    since: IsoTime | None = None
    until: IsoTime | None = None


class PeriodTotal(_Out):
    period: str
    sessions: int
    paid_msat: int
    paid_sat: str
    refunded_msat: int
    refunded_sat: str
    refund_fees_msat: int
    energy_wh: int
    energy_kwh: str


class LedgerTotals(_Out):
    period: str
    totals: list[PeriodTotal]


# --- nostr -------------------------------------------------------------------------------------


class RelayOut(_Out):
    url: str
    state: str
    read: bool
    write: bool


class PublishAnswer(_Out):
    event_id: str
    accepted: bool
    ok: dict[str, str]
    failed: dict[str, str]


class NostrCharger(_Out):
    charger_id: str
    pubkey: str
    npub: str
    last_status: PublishAnswer | None


class NostrOverview(_Out):
    relays: list[RelayOut]
    chargers: list[NostrCharger]


class StatusEventOut(_Out):
    charger_id: str
    npub: str
    event: dict[str, object] | None


# --- audit -------------------------------------------------------------------------------------


class AuditEntry(_Out):
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, object]


class AuditQuery(_In):
    limit: int = Field(100, ge=1, le=1000)


class AuditPage(_Out):
    items: list[AuditEntry]


ChargerDetail.model_rebuild()
ProfileIn.model_rebuild()


# --- firmware updates and uploaded files (cockpit.api.firmware) ------------------------------


class UpdateFirmwareIn(_In):
    """Where the charger fetches the firmware, and from when (now when not given)."""

    location: str = Field(min_length=1, max_length=512, pattern=r"^(https?|ftps?)://\S+$")
    retrieve_at: IsoTime | None = None
    retries: JsonInt | None = Field(None, ge=0, le=100)
    retry_interval_s: JsonInt | None = Field(None, ge=0, le=86_400)


class GetDiagnosticsIn(_In):
    """The time span of the diagnostics, when the charger should limit them."""

    start: IsoTime | None = None
    stop: IsoTime | None = None
    retries: JsonInt | None = Field(None, ge=0, le=100)
    retry_interval_s: JsonInt | None = Field(None, ge=0, le=86_400)


class UploadAnswer(_Out):
    """What the charger answered to a request for an upload, and the name it will upload."""

    status: str
    detail: str = ""
    file_name: str | None = None


class UploadedFileOut(_Out):
    """One file a charger uploaded."""

    name: str
    size: int
    modified: datetime


class FirmwareOut(_Out):
    """A charger's firmware: version, the last firmware, diagnostics and log statuses, files."""

    charger_id: str
    firmware_version: str | None = None
    firmware_status: str | None = None
    diagnostics_status: str | None = None
    log_status: str | None = None
    signed_firmware_status: str | None = None
    files: list[UploadedFileOut]


class SignedUpdateFirmwareIn(_In):
    """Signed firmware (security edition): where, from when, its certificate and signature.

    ``signing_certificate`` is the PEM certificate of the key that signed the firmware,
    ``signature`` the signature in base64; ``request_id`` (chosen by Strom when not given) is
    repeated in the charger's SignedFirmwareStatusNotifications.
    """

    location: str = Field(min_length=1, max_length=512, pattern=r"^(https?|ftps?)://\S+$")
    signing_certificate: str = Field(
        min_length=1,
        max_length=5500,
        pattern=r"^-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*$",
    )
    signature: str = Field(min_length=4, max_length=800, pattern=r"^[A-Za-z0-9+/]+={0,2}$")
    retrieve_at: IsoTime | None = None
    install_at: IsoTime | None = None
    request_id: JsonInt | None = Field(None, ge=0, le=2_147_483_647)
    retries: JsonInt | None = Field(None, ge=0, le=100)
    retry_interval_s: JsonInt | None = Field(None, ge=0, le=86_400)


# --- power limits (cockpit.api.power) ----------------------------------------------------------


class SiteLimitIn(_In):
    """A charger's site limit in kW (1 to 1000, whole watts), or null for none."""

    limit_kw: Decimal | None = Field(ge=1, le=1000, decimal_places=3)


class SiteLimitAnswer(_Out):
    """The site limit now in the profile, and what the charger answered to it."""

    charger_id: str
    limit_kw: Decimal | None
    status: str
    detail: str = ""
    restart_required: bool = False


class CompositeScheduleQuery(_In):
    connector_id: int = Field(0, ge=0, le=99)
    duration_s: int = Field(3600, ge=1, le=86_400)


class SchedulePeriodOut(_Out):
    start_s: int
    limit_w: int


class CompositeScheduleOut(_Out):
    """What the charger allows on a connector (0: the whole charger), and its site limit."""

    charger_id: str
    connector_id: int
    site_limit_kw: Decimal | None
    status: str
    detail: str = ""
    start: str | None = None
    duration_s: int | None = None
    periods: list[SchedulePeriodOut] = []


# --- logs (cockpit.api.firmware) ---------------------------------------------------------------


class GetLogIn(_In):
    """Which log the charger uploads (GetLog), and the time span when it should limit it."""

    log_type: Literal["diagnostics", "security"] = "diagnostics"
    start: IsoTime | None = None
    stop: IsoTime | None = None


class LogAnswer(UploadAnswer):
    """What the charger answered to GetLog; its LogStatusNotifications carry ``request_id``."""

    request_id: int


# --- root certificates on the charger (cockpit.api.certificates) -------------------------------

CertificateType = Literal["CentralSystemRootCertificate", "ManufacturerRootCertificate"]


class CertificateOut(_Out):
    """One root certificate a charger holds, named by its hash data as the charger sent it."""

    certificate_type: str
    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str = Field(description="hexadecimal: DELETE …/certificates/{serial} takes it")


class CertificateTypeStatus(_Out):
    """What the charger answered to GetInstalledCertificateIds for one type."""

    certificate_type: str
    status: str
    detail: str = ""


class CertificatesOut(_Out):
    """The root certificates a charger holds, both types asked (``status``: the worse answer)."""

    charger_id: str
    status: str
    detail: str = ""
    types: list[CertificateTypeStatus]
    certificates: list[CertificateOut]


class CertificateIn(_In):
    """A root certificate to install: one PEM certificate (checked before it is sent)."""

    certificate_type: CertificateType = "CentralSystemRootCertificate"
    pem: str = Field(min_length=1, max_length=5500)


class CertificateAnswer(_Out):
    """What the charger answered to InstallCertificate or DeleteCertificate, and which one."""

    status: str
    detail: str = ""
    certificate_type: str | None = None
    subject: str | None = None
    serial_number: str | None = None
    not_after: datetime | None = None


# --- the operator's cards (cockpit.api.cards) --------------------------------------------------


class CardIn(_In):
    """One card: its idTag (OCPP CiString20), a label, and who pays (free, or an account)."""

    id_tag: str = Field(min_length=1, max_length=20, pattern=r"^[!-~]+$")
    label: str = Field("", max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
    mode: Literal["free", "account"] = "free"
    account: str = Field(
        "", max_length=48, pattern=r"^[^\x00-\x1f\x7f]*$", description="only for mode account"
    )


class CardsIn(_In):
    """The charger's whole list of cards (it replaces the list in force)."""

    cards: list[CardIn] = Field(max_length=100)


class CardOut(_Out):
    id_tag: str
    label: str
    mode: str
    account: str


class LocalListOut(_Out):
    """What the charger answered to the update of its local list (``update`` None: none sent)."""

    status: str
    detail: str = ""
    update: str | None = None
    version: int | None = None


class CardsOut(_Out):
    """A charger's cards; after a change, what its local list update got."""

    charger_id: str
    cards: list[CardOut]
    local_list: LocalListOut | None = None
    restart_required: bool = False
