"""When a charger's agent publishes the events that map and marketplace clients read.

Theory of operation
-------------------
Besides its status, each agent publishes a NIP-99 listing and the NIP-89 handler events of
:mod:`strom_nostr.maps`. All are addressable (a new version replaces the old one), but every
version is still an event a relay stores and forwards, so they are published only when needed:

* The listing follows the charger's name, place, prices, page and picture, not its
  availability (that is the status event's job). It is published when its *content* differs
  from the last version published (``created_at`` and ``published_at`` do not count), and
  again with the profile refresh (once a day, or when a relay came back and may have lost it).
* The handler events never change: they go out with the profile refresh.
* Whatever the reason, each charger publishes at most ``per_day`` listings and ``per_day``
  handler pairs in any 24 hours. A change over the budget is not lost: the newest content is
  published as soon as the budget allows (:meth:`MapsSchedule.next_due`).
* **The bound holds across restarts.** A new process knows nothing of what the last one
  published, so before its first publication an agent reads its own listing and handler
  events back from the relays (:meth:`MapsSchedule.recall`): an unchanged listing younger than
  a day is not published again, its ``published_at`` (NIP-99: the first publication) is kept,
  and what the relays hold counts against the day's budget. The relays are the record, as for
  any client: nothing is written to the database, and a relay that lost the events gets them
  again. :class:`MapsRecall` reads them for all chargers at once (one ``REQ`` per hundred
  keys), not one request per charger, so a start with a thousand chargers stays cheap.

:class:`MapsSchedule` holds the decisions and takes the time from its caller, so a test can
run a charger's week in a loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from strom_core.errors import RelayError
from strom_nostr.event import Event, EventTemplate
from strom_nostr.maps import HANDLER_INFO_KIND, HANDLER_RECOMMENDATION_KIND, LISTING_KIND

__all__ = ["DAY_S", "MapsRecall", "MapsSchedule", "content_key"]

log = logging.getLogger(__name__)

DAY_S = 86_400
MAPS_KINDS = (LISTING_KIND, HANDLER_INFO_KIND, HANDLER_RECOMMENDATION_KIND)


def content_key(template: EventTemplate | Event) -> tuple[object, ...]:
    """What makes a listing new: kind, content and tags other than ``published_at``."""
    tags = tuple(tuple(tag) for tag in template.tags if tag[0] != "published_at")
    return (template.kind, template.content, tags)


class _Window:
    """Times of publications in the last 24 hours, at most ``limit`` of them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.times: deque[float] = deque()

    def _forget(self, now: float) -> None:
        while self.times and self.times[0] <= now - DAY_S:
            self.times.popleft()

    def allows(self, now: float) -> bool:
        self._forget(now)
        return len(self.times) < self.limit

    def opens_at(self, now: float) -> float:
        self._forget(now)
        return now if len(self.times) < self.limit else self.times[0] + DAY_S

    def record(self, now: float) -> None:
        self.times.append(now)


