"""Latency from a settled payment to RemoteStartTransaction arriving at the charger.

Strom (SQLite, fake lightning backend) serves N simulated chargers (``SimulatedChargePoint``
over real OCPP websockets on 127.0.0.1, each with K plugged connectors). For every session the
benchmark opens it (invoice made, not timed), then calls ``PaymentService.settle`` — what the
settlement stream does when the backend reports the invoice paid — and the clock stops when the
charger's websocket reader receives the RemoteStartTransaction CALL (before it validates or
answers it). Settlements are made one at a time (each waits for its CALL), so the figure is
the path's latency, not a queue.

Baseline, same run, same chargers: ``ocpp.commands.trigger_status`` (a server→charger CALL
through the same OCPP command path, without the database, outbox and effect runner) timed the
same way.

Receipt path (second phase, on the other half of the connectors): the backend's settlement
stream is switched off, the driver's wallet pays a zap invoice, and the charger's zap receipt
(kind 9735, signed with the charger's key as Strom's own receipt would be) is sent to the
embedded relay; the clock runs from sending the receipt to the relay until RemoteStart
arrives: relay → agent → receipt checks → the backend confirms the invoice → settle → outbox.

    python bench/payment_to_power.py --chargers 100 --connectors 10

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from websockets.asyncio.client import connect

from ocpp_server import SimulatedChargePoint, SimulatorOptions
from ocpp_server.ocppj import Call
from strom_core.bolt11 import decode_invoice
from strom_core.ports import ConnectorStatusChanged, OcppEvent
from strom_lightning import FakeDriverWallet
from strom_nostr.event import sign_event
from strom_nostr.keys import generate_secret_key
from strom_nostr.zap_receipt import zap_receipt

CONNECTOR_BLOCK = """
[[connectors]]
id = {n}
type = "Type2"
max_power_kw = 11
"""


class Arrivals:
    """Arrival times of CALLs at the chargers, keyed by (charger, action)."""

    def __init__(self) -> None:
        self.waiters: dict[tuple[str, str], asyncio.Future[float]] = {}

    def expect(self, charger_id: str, action: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters[(charger_id, action)] = future
        return future

    def arrived(self, charger_id: str, action: str) -> None:
        now = time.perf_counter()
        future = self.waiters.pop((charger_id, action), None)
        if future is not None and not future.done():
            future.set_result(now)


def timed_charger(arrivals: Arrivals, options: SimulatorOptions) -> SimulatedChargePoint:
    def on_call(call: Call) -> None:
        arrivals.arrived(options.charger_id, call.action)

    charger = SimulatedChargePoint(options, observe=on_call)
    return charger


def add_connectors(folder: Path, ids: list[str], connectors: int) -> None:
    extra = "".join(CONNECTOR_BLOCK.format(n=n) for n in range(2, connectors + 1))
    for charger_id in ids:
        path = folder / "profiles" / f"{charger_id}.toml"
        text = path.read_text()
        marker = "max_power_kw = 11\n"
        path.write_text(text.replace(marker, marker + extra, 1))


async def run(args: argparse.Namespace) -> None:
    _common.quiet()
    ids = [f"bench-{n:03d}" for n in range(args.chargers)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        passwords: dict[str, str] = {}
        _common.strom_config(folder, chargers=ids, passwords=passwords)
        add_connectors(folder, ids, 2 * args.connectors)  # the second half: receipt path
        config = _common.load_strom_config(
            folder,
            {"STROM_OCPP__METER_INTERVAL_S": "60", "STROM_SESSIONS__START_TIMEOUT_S": "60"},
        )
        async with _common.running_strom(config) as strom:
            arrivals = Arrivals()
            online: dict[str, set[int]] = {c: set() for c in ids}
            all_online = asyncio.Event()

            async def watch(event: OcppEvent) -> None:
                if isinstance(event, ConnectorStatusChanged) and event.charger_id in online:
                    online[event.charger_id].add(event.connector_id)
                    if all(len(v) >= 2 * args.connectors for v in online.values()):
                        all_online.set()

            strom.events.subscribe(watch)
            chargers = [
                timed_charger(
                    arrivals,
                    SimulatorOptions(
                        url=f"ws://127.0.0.1:{strom.ocpp_port}/ocpp",
                        charger_id=cid,
                        password=passwords[cid],
                        connectors=2 * args.connectors,
                        power_kw=Decimal(11),
                        speed=1.0,
                        plugged=tuple(range(1, 2 * args.connectors + 1)),
                        reconnect_delay_s=0.1,
                    ),
                )
                for cid in ids
            ]
            tasks = [asyncio.create_task(c.run()) for c in chargers]
            try:
                await asyncio.wait_for(all_online.wait(), 120)
                await asyncio.sleep(1.0)  # post-boot configuration CALLs settle

                # Baseline: a server->charger CALL through the OCPP command path alone.
                base: list[float] = []
                for n in range(args.sessions):
                    cid = ids[n % len(ids)]
                    arrived = arrivals.expect(cid, "TriggerMessage")
                    t0 = time.perf_counter()
                    command = asyncio.create_task(strom.ocpp.commands.trigger_status(cid, 1))
                    base.append(await asyncio.wait_for(arrived, 10) - t0)
                    await command

                # Strom: settle -> outbox -> effect runner -> RemoteStartTransaction.
                lat: list[float] = []
                settle_s: list[float] = []
                profiles = {p.id: p for p in config.profiles}
                slots = [(cid, k) for k in range(1, args.connectors + 1) for cid in ids]
                deadline = time.perf_counter() + args.max_seconds
                for cid, connector in slots[: args.sessions]:
                    if time.perf_counter() > deadline:
                        break
                    opened = await strom.payments.open_session(
                        profiles[cid],
                        connector,
                        2_000_000,
                        description_hash=bytes(32),
                        initiator="lnurl",
                    )
                    arrived = arrivals.expect(cid, "RemoteStartTransaction")
                    t0 = time.perf_counter()
                    await strom.payments.settle(opened.invoice.payment_hash)
                    settle_s.append(time.perf_counter() - t0)
                    lat.append(await asyncio.wait_for(arrived, 10) - t0)
                receipt_lat = await receipt_phase(strom, args, ids, arrivals)
            finally:
                for c in chargers:
                    c.stop()
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    report(args, lat, settle_s, base, receipt_lat)


def report(
    args: argparse.Namespace,
    lat: list[float],
    settle_s: list[float],
    base: list[float],
    receipt_lat: list[float],
) -> None:
    def ms(values: list[float], q: float) -> float:
        return _common.percentile(values, q) * 1000

    print(
        f"sessions {len(lat)} over {args.chargers} chargers x {args.connectors} connectors\n"
        f"settle -> RemoteStartTransaction at charger: p50 {ms(lat, 50):.2f} ms, "
        f"p99 {ms(lat, 99):.2f} ms, max {ms(lat, 100):.2f} ms\n"
        f"  of which settle() itself (commit):     p50 {ms(settle_s, 50):.2f} ms, "
        f"p99 {ms(settle_s, 99):.2f} ms\n"
        f"baseline trigger_status -> TriggerMessage:  p50 {ms(base, 50):.2f} ms, "
        f"p99 {ms(base, 99):.2f} ms, max {ms(base, 100):.2f} ms"
    )
    if receipt_lat:
        print(
            f"zap receipt at relay -> RemoteStartTransaction: p50 {ms(receipt_lat, 50):.2f} ms, "
            f"p99 {ms(receipt_lat, 99):.2f} ms, max {ms(receipt_lat, 100):.2f} ms "
            f"({len(receipt_lat)} sessions)"
        )
        _common.result(
            "zap receipt to RemoteStart p99 (ms)",
            ms(receipt_lat, 99),
            ms(base, 99),
            "ms",
            "p99 < 100 ms",
            ms(receipt_lat, 99) < 100,
            note=f"p50 {ms(receipt_lat, 50):.2f} ms; {len(receipt_lat)} sessions; "
            "in-process relay; baseline: a bare OCPP CALL",
        )
    _common.result(
        "payment to RemoteStart p99 (ms)",
        ms(lat, 99),
        ms(base, 99),
        "ms",
        "p99 < 20 ms",
        ms(lat, 99) < 20,
        note=f"p50 {ms(lat, 50):.2f} ms vs {ms(base, 50):.2f} ms; "
        f"{len(lat)} sessions; baseline: a bare OCPP CALL",
    )


async def receipt_phase(
    strom: Any, args: argparse.Namespace, ids: list[str], arrivals: Arrivals
) -> list[float]:
    """Zap, pay without the backend's notification, send the receipt; time to RemoteStart."""
    for task in asyncio.all_tasks():
        if task.get_name() == "settlements":  # only the receipt can start these sessions
            task.cancel()
    await asyncio.sleep(0.1)
    wallet = FakeDriverWallet(strom.backend)
    profiles = {p.id: p for p in strom.config.profiles}
    relay_url = strom.agents.pool.embedded_url
    slots = [(cid, k) for k in range(args.connectors + 1, 2 * args.connectors + 1) for cid in ids]
    lat: list[float] = []
    deadline = time.perf_counter() + args.max_seconds
    async with connect(relay_url, ping_interval=None) as relay:
        for cid, connector in slots[: args.sessions]:
            if time.perf_counter() > deadline:
                break
            agent = strom.agents.agent(cid)
            request = sign_event(
                generate_secret_key(),
                9734,
                [
                    ["p", agent.pubkey],
                    ["amount", "2000000"],
                    ["relays", relay_url],
                    ["connector", str(connector)],
                ],
                "",
                int(time.time()),
            )
            description = request.to_json()
            opened = await strom.payments.open_session(
                profiles[cid],
                connector,
                2_000_000,
                description_hash=hashlib.sha256(description.encode()).digest(),
                initiator="zap",
                initiator_pubkey=request.pubkey,
                zap_request={"description": description, "relays": [relay_url]},
                zap_request_id=request.id,
            )
            await wallet.pay(opened.invoice.bolt11)
            receipt = zap_receipt(
                agent.key.secret,
                description,
                bolt11_invoice=opened.invoice.bolt11,
                paid_at=int(time.time()),
            )
            decode_invoice.cache_clear()  # as if another process had built the receipt
            arrived = arrivals.expect(cid, "RemoteStartTransaction")
            t0 = time.perf_counter()
            await relay.send(json.dumps(["EVENT", receipt.to_dict()]))
            lat.append(await asyncio.wait_for(arrived, 10) - t0)
    return lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=100)
    parser.add_argument("--connectors", type=int, default=10, help="per charger")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args()
    args.sessions = min(args.sessions, args.chargers * args.connectors)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
