"""Errors of the nostr core, split by fault like the rest of Strom.

Everything a peer can get wrong (an event, a bech32 string, a ciphertext, a zap request, a DM
command) is a :class:`~strom_core.errors.RemoteProtocolError` subclass carrying a short human
``reason`` that is safe to show to that peer (it never contains secrets). Mistakes in what we
ask the core to build (an empty DM, a template with a lone surrogate) are
:class:`~strom_core.errors.LocalProtocolError`.
"""

from __future__ import annotations

from strom_core.errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "BadSignature",
    "Bech32Error",
    "BuildError",
    "CommandError",
    "CommandNotAllowed",
    "DecryptionError",
    "DmError",
    "EventIdMismatch",
    "InvalidEvent",
    "InvalidKey",
    "MalformedEvent",
    "NostrRemoteError",
    "UnknownCommand",
    "UnsupportedEncryptionVersion",
]


class NostrRemoteError(RemoteProtocolError):
    """Base of the nostr errors caused by a peer; ``reason`` is a short human sentence."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidEvent(NostrRemoteError):
    """An event that must not be accepted."""


class MalformedEvent(InvalidEvent):
    """Not an event: bad JSON, a missing field, a wrong type, bad hex, a lone surrogate."""


class EventIdMismatch(InvalidEvent):
    """The ``id`` is not sha256 of the event's NIP-01 serialisation."""


class BadSignature(InvalidEvent):
    """The BIP-340 signature does not verify for ``pubkey`` over ``id``."""


class Bech32Error(NostrRemoteError):
    """A NIP-19 string that cannot be decoded (checksum, prefix, length, TLV)."""


class InvalidKey(NostrRemoteError):
    """A public key that is not a curve point, or a secret key outside ``[1, n-1]``."""


class DecryptionError(NostrRemoteError):
    """A NIP-04 or NIP-44 payload that cannot be decrypted (format, MAC, padding)."""


class UnsupportedEncryptionVersion(DecryptionError):
    """A NIP-44 payload of a version other than 2 (or the ``#`` non-base64 flag)."""


class DmError(NostrRemoteError):
    """A direct message that cannot be opened (wrong kind, bad seal, forged sender)."""


class CommandError(NostrRemoteError):
    """A DM command that cannot be parsed; ``reason`` says what would have been right."""


class UnknownCommand(CommandError):
    """The first word is no command we know."""


class CommandNotAllowed(CommandError):
    """An operator command sent by someone who is not an operator."""


class BuildError(LocalProtocolError):
    """We asked the core to build something the protocol does not allow."""
