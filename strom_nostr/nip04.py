"""NIP-04 encrypted payloads (deprecated by NIP-17, still what many wallets send).

AES-256-CBC with PKCS#7 padding; the key is the *unhashed* x coordinate of the ECDH point
(libsecp256k1's default ECDH would hash it, so we multiply the point ourselves). The payload
is ``base64(ciphertext) + "?iv=" + base64(iv)``. There are no official vectors: the tests
check the key rule and interoperate with nostr-sdk and nostr-tools.
"""

from __future__ import annotations

import base64
import binascii
import os

from coincurve import PrivateKey, PublicKey
from Cryptodome.Cipher import AES
from Cryptodome.Util.Padding import pad, unpad

from strom_nostr.errors import BuildError, DecryptionError, InvalidKey
from strom_nostr.event import is_hex64

__all__ = ["MAX_PAYLOAD_LEN", "decrypt", "encrypt", "shared_secret"]

MAX_PAYLOAD_LEN = 1 << 20
"""Longest payload :func:`decrypt` reads."""


def shared_secret(secret_key: bytes, pubkey: str) -> bytes:
    """The NIP-04 key: the 32-byte x coordinate of ``secret * P`` (not hashed).

    Raises:
        InvalidKey: a key is invalid.
    """
    if not isinstance(secret_key, bytes) or len(secret_key) != 32 or not is_hex64(pubkey):
        raise InvalidKey("NIP-04 needs a 32-byte secret key and a hex public key")
    try:
        scalar = PrivateKey(secret_key).secret
        point: bytes = PublicKey(b"\x02" + bytes.fromhex(pubkey)).multiply(scalar).format()
    except ValueError as exc:
        raise InvalidKey("invalid key for NIP-04") from exc
    return point[1:]


def encrypt(secret_key: bytes, pubkey: str, plaintext: str, *, iv: bytes | None = None) -> str:
    """Encrypt ``plaintext`` from us to ``pubkey``.

    Args:
        secret_key: our secret key.
        pubkey: the peer's public key (hex).
        plaintext: the message.
        iv: 16 bytes; random when None (pass fixed bytes only in tests).

    Returns:
        ``"<base64 ciphertext>?iv=<base64 iv>"``.

    Raises:
        BuildError: the plaintext is not valid Unicode or the iv has the wrong size.
        InvalidKey: a key is invalid.
    """
    key = shared_secret(secret_key, pubkey)
    if iv is None:
        iv = os.urandom(16)
    if len(iv) != 16:
        raise BuildError("NIP-04 iv must be 16 bytes")
    try:
        data = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BuildError("plaintext is not valid Unicode") from exc
    ciphertext = AES.new(key, AES.MODE_CBC, iv=iv).encrypt(pad(data, 16))
    return f"{base64.b64encode(ciphertext).decode()}?iv={base64.b64encode(iv).decode()}"


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionError(f"NIP-04 {what} is not valid base64") from None


def decrypt(secret_key: bytes, pubkey: str, payload: str) -> str:
    """Decrypt a NIP-04 payload sent between us and ``pubkey``.

    Raises:
        DecryptionError: bad format, wrong key (padding fails) or not UTF-8.
        InvalidKey: a key is invalid.
    """
    if not isinstance(payload, str) or len(payload) > MAX_PAYLOAD_LEN:
        raise DecryptionError("NIP-04 payload is missing or too long")
    body, sep, iv_text = payload.partition("?iv=")
    if not sep:
        raise DecryptionError("NIP-04 payload has no iv")
    ciphertext = _b64(body, "ciphertext")
    iv = _b64(iv_text, "iv")
    if len(iv) != 16 or not ciphertext or len(ciphertext) % 16:
        raise DecryptionError("NIP-04 payload has the wrong size")
    key = shared_secret(secret_key, pubkey)
    try:
        data = unpad(AES.new(key, AES.MODE_CBC, iv=iv).decrypt(ciphertext), 16)
        return data.decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        raise DecryptionError("NIP-04 payload does not decrypt with this key") from None
