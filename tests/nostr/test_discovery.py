"""Profile, relay lists, geohash and the charger status event."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom_nostr import geohash
from strom_nostr.discovery import (
    STATUS_KIND,
    ChargerStatus,
    ConnectorInfo,
    ConnectorStatus,
    Coordinate,
    Location,
    Prices,
    Profile,
    RelayEntry,
    ScheduledPrice,
    connector_status_from_ocpp,
    dm_relay_list_template,
    lightning_address,
    overall_status,
    parse_coordinate,
    parse_status,
    profile_template,
    relay_list_template,
    status_coordinate,
    status_template,
)
from strom_nostr.errors import BuildError, MalformedEvent
from strom_nostr.event import parse_event, sign_template
from tests.nostr.samples import CHARGER, CHARGER_SECRET, STATUS

NOW = 1_760_000_000

# --- geohash ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lat", "lon", "expected"),
    [
        (57.64911, 10.40744, "u4pruydqqvj"),  # the classic example of the geohash article
        (42.6, -5.6, "ezs42"),
        (0.0, 0.0, "s0000"),
        (-90.0, -180.0, "00000"),
        (90.0, 180.0, "zzzzz"),
    ],
)
def test_geohash_known_values(lat: float, lon: float, expected: str) -> None:
    assert geohash.encode(lat, lon, len(expected)) == expected


@given(st.floats(-90, 90), st.floats(-180, 180), st.integers(1, 12))
def test_geohash_cells_contain_their_point(lat: float, lon: float, precision: int) -> None:
    lat_lo, lat_hi, lon_lo, lon_hi = geohash.bounding_box(geohash.encode(lat, lon, precision))
    assert lat_lo <= lat <= lat_hi
    assert lon_lo <= lon <= lon_hi


def test_geohash_refuses_impossible_input() -> None:
    for args in ((91.0, 0.0, 5), (0.0, 181.0, 5), (float("nan"), 0.0, 5), (0.0, 0.0, 0)):
        with pytest.raises(ValueError, match="must be"):
            geohash.encode(*args)
    with pytest.raises(ValueError, match="character"):
        geohash.bounding_box("a")  # 'a' is not in the alphabet


# --- status event ----------------------------------------------------------------------------


def test_status_event_layout() -> None:
    template = status_template(STATUS, created_at=NOW, ttl_s=1800)
    assert template.kind == STATUS_KIND == 30522
    assert template.content == ""
    tags = [list(tag) for tag in template.tags]
    assert tags[0] == ["d", "cp-1"]
    assert ["name", "Hofladen Müller"] in tags
    assert ["t", "ev-charging"] in tags
    assert ["status", "available"] in tags
    cells = [tag[1] for tag in tags if tag[0] == "g"]
    assert cells == [geohash.encode(52.520008, 13.404954, n) for n in range(1, 10)]
    assert cells[4] == "u33dc"  # central Berlin
    assert ["location", "Hauptstraße 1, 10115 Berlin"] in tags
    connectors = [tag for tag in tags if tag[0] == "connector"]
    assert connectors == [
        ["connector", "1", "Type2", "22000", "available"],
        ["connector", "2", "CCS2", "50000", "charging"],
    ]
    assert ["price", "250000", "msat", "kWh"] in tags
    assert ["price", "1000", "msat", "min"] in tags
    assert ["price", "0", "msat", "session"] in tags
    assert ["lud16", "cp-1@charge.example"] in tags
    assert ["summary", "Two plugs behind the farm shop"] in tags
    assert ["r", "https://charge.example/c/cp-1"] in tags
    assert ["expiration", str(NOW + 1800)] in tags
    alt = next(tag[1] for tag in tags if tag[0] == "alt")
    assert "1 of 2 connectors available" in alt
    assert "cp-1@charge.example" in alt


def test_status_event_signs_and_reads_back() -> None:
    event = sign_template(CHARGER_SECRET, status_template(STATUS, created_at=NOW))
    parsed = parse_status(parse_event(event.to_json()))
    assert parsed.charger_id == "cp-1"
    assert parsed.pubkey == CHARGER
    assert parsed.coordinate == status_coordinate(CHARGER, "cp-1")
    assert parsed.geohash == geohash.encode(52.520008, 13.404954, 9)
    assert parsed.address == STATUS.location.address
    assert parsed.connectors == tuple(sorted(STATUS.connectors, key=lambda c: c.id))
    assert parsed.prices == STATUS.prices
    assert parsed.lud16 == STATUS.lud16
    assert parsed.expires_at == NOW + 3600


def test_a_status_is_republished_with_the_same_address() -> None:
    first = status_template(STATUS, created_at=NOW)
    busy = ChargerStatus(
        **{
            **{f: getattr(STATUS, f) for f in STATUS.__dataclass_fields__},
            "connectors": (ConnectorInfo(1, "Type2", 22_000, ConnectorStatus.FAULTED),),
        }
    )
    second = status_template(busy, created_at=NOW + 60)
    assert first.tags[0] == second.tags[0] == ("d", "cp-1")
    assert ("status", "faulted") in second.tags


@pytest.mark.parametrize(
    ("states", "overall"),
    [
        (["charging", "available"], "available"),
        (["charging", "faulted"], "charging"),
        (["unavailable", "faulted"], "faulted"),
        (["unavailable"], "unavailable"),
        (["reserved", "charging"], "charging"),
        (["reserved", "faulted"], "faulted"),
        (["reserved", "unavailable"], "unavailable"),  # the four words clients colour by
    ],
)
def test_overall_status(states: list[str], overall: str) -> None:
    connectors = [
        ConnectorInfo(i + 1, "Type2", 11_000, ConnectorStatus(s)) for i, s in enumerate(states)
    ]
    assert overall_status(connectors) == overall


@pytest.mark.parametrize(
    "change",
    [
        {"charger_id": ""},
        {"name": ""},
        {"connectors": ()},
        {"connectors": (ConnectorInfo(1, "Type2", 1, ConnectorStatus.AVAILABLE),) * 2},
        {"connectors": (ConnectorInfo(0, "Type2", 1, ConnectorStatus.AVAILABLE),)},
        {"connectors": (ConnectorInfo(100, "Type2", 1, ConnectorStatus.AVAILABLE),)},
        {"connectors": (ConnectorInfo(1, "Type2", 1, "broken"),)},  # type: ignore[arg-type]
        {"connectors": (ConnectorInfo(1, "", 1, ConnectorStatus.AVAILABLE),)},
        {"connectors": (ConnectorInfo(1, "Type2", 0, ConnectorStatus.AVAILABLE),)},
        {"connectors": (ConnectorInfo(1, "Type2", 1, ConnectorStatus.AVAILABLE, NOW),)},
        {"connectors": (ConnectorInfo(1, "Type2", 1, ConnectorStatus.RESERVED, 0),)},
        {"prices": Prices(-1)},
        {"lud16": "not an address"},
        {"location": Location(95.0, 0.0)},
    ],
)
def test_status_inputs_are_checked(change: dict[str, object]) -> None:
    fields = {f: getattr(STATUS, f) for f in STATUS.__dataclass_fields__} | change
    with pytest.raises(BuildError):
        status_template(ChargerStatus(**fields), created_at=NOW)


def test_a_reserved_connector_carries_its_end_time_in_a_tag_of_its_own() -> None:
    """A reserved connector is ``reserved`` in its connector tag, and a ``reserved`` tag gives
    the end of its reservation; the tags known before are unchanged (older clients read them
    as before), and a reservation without a known end has no ``reserved`` tag."""
    held = ChargerStatus(
        **{
            **{f: getattr(STATUS, f) for f in STATUS.__dataclass_fields__},
            "connectors": (
                ConnectorInfo(2, "CCS2", 50_000, ConnectorStatus.RESERVED),
                ConnectorInfo(1, "Type2", 22_000, ConnectorStatus.RESERVED, NOW + 1800),
            ),
        }
    )
    template = status_template(held, created_at=NOW)
    tags = [list(tag) for tag in template.tags]
    assert [tag for tag in tags if tag[0] in ("connector", "reserved")] == [
        ["connector", "1", "Type2", "22000", "reserved"],
        ["connector", "2", "CCS2", "50000", "reserved"],
        ["reserved", "1", str(NOW + 1800)],
    ]
    assert ["status", "unavailable"] in tags
    plain = [list(tag) for tag in status_template(STATUS, created_at=NOW).tags]
    assert [t for t in tags if t[0] not in ("connector", "reserved", "status", "alt")] == [
        t for t in plain if t[0] not in ("connector", "status", "alt")
    ]
    parsed = parse_status(sign_template(CHARGER_SECRET, template))
    assert {c.id: (c.status, c.reserved_until) for c in parsed.connectors} == {
        1: (ConnectorStatus.RESERVED, NOW + 1800),
        2: (ConnectorStatus.RESERVED, None),
    }


def test_parse_status_refuses_other_events() -> None:
    other = sign_template(CHARGER_SECRET, profile_template(_profile(), created_at=NOW))
    with pytest.raises(MalformedEvent):
        parse_status(other)


# --- coordinates -----------------------------------------------------------------------------


def test_coordinates_parse_and_keep_colons_in_the_identifier() -> None:
    assert parse_coordinate(f"30522:{CHARGER}:cp-1") == Coordinate(30522, CHARGER, "cp-1")
    assert parse_coordinate(f"30522:{CHARGER}:a:b").identifier == "a:b"
    assert parse_coordinate(f"0:{CHARGER}:") == Coordinate(0, CHARGER, "")
    assert str(Coordinate(30522, CHARGER, "cp-1")) == status_coordinate(CHARGER, "cp-1")


@pytest.mark.parametrize(
    "text",
    ["", "cp-1", f"x:{CHARGER}:d", f"30522:{CHARGER}", "30522:ab:d", f"99999999:{CHARGER}:d"],
)
def test_bad_coordinates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="coordinate"):
        parse_coordinate(text)


# --- profile and relay lists -----------------------------------------------------------------


def _profile() -> Profile:
    return Profile(
        name="cp-1",
        display_name="Hofladen Müller charger",
        about="22 kW, pay with Lightning",
        lud16=lightning_address("CP-1", "charge.example"),
        picture="https://charge.example/cp-1.png",
        website="https://charge.example/c/cp-1",
    )


def test_profile_content() -> None:
    template = profile_template(_profile(), created_at=NOW)
    assert template.kind == 0
    assert orjson.loads(template.content) == {
        "name": "cp-1",
        "display_name": "Hofladen Müller charger",
        "about": "22 kW, pay with Lightning",
        "picture": "https://charge.example/cp-1.png",
        "website": "https://charge.example/c/cp-1",
        "lud16": "cp-1@charge.example",
    }


def test_profile_without_optional_fields_leaves_them_out() -> None:
    profile = Profile(name="cp-2", about="", lud16="cp-2@charge.example")
    assert orjson.loads(profile_template(profile, created_at=NOW).content) == {
        "name": "cp-2",
        "lud16": "cp-2@charge.example",
    }
    with pytest.raises(BuildError):
        profile_template(Profile(name="x", about="", lud16="x"), created_at=NOW)


def test_lightning_addresses_are_lowercase_and_checked() -> None:
    assert lightning_address("CP-1", "Charge.Example:8443") == "cp-1@charge.example:8443"
    with pytest.raises(BuildError):
        lightning_address("cp 1", "charge.example")


def test_relay_lists() -> None:
    nip65 = relay_list_template(
        [
            RelayEntry("wss://both.example"),
            RelayEntry("wss://read.example", write=False),
            RelayEntry("ws://127.0.0.1:7777", read=False),
        ],
        created_at=NOW,
    )
    assert nip65.kind == 10002
    assert nip65.tags == (
        ("r", "wss://both.example"),
        ("r", "wss://read.example", "read"),
        ("r", "ws://127.0.0.1:7777", "write"),
    )
    inbox = dm_relay_list_template(["wss://inbox.example"], created_at=NOW)
    assert inbox.kind == 10050
    assert inbox.tags == (("relay", "wss://inbox.example"),)


@pytest.mark.parametrize(
    "entry",
    [RelayEntry("https://x.example"), RelayEntry("wss://x.example", read=False, write=False)],
)
def test_relay_lists_refuse_bad_entries(entry: RelayEntry) -> None:
    with pytest.raises(BuildError):
        relay_list_template([entry], created_at=NOW)
    with pytest.raises(BuildError):
        dm_relay_list_template(["wss://ok.example", "http://bad.example"], created_at=NOW)


@pytest.mark.parametrize(
    ("ocpp", "published"),
    [
        ("Available", "available"),
        ("Preparing", "charging"),
        ("Charging", "charging"),
        ("SuspendedEV", "charging"),
        ("SuspendedEVSE", "charging"),
        ("Finishing", "charging"),
        ("Reserved", "reserved"),
        ("Unavailable", "unavailable"),
        ("Faulted", "faulted"),
        ("SomethingNew", "unavailable"),
    ],
)
def test_ocpp_statuses_fold_into_the_published_states(ocpp: str, published: str) -> None:
    assert connector_status_from_ocpp(ocpp) == published


# --- prices: the price in force and a dynamic tariff's schedule ------------------------------

_HOUR = 3600
_SCHEDULE = (
    ScheduledPrice(NOW, NOW + _HOUR, 180_000),
    ScheduledPrice(NOW + _HOUR, NOW + 2 * _HOUR, -5_000),  # spot markets go negative
    ScheduledPrice(NOW + 2 * _HOUR, NOW + 3 * _HOUR, 320_000),
)


def test_a_static_tariff_publishes_its_prices_as_before_and_no_intervals() -> None:
    tags = [list(tag) for tag in status_template(STATUS, created_at=NOW).tags]
    assert [tag for tag in tags if tag[0] == "price"] == [
        ["price", "250000", "msat", "kWh"],
        ["price", "1000", "msat", "min"],
        ["price", "0", "msat", "session"],
    ]
    assert not [tag for tag in tags if tag[0] == "price_interval"]
    parsed = parse_status(
        parse_event(
            sign_template(CHARGER_SECRET, status_template(STATUS, created_at=NOW)).to_json()
        )
    )
    assert parsed.schedule == ()
    assert parsed.energy_price_known


def test_a_dynamic_tariffs_schedule_round_trips_through_price_interval_tags() -> None:
    dynamic = replace(STATUS, prices=Prices(180_000, 1000, 0), schedule=_SCHEDULE)
    template = status_template(dynamic, created_at=NOW)
    tags = [list(tag) for tag in template.tags]
    assert ["price", "180000", "msat", "kWh"] in tags  # the price in force, as before
    assert [tag for tag in tags if tag[0] == "price_interval"] == [
        ["price_interval", str(NOW), str(NOW + _HOUR), "180000"],
        ["price_interval", str(NOW + _HOUR), str(NOW + 2 * _HOUR), "-5000"],
        ["price_interval", str(NOW + 2 * _HOUR), str(NOW + 3 * _HOUR), "320000"],
    ]
    parsed = parse_status(parse_event(sign_template(CHARGER_SECRET, template).to_json()))
    assert parsed.schedule == _SCHEDULE
    assert parsed.prices == Prices(180_000, 1000, 0)
    assert parsed.energy_price_known


def test_without_a_price_now_the_energy_price_tag_is_left_out() -> None:
    unknown = replace(STATUS, energy_price_known=False)
    template = status_template(unknown, created_at=NOW)
    prices = [list(tag) for tag in template.tags if tag[0] in {"price", "price_interval"}]
    assert prices == [["price", "1000", "msat", "min"], ["price", "0", "msat", "session"]]
    parsed = parse_status(parse_event(sign_template(CHARGER_SECRET, template).to_json()))
    assert not parsed.energy_price_known
    assert parsed.schedule == ()


@pytest.mark.parametrize(
    "schedule",
    [
        (ScheduledPrice(NOW, NOW, 1),),  # empty
        (ScheduledPrice(NOW, NOW + 10, 1), ScheduledPrice(NOW + 20, NOW + 30, 1)),  # a gap
        (ScheduledPrice(NOW + 10, NOW + 20, 1), ScheduledPrice(NOW, NOW + 10, 1)),  # unsorted
    ],
)
def test_a_bad_schedule_is_refused(schedule: tuple[ScheduledPrice, ...]) -> None:
    with pytest.raises(BuildError):
        status_template(replace(STATUS, schedule=schedule), created_at=NOW)


def test_a_malformed_price_interval_tag_is_refused() -> None:
    template = status_template(STATUS, created_at=NOW)
    bad = replace(template, tags=(*template.tags, ("price_interval", str(NOW), "soon", "1")))
    with pytest.raises(MalformedEvent):
        parse_status(parse_event(sign_template(CHARGER_SECRET, bad).to_json()))
