"""The pure nostr core of Strom's agents: no I/O, no event loop, no clock.

Modules, by capability:

* :mod:`~strom_nostr.event` - NIP-01 events: serialisation, id, sign, verify, strict parsing.
* :mod:`~strom_nostr.keys` - key generation and NIP-19 bech32 (npub, nsec, note, nprofile,
  nevent, naddr).
* :mod:`~strom_nostr.nip44`, :mod:`~strom_nostr.nip04` - encrypted payloads.
* :mod:`~strom_nostr.dm` - NIP-04 and NIP-17 (NIP-59 seal and gift wrap) direct messages.
* :mod:`~strom_nostr.commands` - the DM command language of drivers and operators.
* :mod:`~strom_nostr.zap_request`, :mod:`~strom_nostr.zap_receipt` - NIP-57 zap request
  validation, and zap receipts built and checked (errors in :mod:`~strom_nostr.zap_errors`).
* :mod:`~strom_nostr.discovery` - profile, relay lists and the charger status event.
* :mod:`~strom_nostr.geohash` - geohash cells for ``g`` tags.

This package must not import asyncio, network or database libraries, nor nostr-sdk (a test
enforces it); ``agent.nostr_sdk_adapter`` is the one place nostr-sdk is used.
"""

from __future__ import annotations

from strom_nostr.errors import (
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
from strom_nostr.event import (
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
from strom_nostr.keys import generate_secret_key, parse_public_key, public_key_hex

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
