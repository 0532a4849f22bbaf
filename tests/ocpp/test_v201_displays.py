"""The screens of OCPP 2.0.1 stations: what a station reported decides what it is sent.

A raw 2.0.1 station (:class:`tests.ocpp.drivers.PythonDriver`) reports its device model and
answers the display messages and CostUpdated as the test wants; the core is the in-memory one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ocpp_server import InMemoryOcppCore
from strom_core.ports import (
    NO_SCREEN,
    CommandStatus,
    ScreenCapabilities,
    ScreenMessage,
)
from tests.ocpp.conftest import Harness, HarnessFactory, running
from tests.ocpp.drivers import PythonDriver
from tests.ocpp.test_v201_server import T0, event, register, station

SCREEN = {
    ("DisplayMessageCtrlr", None, "Available"): "true",
    ("DisplayMessageCtrlr", None, "SupportedFormats"): "ASCII,UTF8,URI",
    ("TariffCostCtrlr", "Cost", "Available"): "true",
    ("TariffCostCtrlr", "Cost", "Enabled"): "true",
    ("TariffCostCtrlr", None, "Currency"): "EUR",
}


async def report(
    driver: PythonDriver,
    variables: dict[tuple[str, str | None, str], str],
    read_only: frozenset[str] = frozenset(),
) -> None:
    """NotifyReport of ``(component, variable instance, variable) -> value``, in one page."""
    entries: list[dict[str, Any]] = []
    for (component, instance, name), value in variables.items():
        variable: dict[str, Any] = {"name": name}
        if instance is not None:
            variable["instance"] = instance
        mutability = "ReadOnly" if name in read_only else "ReadWrite"
        entries.append(
            {
                "component": {"name": component},
                "variable": variable,
                "variableAttribute": [{"value": value, "mutability": mutability}],
            }
        )
    payload = {"requestId": 1, "generatedAt": T0, "seqNo": 0, "tbc": False, "reportData": entries}
    await driver.call("NotifyReport", payload)


@pytest.fixture
async def harness(start_harness: HarnessFactory) -> Harness:
    """The harness, keeping every frame of the tests (to count what was sent)."""
    return await start_harness(message_log_size=1_000)


def sent(harness: Harness, action: str) -> int:
    return sum(1 for m in harness.server.message_log("cp-1") if f'"{action}"' in m.frame)


async def start_transaction(harness: Harness, driver: PythonDriver) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    started = event("Started", 0, token=tag, meter=[register(1000, "Transaction.Begin")])
    assert (await driver.call("TransactionEvent", started))["idTokenInfo"]["status"] == "Accepted"


async def test_a_station_that_reported_no_screen_is_sent_nothing(harness: Harness) -> None:
    screens = harness.server.commands
    assert screens.screen_of("cp-1") == NO_SCREEN  # not connected
    offline = await screens.show("cp-1", ScreenMessage(11, 1, "hello"))
    assert offline.status is CommandStatus.OFFLINE
    async with station(harness) as driver:
        await report(driver, {("DisplayMessageCtrlr", None, "Available"): "false"})
        assert screens.screen_of("cp-1") == NO_SCREEN
        result = await screens.show("cp-1", ScreenMessage(11, 1, "hello"))
        assert result.status is CommandStatus.NOT_SUPPORTED
        await start_transaction(harness, driver)
        cost = await screens.show_cost("cp-1", 1, Decimal(5))
        assert cost.status is CommandStatus.NOT_SUPPORTED
    assert sent(harness, "SetDisplayMessage") == sent(harness, "CostUpdated") == 0


async def test_messages_qr_codes_and_costs_go_out_as_the_station_reported_them(
    harness: Harness,
) -> None:
    screens = harness.server.commands
    reported: list[str] = []
    screens.on_screen_reported(reported.append)
    async with station(harness) as driver:
        await report(driver, SCREEN)
        assert reported == ["cp-1"]
        assert screens.screen_of("cp-1") == ScreenCapabilities(messages=True, qr=True, cost=True)

        assert (await screens.show("cp-1", ScreenMessage(11, 1, "250 sat/kWh"))).accepted
        text = await driver.server_call("SetDisplayMessage")
        assert text["message"] == {
            "id": 11,
            "priority": "NormalCycle",
            "message": {"format": "UTF8", "content": "250 sat/kWh"},
            "display": {"name": "Display", "evse": {"id": 1}},
        }
        code = ScreenMessage(12, 1, "lightning:LNURL1XYZ", uri=True)
        assert (await screens.show("cp-1", code)).accepted
        assert (await driver.server_call("SetDisplayMessage"))["message"]["message"] == {
            "format": "URI",
            "content": "lightning:LNURL1XYZ",
        }
        paid = ScreenMessage(11, 1, "Paid", urgent=True)
        assert (await screens.show("cp-1", paid)).accepted
        assert (await driver.server_call("SetDisplayMessage"))["message"]["priority"] == "InFront"
        await driver.answer("ClearDisplayMessage", {"status": "Unknown"})
        assert (await screens.clear("cp-1", 12)).accepted  # not shown: cleared already
        assert await driver.server_call("ClearDisplayMessage") == {"id": 12}

        # No transaction of Strom's on the EVSE: no cost is sent.
        nothing = await screens.show_cost("cp-1", 1, Decimal(1))
        assert nothing.status is CommandStatus.REJECTED
        await start_transaction(harness, driver)
        assert (await screens.show_cost("cp-1", 1, Decimal("12.345"))).accepted
        currency = await driver.server_call("SetVariables")  # after the boot's sampling one
        currency = await driver.server_call("SetVariables")
        assert currency["setVariableData"] == [
            {
                "attributeValue": "SAT",
                "component": {"name": "TariffCostCtrlr"},
                "variable": {"name": "Currency"},
            }
        ]
        assert await driver.server_call("CostUpdated") == {
            "totalCost": 12.345,
            "transactionId": "tx-1",
        }
        assert (await screens.show_cost("cp-1", 1, Decimal(20))).accepted
        assert (await driver.server_call("CostUpdated"))["totalCost"] == 20
        ended = event("Ended", 1, meter=[register(1500, "Transaction.End")], stoppedReason="Local")
        await driver.call("TransactionEvent", ended)
        assert (await screens.show_cost("cp-1", 1, Decimal(21))).accepted  # the final cost
        assert (await driver.server_call("CostUpdated"))["transactionId"] == "tx-1"
    assert sent(harness, "SetVariables") == 2  # the currency was set once


async def test_refusals_switch_a_capability_off_for_the_connection_only(
    harness: Harness,
) -> None:
    screens = harness.server.commands
    code = ScreenMessage(12, 1, "lightning:LNURL1XYZ", uri=True)
    text = ScreenMessage(11, 1, "hello")
    async with station(harness) as driver:
        await report(driver, SCREEN)
        await start_transaction(harness, driver)
        await driver.answer("SetDisplayMessage", {"status": "NotSupportedMessageFormat"})
        refused = await screens.show("cp-1", code)
        assert refused.status is CommandStatus.NOT_SUPPORTED
        assert screens.screen_of("cp-1") == ScreenCapabilities(messages=True, cost=True)
        assert (await screens.show("cp-1", code)).status is CommandStatus.NOT_SUPPORTED
        await driver.answer("SetDisplayMessage", {"status": "Rejected"})
        assert (await screens.show("cp-1", text)).status is CommandStatus.REJECTED
        assert not screens.screen_of("cp-1").messages
        assert (await screens.show("cp-1", text)).status is CommandStatus.NOT_SUPPORTED
        await driver.answer("CostUpdated", error="NotImplemented")
        assert (await screens.show_cost("cp-1", 1, Decimal(1))).status is (
            CommandStatus.NOT_SUPPORTED
        )
        assert (await screens.show_cost("cp-1", 1, Decimal(2))).status is (
            CommandStatus.NOT_SUPPORTED
        )
        assert screens.screen_of("cp-1") == NO_SCREEN
    assert sent(harness, "SetDisplayMessage") == 2  # each refusal once, never retried
    assert sent(harness, "CostUpdated") == 1
    async with station(harness) as driver:  # a new connection starts afresh
        assert screens.screen_of("cp-1") == ScreenCapabilities(messages=True, qr=True, cost=True)


async def test_costs_only_in_sats_a_currency_that_cannot_be_set_means_no_cost(
    harness: Harness,
) -> None:
    screens = harness.server.commands
    async with station(harness) as driver:
        await report(driver, SCREEN, read_only=frozenset({"Currency"}))
        assert not screens.screen_of("cp-1").cost  # "EUR", read-only: sats would read as euros
        await report(driver, {**SCREEN, ("TariffCostCtrlr", None, "Currency"): "SAT"})
        assert screens.screen_of("cp-1").cost
        await report(driver, SCREEN)  # writable again, and the station refuses the setting
        await start_transaction(harness, driver)
        await driver.answer(
            "SetVariables",
            {
                "setVariableResult": [
                    {
                        "attributeStatus": "Rejected",
                        "component": {"name": "TariffCostCtrlr"},
                        "variable": {"name": "Currency"},
                    }
                ]
            },
        )
        refused = await screens.show_cost("cp-1", 1, Decimal(1))
        assert refused.status is CommandStatus.NOT_SUPPORTED
        assert not screens.screen_of("cp-1").cost
    assert sent(harness, "CostUpdated") == 0


async def test_the_final_cost_goes_in_the_ended_answer_once_the_screen_shows_sats(
    start_harness: HarnessFactory,
) -> None:
    """OCPP 2.0.1 carries the final cost in TransactionEventResponse.totalCost."""
    harness = await start_harness(core=InMemoryOcppCore(msat_per_wh=250), message_log_size=1_000)
    screens = harness.server.commands
    async with station(harness) as driver:
        await report(driver, SCREEN)
        await start_transaction(harness, driver)
        assert (await screens.show_cost("cp-1", 1, Decimal(10))).accepted  # currency, cost
        await driver.server_call("CostUpdated")
        ended = event("Ended", 1, meter=[register(1500, "Transaction.End")], stoppedReason="Local")
        answer = await driver.call("TransactionEvent", ended)
        assert answer == {"totalCost": 125}  # 500 Wh at 250 msat/Wh: 125 sat
        # The screens' final cost for it is not sent again.
        final = await screens.show_cost("cp-1", 1, Decimal(125))
        assert final.accepted
        # A replayed Ended bills nothing again and carries no cost.
        assert await driver.call("TransactionEvent", ended) == {}
    assert sent(harness, "CostUpdated") == 1


async def test_a_screen_not_yet_in_sats_gets_the_final_cost_in_a_cost_updated(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(core=InMemoryOcppCore(msat_per_wh=250), message_log_size=1_000)
    screens = harness.server.commands
    async with station(harness) as driver:
        await report(driver, SCREEN)  # its currency is EUR until Strom sets it
        await start_transaction(harness, driver)
        ended = event("Ended", 1, meter=[register(1500, "Transaction.End")], stoppedReason="Local")
        assert await driver.call("TransactionEvent", ended) == {}
        assert (await screens.show_cost("cp-1", 1, Decimal(125))).accepted
        await driver.server_call("SetVariables")  # the boot's
        currency = await driver.server_call("SetVariables")  # the currency, before the cost
        assert currency["setVariableData"][0]["attributeValue"] == "SAT"
        assert (await driver.server_call("CostUpdated"))["totalCost"] == 125


async def test_an_ocpp_16_charger_has_no_screen(start_harness: HarnessFactory) -> None:
    harness = await start_harness()
    async with running(harness):
        screens = harness.server.commands
        assert screens.screen_of("cp-1") == NO_SCREEN
        for result in (
            await screens.show("cp-1", ScreenMessage(11, 1, "hello")),
            await screens.clear("cp-1", 11),
            await screens.show_cost("cp-1", 1, Decimal(1)),
        ):
            assert result.status is CommandStatus.NOT_SUPPORTED
