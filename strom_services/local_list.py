"""The operator's cards on the chargers' local authorization lists, kept in step after each boot.

Theory of operation
-------------------
After every accepted BootNotification (:class:`~strom_core.ports.ChargerBooted`) the service
asks the charger for its list version and, when its list is not the charger's cards as Strom
knows them, sends it; in a task of its own, never on the charger's connection. One charger's
pushes run one after the other.

Which version? Strom remembers, per charger, the version and the idTags of the last list the
charger *accepted*. The next version is always the charger's own plus one, so it is newer than
what the charger holds whatever happened in between, and no number has to be stored: a stable
number derived from the cards (a hash) would not grow, and a charger refuses a differential
update that is not newer than its list. What Strom remembers lives in memory only, on purpose:
after a restart of Strom it does not know what a charger's version holds and sends the full
list once, a few dozen idTags at most; nothing on the disk can drift from what the chargers
have.

* The charger's version is the one Strom remembers and the cards did not change: nothing.
* The charger's version is the one Strom remembers and the cards changed: a *differential*
  update, the new cards accepted and the removed ones without a status (the charger drops
  them); but a *full* update when it would not be shorter than the whole list.
* Any other version (Strom does not know what the charger holds, or it lost its list): a
  *full* update. A charger at version 0 (empty) without cards to hold is in step already.
* A differential update refused with ``VersionMismatch`` is sent again as a full one.
* A charger that answers ``NotSupported`` (or has its list disabled), ``Failed``, or does not
  answer: logged; Strom forgets what it knew of that charger's list, so the next boot sends it
  in full.

When do the cards change? When the profiles in force are replaced (the operator's cards saved
through the API, a profile applied while Strom runs): :meth:`LocalListService.watch` listens to
the :class:`~strom_core.config.LiveConfig` and syncs at once every charger whose cards differ
from the profiles before, by the same rules (so a connected charger that holds the old list
gets a differential update). :meth:`LocalListService.synced` waits for that sync, so the
caller who saved the cards can say what the charger answered. A charger that is not
connected is answered ``OFFLINE`` and gets its list at its next boot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any

from strom_core.cards import Card, tag_key
from strom_core.config import LiveConfig, StromConfig
from strom_core.ports import ChargerBooted, CommandResult, CommandStatus, OcppEvent
from strom_core.ports.local_list import ListEntry, ListUpdate, LocalAuthList

__all__ = ["LocalListService", "SyncOutcome", "profile_cards"]

log = logging.getLogger(__name__)


def profile_cards(live: LiveConfig) -> Callable[[str], list[Card]]:
    """The cards of a charger's profile in force (none for a charger without one)."""

    def cards_of(charger_id: str) -> list[Card]:
        try:
            return [card.to_card() for card in live.current.profile(charger_id).cards]
        except KeyError:
            return []

    return cards_of


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one sync did: the update sent (None: none was needed or possible) and its result."""

    result: CommandResult
    update: ListUpdate | None = None
    version: int | None = None


@dataclass(frozen=True, slots=True)
class _Held:
    version: int
    tags: dict[str, str]  # tag_key -> idTag as written


class LocalListService:
    """Keeps each charger's local authorization list equal to its cards.

    Args:
        cards_of: a charger's cards (see :func:`profile_cards`).
        lists: the chargers' local lists.
    """

    def __init__(self, cards_of: Callable[[str], Iterable[Card]], lists: LocalAuthList) -> None:
        self._cards_of = cards_of
        self._lists = lists
        self._held: dict[str, _Held] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seen: dict[str, dict[str, str]] = {}
        self._changed: dict[str, asyncio.Task[SyncOutcome]] = {}

    def _spawn(self, work: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def watch(self, live: LiveConfig) -> None:
        """Sync a charger at once whenever the profiles in force change its cards."""
        self._seen = _cards_by_charger(live.current)
        live.on_change(self._config_changed)

    def _config_changed(self, config: StromConfig) -> None:
        cards = _cards_by_charger(config)
        changed = [cid for cid, wanted in cards.items() if wanted != self._seen.get(cid, {})]
        self._seen = cards
        for charger_id in cards.keys() - set(changed):
            self._changed.pop(charger_id, None)  # this change left its cards as they were
        for charger_id in changed:
            try:
                task = asyncio.ensure_future(self.sync(charger_id))
            except RuntimeError:  # no event loop runs (a configuration built offline)
                return
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._changed[charger_id] = task

    async def synced(self, charger_id: str) -> SyncOutcome | None:
        """The outcome of the sync the latest replacement of the profiles started for it.

        None when that replacement left the charger's cards as they were.
        """
        task = self._changed.get(charger_id)
        if task is None:
            return None
        return await asyncio.shield(task)

    async def on_event(self, event: OcppEvent) -> None:
        """A :class:`CoreEventSink` subscriber: a booted charger gets its list in step."""
        if isinstance(event, ChargerBooted):
            self._spawn(self.sync(event.charger_id))

    async def settled(self) -> None:
        """Wait for the syncs under way (for shutdown and tests)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def sync(self, charger_id: str) -> SyncOutcome:
        """Bring the charger's list in step with its cards (see the module docstring)."""
        lock = self._locks.setdefault(charger_id, asyncio.Lock())
        async with lock:
            outcome = await self._sync(charger_id)
        log.info(
            "cp_id=%s: local list %s version %s: %s %s",
            charger_id,
            outcome.update or "unchanged",
            outcome.version,
            outcome.result.status,
            outcome.result.detail,
        )
        return outcome

    async def _sync(self, charger_id: str) -> SyncOutcome:
        wanted = {tag_key(card.id_tag): card.id_tag for card in self._cards_of(charger_id)}
        asked = await self._lists.local_list_version(charger_id)
        if asked.version is None:
            self._held.pop(charger_id, None)
            return SyncOutcome(asked.result)
        held = self._held.get(charger_id)
        if held is None and asked.version == 0 and not wanted:
            held = _Held(0, {})
        if held is not None and held.version == asked.version:
            if held.tags == wanted:
                return SyncOutcome(CommandResult(CommandStatus.ACCEPTED), None, asked.version)
            changes = _differences(held.tags, wanted)
            if len(changes) < len(wanted):
                outcome = await self._send(
                    charger_id, asked.version + 1, ListUpdate.DIFFERENTIAL, changes, wanted
                )
                if outcome.result.detail != "VersionMismatch":
                    return outcome
        full = [ListEntry(tag) for tag in wanted.values()]
        return await self._send(charger_id, asked.version + 1, ListUpdate.FULL, full, wanted)

    async def _send(
        self,
        charger_id: str,
        version: int,
        update: ListUpdate,
        entries: list[ListEntry],
        wanted: dict[str, str],
    ) -> SyncOutcome:
        result = await self._lists.send_local_list(charger_id, version, update, entries)
        if result.accepted:
            self._held[charger_id] = _Held(version, wanted)
        else:
            self._held.pop(charger_id, None)
        return SyncOutcome(result, update, version)


def _cards_by_charger(config: StromConfig) -> dict[str, dict[str, str]]:
    """Each charger's cards as compared: tag_key -> idTag as written."""
    return {
        profile.id: {tag_key(card.id_tag): card.id_tag for card in profile.cards}
        for profile in config.profiles
    }


def _differences(held: dict[str, str], wanted: dict[str, str]) -> list[ListEntry]:
    """The entries of a differential update from ``held`` to ``wanted``: added, then removed."""
    added = [ListEntry(tag) for key, tag in wanted.items() if key not in held]
    removed = [ListEntry(tag, accepted=False) for key, tag in held.items() if key not in wanted]
    return added + removed
