"""The simulated OCPP 2.0.1 charge point against an independent central system.

The central system here is the ``ocpp`` library's own v201 ``ChargePoint`` (it validates every
message against the OCPP 2.0.1 schemas on its side too), served over a real websocket on
127.0.0.1: the simulator is proven against someone else's reading of OCPP 2.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from ocpp_server import (
    SimulatedChargePoint,
    SimulatedChargePoint201,
    SimulatorOptions,
    add_arguments,
    options_from_args,
    run_simulator,
    simulated_charge_point,
)
from ocpp_server.v201.sim_answers import REPORT_PAGE

PASSWORD = "correct-horse-battery"
Frame = tuple[str, dict[str, Any]]


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Station(ChargePoint):  # type: ignore[misc]
    """The central system's end of one charger's connection (the ocpp library's)."""

    def __init__(self, charger_id: str, connection: ServerConnection, csms: Csms) -> None:
        super().__init__(charger_id, connection)
        self.csms = csms

    async def route_message(self, raw_msg: str) -> None:
        message = json.loads(raw_msg)
        if message[0] == 2:
            self.csms.calls.append((message[2], message[3]))
        await super().route_message(raw_msg)

    @on(Action.boot_notification)
    async def on_boot(self, **_: Any) -> Any:
        return call_result.BootNotification(current_time=_now(), interval=300, status="Accepted")

    @on(Action.status_notification)
    async def on_status(self, **_: Any) -> Any:
        return call_result.StatusNotification()

    @on(Action.heartbeat)
    async def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.transaction_event)
    async def on_transaction_event(self, **kwargs: Any) -> Any:
        if "id_token" in kwargs:
            return call_result.TransactionEvent(id_token_info={"status": self.csms.token_status})
        return call_result.TransactionEvent()

    @on(Action.meter_values)
    async def on_meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.notify_report)
    async def on_notify_report(self, **_: Any) -> Any:
        return call_result.NotifyReport()

    @on(Action.notify_display_messages)
    async def on_notify_display_messages(self, **_: Any) -> Any:
        return call_result.NotifyDisplayMessages()


@dataclass
class Csms:
    """An independent OCPP 2.0.1 central system: every CALL it got, its open connection."""

    port: int = 0
    calls: list[Frame] = field(default_factory=list)
    station: Station | None = None
    authorizations: list[str] = field(default_factory=list)
    subprotocols: list[str | None] = field(default_factory=list)
    token_status: str = "Accepted"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def handle(self, connection: ServerConnection) -> None:
        self.authorizations.append(connection.request.headers.get("Authorization", ""))
        self.subprotocols.append(connection.subprotocol)
        station = Station(connection.request.path.rsplit("/", 1)[1], connection, self)
        self.station = station
        with contextlib.suppress(ConnectionClosed):
            await station.start()

    async def send(self, payload: Any, **kwargs: Any) -> Any:
        """Send a CALL to the charger over its open connection."""
        assert self.station is not None
        return await self.station.call(payload, **kwargs)

    def of(self, action: str, **where: Any) -> list[dict[str, Any]]:
        """The payloads of ``action`` received so far (with ``where`` top-level values)."""
        return [
            payload
            for name, payload in self.calls
            if name == action and all(payload.get(k) == v for k, v in where.items())
        ]

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        """The TransactionEvents received so far (of one eventType)."""
        events = self.of("TransactionEvent")
        return [e for e in events if event_type in (None, e["eventType"])]

    async def wait_for(
        self, predicate: Callable[[], Any], within_s: float = 5.0
    ) -> Any:  # the predicate's truthy value
        async with asyncio.timeout(within_s):
            while not (value := predicate()):  # noqa: ASYNC110 - another party's state
                await asyncio.sleep(0.01)
        return value


@pytest.fixture
async def csms() -> AsyncIterator[Csms]:
    central = Csms()
    async with serve(central.handle, "127.0.0.1", 0, subprotocols=["ocpp2.0.1"]) as server:
        central.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        yield central


