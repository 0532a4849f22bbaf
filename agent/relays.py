"""The relay pool: one shared nostr-sdk client carrying every agent's events.

Theory of operation
-------------------
* **One client for all agents.** A nostr-sdk ``Client`` costs about 1.3 MB, so a process that
  runs 10,000 chargers has exactly one. Agents sign their own events with their own keys
  (:class:`agent.identity.AgentKey`); the pool only carries signed events. The pool's own key
  (``keys/_pool.key``) answers NIP-42 ``AUTH`` challenges, which nostr-sdk does by itself.
* **Relays** come from ``relay_config`` (read and/or write). ``url = "embedded"`` starts
  nostr-sdk's in-process relay on 127.0.0.1 (a free port unless one is given). nostr-sdk
  reconnects to a relay that drops, waiting longer while it keeps failing, and re-sends the
  subscriptions after each reconnect — though not always: after a reconnect within a few
  milliseconds (a relay restarted at once) it was seen connected with no subscription, deaf
  to every zap and DM. So :meth:`RelayPool.follow_reconnects` sends the inbox subscriptions
  to each read relay that connected again (a repeated REQ is harmless: claimed event ids
  make repeats no-ops). A relay may also come back empty (restarted without storage), so it
  reports each reconnect of a write relay and the agents publish their status and profile
  again.
* **Publishing** fans out to the write relays, plus any extra relays named for one event (a
  zap request's ``relays``, a driver's DM inbox). An extra relay is refused when its host is,
  or resolves to, a private or loopback address (a payer must not make Strom connect inside
  the operator's network), unless allowed. Every publish returns a :class:`PublishResult`
  with the relays that acknowledged and those that failed, with reasons; one relay failing is
  not an error.
* **Receiving**: :meth:`RelayPool.watch` subscribes to zap receipts (9735), NIP-04 DMs (4) and
  gift wraps (1059) whose ``p`` is one of the agents' keys, 256 keys per subscription (relays
  cap filter sizes). :meth:`RelayPool.run` reads the client's notifications, parses and
  verifies each event (id recomputed, signature checked) and hands it on; nostr-sdk reports
  each event once however many relays send it, and never reports events this client sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.nostr_sdk_adapter import (
    SdkAuthChallenge,
    SdkClient,
    SdkIncoming,
    SdkLocalRelay,
    SdkShutdown,
    normalize_relay_url,
)
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import RelayConfig
from strom_core.errors import ConfigError, RelayError
from strom_core.ports.agents import PublishResult
from strom_nostr.dm import GIFT_WRAP_KIND, NIP04_DM_KIND, TWO_DAYS_S
from strom_nostr.errors import InvalidEvent
from strom_nostr.event import Event, parse_event
from strom_nostr.zap_receipt import ZAP_RECEIPT_KIND

__all__ = ["EMBEDDED", "Inbound", "PublishResult", "RelayPool"]

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
EMBEDDED_EVENTS_PER_MINUTE = 4000
"""Pace of publishing to the embedded relay: nostr-sdk's relay closes a connection that sends
more messages a minute than it allows (about 6,000 here, not configurable in its bindings)."""
_CHUNK = 256


class _Pacer:
    """A token bucket: at most ``per_minute`` events a minute, in bursts of up to that many."""

    def __init__(self, per_minute: int, clock: Clock) -> None:
        self._rate = per_minute / 60.0
        self._capacity = float(per_minute)
        self._tokens = float(per_minute)
        self._clock = clock
        self._last = clock.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            now = self._clock.monotonic()
            self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
            self._last = now
            if self._tokens < 1:
                await asyncio.sleep((1 - self._tokens) / self._rate)
                self._tokens = 1.0
                self._last = self._clock.monotonic()
            self._tokens -= 1


@dataclass(frozen=True, slots=True)
class Inbound:
    """A verified event from a relay, for one of the agents."""

    relay_url: str
    event: Event


def _is_private_address(text: str) -> bool:
    address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_reserved
        or address.is_multicast
    )


def _private_name(host: str) -> bool:
    return host in ("", "localhost") or host.endswith((".localhost", ".local", ".internal"))


async def _resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Host name and port to the addresses it resolves to (injectable for tests)."""


