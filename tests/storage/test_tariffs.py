"""The tariff in force: an operator's change is stored, outlives a restart, and yields to a
newer tariff in the profile file (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

from strom_core.clock import ManualClock
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.tariffs import TariffRepository

PROFILE = ProfileConfig(
    id="cp1",
    name="Test charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(ConnectorConfig(id=1, max_power_kw=11),),
    tariff=TariffConfig(per_kwh_sat=250, per_minute_sat=1, max_prepay_sat=50_000),
)
CLOCK = ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


def _with_energy_price(profile: ProfileConfig, sat_per_kwh: int) -> ProfileConfig:
    tariff = TariffConfig.model_validate(
        {**profile.tariff.model_dump(), "per_kwh_sat": sat_per_kwh}
    )
    return profile.model_copy(update={"tariff": tariff})


async def _book(db: Database) -> TariffBook:
    book = TariffBook(TariffRepository(db), CLOCK)
    await book.load()
    return book


async def test_an_operators_price_outlives_a_restart_until_the_file_changes(db: Database) -> None:
    await ChargerStore(db).sync((PROFILE,))
    book = await _book(db)
    changed: list[str] = []
    book.on_change(changed.append)
    file_price = PROFILE.tariff.to_tariff().energy_msat_per_kwh
    assert book.in_force(PROFILE).energy_msat_per_kwh == file_price
    assert book.changed_by(PROFILE) is None

    await book.set_energy_price(PROFILE, 300_000, source="dm")
    assert changed == [PROFILE.id]
    assert book.in_force(PROFILE).energy_msat_per_kwh == 300_000
    assert book.in_force(PROFILE).max_prepay_msat == PROFILE.tariff.to_tariff().max_prepay_msat

    restarted = await _book(db)  # a new process over the same database
    assert restarted.in_force(PROFILE).energy_msat_per_kwh == 300_000
    assert restarted.changed_by(PROFILE) == "dm"

    edited = _with_energy_price(PROFILE, 400)  # the operator edits the profile file
    assert restarted.in_force(edited).energy_msat_per_kwh == 400_000
    assert restarted.changed_by(edited) is None


async def test_setting_the_files_own_tariff_replaces_a_change_made_by_dm(db: Database) -> None:
    # The REST API writes the file and records what it wrote, even when the file already says
    # it: the operator's newest decision wins.
    await ChargerStore(db).sync((PROFILE,))
    book = await _book(db)
    await book.set_energy_price(PROFILE, 300_000, source="dm")
    await book.set(PROFILE, PROFILE.tariff.to_tariff(), source="api:token:ops")
    assert book.in_force(PROFILE) == PROFILE.tariff.to_tariff()
    assert (await _book(db)).in_force(PROFILE) == PROFILE.tariff.to_tariff()
