"""NIP-44 version 2 encrypted payloads, pure and deterministic when given a nonce.

Why our own code and not nostr-sdk's ``nip44_encrypt``: nostr-sdk draws the nonce itself, so
it cannot reproduce the official test vectors, and NIP-59 seals built on it could not be
tested byte for byte. The primitives come from libraries: ECDH from libsecp256k1 (coincurve,
unhashed x coordinate via point multiplication), ChaCha20 from pycryptodomex, HMAC-SHA256 and
HKDF (RFC 5869, which is two HMAC formulas) from the standard library.

Length limit: the vector file (2024) treats plaintexts above 65535 bytes as invalid, the
current NIP text (2026) allows up to 2**32-1 bytes with a 6-byte length prefix. We encrypt
with the 2-byte prefix only unless ``extended=True`` is asked for, so every implementation
can read what we send, and we decrypt both forms, bounded by ``max_payload_len``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os

from coincurve import PrivateKey, PublicKey
from Cryptodome.Cipher import ChaCha20

from strom_nostr.errors import BuildError, DecryptionError, InvalidKey, UnsupportedEncryptionVersion
from strom_nostr.event import is_hex64

__all__ = [
    "DEFAULT_MAX_PAYLOAD_LEN",
    "LEGACY_MAX_PLAINTEXT",
    "MAX_PLAINTEXT",
    "calc_padded_len",
    "conversation_key",
    "decrypt",
    "encrypt",
    "message_keys",
]

VERSION = 2
LEGACY_MAX_PLAINTEXT = 65535
MAX_PLAINTEXT = 2**32 - 1
_EXTENDED_THRESHOLD = 65536
DEFAULT_MAX_PAYLOAD_LEN = 1 << 20
"""Longest base64 payload :func:`decrypt` reads by default (about 780 KB of plaintext)."""

_SALT = b"nip44-v2"


def conversation_key(secret_key: bytes, pubkey: str) -> bytes:
    """The conversation key ``hkdf_extract(salt="nip44-v2", ikm=ecdh_x(secret, pubkey))``.

    Args:
        secret_key: our 32-byte secret key.
        pubkey: the peer's x-only public key, 64 lowercase hex characters.

    Returns:
        32 bytes; the same for ``(a, B)`` and ``(b, A)``.

    Raises:
        InvalidKey: the secret is out of range or the public key is not a curve point.
    """
    if not isinstance(secret_key, bytes) or len(secret_key) != 32:
        raise InvalidKey("a secret key is 32 bytes")
    if not is_hex64(pubkey):
        raise InvalidKey("a public key is 64 lowercase hex characters")
    try:
        secret = PrivateKey(secret_key).secret
        point = PublicKey(b"\x02" + bytes.fromhex(pubkey))
        shared_x = point.multiply(secret).format(compressed=True)[1:]
    except ValueError as exc:
        raise InvalidKey("invalid key for NIP-44 conversation") from exc
    return hmac.digest(_SALT, shared_x, hashlib.sha256)


def message_keys(conv_key: bytes, nonce: bytes) -> tuple[bytes, bytes, bytes]:
    """``(chacha_key, chacha_nonce, hmac_key)`` from HKDF-expand(conv_key, info=nonce, L=76)."""
    if len(conv_key) != 32:
        raise InvalidKey("conversation key must be 32 bytes")
    if len(nonce) != 32:
        raise InvalidKey("nonce must be 32 bytes")
    okm = b""
    block = b""
    counter = 1
    while len(okm) < 76:
        block = hmac.digest(conv_key, block + nonce + bytes((counter,)), hashlib.sha256)
        okm += block
        counter += 1
    return okm[0:32], okm[32:44], okm[44:76]


def calc_padded_len(unpadded_len: int) -> int:
    """Padded length of a plaintext of ``unpadded_len`` bytes (without the length prefix)."""
    if unpadded_len <= 32:
        return 32
    next_power = 1 << (unpadded_len - 1).bit_length()
    chunk = 32 if next_power <= 256 else next_power // 8
    return chunk * ((unpadded_len - 1) // chunk + 1)


def _pad(plaintext: str, extended: bool) -> bytes:
    try:
        unpadded = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BuildError("plaintext is not valid Unicode") from exc
    length = len(unpadded)
    limit = MAX_PLAINTEXT if extended else LEGACY_MAX_PLAINTEXT
    if not 1 <= length <= limit:
        raise BuildError(f"NIP-44 plaintext must be 1 to {limit} bytes, got {length}")
    if length >= _EXTENDED_THRESHOLD:
        prefix = b"\x00\x00" + length.to_bytes(4, "big")
    else:
        prefix = length.to_bytes(2, "big")
    return prefix + unpadded + bytes(calc_padded_len(length) - length)


def _unpad(padded: bytes) -> str:
    length = int.from_bytes(padded[0:2], "big")
    prefix_len = 2
    if length == 0:
        length = int.from_bytes(padded[2:6], "big")
        prefix_len = 6
        if length < _EXTENDED_THRESHOLD:
            raise DecryptionError("invalid padding")
    unpadded = padded[prefix_len : prefix_len + length]
    if len(unpadded) != length or len(padded) != prefix_len + calc_padded_len(length):
        raise DecryptionError("invalid padding")
    try:
        return unpadded.decode("utf-8")
    except UnicodeDecodeError:
        raise DecryptionError("plaintext is not valid UTF-8") from None


def _mac(hmac_key: bytes, nonce: bytes, ciphertext: bytes) -> bytes:
    return hmac.digest(hmac_key, nonce + ciphertext, hashlib.sha256)


def _chacha20(key: bytes, nonce: bytes, data: bytes) -> bytes:
    return ChaCha20.new(key=key, nonce=nonce).encrypt(data)


def encrypt(
    plaintext: str, conv_key: bytes, nonce: bytes | None = None, *, extended: bool = False
) -> str:
    """Encrypt ``plaintext`` to a base64 NIP-44 v2 payload.

    Args:
        plaintext: 1 to 65535 UTF-8 bytes (to 2**32-1 with ``extended``).
        conv_key: from :func:`conversation_key`.
        nonce: 32 bytes; fresh random bytes when None. Never reuse one.
        extended: allow plaintexts above 65535 bytes (6-byte length prefix, NIP-44 2026).

    Returns:
        The base64 payload.

    Raises:
        BuildError: the plaintext is empty, too long or not valid Unicode.
    """
    if nonce is None:
        nonce = os.urandom(32)
    chacha_key, chacha_nonce, hmac_key = message_keys(conv_key, nonce)
    ciphertext = _chacha20(chacha_key, chacha_nonce, _pad(plaintext, extended))
    payload = bytes((VERSION,)) + nonce + ciphertext + _mac(hmac_key, nonce, ciphertext)
    return base64.b64encode(payload).decode("ascii")


def _decode_payload(payload: str, max_payload_len: int) -> tuple[bytes, bytes, bytes]:
    if not isinstance(payload, str):
        raise DecryptionError("payload must be a string")
    if not payload or payload[0] == "#":
        raise UnsupportedEncryptionVersion("unknown encryption version")
    if not 132 <= len(payload) <= max_payload_len:
        raise DecryptionError("invalid payload size")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError("invalid base64") from None
    if len(data) < 99:
        raise DecryptionError("invalid data size")
    if data[0] != VERSION:
        raise UnsupportedEncryptionVersion(f"unknown encryption version {data[0]}")
    return data[1:33], data[33:-32], data[-32:]


def decrypt(
    payload: str, conv_key: bytes, *, max_payload_len: int = DEFAULT_MAX_PAYLOAD_LEN
) -> str:
    """Decrypt a NIP-44 v2 payload.

    Args:
        payload: the base64 payload.
        conv_key: from :func:`conversation_key`.
        max_payload_len: refuse longer payloads before decoding them.

    Returns:
        The plaintext.

    Raises:
        DecryptionError: unknown version, bad size or base64, MAC mismatch, bad padding.
    """
    nonce, ciphertext, mac = _decode_payload(payload, max_payload_len)
    chacha_key, chacha_nonce, hmac_key = message_keys(conv_key, nonce)
    if not hmac.compare_digest(_mac(hmac_key, nonce, ciphertext), mac):
        raise DecryptionError("invalid MAC")
    return _unpad(_chacha20(chacha_key, chacha_nonce, ciphertext))
