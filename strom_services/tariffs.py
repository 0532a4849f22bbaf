"""The tariff in force for each charger, the one every part shows and charges.

Theory of operation: a charger's tariff is its profile's, unless an operator changed it while
Strom ran (``price`` by DM). Such a change is stored (:class:`~strom_core.ports.tariffs.
TariffRecords`) with the file's tariff at that moment, so it outlives a restart, and stays in
force until the profile's tariff changes (an edit of the file, or the REST API, which writes
the file): the operator's newest decision wins. The records are read once at start and kept
in memory, so :meth:`TariffBook.in_force` answers from memory: the charger page, the LNURL
metadata, the nostr status and every new session ask it and see the same price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from strom_core.clock import Clock
from strom_core.config import ProfileConfig
from strom_core.ports.tariffs import TariffRecord, TariffRecords
from strom_core.tariff import Tariff

__all__ = ["TariffBook"]


class TariffBook:
    """The tariffs in force (see the module docstring).

    Args:
        records: where operators' changes are stored.
        clock: when a change is made.
    """

    def __init__(self, records: TariffRecords, clock: Clock) -> None:
        self._records = records
        self._clock = clock
        self._changed: dict[str, TariffRecord] = {}
        self._listeners: list[Callable[[str], None]] = []
        """Told the charger id whenever its tariff changes (offers, the status event)."""
        self._set_listeners: list[Callable[[str], None]] = []
        """Told the charger id when this process changes its tariff (the other processes)."""
        self._sets = 0  # changes made here (a reload reads again if one came meanwhile)

    def on_change(self, listener: Callable[[str], None]) -> None:
        """Tell ``listener`` the charger id whenever that charger's tariff changes."""
        self._listeners.append(listener)

    def on_set(self, listener: Callable[[str], None]) -> None:
        """Tell ``listener`` the charger id when a change is made here (:meth:`set`).

        A change read back from storage (:meth:`reload`) is not told: in a cluster, the
        process that made a change tells the others, and they do not tell it again.
        """
        self._set_listeners.append(listener)

    async def load(self) -> None:
        """Read the stored changes (at start)."""
        self._changed = {record.charger_id: record for record in await self._records.all()}

    async def reload(self) -> list[str]:
        """Read the stored changes again (another process made one).

        Returns:
            The chargers whose stored change differs from what this process knew; the
            listeners (:meth:`on_change`) were told each.
        """
        before = self._changed
        while True:
            sets = self._sets
            records = await self._records.all()
            if self._sets == sets:  # no change made here while reading: nothing older kept
                break
        self._changed = {record.charger_id: record for record in records}
        changed = sorted(
            charger_id
            for charger_id in set(before) | set(self._changed)
            if before.get(charger_id) != self._changed.get(charger_id)
        )
        for charger_id in changed:
            for listener in self._listeners:
                listener(charger_id)
        return changed

    def in_force(self, profile: ProfileConfig) -> Tariff:
        """The tariff a new session of this charger gets, and what every page shows."""
        record = self._current(profile)
        return profile.tariff.to_tariff() if record is None else record.tariff

    def changed_by(self, profile: ProfileConfig) -> str | None:
        """Who changed the profile's tariff at run time (``dm:<npub>``), or None."""
        record = self._current(profile)
        return None if record is None else record.source

    async def set(self, profile: ProfileConfig, tariff: Tariff, *, source: str) -> None:
        """Put ``tariff`` in force for this charger (stored first, then used)."""
        record = TariffRecord(
            profile.id, tariff, profile.tariff.to_tariff(), source, self._clock.now()
        )
        await self._records.save(record)
        self._sets += 1
        self._changed[profile.id] = record
        for listener in (*self._listeners, *self._set_listeners):
            listener(profile.id)

    async def set_energy_price(
        self, profile: ProfileConfig, msat_per_kwh: int, *, source: str
    ) -> Tariff:
        """Change only the energy price of the tariff in force; returns the new tariff."""
        tariff = replace(self.in_force(profile), energy_msat_per_kwh=msat_per_kwh)
        await self.set(profile, tariff, source=source)
        return tariff

    def _current(self, profile: ProfileConfig) -> TariffRecord | None:
        record = self._changed.get(profile.id)
        if record is None or record.file_tariff != profile.tariff.to_tariff():
            return None  # the file changed since: the file is the newer decision
        return record
