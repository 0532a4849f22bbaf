"""The relay pool: per-relay publish results, NIP-42, the embedded relay, reconnects."""

from __future__ import annotations

import asyncio
import time

import pytest

from agent.identity import AgentKey
from agent.nostr_sdk_adapter import SdkClient, SdkLocalRelay
from agent.relays import Inbound, RelayPool
from strom_core.config import RelayConfig
from strom_nostr.dm import nip04_message
from strom_nostr.event import Event
from strom_nostr.keys import generate_secret_key
from tests.ports import RestartableRelay, unused_port

KEY = AgentKey(generate_secret_key())


async def test_publish_reports_each_relay(relay_url: str) -> None:
    dead = f"ws://127.0.0.1:{unused_port()}"
    pool = RelayPool([RelayConfig(url=relay_url)], allow_private_relays=True, publish_timeout_s=2)
    await pool.start()
    try:
        await pool.wait_connected()
        event = KEY.sign(1, [], "hello", 1_800_000_000)
        result = await pool.publish(event, extra_relays=[dead])
        assert result.event_id == event.id
        assert list(result.ok) == [relay_url]
        assert list(result.failed) == [dead]
        assert result.failed[dead]
        again = await pool.publish(event)  # the relay has it already: still a success
        assert again.accepted
        assert not again.failed
    finally:
        await pool.stop()


async def test_private_extra_relays_are_refused_unless_allowed(relay_url: str) -> None:
    pool = RelayPool([RelayConfig(url=relay_url)])
    await pool.start()
    try:
        await pool.wait_connected()
        event = KEY.sign(1, [], "hello", 1_800_000_000)
        result = await pool.publish(event, extra_relays=["ws://10.0.0.7", "ws://localhost:7"])
        assert list(result.ok) == [relay_url]  # a configured relay is trusted
        assert result.failed == {
            "ws://10.0.0.7": "refused: private or loopback address",
            "ws://localhost:7": "refused: private or loopback address",
        }
    finally:
        await pool.stop()


async def test_extra_relays_whose_name_resolves_to_a_private_address_are_refused(
    relay_url: str,
) -> None:
    names = {
        "inside.example": ["93.184.215.14", "192.168.1.20"],  # one private address is enough
        "mapped.example": ["::ffff:10.1.2.3"],
        "public.example": ["93.184.215.14"],
    }

    async def resolve(host: str, port: int) -> list[str]:
        if host not in names:
            raise OSError("Name or service not known")
        return names[host]

    pool = RelayPool([RelayConfig(url=relay_url)], resolve=resolve, publish_timeout_s=1)
    await pool.start()
    try:
        await pool.wait_connected()
        event = KEY.sign(1, [], "hello", 1_800_000_000)
        extra = ["ws://inside.example", "wss://mapped.example:7447", "ws://nowhere.example"]
        result = await pool.publish(event, extra_relays=extra)
        assert result.failed == {
            "ws://inside.example": "refused: resolves to a private or loopback address",
            "wss://mapped.example:7447": "refused: resolves to a private or loopback address",
            "ws://nowhere.example": "refused: cannot resolve nowhere.example: Name or service "
            "not known",
        }
        # The system resolver is the default: a name that cannot resolve (RFC 6761 .invalid)
        # is refused too, so nostr-sdk never connects to a host that was not checked.
        real = RelayPool([RelayConfig(url=relay_url)], publish_timeout_s=1)
        await real.start()
        try:
            await real.wait_connected()
            refused = await real.publish(event, extra_relays=["ws://relay.invalid"])
            assert refused.failed["ws://relay.invalid"].startswith(
                "refused: cannot resolve relay.invalid"
            )
        finally:
            await real.stop()
    finally:
        await pool.stop()


