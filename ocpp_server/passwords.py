"""Charger passwords (OCPP security profiles 1 and 2): hashing, checking, generating.

A charger authenticates with HTTP Basic auth: the user name is its charge point identity, the
password its ``AuthorizationKey``. The rules for that key come from "Improved security for OCPP
1.6-J" (the OCPP 1.6 security whitepaper, edition 2, configuration key ``AuthorizationKey``):
at least 16 bytes, randomly generated for entropy, at most 20 bytes when set over OCPP as up to
40 hexadecimal digits. Chargers whose key is typed in by hand often use that 40-character text
itself as the password, so Strom accepts keys of 16 to 40 bytes (UTF-8).

Two stored forms, chosen by where the key came from:

* ``hmac-sha256$<key id>$<digest b64>`` for keys Strom generated
  (:func:`generate_authorization_key`: 20 characters of a 64-symbol alphabet, 120 bits). For a
  random secret that long a keyed hash is as safe as a slow one: nobody can try 2**120 keys,
  and without the server's key (:class:`PasswordKey`) the stored digest cannot even be checked
  offline. A check takes microseconds, so 10,000 chargers are admitted within seconds of a
  restart. The key id names the server key the hash was made under, so a lost or replaced key
  is reported as such instead of as a wrong password.
* ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>`` for passwords a person chose (and every
  hash made before keyed hashes existed): about 50 ms of CPU per check at the default cost.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "GENERATED_KEY_LENGTH",
    "KEYED_PREFIX",
    "MAX_KEY_BYTES",
    "MIN_KEY_BYTES",
    "SCRYPT_PREFIX",
    "KeyedHash",
    "NewPassword",
    "PasswordKey",
    "ScryptHash",
    "StoredHash",
    "authorization_key_hex",
    "generate_authorization_key",
    "hash_password",
    "parse_basic_auth",
    "parse_password_hash",
    "validate_authorization_key",
    "verify_password",
]

MIN_KEY_BYTES: Final = 16
MAX_KEY_BYTES: Final = 40
GENERATED_KEY_LENGTH: Final = 20  # 120 bits; its hex form is 40 digits, what OCPP can carry
SCRYPT_PREFIX: Final = "scrypt"
KEYED_PREFIX: Final = "hmac-sha256"
# 64 symbols, 6 bits each: the URL-safe base64 alphabet. Printable keys avoid charger firmware
# that mishandles binary or hex-looking keys, and survive a charger's web form.
_ALPHABET: Final = string.ascii_letters + string.digits + "-_"
_DEFAULT_LOG2_N: Final = 14  # 16 MiB and ~50 ms per check on one core
_MAXMEM: Final = 64 * 1024 * 1024
_KEY_ID_BYTES: Final = 6


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


def generate_authorization_key(length: int = GENERATED_KEY_LENGTH) -> str:
    """A random key of letters, digits, ``-`` and ``_`` (6 bits a character).

    The default 20 characters carry 120 bits, and the key's hexadecimal form (40 digits) is
    the longest ChangeConfiguration ``AuthorizationKey`` allows.

    Raises:
        ValueError: for a length outside 16-40.
    """
    if not MIN_KEY_BYTES <= length <= MAX_KEY_BYTES:
        raise ValueError(f"length must be {MIN_KEY_BYTES} to {MAX_KEY_BYTES}")
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def authorization_key_hex(password: str | bytes) -> str:
    """The key as hexadecimal digits, the form ChangeConfiguration ``AuthorizationKey`` takes."""
    return _as_bytes(password).hex()


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"malformed {what} password hash") from exc


@dataclass(frozen=True, slots=True)
class ScryptHash:
    """A parsed ``scrypt$...`` password hash (a password a person chose)."""

    log2_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    @classmethod
    def parse(cls, encoded: str) -> ScryptHash:
        """Parse the stored form.

        Raises:
            ValueError: when ``encoded`` is not a hash this module made.
        """
        parts = encoded.split("$")
        if len(parts) != 6 or parts[0] != SCRYPT_PREFIX:
            raise ValueError("expected scrypt$<log2 n>$<r>$<p>$<salt>$<hash>")
        try:
            log2_n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        except ValueError as exc:
            raise ValueError("malformed scrypt password hash") from exc
        salt, digest = _b64decode(parts[4], "scrypt"), _b64decode(parts[5], "scrypt")
        if not (10 <= log2_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
            raise ValueError("scrypt parameters out of range")
        if len(salt) < 16 or len(digest) < 32:
            raise ValueError("scrypt salt or hash too short")
        return cls(log2_n, r, p, salt, digest)

    def matches(self, password: str | bytes) -> bool:
        """Whether ``password`` hashes to this digest (constant-time comparison; slow)."""
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


@dataclass(frozen=True, slots=True)
class KeyedHash:
    """A parsed ``hmac-sha256$<key id>$<digest>`` hash (a key Strom generated)."""

    key_id: str
    digest: bytes

    @classmethod
    def parse(cls, encoded: str) -> KeyedHash:
        """Parse the stored form.

        Raises:
            ValueError: when ``encoded`` is not a hash this module made.
        """
        parts = encoded.split("$")
        if len(parts) != 3 or parts[0] != KEYED_PREFIX:
            raise ValueError("expected hmac-sha256$<key id>$<digest>")
        if len(_b64decode(parts[1], KEYED_PREFIX)) != _KEY_ID_BYTES:
            raise ValueError("hmac-sha256 password hash: the key id is malformed")
        digest = _b64decode(parts[2], KEYED_PREFIX)
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("hmac-sha256 password hash: the digest must be 32 bytes")
        return cls(parts[1], digest)


StoredHash = ScryptHash | KeyedHash


def parse_password_hash(encoded: str) -> StoredHash:
    """Parse a stored charger password hash of either form.

    Raises:
        ValueError: naming the forms Strom reads (a configuration error).
    """
    if encoded.startswith(KEYED_PREFIX + "$"):
        return KeyedHash.parse(encoded)
    if encoded.startswith(SCRYPT_PREFIX + "$"):
        return ScryptHash.parse(encoded)
    raise ValueError(
        "expected a password hash made by `strom charger password` (hmac-sha256$... or scrypt$...)"
    )


@dataclass(frozen=True, slots=True)
class NewPassword:
    """A freshly generated charger key and its stored hash. Show ``key`` once, store the hash.

    Attributes:
        key: the AuthorizationKey (the HTTP Basic password) to enter in the charger.
        password_hash: the ``hmac-sha256$...`` form for the charger's profile.
    """

    key: str = field(repr=False)
    password_hash: str

    @property
    def key_hex(self) -> str:
        """The key for ChangeConfiguration ``AuthorizationKey`` (hexadecimal)."""
        return authorization_key_hex(self.key)


class PasswordKey:
    """The server's secret for hashing the keys it generates (HMAC-SHA-256).

    The composition root derives it from Strom's server key; whoever holds it can check a
    guessed key offline, so it stays with the server (``keys/`` under the data folder).

    Args:
        secret: at least 32 random bytes.

    Raises:
        ValueError: for a secret shorter than 32 bytes.
    """

    __slots__ = ("_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a password key is at least 32 bytes")
        self._secret = secret
        tag = hmac.new(secret, b"strom password key id", hashlib.sha256).digest()
        self.key_id = base64.b64encode(tag[:_KEY_ID_BYTES]).decode()

    def __repr__(self) -> str:
        return f"PasswordKey(key_id={self.key_id!r})"

    def _mac(self, password: bytes) -> bytes:
        return hmac.new(self._secret, password, hashlib.sha256).digest()

    def hash(self, password: str | bytes) -> str:
        """The ``hmac-sha256$...`` form of a generated key.

        Only for long random keys (:func:`generate_authorization_key`): a password a person
        chose needs :func:`hash_password` (scrypt).

        Raises:
            ValueError: for a key of the wrong length.
        """
        digest = self._mac(validate_authorization_key(password))
        return f"{KEYED_PREFIX}${self.key_id}${base64.b64encode(digest).decode()}"

    def new_password(self) -> NewPassword:
        """Generate a key (120 bits) and hash it."""
        key = generate_authorization_key()
        return NewPassword(key, self.hash(key))

    def made_this(self, stored: KeyedHash) -> bool:
        """Whether ``stored`` was made under this key (else no password can match it)."""
        return hmac.compare_digest(stored.key_id, self.key_id)

    def matches(self, stored: KeyedHash, password: str | bytes) -> bool:
        """Whether ``password`` is the key ``stored`` was made from (constant time; fast)."""
        return self.made_this(stored) and hmac.compare_digest(
            self._mac(_as_bytes(password)), stored.digest
        )


def hash_password(password: str | bytes, *, log2_n: int = _DEFAULT_LOG2_N) -> str:
    """Hash a password a person chose (scrypt), for the charger's profile.

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
            SCRYPT_PREFIX,
            str(log2_n),
            "8",
            "1",
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )


def verify_password(password: str | bytes, encoded: str, *, key: PasswordKey | None = None) -> bool:
    """Check a password against a stored hash of either form.

    Args:
        password: what the charger presented.
        encoded: the stored hash.
        key: the server's password key, needed for ``hmac-sha256$`` hashes.

    Raises:
        ValueError: when ``encoded`` is not a valid hash (a configuration error), or is keyed
            and no key was given.
    """
    stored = parse_password_hash(encoded)
    if isinstance(stored, ScryptHash):
        return stored.matches(password)
    if key is None:
        raise ValueError("an hmac-sha256 password hash needs the server's password key")
    return key.matches(stored, password)


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
