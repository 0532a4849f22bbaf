"""BIP-340 test vectors, every row: sign where a secret key is given, verify all rows."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from coincurve._libsecp256k1 import ffi, lib  # type: ignore[import-not-found]

from strom_nostr.event import schnorr_sign, schnorr_verify
from strom_nostr.keys import public_key_hex

_BIP340_NONCE_MAGIC = bytes([0xDA, 0x6F, 0xB3, 0x8C])


def _sign_any_length(secret: bytes, message: bytes, aux: bytes) -> bytes:
    """libsecp256k1's variable-length signing, for the rows whose message is not 32 bytes.

    Strom only signs 32-byte event ids (that is :func:`schnorr_sign`); this reaches past
    coincurve's 32-byte API so the four longer/shorter-message rows are signed too.
    """
    ctx = PrivateKey(secret).context.ctx
    keypair = ffi.new("secp256k1_keypair *")
    assert lib.secp256k1_keypair_create(ctx, keypair, secret)
    params = ffi.new("secp256k1_schnorrsig_extraparams *")
    params.magic = _BIP340_NONCE_MAGIC
    params.noncefp = ffi.NULL
    aux_buffer = ffi.new("unsigned char[32]", aux)
    params.ndata = aux_buffer
    signature = ffi.new("unsigned char[64]")
    assert lib.secp256k1_schnorrsig_sign_custom(
        ctx, signature, message, len(message), keypair, params
    )
    return bytes(ffi.buffer(signature))


def test_the_vector_file_has_all_19_rows(bip340_rows: list[dict[str, str]]) -> None:
    assert [int(row["index"]) for row in bip340_rows] == list(range(19))


def test_signing_reproduces_every_row_with_a_secret_key(bip340_rows: list[dict[str, str]]) -> None:
    signed = 0
    for row in bip340_rows:
        if not row["secret key"]:
            continue
        secret = bytes.fromhex(row["secret key"])
        message = bytes.fromhex(row["message"])
        aux = bytes.fromhex(row["aux_rand"])
        assert public_key_hex(secret) == row["public key"].lower(), row["index"]
        if len(message) == 32:
            signature = schnorr_sign(secret, message, aux)
        else:
            signature = _sign_any_length(secret, message, aux)
        assert signature.hex().upper() == row["signature"], row["index"]
        signed += 1
    assert signed == 8  # rows 0-3 and 15-18


@pytest.mark.parametrize("index", range(19))
def test_verification_gives_the_expected_result(
    bip340_rows: list[dict[str, str]], index: int
) -> None:
    row = bip340_rows[index]
    expected = row["verification result"] == "TRUE"
    verified = schnorr_verify(
        row["public key"].lower(), bytes.fromhex(row["message"]), bytes.fromhex(row["signature"])
    )
    assert verified is expected, row["comment"]


def test_sign_refuses_messages_that_are_not_event_ids() -> None:
    from strom_nostr.errors import BuildError

    with pytest.raises(BuildError):
        schnorr_sign(bytes(31) + b"\x01", b"short", bytes(32))
