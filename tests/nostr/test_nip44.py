"""NIP-44 v2 against every official vector, plus the 2026 extended-length table of the NIP."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from strom_nostr import nip44
from strom_nostr.errors import BuildError, DecryptionError, InvalidKey, UnsupportedEncryptionVersion
from strom_nostr.keys import public_key_hex


def test_conversation_keys(nip44_vectors: dict[str, Any]) -> None:
    cases = nip44_vectors["valid"]["get_conversation_key"]
    assert len(cases) == 35
    for case in cases:
        key = nip44.conversation_key(bytes.fromhex(case["sec1"]), case["pub2"])
        assert key.hex() == case["conversation_key"], case


def test_message_keys(nip44_vectors: dict[str, Any]) -> None:
    section = nip44_vectors["valid"]["get_message_keys"]
    conv_key = bytes.fromhex(section["conversation_key"])
    for case in section["keys"]:
        chacha_key, chacha_nonce, hmac_key = nip44.message_keys(
            conv_key, bytes.fromhex(case["nonce"])
        )
        assert chacha_key.hex() == case["chacha_key"]
        assert chacha_nonce.hex() == case["chacha_nonce"]
        assert hmac_key.hex() == case["hmac_key"]


def test_padded_lengths(nip44_vectors: dict[str, Any]) -> None:
    for unpadded, padded in nip44_vectors["valid"]["calc_padded_len"]:
        assert nip44.calc_padded_len(unpadded) == padded


def test_encrypt_decrypt(nip44_vectors: dict[str, Any]) -> None:
    cases = nip44_vectors["valid"]["encrypt_decrypt"]
    assert len(cases) == 10
    for case in cases:
        sec1, sec2 = bytes.fromhex(case["sec1"]), bytes.fromhex(case["sec2"])
        key = nip44.conversation_key(sec1, public_key_hex(sec2))
        assert key.hex() == case["conversation_key"]
        payload = nip44.encrypt(case["plaintext"], key, bytes.fromhex(case["nonce"]))
        assert payload == case["payload"]
        other_side = nip44.conversation_key(sec2, public_key_hex(sec1))
        assert other_side == key
        assert nip44.decrypt(payload, other_side) == case["plaintext"]


def test_long_messages(nip44_vectors: dict[str, Any]) -> None:
    for case in nip44_vectors["valid"]["encrypt_decrypt_long_msg"]:
        plaintext = case["pattern"] * case["repeat"]
        assert hashlib.sha256(plaintext.encode()).hexdigest() == case["plaintext_sha256"]
        key = bytes.fromhex(case["conversation_key"])
        payload = nip44.encrypt(plaintext, key, bytes.fromhex(case["nonce"]))
        assert hashlib.sha256(payload.encode()).hexdigest() == case["payload_sha256"]
        assert nip44.decrypt(payload, key) == plaintext


def test_message_lengths_outside_1_to_65535_are_refused(nip44_vectors: dict[str, Any]) -> None:
    key = bytes(32)
    for length in nip44_vectors["invalid"]["encrypt_msg_lengths"]:
        with pytest.raises(BuildError):
            nip44.encrypt("a" * length, key, bytes(32))


def test_extended_lengths_follow_the_current_nip_text(nip_examples: dict[str, Any]) -> None:
    """NIP-44 (2026) allows 65536..2**32-1 bytes with a 6-byte prefix; we send it on request."""
    table = nip_examples["nip44_extended_length_from_spec_text"]
    key = bytes.fromhex(table["conversation_key"])
    nonce = bytes.fromhex(table["nonce"])
    for case in table["cases"]:
        plaintext = table["plaintext_byte"] * case["plaintext_len"]
        assert hashlib.sha256(plaintext.encode()).hexdigest() == case["plaintext_sha256"]
        payload = nip44.encrypt(plaintext, key, nonce, extended=True)
        assert hashlib.sha256(payload.encode()).hexdigest() == case["payload_sha256"]
        assert nip44.calc_padded_len(case["plaintext_len"]) == case["padded_len"]
        assert nip44.decrypt(payload, key) == plaintext
    with pytest.raises(BuildError):
        nip44.encrypt("", key, nonce, extended=True)


def test_decrypt_failures(nip44_vectors: dict[str, Any]) -> None:
    cases = nip44_vectors["invalid"]["decrypt"]
    assert len(cases) == 12
    for case in cases:
        with pytest.raises(DecryptionError) as caught:
            nip44.decrypt(case["payload"], bytes.fromhex(case["conversation_key"]))
        note = case["note"]
        if "version" in note:
            assert isinstance(caught.value, UnsupportedEncryptionVersion), note
        for word in ("MAC", "padding", "base64"):
            if word in note:
                assert word in caught.value.reason, note


def test_invalid_conversation_keys(nip44_vectors: dict[str, Any]) -> None:
    cases = nip44_vectors["invalid"]["get_conversation_key"]
    assert len(cases) == 8
    for case in cases:
        with pytest.raises(InvalidKey):
            nip44.conversation_key(bytes.fromhex(case["sec1"]), case["pub2"])


def test_oversized_payloads_are_refused_before_decoding() -> None:
    key = bytes(32)
    payload = nip44.encrypt("x" * 2000, key, bytes(32))
    with pytest.raises(DecryptionError, match="size"):
        nip44.decrypt(payload, key, max_payload_len=1000)


def test_a_random_nonce_is_used_by_default() -> None:
    key = bytes(32)
    assert nip44.encrypt("hi", key) != nip44.encrypt("hi", key)
