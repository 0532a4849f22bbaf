"""Chargers held and CALLs answered by one and by three `strom run --cluster` processes, and
what routing a command to another process adds.

Each process is a real ``strom run --cluster`` child on one fresh PostgreSQL database (the
default bus, LISTEN/NOTIFY; ``--bus nats`` for NATS); N bench chargers (raw OCPP 1.6 frames,
one outstanding CALL each, from this process) are spread evenly over the processes:

1. connect and boot every charger; report the rate;
2. drive Heartbeat and StatusNotification for a while; report CALLs answered per second, and
   the ratio of three processes to one;
3. (three processes) send an operator's command (``POST …/commands/trigger-status``, the
   charger answers TriggerMessage at once) to the process holding the charger and to another
   one, in turn; report both latencies' median and 95th percentile, and their difference:
   what the bus adds.

    python bench/cluster.py --database-url postgresql+asyncpg://postgres@127.0.0.1/test \\
        --chargers 300 --seconds 10 [--bus nats]

The machine's cores bound what three processes can add (the bench's own chargers share
them). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench._common import percentile, result, write_profiles  # noqa: E402
from bench.ocpp_connections import BOOT_16, Charger, now, raise_file_limit  # noqa: E402

MESSAGES = [
    ("Heartbeat", lambda: {}),
    (
        "StatusNotification",
        lambda: {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Available",
            "timestamp": now(),
        },
    ),
]


async def _admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(sql)
    finally:
        await engine.dispose()


class Cluster:
    """``count`` processes of one installation on one new database."""

    def __init__(self, server_url: str, count: int, chargers: int, bus: str) -> None:
        self.server_url = server_url
        self.count = count
        self.ids = [f"bench-{n}" for n in range(chargers)]
        self.bus = bus
        self.name = f"strom_bench_{secrets.token_hex(4)}"
        self.url = make_url(server_url).set(database=self.name).render_as_string(False)
        self.folder = Path(tempfile.mkdtemp(prefix="strom-cluster-bench-"))
        self.children: list = []
        self.ocpp: list[str] = []
        self.http: list[str] = []

    async def __aenter__(self) -> Cluster:
        from strom.scaffold import write_scaffold
        from tests.strom_process import StromChild, strom_environment

        await _admin(self.server_url, f'CREATE DATABASE "{self.name}"')
        write_scaffold(self.folder, charger_id=self.ids[0])
        write_profiles(self.folder, self.ids[1:])
        common = {
            "STROM_STORAGE__DATABASE_URL": self.url,
            "STROM_MASTER_KEY": secrets.token_hex(32),
            "STROM_CLUSTER__BUS": self.bus,
            "STROM_LOGGING__LEVEL": '"WARNING"',
            "STROM_OCPP__METER_INTERVAL_S": "60",
        }
        for index in range(self.count):
            env = strom_environment(**common)
            child = StromChild(
                self.folder,
                env,
                env["STROM_SERVER__PUBLIC_URL"].strip('"'),
                args=("--cluster",),
                log_name=f"strom-{index + 1}.log",
            )
            self.children.append(child)
            self.http.append(child.base)
            self.ocpp.append(f"ws://127.0.0.1:{env['STROM_OCPP__PORT']}/ocpp")
        first, *others = self.children
        first.start()
        await first.wait_ready(120)
        for child in others:
            child.start()
        for child in others:
            await child.wait_ready(120)
        return self

    async def __aexit__(self, *_: object) -> None:
        for child in self.children:
            child.stop()
        await _admin(self.server_url, f'DROP DATABASE "{self.name}" WITH (FORCE)')
        shutil.rmtree(self.folder, ignore_errors=True)

    async def token(self) -> str:
        from cockpit.tokens import TokenStore
        from strom_storage.db import Database

        db = Database.from_url(self.url)
        try:
            return await TokenStore(db).create("bench")
        finally:
            await db.close()


async def hold_and_load(
    cluster: Cluster, seconds: float, workers: int, concurrency: int
) -> tuple[list[Charger], float, float]:
    """Connect every charger (round robin over the processes), then load; returns the chargers,
    the connect rate and CALLs per second."""
    chargers = [Charger(charger_id) for charger_id in cluster.ids]
    gate = asyncio.Semaphore(concurrency)

    async def bring_up(index: int, charger: Charger) -> None:
        async with gate:
            await charger.open(cluster.ocpp[index % cluster.count], None)
            await charger.call("BootNotification", BOOT_16)

    started = time.perf_counter()
    await asyncio.gather(*(bring_up(i, c) for i, c in enumerate(chargers)))
    connect_rate = len(chargers) / (time.perf_counter() - started)
    await asyncio.sleep(3)  # the post-boot CALLs of the servers
    calls = 0
    stop_at = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal calls
        mine = chargers[index::workers]
        for n in itertools.count():
            action, payload = MESSAGES[n % len(MESSAGES)]
            await mine[n % len(mine)].call(action, payload())
            calls += 1
            if time.perf_counter() >= stop_at:
                return

    load_started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(min(workers, len(chargers)))))
    return chargers, connect_rate, calls / (time.perf_counter() - load_started)


async def routed_latency(cluster: Cluster, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds per operator command sent to the charger's own process, and to another one."""
    token = await cluster.token()
    local: list[float] = []
    routed: list[float] = []
    async with httpx.AsyncClient(timeout=60, headers={"Authorization": f"Bearer {token}"}) as http:
        for n in range(rounds):
            index = n % len(cluster.ids)
            owner = index % cluster.count
            for target, into in ((owner, local), ((owner + 1) % cluster.count, routed)):
                url = (
                    f"{cluster.http[target]}/api/v1/chargers/{cluster.ids[index]}"
                    "/commands/trigger-status"
                )
                started = time.perf_counter()
                answer = await http.post(url, json={"connector_id": 1})
                into.append(time.perf_counter() - started)
                if answer.status_code != 200 or answer.json().get("status") != "Accepted":
                    raise RuntimeError(f"{url}: {answer.status_code} {answer.text[:200]}")
    return local, routed