@contextlib.asynccontextmanager
async def charger(csms: Csms, **overrides: Any) -> AsyncIterator[SimulatedChargePoint201]:
    options = SimulatorOptions(
        url=csms.url,
        charger_id="cp-201",
        ocpp_version="2.0.1",
        password=PASSWORD,
        reconnect_delay_s=0.05,
        call_timeout_s=5,
        **overrides,
    )
    sim = simulated_charge_point(options)
    assert isinstance(sim, SimulatedChargePoint201)
    run = asyncio.create_task(sim.run())
    try:
        await sim.wait_until(lambda: sim.boots >= 1 and csms.station is not None)
        await csms.wait_for(lambda: len(csms.of("StatusNotification")) >= options.connectors)
        yield sim
    finally:
        sim.stop()
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert sim.validation_failures == []


def tag(token: str = "TAG-1") -> dict[str, str]:
    return {"id_token": token, "type": "Central"}


async def set_variable(csms: Csms, component: str, variable: str, value: str) -> str:
    answer = await csms.send(
        call.SetVariables(
            set_variable_data=[
                {
                    "attribute_value": value,
                    "component": {"name": component},
                    "variable": {"name": variable},
                }
            ]
        )
    )
    return str(answer.set_variable_result[0]["attribute_status"])


async def remote_start(csms: Csms, sim: SimulatedChargePoint201, evse: int = 1) -> str:
    """Start on a plugged-in EVSE and return the charger's transactionId."""
    answer = await csms.send(call.RequestStartTransaction(id_token=tag(), remote_start_id=7))
    assert answer.status == "Accepted"
    await sim.wait_until(lambda: sim.connectors[evse].charging)
    return str(sim.connectors[evse].transaction_id)


def energy(event: dict[str, Any]) -> tuple[int, str]:
    sampled = event["meterValue"][0]["sampledValue"][0]
    assert sampled["measurand"] == "Energy.Active.Import.Register"
    assert sampled["unitOfMeasure"]["unit"] == "Wh"
    return int(sampled["value"]), str(sampled["context"])


async def test_boots_with_the_201_subprotocol_basic_auth_and_a_status_per_evse(
    csms: Csms,
) -> None:
    async with charger(csms, connectors=2, plugged=(2,)):
        assert csms.subprotocols == ["ocpp2.0.1"]
        expected = base64.b64encode(f"cp-201:{PASSWORD}".encode()).decode()
        assert csms.authorizations == [f"Basic {expected}"]
        [boot] = csms.of("BootNotification")
        assert boot["reason"] == "PowerUp"
        assert boot["chargingStation"]["vendorName"] == "Strom"
        statuses = {
            (s["evseId"], s["connectorId"]): s["connectorStatus"]
            for s in csms.of("StatusNotification")
        }
        assert statuses == {(1, 1): "Available", (2, 1): "Occupied"}


async def test_remote_start_meters_and_remote_stop_one_transaction(csms: Csms) -> None:
    async with charger(csms, plugged=(1,), speed=360.0) as sim:
        assert await set_variable(csms, "SampledDataCtrlr", "TxUpdatedInterval", "1") == (
            "Accepted"
        )
        transaction = await remote_start(csms, sim)
        [started] = await csms.wait_for(lambda: csms.events("Started"))
        assert started["triggerReason"] == "RemoteStart"
        assert started["seqNo"] == 0
        assert started["transactionInfo"] == {
            "transactionId": transaction,
            "chargingState": "Charging",
            "remoteStartId": 7,
        }
        assert started["idToken"] == {"idToken": "TAG-1", "type": "Central"}
        assert started["evse"] == {"id": 1, "connectorId": 1}
        assert energy(started) == (0, "Transaction.Begin")
        updates = await csms.wait_for(lambda: csms.events("Updated")[1:], within_s=5)
        assert all(u["triggerReason"] == "MeterValuePeriodic" for u in updates)
        readings = [energy(u) for u in csms.events("Updated")]
        assert all(context == "Sample.Periodic" for _, context in readings)
        assert readings[0][0] < readings[1][0]  # the meter runs while charging
        stopped = await csms.send(call.RequestStopTransaction(transaction_id=transaction))
        assert stopped.status == "Accepted"
        [ended] = await csms.wait_for(lambda: csms.events("Ended"))
        assert ended["triggerReason"] == "RemoteStop"
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        assert ended["transactionInfo"]["chargingState"] == "EVConnected"  # still plugged
        wh, context = energy(ended)
        assert context == "Transaction.End"
        assert wh >= readings[-1][0]
        events = csms.events()
        assert {e["transactionInfo"]["transactionId"] for e in events} == {transaction}
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        assert not any(e.get("offline") for e in events)
        assert sim.connectors[1].transaction_id is None
        again = await csms.send(call.RequestStopTransaction(transaction_id=transaction))
        assert again.status == "Rejected"


