"""``strom demo``: the whole story on one machine, with nothing external.

Starts Strom on the embedded defaults — SQLite in the demo folder, the fake lightning backend
(real, signed BOLT11 invoices; no real money), the in-process pieces — plus a simulated
charge point (OCPP 1.6, or 2.0.1 with ``--ocpp 2.0.1``) whose meter runs faster than real
time, then plays a driver through the story over real HTTP and OCPP: pay by LNURL, charge,
stop with the withdraw link, get the refund.
Each step is printed with its amounts, and nothing else: the service's log goes to
``strom.log`` in the demo folder (or to the terminal with ``--verbose``). ``--once`` exits
after the story (0 when every check passed); without it Strom keeps serving so a person can
open the pages and try by hand.

``--dynamic`` gives the charger a dynamic tariff (time-of-use windows in its profile) and plays a
recorded day of hourly energy prices fast (:data:`RECORDED_DAY`, one hour every
:data:`RECORDED_STEP_S` seconds), so the charge spans several prices; the story ends with the
per-interval bill: each interval's energy, price and cost, and their sum.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import segno

from ocpp_server import SimulatorOptions, simulated_charge_point
from strom.app import Strom, write_charger_password
from strom.config import StromConfig, load_config
from strom.scaffold import write_scaffold
from strom_core.clock import Clock
from strom_core.ports import ChargerOnline, OcppEvent
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.units import format_kwh, format_sat
from strom_lightning import FakeBackend, FakeDriverWallet
from strom_nostr.keys import encode_npub
from strom_web.lnurl import bech32_lnurl

__all__ = ["DemoFailed", "DemoOptions", "run_demo"]

CHARGER = "demo-1"

# A recorded day of hourly energy prices (sat/kWh, a day-ahead curve converted to sats): the
# night is cheap, the evening peak dear. ``--dynamic`` plays it one hour every few seconds.
# fmt: off
RECORDED_DAY = (
    150, 140, 130, 130, 140, 170, 240, 310, 290, 250, 220, 200,
    190, 180, 190, 210, 260, 330, 360, 340, 290, 240, 200, 170,
)
# fmt: on
RECORDED_STEP_S = 2
TIME_OF_USE = '\n[tariff.time_of_use]\n"07:00-22:00" = 300\n"22:00-07:00" = 150\n'


class RecordedPrices:
    """A price source playing :data:`RECORDED_DAY` fast: one hour every ``step_s`` seconds."""

    def __init__(self, step_s: float = RECORDED_STEP_S) -> None:
        self.step = timedelta(seconds=step_s)

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        """The recorded prices from ``start``, repeated to cover ``hours`` of playback."""
        count = max(hours, len(RECORDED_DAY))
        intervals = tuple(
            PriceInterval(
                start + index * self.step,
                start + (index + 1) * self.step,
                RECORDED_DAY[index % len(RECORDED_DAY)] * 1000,
            )
            for index in range(count)
        )
        return PriceSchedule(intervals, source="recorded:demo-day", fetched_at=start)


class DemoFailed(Exception):
    """A step of the scripted story did not happen as it must."""


@dataclass(frozen=True)
class DemoOptions:
    """How to run the demo."""

    folder: Path
    log_file: Path | None = None  # where the service logs (None: the terminal)
    once: bool = False
    http_port: int = 8080
    ocpp_port: int = 9000
    speed: float = 60.0
    budget_sat: int = 2_000
    charge_fraction: Decimal = Decimal("0.4")
    timeout_s: float = 90.0
    ocpp_version: str = "1.6"  # the simulated charger's
    dynamic: bool = False  # a dynamic tariff: the recorded day of prices, billed per interval


def _port(port: int) -> int:
    """``port`` if it is free on 127.0.0.1, else 0: Strom then binds any free port itself."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


def _prepare(options: DemoOptions, http_port: int, ocpp_port: int) -> tuple[StromConfig, str]:
    config_path = options.folder / "strom.toml"
    if not config_path.exists():
        write_scaffold(options.folder, charger_id=CHARGER)
        text = config_path.read_text()
        text = text.replace("meter_interval_s = 60", "meter_interval_s = 1")
        text = text.replace("start_timeout_s = 180", "start_timeout_s = 60")
        config_path.write_text(text)
        if options.dynamic:
            profile = options.folder / "profiles" / f"{CHARGER}.toml"
            profile.write_text(profile.read_text() + TIME_OF_USE)
    environ = {
        "STROM_SERVER__PORT": str(http_port),
        "STROM_SERVER__PUBLIC_URL": f'"http://127.0.0.1:{http_port}"',
        "STROM_OCPP__HOST": '"127.0.0.1"',
        "STROM_OCPP__PORT": str(ocpp_port),
    }
    # The simulated charger authenticates like a real one: a new OCPP password at every start
    # (only its hash is kept in the profile).
    password = write_charger_password(load_config(config_path, environ=environ), CHARGER)
    return load_config(config_path, environ=environ), password.key


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def _until(
    what: str,
    probe: Callable[[], Awaitable[dict[str, Any]]],
    done: Callable[[dict[str, Any]], bool],
    timeout_s: float,
    clock: Clock,
) -> dict[str, Any]:
    deadline = clock.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if clock.monotonic() > deadline:
            raise DemoFailed(f"timed out waiting for {what} (last seen: {value.get('state')})")
        await asyncio.sleep(0.25)


