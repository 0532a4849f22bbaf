"""NIP-01 events: serialisation, ids, signatures and strict parsing."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from coincurve import PublicKeyXOnly

from strom_nostr.errors import (
    BadSignature,
    BuildError,
    EventIdMismatch,
    MalformedEvent,
)
from strom_nostr.event import (
    Event,
    EventTemplate,
    compute_id,
    expiration,
    is_expired,
    make_unsigned,
    parse_event,
    parse_unsigned_event,
    serialize,
    sign_event,
    sign_template,
    verify_event,
)
from strom_nostr.keys import public_key_hex

SECRET = bytes.fromhex("67dea2ed018072d675f5415ecfaed7d2597555e202d85b3d65ea4e58d2d92ffa")
PUBKEY = public_key_hex(SECRET)
AUX = bytes(32)


def _signed(**overrides: Any) -> Event:
    fields: dict[str, Any] = {
        "kind": 1,
        "tags": [["t", "ev"], ["p", PUBKEY, "wss://relay.example"]],
        "content": "hello",
        "created_at": 1_700_000_000,
    }
    fields.update(overrides)
    return sign_event(SECRET, aux_rand=AUX, **fields)


# --- serialisation ----------------------------------------------------------------------------


def test_serialisation_is_compact_and_escapes_exactly_as_nip01_says() -> None:
    content = 'a"b\\c\nd\re\tf\bg\fh\x00i\x1fj\x7fk/l\u2028m\u00e9n\U0001f600'
    data = serialize(PUBKEY, 1, 2, (("t", "x"),), content)
    expected = (
        f'[0,"{PUBKEY}",1,2,[["t","x"]],'
        '"a\\"b\\\\c\\nd\\re\\tf\\bg\\fh\\u0000i\\u001fj\x7fk/l\u2028m\u00e9n\U0001f600"]'
    ).encode()
    assert data == expected


def test_event_id_is_sha256_of_the_serialisation() -> None:
    event = _signed()
    digest = hashlib.sha256(
        serialize(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    ).hexdigest()
    assert event.id == digest == compute_id(PUBKEY, 1_700_000_000, 1, event.tags, "hello")


def test_a_lone_surrogate_is_refused_when_serialising() -> None:
    with pytest.raises(MalformedEvent):
        serialize(PUBKEY, 1, 1, (), "broken \ud800")
    with pytest.raises(BuildError):
        sign_event(SECRET, 1, [["t", "\udc00"]], "", 1)


def test_a_lone_surrogate_escape_in_json_is_refused() -> None:
    event = _signed().to_dict()
    text = orjson.dumps(event).decode().replace('"hello"', '"\\ud83d"')
    with pytest.raises(MalformedEvent):
        parse_event(text)


def test_a_lone_surrogate_in_a_decoded_object_is_refused() -> None:
    event = _signed().to_dict()
    event["content"] = "x\ud800"
    with pytest.raises(MalformedEvent):
        parse_event(event)
    with pytest.raises(MalformedEvent, match="Unicode"):
        parse_event(event, verify=False)
    event["content"] = "ok"
    event["tags"] = [["t", "\udfff"]]
    with pytest.raises(MalformedEvent, match="Unicode"):
        parse_event(event, verify=False)


# --- signing and verifying --------------------------------------------------------------------


def test_signed_events_verify_and_survive_a_json_round_trip() -> None:
    event = _signed(content='Grüße ⚡ "quoted"\n')
    verify_event(event)
    assert parse_event(event.to_json()) == event
    assert parse_event(event.to_json().encode()) == event
    assert parse_event(event.to_dict()) == event


def test_signing_is_deterministic_with_fixed_aux_randomness() -> None:
    assert _signed().sig == _signed().sig
    assert _signed().sig != sign_event(SECRET, 1, (), "hello", 1_700_000_000).sig


def test_sign_template_matches_sign_event() -> None:
    template = EventTemplate(1, (("t", "ev"),), "x", 5)
    assert sign_template(SECRET, template, aux_rand=AUX) == sign_event(
        SECRET, 1, [["t", "ev"]], "x", 5, aux_rand=AUX
    )


def test_a_changed_field_breaks_the_id() -> None:
    event = _signed()
    changes: list[dict[str, Any]] = [
        {"content": "bye"},
        {"created_at": 1},
        {"kind": 2},
        {"tags": []},
    ]
    for change in changes:
        forged = event.to_dict() | change
        with pytest.raises(EventIdMismatch):
            parse_event(forged)


def test_a_signature_from_another_event_is_refused() -> None:
    event = _signed()
    other = _signed(content="other")
    forged = event.to_dict() | {"sig": other.sig}
    with pytest.raises(BadSignature):
        parse_event(forged)


def test_a_pubkey_that_is_not_a_curve_point_is_refused() -> None:
    not_a_point = (
        "eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34"  # BIP-340 row 5
    )
    event = _signed()
    body = (not_a_point, event.created_at, event.kind, event.tags, event.content)
    forged = event.to_dict() | {"pubkey": not_a_point, "id": compute_id(*body)}
    with pytest.raises(BadSignature):
        parse_event(forged)


def test_parse_without_verify_only_checks_the_structure() -> None:
    forged = _signed().to_dict() | {"content": "bye"}
    assert parse_event(forged, verify=False).content == "bye"


def test_bad_signing_inputs_are_local_errors() -> None:
    with pytest.raises(BuildError):
        sign_event(b"\x00" * 32, 1, (), "", 1)
    with pytest.raises(BuildError):
        sign_event(SECRET, 70000, (), "", 1)
    with pytest.raises(BuildError):
        sign_event(SECRET, 1, (), "", -1)
    with pytest.raises(BuildError):
        sign_event(SECRET, 1, [[]], "", 1)
    with pytest.raises(BuildError):
        sign_event(SECRET, 1, (), "", 1, aux_rand=b"short")
    with pytest.raises(BuildError):
        EventTemplate(1, (("t", 1),), "", 1)  # type: ignore[arg-type]


# --- strict parsing ---------------------------------------------------------------------------

VALID = _signed().to_dict()


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"id": VALID["id"].upper()}, "uppercase id"),
        ({"id": VALID["id"][:63]}, "short id"),
        ({"pubkey": VALID["pubkey"].upper()}, "uppercase pubkey"),
        ({"pubkey": 7}, "pubkey not a string"),
        ({"sig": VALID["sig"][:-2]}, "short sig"),
        ({"sig": VALID["sig"].upper()}, "uppercase sig"),
        ({"created_at": 1.5}, "float timestamp"),
        ({"created_at": float(VALID["created_at"])}, "integral float timestamp"),
        ({"created_at": "1700000000"}, "string timestamp"),
        ({"created_at": -1}, "negative timestamp"),
        ({"created_at": 2**53}, "timestamp beyond JavaScript integers"),
        ({"kind": True}, "bool kind"),
        ({"kind": 65536}, "kind out of range"),
        ({"tags": {"t": "x"}}, "tags an object"),
        ({"tags": [["t", 1]]}, "tag value a number"),
        ({"tags": [[]]}, "empty tag"),
        ({"tags": ["t"]}, "tag not an array"),
        ({"tags": "t"}, "tags a string"),
        ({"content": None}, "null content"),
    ],
)
def test_malformed_fields_are_refused(change: dict[str, Any], why: str) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(VALID | change)
    with pytest.raises(MalformedEvent):
        parse_event(orjson.dumps(VALID | change))


@pytest.mark.parametrize("field", ["id", "pubkey", "created_at", "kind", "tags", "content", "sig"])
def test_a_missing_field_is_refused(field: str) -> None:
    incomplete = {k: v for k, v in VALID.items() if k != field}
    with pytest.raises(MalformedEvent, match=field):
        parse_event(incomplete)


@pytest.mark.parametrize(
    "text", [b"", b"[]", b"null", b"{", b'"event"', b"\xff\xfe", b"[0," * 2000]
)
def test_non_objects_are_refused(text: bytes) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(text)


def test_oversized_input_is_refused_before_parsing() -> None:
    big = _signed(content="x" * 1000).to_json()
    with pytest.raises(MalformedEvent, match="larger"):
        parse_event(big, max_bytes=500)


def test_unknown_fields_are_ignored() -> None:
    assert parse_event(VALID | {"relay": "wss://x"}).id == VALID["id"]


def test_tags_are_frozen_tuples() -> None:
    event = Event(VALID["id"], PUBKEY, VALID["created_at"], 1, [["t", "ev"]], "hello", VALID["sig"])  # type: ignore[arg-type]
    assert event.tags == (("t", "ev"),)
    hash(event)


# --- rumors and official examples -------------------------------------------------------------


def test_rumor_ids_recompute_and_a_wrong_one_is_refused(nip_examples: dict[str, Any]) -> None:
    rumor = nip_examples["nip59_giftwrap"]["rumor"]
    assert parse_unsigned_event(rumor).id == rumor["id"]
    with pytest.raises(EventIdMismatch):
        parse_unsigned_event(rumor | {"content": "changed"})
    built = make_unsigned(rumor["pubkey"], 1, [], rumor["content"], rumor["created_at"])
    assert built.id == rumor["id"]


def test_the_nip59_seal_and_wrap_examples_verify(nip_examples: dict[str, Any]) -> None:
    example = nip_examples["nip59_giftwrap"]
    for name in ("seal", "wrap"):
        assert parse_event(example[name]).id == example[name]["id"]


def test_the_nip17_gift_wraps_verify(nip_examples: dict[str, Any]) -> None:
    for wrap in nip_examples["nip17_dm"]["giftwraps"]:
        assert parse_event(wrap).kind == 1059


@pytest.mark.parametrize("name", ["nip57_zap_request_example", "nip47_info_event_example"])
def test_edited_examples_are_refused_for_their_id(nip_examples: dict[str, Any], name: str) -> None:
    event = nip_examples[name]["event"]
    # the signature is valid for the stated id, but the id is not the content's hash
    assert PublicKeyXOnly(bytes.fromhex(event["pubkey"])).verify(
        bytes.fromhex(event["sig"]), bytes.fromhex(event["id"])
    )
    with pytest.raises(EventIdMismatch):
        parse_event(event)


def test_the_nip57_receipt_example_has_no_signature(nip_examples: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent, match="sig"):
        parse_event(nip_examples["nip57_zap_receipt_example"]["event"])


# --- NIP-40 -----------------------------------------------------------------------------------


def test_expiration_is_read_from_the_tag() -> None:
    event = _signed(tags=[["expiration", "1700000600"]])
    assert expiration(event) == 1_700_000_600
    assert not is_expired(event, 1_700_000_599)
    assert is_expired(event, 1_700_000_600)
    assert expiration(_signed(tags=[["expiration", "soon"]])) is None
    assert not is_expired(_signed(), 2**40)