class MapsSchedule:
    """Decides when one charger publishes its listing and its handler events.

    Args:
        per_day: at most this many listings, and this many handler pairs, per 24 hours.
        published_at: when the listing was first published (unix seconds), if known.
    """

    def __init__(self, *, per_day: int = 8, published_at: int = 0) -> None:
        if per_day < 1:
            raise ValueError("per_day must be at least 1")
        self._listings = _Window(per_day)
        self._handlers = _Window(per_day)
        self._last_key: tuple[object, ...] | None = None
        self._refresh = True  # a refresh is due: publish even an unchanged listing
        self._handlers_due = True
        self.published_at = published_at

    def recall(
        self, listing: EventTemplate | Event | None, handlers_at: int | None, now: float
    ) -> None:
        """Take what the relays hold from an earlier run, before the first publication.

        Args:
            listing: the newest version of this charger's listing on the relays, if any.
            handlers_at: when the handler pair on the relays was published, if both are there.
            now: the current time.
        """
        if listing is not None:
            first = next((tag[1] for tag in listing.tags if tag[0] == "published_at"), "")
            if first.isdigit() and not self.published_at:
                self.published_at = int(first)
            at = min(float(listing.created_at), now)
            if now - at < DAY_S and not self._listings.times:
                self._listings.record(at)
                self._last_key = content_key(listing)
                self._refresh = False
        if handlers_at is not None:
            at = min(float(handlers_at), now)
            if now - at < DAY_S and not self._handlers.times:
                self._handlers.record(at)
                self._handlers_due = False

    def first_published_at(self, now: float) -> int:
        """The listing's ``published_at``: its first publication (``now`` if none yet)."""
        if not self.published_at:
            self.published_at = int(now)
        return self.published_at

    def refresh(self) -> None:
        """Publish everything again at the next chance (profile refresh, relay came back)."""
        self._refresh = True
        self._handlers_due = True

    def listing_due(self, template: EventTemplate, now: float) -> bool:
        """Whether to publish this listing now: new content or a refresh, within the budget."""
        new = self._refresh or content_key(template) != self._last_key
        return new and self._listings.allows(now)

    def listing_published(self, template: EventTemplate, now: float) -> None:
        """Record a publication that relays accepted."""
        self._listings.record(now)
        self._last_key = content_key(template)
        self._refresh = False

    def handlers_due(self, now: float) -> bool:
        """Whether to publish the handler events now."""
        return self._handlers_due and self._handlers.allows(now)

    def handlers_published(self, now: float) -> None:
        """Record that the handler events were accepted."""
        self._handlers.record(now)
        self._handlers_due = False

    def next_due(self, template: EventTemplate, now: float) -> float:
        """When something held back by the budget can go out (``inf``: nothing is waiting)."""
        due = float("inf")
        if self._refresh or content_key(template) != self._last_key:
            due = self._listings.opens_at(now)
        if self._handlers_due:
            due = min(due, self._handlers.opens_at(now))
        return due


Fetch = Callable[[Sequence[Mapping[str, Any]]], Awaitable[list[Event]]]


class MapsRecall:
    """Reads the chargers' own listing and handler events back from the relays, in batches.

    Agents ask for their key (:meth:`get`); the keys asked for within ``batch_s`` go out
    together, ``max_authors`` per request. A failed or timed-out read answers "nothing known"
    (the agent then publishes, as a first start would).

    Args:
        fetch: reads stored events matching filters (:meth:`agent.relays.RelayPool.fetch`).
        batch_s: how long to gather keys before a request.
        max_authors: keys per request.
    """

    def __init__(self, fetch: Fetch, *, batch_s: float = 0.05, max_authors: int = 100) -> None:
        self._fetch = fetch
        self._batch_s = batch_s
        self._max_authors = max_authors
        self._waiting: dict[str, asyncio.Future[list[Event]]] = {}
        self._flush: asyncio.Task[None] | None = None

    def request(self, pubkey: str) -> asyncio.Future[list[Event]]:
        """Ask for the events of ``pubkey``; the future always gets a result (maybe empty)."""
        future = self._waiting.get(pubkey)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self._waiting[pubkey] = future
        if self._flush is None:
            self._flush = asyncio.create_task(self._send(), name="maps-recall")
        return future

    async def get(self, pubkey: str) -> list[Event]:
        """The listing and handler events of ``pubkey`` that the relays hold."""
        return await asyncio.shield(self.request(pubkey))

    async def _send(self) -> None:
        await asyncio.sleep(self._batch_s)
        waiting, self._waiting, self._flush = self._waiting, {}, None
        keys = list(waiting)
        try:
            for start in range(0, len(keys), self._max_authors):
                chunk = keys[start : start + self._max_authors]
                for key, events in (await self._read(chunk)).items():
                    if not waiting[key].done():
                        waiting[key].set_result(events)
        finally:  # cancelled at shutdown: nobody waits for ever
            for future in waiting.values():
                if not future.done():
                    future.set_result([])

    async def _read(self, keys: list[str]) -> dict[str, list[Event]]:
        found: dict[str, list[Event]] = {key: [] for key in keys}
        try:
            events = await self._fetch([{"kinds": list(MAPS_KINDS), "authors": keys}])
        except RelayError as exc:
            log.info("could not read %d charger listing(s) back: %s", len(keys), exc)
            return found
        for event in events:
            if event.pubkey in found and event.kind in MAPS_KINDS:
                found[event.pubkey].append(event)
        return found
