"""docs/nostr.md shows real events: they verify and match what the code builds today."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from strom_nostr.discovery import status_coordinate, status_template
from strom_nostr.event import parse_event, sign_template
from strom_nostr.keys import decode_naddr
from strom_nostr.maps import Listing, listing_template
from strom_nostr.zap_request import validate_zap_request
from tests.nostr.samples import CHARGER, CHARGER_SECRET, STATUS

DOC = Path(__file__).resolve().parents[2] / "docs" / "nostr.md"


def _json_blocks() -> list[dict[str, object]]:
    blocks = re.findall(r"```json\n(.*?)\n```", DOC.read_text(), flags=re.DOTALL)
    return [orjson.loads(block) for block in blocks if '"sig"' in block]


def test_the_status_example_is_what_the_code_signs() -> None:
    [example] = [block for block in _json_blocks() if block["kind"] == 30522]
    event = parse_event(example)
    built = sign_template(
        CHARGER_SECRET, status_template(STATUS, created_at=event.created_at), aux_rand=bytes(32)
    )
    assert event == built


def test_the_listing_example_is_what_the_code_signs() -> None:
    [example] = [block for block in _json_blocks() if block["kind"] == 30402]
    event = parse_event(example)
    listing = Listing(
        STATUS,
        published_at=int(event.tag_values("published_at")[0]),
        image=event.tag_values("image")[0],
    )
    built = sign_template(
        CHARGER_SECRET, listing_template(listing, created_at=event.created_at), aux_rand=bytes(32)
    )
    assert event == built


def test_the_zap_request_example_is_valid_for_that_charger() -> None:
    [example] = [block for block in _json_blocks() if block["kind"] == 9734]
    valid = validate_zap_request(
        orjson.dumps(example),
        amount_msat_query=21_000_000,
        charger_pubkey=CHARGER,
        charger_status_coordinate=status_coordinate(CHARGER, STATUS.charger_id),
        now=int(example["created_at"]) + 5,  # type: ignore[call-overload]
        max_age_s=600,
        connector_ids={1, 2},
    )
    assert valid.connector == 1


def test_the_naddr_in_the_text_names_the_charger() -> None:
    naddr = re.search(r"`(naddr1[0-9a-z]+)`", DOC.read_text())
    assert naddr is not None
    pointer = decode_naddr(naddr.group(1))
    assert pointer.coordinate == status_coordinate(CHARGER, STATUS.charger_id)
