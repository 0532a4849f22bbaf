"""NIP-57 appendix D: every rule broken gives its own error; valid requests give their facts."""

from __future__ import annotations

from typing import Any

import pytest

from strom_nostr import zap_request as zap
from strom_nostr.event import Event
from strom_nostr.zap_request import ValidZapRequest, description_hash, validate_zap_request
from tests.nostr.samples import (
    AMOUNT,
    CHARGER,
    COORDINATE,
    DRIVER,
    NOW,
    RELAYS,
    STATUS_EVENT_ID,
    STRANGER,
    default_tags,
    pretty,
    request_json,
    zap_request,
)

LNURL = "lnurl1dp68gurn8ghj7um5v93kketj9ehx2amn9uh8wetvdskkkmn0wahz7mrww4excup0dajx2mrv92x9xp"


def validate(event_json: str | bytes, **overrides: Any) -> ValidZapRequest:
    arguments: dict[str, Any] = {
        "amount_msat_query": AMOUNT,
        "charger_pubkey": CHARGER,
        "charger_status_coordinate": COORDINATE,
        "now": NOW,
        "max_age_s": 600,
        "seen_ids": set(),
        "connector_ids": {1, 2},
        "lnurl": LNURL,
    }
    arguments.update(overrides)
    return validate_zap_request(event_json, **arguments)


def without(name: str) -> list[list[str]]:
    return [tag for tag in default_tags() if tag[0] != name]


def replaced(name: str, *values: str) -> list[list[str]]:
    return [*without(name), [name, *values]]


def edited(event: Event, **changes: Any) -> str:
    import orjson

    return orjson.dumps(event.to_dict() | changes).decode()


def test_a_complete_request_is_accepted_with_its_facts() -> None:
    event = zap_request()
    valid = validate(event.to_json())
    assert valid.event == event
    assert valid.event_id == event.id
    assert valid.amount_msat == AMOUNT
    assert valid.sender == DRIVER
    assert valid.relays == RELAYS
    assert valid.connector == 2
    assert valid.zapped_event == STATUS_EVENT_ID
    assert valid.coordinate == COORDINATE
    assert valid.comment == "charge my car"
    assert valid.description == event.to_json()


def test_a_minimal_profile_zap_is_accepted() -> None:
    tags = [["p", CHARGER], ["relays", "wss://r.example"]]
    valid = validate(request_json(tags=tags), connector_ids=None, lnurl=None)
    assert (valid.connector, valid.coordinate, valid.zapped_event) == (None, None, None)


def test_a_zap_of_the_chargers_listing_is_accepted() -> None:
    """Map and marketplace clients show the charger's NIP-99 listing (kind 30402) and zap the
    event they show: its coordinate names the same charger as the status event's does."""
    listing = COORDINATE.replace("30522:", "30402:", 1)
    valid = validate(request_json(tags=replaced("a", listing)))
    assert valid.coordinate == listing
    # The receipt's check, which knows no status coordinate, accepts it too.
    assert validate(request_json(tags=replaced("a", listing)), charger_status_coordinate=None)


def test_the_description_is_the_text_as_received() -> None:
    text = pretty(zap_request())
    valid = validate(text.encode())
    assert valid.description == text
    assert description_hash(valid.description) == description_hash(text.encode())
    assert len(description_hash(text)) == 32


