"""NIP-04 (no official vectors): the key rule, round trips and refusals."""

from __future__ import annotations

import base64
import hashlib

import pytest
from coincurve import PrivateKey, PublicKey
from Cryptodome.Cipher import AES
from Cryptodome.Util.Padding import pad

from strom_nostr import nip04
from strom_nostr.errors import BuildError, DecryptionError, InvalidKey
from strom_nostr.keys import public_key_hex

ALICE = hashlib.sha256(b"alice").digest()
BOB = hashlib.sha256(b"bob").digest()
EVE = hashlib.sha256(b"eve").digest()


def test_the_key_is_the_unhashed_x_coordinate_of_the_shared_point() -> None:
    bob_point = PublicKey.from_secret(BOB)
    shared = bob_point.multiply(ALICE).format(compressed=False)[1:33]
    assert nip04.shared_secret(ALICE, public_key_hex(BOB)) == shared
    # libsecp256k1's default ECDH hashes the point: NIP-04 must not
    assert PrivateKey(ALICE).ecdh(bob_point.format()) != shared


def test_both_sides_derive_the_same_key() -> None:
    assert nip04.shared_secret(ALICE, public_key_hex(BOB)) == nip04.shared_secret(
        BOB, public_key_hex(ALICE)
    )


def test_a_known_iv_gives_aes_256_cbc_of_the_text() -> None:
    iv = bytes(range(16))
    payload = nip04.encrypt(ALICE, public_key_hex(BOB), "stop", iv=iv)
    key = nip04.shared_secret(ALICE, public_key_hex(BOB))
    expected = AES.new(key, AES.MODE_CBC, iv=iv).encrypt(pad(b"stop", 16))
    assert payload == f"{base64.b64encode(expected).decode()}?iv={base64.b64encode(iv).decode()}"


@pytest.mark.parametrize("text", ["stop", "", "ünïcödé ⚡ 🚗", "x" * 5000])
def test_round_trip(text: str) -> None:
    payload = nip04.encrypt(ALICE, public_key_hex(BOB), text)
    assert nip04.decrypt(BOB, public_key_hex(ALICE), payload) == text


def test_a_third_party_cannot_read_it() -> None:
    payload = nip04.encrypt(ALICE, public_key_hex(BOB), "secret plan " * 3)
    with pytest.raises(DecryptionError):
        nip04.decrypt(EVE, public_key_hex(ALICE), payload)


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "abc",
        "AAAA?iv=",
        "AAAAAAAAAAAAAAAAAAAAAA==?iv=AAAA",
        "!!!!?iv=AAAAAAAAAAAAAAAAAAAAAA==",
        "AAAA?iv=AAAAAAAAAAAAAAAAAAAAAA==",
        "A" * (nip04.MAX_PAYLOAD_LEN + 1),
    ],
)
def test_malformed_payloads_are_refused(payload: str) -> None:
    with pytest.raises(DecryptionError):
        nip04.decrypt(BOB, public_key_hex(ALICE), payload)


def test_bad_inputs_when_encrypting() -> None:
    with pytest.raises(BuildError):
        nip04.encrypt(ALICE, public_key_hex(BOB), "x", iv=b"short")
    with pytest.raises(BuildError):
        nip04.encrypt(ALICE, public_key_hex(BOB), "\ud800")
    with pytest.raises(InvalidKey):
        nip04.encrypt(ALICE, "0" * 64, "x")
