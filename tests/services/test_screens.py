"""A charger's own screen: price and pay code while idle, "paid" after payment, the running cost.

The screens here are an in-memory :class:`ChargerDisplays` that keeps what each charger shows
(the OCPP 2.0.1 simulated charger does the same over a real websocket in the e2e tests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

import lnurl

from strom_core.clock import SYSTEM_CLOCK
from strom_core.ports import (
    NO_SCREEN,
    CommandResult,
    CommandStatus,
    ConnectorStatusChanged,
    ScreenCapabilities,
    ScreenMessage,
)
from strom_core.session import Session, State, Transition, new_session
from strom_core.tariff import Tariff
from strom_services.screens import (
    CHARGING_TEXT,
    FINISHED_TEXT,
    ScreenKeeper,
    qr_message_id,
    text_message_id,
)

BASE = "https://charge.example"
TARIFF = Tariff(energy_msat_per_kwh=250_000, session_fee_msat=100_000)
AT = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass
class Screens:
    """Chargers' screens in memory: what each shows, and every cost update."""

    capabilities: dict[str, ScreenCapabilities]
    shown: dict[tuple[str, int], ScreenMessage] = field(default_factory=dict)
    costs: list[tuple[str, int, Decimal]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # every text shown, in order
    refuse: bool = False

    def screen_of(self, charger_id: str) -> ScreenCapabilities:
        return self.capabilities.get(charger_id, NO_SCREEN)

    def _answer(self) -> CommandResult:
        return CommandResult(CommandStatus.REJECTED if self.refuse else CommandStatus.ACCEPTED)

    async def show(self, charger_id: str, message: ScreenMessage) -> CommandResult:
        if not self.refuse:
            self.shown[charger_id, message.message_id] = message
            if not message.uri:
                self.texts.append(message.text)
        return self._answer()

    async def clear(self, charger_id: str, message_id: int) -> CommandResult:
        if not self.refuse:
            self.shown.pop((charger_id, message_id), None)
        return self._answer()

    async def show_cost(self, charger_id: str, connector_id: int, total: Decimal) -> CommandResult:
        self.costs.append((charger_id, connector_id, total))
        return self._answer()


def _session(state: State, **values: object) -> Session:
    session = new_session(
        session_id="s1",
        charger_id="cp-1",
        connector_id=2,
        id_tag="TAG",
        tariff=TARIFF,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=60,
    )
    return replace(session, state=state, **values)  # type: ignore[arg-type]


async def _settled(keeper: ScreenKeeper, task: asyncio.Task[None]) -> None:
    for _ in range(20):  # let the keeper's task send what is due now
        await asyncio.sleep(0)
    assert not task.done()


async def test_idle_paid_charging_and_back_to_idle_on_a_screen_with_qr_codes() -> None:
    screens = Screens({"cp-1": ScreenCapabilities(messages=True, qr=True, cost=True)})
    keeper = ScreenKeeper(
        screens, lambda _id: TARIFF, BASE, clock=SYSTEM_CLOCK, cost_interval_s=0.3
    )
    task = asyncio.create_task(keeper.run())
    try:
        await keeper.on_event(ConnectorStatusChanged("cp-1", 2, "Available", "NoError", AT))
        await _settled(keeper, task)
        text = screens.shown["cp-1", text_message_id(2)]
        assert text.connector_id == 2
        assert text.text.startswith("Pay with Lightning: 250 sat/kWh + 100 sat per session.")
        code = screens.shown["cp-1", qr_message_id(2)]
        assert code.uri
        assert code.text.startswith("lightning:LNURL1")
        decoded = lnurl.decode(code.text.removeprefix("lightning:"))
        assert str(decoded) == f"{BASE}/lnurlp/cp-1/2"  # the sticker's code of connector 2

        keeper.on_transition(Transition(_session(State.PAID, paid_msat=20_000_000)))
        await _settled(keeper, task)
        assert screens.shown["cp-1", text_message_id(2)].text == (
            "Paid 20,000 sat. Plug in to start charging."
        )
        assert ("cp-1", qr_message_id(2)) not in screens.shown  # no second payment invited

        await keeper.on_event(ConnectorStatusChanged("cp-1", 2, "Charging", "NoError", AT))
        # A burst of meter readings: one cost update now, the newest after the interval.
        for consumed in (1_000_000, 2_000_000, 3_500_000):
            keeper.on_transition(
                Transition(_session(State.CHARGING, consumed_msat=consumed, started_at=AT))
            )
            await _settled(keeper, task)
        assert screens.costs == [("cp-1", 2, Decimal(1000))]
        # The text says so too, once: the cost updates did not displace it, nor it them.
        charging = screens.shown["cp-1", text_message_id(2)]
        assert (charging.text, charging.urgent) == (CHARGING_TEXT, True)
        assert screens.texts.count(CHARGING_TEXT) == 1
        await asyncio.sleep(0.4)
        assert screens.costs[-1] == ("cp-1", 2, Decimal(3500))
        assert len(screens.costs) == 2
        # The stop's final cost goes out at once, whatever the pace.
        keeper.on_transition(
            Transition(_session(State.STOPPED, consumed_msat=3_600_500, started_at=AT))
        )
        await _settled(keeper, task)
        assert screens.costs[-1] == ("cp-1", 2, Decimal("3600.5"))
        assert screens.shown["cp-1", text_message_id(2)].text == FINISHED_TEXT

        await keeper.on_event(ConnectorStatusChanged("cp-1", 2, "Available", "NoError", AT))
        await _settled(keeper, task)
        assert screens.shown["cp-1", text_message_id(2)].text.startswith("Pay with Lightning")
        assert ("cp-1", qr_message_id(2)) in screens.shown
    finally:
        task.cancel()


async def test_chargers_without_a_screen_or_qr_codes_get_only_what_they_can_show() -> None:
    screens = Screens(
        {"text-only": ScreenCapabilities(messages=True), "cost-only": ScreenCapabilities(cost=True)}
    )
    keeper = ScreenKeeper(screens, lambda _id: TARIFF, BASE, clock=SYSTEM_CLOCK)
    task = asyncio.create_task(keeper.run())
    try:
        for charger in ("text-only", "cost-only", "no-screen"):
            await keeper.on_event(ConnectorStatusChanged(charger, 1, "Available", "NoError", AT))
            paid = _session(State.PAID, paid_msat=5_000_000)
            session = replace(paid, charger_id=charger, connector_id=1)
            keeper.on_transition(Transition(session))
            charging = replace(session, state=State.CHARGING, consumed_msat=10_000)
            keeper.on_transition(Transition(charging))
        await _settled(keeper, task)
        # the text-only screen: the newest text (charging); no QR code, no cost
        assert set(screens.shown) == {("text-only", text_message_id(1))}
        assert screens.shown["text-only", 11].text == CHARGING_TEXT
        assert screens.costs == [("cost-only", 1, Decimal(10))]
    finally:
        task.cancel()


async def test_a_screen_that_refuses_changes_nothing_else_and_an_http_url_makes_no_qr() -> None:
    screens = Screens({"cp-1": ScreenCapabilities(messages=True, qr=True, cost=True)}, refuse=True)
    keeper = ScreenKeeper(screens, lambda _id: TARIFF, "http://charge.example", clock=SYSTEM_CLOCK)
    task = asyncio.create_task(keeper.run())
    try:
        await keeper.on_event(ConnectorStatusChanged("cp-1", 1, "Available", "NoError", AT))
        await _settled(keeper, task)  # refused: logged, the keeper goes on
        screens.refuse = False
        await keeper.on_event(ConnectorStatusChanged("cp-1", 1, "Available", "NoError", AT))
        await _settled(keeper, task)
        assert set(screens.shown) == {("cp-1", text_message_id(1))}  # clearnet http: no LNURL
    finally:
        task.cancel()


async def test_a_screen_reported_after_the_status_shows_the_price_on_idle_connectors() -> None:
    screens = Screens({})  # the charger has not reported its screen yet
    keeper = ScreenKeeper(screens, lambda _id: TARIFF, BASE, clock=SYSTEM_CLOCK)
    task = asyncio.create_task(keeper.run())
    try:
        await keeper.on_event(ConnectorStatusChanged("cp-1", 1, "Available", "NoError", AT))
        await keeper.on_event(ConnectorStatusChanged("cp-1", 2, "Available", "NoError", AT))
        await keeper.on_event(ConnectorStatusChanged("cp-1", 2, "Preparing", "NoError", AT))
        await keeper.on_event(ConnectorStatusChanged("cp-2", 1, "Available", "NoError", AT))
        await _settled(keeper, task)
        assert screens.shown == {}

        screens.capabilities["cp-1"] = ScreenCapabilities(messages=True)
        keeper.refresh("cp-1")
        await _settled(keeper, task)
        # Only the connector still idle, only on the charger that reported.
        assert set(screens.shown) == {("cp-1", text_message_id(1))}
    finally:
        task.cancel()


async def test_a_session_that_ends_after_the_cable_is_out_leaves_the_price_in_place() -> None:
    """The charger may report Available before the stop reaches the session: no "unplug" then."""
    screens = Screens({"cp-1": ScreenCapabilities(messages=True, cost=True)})
    keeper = ScreenKeeper(screens, lambda _id: TARIFF, BASE, clock=SYSTEM_CLOCK)
    task = asyncio.create_task(keeper.run())
    try:
        keeper.on_transition(Transition(_session(State.CHARGING, started_at=AT)))
        await keeper.on_event(ConnectorStatusChanged("cp-1", 2, "Available", "NoError", AT))
        keeper.on_transition(
            Transition(_session(State.STOPPED, consumed_msat=5_000, started_at=AT))
        )
        await _settled(keeper, task)
        assert screens.shown["cp-1", text_message_id(2)].text.startswith("Pay with Lightning")
        assert screens.costs[-1] == ("cp-1", 2, Decimal(5))  # the final cost still goes out
    finally:
        task.cancel()
