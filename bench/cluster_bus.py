"""The cluster bus, measured: NatsBus against PgNotifyBus (LocalBus as the floor), in one run.

    python bench/cluster_bus.py [--requests 2000] [--concurrency 32] [--events 1000]
        [--nats nats://127.0.0.1:4222] [--database-url postgresql://postgres@127.0.0.1/test]
        [--pg-pool 2]

For each bus: two instances stand for two processes (one serves an echo handler, the other
asks), three more subscribe to one topic. Figures:

* request/reply latency: one request at a time, a 200-byte JSON payload, p50 and p99;
* request/reply throughput: ``--concurrency`` requests in flight, replies per second;
* fan-out latency: one event at a time, from publish until all three subscribers have it,
  p50 and p99;
* fan-out throughput: events published back to back, events per second delivered to all three.

Every instance runs in this one process and event loop, so the client work of both sides
shares one core: the figures are an upper bound on the latency two processes see on one host,
and a comparison of the two buses, not of the servers alone. A bus that cannot be reached is
reported as such and skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import percentile, quiet

from strom_cluster import LocalBus, LocalHub, NatsBus, PgNotifyBus
from strom_core.errors import BusUnavailable
from strom_core.ports.cluster import Bus, Subscription

PAYLOAD = (
    b'{"charger":"CP-0001","connector":1,"id_tag":"a1b2c3d4e5f6a7b8",'
    + b'"x":"'
    + b"0" * 126
    + b'"}'
)
Maker = Callable[[], Awaitable[Bus]]
SERVER = f"bench-{secrets.token_hex(4)}"  # another run on the same server does not answer
TOPIC = f"bench-{secrets.token_hex(4)}"


async def _echo(subject: str, payload: bytes) -> bytes:
    return payload


async def measure(make: Maker, requests: int, concurrency: int, events: int) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        buses = []
        for _ in range(5):
            bus = await make()
            stack.push_async_callback(bus.aclose)
            buses.append(bus)
        asker, server, *listeners = buses
        await server.serve(SERVER, _echo)
        for _ in range(50):  # warm up connections, statement caches, inboxes
            await asker.request(SERVER, "echo", PAYLOAD, 5)
        figures = await _requests(asker, requests, concurrency)
        subscriptions = [await bus.subscribe(TOPIC) for bus in listeners]
        figures.update(await _fanout(asker, subscriptions, events))
    return figures


async def _requests(asker: Bus, requests: int, concurrency: int) -> dict[str, float]:
    latencies = []
    for _ in range(requests // 2):
        started = time.perf_counter()
        await asker.request(SERVER, "echo", PAYLOAD, 5)
        latencies.append(time.perf_counter() - started)

    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await asker.request(SERVER, "echo", PAYLOAD, 10)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "req_p50_ms": percentile(latencies, 50) * 1000,
        "req_p99_ms": percentile(latencies, 99) * 1000,
        "req_per_s": requests / (time.perf_counter() - started),
    }


async def _fanout(
    publisher: Bus, subscriptions: list[Subscription], events: int
) -> dict[str, float]:
    async def all_receive(count: int) -> None:
        async def one(subscription: Subscription) -> None:
            for _ in range(count):
                await anext(subscription)

        await asyncio.gather(*(one(s) for s in subscriptions))

    latencies = []
    for _ in range(events // 2):
        started = time.perf_counter()
        await publisher.publish(TOPIC, PAYLOAD)
        await all_receive(1)
        latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    receiving = asyncio.ensure_future(all_receive(events))
    for _ in range(events):
        await publisher.publish(TOPIC, PAYLOAD)
    await receiving
    return {
        "fan_p50_ms": percentile(latencies, 50) * 1000,
        "fan_p99_ms": percentile(latencies, 99) * 1000,
        "fan_per_s": events / (time.perf_counter() - started),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument(
        "--pg-pool", type=int, default=2, help="PgNotifyBus's notifying connections"
    )
    parser.add_argument("--nats", default=os.environ.get("STROM_NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "STROM_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    quiet()
    hub = LocalHub()

    async def local() -> Bus:
        return LocalBus(hub)

    async def nats() -> Bus:
        return await NatsBus.connect(args.nats)

    async def postgres() -> Bus:
        return await PgNotifyBus.connect(args.database_url, pool_size=args.pg_pool)

    rows: list[tuple[str, dict[str, float] | str]] = []
    for name, make in [("LocalBus (floor)", local), ("NatsBus", nats), ("PgNotifyBus", postgres)]:
        try:
            rows.append((name, await measure(make, args.requests, args.concurrency, args.events)))
        except BusUnavailable as exc:
            rows.append((name, f"not reachable: {exc}"))

    print(
        f"requests {args.requests} (latency: {args.requests // 2} one at a time), "
        f"concurrency {args.concurrency}, events {args.events} to 3 subscribers, "
        f"payload {len(PAYLOAD)} bytes, PgNotifyBus pool {args.pg_pool}"
    )
    print()
    print("| bus | request p50 | request p99 | requests/s | fan-out p50 | fan-out p99 | events/s |")
    print("|---|---|---|---|---|---|---|")
    for name, figures in rows:
        if isinstance(figures, str):
            print(f"| {name} | {figures} | | | | | |")
            continue
        print(
            f"| {name} | {figures['req_p50_ms']:.2f} ms | {figures['req_p99_ms']:.2f} ms"
            f" | {figures['req_per_s']:,.0f} | {figures['fan_p50_ms']:.2f} ms"
            f" | {figures['fan_p99_ms']:.2f} ms | {figures['fan_per_s']:,.0f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
