"""The one module that calls nostr-sdk (Python bindings, pinned to 0.45.1).

nostr-sdk changes its Python API between minor versions, so every call lives here and speaks
Strom's own types (:class:`~agent.nostr.event.Event`, ``bytes`` secret keys, hex public keys)
on the outside. Its exceptions become Strom's nostr errors here and never leak.

What it is used for:

* handing events to nostr-sdk's client and in-process relay, and reading theirs back
  (:func:`to_sdk_event`, :func:`from_sdk_event`);
* its NIP-04, NIP-44 and NIP-59/NIP-17 implementations, a second implementation next to the
  pure ones in :mod:`agent.nostr` that the tests hold against each other and against
  nostr-tools. The pure ones are the defaults because nostr-sdk draws nonces, keys and
  timestamps itself, so its output cannot be checked against the official vectors.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import nostr_sdk

from agent.nostr.errors import (
    BuildError,
    DecryptionError,
    DmError,
    InvalidEvent,
    InvalidKey,
)
from agent.nostr.event import Event, UnsignedEvent, parse_event, parse_unsigned_event
from strom.errors import ConfigError, StromError

__all__ = [
    "NOSTR_SDK_VERSION",
    "check_version",
    "from_sdk_event",
    "from_sdk_unsigned",
    "sdk_gift_wrap",
    "sdk_keys",
    "sdk_nip04_decrypt",
    "sdk_nip04_encrypt",
    "sdk_nip44_decrypt",
    "sdk_nip44_encrypt",
    "sdk_private_message",
    "sdk_sign",
    "sdk_unwrap",
    "sdk_verify",
    "to_sdk_event",
    "to_sdk_unsigned",
]

NOSTR_SDK_VERSION = "0.45.1"


def check_version() -> None:
    """Fail early when another nostr-sdk than the one this adapter is written for is installed.

    Raises:
        ConfigError: the installed version differs from :data:`NOSTR_SDK_VERSION`.
    """
    installed = importlib.metadata.version("nostr-sdk")
    if installed != NOSTR_SDK_VERSION:
        raise ConfigError(
            f"nostr-sdk {installed} is installed; the adapter is written for {NOSTR_SDK_VERSION}"
        )


@contextmanager
def _translated(error: type[StromError], what: str) -> Iterator[None]:
    try:
        yield
    except nostr_sdk.NostrSdkError as exc:
        raise error(f"{what}: {exc}") from exc


def _secret(secret_key: bytes) -> Any:
    if not isinstance(secret_key, bytes) or len(secret_key) != 32:
        raise InvalidKey("a secret key is 32 bytes")
    with _translated(InvalidKey, "invalid secret key"):
        return nostr_sdk.SecretKey.from_bytes(secret_key)


def _public(pubkey: str) -> Any:
    with _translated(InvalidKey, "invalid public key"):
        return nostr_sdk.PublicKey.parse(pubkey)


def sdk_keys(secret_key: bytes) -> Any:
    """A ``nostr_sdk.Keys`` (also its ``NostrSigner``) for a 32-byte secret key."""
    return nostr_sdk.Keys(_secret(secret_key))


# --- events -----------------------------------------------------------------------------------


def to_sdk_event(event: Event) -> Any:
    """The same event as a ``nostr_sdk.Event`` (nostr-sdk re-checks id and signature).

    Raises:
        InvalidEvent: nostr-sdk refuses it.
    """
    with _translated(InvalidEvent, "nostr-sdk refused the event"):
        return nostr_sdk.Event.from_json(event.to_json())


def from_sdk_event(sdk_event: Any, *, verify: bool = True) -> Event:
    """A ``nostr_sdk.Event`` as Strom's :class:`Event`, checked by our own parser."""
    return parse_event(sdk_event.as_json(), verify=verify)


def to_sdk_unsigned(rumor: UnsignedEvent) -> Any:
    """A rumor as a ``nostr_sdk.UnsignedEvent``."""
    with _translated(InvalidEvent, "nostr-sdk refused the rumor"):
        return nostr_sdk.UnsignedEvent.from_json(rumor.to_json())


def from_sdk_unsigned(sdk_rumor: Any) -> UnsignedEvent:
    """A ``nostr_sdk.UnsignedEvent`` as Strom's :class:`UnsignedEvent` (id recomputed)."""
    return parse_unsigned_event(sdk_rumor.as_json())


