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

:class:`MapsSchedule` holds the decisions and takes the time from its caller, so a test can
run a charger's week in a loop.
"""

from __future__ import annotations

from collections import deque

from strom_nostr.event import EventTemplate

__all__ = ["DAY_S", "MapsSchedule", "content_key"]

DAY_S = 86_400


def content_key(template: EventTemplate) -> tuple[object, ...]:
    """What makes a listing new: kind, content and tags other than ``published_at``."""
    tags = tuple(tag for tag in template.tags if tag[0] != "published_at")
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
