"""How many chargers one OCPP server process holds, and how many messages it serves.

Runs the server (OcppServer with the in-memory core, strict schema validation) in its own
process pinned to one CPU, and N simulated chargers from this process on another CPU:

1. connect and boot every charger (each answers the server's post-boot ChangeConfiguration and
   TriggerMessage CALLs), reporting the connect rate;
2. read the server's RSS while all chargers are held, per charger, against its RSS before;
3. drive Heartbeat, StatusNotification and MeterValues (in turn, one outstanding CALL per
   charger) for a while and report answered CALLs per second.

    python bench/ocpp_connections.py --chargers 10000 --seconds 20 [--baseline] [--ocpp 2.0.1]

With ``--ocpp 2.0.1`` the chargers speak OCPP 2.0.1 instead: they answer the post-boot
SetVariables, TriggerMessage and GetBaseReport, and the load is Heartbeat, StatusNotification
and TransactionEvent Updated with meter values.

With ``--baseline`` the same chargers then run the same load against a minimal central system
written directly on the ``ocpp`` library (mobilityhouse's ``ChargePoint`` of the version, v16 or
v201, with ``@on`` handlers for the four actions, schema validation inline as Strom's server
does it), also in its own process on the same CPU, and the script prints both servers' CPU time
per answered CALL.

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parents[1]


def raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# --- server process ------------------------------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from ocpp_server import (
        ChargerAuth,
        InMemoryOcppCore,
        MemoryEventSink,
        OcppServer,
        OcppServerSettings,
        StaticChargerAuth,
        hash_password,
    )

    class CountingSink(MemoryEventSink):
        """Counts events without keeping them (keeping 10k chargers' events is not the point)."""

        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        async def publish(self, event: Any) -> None:
            self.count += 1

    stored = hash_password(args.password, log2_n=args.log2n) if args.password else None
    chargers = StaticChargerAuth(
        ChargerAuth(f"bench-{n}", stored, connectors=2) for n in range(args.chargers)
    )
    settings = OcppServerSettings(
        host="127.0.0.1",
        port=0,
        heartbeat_interval_s=3600,
        boot_backstop_delay_s=3600,
        command_timeout_s=60,
    )
    server = OcppServer(settings, chargers, InMemoryOcppCore(), CountingSink())
    await server.start()
    print(f"READY {server.port}", flush=True)
    # Serve until the parent closes our stdin, then print the server's own counters.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    counters = server.counters()
    print(f"COUNTERS {counters.received} {counters.sent}", flush=True)
    await server.stop()


def baseline_v16() -> type:
    """A central system on the ocpp library's v16 ChargePoint: the four actions' handlers."""
    from ocpp.routing import on
    from ocpp.v16 import ChargePoint, call_result
    from ocpp.v16.enums import Action, RegistrationStatus

    class CentralSystem(ChargePoint):  # type: ignore[misc]
        @on(Action.boot_notification)  # type: ignore[misc]
        def on_boot(self, **_: Any) -> Any:
            return call_result.BootNotification(
                current_time=now(), interval=3600, status=RegistrationStatus.accepted
            )

        @on(Action.heartbeat)  # type: ignore[misc]
        def on_heartbeat(self, **_: Any) -> Any:
            return call_result.Heartbeat(current_time=now())

        @on(Action.status_notification)  # type: ignore[misc]
        def on_status(self, **_: Any) -> Any:
            return call_result.StatusNotification()

        @on(Action.meter_values)  # type: ignore[misc]
        def on_meter_values(self, **_: Any) -> Any:
            return call_result.MeterValues()

    return CentralSystem


def baseline_v201() -> type:
    """A central system on the ocpp library's v201 ChargePoint: the four actions' handlers."""
    from ocpp.routing import on
    from ocpp.v201 import ChargePoint, call_result
    from ocpp.v201.enums import Action, RegistrationStatusEnumType

    class CentralSystem(ChargePoint):  # type: ignore[misc]
        @on(Action.boot_notification)  # type: ignore[misc]
        def on_boot(self, **_: Any) -> Any:
            return call_result.BootNotification(
                current_time=now(), interval=3600, status=RegistrationStatusEnumType.accepted
            )

        @on(Action.heartbeat)  # type: ignore[misc]
        def on_heartbeat(self, **_: Any) -> Any:
            return call_result.Heartbeat(current_time=now())

        @on(Action.status_notification)  # type: ignore[misc]
        def on_status(self, **_: Any) -> Any:
            return call_result.StatusNotification()

        @on(Action.transaction_event)  # type: ignore[misc]
        def on_transaction_event(self, **_: Any) -> Any:
            return call_result.TransactionEvent()

    return CentralSystem


async def serve_baseline(args: argparse.Namespace) -> None:
    """The baseline: a central system on the ocpp library and nothing else."""
    import ocpp.messages
    from websockets.asyncio.server import ServerConnection, serve

    ocpp.messages.ASYNC_VALIDATION = False  # validate in the loop, as Strom's server does
    central_system = baseline_v201() if args.ocpp == "2.0.1" else baseline_v16()

    async def handler(ws: ServerConnection) -> None:
        charger_id = (ws.request.path if ws.request else "/x").rstrip("/").rsplit("/", 1)[-1]
        try:
            await central_system(charger_id, ws).start()
        except Exception:  # the charger went away; the benchmark goes on
            return

    async with serve(
        handler,
        "127.0.0.1",
        0,
        subprotocols=[f"ocpp{args.ocpp}"],  # type: ignore[list-item]
        ping_interval=None,
        compression=None,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"READY {port}", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        print("COUNTERS - - -", flush=True)


# --- chargers --------------------------------------------------------------------------------


class Charger:
    """One bench charger: raw frames, answers the server's CALLs, one CALL at a time."""

    __slots__ = ("_ids", "_pending", "_reader", "charger_id", "protocol", "ws")

    def __init__(self, charger_id: str, protocol: str = "ocpp1.6") -> None:
        self.charger_id = charger_id
        self.protocol = protocol
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: asyncio.Future[Any] | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self, base: str, password: str | None) -> None:
        headers = {}
        if password:
            token = base64.b64encode(f"{self.charger_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self.ws = await connect(
            f"{base}/{self.charger_id}",
            subprotocols=[self.protocol],  # type: ignore[list-item]
            additional_headers=headers,
            ping_interval=None,
            compression=None,
            open_timeout=120,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            frame = json.loads(message)
            if frame[0] == 2:  # a CALL from the server: accept it
                await self.ws.send(json.dumps([3, frame[1], accept(frame[2], frame[3])]))
            elif self._pending is not None and not self._pending.done():
                self._pending.set_result(frame)

    async def call(self, action: str, payload: dict[str, Any]) -> Any:
        assert self.ws is not None
        self._pending = asyncio.get_running_loop().create_future()
        await self.ws.send(json.dumps([2, str(next(self._ids)), action, payload]))
        frame = await self._pending
        if frame[0] != 3:
            raise RuntimeError(f"{self.charger_id}: {action} refused: {frame}")
        return frame[2]

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()


def accept(action: str, payload: dict[str, Any]) -> dict[str, Any]:
    """A charger's answer accepting one of the server's CALLs (either version)."""
    if action == "GetConfiguration":
        return {"configurationKey": []}
    if action == "SetVariables":
        return {
            "setVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "component": d["component"],
                    "variable": d["variable"],
                }
                for d in payload["setVariableData"]
            ]
        }
    return {"status": "Accepted"}


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