async def test_a_remote_start_waits_for_the_plug_and_is_refused_when_busy(csms: Csms) -> None:
    async with charger(csms, connectors=2) as sim:
        answer = await csms.send(
            call.RequestStartTransaction(id_token=tag(), remote_start_id=3, evse_id=1)
        )
        assert answer.status == "Accepted"
        await sim.wait_until(lambda: sim.is_waiting(1))
        busy = await csms.send(
            call.RequestStartTransaction(id_token=tag("OTHER"), remote_start_id=4, evse_id=1)
        )
        assert busy.status == "Rejected"
        assert csms.events() == []  # nothing starts before the vehicle is there
        await sim.plug(1)
        [started] = await csms.wait_for(lambda: csms.events("Started"))
        assert started["triggerReason"] == "CablePluggedIn"
        assert started["transactionInfo"]["remoteStartId"] == 3
        assert csms.of("StatusNotification", evseId=1)[-1]["connectorStatus"] == "Occupied"
        # EVSE 2: the driver never comes; after EVConnectionTimeOut the wait is over.
        assert await set_variable(csms, "TxCtrlr", "EVConnectionTimeOut", "0") == "Accepted"
        late = await csms.send(
            call.RequestStartTransaction(id_token=tag(), remote_start_id=5, evse_id=2)
        )
        assert late.status == "Accepted"
        await asyncio.sleep(0.05)
        assert not sim.is_waiting(2)
        await sim.plug(2)
        assert len(csms.events("Started")) == 1
        nowhere = await csms.send(
            call.RequestStartTransaction(id_token=tag(), remote_start_id=6, evse_id=9)
        )
        assert nowhere.status == "Rejected"


async def test_unplugging_ends_the_transaction_with_ev_disconnected(csms: Csms) -> None:
    async with charger(csms, plugged=(1,)) as sim:
        await remote_start(csms, sim)
        locked = await csms.send(call.UnlockConnector(evse_id=1, connector_id=1))
        assert locked.status == "OngoingAuthorizedTransaction"
        await sim.unplug(1)
        [ended] = await csms.wait_for(lambda: csms.events("Ended"))
        assert ended["triggerReason"] == "EVCommunicationLost"
        assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
        assert ended["transactionInfo"]["chargingState"] == "Idle"
        await csms.wait_for(
            lambda: csms.of("StatusNotification")[-1]["connectorStatus"] == "Available"
        )
        unlocked = await csms.send(call.UnlockConnector(evse_id=1, connector_id=1))
        assert unlocked.status == "Unlocked"


async def test_events_sent_while_offline_are_replayed_once_marked_offline(csms: Csms) -> None:
    async with charger(csms, plugged=(1,)) as sim:
        transaction = await remote_start(csms, sim)
        [started] = await csms.wait_for(lambda: csms.events("Started"))
        sim.drop_connection()
        await sim.wait_until(lambda: not sim.connected)
        with pytest.raises(Exception, match="Disconnected"):
            await sim.stop_transaction(1, "Local")
        assert [action for action, _, _ in sim.queued] == ["TransactionEvent"]
        await sim.wait_until(lambda: sim.connections == 2)
        [ended] = await csms.wait_for(lambda: csms.events("Ended"))
        assert ended["offline"] is True
        assert ended["transactionInfo"]["transactionId"] == transaction
        assert ended["seqNo"] == started["seqNo"] + 1
        assert ended["triggerReason"] == "StopAuthorized"
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
        await asyncio.sleep(0.1)
        assert len(csms.events("Ended")) == 1
        assert sim.queued == []


