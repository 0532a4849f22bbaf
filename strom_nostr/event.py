r"""NIP-01 events: canonical serialisation, event id, BIP-340 signing and verification, parsing.

Theory of operation:

* An :class:`Event` is always well-formed: its constructor checks every field (lowercase hex of
  the right length, integer ranges, tags as tuples of strings, text that has a UTF-8 form) and
  raises
  :class:`~strom_nostr.errors.MalformedEvent` otherwise. Whether it is *authentic* is a separate
  question answered by :func:`verify_event`, which recomputes the id and checks the signature.
* The id is sha256 of ``[0, pubkey, created_at, kind, tags, content]`` serialised by orjson,
  which writes exactly what ``JSON.stringify`` writes for these types (no whitespace, UTF-8
  verbatim, the seven short escapes of NIP-01 and ``\u00XX`` for other control characters).
  A string holding a lone surrogate cannot be UTF-8 and is refused, both by the JSON parser and
  by the serialiser.
* :func:`parse_event` verifies by default, so the obvious call is the safe one; pass
  ``verify=False`` only where the signature is checked later anyway.
* Verification is the hot path of event intake: it does one serialisation, one sha256 and one
  libsecp256k1 call, and caches parsed public keys (agents see the same few authors again and
  again).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson
from coincurve import PrivateKey, PublicKeyXOnly

from strom_nostr.errors import BadSignature, BuildError, EventIdMismatch, MalformedEvent

__all__ = [
    "MAX_EVENT_BYTES",
    "Event",
    "EventTemplate",
    "Tags",
    "UnsignedEvent",
    "compute_id",
    "expiration",
    "is_expired",
    "make_tags",
    "make_unsigned",
    "parse_event",
    "parse_unsigned_event",
    "schnorr_sign",
    "schnorr_verify",
    "serialize",
    "sign_event",
    "sign_template",
    "verify_event",
]

Tags = tuple[tuple[str, ...], ...]

MAX_EVENT_BYTES = 256 * 1024
"""Largest serialized event :func:`parse_event` reads (relays commonly cap at 64-512 KiB)."""

_MAX_CREATED_AT = 2**53 - 1  # the largest integer JavaScript clients represent exactly
_MAX_KIND = 65535
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


def is_hex64(value: object) -> bool:
    """Whether ``value`` is 64 lowercase hex characters (a key or an id)."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def make_tags(tags: Iterable[Sequence[str]]) -> Tags:
    """Freeze a list of tag lists into the tuple form events carry.

    Raises:
        MalformedEvent: when a tag is empty or holds a value that is not a string.
    """
    if isinstance(tags, str | bytes):
        raise MalformedEvent("tags must be an array of arrays of strings")
    frozen: list[tuple[str, ...]] = []
    for tag in tags:
        if not isinstance(tag, list | tuple) or not tag:
            raise MalformedEvent("each tag must be a non-empty array of strings")
        try:
            joined = "".join(tag)  # one pass: every value a string, and all of them Unicode
        except TypeError:
            raise MalformedEvent("tag values must be strings") from None
        _check_unicode(joined)
        frozen.append(tuple(tag))
    return tuple(frozen)