CASES: list[tuple[str, Any, type[zap.ZapRequestError]]] = [
    ("not JSON", lambda: "{not json", zap.ZapRequestMalformed),
    ("not an event", lambda: '{"kind": 9734}', zap.ZapRequestMalformed),
    ("not UTF-8", lambda: b'{"content": "\xff"}', zap.ZapRequestMalformed),
    ("too large", lambda: request_json(content="x" * 40_000), zap.ZapRequestMalformed),
    ("id edited", lambda: edited(zap_request(), content="more"), zap.ZapRequestBadId),
    (
        "signature of another event",
        lambda: edited(zap_request(), sig=zap_request(content="other").sig),
        zap.ZapRequestBadSignature,
    ),
    ("kind 1", lambda: request_json(kind=1), zap.ZapRequestWrongKind),
    ("no tags", lambda: request_json(tags=[]), zap.ZapRequestNoTags),
    ("no p", lambda: request_json(tags=without("p")), zap.ZapRequestMissingRecipient),
    (
        "two p",
        lambda: request_json(tags=[*default_tags(), ["p", STRANGER]]),
        zap.ZapRequestMultipleRecipients,
    ),
    (
        "p of someone else",
        lambda: request_json(tags=replaced("p", STRANGER)),
        zap.ZapRequestWrongRecipient,
    ),
    ("p without value", lambda: request_json(tags=replaced("p")), zap.ZapRequestWrongRecipient),
    (
        "two e",
        lambda: request_json(tags=[*default_tags(), ["e", STATUS_EVENT_ID]]),
        zap.ZapRequestMultipleEvents,
    ),
    (
        "e not an id",
        lambda: request_json(tags=replaced("e", "note1xyz")),
        zap.ZapRequestBadEventTag,
    ),
    ("no relays", lambda: request_json(tags=without("relays")), zap.ZapRequestMissingRelays),
    ("empty relays", lambda: request_json(tags=replaced("relays")), zap.ZapRequestMissingRelays),
    (
        "http relay",
        lambda: request_json(tags=replaced("relays", "https://relay.example")),
        zap.ZapRequestBadRelays,
    ),
    (
        "too many relays",
        lambda: request_json(tags=replaced("relays", *[f"wss://r{i}.example" for i in range(21)])),
        zap.ZapRequestBadRelays,
    ),
    (
        "amount not a number",
        lambda: request_json(tags=replaced("amount", "21k")),
        zap.ZapRequestBadAmount,
    ),
    ("amount zero", lambda: request_json(tags=replaced("amount", "0")), zap.ZapRequestBadAmount),
    (
        "two amounts",
        lambda: request_json(tags=[*default_tags(), ["amount", str(AMOUNT)]]),
        zap.ZapRequestBadAmount,
    ),
    (
        "amount differs from query",
        lambda: request_json(tags=replaced("amount", str(AMOUNT + 1000))),
        zap.ZapRequestAmountMismatch,
    ),
    (
        "a not a coordinate",
        lambda: request_json(tags=replaced("a", "cp-1")),
        zap.ZapRequestBadCoordinate,
    ),
    (
        "a with a bad pubkey",
        lambda: request_json(tags=replaced("a", "30522:XYZ:cp-1")),
        zap.ZapRequestBadCoordinate,
    ),
    (
        "two a",
        lambda: request_json(tags=[*default_tags(), ["a", COORDINATE]]),
        zap.ZapRequestBadCoordinate,
    ),
    (
        "a of another charger",
        lambda: request_json(tags=replaced("a", f"30522:{CHARGER}:cp-2")),
        zap.ZapRequestWrongCoordinate,
    ),
    (
        "a of another kind",
        lambda: request_json(tags=replaced("a", f"30023:{CHARGER}:cp-1")),
        zap.ZapRequestWrongCoordinate,
    ),
    (
        "a of another author",
        lambda: request_json(tags=replaced("a", f"30522:{STRANGER}:cp-1")),
        zap.ZapRequestWrongCoordinate,
    ),
    (
        "a of another charger's listing",
        lambda: request_json(tags=replaced("a", f"30402:{CHARGER}:cp-2")),
        zap.ZapRequestWrongCoordinate,
    ),
    (
        "a of another author's listing",
        lambda: request_json(tags=replaced("a", f"30402:{STRANGER}:cp-1")),
        zap.ZapRequestWrongCoordinate,
    ),
    (
        "two P",
        lambda: request_json(tags=[*default_tags(), ["P", CHARGER], ["P", CHARGER]]),
        zap.ZapRequestBadSenderTag,
    ),
    (
        "P not the receipt signer",
        lambda: request_json(tags=[*default_tags(), ["P", DRIVER]]),
        zap.ZapRequestBadSenderTag,
    ),
    (
        "connector not a number",
        lambda: request_json(tags=replaced("connector", "A")),
        zap.ZapRequestBadConnector,
    ),
    (
        "connector zero",
        lambda: request_json(tags=replaced("connector", "0")),
        zap.ZapRequestBadConnector,
    ),
    (
        "two connectors",
        lambda: request_json(tags=[*default_tags(), ["connector", "1"]]),
        zap.ZapRequestBadConnector,
    ),
    (
        "unknown connector",
        lambda: request_json(tags=replaced("connector", "7")),
        zap.ZapRequestUnknownConnector,
    ),
    (
        "reserve not a number",
        lambda: request_json(tags=[*default_tags(), ["reserve", "soon"]]),
        zap.ZapRequestBadReserve,
    ),
    (
        "reserve zero minutes",
        lambda: request_json(tags=[*default_tags(), ["reserve", "0"]]),
        zap.ZapRequestBadReserve,
    ),
    (
        "reserve over a day",
        lambda: request_json(tags=[*default_tags(), ["reserve", "1441"]]),
        zap.ZapRequestBadReserve,
    ),
    (
        "two reserve tags",
        lambda: request_json(tags=[*default_tags(), ["reserve", "30"], ["reserve", "60"]]),
        zap.ZapRequestBadReserve,
    ),
    (
        "lnurl of another recipient",
        lambda: request_json(tags=[*default_tags(), ["lnurl", "lnurl1otherrecipient"]]),
        zap.ZapRequestLnurlMismatch,
    ),
    ("older than the window", lambda: request_json(created_at=NOW - 601), zap.ZapRequestStale),
    ("dated in the future", lambda: request_json(created_at=NOW + 121), zap.ZapRequestFromFuture),
]


