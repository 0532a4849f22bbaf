"""How many charger agents one process runs over one relay pool, and how fast they publish.

Starts nostr-sdk's relay in a child process pinned to the second CPU (so its stored events do
not count against the agents), then, in this process pinned to the first CPU:

1. builds N agents (one key each, generated in memory) on one RelayPool (one nostr-sdk client);
2. runs them under the Supervisor and waits until every agent's status event (kind 30522,
   signed by its own key) was acknowledged by the relay: time to publish all, events/s;
3. reads RSS per agent: RSS with every agent running and published, minus RSS with the pool
   connected and no agent yet.

Profile and relay lists are held back (``metadata_delay_s``) so the figure is the status alone.

    python bench/agents.py --agents 10000

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agent.agent import Agent  # noqa: E402
from agent.identity import AgentKey  # noqa: E402
from agent.relays import EMBEDDED_EVENTS_PER_MINUTE, PublishResult, RelayPool  # noqa: E402
from agent.services import AgentServices  # noqa: E402
from agent.settings import AgentSettings  # noqa: E402
from agent.supervisor import Supervisor  # noqa: E402
from strom_core.clock import SYSTEM_CLOCK  # noqa: E402
from strom_core.config import (  # noqa: E402
    ConnectorConfig,
    LocationConfig,
    ProfileConfig,
    RelayConfig,
    TariffConfig,
)
from strom_core.fiat import ShownTariff, shown_tariff  # noqa: E402
from strom_core.ports.tariffs import TariffRecord  # noqa: E402
from strom_nostr.event import sign_event  # noqa: E402
from strom_nostr.keys import generate_secret_key  # noqa: E402
from strom_services.tariffs import TariffBook  # noqa: E402
from strom_storage.agents import ChargerSnapshot  # noqa: E402

# nostr-sdk's in-process relay, as Strom's "embedded" relay runs it.
LOCAL_RELAY_CHILD = """
import asyncio, sys
from agent.nostr_sdk_adapter import SdkLocalRelay
async def main():
    relay = SdkLocalRelay(port=0)
    print(await relay.start(), flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""

# A sink that acknowledges every EVENT at once without checking or storing it: it measures
# what the agents and the pool can push, free of any relay's own speed or rate limits.
SINK_RELAY_CHILD = """
import asyncio, json, sys
from websockets.asyncio.server import serve
async def handle(ws):
    async for raw in ws:
        message = json.loads(raw)
        if message[0] == "EVENT":
            await ws.send(json.dumps(["OK", message[1]["id"], True, ""]))
        elif message[0] == "REQ":
            await ws.send(json.dumps(["EOSE", message[1]]))
async def main():
    async with serve(handle, "127.0.0.1", 0, max_size=2**20, compression=None) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"ws://127.0.0.1:{port}", flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


class _ProfilePrices:
    """What the agents ask of the payments for a status: the profiles' sat tariffs, no rates."""

    def __init__(self) -> None:
        self.tariffs = TariffBook(_NoTariffChanges(), SYSTEM_CLOCK)
        self.prices = None  # static tariffs: no price source

    async def warm_rate(self, profile: ProfileConfig) -> None:
        """No fiat price here: no rate to ask for."""

    def shown_tariff(self, profile: ProfileConfig) -> ShownTariff:
        tariff = self.tariffs.in_force(profile)
        return shown_tariff(tariff, None, ())


class _NoTariffChanges:
    """No operator changed a tariff: every charger's is its profile's."""

    async def all(self) -> list[TariffRecord]:
        return []

    async def save(self, record: TariffRecord) -> None:
        raise NotImplementedError


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_relay(kind: str) -> tuple[subprocess.Popen[str], str]:
    # The child binds port 0 and prints its URL: no port is chosen ahead and lost meanwhile.
    code = SINK_RELAY_CHILD if kind == "sink" else LOCAL_RELAY_CHILD
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: pin(1),
    )
    assert child.stdout is not None
    url = child.stdout.readline().strip()
    return child, url