async def test_a_power_cut_ends_a_persisted_transaction_with_power_loss(csms: Csms) -> None:
    async with charger(csms, plugged=(1,)) as sim:
        transaction = await remote_start(csms, sim)
        sim.power_cut()
        await sim.wait_until(lambda: sim.boots == 2)
        [ended] = await csms.wait_for(lambda: csms.events("Ended"))
        assert ended["transactionInfo"]["transactionId"] == transaction
        assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
        assert ended["triggerReason"] == "AbnormalCondition"
        assert ended["offline"] is True
        assert [b["reason"] for b in csms.of("BootNotification")] == ["PowerUp", "PowerUp"]
        assert sim.connectors[1].transaction_id is None
        # Boot, its statuses, then what happened while the power was off.
        after_boot = [a for a, _ in csms.calls][-3:]
        assert after_boot == ["BootNotification", "StatusNotification", "TransactionEvent"]


async def test_a_power_cut_makes_forgetful_firmware_lose_its_transaction_silently(
    csms: Csms,
) -> None:
    async with charger(csms, plugged=(1,), persist_transactions=False) as sim:
        transaction = await remote_start(csms, sim)
        sim.power_cut()
        await sim.wait_until(lambda: sim.boots == 2)
        await csms.wait_for(lambda: len(csms.of("StatusNotification")) >= 2)
        assert csms.of("StatusNotification")[-1]["connectorStatus"] == "Occupied"
        assert sim.connectors[1].transaction_id is None
        gone = await csms.send(call.RequestStopTransaction(transaction_id=transaction))
        assert gone.status == "Rejected"
        await asyncio.sleep(0.1)
        assert csms.events("Ended") == []


async def test_a_start_the_central_system_does_not_authorize_ends_at_once(csms: Csms) -> None:
    csms.token_status = "Invalid"
    async with charger(csms, plugged=(1,)) as sim:
        answer = await sim.start_transaction(1, "NOT-ISSUED")
        assert answer["idTokenInfo"]["status"] == "Invalid"
        [ended] = await csms.wait_for(lambda: csms.events("Ended"))
        assert ended["triggerReason"] == "Deauthorized"
        assert ended["transactionInfo"]["stoppedReason"] == "DeAuthorized"
        [started] = csms.events("Started")
        assert started["triggerReason"] == "Authorized"
        assert sim.connectors[1].transaction_id is None


async def test_reset_immediate_ends_the_transaction_and_boots_for_a_remote_reset(
    csms: Csms,
) -> None:
    async with charger(csms, plugged=(1,)) as sim:
        await remote_start(csms, sim)
        answer = await csms.send(call.Reset(type="Immediate"))
        assert answer.status == "Accepted"
        await sim.wait_until(lambda: sim.boots == 2)
        [ended] = csms.events("Ended")
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        assert ended["triggerReason"] == "ResetCommand"
        assert [b["reason"] for b in csms.of("BootNotification")] == ["PowerUp", "RemoteReset"]


async def test_reset_on_idle_waits_for_the_transaction_to_end(csms: Csms) -> None:
    async with charger(csms, plugged=(1,)) as sim:
        await remote_start(csms, sim)
        answer = await csms.send(call.Reset(type="OnIdle"))
        assert answer.status == "Scheduled"
        await asyncio.sleep(0.1)
        assert sim.boots == 1
        await sim.stop_transaction(1)
        await sim.wait_until(lambda: sim.boots == 2)
        assert csms.of("BootNotification")[-1]["reason"] == "RemoteReset"