async def _private_host_reason(url: str, resolve: Resolver, timeout_s: float) -> str | None:
    """Why ``url`` must not be connected to (it is on a private network), or None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").strip("[]").rstrip(".").lower()
    if _private_name(host):
        return "refused: private or loopback address"
    try:
        return "refused: private or loopback address" if _is_private_address(host) else None
    except ValueError:
        pass  # a DNS name: where does it point?
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        async with asyncio.timeout(timeout_s):
            addresses = await resolve(host, port)
    except (OSError, TimeoutError, ValueError) as exc:
        return f"refused: cannot resolve {host}: {exc or type(exc).__name__}"
    if not addresses:
        return f"refused: {host} resolves to no address"
    if any(_is_private_address(address) for address in addresses):
        return "refused: resolves to a private or loopback address"
    return None


ClientFactory = Callable[[bytes | None], SdkClient]


def _default_client(auth_secret: bytes | None) -> SdkClient:
    return SdkClient(auth_secret=auth_secret)


class RelayPool:
    """The relays of every agent of this process, over one nostr-sdk client.

    Args:
        relays: the configured relays (``url = "embedded"`` for the in-process relay).
        auth_secret: the key that answers NIP-42 AUTH (the pool key), or None.
        embedded_host: where the in-process relay listens.
        embedded_port: its port; 0 picks a free one.
        publish_timeout_s: how long to wait for each relay's ``OK``.
        max_concurrent_publishes: events in flight at once (a start-up of thousands of agents
            publishes thousands of events).
        allow_private_relays: accept extra relays on private or loopback addresses (tests,
            a LAN deployment).
        max_extra_relays: extra relays kept connected; the least recently used is dropped.
        lookback_s: how far back subscriptions ask for stored events.
        retry_interval_s: first wait before reconnecting to a relay that dropped.
        reconnect_check_s: how often :meth:`follow_reconnects` looks for relays that
            connected again.
        max_events_per_minute: publish at most this many events a minute (relays close
            connections that send faster than they allow); None for no limit, which with an
            embedded relay means :data:`EMBEDDED_EVENTS_PER_MINUTE`.
        client_factory: builds the nostr-sdk client (for tests).
        clock: the clock (unix time for subscriptions, monotonic time for pacing).
        resolve: looks up the addresses of an extra relay's host name (for tests).
        resolve_timeout_s: how long that lookup may take before the relay is refused.
    """

    def __init__(
        self,
        relays: Sequence[RelayConfig],
        *,
        auth_secret: bytes | None = None,
        embedded_host: str = "127.0.0.1",
        embedded_port: int = 0,
        publish_timeout_s: float = 10.0,
        max_concurrent_publishes: int = 64,
        allow_private_relays: bool = False,
        max_extra_relays: int = 64,
        lookback_s: int = 3600,
        retry_interval_s: float = 10.0,
        reconnect_check_s: float = 5.0,
        max_events_per_minute: int | None = None,
        client_factory: ClientFactory = _default_client,
        clock: Clock = SYSTEM_CLOCK,
        resolve: Resolver = _resolve,
        resolve_timeout_s: float = 3.0,
    ) -> None:
        if not relays:
            raise RelayError("no relay configured")
        self._configured = tuple(relays)
        self._auth_secret = auth_secret
        self._embedded_host = embedded_host
        self._embedded_port = embedded_port
        self._timeout_s = publish_timeout_s
        self._publishing = asyncio.Semaphore(max_concurrent_publishes)
        self._allow_private = allow_private_relays
        self._max_extra = max_extra_relays
        self._lookback_s = lookback_s
        self._retry_s = retry_interval_s
        self._reconnect_check_s = reconnect_check_s
        if max_events_per_minute is None and any(r.url == EMBEDDED for r in relays):
            max_events_per_minute = EMBEDDED_EVENTS_PER_MINUTE
        self._pacer = (
            None if max_events_per_minute is None else _Pacer(max_events_per_minute, clock)
        )
        self._client_factory = client_factory
        self._clock = clock
        self._resolve = resolve
        self._resolve_timeout_s = resolve_timeout_s
        self._client: SdkClient | None = None
        self._embedded: SdkLocalRelay | None = None
        self._read: tuple[str, ...] = ()
        self._write: tuple[str, ...] = ()
        self._extra: OrderedDict[str, None] = OrderedDict()
        self._extra_lock = asyncio.Lock()
        self._subscriptions: set[str] = set()
        self._watched: tuple[str, ...] = ()
        self._watch_lock = asyncio.Lock()
        self.embedded_url: str | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the embedded relay if configured, add every relay and start connecting.

        Raises:
            RelayError: the embedded relay does not start.
            ConfigError: a relay URL is invalid.
        """
        self._client = self._client_factory(self._auth_secret)
        read: list[str] = []
        write: list[str] = []
        for relay in self._configured:
            url = relay.url
            url = await self._start_embedded() if url == EMBEDDED else normalize_relay_url(url)
            await self._client.add_relay(
                url, read=relay.read, write=relay.write, retry_interval_s=self._retry_s
            )
            if relay.read:
                read.append(url)
            if relay.write:
                write.append(url)
        self._read = tuple(dict.fromkeys(read))
        self._write = tuple(dict.fromkeys(write))
        log.info("relay pool: read %s, write %s", ", ".join(self._read), ", ".join(self._write))

    async def _start_embedded(self) -> str:
        if self._embedded is None:
            self._embedded = SdkLocalRelay(self._embedded_host, self._embedded_port)
            self.embedded_url = normalize_relay_url(await self._embedded.start())
            log.info("embedded relay listening on %s", self.embedded_url)
        assert self.embedded_url is not None
        return self.embedded_url

    async def wait_connected(self, timeout_s: float = 5.0) -> None:
        """Wait until each relay has been tried once."""
        await self._require().wait_connected(timeout_s)

    async def stop(self) -> None:
        """Disconnect from every relay and stop the embedded relay (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            await client.shutdown()
        if self._embedded is not None:
            self._embedded.shutdown()
            self._embedded = None

    def _require(self) -> SdkClient:
        if self._client is None:
            raise RelayError("the relay pool is not started")
        return self._client

    @property
    def read_relays(self) -> tuple[str, ...]:
        """Relays the agents read from (the embedded one by its ``ws://`` URL)."""
        return self._read

    @property
    def write_relays(self) -> tuple[str, ...]:
        """Relays the agents publish to."""
        return self._write

    async def states(self) -> dict[str, str]:
        """Each relay's connection state, for health pages."""
        return await self._require().relay_states()

    async def follow_reconnects(self, on_reconnect: Callable[[str], None]) -> None:
        """Look after relays that connect again, until cancelled.

        A read relay that connected again gets the inbox subscriptions anew (nostr-sdk may
        not have re-sent them). For a write relay ``on_reconnect(url)`` is called: it may have
        lost every event (restarted without storage), and nothing else would put the agents'
        status and profile back on it before their next refresh (half an hour, a day). The
        first connection of a relay is not reported: the agents publish at their start, and
        retry what failed.
        """
        client = self._require()
        seen: dict[str, int] = {}
        while True:
            try:
                counts = await client.relay_connections()
            except RelayError as exc:
                log.warning("cannot read the relays' connection counts: %s", exc)
                counts = {}
            for url in dict.fromkeys((*self._read, *self._write)):
                count = counts.get(url, 0)
                # Above 1 is a reconnect, even when the first connection and the reconnect
                # both fell between two looks (0 -> 2).
                if count > max(seen.get(url, 0), 1):
                    log.info("relay %s connected again", url)
                    if url in self._read:
                        await self._resubscribe(url)
                    if url in self._write:
                        on_reconnect(url)
                seen[url] = max(count, seen.get(url, 0))
            await asyncio.sleep(self._reconnect_check_s)

    async def _resubscribe(self, url: str) -> None:
        async with self._watch_lock:
            if not self._subscriptions:
                return
            try:
                await self._subscribe(self._watched)
            except RelayError as exc:
                log.warning("relay %s: cannot subscribe again: %s", url, exc)

    # --- publishing ------------------------------------------------------------------------

    async def publish(
        self, event: Event, *, extra_relays: Collection[str] = (), only: bool = False
    ) -> PublishResult:
        """Send a signed event to the write relays (and ``extra_relays``).

        Args:
            event: the signed event.
            extra_relays: more relays for this event (a zap request's, a driver's inbox).
            only: send to ``extra_relays`` alone, not to the write relays.

        Returns:
            Per-relay results; refused extra relays appear in ``failed``.
        """
        return await self.publish_built(lambda: event, extra_relays=extra_relays, only=only)

    async def publish_built(
        self,
        build: Callable[[], Event],
        *,
        extra_relays: Collection[str] = (),
        only: bool = False,
    ) -> PublishResult:
        """Like :meth:`publish`, but sign the event only once a publishing slot is free.

        Thousands of agents starting at once would otherwise all sign first and leave the
        event loop no time to take the relays' answers, which then time out.
        """
        client = self._require()
        targets, refused = await self._targets(client, extra_relays, only=only)
        async with self._publishing:
            if self._pacer is not None:
                await self._pacer.take()
            event = build()
            if not targets:
                result = PublishResult(event.id, {}, refused or {"": "no relay to publish to"})
                self._log(event, result)
                return result
            try:
                output = await client.send_event(event, targets, timeout_s=self._timeout_s)
            except RelayError as exc:
                output_ok: tuple[str, ...] = ()
                failed = {url: str(exc) for url in targets}
            else:
                output_ok, failed = output.ok, dict(output.failed)
        ok = dict.fromkeys(output_ok, "ok")
        for url, reason in list(failed.items()):
            if reason.startswith("duplicate:"):  # the relay has it already: that is success
                ok[url] = reason
                del failed[url]
        result = PublishResult(event.id, ok, {**failed, **refused})
        self._log(event, result)
        return result

    async def _targets(
        self, client: SdkClient, extra_relays: Collection[str], *, only: bool
    ) -> tuple[list[str], dict[str, str]]:
        """The relays to send to, and the extra relays refused (with the reason)."""
        refused: dict[str, str] = {}
        targets = [] if only else list(self._write)
        for given in extra_relays:
            try:
                url = normalize_relay_url(given)
            except ConfigError:
                refused[given] = "refused: not a relay URL"
                continue
            if url in targets:
                continue
            reason = await self._admit_extra(client, url)
            if reason is None:
                targets.append(url)
            else:
                refused[url] = reason
        return targets, refused

    @staticmethod
    def _log(event: Event, result: PublishResult) -> None:
        if result.failed:
            log.warning(
                "event %s (kind %s by %s): accepted by %d relay(s), failed on %s",
                event.id,
                event.kind,
                event.pubkey[:12],
                len(result.ok),
                "; ".join(f"{url or '-'}: {why}" for url, why in result.failed.items()),
            )
        else:
            log.debug("event %s (kind %s) accepted by %s", event.id, event.kind, list(result.ok))

    async def _admit_extra(self, client: SdkClient, url: str) -> str | None:
        """Connect an extra relay (write only); returns why it is refused, or None."""
        if url in self._read or url in self._write:
            return None
        if not self._allow_private:
            refused = await _private_host_reason(url, self._resolve, self._resolve_timeout_s)
            if refused is not None:
                return refused
        async with self._extra_lock:
            if url in self._extra:
                self._extra.move_to_end(url)
                return None
            try:
                await client.add_relay(url, read=False, write=True, retry_interval_s=self._retry_s)
            except (RelayError, ValueError) as exc:
                return f"refused: {exc}"
            self._extra[url] = None
            while len(self._extra) > self._max_extra:
                oldest, _ = self._extra.popitem(last=False)
                await client.remove_relay(oldest)
        return None

    # --- receiving -------------------------------------------------------------------------

    def inbox_filters(self, pubkeys: Sequence[str]) -> list[dict[str, Any]]:
        """The filters of one inbox subscription for these agent keys."""
        since = int(self._clock.unix()) - self._lookback_s
        return [
            {"kinds": [NIP04_DM_KIND, ZAP_RECEIPT_KIND], "#p": list(pubkeys), "since": since},
            # Gift wraps carry a created_at up to two days in the past (NIP-59).
            {"kinds": [GIFT_WRAP_KIND], "#p": list(pubkeys), "since": since - TWO_DAYS_S},
        ]

    async def watch(self, pubkeys: Collection[str]) -> None:
        """Subscribe the read relays to events addressed to these keys (replaces the last set).

        Raises:
            RelayError: no read relay is configured.
        """
        if not self._read:
            raise RelayError("no read relay configured: agents cannot receive zaps or DMs")
        async with self._watch_lock:
            await self._subscribe(tuple(sorted(pubkeys)))

    async def _subscribe(self, ordered: tuple[str, ...]) -> None:
        client = self._require()
        wanted: set[str] = set()
        for index in range(0, len(ordered), _CHUNK):
            subscription_id = f"strom-inbox-{index // _CHUNK}"
            wanted.add(subscription_id)
            if subscription_id in self._subscriptions:
                # The client refuses a known id: close it, then open it with the new keys (the
                # filters look back, and claimed event ids make any repeat harmless).
                await client.unsubscribe(subscription_id)
            output = await client.subscribe(
                subscription_id, self.inbox_filters(ordered[index : index + _CHUNK]), self._read
            )
            if output.failed:
                log.warning("subscription %s failed on %s", subscription_id, output.failed)
        for stale in self._subscriptions - wanted:
            await client.unsubscribe(stale)
        self._subscriptions = wanted
        self._watched = ordered
        log.info("watching %d key(s) on %d relay(s)", len(ordered), len(self._read))

    async def fetch(
        self,
        filters: Sequence[Mapping[str, Any]],
        *,
        relays: Sequence[str] | None = None,
        timeout_s: float = 3.0,
    ) -> list[Event]:
        """Stored events matching ``filters`` from the read relays (verified; bad ones dropped)."""
        texts = await self._require().fetch(filters, relays or self._read, timeout_s=timeout_s)
        events = []
        for text in texts:
            try:
                events.append(parse_event(text))
            except InvalidEvent as exc:
                log.info("dropped an invalid stored event: %s", exc.reason)
        return events

    async def run(self, deliver: Callable[[Inbound], Awaitable[None]]) -> None:
        """Read notifications until the client shuts down; deliver each verified event.

        Events that fail verification are dropped (logged at INFO: they come from strangers).
        """
        client = self._require()
        while True:
            note = await client.next_notification()
            if note is None:
                continue
            if isinstance(note, SdkShutdown):
                return
            if isinstance(note, SdkAuthChallenge):
                log.info("relay %s asked for authentication", note.relay_url)
                continue
            assert isinstance(note, SdkIncoming)
            try:
                event = parse_event(note.event_json)
            except InvalidEvent as exc:
                log.info("dropped an invalid event from %s: %s", note.relay_url, exc.reason)
                continue
            await deliver(Inbound(note.relay_url, event))
