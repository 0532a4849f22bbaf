"""Vendor quirk flags, odd but legal charger behaviour, and failures inside Strom's core."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocpp_server import InMemoryOcppCore
from strom_core.ports import Authorization, MeterSample, StartDecision, TransactionStopped
from tests.fuzz.counts import CASES, examples
from tests.ocpp.conftest import Harness, HarnessFactory, boot
from tests.ocpp.drivers import CallErrorReceived, PythonDriver

NOW = "2030-01-01T10:00:00Z"


async def test_evlink_boot_is_accepted_only_with_the_lenient_flag(harness: Harness) -> None:
    evlink_boot = {
        "chargeBoxSerialNumber": "EVB1A22P2RI3N182341200100350795E5",
        "chargePointModel": "EVlink Smart Wallbox",
        "chargePointSerialNumber": "3N18310641B55ABCDEFGHIJKLM",
        "chargePointVendor": "Schneider Electric",
        "firmwareVersion": "3.4.0.2",
    }
    strict = PythonDriver()
    await strict.connect(harness.url, "cp-open")
    with pytest.raises(CallErrorReceived) as refused:
        await strict.call("BootNotification", evlink_boot)
    assert refused.value.code == "TypeConstraintViolation"
    lenient = PythonDriver()
    await lenient.connect(harness.url, "cp-quirky")
    assert (await lenient.call("BootNotification", evlink_boot))["status"] == "Accepted"
    await strict.close()
    await lenient.close()


async def test_kwh_labelled_wh_and_session_relative_meter_values(harness: Harness) -> None:
    driver = PythonDriver()
    await boot(driver, harness, "cp-quirky")
    tag = harness.core.issue_id_tag("cp-quirky")
    started = await driver.call(
        "StartTransaction",
        {"connectorId": 1, "idTag": tag, "meterStart": 4_076_000, "timestamp": NOW},
    )
    tx = started["transactionId"]
    # The charger sends the session energy (kWh, labelled Wh); Strom adds meterStart.
    await driver.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [
                {"timestamp": NOW, "sampledValue": [{"value": "0.353", "unit": "Wh"}]},
            ],
        },
    )
    sample = await harness.sink.wait_for(MeterSample)
    assert sample.register_wh == 4_076_353
    # A sample for a transaction this process never saw start is dropped, not guessed.
    await driver.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": 999,
            "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "1", "unit": "Wh"}]}],
        },
    )
    assert harness.core.samples("cp-quirky", "999") == []
    stop = {"transactionId": tx, "meterStop": 4_080_000, "timestamp": NOW}
    await driver.call("StopTransaction", stop)
    stopped = await harness.sink.wait_for(TransactionStopped)
    assert stopped.meter_stop_wh == 4_080_000
    await driver.close()


async def test_meter_stop_of_minus_one_uses_the_best_known_register(harness: Harness) -> None:
    driver = PythonDriver()
    await boot(driver, harness, "cp-open")
    tag = harness.core.issue_id_tag("cp-open")
    started = await driver.call(
        "StartTransaction", {"connectorId": 1, "idTag": tag, "meterStart": 100, "timestamp": NOW}
    )
    tx = started["transactionId"]
    await driver.call(
        "MeterValues",
        {
            "connectorId": 1,
            "transactionId": tx,
            "meterValue": [{"timestamp": NOW, "sampledValue": [{"value": "2500"}]}],
        },
    )
    await driver.call("StopTransaction", {"transactionId": tx, "meterStop": -1, "timestamp": NOW})
    stopped = await harness.sink.wait_for(TransactionStopped)
    assert stopped.meter_stop_wh == 2500
    await driver.close()


class _BrokenCore(InMemoryOcppCore):
    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
    ) -> StartDecision:
        raise RuntimeError("database is down")


async def test_a_core_failure_is_internal_error_and_the_connection_stays(
    start_harness: HarnessFactory,
    expect_errors: list[logging.LogRecord],
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = await start_harness(core=_BrokenCore())
    driver = PythonDriver()
    await boot(driver, harness, "cp-open")
    with pytest.raises(CallErrorReceived) as failed:
        await driver.call(
            "StartTransaction", {"connectorId": 1, "idTag": "T", "meterStart": 0, "timestamp": NOW}
        )
    assert failed.value.code == "InternalError"
    assert "database" not in str(failed.value)
    assert "currentTime" in await driver.call("Heartbeat", {})
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "cp_id=cp-open: StartTransaction failed in the core"
    ]
    await driver.close()


async def test_the_in_memory_core_rules() -> None:
    core = InMemoryOcppCore(first_transaction_id=41)
    tag = core.issue_id_tag("cp", 1)
    at = datetime.fromisoformat("2030-01-01T10:00:00+00:00")
    assert await core.authorize("cp", tag) is Authorization.ACCEPTED
    assert await core.authorize("other", tag) is Authorization.INVALID
    wrong_connector = await core.start_transaction("cp", 2, tag, 0, at)
    assert wrong_connector.status is Authorization.INVALID
    first = await core.start_transaction("cp", 1, tag, 0, at)
    assert (first.transaction, first.status) == ("42", Authorization.ACCEPTED)
    assert await core.start_transaction("cp", 1, tag, 0, at) == StartDecision(
        "42", Authorization.ACCEPTED, replayed=True
    )
    assert await core.authorize("cp", tag) is Authorization.IN_USE
    stop = await core.stop_transaction("cp", "42", 500, at, "Local", tag)
    assert stop.known
    assert not stop.replayed
    assert (await core.stop_transaction("cp", "42", 999, at, "Local", tag)).replayed
    assert await core.authorize("cp", tag) is Authorization.EXPIRED
    unknown = await core.stop_transaction("other", "42", 1, at, "Local", None)
    assert not unknown.known
    record = core.transaction("42")
    assert record is not None
    assert record.energy_wh == 500
    with pytest.raises(ValueError, match="20"):
        core.issue_id_tag("cp", id_tag="X" * 21)


FRAMES = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.one_of(
            st.integers(-2, 6),
            st.text(max_size=40),
            st.sampled_from(["StartTransaction", "StopTransaction", "MeterValues", "Heartbeat"]),
            st.dictionaries(
                st.sampled_from(
                    [
                        "connectorId",
                        "idTag",
                        "meterStart",
                        "meterStop",
                        "timestamp",
                        "transactionId",
                        "meterValue",
                        "x",
                    ]
                ),
                st.one_of(st.integers(-(2**40), 2**40), st.text(max_size=30), st.none()),
                max_size=6,
            ),
        ),
        max_size=6,
    ).map(lambda items: __import__("json").dumps(items)),
)


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(frames=st.lists(FRAMES, min_size=1, max_size=8))
async def test_generated_frames_never_break_the_server_or_change_records(
    start_harness: HarnessFactory, frames: list[str]
) -> None:
    # Hypothesis runs this body many times; each run gets its own server.
    CASES["OCPP frame sequences (live server)"] += 1
    CASES["OCPP frames (live server)"] += len(frames)
    harness = await start_harness()
    driver = PythonDriver()
    await driver.connect(harness.url, "cp-open")
    tag = harness.core.issue_id_tag("cp-open", 1)
    before: list[Any] = harness.core.transactions()
    for frame in frames:
        await driver.raw(frame)
    # The connection is still served, in order, after every frame.
    assert "currentTime" in await driver.call("Heartbeat", {})
    assert harness.core.transactions() == before
    assert harness.server.online_chargers() == ["cp-open"]
    assert await harness.core.authorize("cp-open", tag) is Authorization.ACCEPTED
    await driver.close()
    await harness.server.stop()