async def test_change_availability_is_scheduled_during_a_transaction(csms: Csms) -> None:
    async with charger(csms, connectors=2, plugged=(1,)) as sim:
        await remote_start(csms, sim)
        idle = await csms.send(
            call.ChangeAvailability(operational_status="Inoperative", evse={"id": 2})
        )
        assert idle.status == "Accepted"
        await csms.wait_for(
            lambda: csms.of("StatusNotification", evseId=2)[-1]["connectorStatus"] == "Unavailable"
        )
        busy = await csms.send(
            call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1})
        )
        assert busy.status == "Scheduled"
        await sim.stop_transaction(1)
        await csms.wait_for(
            lambda: csms.of("StatusNotification", evseId=1)[-1]["connectorStatus"] == "Unavailable"
        )


async def test_variables_and_the_basic_auth_password(csms: Csms) -> None:
    async with charger(csms) as sim:
        answer = await csms.send(
            call.GetVariables(
                get_variable_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": name}}
                    for name in ("HeartbeatInterval", "Nope")
                ]
                + [
                    {"component": {"name": "Nowhere"}, "variable": {"name": "X"}},
                    {
                        "component": {"name": "SecurityCtrlr"},
                        "variable": {"name": "BasicAuthPassword"},
                    },
                ]
            )
        )
        results = answer.get_variable_result
        assert results[0]["attribute_status"] == "Accepted"
        assert results[0]["attribute_value"] == "300"  # from the boot answer
        assert [r["attribute_status"] for r in results[1:]] == [
            "UnknownVariable",
            "UnknownComponent",
            "Rejected",  # write-only
        ]
        assert await set_variable(csms, "ChargingStation", "Model", "X") == "Rejected"
        assert await set_variable(csms, "OCPPCommCtrlr", "HeartbeatInterval", "soon") == (
            "Rejected"
        )
        assert await set_variable(csms, "OCPPCommCtrlr", "HeartbeatInterval", "5") == "Accepted"
        assert sim.heartbeat_interval_s == 5
        new = "another-password-0123"
        assert await set_variable(csms, "SecurityCtrlr", "BasicAuthPassword", new) == "Accepted"
        assert sim.password == new
        sim.drop_connection()
        await sim.wait_until(lambda: sim.connections == 2)
        expected = base64.b64encode(f"cp-201:{new}".encode()).decode()
        assert csms.authorizations[-1] == f"Basic {expected}"


async def test_the_base_report_is_paged(csms: Csms) -> None:
    async with charger(csms) as sim:
        answer = await csms.send(call.GetBaseReport(request_id=11, report_base="FullInventory"))
        assert answer.status == "Accepted"
        total = len(sim.device_model.variables)
        pages = (total + REPORT_PAGE - 1) // REPORT_PAGE
        reports = await csms.wait_for(
            lambda: (r := csms.of("NotifyReport", requestId=11)) and len(r) == pages and r
        )
        assert [r["seqNo"] for r in reports] == list(range(pages))
        assert [r["tbc"] for r in reports] == [True] * (pages - 1) + [False]
        entries = [e for r in reports for e in r["reportData"]]
        assert len(entries) == total
        password = next(e for e in entries if e["variable"]["name"] == "BasicAuthPassword")
        assert "value" not in password["variableAttribute"][0]
        summary = await csms.send(call.GetBaseReport(request_id=12, report_base="SummaryInventory"))
        assert summary.status == "NotSupported"


async def test_display_messages_are_kept_and_shown_by_priority(csms: Csms) -> None:
    async with charger(csms, plugged=(1,)) as sim:

        def message(number: int, priority: str, text: str, **extra: Any) -> Any:
            return call.SetDisplayMessage(
                message={
                    "id": number,
                    "priority": priority,
                    "message": {"format": "UTF8", "content": text},
                    **extra,
                }
            )

        assert (await csms.send(message(1, "NormalCycle", "Welcome"))).status == "Accepted"
        assert (await csms.send(message(2, "AlwaysFront", "Pay by zap"))).status == "Accepted"
        assert sim.screen == ["Pay by zap", "Welcome"]
        unknown = await csms.send(message(3, "InFront", "x", transaction_id="nope"))
        assert unknown.status == "UnknownTransaction"
        listed = await csms.send(call.GetDisplayMessages(request_id=5))
        assert listed.status == "Accepted"
        [notified] = await csms.wait_for(lambda: csms.of("NotifyDisplayMessages"))
        assert [m["id"] for m in notified["messageInfo"]] == [1, 2]
        assert (await csms.send(call.ClearDisplayMessage(id=2))).status == "Accepted"
        assert (await csms.send(call.ClearDisplayMessage(id=2))).status == "Unknown"
        assert sim.screen == ["Welcome"]
        # A message for a transaction is shown while it runs.
        transaction = await remote_start(csms, sim)
        costly = message(4, "InFront", "1.20 EUR so far", transaction_id=transaction)
        assert (await csms.send(costly)).status == "Accepted"
        assert sim.screen == ["1.20 EUR so far", "Welcome"]
        await csms.send(call.CostUpdated(total_cost=1.2, transaction_id=transaction))
        assert sim.costs == {transaction: Decimal("1.2")}
        await sim.stop_transaction(1)
        assert sim.screen == ["Welcome"]


