"""The operator's cards reach the charger's local authorization list (LocalAuthListManagement).

Against Strom's simulated charge point over a real websocket (its list survives its reboots),
and against both charge point drivers (ocpp-rpc checks Strom's SendLocalList and
GetLocalListVersion against the OCPP 1.6 schemas, strictly).
"""

from __future__ import annotations

from typing import Any

from ocpp_server.local_list import OcppLocalList
from ocpp_server.v16.charge_point import SimulatedChargePoint
from strom_core.cards import Card
from strom_core.ports import ChargerBooted, CommandStatus
from strom_core.ports.local_list import ListEntry, ListUpdate
from strom_services.local_list import LocalListService
from tests.ocpp.conftest import Harness, boot, running
from tests.ocpp.drivers import ChargePointDriver


class Cards:
    """The operator's cards of each charger, changed by the test."""

    def __init__(self, *tags: str) -> None:
        self.tags = list(tags)

    def __call__(self, charger_id: str) -> list[Card]:
        return [Card(tag) for tag in self.tags]


def sent_lists(sim: SimulatedChargePoint) -> list[dict[str, Any]]:
    return [call.payload for call in sim.received_calls if call.action == "SendLocalList"]


async def reboot_and_sync(harness: Harness, sim: SimulatedChargePoint, service: Any) -> None:
    """Reboot the simulator; hand its accepted boot to the service as the event sink does."""
    seen = len(harness.sink.events)
    sim.reboot()
    booted = await harness.sink.wait_for(ChargerBooted, after=seen)
    await service.on_event(booted)
    await service.settled()


async def test_a_booted_charger_receives_the_full_list(harness: Harness) -> None:
    cards = Cards("STAFF-1", "Fleet-7")
    service = LocalListService(cards, OcppLocalList(harness.server.commands))
    async with running(harness) as sim:
        booted = await harness.sink.wait_for(ChargerBooted)
        await service.on_event(booted)
        await service.settled()
        assert sent_lists(sim) == [
            {
                "listVersion": 1,
                "updateType": "Full",
                "localAuthorizationList": [
                    {"idTag": "STAFF-1", "idTagInfo": {"status": "Accepted"}},
                    {"idTag": "Fleet-7", "idTagInfo": {"status": "Accepted"}},
                ],
            }
        ]
        assert (sim.local_list.version, sim.local_list.tags()) == (1, ["Fleet-7", "STAFF-1"])
        # In step: a second boot asks the version and sends nothing.
        await reboot_and_sync(harness, sim, service)
        assert len(sent_lists(sim)) == 1
        asked = [c for c in sim.received_calls if c.action == "GetLocalListVersion"]
        assert len(asked) == 2


async def test_changed_cards_reach_the_charger_as_a_differential_update(harness: Harness) -> None:
    cards = Cards("STAFF-1", "Fleet-7", "Guest-3")
    service = LocalListService(cards, OcppLocalList(harness.server.commands))
    async with running(harness) as sim:
        assert (await service.sync("cp-1")).update is ListUpdate.FULL
        cards.tags = ["STAFF-1", "Guest-3", "NEW-9"]  # Fleet-7 handed back, NEW-9 issued
        await reboot_and_sync(harness, sim, service)
        assert sent_lists(sim)[-1] == {
            "listVersion": 2,
            "updateType": "Differential",
            "localAuthorizationList": [
                {"idTag": "NEW-9", "idTagInfo": {"status": "Accepted"}},
                {"idTag": "Fleet-7"},
            ],
        }
        assert (sim.local_list.version, sim.local_list.tags()) == (
            2,
            ["Guest-3", "NEW-9", "STAFF-1"],
        )
        # Every card replaced: the differential update would be no shorter, the full one goes.
        cards.tags = ["OTHER-1"]
        outcome = await service.sync("cp-1")
        assert (outcome.update, outcome.version) == (ListUpdate.FULL, 3)
        assert sim.local_list.tags() == ["OTHER-1"]


