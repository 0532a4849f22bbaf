"""Keys and NIP-19 bech32 entities (npub, nsec, note, nprofile, nevent, naddr).

Keys are raw 32 bytes (secret) or 64 lowercase hex characters (x-only public key), the forms
NIP-01 uses on the wire. bech32 strings are only for people: configuration files, QR codes,
DMs. Decoding follows NIP-19: bech32 (not bech32m), at most 5000 characters, TLV entries of
unknown type are ignored, and the required TLV entries of each prefix must be present with the
right length.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import bech32
from coincurve import PrivateKey, PublicKeyXOnly

from strom_nostr.errors import Bech32Error, InvalidKey
from strom_nostr.event import is_hex64

__all__ = [
    "MAX_BECH32_LENGTH",
    "AddressPointer",
    "EventPointer",
    "ProfilePointer",
    "check_public_key",
    "decode_naddr",
    "decode_nevent",
    "decode_note",
    "decode_nprofile",
    "decode_npub",
    "decode_nsec",
    "encode_naddr",
    "encode_nevent",
    "encode_note",
    "encode_nprofile",
    "encode_npub",
    "encode_nsec",
    "generate_secret_key",
    "parse_public_key",
    "parse_secret_key",
    "public_key_hex",
]

MAX_BECH32_LENGTH = 5000

_TLV_SPECIAL = 0
_TLV_RELAY = 1
_TLV_AUTHOR = 2
_TLV_KIND = 3


def generate_secret_key() -> bytes:
    """A new random secret key (32 bytes, in range for secp256k1)."""
    while True:
        candidate = os.urandom(32)
        try:
            PrivateKey(candidate)
        except ValueError:  # pragma: no cover - probability about 2**-128
            continue
        return candidate


def public_key_hex(secret_key: bytes) -> str:
    """The x-only public key of ``secret_key`` as 64 lowercase hex characters.

    Raises:
        InvalidKey: the secret key is not 32 bytes in ``[1, n-1]``.
    """
    if not isinstance(secret_key, bytes) or len(secret_key) != 32:
        raise InvalidKey("a secret key is 32 bytes")
    try:
        return PrivateKey(secret_key).public_key_xonly.format().hex()
    except ValueError as exc:
        raise InvalidKey("secret key is out of range") from exc


def check_public_key(pubkey: str) -> str:
    """Return ``pubkey`` when it is lowercase hex of a valid x-only curve point.

    Raises:
        InvalidKey: otherwise.
    """
    if not is_hex64(pubkey):
        raise InvalidKey("a public key is 64 lowercase hex characters")
    try:
        PublicKeyXOnly(bytes.fromhex(pubkey))
    except ValueError as exc:
        raise InvalidKey("public key is not a point on the curve") from exc
    return pubkey


# --- bech32 -----------------------------------------------------------------------------------


def _encode(hrp: str, payload: bytes) -> str:
    words = bech32.convertbits(payload, 8, 5, True)
    assert words is not None  # 8-bit input always converts
    encoded = bech32.bech32_encode(hrp, words)
    if len(encoded) > MAX_BECH32_LENGTH:
        raise Bech32Error(f"{hrp} would be longer than {MAX_BECH32_LENGTH} characters")
    return encoded


def _decode(text: str, hrp: str) -> bytes:
    if not isinstance(text, str):
        raise Bech32Error(f"expected a {hrp} string")
    if len(text) > MAX_BECH32_LENGTH:
        raise Bech32Error(f"bech32 string is longer than {MAX_BECH32_LENGTH} characters")
    found, words = bech32.bech32_decode(text)
    if found is None or words is None:
        raise Bech32Error("not a valid bech32 string (checksum, case or characters)")
    if found != hrp:
        raise Bech32Error(f"expected a {hrp} string, found {found}")
    payload = bech32.convertbits(words, 5, 8, False)
    if payload is None:
        raise Bech32Error(f"{hrp} has invalid padding")
    return bytes(payload)


def _decode_32(text: str, hrp: str) -> bytes:
    payload = _decode(text, hrp)
    if len(payload) != 32:
        raise Bech32Error(f"{hrp} must hold 32 bytes, found {len(payload)}")
    return payload


def _hex32(value: str, what: str) -> bytes:
    if not is_hex64(value):
        raise Bech32Error(f"{what} must be 64 lowercase hex characters")
    return bytes.fromhex(value)


def encode_npub(pubkey: str) -> str:
    """``npub1…`` for a hex public key."""
    return _encode("npub", _hex32(pubkey, "public key"))


def decode_npub(text: str) -> str:
    """Hex public key of an ``npub1…`` string.

    Raises:
        Bech32Error: not an npub.
    """
    return _decode_32(text, "npub").hex()


def encode_nsec(secret_key: bytes) -> str:
    """``nsec1…`` for a 32-byte secret key."""
    if not isinstance(secret_key, bytes) or len(secret_key) != 32:
        raise Bech32Error("a secret key is 32 bytes")
    return _encode("nsec", secret_key)


def decode_nsec(text: str) -> bytes:
    """The 32-byte secret key of an ``nsec1…`` string.

    Raises:
        Bech32Error: not an nsec.
    """
    return _decode_32(text, "nsec")


def encode_note(event_id: str) -> str:
    """``note1…`` for a hex event id."""
    return _encode("note", _hex32(event_id, "event id"))


def decode_note(text: str) -> str:
    """Hex event id of a ``note1…`` string."""
    return _decode_32(text, "note").hex()


# --- TLV entities -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfilePointer:
    """An ``nprofile``: a public key and relays where it is likely found."""

    pubkey: str
    relays: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EventPointer:
    """An ``nevent``: an event id with optional relays, author and kind."""

    event_id: str
    relays: tuple[str, ...] = ()
    author: str | None = None
    kind: int | None = None


@dataclass(frozen=True, slots=True)
class AddressPointer:
    """An ``naddr``: the coordinate ``kind:author:identifier`` of an addressable event."""

    kind: int
    author: str
    identifier: str
    relays: tuple[str, ...] = ()

    @property
    def coordinate(self) -> str:
        """The ``a`` tag value of this address."""
        return f"{self.kind}:{self.author}:{self.identifier}"


def _tlv(entries: Sequence[tuple[int, bytes]]) -> bytes:
    out = bytearray()
    for tlv_type, value in entries:
        if len(value) > 255:
            raise Bech32Error("a TLV value is at most 255 bytes")
        out += bytes((tlv_type, len(value))) + value
    return bytes(out)


def _parse_tlv(payload: bytes) -> dict[int, list[bytes]]:
    entries: dict[int, list[bytes]] = {}
    pos = 0
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise Bech32Error("truncated TLV entry")
        tlv_type, length = payload[pos], payload[pos + 1]
        value = payload[pos + 2 : pos + 2 + length]
        if len(value) != length:
            raise Bech32Error("truncated TLV value")
        entries.setdefault(tlv_type, []).append(value)
        pos += 2 + length
    return entries


def _one(entries: dict[int, list[bytes]], tlv_type: int, size: int | None, what: str) -> bytes:
    values = entries.get(tlv_type)
    if not values:
        raise Bech32Error(f"missing {what}")
    value = values[0]
    if size is not None and len(value) != size:
        raise Bech32Error(f"{what} must be {size} bytes")
    return value


def _relays(entries: dict[int, list[bytes]]) -> tuple[str, ...]:
    try:
        return tuple(value.decode("utf-8") for value in entries.get(_TLV_RELAY, []))
    except UnicodeDecodeError:
        raise Bech32Error("relay is not valid text") from None


def _relay_entries(relays: Sequence[str]) -> list[tuple[int, bytes]]:
    return [(_TLV_RELAY, relay.encode("utf-8")) for relay in relays]


def encode_nprofile(pubkey: str, relays: Sequence[str] = ()) -> str:
    """``nprofile1…`` for a public key and relay hints."""
    entries = [(_TLV_SPECIAL, _hex32(pubkey, "public key")), *_relay_entries(relays)]
    return _encode("nprofile", _tlv(entries))


def decode_nprofile(text: str) -> ProfilePointer:
    """Decode an ``nprofile1…`` string.

    Raises:
        Bech32Error: not an nprofile, or the public key entry is missing.
    """
    entries = _parse_tlv(_decode(text, "nprofile"))
    pubkey = _one(entries, _TLV_SPECIAL, 32, "public key")
    return ProfilePointer(pubkey.hex(), _relays(entries))


def encode_nevent(
    event_id: str, relays: Sequence[str] = (), author: str | None = None, kind: int | None = None
) -> str:
    """``nevent1…`` for an event id with optional hints."""
    entries = [(_TLV_SPECIAL, _hex32(event_id, "event id")), *_relay_entries(relays)]
    if author is not None:
        entries.append((_TLV_AUTHOR, _hex32(author, "author")))
    if kind is not None:
        entries.append((_TLV_KIND, kind.to_bytes(4, "big")))
    return _encode("nevent", _tlv(entries))


def decode_nevent(text: str) -> EventPointer:
    """Decode an ``nevent1…`` string."""
    entries = _parse_tlv(_decode(text, "nevent"))
    event_id = _one(entries, _TLV_SPECIAL, 32, "event id")
    author = _one(entries, _TLV_AUTHOR, 32, "author").hex() if _TLV_AUTHOR in entries else None
    kind = None
    if _TLV_KIND in entries:
        kind = int.from_bytes(_one(entries, _TLV_KIND, 4, "kind"), "big")
    return EventPointer(event_id.hex(), _relays(entries), author, kind)


def encode_naddr(kind: int, author: str, identifier: str, relays: Sequence[str] = ()) -> str:
    """``naddr1…`` for the addressable event ``kind:author:identifier``."""
    if not 0 <= kind <= 0xFFFFFFFF:
        raise Bech32Error("kind must fit 32 bits")
    entries = [
        (_TLV_SPECIAL, identifier.encode("utf-8")),
        *_relay_entries(relays),
        (_TLV_AUTHOR, _hex32(author, "author")),
        (_TLV_KIND, kind.to_bytes(4, "big")),
    ]
    return _encode("naddr", _tlv(entries))


def decode_naddr(text: str) -> AddressPointer:
    """Decode an ``naddr1…`` string.

    Raises:
        Bech32Error: not an naddr, or identifier, author or kind is missing.
    """
    entries = _parse_tlv(_decode(text, "naddr"))
    try:
        identifier = _one(entries, _TLV_SPECIAL, None, "identifier").decode("utf-8")
    except UnicodeDecodeError:
        raise Bech32Error("identifier is not valid text") from None
    author = _one(entries, _TLV_AUTHOR, 32, "author").hex()
    kind = int.from_bytes(_one(entries, _TLV_KIND, 4, "kind"), "big")
    return AddressPointer(kind, author, identifier, _relays(entries))


# --- lenient input, for configuration and DMs ------------------------------------------------


def parse_public_key(text: str) -> str:
    """Accept a public key as hex (any case) or ``npub1…``; return lowercase hex.

    Raises:
        InvalidKey: neither form, or not a curve point.
    """
    text = text.strip()
    if text.lower().startswith("npub1"):
        try:
            return check_public_key(decode_npub(text))
        except Bech32Error as exc:
            raise InvalidKey(exc.reason) from exc
    return check_public_key(text.lower())


def parse_secret_key(text: str) -> bytes:
    """Accept a secret key as 64 hex characters or ``nsec1…``; return its 32 bytes.

    Raises:
        InvalidKey: neither form, or out of range.
    """
    text = text.strip()
    if text.lower().startswith("nsec1"):
        try:
            secret = decode_nsec(text)
        except Bech32Error as exc:
            raise InvalidKey(exc.reason) from exc
    elif is_hex64(text.lower()):
        secret = bytes.fromhex(text)
    else:
        raise InvalidKey("a secret key is 64 hex characters or nsec1...")
    public_key_hex(secret)  # range check
    return secret
