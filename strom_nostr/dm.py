"""Direct messages: NIP-04 (kind 4) and NIP-17 (kind-14 rumor, NIP-59 seal and gift wrap).

Theory of operation: drivers and operators write in whichever scheme their client speaks, and
the agent answers in the same one (:attr:`IncomingDm.scheme`). Sending NIP-17 takes three
layers: the unsigned kind-14 *rumor* carries the text; the *seal* (kind 13, signed by the
charger, NIP-44 to the recipient) hides it; the *gift wrap* (kind 1059, signed by a one-time
key, NIP-44 to the recipient, ``p``-tagged) hides who talks to whom. Seal and wrap timestamps
are drawn up to two days into the past so ``created_at`` leaks nothing; the rumor keeps the
real time.

Opening checks, in order: the outer signature (before any decryption, as NIP-44 demands), the
seal's signature, and that the rumor's author is the seal's signer (otherwise anyone could
impersonate anyone). Every source of randomness is a parameter, so tests are byte-exact.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from strom_nostr import nip04, nip44
from strom_nostr.errors import BuildError, DmError, InvalidEvent, InvalidKey, NostrRemoteError
from strom_nostr.event import (
    Event,
    UnsignedEvent,
    make_unsigned,
    parse_event,
    parse_unsigned_event,
    sign_event,
    verify_event,
)
from strom_nostr.keys import generate_secret_key, public_key_hex

__all__ = [
    "CHAT_MESSAGE_KIND",
    "EPHEMERAL_GIFT_WRAP_KIND",
    "GIFT_WRAP_KIND",
    "NIP04_DM_KIND",
    "SEAL_KIND",
    "DmScheme",
    "IncomingDm",
    "Unwrapped",
    "chat_rumor",
    "gift_wrap",
    "nip04_message",
    "open_dm",
    "seal",
    "unwrap",
    "wrap_message",
]

NIP04_DM_KIND = 4
SEAL_KIND = 13
CHAT_MESSAGE_KIND = 14
GIFT_WRAP_KIND = 1059
EPHEMERAL_GIFT_WRAP_KIND = 21059
TWO_DAYS_S = 2 * 24 * 3600

RandomBytes = Callable[[int], bytes]


class DmScheme(StrEnum):
    """How a DM was (or is to be) sent."""

    NIP04 = "nip04"
    NIP17 = "nip17"


def _reply_tags(recipient: str, reply_to: str | None) -> list[list[str]]:
    tags = [["p", recipient]]
    if reply_to is not None:
        tags.append(["e", reply_to])
    return tags


def nip04_message(
    secret_key: bytes,
    recipient: str,
    text: str,
    *,
    created_at: int,
    reply_to: str | None = None,
    iv: bytes | None = None,
    aux_rand: bytes | None = None,
) -> Event:
    """A signed kind-4 DM (NIP-04).

    Args:
        secret_key: the sender's key.
        recipient: the recipient's public key (hex).
        text: the message.
        created_at: unix seconds.
        reply_to: id of the message answered, as an ``e`` tag.
        iv: AES iv, for tests only.
        aux_rand: BIP-340 randomness, for tests only.

    Returns:
        The event.
    """
    content = nip04.encrypt(secret_key, recipient, text, iv=iv)
    tags = _reply_tags(recipient, reply_to)
    return sign_event(secret_key, NIP04_DM_KIND, tags, content, created_at, aux_rand=aux_rand)


def chat_rumor(
    sender: str,
    recipient: str,
    text: str,
    *,
    created_at: int,
    reply_to: str | None = None,
) -> UnsignedEvent:
    """The unsigned kind-14 chat message of NIP-17."""
    return make_unsigned(
        sender, CHAT_MESSAGE_KIND, _reply_tags(recipient, reply_to), text, created_at
    )


def seal(
    secret_key: bytes,
    rumor: UnsignedEvent,
    recipient: str,
    *,
    created_at: int,
    nonce: bytes | None = None,
    aux_rand: bytes | None = None,
) -> Event:
    """Seal a rumor (kind 13): NIP-44 to ``recipient``, signed by the rumor's author.

    Raises:
        BuildError: ``secret_key`` is not the rumor author's key.
    """
    if public_key_hex(secret_key) != rumor.pubkey:
        raise BuildError("the seal must be signed by the rumor's author")
    content = nip44.encrypt(rumor.to_json(), nip44.conversation_key(secret_key, recipient), nonce)
    return sign_event(secret_key, SEAL_KIND, (), content, created_at, aux_rand=aux_rand)


def gift_wrap(
    sealed: Event,
    recipient: str,
    *,
    created_at: int,
    wrapper_key: bytes | None = None,
    nonce: bytes | None = None,
    aux_rand: bytes | None = None,
    kind: int = GIFT_WRAP_KIND,
    extra_tags: Sequence[Sequence[str]] = (),
) -> Event:
    """Wrap a seal (kind 1059, or 21059 for ephemeral) with a one-time key.

    Args:
        sealed: the seal.
        recipient: who can open it; gets the ``p`` tag.
        created_at: the wrap's (randomised) timestamp.
        wrapper_key: the one-time key; a fresh one when None (reuse breaks unlinkability).
        nonce: NIP-44 nonce, for tests only.
        aux_rand: BIP-340 randomness, for tests only.
        kind: 1059 or 21059.
        extra_tags: more routing tags (e.g. ``expiration``).

    Returns:
        The signed gift wrap.
    """
    key = wrapper_key if wrapper_key is not None else generate_secret_key()
    content = nip44.encrypt(sealed.to_json(), nip44.conversation_key(key, recipient), nonce)
    tags = [["p", recipient], *[list(tag) for tag in extra_tags]]
    return sign_event(key, kind, tags, content, created_at, aux_rand=aux_rand)


def _random_past(now: int, random_bytes: RandomBytes) -> int:
    return now - int.from_bytes(random_bytes(4), "big") % TWO_DAYS_S


def _one_time_key(random_bytes: RandomBytes) -> bytes:
    while True:
        candidate = random_bytes(32)
        try:
            public_key_hex(candidate)
        except InvalidKey:  # pragma: no cover - probability about 2**-128
            continue
        return candidate


def wrap_message(
    secret_key: bytes,
    recipient: str,
    text: str,
    *,
    now: int,
    reply_to: str | None = None,
    random_bytes: RandomBytes = os.urandom,
) -> Event:
    """A complete NIP-17 DM to ``recipient``: rumor, seal and gift wrap.

    Args:
        secret_key: the sender's key.
        recipient: the recipient's public key.
        text: the message.
        now: current unix time (the rumor's ``created_at``).
        reply_to: id of the rumor answered.
        random_bytes: the source of every random value (nonces, one-time key, timestamps).

    Returns:
        The gift wrap, to be published to the recipient's DM relays (kind 10050).
    """
    sender = public_key_hex(secret_key)
    rumor = chat_rumor(sender, recipient, text, created_at=now, reply_to=reply_to)
    sealed = seal(
        secret_key,
        rumor,
        recipient,
        created_at=_random_past(now, random_bytes),
        nonce=random_bytes(32),
        aux_rand=random_bytes(32),
    )
    return gift_wrap(
        sealed,
        recipient,
        created_at=_random_past(now, random_bytes),
        wrapper_key=_one_time_key(random_bytes),
        nonce=random_bytes(32),
        aux_rand=random_bytes(32),
    )


@dataclass(frozen=True, slots=True)
class Unwrapped:
    """The layers of an opened gift wrap; ``rumor.pubkey`` is the authenticated sender."""

    wrap: Event
    seal: Event
    rumor: UnsignedEvent

    @property
    def sender(self) -> str:
        """The real author (the seal's signer, equal to the rumor's pubkey)."""
        return self.rumor.pubkey


def _decrypt_inner(secret_key: bytes, outer: Event, what: str) -> str:
    try:
        return nip44.decrypt(outer.content, nip44.conversation_key(secret_key, outer.pubkey))
    except NostrRemoteError as exc:
        raise DmError(f"cannot decrypt {what}: {exc.reason}") from exc


def unwrap(secret_key: bytes, wrap: Event) -> Unwrapped:
    """Open a NIP-59 gift wrap addressed to us.

    Raises:
        DmError: not a gift wrap, bad signatures, undecryptable, or rumor author is not the
            seal's signer.
    """
    if wrap.kind not in (GIFT_WRAP_KIND, EPHEMERAL_GIFT_WRAP_KIND):
        raise DmError(f"expected a gift wrap, got kind {wrap.kind}")
    try:
        verify_event(wrap)
        sealed = parse_event(_decrypt_inner(secret_key, wrap, "gift wrap"))
    except InvalidEvent as exc:
        raise DmError(f"invalid gift wrap or seal: {exc.reason}") from exc
    if sealed.kind != SEAL_KIND:
        raise DmError(f"expected a seal inside the gift wrap, got kind {sealed.kind}")
    try:
        rumor = parse_unsigned_event(_decrypt_inner(secret_key, sealed, "seal"))
    except InvalidEvent as exc:
        raise DmError(f"invalid rumor: {exc.reason}") from exc
    if rumor.pubkey != sealed.pubkey:
        raise DmError("rumor author is not the seal's signer (impersonation attempt)")
    return Unwrapped(wrap, sealed, rumor)


@dataclass(frozen=True, slots=True)
class IncomingDm:
    """A received text DM, authenticated.

    Attributes:
        sender: the author's public key.
        text: the plaintext.
        scheme: answer in the same scheme.
        event_id: id of the event as received (kind 4 or the gift wrap): the replay key.
        message_id: id of the message itself (the kind-4 event or the rumor): use it for
            ``reply_to``.
        created_at: when the author wrote it (the rumor's time for NIP-17).
    """

    sender: str
    text: str
    scheme: DmScheme
    event_id: str
    message_id: str
    created_at: int


def _open_nip04(secret_key: bytes, own_pubkey: str, event: Event) -> IncomingDm:
    try:
        verify_event(event)
    except InvalidEvent as exc:
        raise DmError(f"invalid DM: {exc.reason}") from exc
    if own_pubkey not in event.tag_values("p"):
        raise DmError("DM is not addressed to this agent")
    try:
        text = nip04.decrypt(secret_key, event.pubkey, event.content)
    except NostrRemoteError as exc:
        raise DmError(f"cannot decrypt DM: {exc.reason}") from exc
    return IncomingDm(event.pubkey, text, DmScheme.NIP04, event.id, event.id, event.created_at)


def open_dm(secret_key: bytes, event: Event) -> IncomingDm:
    """Authenticate and decrypt a DM of either scheme sent to us.

    Args:
        secret_key: our key.
        event: a kind-4 event or a gift wrap holding a kind-14 rumor.

    Returns:
        The message.

    Raises:
        DmError: anything that makes the message untrustworthy or unreadable.
    """
    own_pubkey = public_key_hex(secret_key)
    if event.kind == NIP04_DM_KIND:
        return _open_nip04(secret_key, own_pubkey, event)
    opened = unwrap(secret_key, event)
    rumor = opened.rumor
    if rumor.kind != CHAT_MESSAGE_KIND:
        raise DmError(f"expected a kind-14 chat message, got kind {rumor.kind}")
    if own_pubkey not in rumor.tag_values("p"):
        raise DmError("chat message is not addressed to this agent")
    return IncomingDm(
        rumor.pubkey, rumor.content, DmScheme.NIP17, event.id, rumor.id, rumor.created_at
    )
