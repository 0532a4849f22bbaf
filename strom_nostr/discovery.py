"""What a charge point publishes so drivers find it: profile, relay lists and its status event.

Builders take plain frozen dataclasses and return :class:`~strom_nostr.event.EventTemplate`
objects (sign them with :func:`~strom_nostr.event.sign_template`); nothing here does I/O or
reads a clock, the caller passes ``created_at``.

The status event (kind :data:`STATUS_KIND`, specified in ``docs/nostr.md``) is addressable:
``d`` is the charger id, so each publish replaces the previous one on every relay, and its
coordinate ``30522:<pubkey>:<charger id>`` is what a zap request's ``a`` tag names. Why 30522:
it is in the addressable range 30000-39999, no NIP or entry of the registry of kinds uses it,
and it spells "30" + E(5) V(22).

Prices: the ``price`` tags say the energy price in force (``kWh``), the time price (``min``)
and the session fee. A dynamically priced charger (time of use, spot market) adds one
``price_interval`` tag per interval of its coming schedule (:class:`ScheduledPrice`, the next
24 hours at most); a static tariff has none. When no energy price can be given now, the
``kWh`` price tag is left out (and so are the intervals), so no client takes it for free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import orjson

from strom_nostr import geohash
from strom_nostr.errors import BuildError, MalformedEvent
from strom_nostr.event import Event, EventTemplate, expiration, is_hex64

__all__ = [
    "DEFAULT_STATUS_TTL_S",
    "DM_RELAY_LIST_KIND",
    "FIAT_PERS",
    "GEOHASH_PRECISION",
    "PROFILE_KIND",
    "RELAY_LIST_KIND",
    "STATUS_KIND",
    "ChargerStatus",
    "ConnectorInfo",
    "ConnectorStatus",
    "Coordinate",
    "FiatPrice",
    "Location",
    "ParsedStatus",
    "Prices",
    "Profile",
    "RelayEntry",
    "ScheduledPrice",
    "connector_status_from_ocpp",
    "dm_relay_list_template",
    "lightning_address",
    "overall_status",
    "parse_coordinate",
    "parse_status",
    "profile_template",
    "relay_list_template",
    "status_coordinate",
    "status_template",
]

PROFILE_KIND = 0
RELAY_LIST_KIND = 10002
DM_RELAY_LIST_KIND = 10050
STATUS_KIND = 30522
DEFAULT_STATUS_TTL_S = 3600
"""Status lifetime: agents re-publish at least every half of it, so a dead charger ages out."""
GEOHASH_PRECISION = 9
"""``g`` tags carry the geohash at precisions 1..9 (about 5000 km down to 5 m)."""

_FIAT_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
FIAT_PERS = ("kWh", "min", "session")
"""The ``<per>`` of the ``price_fiat`` tags, as of the ``price`` tags."""
_RELAY_URL = re.compile(r"wss?://[^\s/]+\S*")
_LUD16 = re.compile(r"[a-z0-9._-]+@[a-z0-9.-]+(:[0-9]+)?")


class ConnectorStatus(StrEnum):
    """What a driver needs to know about one connector (OCPP states folded to five).

    ``reserved`` was added after the first four: a connector held for someone until a time
    (the status event then carries a ``reserved`` tag with that time when it is known).
    """

    AVAILABLE = "available"
    CHARGING = "charging"
    UNAVAILABLE = "unavailable"
    FAULTED = "faulted"
    RESERVED = "reserved"


_FROM_OCPP16 = {
    "Available": ConnectorStatus.AVAILABLE,
    "Preparing": ConnectorStatus.CHARGING,
    "Charging": ConnectorStatus.CHARGING,
    "SuspendedEV": ConnectorStatus.CHARGING,
    "SuspendedEVSE": ConnectorStatus.CHARGING,
    "Finishing": ConnectorStatus.CHARGING,
    "Reserved": ConnectorStatus.RESERVED,
    "Unavailable": ConnectorStatus.UNAVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
}


def connector_status_from_ocpp(status: str) -> ConnectorStatus:
    """Fold an OCPP 1.6 ``ChargePointStatus`` into the published states.

    ``Preparing`` to ``Finishing`` all mean a car holds the connector ("charging"),
    ``Reserved`` is published as it is; an unknown value is published as unavailable rather
    than guessed.
    """
    return _FROM_OCPP16.get(status, ConnectorStatus.UNAVAILABLE)


@dataclass(frozen=True, slots=True)
class ConnectorInfo:
    """One connector as published: OCPP connector id, plug type, max power, status.

    ``reserved_until`` (unix seconds) is the end of the connector's reservation when it is
    ``reserved`` and the time is known; None otherwise.
    """

    id: int
    type: str
    max_power_w: int
    status: ConnectorStatus
    reserved_until: int | None = None


@dataclass(frozen=True, slots=True)
class Prices:
    """The current tariff in exact msat (see :class:`strom_core.tariff.Tariff`)."""

    energy_msat_per_kwh: int
    time_msat_per_minute: int = 0
    session_fee_msat: int = 0


@dataclass(frozen=True, slots=True)
class FiatPrice:
    """A price component the operator wrote in a fiat currency (``price_fiat`` tag).

    Attributes:
        amount: the amount as written, a plain decimal (``"0.39"``).
        currency: ISO 4217 code.
        per: ``kWh``, ``min`` or ``session``, as the ``price`` tags.
        convert: when a payment's sats are counted: ``at_payment`` or ``at_billing``.
    """

    amount: str
    currency: str
    per: str
    convert: str = "at_payment"


@dataclass(frozen=True, slots=True)
class ScheduledPrice:
    """One interval of a dynamic tariff's schedule: unix seconds ``[start, end)`` and its price.

    The energy price is integer msat per kWh and may be negative (spot markets); a session's
    bill never goes below zero.
    """

    start: int
    end: int
    energy_msat_per_kwh: int


@dataclass(frozen=True, slots=True)
class Location:
    """Where the charger is; ``address`` is shown to people as it is."""

    lat: float
    lon: float
    address: str = ""


@dataclass(frozen=True, slots=True)
class ChargerStatus:
    """Everything the status event says about one charger."""

    charger_id: str
    name: str
    location: Location
    connectors: tuple[ConnectorInfo, ...]
    prices: Prices
    lud16: str
    summary: str = ""
    website: str = ""
    schedule: tuple[ScheduledPrice, ...] = ()
    """A dynamic tariff's coming prices (``price_interval`` tags); empty for a static one."""
    energy_price_known: bool = True
    """False when no energy price can be given now: the ``kWh`` price tag is left out."""
    unpriced: frozenset[str] = frozenset()
    """``min`` and/or ``session``: their price tags are left out (a fiat price, no rate now)."""
    fiat: tuple[FiatPrice, ...] = ()
    """The components priced in fiat, as written (``price_fiat`` tags)."""


