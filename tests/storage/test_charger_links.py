"""Whether a charger is connected lives in the database, so every process reads the same answer.

``chargers.online`` is written by the process that holds the charger's OCPP connection;
``chargers.reconnect_until`` is the grace a restart gives the chargers that were connected.
Offers in any process derive the link from these columns.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from strom_core.clock import ManualClock
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.ports import ChargerLink
from strom_services import offers
from strom_services.offers import ConnectorUnavailable, OfferView
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.leases import LeaseStore
from strom_storage.sessions import SessionStore

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _profile(charger_id: str) -> ProfileConfig:
    return ProfileConfig(
        id=charger_id,
        name=charger_id,
        location=LocationConfig(lat=52.5, lon=13.4),
        connectors=(ConnectorConfig(id=1, max_power_kw=Decimal(11)),),
        tariff=TariffConfig(per_kwh_sat=Decimal(300)),
    )


PROFILES = (_profile("was-online"), _profile("was-offline"))


async def _store(db: Database) -> ChargerStore:
    store = ChargerStore(db)
    await store.sync(PROFILES, NOW)
    await store.set_online("was-online", True, NOW - timedelta(hours=1))
    return store


async def test_a_restart_gives_the_chargers_that_were_connected_a_grace(db: Database) -> None:
    store = await _store(db)
    assert await store.begin_reconnect_grace(NOW, 90) == ["was-online"]
    assert await store.links(NOW) == {
        "was-online": ChargerLink.RECONNECTING,
        "was-offline": ChargerLink.OFFLINE,
    }
    assert (await store.links(NOW + timedelta(seconds=89)))[
        "was-online"
    ] is ChargerLink.RECONNECTING
    assert (await store.links(NOW + timedelta(seconds=90)))["was-online"] is ChargerLink.OFFLINE


async def test_a_charger_back_within_its_grace_is_online_and_its_grace_is_over(
    db: Database,
) -> None:
    store = await _store(db)
    await store.begin_reconnect_grace(NOW, 90)
    await store.set_online("was-online", True, NOW + timedelta(seconds=5))
    assert (await store.links(NOW))["was-online"] is ChargerLink.ONLINE
    await store.set_online("was-online", False, NOW + timedelta(seconds=10))  # gone again
    assert (await store.links(NOW + timedelta(seconds=11)))["was-online"] is ChargerLink.OFFLINE


async def test_a_second_restart_within_the_grace_gives_a_new_grace(db: Database) -> None:
    store = await _store(db)
    await store.begin_reconnect_grace(NOW, 90)
    later = NOW + timedelta(seconds=30)
    assert await store.begin_reconnect_grace(later, 90) == ["was-online"]
    assert (await store.links(later + timedelta(seconds=89)))[
        "was-online"
    ] is ChargerLink.RECONNECTING
    # A grace that ran out is not renewed: that charger did not come back.
    much_later = later + timedelta(hours=1)
    assert await store.begin_reconnect_grace(much_later, 90) == []
    assert (await store.links(much_later))["was-online"] is ChargerLink.OFFLINE


async def test_a_grace_of_zero_shows_them_offline_at_once(db: Database) -> None:
    store = await _store(db)
    assert await store.begin_reconnect_grace(NOW, 0) == []
    assert set((await store.links(NOW)).values()) == {ChargerLink.OFFLINE}


async def test_another_process_sees_a_charger_connect_through_the_database(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two processes on one database: the one holding the OCPP connection records it; the
    # other's offers, told nothing, read it from the database (here at once: no caching).
    monkeypatch.setattr(offers, "VIEW_MAX_AGE_S", 0.0)
    holder = await _store(db)
    await holder.begin_reconnect_grace(NOW, 90)
    other = OfferView(SessionStore(db), ChargerStore(db), clock=ManualClock(NOW))
    profile = PROFILES[0]
    with pytest.raises(ConnectorUnavailable, match="reconnecting right now") as refused:
        await other.check(profile, 1)
    assert refused.value.link is ChargerLink.RECONNECTING
    await holder.set_online(profile.id, True, NOW)
    await other.check(profile, 1)  # no refusal
    await holder.set_online(profile.id, False, NOW)
    with pytest.raises(ConnectorUnavailable, match="offline right now"):
        await other.check(profile, 1)
    with pytest.raises(ConnectorUnavailable, match="offline right now"):
        await other.check_in_database(profile, 1)


async def test_a_starting_process_of_a_cluster_spares_the_chargers_another_process_holds(
    db: Database,
) -> None:
    store = await _store(db)
    await store.set_online("was-offline", True, NOW - timedelta(hours=1))
    await LeaseStore(db).take_over("charger:was-online", "proc-b", 30)  # live at process B

    assert await store.begin_reconnect_grace(NOW, 90, spare_held=True) == ["was-offline"]
    assert await store.links(NOW) == {
        "was-online": ChargerLink.ONLINE,
        "was-offline": ChargerLink.RECONNECTING,
    }


async def test_a_process_that_lost_a_charger_does_not_mark_it_offline(db: Database) -> None:
    leases = LeaseStore(db)
    at_b = ChargerStore(db, process_id="proc-b")
    await at_b.sync(PROFILES, NOW)
    await leases.take_over("charger:was-online", "proc-b", 30)
    await at_b.set_online("was-online", True, NOW)
    await leases.take_over("charger:was-online", "proc-a", 30)  # it reconnected to A

    await at_b.set_online("was-online", False, NOW + timedelta(seconds=1))  # B's late close
    assert (await at_b.links(NOW))["was-online"] is ChargerLink.ONLINE

    at_a = ChargerStore(db, process_id="proc-a")
    await at_a.set_online("was-online", False, NOW + timedelta(seconds=2))  # the holder's close
    assert (await at_a.links(NOW))["was-online"] is ChargerLink.OFFLINE