def _check_unicode(text: str) -> None:
    """Refuse a lone surrogate: such a string has no UTF-8 form and so no event id."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedEvent("a string in the event is not valid Unicode") from None


def _check_int(name: str, value: object, maximum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise MalformedEvent(f"{name} must be an integer from 0 to {maximum}")


def _check_body(pubkey: object, created_at: object, kind: object, content: object) -> None:
    if not is_hex64(pubkey):
        raise MalformedEvent("pubkey must be 64 lowercase hex characters")
    _check_int("created_at", created_at, _MAX_CREATED_AT)
    _check_int("kind", kind, _MAX_KIND)
    if not isinstance(content, str):
        raise MalformedEvent("content must be a string")
    _check_unicode(content)


@dataclass(frozen=True, slots=True)
class Event:
    """A signed nostr event; always well-formed, authentic only after :func:`verify_event`."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str
    sig: str

    def __post_init__(self) -> None:
        if not is_hex64(self.id):
            raise MalformedEvent("id must be 64 lowercase hex characters")
        if not isinstance(self.sig, str) or _HEX128.fullmatch(self.sig) is None:
            raise MalformedEvent("sig must be 128 lowercase hex characters")
        _check_body(self.pubkey, self.created_at, self.kind, self.content)
        object.__setattr__(self, "tags", make_tags(self.tags))

    def to_dict(self) -> dict[str, Any]:
        """The event as the JSON object of NIP-01 (tags as lists)."""
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
            "sig": self.sig,
        }

    def to_json(self) -> str:
        """Compact JSON of the event, as sent to relays and embedded in zap receipts."""
        return orjson.dumps(self.to_dict()).decode()

    def tag_values(self, name: str) -> list[str]:
        """The first value of every tag called ``name`` (a tag without a value gives "")."""
        return [tag[1] if len(tag) > 1 else "" for tag in self.tags if tag[0] == name]