async def run(args: argparse.Namespace) -> None:
    raise_file_limit()
    figures: dict[int, float] = {}
    for count in (1, 3):
        async with Cluster(args.database_url, count, args.chargers, args.bus) as cluster:
            chargers, connect_rate, calls = await hold_and_load(
                cluster, args.seconds, args.workers, args.concurrency
            )
            figures[count] = calls
            print(
                f"{count} process(es): {args.chargers} chargers held, connect + boot "
                f"{connect_rate:.0f}/s, {calls:.0f} CALLs/s"
            )
            if count == 3:
                local, routed = await routed_latency(cluster, args.rounds)
                for label, values in (("to its own process", local), ("routed", routed)):
                    print(
                        f"command {label:20s}: p50 {percentile(values, 50) * 1000:.1f} ms, "
                        f"p95 {percentile(values, 95) * 1000:.1f} ms"
                    )
                added = (percentile(routed, 50) - percentile(local, 50)) * 1000
                print(f"routing adds (p50)            : {added:.1f} ms ({args.bus} bus)")
                result("cluster_routed_command_added_ms", added, 0.0, "ms", "", None)
            for charger in chargers:
                await charger.close()
    ratio = figures[3] / figures[1]
    print(f"CALLs/s, 3 processes / 1      : {ratio:.2f} on {os.cpu_count()} core(s)")
    result("cluster_calls_per_s_3_vs_1", figures[3], figures[1], "CALLs/s", "", None, ratio=ratio)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("STROM_TEST_DATABASE_URL", ""),
        help="a PostgreSQL server (its database names the server; a new one is made)",
    )
    parser.add_argument("--chargers", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=64, help="CALLs in flight at once")
    parser.add_argument("--concurrency", type=int, default=50, help="connects at once")
    parser.add_argument("--rounds", type=int, default=100, help="commands timed per target")
    parser.add_argument("--bus", choices=("postgresql", "nats"), default="postgresql")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or STROM_TEST_DATABASE_URL) is required")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
