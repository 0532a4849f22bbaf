"""The availability timeline's history (status_history), on SQLite and PostgreSQL.

A connector's status change and a charger's connection change are recorded once each; a
repeated StatusNotification is not; the report reads the window plus the state in force at
its start.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from strom_core.availability import StatusChange
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.reports import Reports
from strom_storage.schema import status_history

T0 = datetime(2026, 12, 1, tzinfo=UTC)
H = timedelta(hours=1)


def profile(charger_id: str, connectors: int = 1) -> ProfileConfig:
    return ProfileConfig(
        id=charger_id,
        name=charger_id,
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=tuple(ConnectorConfig(id=n, max_power_kw=11) for n in range(1, connectors + 1)),
        tariff=TariffConfig(per_kwh_sat=300),
    )


async def history(db: Database) -> list[tuple[str, int, str, datetime]]:
    query = select(status_history).order_by(status_history.c.id)
    rows = await db.read(lambda conn: list(conn.execute(query)))
    return [(r.charger_id, r.connector_id, r.status, r.at) for r in rows]


async def test_each_change_is_recorded_once_and_repeats_are_not(db: Database) -> None:
    store = ChargerStore(db)
    await store.sync((profile("cp-1"),), now=T0)
    await store.set_online("cp-1", True, T0)
    await store.set_online("cp-1", True, T0 + H)  # a second boot while connected: no change
    await store.set_status("cp-1", 1, "Available", "NoError", T0)
    await store.set_status("cp-1", 1, "Available", "NoError", T0 + H)  # heartbeat-like repeat
    await store.set_status("cp-1", 1, "Faulted", "GroundFailure", T0 + 2 * H)
    await store.set_status("cp-1", 7, "Faulted", "NoError", T0 + 2 * H)  # not a connector
    await store.set_online("cp-1", False, T0 + 3 * H)
    await store.set_online("cp-9", True, T0 + 3 * H)  # not a charger
    assert await history(db) == [
        ("cp-1", 0, "Online", T0),
        ("cp-1", 1, "Available", T0),
        ("cp-1", 1, "Faulted", T0 + 2 * H),
        ("cp-1", 0, "Offline", T0 + 3 * H),
    ]


async def test_a_restart_records_chargers_left_connected_as_offline(db: Database) -> None:
    store = ChargerStore(db)
    await store.sync((profile("cp-1"), profile("cp-2")), now=T0)
    await store.set_online("cp-1", True, T0)
    await store.begin_reconnect_grace(T0 + H, 60)
    assert await history(db) == [("cp-1", 0, "Online", T0), ("cp-1", 0, "Offline", T0 + H)]


async def test_the_report_reads_the_window_and_the_state_in_force_at_its_start(
    db: Database,
) -> None:
    store = ChargerStore(db)
    await store.sync((profile("cp-1", connectors=2), profile("cp-2")), now=T0)
    await store.set_online("cp-1", True, T0 - 5 * H)
    await store.set_status("cp-1", 1, "Available", "NoError", T0 - 4 * H)
    await store.set_status("cp-1", 1, "Charging", "NoError", T0 - 3 * H)  # in force at T0
    await store.set_status("cp-1", 1, "Available", "NoError", T0 + H)
    await store.set_status("cp-1", 2, "Faulted", "NoError", T0 + 30 * H)  # after the window
    await store.set_status("cp-2", 1, "Available", "NoError", T0 + 2 * H)
    known, changes = await Reports(db).status_changes(since=T0, until=T0 + 24 * H)
    assert known == [("cp-1", 1), ("cp-1", 2), ("cp-2", 1)]
    assert changes == [
        StatusChange("cp-1", 0, "Online", T0 - 5 * H),
        StatusChange("cp-1", 1, "Charging", T0 - 3 * H),
        StatusChange("cp-1", 1, "Available", T0 + H),
        StatusChange("cp-2", 1, "Available", T0 + 2 * H),
    ]
    known, changes = await Reports(db).status_changes(
        since=T0, until=T0 + 24 * H, charger_id="cp-2"
    )
    assert known == [("cp-2", 1)]
    assert changes == [StatusChange("cp-2", 1, "Available", T0 + 2 * H)]