@pytest.mark.parametrize(("case", "make", "error"), CASES, ids=[case for case, _, _ in CASES])
def test_each_broken_rule_has_its_own_error(
    case: str, make: Any, error: type[zap.ZapRequestError]
) -> None:
    with pytest.raises(error) as caught:
        validate(make())
    assert type(caught.value) is error
    assert caught.value.lud_error() == {"status": "ERROR", "reason": caught.value.reason}
    assert caught.value.reason


def test_the_errors_are_all_distinct_classes() -> None:
    errors = {error for _, _, error in CASES} | {zap.ZapRequestReplayed}
    assert len(errors) == len(
        [
            name
            for name in zap.__all__
            if name.startswith("ZapRequest") and name != "ZapRequestError"
        ]
    )


def test_a_reserve_tag_asks_for_a_reservation_of_so_many_minutes() -> None:
    assert validate(request_json()).reserve_minutes == 0
    reserving = validate(request_json(tags=[*default_tags(), ["reserve", "45"]]))
    assert reserving.reserve_minutes == 45
    assert validate(request_json(tags=[*default_tags(), ["reserve", "1440"]])).reserve_minutes


def test_a_used_request_is_refused_the_second_time() -> None:
    text = request_json()
    seen: set[str] = set()
    seen.add(validate(text, seen_ids=seen).event_id)
    with pytest.raises(zap.ZapRequestReplayed):
        validate(text, seen_ids=seen)


def test_the_query_amount_must_be_a_positive_whole_number() -> None:
    for amount in (0, -1, True, 1.5):
        with pytest.raises(zap.ZapRequestBadAmount):
            validate(request_json(), amount_msat_query=amount)


def test_relays_are_merged_without_repeats() -> None:
    tags = [
        *without("relays"),
        ["relays", "wss://a.example", "wss://b.example"],
        ["relays", "wss://a.example"],
    ]
    assert validate(request_json(tags=tags)).relays == ("wss://a.example", "wss://b.example")


def test_an_amount_tag_is_optional() -> None:
    assert validate(request_json(tags=without("amount"))).amount_msat == AMOUNT


def test_the_lnurl_tag_compares_case_insensitively() -> None:
    tags = [*default_tags(), ["lnurl", LNURL.upper()]]
    assert validate(request_json(tags=tags)).event.tag_values("lnurl") == [LNURL.upper()]


def test_the_edited_nip57_example_is_refused(nip_examples: dict[str, Any]) -> None:
    import orjson

    example = orjson.dumps(nip_examples["nip57_zap_request_example"]["event"]).decode()
    with pytest.raises(zap.ZapRequestBadId):
        validate(example)