@dataclass(frozen=True, slots=True)
class UnsignedEvent:
    """An event with an id but no signature: a NIP-59 rumor."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: Tags
    content: str

    def __post_init__(self) -> None:
        if not is_hex64(self.id):
            raise MalformedEvent("id must be 64 lowercase hex characters")
        _check_body(self.pubkey, self.created_at, self.kind, self.content)
        object.__setattr__(self, "tags", make_tags(self.tags))

    def to_dict(self) -> dict[str, Any]:
        """The rumor as a JSON object (no ``sig``)."""
        return {
            "id": self.id,
            "pubkey": self.pubkey,
            "created_at": self.created_at,
            "kind": self.kind,
            "tags": [list(tag) for tag in self.tags],
            "content": self.content,
        }

    def to_json(self) -> str:
        """Compact JSON of the rumor."""
        return orjson.dumps(self.to_dict()).decode()

    def tag_values(self, name: str) -> list[str]:
        """The first value of every tag called ``name``."""
        return [tag[1] if len(tag) > 1 else "" for tag in self.tags if tag[0] == name]


@dataclass(frozen=True, slots=True)
class EventTemplate:
    """What a builder returns before a key signs it: everything but pubkey, id and sig."""

    kind: int
    tags: Tags
    content: str
    created_at: int

    def __post_init__(self) -> None:
        try:
            _check_int("created_at", self.created_at, _MAX_CREATED_AT)
            _check_int("kind", self.kind, _MAX_KIND)
            if not isinstance(self.content, str):
                raise MalformedEvent("content must be a string")
            object.__setattr__(self, "tags", make_tags(self.tags))
        except MalformedEvent as exc:
            raise BuildError(f"invalid event template: {exc.reason}") from exc


def serialize(pubkey: str, created_at: int, kind: int, tags: Tags, content: str) -> bytes:
    """The NIP-01 serialisation whose sha256 is the event id.

    Raises:
        MalformedEvent: when a string is not valid Unicode (a lone surrogate).
    """
    try:
        return orjson.dumps((0, pubkey, created_at, kind, tags, content))
    except TypeError as exc:  # orjson refuses str with surrogates, and non-JSON types
        raise MalformedEvent("event contains a string that is not valid UTF-8") from exc


def compute_id(pubkey: str, created_at: int, kind: int, tags: Tags, content: str) -> str:
    """The event id: lowercase hex sha256 of :func:`serialize`."""
    return hashlib.sha256(serialize(pubkey, created_at, kind, tags, content)).hexdigest()


@lru_cache(maxsize=8192)
def _xonly(pubkey: str) -> PublicKeyXOnly:
    return PublicKeyXOnly(bytes.fromhex(pubkey))


def schnorr_verify(pubkey: str, message: bytes, signature: bytes) -> bool:
    """BIP-340 verification of ``signature`` over ``message`` by x-only ``pubkey`` (hex).

    Returns False (never raises) for a pubkey that is not a curve point or a signature that
    is not 64 bytes.
    """
    if not is_hex64(pubkey) or len(signature) != 64:
        return False
    try:
        key = _xonly(pubkey)
    except ValueError:
        return False
    return bool(key.verify(signature, message))


def schnorr_sign(secret_key: bytes, message: bytes, aux_rand: bytes | None = None) -> bytes:
    """BIP-340 signature of a 32-byte message (nostr only ever signs event ids).

    Args:
        secret_key: 32 bytes.
        message: 32 bytes.
        aux_rand: 32 bytes of auxiliary randomness; fresh random bytes when None.

    Raises:
        BuildError: wrong sizes or a secret key out of range.
    """
    if len(message) != 32:
        raise BuildError("nostr signs 32-byte messages")
    if aux_rand is None:
        aux_rand = os.urandom(32)
    elif len(aux_rand) != 32:
        raise BuildError("aux_rand must be 32 bytes")
    signature: bytes = _private_key(secret_key).sign_schnorr(message, aux_rand)
    return signature


def verify_event(event: Event) -> None:
    """Check that ``event.id`` is its hash and ``event.sig`` a valid BIP-340 signature over it.

    Args:
        event: a well-formed event (any :class:`Event` is).

    Raises:
        MalformedEvent: a string in the event is not valid Unicode.
        EventIdMismatch: the id is not the hash of the serialised event.
        BadSignature: the pubkey is not a curve point or the signature does not verify.
    """
    digest = hashlib.sha256(
        serialize(event.pubkey, event.created_at, event.kind, event.tags, event.content)
    ).digest()
    if digest.hex() != event.id:
        raise EventIdMismatch("event id does not match its content")
    try:
        key = _xonly(event.pubkey)
    except ValueError as exc:
        raise BadSignature("event pubkey is not a valid public key") from exc
    if not key.verify(bytes.fromhex(event.sig), digest):
        raise BadSignature("event signature is invalid")


def _private_key(secret_key: bytes) -> PrivateKey:
    if not isinstance(secret_key, bytes) or len(secret_key) != 32:
        raise BuildError("a secret key is 32 bytes")
    try:
        return PrivateKey(secret_key)
    except ValueError as exc:
        raise BuildError("secret key is out of range") from exc


def sign_event(
    secret_key: bytes,
    kind: int,
    tags: Iterable[Sequence[str]],
    content: str,
    created_at: int,
    *,
    aux_rand: bytes | None = None,
) -> Event:
    """Build and sign an event with BIP-340 Schnorr.

    Args:
        secret_key: the 32-byte secret key.
        kind: the event kind, 0..65535.
        tags: tags as sequences of strings.
        content: the content string.
        created_at: unix seconds.
        aux_rand: the 32 bytes of BIP-340 auxiliary randomness; fresh random bytes when None.
            Pass fixed bytes only for reproducible tests.

    Returns:
        The signed event.

    Raises:
        BuildError: a field is invalid (bad key, kind out of range, lone surrogate, ...).
    """
    key = _private_key(secret_key)
    pubkey = key.public_key_xonly.format().hex()
    try:
        frozen = make_tags(tags)
        _check_body(pubkey, created_at, kind, content)
        digest = hashlib.sha256(serialize(pubkey, created_at, kind, frozen, content)).digest()
    except MalformedEvent as exc:
        raise BuildError(f"cannot sign: {exc.reason}") from exc
    if aux_rand is None:
        aux_rand = os.urandom(32)
    elif len(aux_rand) != 32:
        raise BuildError("aux_rand must be 32 bytes")
    sig: bytes = key.sign_schnorr(digest, aux_rand)
    return Event(digest.hex(), pubkey, created_at, kind, frozen, content, sig.hex())


def sign_template(
    secret_key: bytes, template: EventTemplate, *, aux_rand: bytes | None = None
) -> Event:
    """Sign a builder's :class:`EventTemplate` (see :func:`sign_event`)."""
    return sign_event(
        secret_key,
        template.kind,
        template.tags,
        template.content,
        template.created_at,
        aux_rand=aux_rand,
    )