@dataclass(frozen=True, slots=True)
class Profile:
    """Kind-0 metadata of a charger's agent."""

    name: str
    about: str
    lud16: str
    picture: str = ""
    website: str = ""
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class RelayEntry:
    """One relay of a NIP-65 list."""

    url: str
    read: bool = True
    write: bool = True


@dataclass(frozen=True, slots=True)
class Coordinate:
    """An addressable event coordinate ``kind:pubkey:identifier``."""

    kind: int
    pubkey: str
    identifier: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.pubkey}:{self.identifier}"


def lightning_address(charger_id: str, host: str) -> str:
    """The LUD-16 address ``<charger id>@<host>`` (lowercase: LUD-16 names are lowercase)."""
    address = f"{charger_id}@{host}".lower()
    if not _LUD16.fullmatch(address):
        raise BuildError(f"not a valid lightning address: {address!r}")
    return address


def status_coordinate(pubkey: str, charger_id: str) -> str:
    """The coordinate of a charger's status event, as used in ``a`` tags."""
    return str(Coordinate(STATUS_KIND, pubkey, charger_id))


def parse_coordinate(text: str) -> Coordinate:
    """Parse ``<kind>:<pubkey>:<identifier>`` (the identifier may itself contain colons).

    Raises:
        ValueError: not a coordinate of an addressable or replaceable event.
    """
    kind_text, sep1, rest = text.partition(":")
    pubkey, sep2, identifier = rest.partition(":")
    if not (sep1 and sep2 and kind_text.isascii() and kind_text.isdigit()):
        raise ValueError(f"not an event coordinate: {text!r}")
    if len(kind_text) > 5 or int(kind_text) > 65535 or not is_hex64(pubkey):
        raise ValueError(f"not an event coordinate: {text!r}")
    return Coordinate(int(kind_text), pubkey, identifier)


