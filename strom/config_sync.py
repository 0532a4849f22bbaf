"""A change of a charger's configuration made at one process of a cluster, in force at all.

Theory of operation. The profiles live in one folder every process of a cluster mounts, the
operators' run-time tariff changes (``price`` by DM, the REST API) in the shared database
(:class:`~strom_services.tariffs.TariffBook`). Each process keeps both in memory, so a change
made at one process must be told to the others:

* the process that made it publishes ``<origin> NUL <JSON>`` on the bus topic
  ``config-changed``, the JSON being ``{"charger": id, "what": "profile" | "tariff"}``
  (:meth:`ConfigSync.note`; never blocks, a queue feeds the bus);
* every other process re-reads that charger's profile file with the loader the start uses
  (:func:`strom.config.load_profile`), applies it as the API does (``Strom.apply_profile``) if
  it differs from the one in force, and reads the tariff changes back from the database
  (:meth:`~strom_services.tariffs.TariffBook.reload`). Applying never publishes: no echo;
  the event of this process's own origin is dropped.

The bus keeps nothing (:mod:`strom_core.ports.cluster`): an event published while a process
was cut off is lost for it. So every :data:`RECHECK_S` seconds each process also looks at the
folder — the files' modification times and sizes, read again only when they changed — and
reads the tariff changes back: a missed event leaves a process on an old price for at most
that long. The look is cheap (one ``stat`` per file and one small query) and works the same
with either bus; it also picks up a profile file edited by hand (with no restart).

A charger removed from the folder is not removed at run time (as with one process: restart).
One process (no cluster) builds none of this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from strom.config import load_profile
from strom_core.config import ProfileConfig
from strom_core.errors import BusError, ConfigError, StorageError
from strom_core.ids import is_charger_id
from strom_core.ports.cluster import Bus
from strom_services.tariffs import TariffBook

__all__ = ["RECHECK_S", "TOPIC", "ConfigSync"]

log = logging.getLogger(__name__)

TOPIC = "config-changed"
RECHECK_S = 10.0  # the longest a missed event leaves a process on an old profile or price
QUEUE_SIZE = 1024  # changes waiting to be published; beyond, dropped (the recheck catches up)
WHATS = ("profile", "tariff")

Applier = Callable[[ProfileConfig], Awaitable[None]]
Fingerprint = tuple[int, int]  # a profile file's modification time (ns) and size


class ConfigSync:
    """Tells the other processes of the changes made here, and applies theirs.

    Args:
        bus: the cluster's bus.
        origin: this process's id.
        folder: the profiles' folder (``paths.profiles``), shared by every process.
        in_force: the profile in force here for a charger id, or None.
        apply: applies a profile here (``Strom.apply_profile``), without publishing it.
        tariffs: the tariff book, read back from the database on a change.
        tariff_reloaded: told each charger whose run-time tariff another process changed.
        recheck_s: seconds between two looks at the folder and the tariff changes.
    """

    def __init__(
        self,
        bus: Bus,
        origin: str,
        folder: Path,
        *,
        in_force: Callable[[str], ProfileConfig | None],
        apply: Applier,
        tariffs: TariffBook,
        tariff_reloaded: Callable[[str], None],
        recheck_s: float = RECHECK_S,
    ) -> None:
        self.bus = bus
        self.origin = origin
        self._origin = origin.encode()
        self.folder = folder
        self._in_force = in_force
        self._apply = apply
        self.tariffs = tariffs
        self._tariff_reloaded = tariff_reloaded
        self.recheck_s = recheck_s
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self._seen: dict[str, Fingerprint] = {}
        self._lock = asyncio.Lock()  # one application at a time: events and rechecks
        self.applied = 0  # profiles applied from other processes' changes (tests, logs)
        tariffs.on_set(lambda charger_id: self.note(charger_id, "tariff"))

    def note(self, charger_id: str, what: str) -> None:
        """Queue the news of a change made here for the other processes (never blocks)."""
        body = orjson.dumps({"charger": charger_id, "what": what})
        try:
            self._outgoing.put_nowait(self._origin + b"\0" + body)
        except asyncio.QueueFull:
            log.warning("config-changed: bus too slow; %s of %s not told", what, charger_id)

    async def run(self) -> None:
        """Publish, receive and recheck until cancelled."""
        subscription = await self.bus.subscribe(TOPIC)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._publish(), name="config-publish")
                group.create_task(self._recheck_loop(), name="config-recheck")
                async for envelope in subscription:
                    await self._receive(envelope)
        finally:
            await subscription.aclose()

    async def _publish(self) -> None:
        while True:
            envelope = await self._outgoing.get()
            try:
                await self.bus.publish(TOPIC, envelope)
            except BusError as exc:  # the others catch up at their next recheck
                log.warning("config-changed: not published: %s", exc)

    async def _receive(self, envelope: bytes) -> None:
        origin, _, body = envelope.partition(b"\0")
        if origin == self._origin:
            return  # in force here already
        try:
            event = orjson.loads(body)
            charger_id, what = event["charger"], event["what"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("config-changed: malformed event dropped")
            return
        if not isinstance(charger_id, str) or not is_charger_id(charger_id) or what not in WHATS:
            log.warning("config-changed: malformed event dropped")
            return
        async with self._lock:
            if what == "profile":
                await self._reread(self.folder / f"{charger_id}.toml")
            await self._reload_tariffs()

    async def recheck(self) -> None:
        """Apply the profile files changed since the last look, and the tariff changes."""
        async with self._lock:
            for path, fingerprint in self._fingerprints().items():
                if self._seen.get(path.stem) != fingerprint:
                    await self._reread(path)
            await self._reload_tariffs()

    def _fingerprints(self) -> dict[Path, Fingerprint]:
        """Each profile file's modification time and size (a ``stat`` each)."""
        found: dict[Path, Fingerprint] = {}
        try:
            paths = sorted(self.folder.glob("*.toml"))
        except OSError as exc:
            log.warning("config-changed: %s not read: %s", self.folder, exc)
            return found
        for path in paths:
            try:
                status = path.stat()
            except OSError:
                continue  # replaced or removed meanwhile: the next look sees it
            found[path] = (status.st_mtime_ns, status.st_size)
        return found

    async def _recheck_loop(self) -> None:
        while True:
            await self.recheck()
            await asyncio.sleep(self.recheck_s)

    async def _reread(self, path: Path) -> None:
        """Read one profile file and apply it if it differs from the profile in force."""
        try:
            fingerprint, profile = _read(path)
        except (OSError, ConfigError) as exc:
            log.warning("config-changed: %s not applied: %s", path.name, exc)
            return
        self._seen[path.stem] = fingerprint
        if self._in_force(profile.id) == profile:
            return
        try:
            await self._apply(profile)
        except (ConfigError, StorageError) as exc:
            log.warning("config-changed: charger %s not applied: %s", profile.id, exc)
            return
        self.applied += 1
        log.info("config-changed: charger %s: profile changed elsewhere, applied", profile.id)

    async def _reload_tariffs(self) -> None:
        try:
            changed = await self.tariffs.reload()
        except StorageError as exc:
            log.warning("config-changed: tariff changes not read: %s", exc)
            return
        for charger_id in changed:
            self._tariff_reloaded(charger_id)


def _read(path: Path) -> tuple[Fingerprint, ProfileConfig]:
    """A profile file's fingerprint (taken first: a newer write is read again) and profile."""
    status = path.stat()
    return (status.st_mtime_ns, status.st_size), load_profile(path)