def make_unsigned(
    pubkey: str, kind: int, tags: Iterable[Sequence[str]], content: str, created_at: int
) -> UnsignedEvent:
    """Build a rumor (an event with its id but without signature).

    Raises:
        BuildError: a field is invalid.
    """
    try:
        frozen = make_tags(tags)
        _check_body(pubkey, created_at, kind, content)
        event_id = compute_id(pubkey, created_at, kind, frozen, content)
    except MalformedEvent as exc:
        raise BuildError(f"cannot build rumor: {exc.reason}") from exc
    return UnsignedEvent(event_id, pubkey, created_at, kind, frozen, content)


def _load_object(data: bytes | str | Mapping[str, Any], max_bytes: int) -> Mapping[str, Any]:
    if isinstance(data, Mapping):
        return data
    if not isinstance(data, bytes | bytearray | memoryview | str):
        raise MalformedEvent("an event must be a JSON object")
    if len(data) > max_bytes:
        raise MalformedEvent(f"event is larger than {max_bytes} bytes")
    try:
        loaded = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise MalformedEvent("event is not valid JSON") from exc
    if not isinstance(loaded, dict):
        raise MalformedEvent("an event must be a JSON object")
    return loaded


def _field(obj: Mapping[str, Any], name: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise MalformedEvent(f"event has no {name!r} field") from None


def _tags_field(obj: Mapping[str, Any]) -> Any:
    tags = _field(obj, "tags")
    if not isinstance(tags, list | tuple):
        raise MalformedEvent("tags must be an array of arrays of strings")
    return tags  # frozen and checked by the constructor


def parse_event(
    data: bytes | str | Mapping[str, Any],
    *,
    verify: bool = True,
    max_bytes: int = MAX_EVENT_BYTES,
) -> Event:
    """Parse a signed event from JSON (bytes or str) or from an already decoded object.

    Unknown fields are ignored (NIP-01 lets later NIPs add fields); known fields are checked
    strictly: no floats for integers, no uppercase hex, no missing ``sig``.

    Args:
        data: the JSON text or the decoded object.
        verify: also check id and signature (default); False only checks the structure.
        max_bytes: refuse JSON text longer than this.

    Returns:
        The event.

    Raises:
        InvalidEvent: the only exception type raised for any input (its subclasses
            MalformedEvent, EventIdMismatch or BadSignature).
    """
    obj = _load_object(data, max_bytes)
    event = Event(
        _field(obj, "id"),
        _field(obj, "pubkey"),
        _field(obj, "created_at"),
        _field(obj, "kind"),
        _tags_field(obj),
        _field(obj, "content"),
        _field(obj, "sig"),
    )
    if verify:
        verify_event(event)
    return event


def parse_unsigned_event(
    data: bytes | str | Mapping[str, Any], *, max_bytes: int = MAX_EVENT_BYTES
) -> UnsignedEvent:
    """Parse a rumor; its ``id`` must be present and match its content.

    A ``sig`` field, if any, is ignored: a rumor is deniable by design and nothing here
    trusts it.

    Raises:
        InvalidEvent: MalformedEvent or EventIdMismatch.
    """
    obj = _load_object(data, max_bytes)
    rumor = UnsignedEvent(
        _field(obj, "id"),
        _field(obj, "pubkey"),
        _field(obj, "created_at"),
        _field(obj, "kind"),
        _tags_field(obj),
        _field(obj, "content"),
    )
    expected = compute_id(rumor.pubkey, rumor.created_at, rumor.kind, rumor.tags, rumor.content)
    if expected != rumor.id:
        raise EventIdMismatch("rumor id does not match its content")
    return rumor


def expiration(event: Event | UnsignedEvent) -> int | None:
    """The NIP-40 ``expiration`` timestamp, or None when absent or not a number."""
    for value in event.tag_values("expiration"):
        if value.isascii() and value.isdigit():
            return int(value)
    return None


def is_expired(event: Event | UnsignedEvent, now: int) -> bool:
    """Whether a NIP-40 expiration is present and at or before ``now``."""
    expires = expiration(event)
    return expires is not None and expires <= now