def profile(index: int) -> ProfileConfig:
    return ProfileConfig(
        id=f"bench-{index}",
        name=f"Bench charger {index}",
        location=LocationConfig(lat=47.0 + index % 1000 / 1000, lon=8.0 + index // 1000 / 100),
        connectors=(
            ConnectorConfig(id=1, max_power_kw=Decimal(11)),
            ConnectorConfig(id=2, max_power_kw=Decimal(22)),
        ),
        tariff=TariffConfig(per_kwh_sat=Decimal(250)),
    )


async def run(count: int, relay_url: str, *, paced: bool) -> None:
    pool = RelayPool(
        [RelayConfig(url=relay_url)],
        max_events_per_minute=EMBEDDED_EVENTS_PER_MINUTE if paced else None,
    )
    await pool.start()
    await pool.wait_connected()
    settings = AgentSettings(public_url="https://strom.example", metadata_delay_s=3600)
    published: set[str] = set()
    accepted = 0
    done = asyncio.Event()

    def on_status(charger_id: str, result: PublishResult) -> None:
        nonlocal accepted
        published.add(charger_id)
        accepted += result.accepted
        if len(published) == count:
            done.set()

    unused = cast(Any, None)  # status publication touches neither database nor lightning
    prices = _ProfilePrices()
    services = AgentServices(
        settings=settings,
        pool=pool,
        db=unused,
        sessions=unused,
        payments=cast(Any, prices),  # the status shows the tariff in force: the profiles'
        backend=unused,
        commands=unused,
        store=unused,
        clock=SYSTEM_CLOCK,
        on_status=on_status,
    )
    snapshot = ChargerSnapshot(online=True, connectors={1: ("Available", True)})
    gc.collect()
    without_config = rss_kib()
    profiles = [profile(index) for index in range(count)]  # the configuration, loaded once
    gc.collect()
    before = rss_kib()
    started = time.perf_counter()
    supervisor = Supervisor()
    for index in range(count):
        agent = Agent(services, profiles[index], AgentKey(generate_secret_key()))
        agent.preload(snapshot, [])
        supervisor.add(agent)
    built = time.perf_counter()
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    await done.wait()
    finished = time.perf_counter()
    gc.collect()
    after = rss_kib()
    publish_s = finished - built
    print(f"agents:                {count:,} (one relay pool, one nostr-sdk client)")
    print(f"build agents + keys:   {built - started:.2f} s")
    print(f"publish every status:  {publish_s:.2f} s, {count / publish_s:,.0f} events/s")
    print(f"accepted by the relay: {accepted:,} of {count:,}")
    print(f"total from first key:  {finished - started:.2f} s")
    print(
        f"RSS per agent:         {(after - before) * 1024 / count / 1000:.1f} KB "
        f"({before / 1024:.1f} MiB with the pool and the profiles, "
        f"{after / 1024:.1f} MiB with every agent running)"
    )
    print(f"profiles (config):     {(before - without_config) * 1024 / count / 1000:.1f} KB each")
    stop.set()
    await task
    # Baseline: the same number of events of the same shape (the last status published,
    # re-signed by a fresh key each), published through the same pool without any agent.
    shape = next(iter(supervisor.agents.values()))._sign_status()
    tags = [list(tag) for tag in shape.tags if tag[0] != "d"]
    keys = [generate_secret_key() for _ in range(count)]
    base_started = time.perf_counter()
    results = await asyncio.gather(
        *(
            pool.publish_built(
                lambda key=key, n=n: sign_event(
                    key,
                    shape.kind,
                    [*tags, ["d", f"baseline-{n}"]],
                    shape.content,
                    int(time.time()),
                )
            )
            for n, key in enumerate(keys)
        )
    )
    base_s = time.perf_counter() - base_started
    print(
        f"baseline, no agents:   {base_s:.2f} s ({count / base_s:,.0f} events/s, "
        f"{sum(r.accepted for r in results):,} accepted): sign + publish through the same pool"
    )
    await pool.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument(
        "--relay",
        choices=["sink", "local"],
        default="sink",
        help="sink: acknowledges without storing (measures the agents); local: nostr-sdk's "
        "relay, paced to its per-connection message limit",
    )
    args = parser.parse_args()
    if os.environ.get("BENCH_PIN", "1") == "1":
        pin(0)
    child, url = start_relay(args.relay)
    try:
        asyncio.run(run(args.agents, url, paced=args.relay == "local"))
    finally:
        child.terminate()
        child.wait(timeout=10)


if __name__ == "__main__":
    main()
