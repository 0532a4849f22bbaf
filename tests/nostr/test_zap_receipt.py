"""NIP-57 appendix E/F: receipts we sign verify, and only consistent receipts of ours do."""

from __future__ import annotations

import hashlib

import pytest

from strom_nostr import zap_receipt as zap
from strom_nostr.errors import BuildError
from strom_nostr.event import Event, sign_event
from strom_nostr.zap_receipt import verify_zap_receipt, zap_receipt
from tests.nostr.samples import (
    AMOUNT,
    CHARGER,
    CHARGER_SECRET,
    COORDINATE,
    DRIVER,
    NOW,
    PAYMENT_HASH,
    PREIMAGE,
    STATUS_EVENT_ID,
    STRANGER,
    STRANGER_SECRET,
    default_tags,
    invoice,
    pretty,
    request_json,
    zap_request,
)

PAID_AT = NOW + 30


def receipt(description: str | None = None, **kwargs: object) -> Event:
    description = request_json() if description is None else description
    return zap_receipt(
        CHARGER_SECRET,
        description,
        bolt11_invoice=invoice(description),
        paid_at=PAID_AT,
        aux_rand=bytes(32),
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_receipt_has_the_appendix_e_shape() -> None:
    description = request_json()
    event = receipt(description, preimage=PREIMAGE)
    assert event.kind == 9735
    assert event.pubkey == CHARGER
    assert event.created_at == PAID_AT
    assert event.content == ""
    names = [tag[0] for tag in event.tags]
    assert names == ["p", "P", "e", "a", "bolt11", "description", "preimage"]
    assert event.tag_values("p") == [CHARGER]
    assert event.tag_values("P") == [DRIVER]
    assert event.tag_values("e") == [STATUS_EVENT_ID]
    assert event.tag_values("a") == [COORDINATE]
    assert event.tag_values("description") == [description]
    assert event.tag_values("preimage") == [PREIMAGE]


def test_our_receipt_round_trips_to_the_payment_hash_and_request() -> None:
    description = pretty(zap_request())
    verified = verify_zap_receipt(
        receipt(description, preimage=PREIMAGE), own_pubkey=CHARGER, status_coordinate=COORDINATE
    )
    assert verified.payment_hash == PAYMENT_HASH
    assert verified.amount_msat == AMOUNT
    assert verified.preimage == PREIMAGE
    assert verified.request.description == description
    assert verified.request.sender == DRIVER
    assert verified.request.connector == 2
    assert verified.request.event_id == zap_request().id


def test_a_receipt_without_preimage_or_zapped_event_verifies() -> None:
    tags = [["p", CHARGER], ["relays", "wss://r.example"]]
    verified = verify_zap_receipt(receipt(request_json(tags=tags)), own_pubkey=CHARGER)
    assert verified.preimage is None
    assert verified.request.coordinate is None
    assert verified.amount_msat == AMOUNT


def test_building_refuses_an_invoice_that_does_not_commit_to_the_request() -> None:
    with pytest.raises(BuildError, match="description hash"):
        zap_receipt(
            CHARGER_SECRET, request_json(), bolt11_invoice=invoice("other"), paid_at=PAID_AT
        )


def test_building_refuses_a_wrong_preimage() -> None:
    with pytest.raises(BuildError, match="preimage"):
        receipt(preimage="00" * 32)


def test_building_refuses_garbage() -> None:
    with pytest.raises(BuildError):
        zap_receipt(CHARGER_SECRET, "{}", bolt11_invoice=invoice("{}"), paid_at=PAID_AT)
    with pytest.raises(BuildError):
        zap_receipt(CHARGER_SECRET, request_json(), bolt11_invoice="lnbc1xyz", paid_at=PAID_AT)


def test_someone_elses_receipt_is_foreign() -> None:
    description = request_json()
    theirs = zap_receipt(
        STRANGER_SECRET, description, bolt11_invoice=invoice(description), paid_at=PAID_AT
    )
    with pytest.raises(zap.ZapReceiptForeign):
        verify_zap_receipt(theirs, own_pubkey=CHARGER)


def test_a_forged_receipt_in_our_name_is_foreign() -> None:
    ours = receipt()
    forged = Event(
        ours.id,
        ours.pubkey,
        ours.created_at,
        ours.kind,
        ours.tags,
        ours.content,
        receipt(request_json(content="x")).sig,
    )
    with pytest.raises(zap.ZapReceiptForeign):
        verify_zap_receipt(forged, own_pubkey=CHARGER)


def _signed_receipt(tags: list[list[str]]) -> Event:
    return sign_event(CHARGER_SECRET, 9735, tags, "", PAID_AT)


def _receipt_tags(description: str, bolt11_invoice: str) -> list[list[str]]:
    return [
        ["p", CHARGER],
        ["P", DRIVER],
        ["e", STATUS_EVENT_ID],
        ["a", COORDINATE],
        ["bolt11", bolt11_invoice],
        ["description", description],
    ]


@pytest.mark.parametrize(
    ("why", "tags"),
    [
        ("invoice commits to something else", _receipt_tags(request_json(), invoice("else"))),
        (
            "no bolt11",
            [t for t in _receipt_tags(request_json(), invoice(request_json())) if t[0] != "bolt11"],
        ),
        (
            "no description",
            [
                t
                for t in _receipt_tags(request_json(), invoice(request_json()))
                if t[0] != "description"
            ],
        ),
        ("bolt11 garbage", _receipt_tags(request_json(), "lnbc1notaninvoice")),
        (
            "invoice amount differs from the request amount",
            _receipt_tags(request_json(), invoice(request_json(), amount_msat=AMOUNT - 1000)),
        ),
        (
            "invoice without amount",
            _receipt_tags(request_json(), invoice(request_json(), amount_msat=None)),
        ),
        (
            "embedded request addressed to someone else",
            _receipt_tags(
                request_json(tags=[["p", STRANGER], ["relays", "wss://r.example"]]),
                invoice(request_json(tags=[["p", STRANGER], ["relays", "wss://r.example"]])),
            ),
        ),
        (
            "embedded request with a bad signature",
            _receipt_tags(
                request_json().replace("charge my car", "charge my bus"),
                invoice(request_json().replace("charge my car", "charge my bus")),
            ),
        ),
        (
            "p tag differs from the request",
            [["p", STRANGER], *_receipt_tags(request_json(), invoice(request_json()))[1:]],
        ),
        (
            "e tag differs from the request",
            [
                t if t[0] != "e" else ["e", "00" * 32]
                for t in _receipt_tags(request_json(), invoice(request_json()))
            ],
        ),
        (
            "P tag is not the payer",
            [
                t if t[0] != "P" else ["P", STRANGER]
                for t in _receipt_tags(request_json(), invoice(request_json()))
            ],
        ),
        (
            "preimage does not match",
            [*_receipt_tags(request_json(), invoice(request_json())), ["preimage", "00" * 32]],
        ),
    ],
)
def test_inconsistent_receipts_of_ours_are_invalid(why: str, tags: list[list[str]]) -> None:
    with pytest.raises(zap.ZapReceiptInvalid):
        verify_zap_receipt(_signed_receipt(tags), own_pubkey=CHARGER)


def test_a_coordinate_of_another_charger_of_ours_is_refused_when_one_is_expected() -> None:
    tags = [*[t for t in default_tags() if t[0] != "a"], ["a", f"30522:{CHARGER}:cp-9"]]
    description = request_json(tags=tags)
    event = receipt(description)
    assert verify_zap_receipt(event, own_pubkey=CHARGER).request.coordinate.endswith("cp-9")  # type: ignore[union-attr]
    with pytest.raises(zap.ZapReceiptInvalid):
        verify_zap_receipt(event, own_pubkey=CHARGER, status_coordinate=COORDINATE)


def test_the_preimage_hashes_to_the_payment_hash() -> None:
    assert hashlib.sha256(bytes.fromhex(PREIMAGE)).hexdigest() == PAYMENT_HASH
