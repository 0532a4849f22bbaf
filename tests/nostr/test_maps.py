"""The listing (NIP-99) and handler events (NIP-89) against the rules of their NIPs."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest

from strom_nostr import geohash
from strom_nostr.discovery import STATUS_KIND, Location, Prices
from strom_nostr.errors import BuildError
from strom_nostr.event import Event, parse_event, sign_template
from strom_nostr.maps import (
    HANDLER_ID,
    HANDLER_INFO_KIND,
    HANDLER_RECOMMENDATION_KIND,
    LISTING_KIND,
    Handler,
    Listing,
    handler_coordinate,
    handler_info_template,
    handler_recommendation_template,
    listing_template,
    sats_text,
)
from tests.nostr.samples import CHARGER, CHARGER_SECRET, STATUS

NOW = 1_760_000_000
HANDLER = Handler("Strom", "EV chargers paid with Lightning", "https://charge.example/c/<bech32>")


def _listing(**changes: object) -> Event:
    listing = replace(Listing(STATUS, published_at=NOW - 86_400), **changes)  # type: ignore[arg-type]
    event = sign_template(CHARGER_SECRET, listing_template(listing, created_at=NOW))
    return parse_event(event.to_dict())


def _one(event: Event, name: str) -> tuple[str, ...]:
    tags = [tag for tag in event.tags if tag[0] == name]
    assert len(tags) == 1, (name, tags)
    return tags[0]


def test_the_listing_is_an_addressable_nip99_event_keyed_by_the_charger_id() -> None:
    event = _listing()
    assert event.kind == LISTING_KIND == 30402
    assert 30000 <= event.kind < 40000  # addressable: a new version replaces the old one
    assert _one(event, "d") == ("d", STATUS.charger_id)
    # NIP-99's standardised tags, each once.
    assert _one(event, "title")[1] == "EV charging: Hofladen Müller"
    assert _one(event, "summary")[1] == STATUS.summary
    assert _one(event, "published_at")[1] == str(NOW - 86_400)
    assert _one(event, "location")[1] == STATUS.location.address
    assert _one(event, "status")[1] == "active"  # "active" or "sold"


def test_the_price_has_nip99s_shape_in_exact_sats_per_kwh() -> None:
    price = _one(_listing(), "price")
    assert price == ("price", "250", "SAT", "kWh")
    number, currency = price[1], price[2]
    assert float(number) >= 0
    assert len(currency) == 3
    cheap = replace(STATUS, prices=Prices(energy_msat_per_kwh=180_500))
    assert _one(_listing(status=cheap), "price")[1] == "180.5"


def test_geohash_tags_go_most_precise_first_at_every_precision() -> None:
    cells = _listing().tag_values("g")
    full = geohash.encode(STATUS.location.lat, STATUS.location.lon, 9)
    assert cells == [full[:n] for n in range(9, 0, -1)]  # first and longest are the full cell
    south, north, west, east = geohash.bounding_box(cells[0])
    assert south <= STATUS.location.lat <= north
    assert west <= STATUS.location.lon <= east


def test_the_listing_links_back_and_names_the_address_to_zap() -> None:
    event = _listing(image="https://charge.example/img/cp-1.jpg")
    assert event.tag_values("r") == [STATUS.website]
    assert event.tag_values("lud16") == [STATUS.lud16]
    assert event.tag_values("image") == ["https://charge.example/img/cp-1.jpg"]
    assert "ev-charging" in event.tag_values("t")
    assert event.tag_values("alt")
    assert STATUS.website in event.content
    assert STATUS.lud16 in event.content
    assert "250 sat per kWh" in event.content
    assert "1 sat per minute" in event.content
    assert not _listing().tag_values("image")  # no picture, no empty tag


def test_the_listing_does_not_follow_availability() -> None:
    """Connector states are the status event's: a listing changes with price, place and name."""
    busy = tuple(replace(c, status=STATUS.connectors[0].status) for c in STATUS.connectors)
    assert _listing().content == _listing(status=replace(STATUS, connectors=busy)).content


def test_a_listing_without_address_names_its_coordinates() -> None:
    bare = replace(STATUS, location=Location(52.520008, 13.404954), summary="")
    event = _listing(status=bare)
    assert _one(event, "location")[1] == "52.52001, 13.40495"
    assert "sat/kWh" in _one(event, "summary")[1]


@pytest.mark.parametrize(
    "changes",
    [
        {"published_at": NOW + 1},
        {"published_at": 0},
        {"status": replace(STATUS, name="")},
        {"status": replace(STATUS, website="")},
        {"status": replace(STATUS, location=Location(91.0, 0.0))},
    ],
)
def test_invalid_listings_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(BuildError):
        _listing(**changes)


def test_sats_text_is_exact() -> None:
    assert [sats_text(v) for v in (0, 1, 1000, 250_500, 1_234_567)] == [
        "0",
        "0.001",
        "1",
        "250.5",
        "1234.567",
    ]
    with pytest.raises(BuildError):
        sats_text(-1)


def test_handler_information_follows_nip89() -> None:
    event = sign_template(CHARGER_SECRET, handler_info_template(HANDLER, created_at=NOW))
    assert event.kind == HANDLER_INFO_KIND == 31990
    assert _one(event, "d") == ("d", HANDLER_ID)
    assert _one(event, "k") == ("k", str(STATUS_KIND))
    web = _one(event, "web")
    assert web == ("web", "https://charge.example/c/<bech32>", "naddr")
    assert orjson.loads(event.content)["name"] == "Strom"  # kind-0 style metadata


def test_the_recommendation_points_at_the_handler_for_the_web() -> None:
    template = handler_recommendation_template(
        CHARGER, relay_hint="wss://relay.example", created_at=NOW
    )
    event = sign_template(CHARGER_SECRET, template)
    assert event.kind == HANDLER_RECOMMENDATION_KIND == 31989
    assert _one(event, "d") == ("d", "30522")  # the supported kind
    assert _one(event, "a") == ("a", handler_coordinate(CHARGER), "wss://relay.example", "web")
    assert handler_coordinate(CHARGER) == f"31990:{CHARGER}:{HANDLER_ID}"


@pytest.mark.parametrize(
    "handler",
    [
        replace(HANDLER, url_pattern="https://charge.example/c/"),
        replace(HANDLER, url_pattern="ftp://charge.example/c/<bech32>"),
        replace(HANDLER, name=""),
    ],
)
def test_invalid_handlers_are_refused(handler: Handler) -> None:
    with pytest.raises(BuildError):
        handler_info_template(handler, created_at=NOW)


def test_a_recommendation_needs_a_hex_key() -> None:
    with pytest.raises(BuildError):
        handler_recommendation_template("npub1nothex", created_at=NOW)
