"""A change of a charger's profile or tariff told between processes (strom/config_sync.py), on the
in-process bus: the other process applies it once, the one that made it does not apply it
again, nobody echoes it; a missed event is caught up by the recheck."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from strom.config import load_profile
from strom.config_sync import TOPIC, ConfigSync
from strom.scaffold import write_scaffold
from strom_cluster import LocalBus
from strom_cluster.local import LocalHub
from strom_core.clock import SYSTEM_CLOCK
from strom_core.config import ProfileConfig
from strom_core.ports.tariffs import TariffRecord
from strom_services.tariffs import TariffBook
from tests.cluster.trio import Trio

CHARGER = "cp-sync"


class _Records:
    """The shared database's tariff records (every process reads the same ones)."""

    def __init__(self) -> None:
        self.rows: dict[str, TariffRecord] = {}

    async def all(self) -> list[TariffRecord]:
        return list(self.rows.values())

    async def save(self, record: TariffRecord) -> None:
        self.rows[record.charger_id] = record


@dataclass
class _Process:
    """What ConfigSync needs of one Strom process: the profile in force, applied profiles."""

    name: str
    profile: ProfileConfig
    tariffs: TariffBook
    sync: ConfigSync | None = None
    applied: list[ProfileConfig] = field(default_factory=list)
    told: list[str] = field(default_factory=list)  # tariffs another process changed

    def in_force(self, charger_id: str) -> ProfileConfig | None:
        return self.profile if charger_id == CHARGER else None

    async def apply(self, profile: ProfileConfig) -> None:
        self.applied.append(profile)
        self.profile = profile


@dataclass
class _Cluster:
    folder: Path
    processes: list[_Process]
    events: list[bytes]

    def file(self) -> Path:
        return self.folder / f"{CHARGER}.toml"

    async def settle(self) -> None:
        for _ in range(20):  # the in-process bus delivers within a few loop turns
            await asyncio.sleep(0)


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[_Cluster]:
    write_scaffold(tmp_path, charger_id=CHARGER)
    folder = tmp_path / "profiles"
    hub = LocalHub()
    records = _Records()
    processes = []
    for name in ("one", "two"):
        tariffs = TariffBook(records, SYSTEM_CLOCK)
        process = _Process(name, load_profile(folder / f"{CHARGER}.toml"), tariffs)
        process.sync = ConfigSync(
            LocalBus(hub),
            name,
            folder,
            in_force=process.in_force,
            apply=process.apply,
            tariffs=tariffs,
            tariff_reloaded=process.told.append,
            recheck_s=3600,  # the tests call recheck() themselves
        )
        processes.append(process)
    listener = await LocalBus(hub).subscribe(TOPIC)
    events: list[bytes] = []

    async def listen() -> None:
        async for event in listener:
            events.append(event)

    tasks = [asyncio.create_task(p.sync.run()) for p in processes if p.sync is not None]
    tasks.append(asyncio.create_task(listen()))
    await asyncio.sleep(0.01)  # every subscription made; the first recheck done
    try:
        yield _Cluster(folder, processes, events)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await listener.aclose()


def _new_price(path: Path, sat_per_kwh: int) -> ProfileConfig:
    text = path.read_text()
    assert "per_kwh_sat = 250" in text
    path.write_text(text.replace("per_kwh_sat = 250", f"per_kwh_sat = {sat_per_kwh}", 1))
    return load_profile(path)


async def test_a_profile_changed_at_one_process_is_applied_at_the_other_once(
    cluster: _Cluster,
) -> None:
    one, two = cluster.processes
    assert one.sync is not None
    changed = _new_price(cluster.file(), 400)
    await one.apply(changed)  # what the API does at process one...
    one.sync.note(CHARGER, "profile")  # ...and tells the others
    await cluster.settle()
    assert two.applied == [changed]
    assert two.profile.tariff.to_tariff().energy_msat_per_kwh == 400_000
    assert one.applied == [changed]  # not applied again where it was made
    assert len(cluster.events) == 1  # applying at process two told nobody: no echo


async def test_a_missed_event_is_caught_up_by_the_recheck(cluster: _Cluster) -> None:
    _, two = cluster.processes
    assert two.sync is not None
    changed = _new_price(cluster.file(), 310)  # changed, and the event lost
    await two.sync.recheck()
    assert two.applied == [changed]
    await two.sync.recheck()  # the file did not change since: nothing read, nothing applied
    assert two.applied == [changed]
    assert cluster.events == []  # a recheck tells nobody


async def test_a_tariff_set_at_one_process_is_in_force_at_the_other(cluster: _Cluster) -> None:
    one, two = cluster.processes
    assert two.tariffs.in_force(two.profile).energy_msat_per_kwh == 250_000
    # The operator's DM ``price 180`` at process one: stored in the database, then told.
    await one.tariffs.set_energy_price(one.profile, 180_000, source="dm:npub1operator")
    await cluster.settle()
    assert two.tariffs.in_force(two.profile).energy_msat_per_kwh == 180_000
    assert two.told == [CHARGER]  # its agent, if it runs there, shows the new price
    assert one.told == []  # process one knew it already
    assert len(cluster.events) == 1


async def test_a_malformed_event_or_one_naming_a_file_elsewhere_changes_nothing(
    cluster: _Cluster,
) -> None:
    one, two = cluster.processes
    assert one.sync is not None
    outside = cluster.folder.parent / "outside.toml"  # a valid profile, not in the folder
    outside.write_text(cluster.file().read_text().replace(f'id = "{CHARGER}"', 'id = "outside"'))
    assert load_profile(outside).id == "outside"
    for body in (b"not json", b"{}", b'{"charger": "../outside", "what": "profile"}'):
        await one.sync.bus.publish(TOPIC, b"three\0" + body)
    await cluster.settle()
    assert two.applied == []
    assert one.applied == []


@pytest.mark.postgres
async def test_a_tariff_put_at_one_process_prices_the_next_payment_at_another(
    tmp_path: Path, cluster_url: str
) -> None:
    duo = Trio(tmp_path, cluster_url, [CHARGER], count=2)
    duo.setup()
    try:
        await duo.start()
        duo.connect(CHARGER, 0)
        await duo.online_everywhere([CHARGER])
        one, two = (config.server.public_url for config in duo.configs)
        token = await duo.admin_token()
        async with httpx.AsyncClient(timeout=10) as http:
            pay_url = f"{two}/lnurlp/{CHARGER}/1"
            assert "250 sat/kWh" in (await http.get(pay_url)).json()["metadata"]
            saved = await http.put(
                f"{one}/api/v1/chargers/{CHARGER}/tariff",
                json={"per_kwh_sat": 400},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert saved.status_code == 200, saved.text
            deadline = time.monotonic() + 2
            while "400 sat/kWh" not in (metadata := (await http.get(pay_url)).json()["metadata"]):
                assert time.monotonic() < deadline, f"process 2 still offers {metadata}"
                await asyncio.sleep(0.05)
            # A payment at process 2 is frozen with the new tariff.
            driver = duo.driver(CHARGER, 1)
            try:
                answer = await driver.invoice()
                status_url = str(answer["successAction"]["url"]).replace("?", ".json?", 1)
                assert duo.wallet is not None
                await duo.wallet.pay(str(answer["pr"]))
                status = await driver.status(status_url, {"charging", "paid", "starting"}, 20)
                detail = await http.get(
                    f"{two}/api/v1/sessions/{status['id']}",
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert detail.json()["energy_msat_per_kwh"] == 400_000, detail.text
            finally:
                await driver.aclose()
    except BaseException:
        print(duo.logs())
        raise
    finally:
        await duo.aclose()