async def test_nip42_auth_is_answered_with_the_pool_key() -> None:
    relay = SdkLocalRelay(require_auth=True)
    url = await relay.start()
    authenticated = RelayPool([RelayConfig(url=url)], auth_secret=generate_secret_key())
    anonymous = RelayPool([RelayConfig(url=url)], publish_timeout_s=2)
    try:
        for pool in (authenticated, anonymous):
            await pool.start()
            await pool.wait_connected()
        assert (await authenticated.publish(KEY.sign(1, [], "a", 1_800_000_000))).accepted
        refused = await anonymous.publish(KEY.sign(1, [], "b", 1_800_000_000))
        assert not refused.accepted
        assert "auth" in refused.failed[url]
    finally:
        await authenticated.stop()
        await anonymous.stop()
        relay.shutdown()


async def test_the_embedded_relay_serves_other_clients() -> None:
    port = unused_port()
    pool = RelayPool([RelayConfig(url="embedded")], embedded_port=port)
    await pool.start()
    client = SdkClient()
    try:
        assert pool.embedded_url == f"ws://127.0.0.1:{port}"
        assert pool.read_relays == pool.write_relays == (pool.embedded_url,)
        event = KEY.sign(30522, [["d", "cp-1"]], "", 1_800_000_000)
        assert (await pool.publish(event)).accepted
        await client.add_relay(pool.embedded_url, read=True, write=False)
        await client.wait_connected(5)
        found = await client.fetch([{"ids": [event.id]}], [pool.embedded_url], timeout_s=3)
        assert len(found) == 1
    finally:
        await client.shutdown()
        await pool.stop()


async def _send(url: str, event: Event) -> None:
    """Send ``event`` from a new client (a driver's wallet, say) and wait for the relay's OK."""
    sender = SdkClient()
    try:
        await sender.add_relay(url, read=False, write=True)
        await sender.wait_connected(5)
        assert (await sender.send_event(event, [url], timeout_s=5)).ok
    finally:
        await sender.shutdown()


async def test_watch_delivers_events_for_the_agents_and_survives_a_relay_restart() -> None:
    relay = RestartableRelay()
    url = await relay.start()
    pool = RelayPool([RelayConfig(url=url)], retry_interval_s=0.5, reconnect_check_s=0.1)
    await pool.start()
    delivered: asyncio.Queue[Inbound] = asyncio.Queue()
    reconnected = asyncio.Event()

    async def deliver(inbound: Inbound) -> None:
        await delivered.put(inbound)

    reader = asyncio.create_task(pool.run(deliver))
    follower = asyncio.create_task(pool.follow_reconnects(lambda _url: reconnected.set()))
    try:
        await pool.wait_connected()
        await pool.watch([KEY.pubkey])
        stranger = generate_secret_key()
        first = nip04_message(stranger, KEY.pubkey, "one", created_at=int(time.time()))
        await _send(url, first)
        async with asyncio.timeout(5):
            assert (await delivered.get()).event == first

        relay.shutdown()  # the relay goes away and comes back on the same port, empty
        await relay.start()
        second = nip04_message(stranger, KEY.pubkey, "two", created_at=int(time.time()))
        await _send(url, second)  # stored by the new relay, whenever the pool comes back
        # nostr-sdk's reconnect backoff decides when the pool is back (seconds, more on a busy
        # machine; its first attempt may even reach the old relay as it shuts down): the
        # bounds are generous, and the waits end as soon as it has happened.
        async with asyncio.timeout(90):
            assert (await delivered.get()).event == second  # re-subscribed by itself
        async with asyncio.timeout(10):
            await reconnected.wait()  # and the pool reported the reconnect
    finally:
        follower.cancel()
        await pool.stop()
        await asyncio.wait_for(reader, 5)
        await asyncio.gather(follower, return_exceptions=True)
        relay.shutdown()