BOOT_16 = {"chargePointVendor": "Bench", "chargePointModel": "B1"}
MESSAGES_16 = [
    ("Heartbeat", lambda n: {}),
    (
        "StatusNotification",
        lambda n: {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Charging",
            "timestamp": now(),
        },
    ),
    (
        "MeterValues",
        lambda n: {
            "connectorId": 1,
            "transactionId": 1 + n % 1000,
            "meterValue": [
                {
                    "timestamp": now(),
                    "sampledValue": [
                        {
                            "value": str(1000 + n),
                            "measurand": "Energy.Active.Import.Register",
                            "unit": "Wh",
                            "context": "Sample.Periodic",
                        },
                        {"value": "11000", "measurand": "Power.Active.Import", "unit": "W"},
                    ],
                }
            ],
        },
    ),
]


BOOT_201 = {"reason": "PowerUp", "chargingStation": {"vendorName": "Bench", "model": "B1"}}
MESSAGES_201 = [
    ("Heartbeat", lambda n: {}),
    (
        "StatusNotification",
        lambda n: {
            "timestamp": now(),
            "connectorStatus": "Occupied",
            "evseId": 1,
            "connectorId": 1,
        },
    ),
    (
        "TransactionEvent",
        lambda n: {
            "eventType": "Updated",
            "timestamp": now(),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": n,
            "transactionInfo": {"transactionId": f"tx-{n % 1000}", "chargingState": "Charging"},
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": [
                {
                    "timestamp": now(),
                    "sampledValue": [
                        {
                            "value": 1000 + n,
                            "measurand": "Energy.Active.Import.Register",
                            "unitOfMeasure": {"unit": "Wh"},
                            "context": "Sample.Periodic",
                        },
                        {"value": 11000, "measurand": "Power.Active.Import"},
                    ],
                }
            ],
        },
    ),
]
# Per version: the subprotocol, the BootNotification and the load's messages, in turn.
VERSIONS: dict[str, tuple[str, dict[str, Any], list[Any]]] = {
    "1.6": ("ocpp1.6", BOOT_16, MESSAGES_16),
    "2.0.1": ("ocpp2.0.1", BOOT_201, MESSAGES_201),
}


def start_server(args: argparse.Namespace, *, baseline: bool = False) -> subprocess.Popen[str]:
    mode = "--serve-baseline" if baseline else "--serve"
    command = [sys.executable, __file__, mode, "--chargers", str(args.chargers)]
    command += ["--ocpp", args.ocpp]
    if args.password:
        command += ["--password", args.password, "--log2n", str(args.log2n)]
    return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


