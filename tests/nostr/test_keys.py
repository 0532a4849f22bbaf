"""Keys and NIP-19: the official examples, round trips and refusals."""

from __future__ import annotations

from typing import Any

import bech32
import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom_nostr.errors import Bech32Error, InvalidKey
from strom_nostr.keys import (
    AddressPointer,
    EventPointer,
    ProfilePointer,
    check_public_key,
    decode_naddr,
    decode_nevent,
    decode_note,
    decode_nprofile,
    decode_npub,
    decode_nsec,
    encode_naddr,
    encode_nevent,
    encode_note,
    encode_nprofile,
    encode_npub,
    encode_nsec,
    generate_secret_key,
    parse_public_key,
    parse_secret_key,
    public_key_hex,
)

hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
relay = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40
).map(lambda s: "wss://" + s)


def test_the_nip19_examples_decode_and_encode(nip_examples: dict[str, Any]) -> None:
    for case in nip_examples["nip19"]["cases"]:
        text = case["bech32"]
        if case["hrp"] == "npub":
            assert decode_npub(text) == case["hex"]
            assert encode_npub(case["hex"]) == text
        elif case["hrp"] == "nsec":
            assert decode_nsec(text).hex() == case["hex"]
            assert encode_nsec(bytes.fromhex(case["hex"])) == text
        elif case["hrp"] == "nprofile":
            tlv = case["tlv"]
            pointer = ProfilePointer(tlv["special_pubkey"], tuple(tlv["relays"]))
            assert decode_nprofile(text) == pointer
            assert encode_nprofile(pointer.pubkey, pointer.relays) == text
        elif case["hrp"] == "naddr":
            tlv = case["tlv"]
            decoded = decode_naddr(text)
            assert decoded == AddressPointer(
                tlv["kind"], tlv["author"], tlv["identifier_d"], tuple(tlv["relays"])
            )
            assert decode_naddr(encode_naddr(**_naddr_args(decoded))) == decoded


def _naddr_args(pointer: AddressPointer) -> dict[str, Any]:
    return {
        "kind": pointer.kind,
        "author": pointer.author,
        "identifier": pointer.identifier,
        "relays": pointer.relays,
    }


def test_the_nsec_example_gives_its_npub(nip_examples: dict[str, Any]) -> None:
    sender = nip_examples["nip17_dm"]
    assert public_key_hex(decode_nsec(sender["sender_nsec"])) == sender["sender_pubkey"]
    assert public_key_hex(decode_nsec(sender["receiver_nsec"])) == sender["receiver_pubkey"]


@given(hex32)
def test_npub_and_note_round_trip(value: str) -> None:
    assert decode_npub(encode_npub(value)) == value
    assert decode_note(encode_note(value)) == value


@given(hex32, st.lists(relay, max_size=3))
def test_nprofile_round_trips(pubkey: str, relays: list[str]) -> None:
    assert decode_nprofile(encode_nprofile(pubkey, relays)) == ProfilePointer(pubkey, tuple(relays))


@given(hex32, st.lists(relay, max_size=2), st.none() | hex32, st.none() | st.integers(0, 65535))
def test_nevent_round_trips(
    event_id: str, relays: list[str], author: str | None, kind: int | None
) -> None:
    pointer = EventPointer(event_id, tuple(relays), author, kind)
    assert decode_nevent(encode_nevent(event_id, relays, author, kind)) == pointer


@given(st.integers(30000, 39999), hex32, st.text(max_size=60), st.lists(relay, max_size=2))
def test_naddr_round_trips(kind: int, author: str, identifier: str, relays: list[str]) -> None:
    pointer = AddressPointer(kind, author, identifier, tuple(relays))
    assert decode_naddr(encode_naddr(kind, author, identifier, relays)) == pointer
    assert pointer.coordinate == f"{kind}:{author}:{identifier}"


def test_unknown_tlv_entries_are_ignored() -> None:
    pubkey = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d"
    payload = bytes([0, 32]) + bytes.fromhex(pubkey) + bytes([9, 3]) + b"abc"
    text = bech32.bech32_encode("nprofile", bech32.convertbits(payload, 8, 5) or [])
    assert decode_nprofile(text) == ProfilePointer(pubkey)


def _flip_last(text: str) -> str:
    last = "q" if text[-1] != "q" else "p"
    return text[:-1] + last


@pytest.mark.parametrize(
    ("text", "decoder"),
    [
        (
            _flip_last("npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"),
            decode_npub,
        ),
        ("nsec1vl029mgpspedva04g90vltkh6fvh240zqtv9k0t9af8935ke9laqsnlfe5", decode_npub),
        ("npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg", decode_note),
        ("NPUB10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg", decode_npub),
        ("npub1", decode_npub),
        ("", decode_npub),
        ("npub1" + "q" * 6000, decode_npub),
        (bech32.bech32_encode("npub", bech32.convertbits(bytes(31), 8, 5) or []), decode_npub),
        (
            bech32.bech32_encode(
                "nprofile", bech32.convertbits(bytes([0, 31]) + bytes(31), 8, 5) or []
            ),
            decode_nprofile,
        ),
        (
            bech32.bech32_encode(
                "nprofile", bech32.convertbits(bytes([1, 3]) + b"wss", 8, 5) or []
            ),
            decode_nprofile,
        ),
        (
            bech32.bech32_encode(
                "nprofile", bech32.convertbits(bytes([0, 32]) + bytes(5), 8, 5) or []
            ),
            decode_nprofile,
        ),
        (
            bech32.bech32_encode("naddr", bech32.convertbits(bytes([0, 1]) + b"x", 8, 5) or []),
            decode_naddr,
        ),
    ],
)
def test_invalid_strings_are_refused(text: str, decoder: Any) -> None:
    with pytest.raises(Bech32Error):
        decoder(text)


def test_uppercase_bech32_is_accepted() -> None:
    text = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg"
    assert decode_npub(text.upper()) == decode_npub(text)


def test_keys_parse_from_hex_or_bech32() -> None:
    secret = generate_secret_key()
    pubkey = public_key_hex(secret)
    assert parse_secret_key(encode_nsec(secret)) == secret
    assert parse_secret_key(secret.hex().upper()) == secret
    assert parse_public_key(encode_npub(pubkey)) == pubkey
    assert parse_public_key(" " + pubkey.upper() + " ") == pubkey
    assert check_public_key(pubkey) == pubkey


@pytest.mark.parametrize(
    "text",
    [
        "0" * 64,
        "f" * 64,
        "npub1xyz",
        "eefdea4cdb677750a420fee807eacf21eb9898ae79b9768766e4faa04a2d4a34",  # not on the curve
        "abc",
    ],
)
def test_invalid_public_keys_are_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        parse_public_key(text)


@pytest.mark.parametrize(
    "text",
    [
        "0" * 64,
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",  # the group order
        "nsec1xyz",
        "12" * 31,
    ],
)
def test_invalid_secret_keys_are_refused(text: str) -> None:
    with pytest.raises(InvalidKey):
        parse_secret_key(text)
