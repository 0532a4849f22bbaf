"""The soak: many paid sessions through random kills of Strom and of chargers, then the checks.

One soak: a fresh folder from ``strom init`` with several chargers; ``strom run`` as a child
process (:mod:`tests.strom_process`); simulated chargers over real OCPP websockets, the last
of which forgets its transaction when it reboots (:mod:`tests.soak.fleet`); drivers paying the
stickers' LNURLs with the fake node's wallet, charging and taking their refunds
(:mod:`tests.soak.drivers`). For ``size.seconds`` drivers start sessions while a seeded
schedule (:mod:`tests.soak.plan`) SIGKILLs Strom (restarted on the same database) and reboots
chargers or cuts their connection. Then it goes quiet: no new sessions, no faults; drivers
finish what they started; every charger takes one more paid session, which must charge and
settle (**no charger blocked**); the outbox drains; Strom is stopped normally and the
invariants of :mod:`tests.soak.invariants` are checked (**final**, **locked**, **money**).

``python -m tests.soak.harness --minutes 15 --seed 7`` runs the full size;
``--ci`` the size ``tests/soak/test_soak.py`` runs. The seed is printed with every summary:
the same seed replays the same schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from strom.config import load_config
from strom_core.config import StromConfig
from strom_lightning import FakeBackend, FakeDriverWallet, create_backend
from tests.soak.drivers import FINISHED, Driver, Ride, Tickets
from tests.soak.fleet import Fleet
from tests.soak.invariants import check, read, tally
from tests.soak.plan import Event, Plan, SoakSize, make_plan
from tests.strom_process import StromChild, outbox_drained, strom_environment, write_site

INVARIANTS = ("final", "locked", "money", "blocked", "strom")
ORPHAN_GRACE_S = 2  # sessions.orphan_grace_s: a lost transaction ends after 2 s (+2 readings)
RECONNECT_GRACE_S = 5  # ocpp.reconnect_grace_s
LAST_SESSION_S = 90  # the session at each charger after the soak finishes within this


@dataclass
class SoakReport:
    """What one soak did and what broke (``problems`` by invariant; empty lists: all held)."""

    plan: Plan
    problems: dict[str, list[str]] = field(default_factory=lambda: {n: [] for n in INVARIANTS})
    stats: dict[str, int] = field(default_factory=dict)
    errors_logged: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every invariant held."""
        return not any(self.problems.values())

    def summary(self) -> str:
        """The figures, the schedule and the verdict per invariant, for a terminal."""
        lines = [f"soak seed {self.plan.seed}, {self.seconds:.0f} s wall, {self.plan.size}"]
        lines += [f"  {name}: {value}" for name, value in self.stats.items()]
        lines.append("  schedule:")
        lines += [f"    {event}" for event in self.plan.events]
        if self.errors_logged:
            lines.append(f"  Strom logged {len(self.errors_logged)} error(s), the first:")
            lines += [f"    {line}" for line in self.errors_logged[:5]]
        for name in INVARIANTS:
            verdict = "holds" if not self.problems[name] else "BROKEN"
            lines.append(f"  {name}: {verdict}")
            lines += [f"    {problem}" for problem in self.problems[name][:20]]
        lines.append(f"replay: {replay_command(self.plan)}")
        return "\n".join(lines)


def replay_command(plan: Plan) -> str:
    """The command that runs this soak's size and schedule again."""
    size = plan.size
    how = "--ci" if size == SoakSize.ci() else f"--minutes {size.seconds / 60:g}"
    return f"python -m tests.soak.harness {how} --seed {plan.seed}"


class Keeper:
    """Keeps one Strom running: kills it on schedule and starts it again on the same folder;
    a death nobody planned is recorded (a bug) and Strom is started again."""

    def __init__(self, strom: StromChild) -> None:
        self.strom = strom
        self.lock = asyncio.Lock()
        self.unplanned: list[str] = []

    async def kill(self, down_s: float) -> None:
        """SIGKILL Strom, wait ``down_s``, start it and wait until it serves."""
        async with self.lock:
            self.strom.kill()
            await asyncio.sleep(down_s)
            await self.strom.revive()

    async def watch(self) -> None:
        """Restart Strom whenever it died by itself (runs until cancelled)."""
        while True:
            await asyncio.sleep(0.5)
            if self.lock.locked() or not self.strom.died():
                continue
            async with self.lock:
                assert self.strom.proc is not None
                self.unplanned.append(f"strom exited by itself ({self.strom.proc.returncode})")
                self.strom.start()
                await self.strom.wait_ready()


