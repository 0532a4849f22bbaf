"""The OCPP session suite, run against every charge point driver.

Each test runs twice: with a raw Python client (Strom's own framing) and with ocpp-rpc, an
independent implementation validating both directions against the OCPP 1.6 schemas. A test
ends by checking that the driver saw nothing from the server that breaks the schemas.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ocpp_server.ocppj import parse_timestamp
from strom_core.ports import (
    ChargerOffline,
    ChargerOnline,
    CommandStatus,
    ConnectorStatusChanged,
    MeterSample,
    SecurityEventReported,
    TransactionStarted,
    TransactionStopped,
)
from tests.ocpp.conftest import PASSWORD, DriverFactory, Harness, HarnessFactory, boot
from tests.ocpp.drivers import CallErrorReceived, ChargePointDriver

NOW = "2030-01-01T10:00:00Z"


def start_payload(tag: str, connector: int = 1, meter: int = 1000, at: str = NOW) -> dict[str, Any]:
    return {"connectorId": connector, "idTag": tag, "meterStart": meter, "timestamp": at}


def register(value: str, unit: str | None = "Wh", **extra: str) -> dict[str, Any]:
    sampled: dict[str, Any] = {"value": value, "measurand": "Energy.Active.Import.Register"}
    if unit is not None:
        sampled["unit"] = unit
    sampled.update(extra)
    return sampled


async def test_boot_heartbeat_status_and_post_boot_configuration(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    online = await harness.sink.wait_for(ChargerOnline)
    assert online.charger_id == "cp-1"
    # After BootNotification Accepted the server configures sampling and asks for status.
    interval = await driver.server_call("ChangeConfiguration")
    assert interval == {"key": "MeterValueSampleInterval", "value": "30"}
    measurands = await driver.server_call("ChangeConfiguration")
    assert measurands == {
        "key": "MeterValuesSampledData",
        "value": "Energy.Active.Import.Register,Power.Active.Import",
    }
    assert (await driver.server_call("ChangeConfiguration"))["key"] == "StopTxnSampledData"
    assert await driver.server_call("TriggerMessage") == {"requestedMessage": "StatusNotification"}
    for connector in (1, 2):
        trigger = await driver.server_call("TriggerMessage")
        assert trigger == {"requestedMessage": "MeterValues", "connectorId": connector}

    beat = await driver.call("Heartbeat", {})
    assert parse_timestamp(beat["currentTime"]).tzinfo is not None
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Available", "timestamp": NOW}
    assert await driver.call("StatusNotification", status) == {}
    changed = await harness.sink.wait_for(ConnectorStatusChanged)
    assert (changed.connector_id, changed.status, changed.error_code) == (1, "Available", "NoError")
    assert harness.server.online_chargers() == ["cp-1"]
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.boot is not None
    assert info.boot.vendor == "Test"
    assert info.connector_status == {1: "Available"}
    assert driver.validation_failures == []


async def test_boot_answer_carries_the_configured_heartbeat(
    start_harness: HarnessFactory, driver: ChargePointDriver
) -> None:
    harness = await start_harness(heartbeat_interval_s=123)
    await driver.connect(harness.url, "cp-open")
    answer = await driver.call(
        "BootNotification", {"chargePointVendor": "", "chargePointModel": "Huawei-like"}
    )
    # An empty vendor is valid per the official schema (Huawei SCharger sends one).
    assert (answer["status"], answer["interval"]) == ("Accepted", 123)
    assert driver.validation_failures == []


async def test_authorize_start_meter_values_and_stop(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    tag = harness.core.issue_id_tag("cp-1", 1)
    assert (await driver.call("Authorize", {"idTag": tag}))["idTagInfo"]["status"] == "Accepted"
    unknown = await driver.call("Authorize", {"idTag": "NOT-ISSUED"})
    assert unknown["idTagInfo"]["status"] == "Invalid"

    started = await driver.call("StartTransaction", start_payload(tag, meter=1000))
    assert started["idTagInfo"]["status"] == "Accepted"
    tx = started["transactionId"]
    event = await harness.sink.wait_for(TransactionStarted)
    assert (event.transaction, event.connector_id, event.meter_start_wh) == (str(tx), 1, 1000)
    # The same tag on the other connector while the transaction runs: ConcurrentTx.
    again = await driver.call("StartTransaction", start_payload(tag, connector=2))
    assert again["idTagInfo"]["status"] in ("ConcurrentTx", "Invalid")
    assert again["transactionId"] != tx

    meter = {
        "connectorId": 1,
        "transactionId": tx,
        "meterValue": [
            {"timestamp": "2030-01-01T10:01:00Z", "sampledValue": [register("1500")]},
            {"timestamp": "2030-01-01T10:02:00Z", "sampledValue": [register("2.0005", "kWh")]},
            # Out of order and repeated: tolerated.
            {"timestamp": "2030-01-01T10:01:00Z", "sampledValue": [register("1500")]},
        ],
    }
    assert await driver.call("MeterValues", meter) == {}
    await harness.sink.wait_for(MeterSample, lambda s: s.register_wh == 2001)
    samples = harness.core.samples("cp-1", str(tx))
    assert [s.register_wh for s in samples] == [1500, 2001]
    # transactionId 0 means "no transaction": answered, nothing recorded.
    zero = {"connectorId": 1, "transactionId": 0, "meterValue": meter["meterValue"][:1]}
    assert await driver.call("MeterValues", zero) == {}

    stop = {
        "transactionId": tx,
        "idTag": tag,
        "meterStop": 4000,
        "timestamp": "2030-01-01T10:30:00Z",
        "reason": "EVDisconnected",
        "transactionData": [
            {
                "timestamp": "2030-01-01T10:30:00Z",
                "sampledValue": [register("3.999", "kWh", context="Transaction.End")],
            }
        ],
    }
    stopped = await driver.call("StopTransaction", stop)
    assert stopped == {"idTagInfo": {"status": "Accepted"}}
    event_stop = await harness.sink.wait_for(TransactionStopped)
    assert (event_stop.meter_stop_wh, event_stop.reason) == (4000, "EVDisconnected")
    recorded = harness.core.transaction(str(tx))
    assert recorded is not None
    assert recorded.energy_wh == 3000
    assert harness.core.latest_register_wh("cp-1", str(tx)) == 3999
    # Every sample is published (the repeat too); the core keeps each once.
    assert len(harness.sink.of_type(MeterSample)) == 4
    assert len(harness.core.samples("cp-1", str(tx))) == 3
    assert driver.validation_failures == []


async def test_replays_after_reconnect_get_the_same_answer_and_one_event(
    harness: Harness, new_driver: DriverFactory
) -> None:
    first = await new_driver()
    await boot(first, harness)
    tag = harness.core.issue_id_tag("cp-1")
    started = await first.call("StartTransaction", start_payload(tag))
    await first.close(force=True)  # the link drops before the charger saw the answer

    second = await new_driver()
    await second.connect(harness.url, "cp-1", PASSWORD)
    replayed = await second.call("StartTransaction", start_payload(tag))
    assert replayed == started
    stop = {"transactionId": started["transactionId"], "meterStop": 1500, "timestamp": NOW}
    answer = await second.call("StopTransaction", stop)
    assert await second.call("StopTransaction", stop) == answer
    await harness.sink.wait_for(TransactionStopped)

    assert len(harness.sink.of_type(TransactionStarted)) == 1
    assert len(harness.sink.of_type(TransactionStopped)) == 1
    assert len(harness.core.transactions()) == 1
    assert first.validation_failures == second.validation_failures == []


async def test_stop_for_an_unknown_transaction_is_recorded_not_guessed(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    stop = {"transactionId": 424242, "meterStop": 9000, "timestamp": NOW, "idTag": "SOMEONE"}
    answer = await driver.call("StopTransaction", stop)
    assert answer == {"idTagInfo": {"status": "Accepted"}}
    [recorded] = harness.core.unknown_stops()
    assert (recorded.transaction, recorded.meter_stop_wh) == ("424242", 9000)
    assert harness.sink.of_type(TransactionStopped) == []
    assert harness.core.transactions() == []


async def test_notifications_are_accepted_and_recorded(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    transfer = await driver.call("DataTransfer", {"vendorId": "com.example", "data": "x"})
    assert transfer == {"status": "UnknownVendorId"}
    assert await driver.call("DiagnosticsStatusNotification", {"status": "Uploaded"}) == {}
    assert await driver.call("FirmwareStatusNotification", {"status": "Installed"}) == {}
    # The security extension of 1.6: kept for the operator like a 2.0.1 charger's.
    security = {"type": "TamperDetectionActivated", "timestamp": NOW, "techInfo": "lid open"}
    assert await driver.call("SecurityEventNotification", security) == {}
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.notifications == {
        "DiagnosticsStatusNotification": "Uploaded",
        "FirmwareStatusNotification": "Installed",
        "SecurityEventNotification": "TamperDetectionActivated",
    }
    [kept] = info.security_events
    assert (kept.type, kept.tech_info) == ("TamperDetectionActivated", "lid open")
    reported = await harness.sink.wait_for(SecurityEventReported)
    assert (reported.charger_id, reported.kind, reported.tech_info) == (
        "cp-1",
        "TamperDetectionActivated",
        "lid open",
    )
    assert reported.at == parse_timestamp(NOW)
    assert driver.validation_failures == []


async def test_every_command_reaches_the_charger_and_maps_its_answer(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    commands = harness.commands16
    cases: list[tuple[str, dict[str, Any], Any, dict[str, Any], CommandStatus, str]] = [
        (
            "RemoteStartTransaction",
            {"status": "Accepted"},
            lambda: commands.remote_start("cp-1", 1, "TAG-1"),
            {"connectorId": 1, "idTag": "TAG-1"},
            CommandStatus.ACCEPTED,
            "",
        ),
        (
            "RemoteStopTransaction",
            {"status": "Rejected"},
            lambda: commands.remote_stop("cp-1", "7"),
            {"transactionId": 7},
            CommandStatus.REJECTED,
            "Rejected",
        ),
        (
            "UnlockConnector",
            {"status": "UnlockFailed"},
            lambda: commands.unlock("cp-1", 2),
            {"connectorId": 2},
            CommandStatus.REJECTED,
            "UnlockFailed",
        ),
        (
            "ChangeAvailability",
            {"status": "Scheduled"},
            lambda: commands.change_availability("cp-1", 0, operative=False),
            {"connectorId": 0, "type": "Inoperative"},
            CommandStatus.ACCEPTED,
            "Scheduled",
        ),
        (
            "Reset",
            {"status": "Accepted"},
            lambda: commands.reset("cp-1", hard=True),
            {"type": "Hard"},
            CommandStatus.ACCEPTED,
            "",
        ),
        (
            "ChangeConfiguration",
            {"status": "RebootRequired"},
            lambda: commands.change_configuration("cp-1", "HeartbeatInterval", "60"),
            {"key": "HeartbeatInterval", "value": "60"},
            CommandStatus.ACCEPTED,
            "RebootRequired",
        ),
        (
            "ClearCache",
            {"status": "Accepted"},
            lambda: commands.clear_cache("cp-1"),
            {},
            CommandStatus.ACCEPTED,
            "",
        ),
    ]
    # Drain the post-boot CALLs first so the ones below are the commands' own.
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    assert await driver.server_call("GetConfiguration") == {"key": ["SupportedFeatureProfiles"]}
    for action, answer, command, expected_payload, status, detail in cases:
        await driver.answer(action, answer)
        result = await command()
        assert await driver.server_call(action) == expected_payload, action
        assert (result.status, result.detail) == (status, detail), action

    await driver.answer("TriggerMessage", {"status": "NotImplemented"})
    triggered = await commands.trigger_status("cp-1", 1)
    assert await driver.server_call("TriggerMessage") == {
        "requestedMessage": "StatusNotification",
        "connectorId": 1,
    }
    assert triggered.status is CommandStatus.NOT_SUPPORTED

    await driver.answer(
        "GetConfiguration",
        {
            "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}],
            "unknownKey": ["Nope"],
        },
    )
    config = await commands.get_configuration("cp-1", ("HeartbeatInterval", "Nope"))
    assert await driver.server_call("GetConfiguration") == {"key": ["HeartbeatInterval", "Nope"]}
    assert config.result.accepted
    assert [(k.key, k.value) for k in config.keys] == [("HeartbeatInterval", "60")]
    assert config.unknown_keys == ("Nope",)

    await driver.answer("DataTransfer", {"status": "Accepted", "data": "pong"})
    transfer = await commands.data_transfer("cp-1", "Strom", "ping", "hello")
    assert await driver.server_call("DataTransfer") == {
        "vendorId": "Strom",
        "messageId": "ping",
        "data": "hello",
    }
    assert (transfer.result.status, transfer.data) == (CommandStatus.ACCEPTED, "pong")
    assert driver.validation_failures == []


async def test_call_errors_and_silence_become_typed_results(
    start_harness: HarnessFactory, driver: ChargePointDriver
) -> None:
    harness = await start_harness(command_timeout_s=0.5)
    await driver.connect(harness.url, "cp-open")  # no BootNotification: no post-boot CALLs
    commands = harness.commands16
    await driver.answer("Reset", error="NotImplemented")
    assert (await commands.reset("cp-open", hard=False)).status is CommandStatus.NOT_SUPPORTED
    await driver.answer("UnlockConnector", error="InternalError")
    unlocked = await commands.unlock("cp-open", 1)
    assert unlocked.status is CommandStatus.ERROR
    assert unlocked.detail.startswith("InternalError")
    await driver.answer("ClearCache", silent=True)
    assert (await commands.clear_cache("cp-open")).status is CommandStatus.TIMEOUT
    offline = await commands.remote_start("cp-nobody", 1, "TAG")
    assert offline.status is CommandStatus.OFFLINE
    assert not commands.is_online("cp-nobody")
    assert commands.is_online("cp-open")


async def test_one_outstanding_call_per_charger(
    start_harness: HarnessFactory, driver: ChargePointDriver
) -> None:
    harness = await start_harness(command_timeout_s=2.0)
    await driver.connect(harness.url, "cp-open")
    await driver.answer("RemoteStartTransaction", {"status": "Accepted"})
    results = await asyncio.gather(
        *(harness.server.commands.remote_start("cp-open", 1, f"TAG-{n}") for n in range(5))
    )
    assert all(result.accepted for result in results)
    tags = [(await driver.server_call("RemoteStartTransaction"))["idTag"] for _ in range(5)]
    assert sorted(tags) == [f"TAG-{n}" for n in range(5)]
    assert driver.validation_failures == []


MALFORMED: list[tuple[str, str, str]] = [
    # (frame, unique id, expected CALLERROR code)
    ('[2,"m1","Heartbeat"]', "m1", "ProtocolError"),
    ('[2,"m2","Heartbeat",[]]', "m2", "FormationViolation"),
    ('[2,"m3",42,{}]', "m3", "FormationViolation"),
    ('[2,"m4","FlyToTheMoon",{}]', "m4", "NotImplemented"),
    ('[2,"m5","Reset",{"type":"Hard"}]', "m5", "NotSupported"),
    ('[2,"m6","BootNotification",{"chargePointModel":"x"}]', "m6", "OccurenceConstraintViolation"),
    (
        '[2,"m7","BootNotification",{"chargePointVendor":1,"chargePointModel":"x"}]',
        "m7",
        "TypeConstraintViolation",
    ),
    (
        '[2,"m8","StatusNotification",{"connectorId":1,"errorCode":"NoError","status":"Dancing"}]',
        "m8",
        "PropertyConstraintViolation",
    ),
    ('[2,"m9","Heartbeat",{"surprise":true}]', "m9", "FormationViolation"),
    (
        '[2,"m10","StartTransaction",{"connectorId":1,"idTag":"T","meterStart":0,'
        '"timestamp":"yesterday"}]',
        "m10",
        "PropertyConstraintViolation",
    ),
    (
        '[2,"m11","Authorize",{"idTag":"ABCDEFGHIJKLMNOPQRSTUVWXYZ"}]',
        "m11",
        "TypeConstraintViolation",
    ),
    (
        '[2,"m12","StartTransaction",{"connectorId":0,"idTag":"T","meterStart":0,'
        '"timestamp":"2030-01-01T00:00:00Z"}]',
        "m12",
        "PropertyConstraintViolation",
    ),
]


@pytest.mark.parametrize(("frame", "unique_id", "code"), MALFORMED)
async def test_malformed_calls_get_the_right_callerror_and_the_connection_stays(
    harness: Harness, driver: ChargePointDriver, frame: str, unique_id: str, code: str
) -> None:
    await boot(driver, harness)
    await driver.raw(frame)
    reply = await driver.reply_to(unique_id)
    assert (reply[0], reply[2]) == (4, code), reply
    assert isinstance(reply[3], str)
    assert isinstance(reply[4], dict)
    assert "currentTime" in await driver.call("Heartbeat", {})


@pytest.mark.parametrize(
    "frame",
    ["not json at all", "{}", "[]", '[9,"x",{}]', '[3,"nobody-asked",{}]', "[2]", "[2, 17]"],
)
async def test_unanswerable_frames_are_ignored_and_the_connection_stays(
    harness: Harness, driver: ChargePointDriver, frame: str, caplog: pytest.LogCaptureFixture
) -> None:
    await boot(driver, harness)
    await driver.raw(frame)
    assert "currentTime" in await driver.call("Heartbeat", {})
    assert harness.server.online_chargers() == ["cp-1"]


async def test_a_closed_connection_publishes_offline(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    await harness.sink.wait_for(ChargerOnline)
    await driver.close()
    offline = await harness.sink.wait_for(ChargerOffline)
    assert offline.reason == "disconnected"
    assert harness.server.online_chargers() == []


async def test_call_errors_from_the_server_reach_the_client_as_errors(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    with pytest.raises(CallErrorReceived) as refused:
        await driver.call("StartTransaction", start_payload("TAG", connector=1, meter=-5))
    assert refused.value.code == "PropertyConstraintViolation"
