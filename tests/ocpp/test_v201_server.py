"""OCPP 2.0.1 next to 1.6 on one endpoint: a raw 2.0.1 station over a real websocket.

The station is :class:`tests.ocpp.drivers.PythonDriver` speaking ``ocpp2.0.1`` (Strom's framing,
the official 2.0.1 schemas in both directions); the core is the in-memory one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from ocpp_server import v16, v201
from ocpp_server.v201.messages import remote_start_id
from ocpp_server.v201.meter import register_readings
from strom_core.ports import (
    CommandStatus,
    ConnectorStatusChanged,
    MeterSample,
    TransactionStarted,
    TransactionStopped,
)
from tests.ocpp.conftest import PASSWORD, Harness, HarnessFactory
from tests.ocpp.drivers import CallErrorReceived, HandshakeRefused, PythonDriver

T0 = "2025-01-01T10:00:00Z"
T1 = "2025-01-01T10:05:00Z"
T2 = "2025-01-01T10:30:00Z"


@contextlib.asynccontextmanager
async def station(harness: Harness, charger_id: str = "cp-1") -> AsyncIterator[PythonDriver]:
    """A booted 2.0.1 station (the server's post-boot CALLs answered)."""
    driver = PythonDriver("ocpp2.0.1")
    await driver.connect(harness.url, charger_id, PASSWORD if charger_id == "cp-1" else None)
    try:
        answer = await driver.call(
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
        )
        assert answer["status"] == "Accepted"
        await driver.server_call("GetBaseReport")  # the end of the post-boot configuration
        yield driver
        assert driver.validation_failures == []
    finally:
        await driver.close()


def register(wh: float, context: str = "Sample.Periodic", **unit: Any) -> dict[str, Any]:
    sampled: dict[str, Any] = {"value": wh, "context": context}
    if unit:
        sampled["unitOfMeasure"] = unit
    return {"timestamp": T0, "sampledValue": [sampled]}


def event(
    kind: str,
    seq: int,
    *,
    tx: str = "tx-1",
    at: str = T0,
    trigger: str = "Authorized",
    token: str | None = None,
    meter: list[dict[str, Any]] | None = None,
    offline: bool = False,
    **info: Any,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "eventType": kind,
        "timestamp": at,
        "triggerReason": trigger,
        "seqNo": seq,
        "transactionInfo": {"transactionId": tx, **info},
        "evse": {"id": 1, "connectorId": 1},
    }
    if token is not None:
        payload["idToken"] = {"idToken": token, "type": "Central"}
    if meter:
        payload["meterValue"] = meter
    if offline:
        payload["offline"] = True
    return payload


async def test_subprotocol_choice(start_harness: HarnessFactory) -> None:
    both = await start_harness()
    prefer_201 = await start_harness(dialects=(v201.dialect, v16.dialect))
    only_16 = await start_harness(dialects=(v16.dialect,))
    url = f"{both.url}/cp-open"
    cases = [
        (both, ["ocpp2.0.1"], "ocpp2.0.1"),
        (both, ["ocpp1.6"], "ocpp1.6"),
        (both, ["ocpp2.0.1", "ocpp1.6"], "ocpp1.6"),
        (prefer_201, ["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1"),
        (only_16, ["ocpp2.0.1", "ocpp1.6"], "ocpp1.6"),
    ]
    for harness, offered, chosen in cases:
        url = f"{harness.url}/cp-open"
        async with connect(url, subprotocols=offered) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == chosen, (offered, chosen)
    with pytest.raises(HandshakeRefused) as refused:
        await PythonDriver("ocpp2.0.1").connect(only_16.url, "cp-open")
    assert refused.value.status == 400


async def test_boot_configures_sampling_and_asks_for_status_and_inventory(
    harness: Harness,
) -> None:
    async with station(harness) as driver:
        assert (await driver.call("Heartbeat", {}))["currentTime"]
        sampling = await driver.server_call("SetVariables")
        names = {d["variable"]["name"]: d["attributeValue"] for d in sampling["setVariableData"]}
        assert names["TxUpdatedInterval"] == "30"
        assert names["TxUpdatedMeasurands"].startswith("Energy.Active.Import.Register")
        assert names["TxEndedMeasurands"] == "Energy.Active.Import.Register"
        trigger = await driver.server_call("TriggerMessage")
        assert trigger["evse"] == {"id": 1, "connectorId": 1}
        sent = [json.loads(m.frame) for m in harness.server.message_log("cp-1")]
        assert [f[3] for f in sent if f[0] == 2 and f[2] == "GetBaseReport"] == [
            {"requestId": 1, "reportBase": "FullInventory"}
        ]
        await driver.call(
            "NotifyReport",
            {
                "requestId": 1,
                "generatedAt": T0,
                "seqNo": 0,
                "reportData": [
                    {
                        "component": {"name": "DisplayMessageCtrlr"},
                        "variable": {"name": "Available"},
                        "variableAttribute": [{"value": "true"}],
                    }
                ],
            },
        )
        info = harness.server.charger_info("cp-1")
        assert info is not None
        assert info.variables["DisplayMessageCtrlr/Available"] == "true"


async def test_boot_sets_the_heartbeat_interval_and_a_refusal_is_tolerated(
    harness: Harness,
) -> None:
    """Stations ignore the BootNotification answer's interval: Strom sets the variable too."""
    driver = PythonDriver("ocpp2.0.1")
    refused = {
        "attributeStatus": "Rejected",
        "component": {"name": "OCPPCommCtrlr"},
        "variable": {"name": "HeartbeatInterval"},
    }
    await driver.answer("SetVariables", {"setVariableResult": [refused]})
    await driver.connect(harness.url, "cp-1", PASSWORD)
    try:
        boot = {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}}
        answer = await driver.call("BootNotification", boot)
        sent = await driver.server_call("SetVariables")
        values = {
            (d["component"]["name"], d["variable"]["name"]): d["attributeValue"]
            for d in sent["setVariableData"]
        }
        interval = harness.server.settings.heartbeat_interval_s
        assert values[("OCPPCommCtrlr", "HeartbeatInterval")] == str(interval)
        assert answer["interval"] == interval
        # Refused: logged, and the configuration and the connection go on.
        await driver.server_call("GetBaseReport")
        assert (await driver.call("Heartbeat", {}))["currentTime"]
    finally:
        await driver.close()


async def test_status_maps_evse_to_connector_and_occupied_to_the_charging_state(
    harness: Harness,
) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    async with station(harness) as driver:

        async def status(value: str) -> None:
            await driver.call(
                "StatusNotification",
                {"timestamp": T0, "connectorStatus": value, "evseId": 2, "connectorId": 1},
            )

        await status("Available")
        await status("Occupied")
        ev = event("Started", 0, token=tag, meter=[register(100, "Transaction.Begin")])
        ev["evse"] = {"id": 2}
        await driver.call("TransactionEvent", ev)
        charging = event("Updated", 1, trigger="ChargingStateChanged", chargingState="Charging")
        charging["evse"] = {"id": 2}
        await driver.call("TransactionEvent", charging)
        ended = event("Ended", 2, meter=[register(500, "Transaction.End")], stoppedReason="Local")
        await driver.call("TransactionEvent", ended)
        await status("Available")
    statuses = [
        e.status for e in harness.sink.of_type(ConnectorStatusChanged) if e.connector_id == 2
    ]
    assert statuses == ["Available", "Preparing", "Charging", "Finishing", "Available"]


async def test_after_a_reboot_an_occupied_evse_has_no_transaction_until_an_event_names_one(
    harness: Harness,
) -> None:
    """A station that lost its transaction in a power loss: Occupied reads Preparing."""
    tag = harness.core.issue_id_tag("cp-1")
    occupied = {"timestamp": T1, "connectorStatus": "Occupied", "evseId": 1, "connectorId": 1}
    async with station(harness) as driver:
        await driver.call("StatusNotification", occupied)
        started = event("Started", 0, token=tag, meter=[register(100, "Transaction.Begin")])
        started["transactionInfo"]["chargingState"] = "Charging"
        await driver.call("TransactionEvent", started)
    async with station(harness) as driver:  # it boots again, without the transaction
        await driver.call("StatusNotification", occupied)
        # A transaction it kept after all: its next event names it again.
        await driver.call("TransactionEvent", event("Updated", 1, chargingState="Charging"))
    statuses = [
        e.status for e in harness.sink.of_type(ConnectorStatusChanged) if e.connector_id == 1
    ]
    assert statuses == ["Preparing", "Charging", "Preparing", "Charging"]


async def test_a_session_is_started_metered_and_billed_once(harness: Harness) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    async with station(harness) as driver:
        started = await driver.call(
            "TransactionEvent",
            event("Started", 0, token=tag, meter=[register(1000, "Transaction.Begin")]),
        )
        assert started["idTokenInfo"]["status"] == "Accepted"
        await driver.call("TransactionEvent", event("Updated", 1, meter=[register(1500)]))
        end = event("Ended", 2, at=T2, meter=[register(2500, "Transaction.End")])
        end["transactionInfo"]["stoppedReason"] = "EVDisconnected"
        assert await driver.call("TransactionEvent", end) == {}
        # the same Ended again (a resend after a lost answer) and an Updated after the end
        await driver.call("TransactionEvent", end)
        await driver.call("TransactionEvent", event("Updated", 3, meter=[register(9000)]))
    recorded = harness.core.transaction("tx-1", "cp-1")
    assert recorded is not None
    assert recorded.energy_wh == 1500
    assert recorded.stop is not None
    assert recorded.stop.reason == "EVDisconnected"
    assert len(harness.sink.of_type(TransactionStarted)) == 1
    assert len(harness.sink.of_type(TransactionStopped)) == 1
    assert [s.register_wh for s in harness.core.samples("cp-1", "tx-1")] == [1000, 1500, 2500]


async def test_after_a_strom_restart_a_running_transaction_is_metered_and_billed_on(
    start_harness: HarnessFactory,
) -> None:
    """Its events no longer carry the idToken; the core still knows the transaction."""
    first = await start_harness()
    tag = first.core.issue_id_tag("cp-1")
    async with station(first) as driver:
        begin = [register(1000, "Transaction.Begin")]
        await driver.call("TransactionEvent", event("Started", 0, token=tag, meter=begin))
    again = await start_harness(core=first.core)  # a new process, the same database
    async with station(again) as driver:
        await driver.call("TransactionEvent", event("Updated", 1, meter=[register(1400)]))
        end = event("Ended", 2, at=T2, meter=[register(1800, "Transaction.End")])
        await driver.call("TransactionEvent", end)
    samples = [s.register_wh for s in again.core.samples("cp-1", "tx-1")]
    assert samples == [1000, 1400, 1800]
    recorded = again.core.transaction("tx-1", "cp-1")
    assert recorded is not None
    assert recorded.energy_wh == 800


async def test_a_start_without_id_token_becomes_strom_s_by_its_remote_start_id(
    harness: Harness,
) -> None:
    tag = harness.core.issue_id_tag("cp-1", 1)
    async with station(harness) as driver:
        started = event("Started", 0, trigger="CablePluggedIn", meter=[register(40)])
        await driver.call("TransactionEvent", started)
        assert harness.core.transaction("tx-1", "cp-1") is None  # not Strom's yet
        result = await harness.server.commands.remote_start("cp-1", 1, tag)
        assert result.status is CommandStatus.ACCEPTED
        sent = await driver.server_call("RequestStartTransaction")
        assert sent["remoteStartId"] == remote_start_id(tag)
        assert sent["idToken"] == {"idToken": tag, "type": "Central"}
        update = event("Updated", 1, trigger="RemoteStart", remoteStartId=sent["remoteStartId"])
        await driver.call("TransactionEvent", update)
    recorded = harness.core.transaction("tx-1", "cp-1")
    assert recorded is not None
    assert recorded.id_tag == tag
    assert recorded.meter_start_wh == 40
    assert remote_start_id(tag) == remote_start_id(tag)
    assert 0 < remote_start_id(tag) < 2**31


async def test_offline_replays_after_a_reconnect_and_seq_gaps_change_nothing(
    harness: Harness,
) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    begin = event("Started", 0, token=tag, meter=[register(10, "Transaction.Begin")])
    async with station(harness) as driver:
        await driver.call("TransactionEvent", begin)
    async with station(harness) as driver:
        await driver.call("TransactionEvent", {**begin, "offline": True})
        await driver.call(
            "TransactionEvent", event("Updated", 4, meter=[register(60)], offline=True)
        )
        end = event("Ended", 7, meter=[register(110, "Transaction.End")], offline=True)
        await driver.call("TransactionEvent", end)
        await driver.call("TransactionEvent", end)
    recorded = harness.core.transaction("tx-1", "cp-1")
    assert recorded is not None
    assert recorded.energy_wh == 100
    assert len(harness.sink.of_type(TransactionStarted)) == 1
    assert len(harness.sink.of_type(TransactionStopped)) == 1


async def test_a_transaction_id_reused_after_a_reboot_is_a_new_paid_transaction(
    harness: Harness,
) -> None:
    """The station reboots and chooses "1" again: the new session is charged and billed."""
    first, second = harness.core.issue_id_tag("cp-1"), harness.core.issue_id_tag("cp-1")
    t3 = "2025-01-01T11:00:00Z"

    def at(wh: int, context: str, when: str) -> dict[str, Any]:
        return {**register(wh, context), "timestamp": when}

    old_end = event("Ended", 1, tx="1", at=T1, meter=[at(2000, "Transaction.End", T1)])
    new_start = event("Started", 0, tx="1", at=T2, token=second)
    new_start["meterValue"] = [at(5000, "Transaction.Begin", T2)]
    async with station(harness) as driver:
        begin = [at(1000, "Transaction.Begin", T0)]
        await driver.call("TransactionEvent", event("Started", 0, tx="1", token=first, meter=begin))
        await driver.call("TransactionEvent", old_end)
        # Without a reboot, "1" stays ended: a Started of it changes nothing.
        await driver.call("TransactionEvent", new_start)
        assert len(harness.sink.of_type(TransactionStarted)) == 1
    async with station(harness) as driver:  # it reboots
        await driver.call("TransactionEvent", {**old_end, "offline": True})  # queued, resent
        answer = await driver.call("TransactionEvent", new_start)
        assert answer["idTokenInfo"]["status"] == "Accepted"
        # The old Ended, resent once more after the new Started, is still the old one's.
        await driver.call("TransactionEvent", {**old_end, "offline": True})
        update = event("Updated", 1, tx="1", at=t3, meter=[at(5600, "Sample.Periodic", t3)])
        await driver.call("TransactionEvent", update)
        end = event("Ended", 2, tx="1", at=t3, meter=[at(6500, "Transaction.End", t3)])
        await driver.call("TransactionEvent", end)
    new = harness.core.transaction("1", "cp-1")
    assert new is not None
    assert (new.id_tag, new.meter_start_wh, new.energy_wh) == (second, 5000, 1500)
    [earlier] = [t for t in harness.core.transactions() if t.transaction.startswith("1~")]
    assert (earlier.id_tag, earlier.energy_wh) == (first, 1000)
    started = harness.sink.of_type(TransactionStarted)
    assert [(e.transaction, e.id_tag) for e in started] == [("1", first), ("1", second)]
    stopped = harness.sink.of_type(TransactionStopped)
    assert [(e.transaction, e.meter_stop_wh) for e in stopped] == [("1", 2000), ("1", 6500)]
    assert [s.register_wh for s in harness.core.samples("cp-1", "1")][-3:] == [5000, 5600, 6500]


async def test_an_ended_for_a_transaction_strom_never_saw_is_recorded_unknown(
    harness: Harness,
) -> None:
    async with station(harness) as driver:
        end = event("Ended", 0, tx="ghost", meter=[register(7, "Transaction.End")])
        await driver.call("TransactionEvent", end)
    [stop] = harness.core.unknown_stops()
    assert (stop.transaction, stop.meter_stop_wh) == ("ghost", 7)
    assert harness.sink.of_type(TransactionStopped) == []


def test_kwh_and_multiplier_are_normalised_to_whole_wh() -> None:
    readings, notes = register_readings(
        [
            register(1.5, unit="kWh"),
            register(12.3456, unit="Wh", multiplier=3),
            register(7, unit="kWh", multiplier=-3),
            register(5, unit="VARh"),
        ]
    )
    assert [r.register_wh for r in readings] == [1500, 12346, 7]
    assert notes
    assert "VARh" in notes[0]


async def test_every_command_reaches_the_station_and_maps_its_answer(harness: Harness) -> None:
    commands = harness.server.commands
    extra = commands.command_set(v201.SUBPROTOCOL)
    assert isinstance(extra, v201.Ocpp201Commands)
    async with station(harness) as driver:
        assert commands.is_online("cp-1")
        assert (await commands.remote_stop("cp-1", "tx-9")).accepted
        assert (await driver.server_call("RequestStopTransaction")) == {"transactionId": "tx-9"}
        assert (await commands.unlock("cp-1", 2)).accepted
        assert (await driver.server_call("UnlockConnector")) == {"evseId": 2, "connectorId": 1}
        assert (await commands.change_availability("cp-1", 1, operative=False)).accepted
        assert (await driver.server_call("ChangeAvailability")) == {
            "operationalStatus": "Inoperative",
            "evse": {"id": 1},
        }
        await driver.answer("Reset", {"status": "Scheduled"})
        assert (await commands.reset("cp-1", hard=False)).detail == "Scheduled"
        assert (await driver.server_call("Reset")) == {"type": "OnIdle"}
        await driver.answer("Reset", {"status": "Rejected"})
        assert (await commands.reset("cp-1", hard=True)).status is CommandStatus.REJECTED
        assert (await driver.server_call("Reset")) == {"type": "Immediate"}
        assert (await commands.trigger_status("cp-1", None)).accepted
        got = await extra.get_variables(
            "cp-1", [v201.VariableSetting("SampledDataCtrlr", "TxUpdatedInterval")]
        )
        assert got.variables[0].value == "60"
        await driver.answer("SetVariables", error="NotSupported")
        refused = await extra.set_variables(
            "cp-1", [v201.VariableSetting("OCPPCommCtrlr", "HeartbeatInterval", "60")]
        )
        assert refused.result.status is CommandStatus.NOT_SUPPORTED
        assert (await extra.get_base_report("cp-1", "SummaryInventory")).accepted


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"reason": "PowerUp"}, "OccurrenceConstraintViolation"),
        (
            {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}, "x": 1},
            "FormatViolation",
        ),
    ],
)
async def test_schema_violations_get_2_0_1_call_errors_and_the_connection_stays(
    harness: Harness, payload: dict[str, Any], code: str
) -> None:
    async with station(harness) as driver:
        with pytest.raises(CallErrorReceived) as refused:
            await driver.call("BootNotification", payload)
        assert refused.value.code == code
        await driver.raw('[2,"bad",null,{}]')
        assert (await driver.reply_to("bad"))[2] == "FormatViolation"
        with pytest.raises(CallErrorReceived) as unknown:
            await driver.call("StartTransaction", {})
        assert unknown.value.code == "NotImplemented"
        assert (await driver.call("Heartbeat", {}))["currentTime"]


async def test_security_profile_1_basic_auth_with_the_basic_auth_password(
    harness: Harness,
) -> None:
    wrong = PythonDriver("ocpp2.0.1")
    with pytest.raises(HandshakeRefused) as refused:
        await wrong.connect(harness.url, "cp-1", "not-the-basic-auth-password")
    assert refused.value.status == 401
    async with station(harness) as driver:
        assert (await driver.call("Heartbeat", {}))["currentTime"]
    assert harness.sink.of_type(MeterSample) == []