async def test_a_charger_with_a_list_strom_does_not_know_gets_the_full_list(
    harness: Harness,
) -> None:
    cards = Cards("STAFF-1")
    service = LocalListService(cards, OcppLocalList(harness.server.commands))
    async with running(harness) as sim:
        sim.local_list.version = 41  # written by another central system, or before a restart
        outcome = await service.sync("cp-1")
        assert (outcome.update, outcome.version, outcome.result.accepted) == (
            ListUpdate.FULL,
            42,
            True,
        )
        assert sim.local_list.tags() == ["STAFF-1"]


async def test_a_charger_with_its_list_disabled_is_sent_nothing(harness: Harness) -> None:
    service = LocalListService(Cards("STAFF-1"), OcppLocalList(harness.server.commands))
    async with running(harness) as sim:
        sim.configuration["LocalAuthListEnabled"] = "false"
        outcome = await service.sync("cp-1")
        assert outcome.result.status is CommandStatus.NOT_SUPPORTED
        assert outcome.update is None
        assert sent_lists(sim) == []
        # Sent anyway, the charger refuses it.
        lists = OcppLocalList(harness.server.commands)
        refused = await lists.send_local_list("cp-1", 5, ListUpdate.FULL, [ListEntry("A")])
        assert refused.status is CommandStatus.NOT_SUPPORTED


async def test_an_update_longer_than_the_charger_takes_fails(harness: Harness) -> None:
    cards = Cards(*(f"CARD-{n}" for n in range(60)))  # SendLocalListMaxLength is 50
    service = LocalListService(cards, OcppLocalList(harness.server.commands))
    async with running(harness) as sim:
        outcome = await service.sync("cp-1")
        assert (outcome.result.status, outcome.result.detail) == (CommandStatus.REJECTED, "Failed")
        assert sim.local_list.version == 0


async def test_an_offline_charger_gets_nothing(harness: Harness) -> None:
    service = LocalListService(Cards("STAFF-1"), OcppLocalList(harness.server.commands))
    outcome = await service.sync("cp-1")
    assert outcome.result.status is CommandStatus.OFFLINE


async def test_a_removal_in_a_full_list_is_refused_before_sending(harness: Harness) -> None:
    async with running(harness) as sim:
        lists = OcppLocalList(harness.server.commands)
        entries = [ListEntry("A", accepted=False)]
        result = await lists.send_local_list("cp-1", 1, ListUpdate.FULL, entries)
        assert result.status is CommandStatus.REJECTED
        assert sent_lists(sim) == []


async def test_both_actions_pass_the_strict_schemas_and_version_mismatch_sends_the_full_list(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    cards = Cards("STAFF-1", "Fleet-7", "Guest-3")
    service = LocalListService(cards, OcppLocalList(harness.server.commands))
    await driver.answer("GetLocalListVersion", {"listVersion": 0})
    await driver.answer("SendLocalList", {"status": "Accepted"})
    assert (await service.sync("cp-1")).result.accepted
    assert await driver.server_call("GetLocalListVersion") == {}
    first = await driver.server_call("SendLocalList")
    assert (first["updateType"], first["listVersion"]) == ("Full", 1)

    cards.tags = ["STAFF-1", "Guest-3", "NEW-9"]
    await driver.answer("GetLocalListVersion", {"listVersion": 1})
    await driver.answer("SendLocalList", {"status": "VersionMismatch"})
    outcome = await service.sync("cp-1")
    await driver.server_call("GetLocalListVersion")
    differential = await driver.server_call("SendLocalList")
    assert differential == {
        "listVersion": 2,
        "updateType": "Differential",
        "localAuthorizationList": [
            {"idTag": "NEW-9", "idTagInfo": {"status": "Accepted"}},
            {"idTag": "Fleet-7"},
        ],
    }
    full = await driver.server_call("SendLocalList")
    assert (full["updateType"], full["listVersion"]) == ("Full", 2)
    assert [entry["idTag"] for entry in full["localAuthorizationList"]] == [
        "STAFF-1",
        "Guest-3",
        "NEW-9",
    ]
    assert (outcome.update, outcome.result.detail) == (ListUpdate.FULL, "VersionMismatch")

    await driver.answer("GetLocalListVersion", {"listVersion": -1})
    disabled = await service.sync("cp-1")
    assert disabled.result.status is CommandStatus.NOT_SUPPORTED
    assert driver.validation_failures == []
