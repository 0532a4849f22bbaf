"""The lease keeper: every name held by exactly one live process, fairly, moving when one dies.

Each keeper stands for one process: its own ``Database`` (engines of its own) on one PostgreSQL
schema. Ticks are driven by the test where the order matters, and run on their own in real time
where fail-over time is what is proven.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Collection, Sequence

import pytest

from strom_cluster.keeper import PROCESS_PREFIX, LeaseKeeper, process_lease
from strom_core.clock import ManualClock
from strom_core.errors import StorageError
from strom_storage.db import Database
from strom_storage.leases import PROCESS_PREFIX as STORAGE_PROCESS_PREFIX
from strom_storage.leases import Lease, LeaseStore
from tests.waits import until

NAMES = [f"agent:cp-{n}" for n in range(10)]


class Running:
    """The work each name guards, as the callbacks start and stop it: never twice at once."""

    def __init__(self) -> None:
        self.where: dict[str, str] = {}
        self.starts = 0

    def keeper(
        self,
        db: Database,
        owner: str,
        *,
        ttl_s: float = 5.0,
        names: list[str] = NAMES,
        **kw: object,
    ) -> LeaseKeeper:
        async def gained(got: list[str]) -> None:
            for name in got:
                assert name not in self.where, f"{name} runs in {self.where[name]} and {owner}"
                self.where[name] = owner
                self.starts += 1

        async def lost(gone: list[str]) -> None:
            for name in gone:
                if self.where.get(name) == owner:
                    del self.where[name]

        return LeaseKeeper(
            LeaseStore(db),
            owner,
            prefix="agent:",
            names=lambda: NAMES,
            on_gained=gained,
            on_lost=lost,
            ttl_s=ttl_s,
            **kw,  # type: ignore[arg-type]
        )

    def count(self, owner: str) -> int:
        return sum(1 for where in self.where.values() if where == owner)

    def forget(self, owner: str) -> None:
        """A process died: its work died with it."""
        self.where = {name: where for name, where in self.where.items() if where != owner}


async def holders(db: Database) -> dict[str, str]:
    return {lease.name: lease.owner for lease in await LeaseStore(db).live_with_prefix("agent:")}


async def rounds(keepers: Sequence[LeaseKeeper], count: int = 4) -> None:
    for _ in range(count):
        for keeper in keepers:
            await keeper.tick()


def test_the_process_prefix_is_the_same_in_storage_and_keeper() -> None:
    assert PROCESS_PREFIX == STORAGE_PROCESS_PREFIX


async def test_three_processes_share_the_names_fairly_and_each_runs_once(
    postgres_processes: tuple[Database, ...],
) -> None:
    running = Running()
    keepers = [running.keeper(db, f"p{i}") for i, db in enumerate(postgres_processes)]
    for keeper in keepers:  # all join before anyone shares: nobody takes everything
        await keeper.tick()
    assert running.where == {}
    await rounds(keepers)
    cap = math.ceil(len(NAMES) / 3)
    assert sorted(running.where) == NAMES
    assert all(running.count(k.owner) <= cap for k in keepers)
    assert await holders(postgres_processes[0]) == running.where
    assert running.starts == len(NAMES)  # nothing was started, shed and started again


async def test_a_process_that_joins_gets_its_share_from_the_others(
    postgres_processes: tuple[Database, ...],
) -> None:
    running = Running()
    first, second, third = (running.keeper(db, f"p{i}") for i, db in enumerate(postgres_processes))
    await rounds([first, second])
    assert running.count("p0") == running.count("p1") == 5
    await rounds([first, second, third])
    assert sorted(running.where) == NAMES
    assert [running.count(p) for p in ("p0", "p1", "p2")] == [4, 4, 2]


async def test_the_names_of_a_dead_process_move_to_the_others_within_the_ttl(
    postgres_processes: tuple[Database, ...],
) -> None:
    running = Running()
    ttl_s = 1.5
    keepers = [running.keeper(db, f"p{i}", ttl_s=ttl_s) for i, db in enumerate(postgres_processes)]
    await rounds(keepers)
    orphans = {name for name, where in running.where.items() if where == "p2"}
    assert orphans

    async def tick_forever(keeper: LeaseKeeper) -> None:
        while True:
            await keeper.tick()
            await asyncio.sleep(keeper.interval_s)

    survivors = [asyncio.create_task(tick_forever(k)) for k in keepers[:2]]
    died = asyncio.get_running_loop().time()  # p2 stops renewing: no release, no goodbye
    running.forget("p2")
    try:
        await until(lambda: set(running.where) == set(NAMES), "all names held", within_s=ttl_s * 3)
        moved_after = asyncio.get_running_loop().time() - died
    finally:
        for task in survivors:
            task.cancel()
        await asyncio.gather(*survivors, return_exceptions=True)
    assert moved_after <= ttl_s + 2 * keepers[0].interval_s
    assert set(running.where.values()) == {"p0", "p1"}
    assert all(running.count(p) <= 5 for p in ("p0", "p1"))


async def test_a_stopping_process_hands_its_names_over_at_once(
    postgres_processes: tuple[Database, ...],
) -> None:
    running = Running()
    keepers = [running.keeper(db, f"p{i}", ttl_s=60) for i, db in enumerate(postgres_processes)]
    await rounds(keepers)
    stop = asyncio.Event()
    stop.set()
    await keepers[2].run(stop)  # one tick, then it stops its work and releases everything
    assert running.count("p2") == 0
    live = await LeaseStore(postgres_processes[0]).live_with_prefix(PROCESS_PREFIX)
    assert process_lease("p2") not in {lease.name for lease in live}
    await rounds(keepers[:2])  # a TTL of a minute, yet the others take them on their next tick
    assert sorted(running.where) == NAMES
    assert set(running.where.values()) == {"p0", "p1"}


class Severable:
    """The real lease store, until the database "goes away" for this process."""

    def __init__(self, db: Database) -> None:
        self.store = LeaseStore(db)
        self.severed = False

    def _check(self) -> None:
        if self.severed:
            raise StorageError("database unreachable")

    async def acquire_many(self, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
        self._check()
        return await self.store.acquire_many(names, owner, ttl_s)

    async def renew_names(self, names: Collection[str], owner: str, ttl_s: float) -> list[Lease]:
        self._check()
        return await self.store.renew_names(names, owner, ttl_s)

    async def release_names(self, names: Collection[str], owner: str) -> list[str]:
        self._check()
        return await self.store.release_names(names, owner)

    async def live_with_prefix(self, prefix: str) -> list[Lease]:
        self._check()
        return await self.store.live_with_prefix(prefix)


async def test_a_process_cut_off_from_the_database_stops_its_work_before_its_leases_expire(
    postgres_processes: tuple[Database, ...],
) -> None:
    clock = ManualClock()
    store = Severable(postgres_processes[0])
    stopped: list[str] = []

    async def gained(names: list[str]) -> None:
        return None

    async def lost(names: list[str]) -> None:
        stopped.extend(names)

    keeper = LeaseKeeper(
        store,
        "p0",
        prefix="agent:",
        names=lambda: NAMES[:3],
        on_gained=gained,
        on_lost=lost,
        ttl_s=9.0,
        clock=clock,
    )
    await keeper.tick()
    await keeper.tick()
    assert sorted(keeper.held) == NAMES[:3]
    store.severed = True
    clock.advance(3.0)  # one tick later: the leases hold for 6 s more, keep working
    await keeper.tick()
    assert stopped == []
    clock.advance(3.0)  # two ticks: the next one would come too late, stop now
    await keeper.tick()
    assert stopped == NAMES[:3]
    assert keeper.held == {}


@pytest.mark.parametrize(
    ("ttl_s", "slack", "prefix"), [(0, 0, "agent:"), (5, -1, "agent:"), (5, 0, "")]
)
def test_bad_keeper_arguments_are_refused(ttl_s: float, slack: int, prefix: str) -> None:
    async def nothing(names: list[str]) -> None:
        return None

    with pytest.raises(ValueError, match=r"TTL|slack|prefix"):
        LeaseKeeper(
            LeaseStore(None),  # type: ignore[arg-type]  # never reached
            "p0",
            prefix=prefix,
            names=list,
            on_gained=nothing,
            on_lost=nothing,
            ttl_s=ttl_s,
            slack=slack,
        )