def overall_status(connectors: Sequence[ConnectorInfo]) -> ConnectorStatus:
    """One word for the whole charger: available if any connector is, then charging, ...

    It stays one of the first four words (clients colour markers by it): a charger whose
    connectors are all reserved or unavailable is ``unavailable`` to anyone arriving.
    """
    states = {connector.status for connector in connectors}
    for state in (
        ConnectorStatus.AVAILABLE,
        ConnectorStatus.CHARGING,
        ConnectorStatus.FAULTED,
    ):
        if state in states:
            return state
    return ConnectorStatus.UNAVAILABLE


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(message)


def _check_status(status: ChargerStatus) -> None:
    _require(bool(status.charger_id) and status.charger_id.isprintable(), "charger id is empty")
    _require(bool(status.name), "charger name is empty")
    _require(bool(status.connectors), "a charger has at least one connector")
    ids = [connector.id for connector in status.connectors]
    _require(len(ids) == len(set(ids)), f"connector ids must be unique, got {ids}")
    for connector in status.connectors:
        _require(1 <= connector.id <= 99, "connector ids are 1 to 99")
        _require(bool(connector.type), f"connector {connector.id} has no type")
        _require(connector.max_power_w > 0, f"connector {connector.id} has no power")
        _require(connector.status in set(ConnectorStatus), f"connector {connector.id}: bad status")
        until = connector.reserved_until
        if until is not None:
            _require(
                connector.status is ConnectorStatus.RESERVED,
                f"connector {connector.id}: an end of reservation but not reserved",
            )
            _require(isinstance(until, int) and until > 0, "reservation end is unix seconds")
    prices = status.prices
    for value in (prices.energy_msat_per_kwh, prices.time_msat_per_minute, prices.session_fee_msat):
        _require(isinstance(value, int) and value >= 0, "prices are non-negative integer msat")
    _require(bool(_LUD16.fullmatch(status.lud16)), f"not a lightning address: {status.lud16!r}")
    _require(status.energy_price_known or not status.schedule, "a schedule but no energy price now")
    _require(status.unpriced <= {"min", "session"}, "only min and session prices may be left out")
    pers = [fiat.per for fiat in status.fiat]
    _require(len(pers) == len(set(pers)), "one fiat price per component")
    for fiat in status.fiat:
        _require(fiat.per in FIAT_PERS, f"a fiat price is per {FIAT_PERS}, not {fiat.per!r}")
        _require(bool(_FIAT_AMOUNT.fullmatch(fiat.amount)), "a fiat amount is a plain decimal")
        _require(bool(_CURRENCY.fullmatch(fiat.currency)), "a currency is an ISO 4217 code")
        _require(fiat.convert in ("at_payment", "at_billing"), "convert: at_payment or at_billing")
    previous_end: int | None = None
    for slot in status.schedule:
        for value in (slot.start, slot.end, slot.energy_msat_per_kwh):
            _require(
                isinstance(value, int) and not isinstance(value, bool),
                "price intervals are integer unix seconds and msat",
            )
        _require(0 < slot.start < slot.end, "a price interval ends after it starts")
        _require(
            previous_end is None or slot.start == previous_end,
            "price intervals are sorted and contiguous",
        )
        previous_end = slot.end


def _alt(status: ChargerStatus) -> str:
    available = sum(c.status is ConnectorStatus.AVAILABLE for c in status.connectors)
    return (
        f"EV charger {status.name}: {available} of {len(status.connectors)} connectors "
        f"available; pay with Lightning to {status.lud16}"
    )


def _price_tags(status: ChargerStatus) -> list[list[str]]:
    """The ``price`` tags (those that can be given now) and the ``price_fiat`` tags."""
    prices = status.prices
    known = {
        "kWh": status.energy_price_known,
        "min": "min" not in status.unpriced,
        "session": "session" not in status.unpriced,
    }
    values = {
        "kWh": prices.energy_msat_per_kwh,
        "min": prices.time_msat_per_minute,
        "session": prices.session_fee_msat,
    }
    tags = [["price", str(values[per]), "msat", per] for per in FIAT_PERS if known[per]]
    tags += [
        ["price_fiat", fiat.amount, fiat.currency, fiat.per, fiat.convert]
        for fiat in sorted(status.fiat, key=lambda fiat: FIAT_PERS.index(fiat.per))
    ]
    return tags