def sdk_sign(
    secret_key: bytes,
    kind: int,
    tags: Sequence[Sequence[str]],
    content: str,
    created_at: int,
) -> Event:
    """Build and sign an event with nostr-sdk's ``EventBuilder`` (its own aux randomness)."""
    with _translated(BuildError, "nostr-sdk cannot sign"):
        builder = (
            nostr_sdk.EventBuilder(nostr_sdk.Kind(kind), content)
            .tags([nostr_sdk.Tag.parse(list(tag)) for tag in tags])
            .custom_created_at(nostr_sdk.Timestamp.from_secs(created_at))
        )
        signed = builder.finalize(sdk_keys(secret_key))
    return from_sdk_event(signed)


def sdk_verify(event: Event) -> bool:
    """Whether nostr-sdk accepts the event's id and signature."""
    try:
        return bool(to_sdk_event(event).verify())
    except InvalidEvent:
        return False


# --- encryption -------------------------------------------------------------------------------


def sdk_nip04_encrypt(secret_key: bytes, pubkey: str, plaintext: str) -> str:
    """NIP-04 encryption by nostr-sdk (random iv)."""
    with _translated(BuildError, "nostr-sdk NIP-04 encryption failed"):
        return str(nostr_sdk.nip04_encrypt(_secret(secret_key), _public(pubkey), plaintext))


def sdk_nip04_decrypt(secret_key: bytes, pubkey: str, payload: str) -> str:
    """NIP-04 decryption by nostr-sdk.

    Raises:
        DecryptionError: the payload does not decrypt.
    """
    with _translated(DecryptionError, "nostr-sdk NIP-04 decryption failed"):
        return str(nostr_sdk.nip04_decrypt(_secret(secret_key), _public(pubkey), payload))


def sdk_nip44_encrypt(secret_key: bytes, pubkey: str, plaintext: str) -> str:
    """NIP-44 v2 encryption by nostr-sdk (random nonce; at most 65535 bytes)."""
    with _translated(BuildError, "nostr-sdk NIP-44 encryption failed"):
        return str(
            nostr_sdk.nip44_encrypt(
                _secret(secret_key), _public(pubkey), plaintext, nostr_sdk.Nip44Version.V2
            )
        )


def sdk_nip44_decrypt(secret_key: bytes, pubkey: str, payload: str) -> str:
    """NIP-44 decryption by nostr-sdk.

    Raises:
        DecryptionError: the payload does not decrypt.
    """
    with _translated(DecryptionError, "nostr-sdk NIP-44 decryption failed"):
        return str(nostr_sdk.nip44_decrypt(_secret(secret_key), _public(pubkey), payload))


# --- NIP-59 / NIP-17 --------------------------------------------------------------------------


def sdk_gift_wrap(secret_key: bytes, recipient: str, rumor: UnsignedEvent) -> Event:
    """Seal and gift-wrap a rumor with nostr-sdk (its own random key and timestamps)."""
    with _translated(BuildError, "nostr-sdk gift wrap failed"):
        wrap = nostr_sdk.nip59_make_gift_wrap(
            sdk_keys(secret_key), _public(recipient), to_sdk_unsigned(rumor)
        )
    return from_sdk_event(wrap)


def sdk_private_message(secret_key: bytes, recipient: str, text: str) -> Event:
    """A NIP-17 DM (kind-14 rumor, sealed and wrapped) made entirely by nostr-sdk."""
    with _translated(BuildError, "nostr-sdk private message failed"):
        wrap = nostr_sdk.nip17_make_private_msg(sdk_keys(secret_key), _public(recipient), text)
    return from_sdk_event(wrap)


def sdk_unwrap(secret_key: bytes, wrap: Event) -> tuple[str, UnsignedEvent]:
    """Open a gift wrap with nostr-sdk; returns ``(sender pubkey, rumor)``.

    Raises:
        DmError: nostr-sdk cannot open it.
    """
    with _translated(DmError, "nostr-sdk cannot unwrap"):
        opened = nostr_sdk.UnwrappedGift.from_gift_wrap(sdk_keys(secret_key), to_sdk_event(wrap))
        sender, rumor = opened.sender().to_hex(), from_sdk_unsigned(opened.rumor())
    if sender != rumor.pubkey:
        raise DmError("rumor author is not the seal's signer (impersonation attempt)")
    return str(sender), rumor
