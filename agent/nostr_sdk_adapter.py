"""The one module that calls nostr-sdk (Python bindings, pinned to 0.45.1).

nostr-sdk changes its Python API between minor versions, so every call lives here and speaks
Strom's own types (:class:`~strom_nostr.event.Event`, ``bytes`` secret keys, hex public keys)
on the outside. Its exceptions become Strom's nostr errors here and never leak.

What it is used for:

* handing events to nostr-sdk's client and in-process relay, and reading theirs back
  (:func:`to_sdk_event`, :func:`from_sdk_event`);
* the one shared relay client of the agents (:class:`SdkClient`) and the in-process relay
  (:class:`SdkLocalRelay`), used by :mod:`agent.relays`;
* its NIP-04, NIP-44 and NIP-59/NIP-17 implementations, a second implementation next to the
  pure ones in :mod:`strom_nostr` that the tests hold against each other and against
  nostr-tools. The pure ones are the defaults because nostr-sdk draws nonces, keys and
  timestamps itself, so its output cannot be checked against the official vectors.
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib.metadata
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import nostr_sdk
import orjson

from strom_core.errors import ConfigError, RelayError, StromError
from strom_nostr.errors import (
    BuildError,
    DecryptionError,
    DmError,
    InvalidEvent,
    InvalidKey,
)
from strom_nostr.event import Event, UnsignedEvent, parse_event, parse_unsigned_event

_UNSETTLED = frozenset({"initialized", "pending", "connecting"})
"""Relay states of a connection not tried yet or under way."""

__all__ = [
    "NOSTR_SDK_VERSION",
    "SdkAuthChallenge",
    "SdkClient",
    "SdkIncoming",
    "SdkLocalRelay",
    "SdkNotification",
    "SdkSendOutput",
    "SdkShutdown",
    "check_version",
    "from_sdk_event",
    "from_sdk_unsigned",
    "normalize_relay_url",
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


def _copy_strings_in_one_move() -> None:
    """Workaround for a slow spot of the generated bindings of nostr-sdk 0.45.1.

    What breaks: their ``_UniffiRustBufferBuilder.write`` copies every string handed to Rust
    one byte at a time in a Python loop, about 0.2 ms for one event's JSON, which made that
    copy the largest single cost of publishing (a status event is ~1 KB). Why this is safe: the
    replacement reserves the same room through the same ``_reserve`` and copies the same bytes
    with one ``memmove``; nothing else changes. It is applied only to the pinned version.
    """
    if importlib.metadata.version("nostr-sdk") != NOSTR_SDK_VERSION:
        return
    builder = nostr_sdk.nostr_sdk._UniffiRustBufferBuilder

    def write(self: Any, value: bytes) -> None:
        size = len(value)
        if not size:
            return
        with self._reserve(size):
            target = ctypes.addressof(self.rbuf.data.contents) + self.rbuf.len
            ctypes.memmove(target, value, size)

    builder.write = write


_copy_strings_in_one_move()


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


# --- client and in-process relay --------------------------------------------------------------
#
# One ``SdkClient`` serves every agent of a process (a nostr-sdk Client costs about 1.3 MB).
# Agents sign their events themselves; the client only carries signed events, so it needs no
# signer, except the pool key that answers NIP-42 AUTH challenges.


@dataclass(frozen=True, slots=True)
class SdkIncoming:
    """An event a relay sent for one of our subscriptions (first sighting only), as JSON text."""

    relay_url: str
    event_json: str


@dataclass(frozen=True, slots=True)
class SdkAuthChallenge:
    """A relay asked for NIP-42 authentication (the client's authenticator answers it)."""

    relay_url: str
    challenge: str


@dataclass(frozen=True, slots=True)
class SdkShutdown:
    """The client was shut down; no more notifications will come."""


SdkNotification = SdkIncoming | SdkAuthChallenge | SdkShutdown


@dataclass(frozen=True, slots=True)
class SdkSendOutput:
    """Per-relay outcome of one send or subscribe."""

    ok: tuple[str, ...]
    failed: dict[str, str]


def _relay_url(url: str) -> Any:
    with _translated(ConfigError, f"not a relay URL: {url!r}"):
        return nostr_sdk.RelayUrl.parse(url)


def normalize_relay_url(url: str) -> str:
    """A relay URL as nostr-sdk writes it (the key of its per-relay results).

    Raises:
        ConfigError: not a ws:// or wss:// URL.
    """
    return str(_relay_url(url))


def _filters(filters: Sequence[Mapping[str, Any]]) -> list[Any]:
    with _translated(BuildError, "nostr-sdk refused a filter"):
        return [nostr_sdk.Filter.from_json(orjson.dumps(dict(f)).decode()) for f in filters]


class SdkLocalRelay:
    """nostr-sdk's in-process relay (memory-backed), bound to a loopback address.

    Args:
        host: the address to bind (127.0.0.1).
        port: the port; 0 picks a free one.
        max_subscriptions: REQs one connection may hold open (the pool opens one per 256 keys).
        events_per_minute: rate limit per connection; the pool publishes for many agents.
        require_auth: demand NIP-42 authentication before accepting events (for tests).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_subscriptions: int = 1024,
        events_per_minute: int = 10_000_000,
        require_auth: bool = False,
    ) -> None:
        builder = (
            nostr_sdk.LocalRelayBuilder()
            .addr(host)
            .rate_limit(
                nostr_sdk.RateLimit(max_reqs=max_subscriptions, notes_per_minute=events_per_minute)
            )
        )
        if port:
            builder = builder.port(port)
        if require_auth:
            mode = nostr_sdk.LocalRelayBuilderNip42Mode.WRITE
            builder = builder.nip42(nostr_sdk.LocalRelayBuilderNip42(mode=mode))
        self._relay = builder.build()
        self.url: str | None = None

    async def start(self) -> str:
        """Start serving; returns its ``ws://`` URL."""
        with _translated(RelayError, "the in-process relay did not start"):
            await self._relay.run()
            self.url = str(await self._relay.url())
        return self.url

    def shutdown(self) -> None:
        """Stop serving (idempotent)."""
        self._relay.shutdown()


class SdkClient:
    """A nostr-sdk ``Client`` carrying events signed elsewhere, to relays added by URL.

    Must be constructed inside the running event loop: when ``auth_secret`` is given, nostr-sdk
    calls the authenticator back from its own threads, which needs the loop registered with
    ``uniffi_set_event_loop``. That is a process-wide setting of the bindings, so at most one
    authenticating client may live at a time, and :meth:`shutdown` clears it again.

    Args:
        auth_secret: the key that signs NIP-42 AUTH events, or None to not authenticate.
        notification_buffer: notifications kept for a slow reader before the oldest are lost.
    """

    def __init__(
        self, *, auth_secret: bytes | None = None, notification_buffer: int = 65536
    ) -> None:
        builder = nostr_sdk.ClientBuilder().notification_channel_size(notification_buffer)
        self._registered_loop = auth_secret is not None
        if auth_secret is not None:
            nostr_sdk.uniffi_set_event_loop(asyncio.get_running_loop())
            builder = builder.authenticator(nostr_sdk.SignerAuthenticator(sdk_keys(auth_secret)))
        self._client = builder.build()
        self._notifications = self._client.notifications()

    async def add_relay(
        self, url: str, *, read: bool, write: bool, retry_interval_s: float = 10.0
    ) -> None:
        """Add a relay with read and/or write capability and connect to it in the background.

        nostr-sdk reconnects on its own, waiting ``retry_interval_s`` and stretching the wait
        while the relay keeps failing; subscriptions are sent again after each reconnect.

        Raises:
            ConfigError: not a relay URL.
        """
        caps = nostr_sdk.RelayCapabilities.none()
        if read:
            caps = caps.add(nostr_sdk.RelayCapabilities.read())
        if write:
            caps = caps.add(nostr_sdk.RelayCapabilities.write())
        opts = (
            nostr_sdk.RelayOptions()
            .reconnect(True)
            .retry_interval(timedelta(seconds=retry_interval_s))
            .adjust_retry_interval(True)
        )
        relay_url = _relay_url(url)
        with _translated(RelayError, f"cannot add relay {url}"):
            await self._client.add_relay(relay_url, capabilities=caps, opts=opts)
            await self._client.connect_relay(relay_url)

    async def remove_relay(self, url: str) -> None:
        """Disconnect from a relay and forget it."""
        with _translated(RelayError, f"cannot remove relay {url}"):
            await self._client.remove_relay(_relay_url(url), force=True)

    async def relay_states(self) -> dict[str, str]:
        """Each relay's connection state (``connected``, ``disconnected``, …)."""
        with _translated(RelayError, "cannot list relays"):
            relays = await self._client.relays()
        return {str(url): relay.status().name.lower() for url, relay in relays.items()}

    async def relay_connections(self) -> dict[str, int]:
        """How many times each relay has been connected so far (one more after each reconnect)."""
        with _translated(RelayError, "cannot list relays"):
            relays = await self._client.relays()
        return {str(url): int(relay.stats().success()) for url, relay in relays.items()}

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until every relay has been tried once (connected or failed), at most ``timeout_s``.

        ``try_connect`` alone returns at once for a relay whose connection is already under
        way (``connect`` was called before): the state is watched until it is settled.
        """
        deadline = time.monotonic() + timeout_s
        with _translated(RelayError, "cannot connect"):
            await self._client.try_connect(timedelta(seconds=timeout_s))
        while time.monotonic() < deadline:
            states = await self.relay_states()
            if not any(state in _UNSETTLED for state in states.values()):
                return
            await asyncio.sleep(0.02)

    async def send_event(
        self, event: Event, relays: Sequence[str], *, timeout_s: float
    ) -> SdkSendOutput:
        """Send a signed event to these relays and wait for their ``OK``.

        Raises:
            InvalidEvent: nostr-sdk refuses the event.
            RelayError: none of the relays is known to the client.
        """
        sdk_event = to_sdk_event(event)
        target = nostr_sdk.SendEventTarget.to([_relay_url(url) for url in relays])
        with _translated(RelayError, "cannot send"):
            output = await self._client.send_event(
                sdk_event, target=target, ok_timeout=timedelta(seconds=timeout_s)
            )
        return SdkSendOutput(
            tuple(str(url) for url in output.success),
            {str(url): str(reason) for url, reason in output.failed.items()},
        )

    async def subscribe(
        self, subscription_id: str, filters: Sequence[Mapping[str, Any]], relays: Sequence[str]
    ) -> SdkSendOutput:
        """Open (or replace) a subscription on these relays."""
        target = nostr_sdk.ReqTarget.manual({_relay_url(url): _filters(filters) for url in relays})
        with _translated(RelayError, "cannot subscribe"):
            output = await self._client.subscribe(target, id=subscription_id)
        return SdkSendOutput(
            tuple(str(url) for url in output.success),
            {str(url): str(reason) for url, reason in output.failed.items()},
        )

    async def unsubscribe(self, subscription_id: str) -> None:
        """Close a subscription everywhere."""
        with _translated(RelayError, "cannot unsubscribe"):
            await self._client.unsubscribe(subscription_id)

    async def fetch(
        self, filters: Sequence[Mapping[str, Any]], relays: Sequence[str], *, timeout_s: float
    ) -> list[str]:
        """Stored events matching the filters, as JSON texts (unverified: parse them)."""
        target = nostr_sdk.ReqTarget.manual({_relay_url(url): _filters(filters) for url in relays})
        with _translated(RelayError, "cannot fetch"):
            events = await self._client.fetch_events(target, timedelta(seconds=timeout_s))
        return [str(event.as_json()) for event in events]

    async def next_notification(self) -> SdkNotification | None:
        """The next notification worth acting on; None for one that is not (OK, EOSE, …)."""
        with _translated(RelayError, "notification stream failed"):
            note = await self._notifications.next()
        if note is None or isinstance(note, nostr_sdk.ClientNotification.SHUTDOWN):
            return SdkShutdown()
        if isinstance(note, nostr_sdk.ClientNotification.NEW_EVENT):
            return SdkIncoming(str(note.relay_url), str(note.event.as_json()))
        if isinstance(note, nostr_sdk.ClientNotification.MESSAGE):
            message = note.message.as_enum()
            if isinstance(message, nostr_sdk.RelayMessageEnum.AUTH):
                return SdkAuthChallenge(str(note.relay_url), str(message.challenge))
        return None

    async def shutdown(self) -> None:
        """Disconnect from every relay; the notification stream ends."""
        try:
            with _translated(RelayError, "cannot shut down"):
                await self._client.shutdown()
        finally:
            if self._registered_loop:
                nostr_sdk.uniffi_set_event_loop(None)
                self._registered_loop = False
