"""The soak's drivers: wallet users who pay a sticker's LNURL, charge, and take their refund.

Each driver has its own client address (``X-Forwarded-For`` through Strom's trusted proxy,
so Strom's per-client limits count drivers, not the test) and its own seeded choices: which
charger, how much, and how the charge ends:

* ``withdraw``: charge a few hundred Wh, then open the withdraw link (it stops the charge);
* ``budget``: pay the minimum and charge until Strom stops at the budget;
* ``unplug``: charge a little, then stop at the charger (unplug, plug back in).

Then the driver claims the refund from the withdraw link until the session is finished,
retrying everything that fails because Strom is down, as a wallet user does. Every driver
pays from the fake node's driver wallet; each one remembers the invoices it paid and the
refund invoices it made (:class:`Ride`), so the checks can tell whose refund went where.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from strom_lightning import FakeDriverWallet
from tests.soak.fleet import Fleet

FINISHED = frozenset({"refunded", "closed", "expired"})
STOPPED = frozenset({"stopped", "start_failed", "refund_pending", *FINISHED})
RUNNING = frozenset({"paid", "starting", "charging", "stopping"})
BEHAVIOURS = ("withdraw", "budget", "unplug")
MIN_PREPAY_MSAT = 1_000_000  # the scaffold's tariff: 1,000 sat at 250 sat/kWh
RETRY_S = 0.25


@dataclass
class Ride:
    """One paid session, as its driver saw it."""

    driver: int
    charger_id: str
    behaviour: str
    session_id: str = ""
    payment_hash: str = ""
    paid_msat: int = 0
    refund_hashes: set[str] = field(default_factory=set)
    charged: bool = False  # the driver saw it charging
    outcome: str = ""  # the last state seen, or why the driver gave up


class Tickets:
    """The sessions that may start, shared by all drivers: at most ``limit``, one new one
    every ``every_s`` at most (drivers arrive spread over the soak); closed when it ends."""

    def __init__(self, limit: int | None, every_s: float) -> None:
        self.left = limit
        self.every_s = every_s
        self.open = True
        self._next_at = time.monotonic()

    async def take(self) -> bool:
        """Wait for the next arrival and take it (False: no more sessions start)."""
        while self.open and self.left != 0:
            now = time.monotonic()
            if now >= self._next_at:
                self._next_at = now + self.every_s
                if self.left is not None:
                    self.left -= 1
                return True
            await asyncio.sleep(min(0.1, self._next_at - now))
        return False

    def give_back(self) -> None:
        """A session that did not start (no invoice) returns its ticket at once."""
        if self.left is not None:
            self.left += 1
        self._next_at = time.monotonic()


class Driver:
    """One driver (see the module docstring).

    Args:
        index: the driver's number (its client address and random stream derive from it).
        base: Strom's public URL.
        wallet: the fake node's driver wallet.
        fleet: the chargers (to unplug at).
        seed: the soak's seed.
        say: where progress lines go.
    """

    def __init__(
        self,
        index: int,
        base: str,
        wallet: FakeDriverWallet,
        fleet: Fleet,
        seed: int,
        say: Callable[[str], None],
    ) -> None:
        self.index = index
        self.base = base
        self.wallet = wallet
        self.fleet = fleet
        self.rng = random.Random(f"{seed}:driver:{index}")
        self.say = say
        self.rides: list[Ride] = []
        self.http = httpx.AsyncClient(
            timeout=30, headers={"X-Forwarded-For": f"10.0.0.{index + 1}"}
        )

    async def aclose(self) -> None:
        """Close the driver's HTTP client."""
        await self.http.aclose()

    async def get(self, url: str, within_s: float = 60, **params: str) -> dict[str, Any]:
        """GET a JSON answer, retrying while Strom is down or restarting.

        Raises:
            TimeoutError: no answer within ``within_s``.
        """
        deadline = time.monotonic() + within_s
        while True:
            try:
                response = await self.http.get(httpx.URL(url).copy_merge_params(params))
                if response.status_code == 200:
                    body: dict[str, Any] = response.json()
                    return body
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {url.split('?')[0]} kept failing")
            await asyncio.sleep(RETRY_S)

    async def run(self, tickets: Tickets) -> None:
        """Start sessions one after another until no tickets are left."""
        while await tickets.take():
            charger_id = self.rng.choice(sorted(self.fleet.chargers))
            # The forgetful charger's reboot waits for a charge: the next driver goes there.
            charger_id = self.fleet.wanted or charger_id
            behaviour = self.rng.choices(BEHAVIOURS, weights=(5, 2, 2))[0]
            ride = await self.ride(charger_id, behaviour, within_s=10)
            if ride is None:
                tickets.give_back()
                await asyncio.sleep(self.rng.uniform(0.3, 1.0))

    async def ride(self, charger_id: str, behaviour: str, within_s: float) -> Ride | None:
        """One session at ``charger_id``; None when no invoice came within ``within_s``."""
        if behaviour == "budget":
            amount = MIN_PREPAY_MSAT
        else:
            amount = self.rng.randrange(2_000, 6_001, 100) * 1_000
        target_wh = self.rng.randrange(500, 3_000, 100)
        answer = await self.invoice(charger_id, amount, within_s)
        if answer is None:
            return None
        page = str(answer["successAction"]["url"])
        ride = Ride(self.index, charger_id, behaviour, session_id=_session_id(page))
        self.rides.append(ride)
        receipt = await self.wallet.pay(str(answer["pr"]))
        ride.payment_hash, ride.paid_msat = str(receipt.payment_hash), amount
        self.say(f"driver {self.index}: paid {amount // 1000} sat at {charger_id} ({behaviour})")
        status_url = page.replace("?", ".json?", 1)
        try:
            await self.follow(ride, status_url, target_wh)
            await self.refund(ride, status_url)
        except TimeoutError as exc:
            ride.outcome = f"gave up: {exc}"
        self.say(f"driver {self.index}: session {ride.session_id} {ride.outcome}")
        return ride

    async def invoice(self, charger_id: str, amount: int, within_s: float) -> dict[str, Any] | None:
        """Scan the sticker and ask for an invoice; None if refused (busy, reconnecting…)."""
        pay_url = f"{self.base}/lnurlp/{charger_id}/1"
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            try:
                offer = await self.get(pay_url, within_s=within_s)
                if "callback" in offer:
                    answer = await self.get(str(offer["callback"]), amount=str(amount))
                    if "pr" in answer:
                        return answer
            except TimeoutError:
                return None
            await asyncio.sleep(0.5)
        return None

    async def status(
        self, status_url: str, until: frozenset[str], within_s: float
    ) -> dict[str, Any]:
        """Poll the session until its state is in ``until``.

        Raises:
            TimeoutError: it was not within ``within_s``.
        """
        deadline = time.monotonic() + within_s
        while True:
            status = await self.get(status_url)
            if status["state"] in until:
                return status
            if time.monotonic() > deadline:
                raise TimeoutError(f"stuck in {status['state']}, waiting for {sorted(until)}")
            await asyncio.sleep(RETRY_S)

    async def follow(self, ride: Ride, status_url: str, target_wh: int) -> None:
        """Wait for the charge and end it the driver's way."""
        status = await self.status(status_url, frozenset({"charging"}) | STOPPED, 90)
        ride.charged = status["state"] == "charging"
        if ride.behaviour == "budget":
            await self.status(status_url, STOPPED, 120)  # Strom stops at the budget
            return
        while status["state"] == "charging" and status["energy_wh"] < target_wh:
            await asyncio.sleep(RETRY_S)
            status = await self.get(status_url)
        if status["state"] == "charging" and ride.behaviour == "unplug":
            await self.fleet.unplug_and_replug(ride.charger_id)
        # "withdraw": opening the withdraw link in refund() stops the charge.

    async def refund(self, ride: Ride, status_url: str, within_s: float = 180) -> None:
        """Claim the refund from a fresh withdraw request until the session is finished.

        After a crash a claim may have been lost, or have failed definitely and become
        claimable again; a claim in flight shows as ``refund_pending`` and is waited for.
        """
        deadline = time.monotonic() + within_s
        while True:
            status = await self.get(status_url)
            ride.outcome = str(status["state"])
            if status["state"] in FINISHED:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"stuck in {status['state']}, waiting for {sorted(FINISHED)}")
            if status["state"] != "refund_pending" and status.get("withdraw_url"):
                await self.claim(ride, str(status["withdraw_url"]))
            await asyncio.sleep(1.0)

    async def claim(self, ride: Ride, withdraw_url: str) -> None:
        """Open the withdraw link and, if it offers the refund, claim it with a new invoice."""
        offer = await self.get(withdraw_url.replace("lnurlw://", "http://", 1))
        if offer.get("tag") != "withdrawRequest":
            return  # nothing refundable yet (or any more), or opened too often just now
        invoice = await self.wallet.create_invoice(int(offer["maxWithdrawable"]), memo="refund")
        ride.refund_hashes.add(invoice.payment_hash)
        await self.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)


def _session_id(page_url: str) -> str:
    """The session id in a session page's URL (``…/s/<id>?secret=…``)."""
    return httpx.URL(page_url).path.rsplit("/", 1)[-1]
