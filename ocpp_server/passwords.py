"""Charger passwords (OCPP security profiles 1 and 2): hashing, checking, generating.

A charger authenticates with HTTP Basic auth: the user name is its charge point identity, the
password its ``AuthorizationKey``. The rules for that key come from "Improved security for OCPP
1.6-J" (the OCPP 1.6 security whitepaper, edition 2, configuration key ``AuthorizationKey``):
at least 16 bytes, randomly generated for entropy, at most 20 bytes when set over OCPP as up to
40 hexadecimal digits. Chargers whose key is typed in by hand often use that 40-character text
itself as the password, so Strom accepts keys of 16 to 40 bytes (UTF-8) and recommends the
20-character keys :func:`generate_authorization_key` makes.

Only a salted scrypt hash is stored: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_KEY_BYTES",
    "MIN_KEY_BYTES",
    "PasswordHash",
    "authorization_key_hex",
    "generate_authorization_key",
    "hash_password",
    "parse_basic_auth",
    "validate_authorization_key",
    "verify_password",
]

MIN_KEY_BYTES: Final = 16
MAX_KEY_BYTES: Final = 40
_ALPHABET: Final = string.ascii_letters + string.digits
_DEFAULT_LOG2_N: Final = 14  # 16 MiB and ~50 ms per check on one core
_MAXMEM: Final = 64 * 1024 * 1024


def _as_bytes(password: str | bytes) -> bytes:
    return password.encode() if isinstance(password, str) else password


def validate_authorization_key(password: str | bytes) -> bytes:
    """Check a new charger password against the AuthorizationKey length rule.

    Args:
        password: the key as typed (text) or as raw bytes.

    Returns:
        The key as bytes.

    Raises:
        ValueError: when it is shorter than 16 or longer than 40 bytes.
    """
    key = _as_bytes(password)
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ValueError(
            f"an OCPP AuthorizationKey must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES} bytes, "
            f"got {len(key)}"
        )
    return key


def generate_authorization_key(length: int = 20) -> str:
    """A random key of letters and digits (20 characters carry about 119 bits).

    Printable keys avoid charger firmware that mishandles binary or hex-looking keys.
    """
    if not MIN_KEY_BYTES <= length <= MAX_KEY_BYTES:
        raise ValueError(f"length must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES}")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def authorization_key_hex(password: str | bytes) -> str:
    """The key as hexadecimal digits, the form ChangeConfiguration ``AuthorizationKey`` takes."""
    return _as_bytes(password).hex()


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A parsed ``scrypt$...`` password hash."""

    log2_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, encoded: str) -> PasswordHash:
        """Parse the stored form.

        Raises:
            ValueError: when ``encoded`` is not a hash this module made.
        """
        parts = encoded.split("$")
        if len(parts) != 6 or parts[0] != "scrypt":
            raise ValueError("expected scrypt$<log2 n>$<r>$<p>$<salt>$<hash>")
        try:
            log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
            salt = base64.b64decode(parts[4], validate=True)
            digest = base64.b64decode(parts[5], validate=True)
        except (ValueError, binascii.Error) as exc:
            raise ValueError("malformed scrypt password hash") from exc
        if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt parameters out of range")
        if len(salt) < 16 or len(digest) < 32:
            raise ValueError("scrypt salt or hash too short")
        return cls(log2_n, r, p, salt, digest)

    def matches(self, password: str | bytes) -> bool:
        """Whether ``password`` hashes to this digest (constant-time comparison)."""
        candidate = hashlib.scrypt(
            _as_bytes(password),
            salt=self.salt,
            n=1 << self.log2_n,
            r=self.r,
            p=self.p,
            maxmem=_MAXMEM,
            dklen=len(self.digest),
        )
        return hmac.compare_digest(candidate, self.digest)


def hash_password(password: str | bytes, *, log2_n: int = _DEFAULT_LOG2_N) -> str:
    """Hash a charger password for the configuration file.

    Args:
        password: the AuthorizationKey; its length is checked (16-40 bytes).
        log2_n: scrypt cost (2**14 by default; each check takes this much CPU).

    Returns:
        The ``scrypt$...`` string to store.

    Raises:
        ValueError: for a key of the wrong length.
    """
    key = validate_authorization_key(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(key, salt=salt, n=1 << log2_n, r=8, p=1, maxmem=_MAXMEM, dklen=32)
    return "$".join(
        [
            "scrypt",
            str(log2_n),
            "8",
            "1",
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_password(password: str | bytes, encoded: str) -> bool:
    """Check a password against a stored hash.

    Raises:
        ValueError: when ``encoded`` is not a valid hash (a configuration error).
    """
    return PasswordHash.parse(encoded).matches(password)


def parse_basic_auth(header: str) -> tuple[str, bytes] | None:
    """Split an ``Authorization: Basic ...`` header into identity and password bytes.

    The password is returned as bytes: the whitepaper recommends binary keys. The identity is
    everything before the first colon (Strom's charger ids contain none).

    Returns:
        ``(user, password)``, or None when the header is not well-formed Basic auth.
    """
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None