def status_template(
    status: ChargerStatus, *, created_at: int, ttl_s: int = DEFAULT_STATUS_TTL_S
) -> EventTemplate:
    """The addressable status event of one charger (layout in ``docs/nostr.md``).

    Args:
        status: what to publish.
        created_at: unix seconds of this version.
        ttl_s: seconds until relays and clients drop it (NIP-40 ``expiration``).

    Returns:
        The unsigned template, kind :data:`STATUS_KIND`.

    Raises:
        BuildError: an input is invalid (empty name, duplicate connector ids, bad location).
    """
    _check_status(status)
    _require(ttl_s > 0, "ttl must be positive")
    try:
        cells = geohash.prefixes(status.location.lat, status.location.lon, GEOHASH_PRECISION)
    except ValueError as exc:
        raise BuildError(f"invalid location: {exc}") from exc
    tags: list[list[str]] = [
        ["d", status.charger_id],
        ["name", status.name],
        ["alt", _alt(status)],
        ["t", "ev-charging"],
        ["status", overall_status(status.connectors).value],
    ]
    tags += [["g", cell] for cell in cells]
    if status.location.address:
        tags.append(["location", status.location.address])
    for c in sorted(status.connectors, key=lambda c: c.id):
        tags.append(["connector", str(c.id), c.type, str(c.max_power_w), c.status.value])
    for c in sorted(status.connectors, key=lambda c: c.id):
        if c.reserved_until is not None:
            tags.append(["reserved", str(c.id), str(c.reserved_until)])
    tags += _price_tags(status)
    tags += [
        ["price_interval", str(slot.start), str(slot.end), str(slot.energy_msat_per_kwh)]
        for slot in status.schedule
    ]
    tags.append(["lud16", status.lud16])
    if status.summary:
        tags.append(["summary", status.summary])
    if status.website:
        tags.append(["r", status.website])
    tags.append(["expiration", str(created_at + ttl_s)])
    return EventTemplate(STATUS_KIND, tuple(tuple(t) for t in tags), "", created_at)


def profile_template(profile: Profile, *, created_at: int) -> EventTemplate:
    """Kind-0 metadata: name, about, picture, website and ``lud16`` for zaps.

    Raises:
        BuildError: name or lightning address missing.
    """
    _require(bool(profile.name), "profile name is empty")
    _require(bool(_LUD16.fullmatch(profile.lud16)), f"not a lightning address: {profile.lud16!r}")
    fields = {
        "name": profile.name,
        "display_name": profile.display_name,
        "about": profile.about,
        "picture": profile.picture,
        "website": profile.website,
        "lud16": profile.lud16,
    }
    content = orjson.dumps({k: v for k, v in fields.items() if v}).decode()
    return EventTemplate(PROFILE_KIND, (), content, created_at)


def _check_relay(url: str) -> None:
    _require(bool(_RELAY_URL.fullmatch(url)), f"not a relay URL: {url!r}")


def relay_list_template(relays: Sequence[RelayEntry], *, created_at: int) -> EventTemplate:
    """NIP-65 relay list (kind 10002): where the agent reads and writes.

    Raises:
        BuildError: a URL is not ws(s):// or a relay is neither read nor write.
    """
    tags: list[tuple[str, ...]] = []
    for relay in relays:
        _check_relay(relay.url)
        _require(relay.read or relay.write, f"relay {relay.url} is neither read nor write")
        if relay.read and relay.write:
            tags.append(("r", relay.url))
        else:
            tags.append(("r", relay.url, "read" if relay.read else "write"))
    return EventTemplate(RELAY_LIST_KIND, tuple(tags), "", created_at)


def dm_relay_list_template(relays: Sequence[str], *, created_at: int) -> EventTemplate:
    """NIP-17 DM inbox relays (kind 10050).

    Raises:
        BuildError: a URL is not ws(s)://.
    """
    for url in relays:
        _check_relay(url)
    return EventTemplate(
        DM_RELAY_LIST_KIND, tuple(("relay", url) for url in relays), "", created_at
    )


# --- reading a status event back -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParsedStatus:
    """A status event as a client reads it (location only as precise as its geohash)."""

    pubkey: str
    charger_id: str
    name: str
    geohash: str
    address: str
    connectors: tuple[ConnectorInfo, ...]
    prices: Prices
    lud16: str
    created_at: int
    expires_at: int | None
    schedule: tuple[ScheduledPrice, ...] = ()
    """The ``price_interval`` tags, sorted by start (empty for a static tariff)."""
    energy_price_known: bool = True
    """Whether the event has a ``kWh`` price tag (without it ``prices`` says 0 for energy)."""
    fiat: tuple[FiatPrice, ...] = ()
    """The ``price_fiat`` tags: components priced in fiat, as written."""

    @property
    def coordinate(self) -> str:
        """The ``a`` tag value to zap this charger."""
        return status_coordinate(self.pubkey, self.charger_id)


