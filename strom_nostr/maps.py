"""What a charge point publishes so that map and marketplace clients show it.

The status event (kind 30522, :mod:`strom_nostr.discovery`) is Strom's own kind: no map client
in use renders it (see the client table in ``docs/nostr.md``). So each charger also publishes:

* a NIP-99 classified listing (kind :data:`LISTING_KIND`), addressable with ``d`` = the
  charger id, so a new version replaces the old one on every relay. Marketplaces read its
  ``title``, ``summary``, ``image``, ``location`` and first ``price`` tag; geohash map clients
  read its ``g`` tags, which are written most precise first (some clients take the first ``g``
  tag, others the longest) and at every precision (clients query ``#g`` with the cells of the
  visible map, at a precision that depends on the zoom).
* a NIP-89 handler information event (kind :data:`HANDLER_INFO_KIND`) for kind 30522 and
  a recommendation (kind :data:`HANDLER_RECOMMENDATION_KIND`) pointing at it, so a client
  that meets a status event and supports NIP-89 can open the charger's page.

Builders are pure: no I/O, no clock; the caller passes ``created_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from strom_nostr import geohash
from strom_nostr.discovery import (
    GEOHASH_PRECISION,
    STATUS_KIND,
    ChargerStatus,
    FiatPrice,
    Location,
)
from strom_nostr.errors import BuildError
from strom_nostr.event import EventTemplate, is_hex64

__all__ = [
    "HANDLER_ID",
    "HANDLER_INFO_KIND",
    "HANDLER_RECOMMENDATION_KIND",
    "LISTING_HASHTAGS",
    "LISTING_KIND",
    "Handler",
    "Listing",
    "handler_coordinate",
    "handler_info_template",
    "handler_recommendation_template",
    "listing_template",
    "sats_text",
]

LISTING_KIND = 30402
HANDLER_RECOMMENDATION_KIND = 31989
HANDLER_INFO_KIND = 31990
HANDLER_ID = "strom-charger-page"
"""The ``d`` tag of a charger's handler information event (one per charger key)."""
LISTING_HASHTAGS = ("ev-charging", "ev", "charging", "lightning")
"""The listing's ``t`` tags: the status event's ``ev-charging`` and the words people search."""


@dataclass(frozen=True, slots=True)
class Listing:
    """A charger as a classified listing.

    Attributes:
        status: the charger as its status event describes it (name, place, prices, address
            to zap, its page in ``website``).
        published_at: unix seconds of the listing's first publication (NIP-99).
        image: a picture of the charger (the profile's), or empty.
    """

    status: ChargerStatus
    published_at: int
    image: str = ""


@dataclass(frozen=True, slots=True)
class Handler:
    """A web application that opens status events (NIP-89).

    Attributes:
        name: shown by clients that list handlers.
        about: one line about it.
        url_pattern: the page URL with ``<bech32>`` where a client puts the ``naddr`` of a
            status event.
        picture: an icon, or empty.
    """

    name: str
    about: str
    url_pattern: str
    picture: str = ""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise BuildError(message)


def sats_text(msat: int) -> str:
    """An msat amount as a decimal number of sats, exactly (``250500`` -> ``"250.5"``)."""
    _require(msat >= 0, "amounts are non-negative")
    whole, rest = divmod(msat, 1000)
    return str(whole) if rest == 0 else f"{whole}.{rest:03d}".rstrip("0")


def _place(location: Location) -> str:
    return location.address or f"{location.lat:.5f}, {location.lon:.5f}"


def _fiat(status: ChargerStatus, per: str) -> FiatPrice | None:
    return next((fiat for fiat in status.fiat if fiat.per == per), None)


def _energy_price(status: ChargerStatus) -> tuple[str, str]:
    """The energy price as the listing's ``price`` tag gives it: amount and currency.

    A price written in fiat is listed as written (NIP-99 prices carry their currency, and its
    sats change with the rate); otherwise the sats.
    """
    fiat = _fiat(status, "kWh")
    if fiat is not None:
        return fiat.amount, fiat.currency
    return sats_text(status.prices.energy_msat_per_kwh), "SAT"


def _price_line(status: ChargerStatus, per: str, what: str, unit: str, msat: int) -> str | None:
    fiat = _fiat(status, per)
    if fiat is not None:
        return f"- {what}: {fiat.amount} {fiat.currency}{unit}, paid in sats at the current rate"
    return f"- {what}: {sats_text(msat)} sat{unit}" if msat or per == "kWh" else None


