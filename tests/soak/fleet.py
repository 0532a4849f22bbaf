"""The soak's simulated chargers: real OCPP websockets, rebooted and cut off on schedule.

Every charger has one connector with a vehicle plugged in. The last one of the plan runs
firmware that forgets its transactions on a power loss (``persist_transactions=False``): it
comes back without them and never sends their StopTransaction, so Strom must end those
sessions itself after the orphan grace.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from ocpp_server.simulator import CallFailed, SimulatedChargePoint, SimulatorOptions
from tests.soak.plan import Event, Kind

SPEED = 240.0  # the meters run 240 times faster than real time: 11 kW -> ~730 Wh a second


@dataclass
class FaultCounts:
    """What the fleet's faults hit."""

    reboots: int = 0
    reboots_mid_transaction: int = 0
    forgotten_transactions: int = 0
    network_drops: int = 0


class Fleet:
    """The simulated chargers of one soak.

    Args:
        ocpp_url: Strom's OCPP base URL (``ws://127.0.0.1:<port>/ocpp``).
        passwords: each charger's OCPP password, by charger id.
        forgetful: the charger that forgets its transactions on a reboot.
    """

    def __init__(self, ocpp_url: str, passwords: dict[str, str], forgetful: str) -> None:
        self.forgetful = forgetful
        self.chargers = {
            charger_id: SimulatedChargePoint(
                SimulatorOptions(
                    url=ocpp_url,
                    charger_id=charger_id,
                    password=password,
                    power_kw=Decimal(11),
                    speed=SPEED,
                    plugged=(1,),
                    reconnect_delay_s=0.3,
                    persist_transactions=charger_id != forgetful,
                )
            )
            for charger_id, password in passwords.items()
        }
        self.counts = FaultCounts()
        self.wanted: str | None = None  # a charger that waits for a driver to charge there
        self._runs: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Power every charger on (each connects, boots and reconnects on its own)."""
        for charger_id in self.chargers:
            self._power_on(charger_id)

    def _power_on(self, charger_id: str) -> None:
        charger = self.chargers[charger_id]
        self._runs[charger_id] = asyncio.create_task(charger.run(), name=f"charger:{charger_id}")

    async def stop(self) -> None:
        """Power every charger off for good."""
        for charger in self.chargers.values():
            charger.stop()
        await asyncio.gather(*self._runs.values(), return_exceptions=True)

    def gave_up(self, charger_id: str) -> str:
        """Why the charger's simulator ended by itself ("": it runs, or was stopped on purpose).

        A real charger never stops trying; a simulator that does would leave its charger off
        for the rest of the soak and look like Strom blocking it.
        """
        run = self._runs.get(charger_id)
        if run is None or not run.done() or run.cancelled():
            return ""
        error = run.exception()
        return f"its simulator stopped: {error!r}" if error else "its simulator stopped"

    def charging(self, charger_id: str) -> bool:
        """Whether the charger runs a transaction now."""
        connectors = self.chargers[charger_id].connectors.values()
        return any(c.transaction_id is not None for c in connectors)

    def open_transactions(self) -> dict[str, int]:
        """Charger id -> the transaction it still runs, for every charger that runs one."""
        return {
            charger_id: connector.transaction_id
            for charger_id, charger in self.chargers.items()
            for connector in charger.connectors.values()
            if connector.transaction_id is not None
        }

    async def idle(self, within_s: float) -> None:
        """Wait until no charger runs a transaction.

        Raises:
            TimeoutError: one still does after ``within_s``.
        """
        async with asyncio.timeout(within_s):
            for charger_id, charger in self.chargers.items():
                await charger.wait_until(partial(self.idle_now, charger_id), within_s)

    def idle_now(self, charger_id: str) -> bool:
        """Whether the charger runs no transaction now."""
        return not self.charging(charger_id)

    async def hit(self, event: Event, wait_s: float = 0.0) -> None:
        """Apply a planned fault to its charger.

        Args:
            event: the fault.
            wait_s: the forgetful charger's reboot waits up to this long for a charge, so that
                it has a transaction to forget; meanwhile it is :attr:`wanted` by drivers.
        """
        charger = self.chargers[event.target]
        if event.kind is Kind.NETWORK:
            charger.drop_connection()
            self.counts.network_drops += 1
            return
        if event.target == self.forgetful:
            self.wanted = event.target
            try:
                with contextlib.suppress(TimeoutError):
                    await charger.wait_until(partial(self.charging, event.target), wait_s)
            finally:
                self.wanted = None
        await self.reboot(event.target, event.down_s)

    async def reboot(self, charger_id: str, down_s: float) -> None:
        """Cut the power of a charger, keep it off for ``down_s``, and power it on again."""
        charger = self.chargers[charger_id]
        mid_transaction = self.charging(charger_id)
        charger.power_cut()
        run = self._runs[charger_id]
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        self.counts.reboots += 1
        self.counts.reboots_mid_transaction += mid_transaction
        self.counts.forgotten_transactions += mid_transaction and charger_id == self.forgetful
        await asyncio.sleep(down_s)
        self._power_on(charger_id)

    async def unplug_and_replug(self, charger_id: str, pause_s: float = 0.5) -> None:
        """The driver stops at the charger: unplugs (StopTransaction) and plugs back in."""
        charger = self.chargers[charger_id]
        with contextlib.suppress(CallFailed):  # Strom is down: the stop is queued and resent
            await charger.unplug(1)
        await asyncio.sleep(pause_s)
        with contextlib.suppress(CallFailed):
            await charger.plug(1)
