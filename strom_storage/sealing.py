"""Encryption at rest for Strom's secrets: agent key files, OCPI partners' tokens and more.

It lives in storage, below every front door, so that each of them (the agents, the OCPI
server) seals its secrets the same way; ``agent.sealing`` re-exports it under its old name.

Theory of operation: an operator may set ``STROM_MASTER_KEY`` in the environment. When it is
set, every secret written to disk or to the database is sealed with ChaCha20-Poly1305 under a
key derived from it by HKDF-SHA256, with the secret's name (the charger id, the session id,
the OCPI partner) as associated data, so a sealed value copied elsewhere does not open there.
When it is not set, key files are written as they are, and the only protection is the file
mode (0600, folders 0700); database values are stored as they are too, like the rest of the
database. Session secrets imported from an older installation are always sealed, under a key
derived from the server key (:func:`agent.store.imported_secret_sealer`).

The master key should carry at least 128 bits of entropy (``openssl rand -hex 32``); HKDF does
not stretch a weak passphrase. 64 hex characters are used as 32 raw bytes, anything else as
its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping

from Cryptodome.Cipher import ChaCha20_Poly1305
from Cryptodome.Hash import SHA256
from Cryptodome.Protocol.KDF import HKDF

from strom_core.errors import ConfigError

__all__ = ["MASTER_KEY_ENV", "SEALED_PREFIX", "SealError", "Sealer", "sealer_from_environ"]

MASTER_KEY_ENV = "STROM_MASTER_KEY"
SEALED_PREFIX = "sealed1:"
_MIN_MASTER_KEY_BYTES = 16
_NONCE_BYTES = 12
_TAG_BYTES = 16


class SealError(ConfigError):
    """A sealed value does not open: wrong master key, damaged file, or no master key set."""


class Sealer:
    """Seals and opens small secrets; with no master key it passes them through.

    Args:
        master_key: the master key as given by the operator, or None for no encryption.
        purpose: a label mixed into the key derivation, so keys for different stores differ.

    Raises:
        ConfigError: the master key is shorter than 16 bytes.
    """

    def __init__(self, master_key: str | None, *, purpose: str) -> None:
        self._key: bytes | None = None
        if master_key:
            raw = _master_key_bytes(master_key)
            derived = HKDF(raw, 32, b"strom agent secrets v1", SHA256, context=purpose.encode())
            assert isinstance(derived, bytes)  # one key was asked for
            self._key = derived

    @property
    def encrypts(self) -> bool:
        """Whether a master key is set (values are sealed)."""
        return self._key is not None

    def seal(self, name: str, plaintext: str) -> str:
        """The text to store for ``plaintext``: sealed when a master key is set."""
        if self._key is None:
            return plaintext
        nonce = os.urandom(_NONCE_BYTES)
        cipher = ChaCha20_Poly1305.new(key=self._key, nonce=nonce)
        cipher.update(name.encode())
        ciphertext, tag = cipher.encrypt_and_digest(plaintext.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + ciphertext + tag).decode()

    def open(self, name: str, stored: str) -> str:
        """The plaintext of a stored value (sealed or not).

        Raises:
            SealError: the value is sealed and no master key is set, or it does not open.
        """
        if not stored.startswith(SEALED_PREFIX):
            return stored
        if self._key is None:
            raise SealError(
                f"{name}: the value is encrypted; set {MASTER_KEY_ENV} to the master key"
            )
        try:
            blob = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :])
        except (binascii.Error, ValueError):
            raise SealError(f"{name}: the sealed value is damaged") from None
        if len(blob) < _NONCE_BYTES + _TAG_BYTES:
            raise SealError(f"{name}: the sealed value is damaged")
        nonce, body, tag = blob[:_NONCE_BYTES], blob[_NONCE_BYTES:-_TAG_BYTES], blob[-_TAG_BYTES:]
        cipher = ChaCha20_Poly1305.new(key=self._key, nonce=nonce)
        cipher.update(name.encode())
        try:
            return cipher.decrypt_and_verify(body, tag).decode()
        except (ValueError, UnicodeDecodeError):
            raise SealError(
                f"{name}: does not open with this {MASTER_KEY_ENV} (wrong key or damaged file)"
            ) from None


def _master_key_bytes(text: str) -> bytes:
    stripped = text.strip()
    if len(stripped) == 64:
        try:
            return bytes.fromhex(stripped)
        except ValueError:
            pass
    raw = stripped.encode()
    if len(raw) < _MIN_MASTER_KEY_BYTES:
        raise ConfigError(
            f"{MASTER_KEY_ENV} is too short: use at least 32 random characters "
            "(e.g. the output of `openssl rand -hex 32`)"
        )
    return raw


def sealer_from_environ(environ: Mapping[str, str] | None, *, purpose: str) -> Sealer:
    """A :class:`Sealer` keyed by ``STROM_MASTER_KEY`` from ``environ`` (``os.environ`` if None).

    Raises:
        ConfigError: the master key is too short.
    """
    source = os.environ if environ is None else environ
    return Sealer(source.get(MASTER_KEY_ENV) or None, purpose=purpose)