async def _connected(connected: asyncio.Event, timeout_s: float) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            await connected.wait()
    except TimeoutError:
        raise DemoFailed("the simulated charger did not connect") from None


class Driver:
    """A driver with a Lightning wallet, talking to Strom only over HTTP like a real wallet."""

    def __init__(
        self, http: httpx.AsyncClient, wallet: FakeDriverWallet, timeout_s: float, clock: Clock
    ) -> None:
        self.http = http
        self.wallet = wallet
        self.timeout_s = timeout_s
        self.clock = clock

    async def get(self, url: str, **params: str) -> dict[str, Any]:
        # Like a wallet: keep the URL's own query and append ours (LUD-06).
        response = await self.http.get(httpx.URL(url).copy_merge_params(params))
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        if body.get("status") == "ERROR":
            raise DemoFailed(f"{url}: {body.get('reason')}")
        return body

    async def story(self, base: str, options: DemoOptions) -> None:
        pay_url = f"{base}/lnurlp/{CHARGER}/1"
        _say(f"1. The driver scans the sticker: {bech32_lnurl(pay_url)[:40]}…")
        offer = await self.get(pay_url)
        _say(
            f"   payRequest: {offer['minSendable'] // 1000:,} to {offer['maxSendable'] // 1000:,}"
            " sat accepted"
        )
        amount = options.budget_sat * 1000
        invoice = await self.get(offer["callback"], amount=str(amount))
        session_url = invoice["successAction"]["url"]
        _say(f"2. Pays {format_sat(amount)} (prepaid budget); invoice {invoice['pr'][:32]}…")
        await self.wallet.pay(invoice["pr"])
        status_url = session_url.replace("?", ".json?", 1)

        async def status() -> dict[str, Any]:
            return await self.get(status_url)

        await _until(
            "the charge to start", status, lambda s: s["state"] == "charging", 30, self.clock
        )
        command = (
            "RequestStartTransaction"
            if options.ocpp_version == "2.0.1"
            else ("RemoteStartTransaction")
        )
        _say(f"3. Payment settled → {command} → the charger started the session")
        _say(f"   session page: {session_url}")
        target = int(amount * options.charge_fraction)
        last_print = 0.0

        def progressed(s: dict[str, Any]) -> bool:
            nonlocal last_print
            if self.clock.monotonic() - last_print > 2:
                last_print = self.clock.monotonic()
                energy, cost = format_kwh(s["energy_wh"]), format_sat(s["consumed_msat"])
                left = format_sat(s["refundable_msat"])
                _say(f"   charging: {energy}, cost {cost}, remaining {left}")
            return int(s["consumed_msat"]) >= target

        await _until("energy to flow", status, progressed, self.timeout_s, self.clock)
        withdraw_url = (await status())["withdraw_url"].replace("lnurlw://", "http://", 1)
        _say("4. The driver scans the stop-and-refund link (LNURL-withdraw)")
        withdraw = await self.get(withdraw_url)
        stopped = await status()
        refundable = int(withdraw["maxWithdrawable"])
        _say(
            f"   stopped: {format_kwh(stopped['energy_wh'])} delivered, cost "
            f"{format_sat(stopped['consumed_msat'])}, refundable {format_sat(refundable)}"
        )
        before = await self.wallet.received_msat()
        refund_invoice = await self.wallet.create_invoice(refundable, memo="Strom refund")
        await self.get(withdraw["callback"], k1=withdraw["k1"], pr=refund_invoice.bolt11)
        final = await _until(
            "the refund", status, lambda s: s["state"] == "refunded", 30, self.clock
        )
        received = await self.wallet.received_msat() - before
        _say(f"5. Refund paid: the wallet received {format_sat(received)}")
        paid, consumed, refunded = (
            final["paid_msat"],
            final["consumed_msat"],
            final["refunded_msat"],
        )
        _say()
        _say(
            f"   paid {format_sat(paid)} = consumed {format_sat(consumed)} + refunded "
            f"{format_sat(refunded)}"
        )
        if paid != consumed + refunded or received != refunded or refunded != refundable:
            raise DemoFailed("the ledger does not balance")
        _say("   the ledger balances; nothing paid was lost")
        if final.get("intervals"):
            _bill_by_interval(final)


