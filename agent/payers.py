"""Who paid for a session on which charger, known in memory: sorting a DM costs no query.

During a flood of DMs every one of them must be sorted (admin, payer, stranger) before it is
dropped, so the check must cost next to nothing: a database read per DM would cost more than
decrypting it. The payers are read from the database — the sessions of the last
``memory_s`` that were paid for by a zap — and then kept current with one small query (new or
changed sessions since the last one) at most every ``refresh_s``, when a DM comes from a key
not known yet. A full reload once a day forgets payers of long ago (they are strangers again,
answered within the strangers' budget). The database stays the only source of truth: other
processes' sessions are found by the same query.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from strom_core.clock import Clock
from strom_storage.agents import payers_since
from strom_storage.db import Database

__all__ = ["Payers"]

_CLOCK_SLACK = timedelta(seconds=60)  # another process's clock may be this far behind ours


class Payers:
    """The payers of each charger's sessions, read from the database.

    Args:
        db: the database.
        clock: the clock (wall time for the database, monotonic time between reads).
        refresh_s: the least time between two reads of new sessions.
        memory_s: payers of sessions last changed longer ago than this are forgotten.
        reload_s: how often the whole set is read again (to forget old payers).
    """

    def __init__(
        self,
        db: Database,
        clock: Clock,
        *,
        refresh_s: float = 2.0,
        memory_s: float = 30 * 86_400,
        reload_s: float = 86_400,
    ) -> None:
        self._db = db
        self._clock = clock
        self._refresh_s = refresh_s
        self._memory_s = memory_s
        self._reload_s = reload_s
        self._known: dict[str, set[str]] = {}
        self._seen_until: datetime | None = None  # newest updated_at read so far
        self._read_at = float("-inf")
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def paid(self, charger_id: str, pubkey: str) -> bool:
        """Whether ``pubkey`` paid for a session on this charger (recently enough)."""
        if pubkey in self._known.get(charger_id, ()):
            return True
        if self._clock.monotonic() - self._read_at < self._refresh_s:
            return False
        await self._read()
        return pubkey in self._known.get(charger_id, ())

    async def _read(self) -> None:
        async with self._lock:
            now = self._clock.monotonic()
            if now - self._read_at < self._refresh_s:
                return  # another DM read them meanwhile
            if now - self._loaded_at >= self._reload_s:
                self._known, self._seen_until, self._loaded_at = {}, None, now
            if self._seen_until is None:
                since = self._clock.now() - timedelta(seconds=self._memory_s)
            else:
                since = self._seen_until - _CLOCK_SLACK
            for charger_id, pubkey, updated_at in await payers_since(self._db, since):
                self._known.setdefault(charger_id, set()).add(pubkey)
                if self._seen_until is None or updated_at > self._seen_until:
                    self._seen_until = updated_at
            self._read_at = now