class Soak:
    """One soak in ``folder`` (see the module docstring)."""

    def __init__(self, folder: Path, plan: Plan, say: Callable[[str], None]) -> None:
        self.folder = folder
        self.plan = plan
        self.started = time.monotonic()
        self._say = say
        passwords = write_site(folder, list(plan.chargers))
        self.env = strom_environment(
            STROM_SESSIONS__ORPHAN_GRACE_S=str(ORPHAN_GRACE_S),
            STROM_OCPP__RECONNECT_GRACE_S=str(RECONNECT_GRACE_S),
            STROM_SESSIONS__INVOICE_EXPIRY_S="60",
            # Each driver is a client of its own (X-Forwarded-For from the test's address).
            STROM_SERVER__TRUSTED_PROXIES='["127.0.0.1"]',
        )
        self.config: StromConfig = load_config(folder / "strom.toml", environ=self.env)
        self.strom = StromChild(folder, self.env, self.config.server.public_url)
        self.keeper = Keeper(self.strom)
        self.fleet = Fleet(
            f"ws://127.0.0.1:{self.config.ocpp.port}/ocpp", passwords, plan.forgetful
        )
        backend = create_backend(self.config.lightning, data_dir=self.config.storage.data_dir)
        assert isinstance(backend, FakeBackend)
        self.backend = backend
        self.wallet = FakeDriverWallet(backend)
        self.drivers: list[Driver] = []
        self.still_charging: dict[str, int] = {}  # charger -> transaction, once it went quiet
        self.began = time.monotonic()

    def say(self, line: str) -> None:
        """A progress line, stamped with the soak's elapsed time."""
        self._say(f"[{time.monotonic() - self.started:6.1f} s] {line}")

    def driver(self, index: int) -> Driver:
        """A new driver (kept for the checks)."""
        made = Driver(index, self.strom.base, self.wallet, self.fleet, self.plan.seed, self.say)
        self.drivers.append(made)
        return made

    @property
    def rides(self) -> list[Ride]:
        """Every paid session of every driver."""
        return [ride for driver in self.drivers for ride in driver.rides]

    async def run(self) -> SoakReport:
        """Run it all and check; Strom is stopped and the chargers are off afterwards."""
        report = SoakReport(self.plan)
        self.strom.start()
        watch = asyncio.create_task(self.keeper.watch())
        try:
            await self.strom.wait_ready()
            self.fleet.start()
            await self.faults_and_drivers()
            report.problems["blocked"] = await self.one_more_session_each()
            if not await outbox_drained(self.config, self.strom, within_s=60):
                self.say("the outbox did not drain within 60 s")
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
            # The chargers first: stopping Strom blocks this loop, where they would have to
            # answer its closing handshakes.
            await self.fleet.stop()
            self.strom.stop()
            for driver in self.drivers:
                await driver.aclose()
        report.problems["strom"] = self.keeper.unplanned
        report.problems["locked"] += [
            f"charger {charger_id} still runs transaction {transaction_id}"
            for charger_id, transaction_id in self.still_charging.items()
        ]
        records = await read(self.config)
        for name, problems in (await check(records, self.wallet, self.rides)).items():
            report.problems[name] += problems
        await self.backend.aclose()
        report.stats = self.figures() | tally(records)
        report.errors_logged = errors_logged(self.folder / "strom.log")
        report.seconds = time.monotonic() - self.began
        return report

    async def faults_and_drivers(self) -> None:
        """The soak proper, then the quiet period until every driver is done."""
        size = self.plan.size
        tickets = Tickets(size.sessions, size.arrival_s)
        self.started = time.monotonic()
        tasks: list[asyncio.Task[None]] = []
        try:
            async with asyncio.timeout(size.seconds + size.quiet_s), asyncio.TaskGroup() as group:
                for index in range(size.drivers):
                    driver = self.driver(index)
                    tasks.append(group.create_task(driver.run(tickets), name=f"driver {index}"))
                strom_events = self.schedule(self.plan.strom_events(), self.kill_strom)
                tasks.append(group.create_task(strom_events, name="strom's faults"))
                for charger_id in self.plan.chargers:
                    faults = self.schedule(self.plan.charger_events(charger_id), self.hit_charger)
                    tasks.append(group.create_task(faults, name=f"{charger_id}'s faults"))
                await asyncio.sleep(size.seconds)
                tickets.open = False
                self.say("quiet: no new sessions; waiting for the drivers to finish")
        except TimeoutError:
            busy = ", ".join(task.get_name() for task in tasks if task.cancelled())
            self.say(f"still busy {size.quiet_s:g} s after the faults, stopped: {busy}")
        with contextlib.suppress(TimeoutError):
            await self.fleet.idle(within_s=20)
        self.still_charging = self.fleet.open_transactions()

    async def schedule(self, events: list[Event], act: Callable[[Event], Awaitable[None]]) -> None:
        """Apply planned events at their times (one after the other)."""
        for event in events:
            await asyncio.sleep(max(0.0, self.started + event.at_s - time.monotonic()))
            self.say(f"fault: {event}")
            await act(event)

    async def kill_strom(self, event: Event) -> None:
        """SIGKILL Strom and start it again after the event's downtime."""
        await self.keeper.kill(event.down_s)
        self.say("strom is back")

    async def hit_charger(self, event: Event) -> None:
        """Reboot a charger or cut its connection; the forgetful charger's reboot waits for a
        charge (at least 15 s, else until the faults stop)."""
        wait_s = max(15.0, self.started + self.plan.size.seconds - time.monotonic())
        await self.fleet.hit(event, wait_s)

    async def one_more_session_each(self) -> list[str]:
        """Every charger takes a paid session that charges and settles: none is blocked."""
        verdicts = await asyncio.gather(
            *(self.last_session(100 + n, c) for n, c in enumerate(self.plan.chargers))
        )
        return [verdict for verdict in verdicts if verdict]

    async def last_session(self, index: int, charger_id: str) -> str:
        """One paid session at ``charger_id``; what went wrong with it ("": nothing)."""
        if why := self.fleet.gave_up(charger_id):
            return f"charger {charger_id}: {why}"
        try:
            async with asyncio.timeout(LAST_SESSION_S):
                ride = await self.driver(index).ride(charger_id, "withdraw", within_s=60)
        except TimeoutError:
            return f"charger {charger_id}: the last session took over {LAST_SESSION_S} s"
        if ride is None:
            return f"charger {charger_id}: no invoice within 60 s after the soak"
        if not ride.charged or ride.outcome not in FINISHED - {"expired"}:
            charged = "charged" if ride.charged else "never charged"
            return f"charger {charger_id}: the last session {charged}, ended {ride.outcome}"
        return ""

    def figures(self) -> dict[str, int]:
        """What the soak did (for the summary and the test's check that it did enough)."""
        counts = self.fleet.counts
        return {
            "strom kills": self.strom.killed,
            "charger reboots": counts.reboots,
            "charger reboots mid-transaction": counts.reboots_mid_transaction,
            "transactions forgotten by a reboot": counts.forgotten_transactions,
            "charger connections cut": counts.network_drops,
            "paid sessions": len(self.rides),
        }


