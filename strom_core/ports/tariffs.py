"""Where the tariff in force is kept: an operator's change outlives a restart.

A charger's tariff comes from its profile file, unless an operator changed it while Strom ran
(the ``price`` DM): then the changed tariff is recorded together with the file's tariff at that
moment. The record stays in force until the file's tariff changes (an edit of the file, or the
REST API, which writes the file): the newest decision of the operator wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from strom_core.tariff import Tariff

__all__ = ["TariffRecord", "TariffRecords"]


@dataclass(frozen=True, slots=True)
class TariffRecord:
    """A tariff an operator set for one charger while Strom ran.

    Attributes:
        charger_id: the charger.
        tariff: the tariff in force from then on.
        file_tariff: the profile file's tariff when it was set; once the file says otherwise,
            the file wins.
        source: who set it (``dm:<npub>``, ``api:<actor>``).
        set_at: when (aware UTC).
    """

    charger_id: str
    tariff: Tariff
    file_tariff: Tariff
    source: str
    set_at: datetime


class TariffRecords(Protocol):
    """The stored tariff records (one per charger at most)."""

    async def all(self) -> list[TariffRecord]:
        """Every record."""
        ...

    async def save(self, record: TariffRecord) -> None:
        """Store a record, replacing the charger's previous one."""
        ...
