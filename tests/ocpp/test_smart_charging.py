"""OCPP 1.6 SmartCharging against the simulated charge point over a real websocket.

The site limit (ChargePointMaxProfile), a session's lower power (TxProfile for the running
transaction, TxDefaultProfile before it starts), their removal (ClearChargingProfile) and the
composite schedule: every frame is schema-checked both ways by the server and the simulator,
and the simulator draws the power its profiles allow.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from ocpp_server import SimulatedChargePoint, SimulatorOptions
from ocpp_server.power import OcppPowerLimits
from ocpp_server.v16.smart_charging import (
    PLAN_PROFILE_BASE,
    SESSION_PROFILE_BASE,
    SITE_PROFILE_ID,
    session_profile,
    site_profile,
)
from strom_core.ports import CommandStatus, TransactionStarted
from strom_core.ports.power import SchedulePeriod
from tests.ocpp.conftest import PASSWORD, Harness, boot, running
from tests.ocpp.drivers import ChargePointDriver
from tests.waits import until


def limits(harness: Harness) -> OcppPowerLimits:
    return OcppPowerLimits(harness.server.commands)


async def test_a_site_limit_caps_the_whole_charger_until_it_is_removed(harness: Harness) -> None:
    power = limits(harness)
    async with running(harness, plugged=(1,), power_kw=11) as sim:
        assert sim.power_w(1) == 11_000
        assert (await power.set_charger_limit("cp-1", 4_000)).accepted
        assert sim.power_w(1) == 4_000
        schedule = await power.composite_schedule("cp-1", 0, 3600)
        assert schedule.result.accepted
        assert schedule.duration_s == 3600
        assert [(p.start_s, p.limit_w) for p in schedule.periods] == [(0, 4_000)]
        assert (await power.set_charger_limit("cp-1", None)).accepted
        assert sim.power_w(1) == 11_000
        assert sim.validation_failures == []


async def test_a_session_limit_slows_the_running_transaction_and_is_cleared(
    harness: Harness,
) -> None:
    power = limits(harness)
    async with running(harness, plugged=(1,), power_kw=11) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
        started = await harness.sink.wait_for(TransactionStarted)
        result = await power.limit_session("cp-1", 1, started.transaction, 3_700)
        assert result.accepted
        assert sim.power_w(1) == 3_700
        sent = [c for c in sim.received_calls if c.action == "SetChargingProfile"][-1]
        profile = sent.payload["csChargingProfiles"]
        assert profile["chargingProfilePurpose"] == "TxProfile"
        assert profile["transactionId"] == int(started.transaction)
        # The site limit below it wins; the composite schedule of the connector says so.
        assert (await power.set_charger_limit("cp-1", 2_000)).accepted
        schedule = await power.composite_schedule("cp-1", 1, 600)
        assert [p.limit_w for p in schedule.periods] == [2_000]
        assert (await power.set_charger_limit("cp-1", None)).accepted
        assert (await power.clear_session_limit("cp-1", 1)).accepted
        assert sim.power_w(1) == 11_000
        # Clearing again finds nothing, which is what was wanted.
        again = await power.clear_session_limit("cp-1", 1)
        assert (again.status, again.detail) == (CommandStatus.ACCEPTED, "Unknown")
        assert sim.validation_failures == []


async def test_a_limit_before_the_start_applies_to_the_next_transaction(harness: Harness) -> None:
    power = limits(harness)
    async with running(harness, power_kw=11) as sim:
        assert (await power.limit_session("cp-1", 1, None, 5_000)).accepted
        sent = [c for c in sim.received_calls if c.action == "SetChargingProfile"][-1]
        assert sent.payload["csChargingProfiles"]["chargingProfilePurpose"] == "TxDefaultProfile"
        await sim.plug(1)
        tag = harness.core.issue_id_tag("cp-1")
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
        await harness.sink.wait_for(TransactionStarted)
        assert sim.power_w(1) == 5_000


async def test_a_limit_for_a_transaction_the_charger_does_not_run_is_rejected(
    harness: Harness,
) -> None:
    power = limits(harness)
    async with running(harness, power_kw=11) as sim:
        result = await power.limit_session("cp-1", 1, "4242", 3_000)
        assert result.status is CommandStatus.REJECTED
        bad = await power.limit_session("cp-1", 1, "not-a-number", 3_000)
        assert bad.status is CommandStatus.REJECTED  # nothing was sent
        assert [c.action for c in sim.received_calls].count("SetChargingProfile") == 1
        assert sim.power_w(1) == 11_000


async def test_an_offline_charger_gets_nothing(harness: Harness) -> None:
    power = limits(harness)
    assert (await power.set_charger_limit("cp-1", 4_000)).status is CommandStatus.OFFLINE
    schedule = await power.composite_schedule("cp-1", 0, 60)
    assert schedule.result.status is CommandStatus.OFFLINE


async def test_the_strict_client_gets_smart_charging_commands_that_fit_the_schemas(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    power = limits(harness)

    # The site limit: ChargePointMaxProfile on connector 0, and its removal.
    await driver.answer("SetChargingProfile", {"status": "Accepted"})
    assert (await power.set_charger_limit("cp-1", 4_000)).accepted
    assert await driver.server_call("SetChargingProfile") == site_profile(4_000)
    await driver.answer("ClearChargingProfile", {"status": "Accepted"})
    assert (await power.set_charger_limit("cp-1", None)).accepted
    assert await driver.server_call("ClearChargingProfile") == {"id": SITE_PROFILE_ID}

    # A TxProfile for the running transaction, and its removal when the session ends.
    tag = harness.core.issue_id_tag("cp-1")
    started = await driver.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": tag, "meterStart": 0, "timestamp": "2030-01-02T03:04:05Z"},
    )
    transaction = started["transactionId"]
    assert (await power.limit_session("cp-1", 1, str(transaction), 3_700)).accepted
    tx_profile = await driver.server_call("SetChargingProfile")
    assert tx_profile == session_profile(1, transaction, 3_700)
    assert tx_profile["csChargingProfiles"]["chargingProfilePurpose"] == "TxProfile"
    await driver.answer("ClearChargingProfile", {"status": "Unknown"})
    cleared = await power.clear_session_limit("cp-1", 1)
    assert await driver.server_call("ClearChargingProfile") == {"id": SESSION_PROFILE_BASE + 1}
    assert (cleared.status, cleared.detail) == (CommandStatus.ACCEPTED, "Unknown")

    # Refusals map onto typed results.
    await driver.answer("SetChargingProfile", {"status": "Rejected"})
    rejected = await power.limit_session("cp-1", 1, None, 5_000)
    assert (rejected.status, rejected.detail) == (CommandStatus.REJECTED, "Rejected")
    await driver.answer("SetChargingProfile", {"status": "NotSupported"})
    unsupported = await power.set_charger_limit("cp-1", 5_000)
    assert unsupported.status is CommandStatus.NOT_SUPPORTED
    for _ in range(2):
        await driver.server_call("SetChargingProfile")

    # GetCompositeSchedule in W; an answer in A is converted (230 V, three phases).
    await driver.answer(
        "GetCompositeSchedule",
        {
            "status": "Accepted",
            "connectorId": 1,
            "scheduleStart": "2030-01-02T03:04:05.000Z",
            "chargingSchedule": {
                "duration": 600,
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 16.0},
                    {"startPeriod": 300, "limit": 10},
                ],
            },
        },
    )
    schedule = await power.composite_schedule("cp-1", 1, 600)
    assert await driver.server_call("GetCompositeSchedule") == {
        "connectorId": 1,
        "duration": 600,
        "chargingRateUnit": "W",
    }
    assert schedule.result.accepted
    assert (schedule.connector_id, schedule.start, schedule.duration_s) == (
        1,
        "2030-01-02T03:04:05.000Z",
        600,
    )
    assert [(p.start_s, p.limit_w) for p in schedule.periods] == [(0, 11_040), (300, 6_900)]
    await driver.answer("GetCompositeSchedule", {"status": "Rejected"})
    refused = await power.composite_schedule("cp-1", 0, 60)
    assert (refused.result.status, refused.periods) == (CommandStatus.REJECTED, ())
    assert driver.validation_failures == []


async def test_a_plan_is_followed_through_time_above_the_lower_power_and_ends_at_its_deadline(
    harness: Harness,
) -> None:
    power = limits(harness)
    async with running(harness, plugged=(1,), power_kw=11) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
        started = await harness.sink.wait_for(TransactionStarted)
        assert (await power.limit_session("cp-1", 1, started.transaction, 7_400)).accepted
        plan = (SchedulePeriod(0, 7_400), SchedulePeriod(600, 0), SchedulePeriod(1_800, 7_400))
        now = datetime.now(UTC)

        async def planned(ago_s: int) -> int:
            start = now - timedelta(seconds=ago_s)
            result = await power.plan_session("cp-1", 1, started.transaction, start, 3_600, plan)
            assert result.accepted
            return sim.power_w(1)

        assert await planned(60) == 7_400  # the first period
        assert await planned(900) == 0  # the dear hour: it waits
        assert await planned(2_000) == 7_400  # the cheap hour after it
        assert await planned(3_700) == 7_400  # past the deadline: the lower power holds again
        assert (await power.limit_session("cp-1", 1, started.transaction, 3_700)).accepted
        assert await planned(900) == 0  # the plan stays above a new lower power
        assert await planned(-60) == 3_700  # a plan not yet begun leaves the lower power
        sent = [c for c in sim.received_calls if c.action == "SetChargingProfile"][-1]
        profile = sent.payload["csChargingProfiles"]
        assert (profile["chargingProfileKind"], profile["stackLevel"]) == ("Absolute", 2)
        assert profile["chargingProfileId"] == PLAN_PROFILE_BASE + 1
        assert profile["chargingSchedule"]["chargingSchedulePeriod"] == [
            {"startPeriod": 0, "limit": 7_400.0},
            {"startPeriod": 600, "limit": 0.0},
            {"startPeriod": 1_800, "limit": 7_400.0},
        ]
        assert sim.validation_failures == []


async def test_a_plan_for_no_transaction_or_without_periods_is_refused_unsent(
    harness: Harness,
) -> None:
    power = limits(harness)
    now = datetime.now(UTC)
    async with running(harness, plugged=(1,), power_kw=11) as sim:
        bad = await power.plan_session("cp-1", 1, "x", now, 60, (SchedulePeriod(0, 0),))
        assert bad.status is CommandStatus.REJECTED
        empty = await power.plan_session("cp-1", 1, "7", now, 60, ())
        assert empty.status is CommandStatus.REJECTED
        assert "SetChargingProfile" not in [c.action for c in sim.received_calls]
        unknown = await power.plan_session("cp-1", 1, "4242", now, 60, (SchedulePeriod(0, 0),))
        assert unknown.status is CommandStatus.REJECTED  # the charger runs no such transaction


async def test_power_options_are_offered_only_where_the_charger_reported_smart_charging(
    harness: Harness,
) -> None:
    power = limits(harness)
    assert not power.offered("cp-1")  # not connected
    async with running(harness) as sim:
        await sim.wait_until(
            lambda: any(c.action == "GetConfiguration" for c in sim.received_calls)
        )
        asked = next(c for c in sim.received_calls if c.action == "GetConfiguration")
        assert asked.payload == {"key": ["SupportedFeatureProfiles"]}
        assert power.offered("cp-1")
    # The same charger back with firmware that has no smart charging: its report counts.
    without = SimulatedChargePoint(
        SimulatorOptions(url=harness.url, charger_id="cp-1", password=PASSWORD)
    )
    without.configuration["SupportedFeatureProfiles"] = "Core,RemoteTrigger"
    async with asyncio.TaskGroup() as group:
        task = group.create_task(without.run())
        await without.wait_until(lambda: without.boots >= 1)
        await until(
            lambda: harness.server.commands.lacks_feature("cp-1", "SmartCharging"),
            "the charger's feature profiles are read after its boot",
        )
        assert not power.offered("cp-1")
        without.stop()
        task.cancel()
