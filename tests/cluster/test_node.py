"""The cluster node on PostgreSQL: presence, the heartbeat that notices a lost lease, one
leader per role with fail-over, and live events reaching every process's subscribers once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from typing import Any

import orjson
import pytest

from cockpit.live import LiveHub, _Subscriber
from cockpit.live_bus import LiveFanout
from strom.cluster import ClusterNode
from strom_cluster import LocalBus, LocalHub
from strom_core.config import ClusterConfig
from strom_storage.db import Database
from strom_storage.leases import Lease

pytestmark = pytest.mark.postgres

MakeNode = Callable[[str], Awaitable[ClusterNode]]
TTL = 1.5  # seconds; short so fail-over happens within the test
WAIT = 10.0


@pytest.fixture
async def nodes(cluster_url: str) -> AsyncIterator[MakeNode]:
    """Makes nodes ("processes") on the test's database, each with its own engines."""
    hub = LocalHub()
    async with AsyncExitStack() as stack:

        async def make(process_id: str = "") -> ClusterNode:
            db = Database.from_url(cluster_url)
            stack.push_async_callback(db.close)
            config = ClusterConfig(enabled=True, lease_ttl_s=TTL, process_id=process_id)
            node = ClusterNode(config, db, LocalBus(hub), process_id or f"p{id(db) % 10**6}")
            await node.join()
            stack.push_async_callback(node.aclose)
            return node

        yield make


async def test_a_lease_taken_over_is_reported_lost_by_the_next_heartbeat(nodes: MakeNode) -> None:
    a, b = await nodes("a"), await nodes("b")
    lease = await a.leases.acquire("charger:CP-1", a.process_id, TTL)
    assert lease is not None
    lost: list[Lease] = []

    async def on_lost(gone: Lease) -> None:
        lost.append(gone)

    a.hold(lease, on_lost)
    assert await a.heartbeat() == []  # renewed: still held
    assert a.holds("charger:CP-1") is not None
    await b.leases.take_over("charger:CP-1", b.process_id, TTL)  # the charger moved to b
    assert [x.name for x in await a.heartbeat()] == ["charger:CP-1"]
    assert [x.name for x in lost] == ["charger:CP-1"]
    assert a.holds("charger:CP-1") is None
    assert a.holds(a.presence) is not None  # its own presence is untouched


async def test_a_fixed_process_id_waits_for_its_live_predecessor(nodes: MakeNode) -> None:
    first = await nodes("web-1")
    holder = await first.leases.holder(first.presence)
    assert holder is not None
    assert holder.owner == "web-1"
    second = asyncio.create_task(nodes("web-1"))
    await asyncio.sleep(TTL / 2)
    assert not second.done()  # two live processes never share an id
    first.forget(first.presence)  # it "dies": nobody renews its presence any more
    node = await asyncio.wait_for(second, WAIT)
    assert node.holds(node.presence) is not None


