"""The pure nostr core of Strom's agents: no I/O, no event loop, no clock.

Modules, by capability:

* :mod:`~agent.nostr.event` - NIP-01 events: serialisation, id, sign, verify, strict parsing.
* :mod:`~agent.nostr.keys` - key generation and NIP-19 bech32 (npub, nsec, note, nprofile,
  nevent, naddr).
* :mod:`~agent.nostr.nip44`, :mod:`~agent.nostr.nip04` - encrypted payloads.
* :mod:`~agent.nostr.dm` - NIP-04 and NIP-17 (NIP-59 seal and gift wrap) direct messages.
* :mod:`~agent.nostr.commands` - the DM command language of drivers and operators.
* :mod:`~agent.nostr.zap` - NIP-57 zap request validation and zap receipts (errors in
  :mod:`~agent.nostr.zap_errors`).
* :mod:`~agent.nostr.discovery` - profile, relay lists and the charger status event.
* :mod:`~agent.nostr.geohash` - geohash cells for ``g`` tags.

This package must not import asyncio, network or database libraries, nor nostr-sdk (a test
enforces it); ``agent.nostr_sdk_adapter`` is the one place nostr-sdk is used.
"""

from __future__ import annotations

from agent.nostr.errors import (
    BadSignature,
    Bech32Error,
    BuildError,
    CommandError,
    CommandNotAllowed,
    DecryptionError,
    DmError,
    EventIdMismatch,
    InvalidEvent,
    InvalidKey,
    MalformedEvent,
    NostrRemoteError,
    UnknownCommand,
    UnsupportedEncryptionVersion,
)
from agent.nostr.event import (
    Event,
    EventTemplate,
    Tags,
    UnsignedEvent,
    compute_id,
    parse_event,
    serialize,
    sign_event,
    sign_template,
    verify_event,
)
from agent.nostr.keys import generate_secret_key, parse_public_key, public_key_hex

__all__ = [
    "BadSignature",
    "Bech32Error",
    "BuildError",
    "CommandError",
    "CommandNotAllowed",
    "DecryptionError",
    "DmError",
    "Event",
    "EventIdMismatch",
    "EventTemplate",
    "InvalidEvent",
    "InvalidKey",
    "MalformedEvent",
    "NostrRemoteError",
    "Tags",
    "UnknownCommand",
    "UnsignedEvent",
    "UnsupportedEncryptionVersion",
    "compute_id",
    "generate_secret_key",
    "parse_event",
    "parse_public_key",
    "public_key_hex",
    "serialize",
    "sign_event",
    "sign_template",
    "verify_event",
]
