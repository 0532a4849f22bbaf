"""The tariffs operators set at run time (:class:`strom_core.ports.tariffs.TariffRecords`)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from strom_core.ports.tariffs import TariffRecord
from strom_core.tariff import Tariff
from strom_storage.db import Database
from strom_storage.schema import tariffs

__all__ = ["TariffRepository"]

_FIELDS = (
    "energy_msat_per_kwh",
    "time_msat_per_minute",
    "session_fee_msat",
    "min_prepay_msat",
    "max_prepay_msat",
    "reservation_fee_msat",
    "reservation_fee_msat_per_minute",
    "reservation_max_minutes",
    "reservation_kept_percent",
    "idle_msat_per_minute",
    "idle_grace_minutes",
)
# Fields a record written before reservations or idle fees existed lacks (its file_tariff
# JSON): defaults.
_DEFAULTS = {f.name: f.default for f in fields(Tariff)}


def _as_dict(tariff: Tariff) -> dict[str, int]:
    return {name: int(getattr(tariff, name)) for name in _FIELDS}


def _tariff(values: Any) -> Tariff:
    return Tariff(**{name: int(values.get(name, _DEFAULTS[name])) for name in _FIELDS})


class TariffRepository:
    """Tariff records in the ``tariffs`` table, one per charger.

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[TariffRecord]:
        """Every record."""
        rows = await self.db.read(lambda conn: conn.execute(select(tariffs)).all())
        return [self._record(row._mapping) for row in rows]

    async def save(self, record: TariffRecord) -> None:
        """Store a record, replacing the charger's previous one (one transaction)."""

        def replace(conn: Connection) -> None:
            conn.execute(delete(tariffs).where(tariffs.c.charger_id == record.charger_id))
            conn.execute(
                insert(tariffs).values(
                    charger_id=record.charger_id,
                    **_as_dict(record.tariff),
                    file_tariff=_as_dict(record.file_tariff),
                    source=record.source[:120],
                    set_at=record.set_at,
                )
            )

        await self.db.write(replace)

    @staticmethod
    def _record(row: Any) -> TariffRecord:
        return TariffRecord(
            charger_id=row["charger_id"],
            tariff=_tariff(row),
            file_tariff=_tariff(row["file_tariff"]),
            source=row["source"],
            set_at=row["set_at"],
        )