async def test_a_relay_back_without_the_inbox_subscription_gets_it_again() -> None:
    """After a relay restarted at once, nostr-sdk was seen connected again without having
    re-sent the subscription (deaf to every zap and DM); the pool sends it again itself."""
    clients: list[SdkClient] = []

    def client_factory(auth_secret: bytes | None) -> SdkClient:
        clients.append(SdkClient(auth_secret=auth_secret))
        return clients[-1]

    relay = RestartableRelay()
    url = await relay.start()
    pool = RelayPool(
        [RelayConfig(url=url)],
        retry_interval_s=0.5,
        reconnect_check_s=0.1,
        client_factory=client_factory,
    )
    await pool.start()
    delivered: asyncio.Queue[Inbound] = asyncio.Queue()

    async def deliver(inbound: Inbound) -> None:
        await delivered.put(inbound)

    reader = asyncio.create_task(pool.run(deliver))
    follower = asyncio.create_task(pool.follow_reconnects(lambda _url: None))
    try:
        await pool.wait_connected()
        await pool.watch([KEY.pubkey])
        await clients[0].unsubscribe("strom-inbox-0")  # what nostr-sdk lost over the reconnect
        relay.shutdown()
        await relay.start()
        dm = nip04_message(generate_secret_key(), KEY.pubkey, "hi", created_at=int(time.time()))
        await _send(url, dm)

        async with asyncio.timeout(90):  # nostr-sdk's reconnect backoff; ends when delivered
            assert (await delivered.get()).event == dm
    finally:
        follower.cancel()
        await pool.stop()
        await asyncio.wait_for(reader, 5)
        await asyncio.gather(follower, return_exceptions=True)
        relay.shutdown()


@pytest.mark.parametrize(
    ("looks", "reported"),
    [
        ([0, 1], 0),  # the first connection: the agents publish at their start anyway
        ([1, 2], 1),  # connected again
        ([0, 2], 1),  # connected, dropped and connected again between two looks
        ([1, 3], 1),  # twice between two looks: once is enough
    ],
)
async def test_reconnects_are_reported_however_they_fall_between_two_looks(
    looks: list[int], reported: int
) -> None:
    seen: list[str] = []
    counts = iter(looks)
    looked = asyncio.Event()
    relay = SdkLocalRelay()
    url = await relay.start()

    class CountingClient(SdkClient):
        async def relay_connections(self) -> dict[str, int]:
            count = next(counts, None)
            if count is None:
                looked.set()
                count = looks[-1]
            return {url: count}

    pool = RelayPool(
        [RelayConfig(url=url)],
        reconnect_check_s=0.01,
        client_factory=lambda secret: CountingClient(auth_secret=secret),
    )
    await pool.start()
    follower = asyncio.create_task(pool.follow_reconnects(seen.append))
    try:
        await asyncio.wait_for(looked.wait(), 5)
        assert seen == [url] * reported
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
        await pool.stop()
        relay.shutdown()


@pytest.mark.parametrize("count", [600])
async def test_many_keys_are_watched_in_chunks(relay_url: str, count: int) -> None:
    pool = RelayPool([RelayConfig(url=relay_url)])
    await pool.start()
    try:
        await pool.wait_connected()
        keys = [AgentKey(generate_secret_key()).pubkey for _ in range(count)]
        await pool.watch(keys)
        filters = pool.inbox_filters(keys[:3])
        assert filters[0]["kinds"] == [4, 9735]
        assert filters[1]["kinds"] == [1059]
        assert filters[0]["since"] - filters[1]["since"] == 2 * 86_400
    finally:
        await pool.stop()


async def test_the_pacer_lets_a_burst_through_then_holds_to_the_rate() -> None:
    from agent.relays import _Pacer
    from strom_core.clock import SYSTEM_CLOCK

    pacer = _Pacer(600, SYSTEM_CLOCK)  # 10 a second, bursts of 600
    started = time.monotonic()
    for _ in range(600):
        await pacer.take()
    assert time.monotonic() - started < 0.5
    for _ in range(3):
        await pacer.take()
    assert time.monotonic() - started >= 0.25  # three more at 10 a second


def test_an_embedded_relay_is_paced_by_default() -> None:
    assert RelayPool([RelayConfig(url="embedded")])._pacer is not None
    assert RelayPool([RelayConfig(url="wss://relay.example.com")])._pacer is None
