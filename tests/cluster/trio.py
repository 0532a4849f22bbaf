"""Three ``strom run --cluster`` processes on one PostgreSQL, chargers and payers spread over them.

The processes share one installation folder (``strom init`` with a profile per charger): the
same ``strom.toml`` and profiles, the same data folder — so the same fake lightning node, whose
ledger is a file there, as several Strom processes share one LND — and one PostgreSQL database
(the test's own). Each process gets its own HTTP and OCPP ports and log file. Chargers are
simulated over real websockets, each connecting first to the process it is given and, when that
one is gone, to the next (the simulator's fallback URLs stand for a load balancer). Payers
are the crash harness's drivers, each on the process it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx

from ocpp_server import SimulatorOptions
from ocpp_server.simulator import SimulatedCharger, simulated_charge_point
from strom.config import load_config
from strom_core.config import StromConfig
from strom_lightning import FakeBackend, FakeDriverWallet, create_backend
from tests.crash.harness import Driver, check_money
from tests.strom_process import StromChild, strom_environment, write_site

TTL_S = 3  # cluster.lease_ttl_s: a dead process's chargers and roles move within seconds


class _Patient:
    """What a driver calls when Strom did not answer: wait (the test revives processes)."""

    async def revive(self) -> None:
        await asyncio.sleep(0.2)


@dataclass
class Trio:
    """The three processes, the chargers, the fake node's wallet."""

    folder: Path
    database_url: str
    charger_ids: list[str]
    count: int = 3
    passwords: dict[str, str] = field(default_factory=dict)
    children: list[StromChild] = field(default_factory=list)
    configs: list[StromConfig] = field(default_factory=list)
    chargers: dict[str, SimulatedCharger] = field(default_factory=dict)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    backend: FakeBackend | None = None
    wallet: FakeDriverWallet | None = None
    relay_url: str | None = None  # an external relay every process uses (None: embedded)
    admin_npub: str | None = None  # the operator's npub ([nostr] admin_npubs)

    def setup(self) -> None:
        """Write the installation and the processes' environments (nothing runs yet)."""
        self.passwords = write_site(self.folder, self.charger_ids)
        if self.relay_url is not None:
            (self.folder / "relay_config" / "relays.toml").write_text(
                f'[[relays]]\nurl = "{self.relay_url}"\n'
            )
        common = {
            "STROM_STORAGE__DATABASE_URL": self.database_url,
            "STROM_MASTER_KEY": secrets.token_hex(32),
            "STROM_CLUSTER__LEASE_TTL_S": str(TTL_S),
            "STROM_OCPP__RECONNECT_GRACE_S": "5",
            "STROM_SESSIONS__ORPHAN_GRACE_S": "3",  # timers after a reconnect end soon
            # A command routed to a process that is stopping waits this (+5 s) for no answer.
            "STROM_OCPP__COMMAND_TIMEOUT_S": "10",
        }
        if self.admin_npub is not None:
            common["STROM_NOSTR__ADMIN_NPUBS"] = f'["{self.admin_npub}"]'
        for index in range(self.count):
            env = strom_environment(**common)
            config = load_config(self.folder / "strom.toml", environ=env)
            child = StromChild(
                self.folder,
                env,
                config.server.public_url,
                args=("--cluster",),
                log_name=f"strom-{index + 1}.log",
            )
            self.children.append(child)
            self.configs.append(config)
        backend = create_backend(
            self.configs[0].lightning, data_dir=self.configs[0].storage.data_dir
        )
        assert isinstance(backend, FakeBackend)
        self.backend = backend
        self.wallet = FakeDriverWallet(backend)

    async def start(self) -> None:
        """Start the first process alone (it makes the data folder's files), then the others."""
        first, *others = self.children
        first.start()
        await first.wait_ready()
        for child in others:
            child.start()
        for child in others:
            await child.wait_ready()
        for child in self.children:
            assert not child.died(), f"a process did not start; see {child.log.name}"

    def ocpp_url(self, index: int) -> str:
        return f"ws://127.0.0.1:{self.configs[index].ocpp.port}/ocpp"

    def connect(self, charger_id: str, index: int, *, speed: float = 60.0) -> SimulatedCharger:
        """A simulated charger connecting to process ``index`` first, the others after it."""
        order = [(index + k) % self.count for k in range(self.count)]
        charger = simulated_charge_point(
            SimulatorOptions(
                url=self.ocpp_url(order[0]),
                fallback_urls=tuple(self.ocpp_url(i) for i in order[1:]),
                charger_id=charger_id,
                password=self.passwords[charger_id],
                power_kw=Decimal(11),
                speed=speed,
                plugged=(1,),
                reconnect_delay_s=0.2,
            )
        )
        self.chargers[charger_id] = charger
        self._tasks.append(asyncio.create_task(charger.run(), name=f"sim-{charger_id}"))
        return charger

    def driver(self, charger_id: str, index: int) -> Driver:
        """A payer scanning the sticker of ``charger_id`` served by process ``index``."""
        assert self.wallet is not None
        base = self.configs[index].server.public_url
        return Driver(_Patient(), self.wallet, f"{base}/lnurlp/{charger_id}/1")  # type: ignore[arg-type]

    async def online_everywhere(self, charger_ids: list[str], within_s: float = 30) -> None:
        """Wait until every process offers each charger (its owner is known cluster-wide)."""
        deadline = time.monotonic() + within_s
        async with httpx.AsyncClient(timeout=5) as http:
            for config in self.configs:
                for charger_id in charger_ids:
                    url = f"{config.server.public_url}/lnurlp/{charger_id}/1"
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            response = await http.get(url)
                            if response.status_code == 200 and "callback" in response.json():
                                break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{charger_id} not offered at {url}")
                        await asyncio.sleep(0.2)

    async def revive_all(self) -> None:
        for child in self.children:
            await child.revive()

    async def drained(self, within_s: float = 60) -> bool:
        """Wait until the shared outbox is empty (reviving what died meanwhile)."""
        from strom_storage.db import Database
        from strom_storage.outbox import OutboxStore

        db = Database.from_url(self.database_url)
        try:
            deadline = time.monotonic() + within_s
            while True:
                await self.revive_all()
                if not (await OutboxStore(db).counts()).get("pending", 0):
                    return True
                if time.monotonic() > deadline:
                    return False
                await asyncio.sleep(0.3)
        finally:
            await db.close()

    async def admin_token(self) -> str:
        """An operator's API token (admin), made in the shared database."""
        from cockpit.tokens import TokenStore
        from strom_storage.db import Database

        db = Database.from_url(self.database_url)
        try:
            return await TokenStore(db).create(f"ops-{secrets.token_hex(3)}")
        finally:
            await db.close()

    async def pending(self) -> list[tuple[object, ...]]:
        """The outbox rows still pending (for a failure's message)."""
        from sqlalchemy import select

        from strom_storage.db import Database
        from strom_storage.schema import outbox

        db = Database.from_url(self.database_url)
        try:
            async with db.reader() as conn:
                rows = await conn.execute(
                    select(
                        outbox.c.kind,
                        outbox.c.idempotency_key,
                        outbox.c.lease,
                        outbox.c.claimed_by,
                        outbox.c.attempts,
                        outbox.c.last_error,
                    ).where(outbox.c.state == "pending")
                )
                return [tuple(row) for row in rows]
        finally:
            await db.close()

    async def check(self) -> list[str]:
        """The crash harness's money invariants over the shared database."""
        assert self.wallet is not None
        config = self.configs[0]
        storage = config.storage.model_copy(update={"database_url": self.database_url})
        return await check_money(config.model_copy(update={"storage": storage}), self.wallet)

    async def aclose(self) -> None:
        for charger in self.chargers.values():
            charger.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for child in self.children:
            child.stop()
        if self.backend is not None:
            await self.backend.aclose()

    def logs(self) -> str:
        """The tail of every process's log, for a failure's message."""
        tails = []
        for child in self.children:
            child.log.flush()
            text = Path(child.log.name).read_text(errors="replace").splitlines()
            tails.append(f"--- {Path(child.log.name).name}\n" + "\n".join(text[-40:]))
        return "\n".join(tails)