def errors_logged(log: Path) -> list[str]:
    """Lines of Strom's log at ERROR or above, and tracebacks."""
    if not log.exists():
        return []
    markers = (" ERROR ", " CRITICAL ", "Traceback")
    return [
        line
        for line in log.read_text(errors="replace").splitlines()
        if any(m in line for m in markers)
    ]


async def run_soak(
    folder: Path, size: SoakSize, seed: int, say: Callable[[str], None] = print
) -> SoakReport:
    """Run one soak of ``size`` with the schedule of ``seed`` in ``folder``."""
    plan = make_plan(size, seed)
    say(f"soak seed {seed}: {size}")
    # The simulated chargers' own log (connects, refusals, retries) beside Strom's.
    chargers_log = logging.FileHandler(folder / "chargers.log")
    chargers_log.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    simulator = logging.getLogger("ocpp_server")
    level = simulator.level
    simulator.addHandler(chargers_log)
    simulator.setLevel(logging.INFO)
    try:
        return await Soak(folder, plan, say).run()
    finally:
        simulator.removeHandler(chargers_log)
        simulator.setLevel(level)
        chargers_log.close()


def main() -> None:
    """``python -m tests.soak.harness``: one soak, its progress and its summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes",
        type=float,
        default=float(os.environ.get("STROM_SOAK_MINUTES", "15")),
        help="how long faults are injected (default: $STROM_SOAK_MINUTES, else 15)",
    )
    parser.add_argument("--ci", action="store_true", help="the size tests/soak/test_soak.py runs")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the folder (logs, database)")
    args = parser.parse_args()
    size = SoakSize.ci() if args.ci else SoakSize.full(args.minutes)
    folder = Path(tempfile.mkdtemp(prefix="strom-soak-"))
    report = asyncio.run(run_soak(folder, size, args.seed))
    print(report.summary())
    if args.keep or not report.ok:
        print(f"folder kept: {folder} (strom.log, chargers.log, data/)")
    else:
        import shutil

        shutil.rmtree(folder)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
