"""A charger's own screen, end to end: the price and the sticker's code while idle, "paid" after
the payment, "charging" and the running cost while charging, and the final cost equal to what
the session used.

Over real HTTP and a real OCPP 2.0.1 websocket (the simulated station keeps what its screen shows
and the costs it was told); an OCPP 1.6 charger, which has no such screen, is sent nothing.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import lnurl

from ocpp_server import SimulatedChargePoint201
from strom_core.ports import NO_SCREEN, CommandStatus, ScreenCapabilities, ScreenMessage
from strom_services.screens import CHARGING_TEXT, FINISHED_TEXT
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.e2e.test_fiat_tariffs import RATE, price_in_euros
from tests.e2e.test_pay_charge_refund import claim_refund

_SCREEN_ACTIONS = {"SetDisplayMessage", "ClearDisplayMessage", "CostUpdated"}


def _sent_actions(stack: Stack) -> list[str]:
    """The actions of every CALL Strom sent the charger (as the charger received them)."""
    return [call.action for call in stack.charger.received_calls]


async def test_idle_paid_charging_and_final_cost_on_an_ocpp_201_screen(tmp_path: Path) -> None:
    async with running_stack(tmp_path, ocpp_version="2.0.1") as stack:
        sim = stack.charger
        assert isinstance(sim, SimulatedChargePoint201)
        ocpp = stack.strom.ocpp.commands
        await sim.unplug(1)  # the stack's vehicle drives off: the connector is Available

        # Idle: the price, and the connector's LNURL as a QR code: the sticker's.
        await sim.wait_until(lambda: len(sim.screen) == 2)
        assert ocpp.screen_of(CHARGER) == ScreenCapabilities(messages=True, qr=True, cost=True)
        price = next(m for m in sim.display_messages.values() if m["message"]["format"] == "UTF8")
        assert price["message"]["content"].startswith("Pay with Lightning: 250 sat/kWh")
        assert price["display"]["evse"] == {"id": 1}
        code = next(m for m in sim.display_messages.values() if m["message"]["format"] == "URI")
        scanned = code["message"]["content"].removeprefix("lightning:")
        assert str(lnurl.decode(scanned)) == stack.pay_url

        # Paid: the QR code goes (no second payment), the screen says what to do next.
        status_url, _ = await stack.pay(2_000_000)
        await sim.wait_until(lambda: sim.screen == ["Paid 2,000 sat. Plug in to start charging."])
        [paid] = sim.display_messages.values()
        assert paid["priority"] == "InFront"

        # Charging: the cost the screen shows grows with the bill.
        await sim.plug(1)
        await stack.wait_state(status_url, "charging")
        await sim.wait_until(lambda: sim.screen == [CHARGING_TEXT])
        transaction = str(sim.connectors[1].transaction_id)
        seen: set[Decimal] = set()

        def grown() -> bool:
            if transaction in sim.costs:
                seen.add(sim.costs[transaction])
            return len(seen) >= 2 and max(seen) > 0

        await sim.wait_until(grown, within_s=20)
        # The station shows costs in sats: its currency was set before the first cost.
        assert sim.device_model.get("TariffCostCtrlr", "Currency") == "SAT"

        # Stopped: the final cost is exactly what the session used, in sats.
        await claim_refund(stack, status_url)
        final = await stack.wait_state(status_url, "refunded")
        used = Decimal(final["consumed_msat"]) / 1000
        await sim.wait_until(lambda: sim.costs.get(transaction) == used)
        assert transaction in sim.ended_costs  # in the answer to the Ended, OCPP 2.0.1's place
        await sim.wait_until(lambda: sim.screen == [FINISHED_TEXT])  # the cable is still in

        # The cable is out: idle again, price and code back on the screen.
        await sim.unplug(1)
        await sim.wait_until(lambda: len(sim.screen) == 2)
        await stack.ledgers_balance()
        assert sim.validation_failures == []
        sent = _sent_actions(stack)
        assert sent.count("SetVariables") == 2  # sampling at boot, the currency once
        assert "CostUpdated" in sent


async def test_a_station_without_screen_controllers_is_sent_nothing(tmp_path: Path) -> None:
    options = {"screen": False, "running_cost": False}
    async with running_stack(tmp_path, ocpp_version="2.0.1", simulator=options) as stack:
        sim = stack.charger
        assert isinstance(sim, SimulatedChargePoint201)
        await sim.unplug(1)
        await sim.plug(1)
        status_url, _ = await stack.pay(2_000_000)
        await stack.wait_state(status_url, "charging")
        assert stack.strom.ocpp.commands.screen_of(CHARGER) == NO_SCREEN
        sent = _sent_actions(stack)
        assert not _SCREEN_ACTIONS & set(sent)
        assert sim.display_messages == {}


async def test_an_ocpp_16_charger_has_no_screen_and_charges_as_before(tmp_path: Path) -> None:
    async with running_stack(tmp_path) as stack:
        ocpp = stack.strom.ocpp.commands
        assert ocpp.screen_of(CHARGER) == NO_SCREEN
        refused = await ocpp.show(CHARGER, ScreenMessage(11, 1, "hello"))
        assert refused.status is CommandStatus.NOT_SUPPORTED
        status_url, _ = await stack.pay(2_000_000)
        await stack.wait_state(status_url, "charging")
        await claim_refund(stack, status_url)
        await stack.wait_state(status_url, "refunded")
        sent = _sent_actions(stack)
        assert not _SCREEN_ACTIONS & set(sent)
        await stack.ledgers_balance()


async def test_an_ocpp_201_screen_shows_the_euro_price_with_its_sats(tmp_path: Path) -> None:
    async with running_stack(tmp_path, RATE, ocpp_version="2.0.1") as stack:
        await price_in_euros(stack, "at_payment")
        sim = stack.charger
        assert isinstance(sim, SimulatedChargePoint201)
        await sim.unplug(1)  # the connector is Available: its screen shows the price

        def priced() -> bool:
            texts = [m["message"]["content"] for m in sim.display_messages.values()]
            return any("EUR" in text for text in texts)

        await sim.wait_until(priced)
        [text] = [
            m["message"]["content"]
            for m in sim.display_messages.values()
            if m["message"]["format"] == "UTF8"
        ]
        assert text == (
            "Pay with Lightning: 0.36 EUR/kWh (about 400 sat at the current rate) + "
            "0.009 EUR per session (about 10 sat at the current rate). EUR prices are "
            "converted to sats when you pay. Scan the code; unused sats are refunded."
        )
