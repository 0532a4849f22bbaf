"""Kill Strom with SIGKILL at a chosen point of a paid session, restart it, check the money.

One *run*: a fresh folder from ``strom init``; ``strom run`` as a child process with
``STROM_CRASH_AT=<point>`` (see :mod:`strom_core.crashpoints`); a simulated charger (real OCPP
websocket, in this process, keeping its transaction and its queued transaction messages across
Strom's death, as a real charger does); and a driver who pays the sticker's LNURL with the
fake backend's wallet, charges, opens the withdraw link and claims the refund — retrying any
request that fails because Strom is down, as a wallet user would. The ``orphan.`` points run
the lost-transaction story instead: mid-charge the charger loses power and comes back without
its transaction (firmware that keeps none), Strom ends the session after the grace period and
the driver takes the refund the same way. The ``reservation.`` points run the reservation
story (:meth:`Driver.reservation_story`): the driver reserves the connector through the LNURL
with ``reserve=<minutes>`` and then arrives and charges, or cancels, or lets the reservation
expire (the kept fee share must be journalled once). When the child dies it is
restarted without the crash point. At the end Strom is stopped normally and the database and
the fake node are checked:

* every settled payment belongs to a session whose ``paid`` equals the settled amounts, and
  that session is finished (``refunded`` or ``closed``): nothing paid is left behind;
* ``paid = consumed + refunded + refundable (+ overrun)`` for every session;
* each refund went out at most once, and the driver's wallet received exactly the refunded sum;
* a session that charged was metered to its end after the restart (energy and cost > 0);
* a finished session's consumption is journalled once: the ledger's ``consumption`` entries
  add up to its ``consumed`` (a reservation's kept fee share included);
* the outbox has drained: no effect pending or given up.

``python -m tests.crash.harness --points 60 --seed 7`` runs a longer campaign than CI does;
``--ocpp 2.0.1`` runs it with a charger speaking OCPP 2.0.1 (its transactions its own,
reported in TransactionEvents) instead of 1.6.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from ocpp_server import SimulatorOptions
from ocpp_server.sim_model import OCPP_VERSIONS
from ocpp_server.simulator import SimulatedCharger, simulated_charge_point
from strom.config import load_config
from strom_core.config import StromConfig
from strom_core.crashpoints import POINTS
from strom_core.session import check_ledger
from strom_lightning import FakeBackend, FakeDriverWallet, create_backend
from strom_storage.db import Database
from strom_storage.outbox import OutboxStore
from strom_storage.schema import ledger_entries, payments, refunds, sessions
from strom_storage.sessions import SessionStore
from tests.strom_process import StromChild, outbox_drained, strom_environment, write_site

CHARGER = "cp-crash"
PAID_MSAT = 3_000_000
FINAL = {"refunded", "closed"}

# How many times one story surely passes each point (`--calibrate` counts them: 29, 29, 8, 1,
# 1 and 11 on 2026-11-24; kept below so that every chosen pass is reached). The ``orphan.``
# points are passed by the lost-transaction story (see :meth:`Driver.lost_story`).
PASSES = {
    "db.before_commit": 24,
    "db.after_commit": 24,
    "session.after_open": 1,
    "effect.before_done": 6,
    "refund.before_pay": 1,
    "refund.after_pay": 1,
    "ocpp.before_reply": 9,
    "orphan.armed": 1,
    "orphan.before_end": 1,
    "reservation.after_reserved": 1,
    "reservation.before_reserve_now": 1,
    "reservation.after_reserve_now": 1,
    "reservation.after_expiry": 1,
    "reservation.before_cancel": 1,
    "reservation.after_cancel": 1,
}
LOST_STORY = "orphan."  # points of this prefix run the lost-transaction story
RESERVATION_STORY = "reservation."  # points of this prefix run the reservation story
# Which reservation story passes a point: the payer cancels (the CancelReservation points), the
# reservation runs out (a one-minute reservation: slow, so only in longer campaigns), or the
# payer arrives and charges (the rest).
CANCEL_POINTS = ("reservation.before_cancel", "reservation.after_cancel")
EXPIRY_POINTS = ("reservation.after_expiry",)
RESERVATION_TARIFF = {  # the profile's [tariff] keys of the runs: reservations offered
    "reservation_fee_sat": "100",
    "reservation_fee_per_minute_sat": "2",
    "reservation_max_minutes": "60",
    "reservation_kept_percent": "50",
}
GRACE_S = 3  # sessions.orphan_grace_s for the runs


def all_points() -> list[str]:
    """Every distinct kill point of the campaign, ``name:n``, in lifecycle order per name."""
    return [f"{name}:{n}" for name in POINTS for n in range(1, PASSES[name] + 1)]


@dataclass
class Outcome:
    """What one run saw."""

    point: str
    killed: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Driver:
    """A wallet user who retries whatever failed because the service was down."""

    def __init__(self, strom: StromChild, wallet: FakeDriverWallet, pay_url: str) -> None:
        self.strom = strom
        self.wallet = wallet
        self.pay_url = pay_url
        self.http = httpx.AsyncClient(timeout=30)

    async def get(self, url: str, **params: str) -> dict[str, Any]:
        deadline = time.monotonic() + 90
        while True:
            try:
                response = await self.http.get(httpx.URL(url).copy_merge_params(params))
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {url} kept failing")
            await self.strom.revive()
            await asyncio.sleep(0.1)

    async def status(self, url: str, until: set[str], within_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            status = await self.get(url)
            if status["state"] in until:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"session stuck in {status['state']}, waiting for {until}")
            await asyncio.sleep(0.1)

    async def invoice(self, within_s: float = 60, **params: str) -> dict[str, Any]:
        """Scan the sticker and ask for an invoice until one comes, as a driver would.

        After a restart the charger needs a moment to reconnect, and Strom refuses payments
        until it is back ("reconnecting"); a crash during the callback loses that answer (the
        invoice just expires). Either way the driver scans again.
        """
        deadline = time.monotonic() + within_s
        while True:
            offer = await self.get(self.pay_url, **params)
            if "callback" in offer:
                answer = await self.get(str(offer["callback"]), amount=str(PAID_MSAT))
                if "pr" in answer:
                    return answer
            if time.monotonic() > deadline:
                raise TimeoutError(f"no invoice: {offer}")
            await asyncio.sleep(0.2)

    async def story(self) -> None:
        """Pay, charge a little, stop and take the refund through the withdraw link."""
        answer = await self.invoice()
        page = str(answer["successAction"]["url"])
        status_url = page.replace("?", ".json?", 1)
        await self.wallet.pay(str(answer["pr"]))
        status = await self.status(status_url, {"charging", *FINAL, "start_failed"}, 60)
        while status["state"] == "charging" and status["energy_wh"] < 300:
            await asyncio.sleep(0.1)
            status = await self.get(status_url)
        await self.refund(status_url)

    async def lost_story(self, charger: SimulatedCharger) -> None:
        """Pay and charge; the charger loses power and comes back without the transaction.

        Strom must end the session after the grace period, billed to the last reading, and
        the driver takes the refund through the withdraw link as after any stop.
        """
        answer = await self.invoice()
        status_url = str(answer["successAction"]["url"]).replace("?", ".json?", 1)
        await self.wallet.pay(str(answer["pr"]))
        status = await self.status(status_url, {"charging", *FINAL, "start_failed"}, 60)
        while status["state"] == "charging" and status["energy_wh"] < 300:
            await asyncio.sleep(0.1)
            status = await self.get(status_url)
        if status["state"] == "charging":
            charger.power_cut()
            status = await self.status(status_url, {"stopped", *FINAL}, 60)
            if status["stop_reason"] != "charger_lost":
                raise AssertionError(f"lost session ended as {status['stop_reason']!r}")
        await self.refund(status_url)

    async def post(self, url: str, **form: str) -> None:
        """A form post answered by a redirect (303), retried while Strom is down."""
        deadline = time.monotonic() + 90
        while True:
            try:
                response = await self.http.post(url, data=form, follow_redirects=False)
                if response.status_code == 303:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"POST {url} kept failing")
            await self.strom.revive()
            await asyncio.sleep(0.1)

    async def reservation_story(self, charger: SimulatedCharger, point: str) -> None:
        """Reserve the connector, then arrive and charge, cancel, or let it expire; refund.

        The charger has nobody plugged in (only a free connector is reserved). Arriving, the
        payer presses Start charging on the session page and plugs in.
        """
        minutes = 1 if point.startswith(EXPIRY_POINTS) else 30
        answer = await self.invoice(reserve=str(minutes))
        page = str(answer["successAction"]["url"])
        status_url = page.replace("?", ".json?", 1)
        path, _, query = page.partition("?")
        secret = httpx.QueryParams(query)["secret"]
        await self.wallet.pay(str(answer["pr"]))
        status = await self.status(status_url, {"reserved", *FINAL, "start_failed"}, 60)
        if status["state"] == "reserved":
            if point.startswith(EXPIRY_POINTS):
                status = await self.status(status_url, {*FINAL, "start_failed"}, 120)
                if status["stop_reason"] != "reservation expired":
                    raise AssertionError(f"reservation ended as {status['stop_reason']!r}")
            elif point.startswith(CANCEL_POINTS):
                await self.post(f"{path}/cancel", secret=secret)
                status = await self.status(status_url, {*FINAL, "start_failed"}, 60)
            else:
                await self.post(f"{path}/start", secret=secret)
                await charger.plug(1)
                status = await self.status(status_url, {"charging", *FINAL, "start_failed"}, 60)
                while status["state"] == "charging" and status["energy_wh"] < 300:
                    await asyncio.sleep(0.1)
                    status = await self.get(status_url)
        await self.refund(status_url)

    async def refund(self, status_url: str, within_s: float = 120) -> None:
        """Claim the refund until the session is finished.

        A fresh withdraw request each time, as a wallet makes: after a crash the claim may
        have been lost, or have failed definitely (nothing left the node) and become
        claimable again; a claim in flight shows as ``refund_pending`` and is waited for.
        """
        deadline = time.monotonic() + within_s
        while True:
            status = await self.get(status_url)
            if status["state"] in FINAL:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"session stuck in {status['state']}, waiting for {FINAL}")
            if status["state"] != "refund_pending" and status.get("withdraw_url"):
                await self.claim(str(status["withdraw_url"]))
            await asyncio.sleep(0.3)

    async def claim(self, withdraw_url: str) -> None:
        offer = await self.get(withdraw_url.replace("lnurlw://", "http://", 1))
        if offer.get("tag") != "withdrawRequest":
            return  # nothing refundable yet (or any more)
        invoice = await self.wallet.create_invoice(int(offer["maxWithdrawable"]), memo="refund")
        await self.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)

    async def aclose(self) -> None:
        await self.http.aclose()


def configure(folder: Path) -> tuple[StromConfig, dict[str, str], int, str]:
    """The run's configuration, its environment, the OCPP port and the charger's password."""
    password = write_site(folder, [CHARGER])[CHARGER]
    profile = folder / "profiles" / f"{CHARGER}.toml"
    text = profile.read_text()
    for key, value in RESERVATION_TARIFF.items():
        text = re.sub(rf"^{key} = .*$", f"{key} = {value}", text, count=1, flags=re.MULTILINE)
    profile.write_text(text)
    env = strom_environment(STROM_SESSIONS__ORPHAN_GRACE_S=str(GRACE_S))
    config = load_config(folder / "strom.toml", environ=env)
    return config, env, config.ocpp.port, password


async def run_point(folder: Path, point: str, ocpp_version: str = "1.6") -> Outcome:
    """One run with a kill at ``point`` (``name:n``, or ``random:<seconds>``), the charger
    speaking ``ocpp_version``."""
    outcome = Outcome(point)
    started = time.monotonic()
    config, env, ocpp_port, password = configure(folder)
    base = config.server.public_url
    strom = StromChild(folder, env, base)
    crash_at = None if point.startswith(("random:", "none")) else point
    if point == "none":  # calibration: no kill, every pass of every point written down
        strom.env["STROM_CRASH_TRACE"] = str(folder / "passes.txt")
    strom.start(crash_at)
    backend = create_backend(config.lightning, data_dir=config.storage.data_dir)
    assert isinstance(backend, FakeBackend)
    wallet = FakeDriverWallet(backend)
    charger = simulated_charge_point(
        SimulatorOptions(
            url=f"ws://127.0.0.1:{ocpp_port}/ocpp",
            charger_id=CHARGER,
            ocpp_version=ocpp_version,
            password=password,
            power_kw=Decimal(11),
            speed=120.0,
            plugged=() if point.startswith(RESERVATION_STORY) else (1,),
            reconnect_delay_s=0.2,
            persist_transactions=not point.startswith(LOST_STORY),
        )
    )
    driver = Driver(strom, wallet, f"{base}/lnurlp/{CHARGER}/1")
    simulator = asyncio.create_task(charger.run())
    killer = None
    if point.startswith("random:"):
        killer = asyncio.create_task(_kill_after(strom, float(point.split(":", 1)[1])))
    try:
        await strom.wait_ready()
        if point.startswith(LOST_STORY):
            await driver.lost_story(charger)
        elif point.startswith(RESERVATION_STORY):
            await driver.reservation_story(charger, point)
        else:
            await driver.story()
        await outbox_drained(config, strom)
    except Exception as exc:
        outcome.problems.append(f"story failed: {type(exc).__name__}: {exc}")
    finally:
        if killer is not None:
            killer.cancel()
        charger.stop()
        simulator.cancel()
        await asyncio.gather(simulator, return_exceptions=True)
        await driver.aclose()
        strom.stop()
    outcome.killed = strom.killed
    outcome.problems += await check_money(config, wallet)
    await backend.aclose()
    outcome.seconds = time.monotonic() - started
    return outcome


async def _kill_after(strom: StromChild, seconds: float) -> None:
    await asyncio.sleep(seconds)
    strom.kill()


async def check_money(config: StromConfig, wallet: FakeDriverWallet) -> list[str]:
    """The invariants of the module docstring; returns what is wrong (empty: all good)."""
    db = Database.from_url(config.storage.url())
    try:
        async with db.reader() as conn:
            ids = list(await conn.scalars(select(sessions.c.id)))
            settled = list(
                await conn.execute(
                    select(payments.c.session_id, payments.c.amount_msat).where(
                        payments.c.state == "settled"
                    )
                )
            )
            refund_rows = list(await conn.execute(select(refunds)))
            consumption: dict[str, int] = {}
            for session_id, amount in await conn.execute(
                select(ledger_entries.c.session_id, ledger_entries.c.amount_msat).where(
                    ledger_entries.c.kind == "consumption"
                )
            ):
                consumption[session_id] = consumption.get(session_id, 0) + int(amount)
        paid: dict[str, int] = {}
        for session_id, amount in settled:
            paid[session_id] = paid.get(session_id, 0) + int(amount)
        store = SessionStore(db)
        problems: list[str] = []
        refunded_total = 0
        for session_id in ids:
            session = await store.get(session_id)
            refunded_total += session.refunded_msat
            problems += session_problems(session, paid.get(session_id))
            journalled = consumption.get(session_id, 0)
            if session.state.value in FINAL and journalled != session.consumed_msat:
                problems.append(
                    f"session {session_id}: consumption journalled {journalled} msat, "
                    f"consumed {session.consumed_msat}"
                )
        problems += refund_problems(refund_rows)
        received = await wallet.received_msat()
        if received != refunded_total:
            problems.append(f"wallet received {received} msat, sessions refunded {refunded_total}")
        counts = await OutboxStore(db).counts()
        if counts.get("pending") or counts.get("dead"):
            problems.append(f"outbox not drained: {counts}")
    finally:
        await db.close()
    return problems


def session_problems(session: Any, settled_msat: int | None) -> list[str]:
    problems = []
    try:
        check_ledger(session)
    except Exception as exc:
        problems.append(f"session {session.id}: ledger broken: {exc}")
    if settled_msat is None:
        return problems
    if session.paid_msat != settled_msat:
        problems.append(f"session {session.id}: paid {session.paid_msat} != {settled_msat}")
    if session.state.value not in FINAL:
        problems.append(f"session {session.id}: paid but left in {session.state.value}")
    if session.energy_wh > 0 and session.consumed_msat <= 0:
        problems.append(f"session {session.id}: charged but nothing billed")
    return problems


def refund_problems(refund_rows: list[Any]) -> list[str]:
    problems = []
    paid = [r.payment_hash for r in refund_rows if r.state == "paid"]
    if len(set(paid)) != len(paid):
        problems.append("a refund invoice was recorded as paid twice")
    for state in ("paying", "claimed", "unknown"):
        stuck = [r.id for r in refund_rows if r.state == state]
        if stuck:
            problems.append(f"refunds left {state}: {stuck}")
    return problems


def campaign(points: int, seed: int) -> Iterator[str]:
    """``points`` distinct kill points: every named point once, then a seeded sample."""
    pool = [p for p in all_points() if not p.startswith(RESERVATION_STORY)]
    rng = random.Random(seed)
    named = [f"{name}:1" for name in POINTS if not name.startswith(RESERVATION_STORY)]
    rest = [p for p in pool if p not in named]
    rng.shuffle(rest)
    chosen = (named + rest)[:points]
    yield from chosen


def reservation_sample(points: int, seed: int, *, slow: bool = False) -> list[str]:
    """``points`` distinct reservation kill points, seeded; the slow expiry story only if asked."""
    pool = [
        p
        for p in all_points()
        if p.startswith(RESERVATION_STORY) and (slow or not p.startswith(EXPIRY_POINTS))
    ]
    random.Random(seed).shuffle(pool)
    return pool[:points]


# Where the OCPP versions differ most: answering the charger, and the lost-transaction story.
VERSION_POINTS = ("ocpp.before_reply", "orphan.armed", "orphan.before_end")


def version_sample(points: int, seed: int) -> list[str]:
    """``points`` distinct kill points for the campaign of a second OCPP version, seeded.

    A pass of each name in :data:`VERSION_POINTS` first, then any others: the story is the
    same whatever the charger speaks, so a small sample covers what the version changes.
    """
    rng = random.Random(seed)
    # The reservation story has its own sample (reservation_sample), run with a 1.6 charger.
    pool = [p for p in all_points() if not p.startswith(RESERVATION_STORY)]
    chosen = [rng.choice([p for p in pool if p.startswith(f"{name}:")]) for name in VERSION_POINTS]
    rest = [p for p in pool if p not in chosen]
    rng.shuffle(rest)
    return (chosen + rest)[:points]


async def main_async(args: argparse.Namespace) -> int:
    import tempfile

    failures = 0
    total_kills = 0
    points = list(campaign(args.points, args.seed))
    points += reservation_sample(args.reservations, args.seed, slow=True)
    points += [
        f"random:{random.Random(args.seed + i).uniform(0.5, 8):.2f}" for i in range(args.random)
    ]
    for index, point in enumerate(points, 1):
        with tempfile.TemporaryDirectory(prefix="strom-crash-") as tmp:
            outcome = await run_point(Path(tmp), point, args.ocpp)
        total_kills += outcome.killed
        verdict = "ok" if not outcome.problems else "FAIL"
        print(
            f"[{index}/{len(points)}] {point:24s} killed {outcome.killed}x "
            f"{outcome.seconds:5.1f} s  {verdict}",
            flush=True,
        )
        for problem in outcome.problems:
            print(f"    {problem}", flush=True)
        failures += bool(outcome.problems)
    print(f"{len(points)} runs, {total_kills} kills, {failures} failed")
    return 1 if failures else 0


async def calibrate(ocpp_version: str = "1.6") -> dict[str, int]:
    """How often one story passes each point (a run without a kill, traced)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="strom-crash-") as tmp:
        outcome = await run_point(Path(tmp), "none", ocpp_version)
        if outcome.problems:
            raise RuntimeError(f"the story failed without any kill: {outcome.problems}")
        names = (Path(tmp) / "passes.txt").read_text().split()
    return {name: names.count(name) for name in POINTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=len(all_points()), help="kill points")
    parser.add_argument("--random", type=int, default=0, help="runs killed at a random time")
    parser.add_argument("--reservations", type=int, default=6, help="reservation kill points")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--ocpp", choices=OCPP_VERSIONS, default="1.6", help="the OCPP version of the charger"
    )
    parser.add_argument("--list", action="store_true", help="print the kill points and exit")
    parser.add_argument(
        "--calibrate", action="store_true", help="count each point's passes in one story"
    )
    args = parser.parse_args()
    if args.calibrate:
        for name, count in asyncio.run(calibrate(args.ocpp)).items():
            print(f"{name:22s} {count}")
        return
    if args.list:
        print("\n".join(all_points()))
        return
    sys.exit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