def _bill_by_interval(final: dict[str, Any]) -> None:
    """Print the energy bill interval by interval, and check it adds up."""
    _say()
    _say(f"   billed per interval (prices from {final['price_source']}, fixed at payment):")
    total = 0
    for interval in final["intervals"]:
        start = datetime.fromisoformat(interval["start"]).strftime("%H:%M:%S")
        end = datetime.fromisoformat(interval["end"]).strftime("%H:%M:%S")
        price = format_sat(interval["price_msat_per_kwh"])
        energy, cost = format_kwh(interval["energy_wh"]), format_sat(interval["cost_msat"])
        _say(f"   {start}-{end}  {energy} x {price}/kWh = {cost}")
        if interval["cost_msat"] != interval["energy_wh"] * interval["price_msat_per_kwh"] // 1000:
            raise DemoFailed("an interval's cost is not its energy x price")
        total += interval["cost_msat"]
    _say(f"   energy cost = the sum of the intervals: {format_sat(total)}")
    if sum(interval["energy_wh"] for interval in final["intervals"]) != final["energy_wh"]:
        raise DemoFailed("the intervals do not add up to the energy delivered")


async def _open(config: StromConfig, options: DemoOptions) -> Strom:
    strom = await Strom.open(config)
    if options.dynamic:  # the profile's windows make the tariff dynamic; the prices played fast
        strom.payments.prices = strom.front.prices = RecordedPrices()
    return strom


async def run_demo(options: DemoOptions) -> int:
    """Run the demo; returns the process exit status."""
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the driver's own requests
    config, password = _prepare(options, _port(options.http_port), _port(options.ocpp_port))
    strom = await _open(config, options)
    stop = asyncio.Event()
    base = strom.config.server.public_url  # on the port bound, when the asked one was taken
    failed: str | None = None
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)
    async with asyncio.TaskGroup() as group:
        server = group.create_task(strom.serve(stop), name="strom")
        await strom.ready.wait()
        simulator = simulated_charge_point(
            SimulatorOptions(
                url=f"ws://127.0.0.1:{strom.ocpp_port}/ocpp",
                charger_id=CHARGER,
                ocpp_version=options.ocpp_version,
                password=password,
                connectors=1,
                power_kw=Decimal(11),
                speed=options.speed,
                plugged=(1,),
            ),
            clock=strom.clock,
        )
        connected = asyncio.Event()  # Strom takes no payment for a charger not connected

        async def watch(event: OcppEvent) -> None:
            if isinstance(event, ChargerOnline):
                connected.set()

        strom.events.subscribe(watch)
        sim = group.create_task(simulator.run(), name="simulator")
        charger_page = f"{base}/c/{CHARGER}"
        lnurl = bech32_lnurl(f"{base}/lnurlp/{CHARGER}/1")
        _say()
        _say("Strom demo — embedded defaults. The lightning backend is FAKE: no real money moves.")
        _say(f"charger page: {charger_page}")
        pubkey = strom.agents.pubkey(CHARGER)
        if pubkey is not None:
            _say(f"nostr:        {encode_npub(pubkey)} (zap it, or DM it `status`)")
        _say(f"LNURL-pay:    {lnurl}")
        if options.log_file is not None:
            _say(f"logs:         {options.log_file}")
        segno.make(lnurl, error="l").terminal(out=sys.stdout, compact=True)
        _say()
        if not isinstance(strom.backend, FakeBackend):
            raise DemoFailed("the demo needs the fake lightning backend")
        wallet = FakeDriverWallet(strom.backend)
        try:
            await _connected(connected, options.timeout_s)
            async with httpx.AsyncClient(timeout=30) as http:
                await Driver(http, wallet, options.timeout_s, strom.clock).story(base, options)
        except (DemoFailed, httpx.HTTPError) as exc:
            failed = str(exc) or type(exc).__name__
            _say(f"demo failed: {failed}")
            if options.log_file is not None:
                _say(f"             the service's log: {options.log_file}")
        if not options.once:
            token = await strom.cockpit.tokens.create(f"demo-{secrets.token_hex(3)}")
            _say()
            _say(f"admin UI:     {base}/admin/ — sign in with this token: {token}")
            _say(f"Strom keeps serving: open {charger_page} — Ctrl-C to stop.")
            await interrupted.wait()
        sim.cancel()
        stop.set()
        await server
    return 1 if failed else 0