def _content(status: ChargerStatus) -> str:
    prices = status.prices
    lines = [
        f"**{status.name}**: an EV charger paid with Lightning.",
        "",
        f"- Where: {_place(status.location)}",
    ]
    for per, what, unit, msat in (
        ("kWh", "Energy", " per kWh", prices.energy_msat_per_kwh),
        ("min", "Time", " per minute", prices.time_msat_per_minute),
        ("session", "Session fee", "", prices.session_fee_msat),
    ):
        line = _price_line(status, per, what, unit, msat)
        if line is not None:
            lines.append(line)
    for c in sorted(status.connectors, key=lambda c: c.id):
        lines.append(f"- Connector {c.id}: {c.type}, {c.max_power_w / 1000:g} kW")
    lines.append(f"- Pay (zap): {status.lud16}")
    if status.website:
        lines += ["", f"Live availability, prices and QR codes: {status.website}"]
    if status.summary:
        lines += ["", status.summary]
    return "\n".join(lines)


def listing_template(listing: Listing, *, created_at: int) -> EventTemplate:
    """The NIP-99 classified listing (kind 30402) of one charger.

    It carries the NIP's recommended tags (``title``, ``summary``, ``published_at``,
    ``location``, ``price`` in ``SAT`` per ``kWh``, ``status`` ``active``), ``g`` tags most
    precise first, ``image`` when there is one, ``t`` hashtags, the charger page in ``r``, the
    ``lud16`` to zap. Its content is a Markdown description.

    Raises:
        BuildError: the charger has no name, page, valid location, or ``published_at`` is
            after ``created_at``.
    """
    status = listing.status
    _require(bool(status.charger_id), "charger id is empty")
    _require(bool(status.name), "charger name is empty")
    _require(bool(status.lud16), "a listing needs a lightning address")
    _require(bool(status.website), "a listing needs the charger's page")
    _require(0 < listing.published_at <= created_at, "published_at must be before created_at")
    try:
        cells = geohash.prefixes(status.location.lat, status.location.lon, GEOHASH_PRECISION)
    except ValueError as exc:
        raise BuildError(f"invalid location: {exc}") from exc
    amount, currency = _energy_price(status)
    unit = "sat" if currency == "SAT" else currency
    summary = status.summary or f"EV charging for {amount} {unit}/kWh, paid with Lightning"
    tags: list[tuple[str, ...]] = [
        ("d", status.charger_id),
        ("title", f"EV charging: {status.name}"),
        ("summary", summary),
        ("published_at", str(listing.published_at)),
        ("location", _place(status.location)),
        ("price", amount, currency, "kWh"),
        ("status", "active"),
        *(("g", cell) for cell in sorted(cells, key=len, reverse=True)),
        *(("t", word) for word in LISTING_HASHTAGS),
    ]
    if listing.image:
        tags.append(("image", listing.image))
    tags += [
        ("r", status.website),
        ("lud16", status.lud16),
        ("alt", f"Classified listing: EV charger {status.name}, pay with Lightning"),
    ]
    return EventTemplate(LISTING_KIND, tuple(tags), _content(status), created_at)


def handler_coordinate(pubkey: str, identifier: str = HANDLER_ID) -> str:
    """The coordinate ``31990:<pubkey>:<identifier>`` of a handler information event."""
    return f"{HANDLER_INFO_KIND}:{pubkey}:{identifier}"


def handler_info_template(handler: Handler, *, created_at: int) -> EventTemplate:
    """NIP-89 handler information (kind 31990): web pages that open status events.

    ``k`` is 30522 and the ``web`` tag's URL holds ``<bech32>``, which a client replaces
    with the ``naddr`` of the status event (the tag's third value says so).

    Raises:
        BuildError: the URL pattern is not http(s) or lacks ``<bech32>``.
    """
    _require(bool(handler.name), "handler name is empty")
    url = handler.url_pattern
    _require(url.startswith(("https://", "http://")), f"not a web URL: {url!r}")
    _require("<bech32>" in url, "the URL pattern needs a <bech32> placeholder")
    fields = {"name": handler.name, "about": handler.about, "picture": handler.picture}
    content = orjson.dumps({k: v for k, v in fields.items() if v}).decode()
    tags = (
        ("d", HANDLER_ID),
        ("k", str(STATUS_KIND)),
        ("web", url, "naddr"),
        ("alt", f"Application handler: {handler.name} opens EV charger status events"),
    )
    return EventTemplate(HANDLER_INFO_KIND, tags, content, created_at)


def handler_recommendation_template(
    pubkey: str, *, relay_hint: str = "", created_at: int
) -> EventTemplate:
    """NIP-89 recommendation (kind 31989, ``d`` = 30522) of ``pubkey``'s handler for the web.

    Raises:
        BuildError: ``pubkey`` is not 64 hex characters.
    """
    _require(is_hex64(pubkey), "not a hex public key")
    tags = (
        ("d", str(STATUS_KIND)),
        ("a", handler_coordinate(pubkey), relay_hint, "web"),
    )
    return EventTemplate(HANDLER_RECOMMENDATION_KIND, tags, "", created_at)