async def drive(args: argparse.Namespace, port: int, pid: int, label: str = "") -> float:
    """Connect, hold and load; prints the figures and returns server CPU µs per CALL."""
    base = f"ws://127.0.0.1:{port}/ocpp"
    baseline = rss_kib(pid)
    protocol, boot, messages = VERSIONS[args.ocpp]
    chargers = [Charger(f"bench-{n}", protocol) for n in range(args.chargers)]
    gate = asyncio.Semaphore(args.concurrency)

    async def bring_up(charger: Charger) -> None:
        async with gate:
            await charger.open(base, args.password)
            await charger.call("BootNotification", boot)

    started = time.perf_counter()
    cpu_started = cpu_seconds(pid)
    await asyncio.gather(*(bring_up(c) for c in chargers))
    connect_s = time.perf_counter() - started
    connect_cpu = (cpu_seconds(pid) - cpu_started) / connect_s
    # Let the post-boot CALLs (1.6: 3 ChangeConfiguration, 3 TriggerMessage each; 2.0.1:
    # SetVariables, TriggerMessage and GetBaseReport) finish.
    await asyncio.sleep(args.settle)
    held = rss_kib(pid)

    calls = 0
    stop_at = time.perf_counter() + args.seconds

    async def worker(index: int) -> None:
        nonlocal calls
        mine = chargers[index :: args.workers]
        for n in itertools.count():
            charger = mine[n % len(mine)]
            action, payload = messages[n % len(messages)]
            await charger.call(action, payload(n))
            calls += 1
            if time.perf_counter() >= stop_at:
                return

    load_started = time.perf_counter()
    cpu_started = cpu_seconds(pid)
    await asyncio.gather(*(worker(i) for i in range(min(args.workers, len(chargers)))))
    load_s = time.perf_counter() - load_started
    server_cpu = (cpu_seconds(pid) - cpu_started) / load_s
    after = rss_kib(pid)
    for charger in chargers:
        await charger.close()

    n = args.chargers
    per_call_us = server_cpu * load_s / max(calls, 1) * 1e6
    per_charger_kb = (held - baseline) * 1024 / n / 1000
    if label:
        print(
            f"{label}: {calls / load_s:.0f} CALLs/s, server CPU {per_call_us:.0f} µs per CALL,"
            f" RSS {per_charger_kb:.1f} KB per charger held"
        )
        return per_call_us
    print(f"OCPP                         : {args.ocpp}")
    print(f"chargers held                : {n}")
    print(f"connect + boot               : {connect_s:.1f} s ({n / connect_s:.0f} chargers/s)")
    print(f"server CPU while connecting  : {connect_cpu:.0%} of one core")
    print(f"server RSS before / held     : {baseline / 1024:.1f} MiB / {held / 1024:.1f} MiB")
    print(f"server RSS per charger       : {per_charger_kb:.1f} KB")
    print(f"load                         : {calls} CALLs in {load_s:.1f} s")
    print(f"CALLs answered per second    : {calls / load_s:.0f} (each: 1 frame in, 1 out)")
    print(f"server CPU during load       : {server_cpu:.0%} of one core")
    print(f"RSS per charger after load   : {(after - baseline) * 1024 / n / 1000:.1f} KB")
    print(f"server CPU per CALL          : {per_call_us:.0f} µs")
    return per_call_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the load phase")
    parser.add_argument("--workers", type=int, default=64, help="chargers busy at once")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes at once")
    parser.add_argument("--settle", type=float, default=5.0, help="wait after boots")
    parser.add_argument("--password", default=None, help="use Basic auth with this key")
    parser.add_argument("--log2n", type=int, default=14, help="scrypt cost of the hashes")
    parser.add_argument(
        "--baseline", action="store_true", help="also measure a central system on the ocpp library"
    )
    parser.add_argument("--ocpp", choices=sorted(VERSIONS), default="1.6", help="OCPP version")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    limit = raise_file_limit()
    if args.serve or args.serve_baseline:
        pin(0)
        asyncio.run(serve_baseline(args) if args.serve_baseline else serve(args))
        return
    if limit < args.chargers + 100:
        print(f"open-file limit {limit} is below {args.chargers} chargers", file=sys.stderr)
    pin(1)
    server = start_server(args)
    assert server.stdout is not None
    assert server.stdin is not None
    port = int(server.stdout.readline().split()[1])
    try:
        strom_us = asyncio.run(drive(args, port, server.pid))
    finally:
        server.stdin.close()
        counters = server.stdout.readline().split()
        server.wait(timeout=120)
    if len(counters) == 3:
        print(f"server frames in / out       : {counters[1]} / {counters[2]}")
    if not args.baseline:
        return
    base = start_server(args, baseline=True)
    assert base.stdout is not None
    assert base.stdin is not None
    port = int(base.stdout.readline().split()[1])
    try:
        base_us = asyncio.run(drive(args, port, base.pid, label="baseline (ocpp library)"))
    finally:
        base.stdin.close()
        base.stdout.readline()
        base.wait(timeout=120)
    print(f"baseline CPU per CALL        : {base_us:.0f} µs")
    print(f"Strom / baseline per CALL    : {strom_us / base_us:.2f}")


if __name__ == "__main__":
    main()