def _int(text: str, what: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise MalformedEvent(f"status event: {what} is not a whole number")
    return int(text)


def _parse_connector(tag: tuple[str, ...]) -> ConnectorInfo:
    if len(tag) < 5:
        raise MalformedEvent("status event: connector tag needs id, type, power and status")
    try:
        state = ConnectorStatus(tag[4])
    except ValueError:
        raise MalformedEvent(f"status event: unknown connector status {tag[4]!r}") from None
    return ConnectorInfo(_int(tag[1], "connector id"), tag[2], _int(tag[3], "power"), state)


def _reservation_ends(event: Event) -> dict[int, int]:
    ends: dict[int, int] = {}
    for tag in event.tags:
        if tag[0] == "reserved" and len(tag) >= 3:
            ends[_int(tag[1], "reserved connector id")] = _int(tag[2], "reservation end")
    return ends


def _parse_prices(event: Event) -> Prices:
    units = {"kWh": 0, "min": 0, "session": 0}
    for tag in event.tags:
        if tag[0] == "price" and len(tag) >= 4 and tag[2] == "msat" and tag[3] in units:
            units[tag[3]] = _int(tag[1], "price")
    return Prices(units["kWh"], units["min"], units["session"])


def _has_energy_price(event: Event) -> bool:
    return any(
        tag[0] == "price" and len(tag) >= 4 and tag[2] == "msat" and tag[3] == "kWh"
        for tag in event.tags
    )


def _parse_fiat(event: Event) -> tuple[FiatPrice, ...]:
    found = []
    for tag in event.tags:
        if tag[0] != "price_fiat" or len(tag) < 4 or tag[3] not in FIAT_PERS:
            continue  # another <per> is a later addition: ignored, as unknown tags are
        if not (_FIAT_AMOUNT.fullmatch(tag[1]) and _CURRENCY.fullmatch(tag[2])):
            raise MalformedEvent("status event: price_fiat needs a decimal amount and a currency")
        convert = tag[4] if len(tag) >= 5 else "at_payment"
        found.append(FiatPrice(tag[1], tag[2], tag[3], convert))
    return tuple(found)


def _signed_int(text: str, what: str) -> int:
    return -_int(text[1:], what) if text.startswith("-") else _int(text, what)


def _parse_schedule(event: Event) -> tuple[ScheduledPrice, ...]:
    slots = []
    for tag in event.tags:
        if tag[0] != "price_interval":
            continue
        if len(tag) < 4:
            raise MalformedEvent("status event: price_interval needs start, end and price")
        slot = ScheduledPrice(
            _int(tag[1], "interval start"),
            _int(tag[2], "interval end"),
            _signed_int(tag[3], "interval price"),
        )
        if slot.end <= slot.start:
            raise MalformedEvent("status event: a price interval ends before it starts")
        slots.append(slot)
    return tuple(sorted(slots, key=lambda slot: slot.start))


def parse_status(event: Event) -> ParsedStatus:
    """Read a (verified) status event.

    Raises:
        MalformedEvent: wrong kind or a required tag is missing or malformed.
    """
    if event.kind != STATUS_KIND:
        raise MalformedEvent(f"not a status event (kind {event.kind})")
    charger_ids = event.tag_values("d")
    names = event.tag_values("name")
    lud16s = event.tag_values("lud16")
    if not (charger_ids and names and lud16s):
        raise MalformedEvent("status event needs d, name and lud16 tags")
    cells = event.tag_values("g")
    ends = _reservation_ends(event)
    connectors = tuple(
        replace(info, reserved_until=ends.get(info.id))
        if info.status is ConnectorStatus.RESERVED
        else info
        for info in (_parse_connector(t) for t in event.tags if t[0] == "connector")
    )
    addresses = event.tag_values("location")
    return ParsedStatus(
        pubkey=event.pubkey,
        charger_id=charger_ids[0],
        name=names[0],
        geohash=max(cells, key=len, default=""),
        address=addresses[0] if addresses else "",
        connectors=connectors,
        prices=_parse_prices(event),
        lud16=lud16s[0],
        created_at=event.created_at,
        expires_at=expiration(event),
        schedule=_parse_schedule(event),
        energy_price_known=_has_energy_price(event),
        fiat=_parse_fiat(event),
    )