async def test_trigger_message_and_data_transfer(csms: Csms) -> None:
    async with charger(csms, plugged=(1,)) as sim:
        none_running = await csms.send(call.TriggerMessage(requested_message="TransactionEvent"))
        assert none_running.status == "Rejected"
        transaction = await remote_start(csms, sim)
        for requested in ("TransactionEvent", "MeterValues", "Heartbeat", "StatusNotification"):
            answer = await csms.send(call.TriggerMessage(requested_message=requested))
            assert answer.status == "Accepted", requested
        [update] = await csms.wait_for(lambda: csms.events("Updated"))
        assert update["triggerReason"] == "Trigger"
        assert update["transactionInfo"]["transactionId"] == transaction
        [meter] = await csms.wait_for(lambda: csms.of("MeterValues"))
        assert meter["evseId"] == 1
        await csms.wait_for(lambda: csms.of("Heartbeat"))
        boot = await csms.send(call.TriggerMessage(requested_message="BootNotification"))
        assert boot.status == "Accepted"
        await csms.wait_for(lambda: len(csms.of("BootNotification")) == 2)
        assert csms.of("BootNotification")[-1]["reason"] == "Triggered"
        log = await csms.send(call.TriggerMessage(requested_message="LogStatusNotification"))
        assert log.status == "NotImplemented"
        vendor = await csms.send(call.DataTransfer(vendor_id="com.example"))
        assert vendor.status == "UnknownVendorId"


async def test_a_call_breaking_the_schema_gets_a_call_error(csms: Csms) -> None:
    async with charger(csms) as sim:
        bad = call.RequestStartTransaction(
            id_token={"id_token": "T", "type": "NotAType"}, remote_start_id=1
        )
        with pytest.raises(OCPPError):
            await csms.send(bad, suppress=False, skip_schema_validation=True)
        assert len(sim.validation_failures) == 1
        assert "RequestStartTransaction" in sim.validation_failures[0]
        sim.validation_failures.clear()
        assert sim.connected  # the connection keeps serving


def test_the_command_line_picks_the_ocpp_version() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = options_from_args(parser.parse_args(["--ocpp", "2.0.1"]), environ={})
    assert options.ocpp_version == "2.0.1"
    assert isinstance(simulated_charge_point(options), SimulatedChargePoint201)
    default = options_from_args(parser.parse_args([]), environ={})
    assert default.ocpp_version == "1.6"
    assert isinstance(simulated_charge_point(default), SimulatedChargePoint)
    with pytest.raises(SystemExit):
        parser.parse_args(["--ocpp", "2.0"])
    with pytest.raises(ValueError, match="ocpp_version"):
        SimulatorOptions(ocpp_version="2.1")


async def test_run_simulator_runs_a_201_charger_for_its_duration(csms: Csms) -> None:
    options = SimulatorOptions(
        url=csms.url, charger_id="cp-201", ocpp_version="2.0.1", duration_s=0.5
    )
    assert await run_simulator(options) == 0
    assert csms.subprotocols == ["ocpp2.0.1"]
    assert [b["reason"] for b in csms.of("BootNotification")] == ["PowerUp"]
