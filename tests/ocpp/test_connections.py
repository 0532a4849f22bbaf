"""Connection lifecycle over real sockets: last connection wins, silence, the boot backstop."""

from __future__ import annotations

import asyncio
import time

from strom_core.ports import ChargerOffline, ChargerOnline, CommandStatus
from tests.ocpp.conftest import PASSWORD, DriverFactory, FakeClock, Harness, HarnessFactory, boot
from tests.ocpp.drivers import PythonDriver


async def test_last_connection_wins(harness: Harness, new_driver: DriverFactory) -> None:
    first = await new_driver()
    await boot(first, harness)
    second = await new_driver()
    await second.connect(harness.url, "cp-1", PASSWORD)
    await first.closed()  # the server closed the older connection
    await harness.sink.wait_for(ChargerOnline, after=1)

    await second.answer("RemoteStartTransaction", {"status": "Accepted"})
    result = await harness.server.commands.remote_start("cp-1", 1, "TAG")
    assert result.accepted
    assert (await second.server_call("RemoteStartTransaction"))["idTag"] == "TAG"
    assert harness.server.online_chargers() == ["cp-1"]
    # The charger never went offline: the new connection replaced the old one.
    assert harness.sink.of_type(ChargerOffline) == []
    assert second.validation_failures == []


async def test_a_command_on_a_replaced_connection_ends_with_unknown_outcome(
    harness: Harness,
) -> None:
    first = PythonDriver()
    await first.connect(harness.url, "cp-1", PASSWORD)
    await first.answer("Reset", silent=True)
    pending = asyncio.create_task(harness.server.commands.reset("cp-1", hard=True))
    await first.server_call("Reset")
    second = PythonDriver()
    await second.connect(harness.url, "cp-1", PASSWORD)
    result = await pending
    assert result.status is CommandStatus.TIMEOUT
    assert "closed" in result.detail
    await second.close()
    await first.close()


async def test_a_silent_charger_is_marked_offline(start_harness: HarnessFactory) -> None:
    harness = await start_harness(heartbeat_interval_s=1)  # offline after 2.5 s of silence
    driver = PythonDriver()
    await driver.connect(harness.url, "cp-open")
    offline = await harness.sink.wait_for(ChargerOffline, within_s=10)
    assert offline.reason.startswith("silent")
    await driver.closed()
    assert harness.server.online_chargers() == []
    assert len(harness.sink.of_type(ChargerOffline)) == 1
    await driver.close()


async def test_any_message_keeps_a_charger_online(start_harness: HarnessFactory) -> None:
    clock = FakeClock()
    harness = await start_harness(heartbeat_interval_s=10, monotonic=clock)
    driver = PythonDriver()
    await driver.connect(harness.url, "cp-open")
    clock.advance(24)
    harness.server.sweep()
    assert harness.server.online_chargers() == ["cp-open"]
    await driver.call("Heartbeat", {})
    clock.advance(24)
    harness.server.sweep()
    assert harness.server.online_chargers() == ["cp-open"]
    clock.advance(2)
    harness.server.sweep()
    assert harness.server.online_chargers() == []
    await harness.sink.wait_for(ChargerOffline)
    await driver.closed()
    await driver.close()


async def test_boot_backstop_asks_a_charger_that_resumed_without_booting(
    start_harness: HarnessFactory, new_driver: DriverFactory
) -> None:
    clock = FakeClock()
    harness = await start_harness(boot_backstop_delay_s=30, monotonic=clock)
    driver = await new_driver()
    await driver.connect(harness.url, "cp-open")
    # A charger back from a network outage reports status without booting: served.
    status = {"connectorId": 1, "errorCode": "NoError", "status": "Charging"}
    assert await driver.call("StatusNotification", status) == {}
    clock.advance(31)
    harness.server.sweep()
    assert await driver.server_call("TriggerMessage") == {"requestedMessage": "BootNotification"}
    answer = await driver.call(
        "BootNotification", {"chargePointVendor": "Test", "chargePointModel": "Late"}
    )
    assert answer["status"] == "Accepted"
    assert (await driver.server_call("ChangeConfiguration"))["key"] == "MeterValueSampleInterval"
    # Only once per connection.
    clock.advance(31)
    harness.server.sweep()
    assert driver.validation_failures == []


async def test_stopping_the_server_disconnects_and_publishes_offline(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness()
    driver = PythonDriver()
    await boot(driver, harness, "cp-open")
    await harness.server.stop()
    await driver.closed()
    offline = await harness.sink.wait_for(ChargerOffline)
    assert offline.charger_id == "cp-open"
    await driver.close()


async def test_stopping_does_not_wait_for_a_charger_that_ignores_the_close(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness()
    driver = PythonDriver()
    await boot(driver, harness, "cp-open")
    driver.go_half_open()  # never reads the close frame, so never answers it
    began = time.monotonic()
    await harness.server.stop()
    # The close handshake gets close_timeout_s (1.5 s), not the websockets default of 10 s.
    assert time.monotonic() - began < harness.settings.close_timeout_s + 3.0
    offline = await harness.sink.wait_for(ChargerOffline)
    assert offline.charger_id == "cp-open"
    await driver.close(force=True)


async def test_message_log_and_counters(harness: Harness) -> None:
    driver = PythonDriver()
    await boot(driver, harness, "cp-open")
    await driver.call("Heartbeat", {})
    log = harness.server.message_log("cp-open")
    assert log[0].direction == "in"
    assert '"BootNotification"' in log[0].frame
    assert log[1].direction == "out"
    counters = harness.server.counters("cp-open")
    assert counters.received >= 2
    assert counters.sent >= 2
    assert harness.server.counters().received >= counters.received
    assert harness.server.message_log("cp-nobody") == ()
    await driver.close()