async def test_one_leader_at_a_time_and_a_dead_leader_is_replaced(nodes: MakeNode) -> None:
    a, b = await nodes("a"), await nodes("b")
    running: list[str] = []
    started = asyncio.Event()

    def work(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
        async def run() -> None:
            running.append(name)
            started.set()
            await asyncio.Event().wait()

        return run

    leaders = [asyncio.create_task(a.lead("settlements", work("a")))]
    await asyncio.wait_for(started.wait(), WAIT)
    started.clear()
    leaders.append(asyncio.create_task(b.lead("settlements", work("b"))))
    beats = asyncio.create_task(b.run())
    await asyncio.sleep(TTL)
    assert running == ["a"]  # b waits while a leads (a's lease is renewed below)
    await a.heartbeat()
    # a dies: its role's task ends without releasing, and its heartbeat stops.
    leaders[0].cancel()
    a.forget("leader:settlements")
    await asyncio.wait_for(started.wait(), TTL * 4)
    assert running == ["a", "b"]
    for task in (*leaders, beats):
        task.cancel()
    await asyncio.gather(*leaders, beats, return_exceptions=True)


async def test_a_leader_that_loses_its_lease_stops_its_work(nodes: MakeNode) -> None:
    a, b = await nodes("a"), await nodes("b")
    cancelled = asyncio.Event()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    leader = asyncio.create_task(a.lead("retention", work))
    await asyncio.wait_for(started.wait(), WAIT)
    await b.leases.take_over("leader:retention", b.process_id, TTL)
    await a.heartbeat()
    await asyncio.wait_for(cancelled.wait(), WAIT)
    leader.cancel()
    await asyncio.gather(leader, return_exceptions=True)


def _hub() -> LiveHub:
    return LiveHub(auth=None, refunds=None)


async def test_live_events_reach_every_process_once() -> None:
    bus_hub = LocalHub()
    hubs = [_hub() for _ in range(3)]
    fanouts = [LiveFanout(h, LocalBus(bus_hub), f"p{i}") for i, h in enumerate(hubs)]
    tasks = [asyncio.create_task(f.run()) for f in fanouts]
    await asyncio.sleep(0.05)  # subscribed
    queues = []

    for h in hubs:
        subscriber = _Subscriber(session_id=None)
        h._subscribers.add(subscriber)
        queues.append(subscriber.queue)
    payer = _Subscriber(session_id="s-1")
    hubs[2]._subscribers.add(payer)
    hubs[0]._send({"type": "session", "session_id": "s-1", "n": 1}, "s-1")
    hubs[1]._send({"type": "charger", "charger_id": "CP-2"}, None)
    for queue in queues:
        got = [orjson.loads(await asyncio.wait_for(queue.get(), WAIT)) for _ in range(2)]
        assert sorted(m["type"] for m in got) == ["charger", "session"]
    assert orjson.loads(await asyncio.wait_for(payer.queue.get(), WAIT))["n"] == 1
    await asyncio.sleep(0.1)
    assert all(q.empty() for q in queues)  # nothing twice: no echo of a process's own
    assert payer.queue.empty()  # the payer's stream has its session only
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_dead_processs_outbox_claims_are_taken_over_within_the_lease(
    nodes: MakeNode,
) -> None:
    from datetime import UTC, datetime

    from strom_storage.outbox import queue_effect
    from strom_storage.outbox_claims import ClaimingOutboxStore

    a, b = await nodes("a"), await nodes("b")
    now = datetime.now(UTC)
    await a.db.write(
        lambda conn: queue_effect(
            conn, key="k-1", kind="noop", payload={}, session_id=None, now=now
        )
    )
    claimed = await ClaimingOutboxStore(a.db, "a", living_claimants=True).due(now)
    assert [row.key for row in claimed] == ["k-1"]
    patient = ClaimingOutboxStore(b.db, "b")  # waits for the claim's own expiry (minutes)
    failing_over = ClaimingOutboxStore(b.db, "b", living_claimants=True)
    assert await failing_over.due(now) == []  # a is alive: its claim holds
    a.forget(a.presence)  # a dies: its presence lease is not renewed any more
    await asyncio.sleep(TTL + 0.2)
    assert await patient.due(now) == []
    assert [row.key for row in await failing_over.due(now)] == ["k-1"]


async def test_a_payment_event_carries_the_new_money_even_after_a_payment_elsewhere() -> None:
    from strom_core.session import Transition, apply
    from strom_core.session_events import TopUpSettled
    from tests.core.test_session_flows import charging

    bus_hub = LocalHub()
    a, b = _hub(), _hub()
    fanouts = [LiveFanout(a, LocalBus(bus_hub), "a"), LiveFanout(b, LocalBus(bus_hub), "b")]
    tasks = [asyncio.create_task(f.run()) for f in fanouts]
    await asyncio.sleep(0.05)
    watcher = _Subscriber(session_id=None)
    b._subscribers.add(watcher)
    paid = charging(2_000_000)
    a.on_transition(Transition(paid))  # the first payment settles on process a
    first = [orjson.loads(await asyncio.wait_for(watcher.queue.get(), WAIT)) for _ in range(2)]
    assert {m["type"] for m in first} == {"session", "payment"}
    topped = apply(paid, TopUpSettled("h2", 500_000)).session
    b.on_transition(Transition(topped))  # a top-up settles on process b
    messages = [orjson.loads(watcher.queue.get_nowait()) for _ in range(2)]
    [payment] = [m for m in messages if m["type"] == "payment"]
    assert payment["amount_msat"] == 500_000  # not the 2,500,000 paid in all
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
