"""The simulated charge point against the real server: the demo's whole OCPP story."""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from ocpp_server import (
    SimulatedChargePoint,
    SimulatorOptions,
    add_arguments,
    options_from_args,
    run_simulator,
)
from strom_core.ports import (
    Authorization,
    ChargerBooted,
    ChargerOffline,
    ChargerOnline,
    CommandStatus,
    ConnectorStatusChanged,
    MeterSample,
    TransactionStarted,
    TransactionStopped,
)
from tests.ocpp.conftest import PASSWORD, FakeClock, Harness, HarnessFactory, running


def charging(sim: SimulatedChargePoint, connector: int = 1) -> Callable[[], bool]:
    return lambda: sim.connectors[connector].status == "Charging"


async def test_pay_plug_charge_stop(start_harness: HarnessFactory) -> None:
    harness = await start_harness(meter_value_sample_interval_s=1)
    async with running(harness, connectors=2, speed=360.0, power_kw=Decimal(11)) as sim:
        await sim.wait_until(lambda: sim.configuration["MeterValueSampleInterval"] == "1")
        tag = harness.core.issue_id_tag("cp-1", 1)
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).status is (
            CommandStatus.ACCEPTED
        )
        await sim.wait_until(lambda: sim.connectors[1].status == "Preparing")
        await sim.plug(1)
        started = await harness.sink.wait_for(TransactionStarted)
        await sim.wait_until(charging(sim))
        sample = await harness.sink.wait_for(MeterSample, lambda s: s.register_wh > 0)
        assert sample.transaction == started.transaction
        stop = await harness.server.commands.remote_stop("cp-1", started.transaction)
        assert stop.accepted
        stopped = await harness.sink.wait_for(TransactionStopped)
        assert stopped.reason == "Remote"
        assert stopped.meter_stop_wh >= sample.register_wh
        record = harness.core.transaction(started.transaction)
        assert record is not None
        assert record.energy_wh == stopped.meter_stop_wh
        await harness.sink.wait_for(
            ConnectorStatusChanged, lambda e: e.connector_id == 1 and e.status == "Finishing"
        )


async def test_remote_start_is_refused_for_a_busy_or_unknown_connector(harness: Harness) -> None:
    async with running(harness, plugged=(1,)) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
        await sim.wait_until(charging(sim))
        busy = await harness.server.commands.remote_start("cp-1", 1, "OTHER")
        assert busy.status is CommandStatus.REJECTED
        nowhere = await harness.server.commands.remote_start("cp-1", 5, "OTHER")
        assert nowhere.status is CommandStatus.REJECTED


async def test_unlock_stops_the_transaction(harness: Harness) -> None:
    async with running(harness, plugged=(1,)) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        await harness.server.commands.remote_start("cp-1", 1, tag)
        await sim.wait_until(charging(sim))
        assert (await harness.server.commands.unlock("cp-1", 1)).accepted
        stopped = await harness.sink.wait_for(TransactionStopped)
        assert stopped.reason == "UnlockCommand"


async def test_change_availability_is_scheduled_during_a_transaction(harness: Harness) -> None:
    async with running(harness, plugged=(1,)) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        await harness.server.commands.remote_start("cp-1", 1, tag)
        await sim.wait_until(charging(sim))
        result = await harness.server.commands.change_availability("cp-1", 1, operative=False)
        assert (result.status, result.detail) == (CommandStatus.ACCEPTED, "Scheduled")
        await sim.unplug(1)
        await harness.sink.wait_for(
            ConnectorStatusChanged, lambda e: e.connector_id == 1 and e.status == "Unavailable"
        )
        back = await harness.server.commands.change_availability("cp-1", 1, operative=True)
        assert back.accepted
        await harness.sink.wait_for(
            ConnectorStatusChanged,
            lambda e: e.connector_id == 1 and e.status == "Available",
            after=len(harness.sink.events) - 1,
        )


async def test_reset_reboots_and_boots_again(harness: Harness) -> None:
    async with running(harness, plugged=(1,)) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        await harness.server.commands.remote_start("cp-1", 1, tag)
        await sim.wait_until(charging(sim))
        assert (await harness.server.commands.reset("cp-1", hard=False)).accepted
        stopped = await harness.sink.wait_for(TransactionStopped)
        assert stopped.reason == "SoftReset"
        await sim.wait_until(lambda: sim.boots == 2)
        assert sim.connections == 2


async def test_a_stop_sent_while_offline_is_delivered_once_after_reconnecting(
    harness: Harness,
) -> None:
    async with running(harness, plugged=(1,)) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        await harness.server.commands.remote_start("cp-1", 1, tag)
        await sim.wait_until(charging(sim))
        sim.drop_connection()
        await sim.wait_until(lambda: not sim.connected)
        with pytest.raises(Exception, match="Disconnected"):
            await sim.stop_transaction(1, "Local")
        await sim.wait_until(lambda: sim.connections == 2)
        stopped = await harness.sink.wait_for(TransactionStopped)
        assert stopped.reason == "Local"
        assert len(harness.sink.of_type(TransactionStopped)) == 1


async def remote_charge(harness: Harness, sim: SimulatedChargePoint) -> TransactionStarted:
    """Start a transaction on connector 1 (plugged in) and wait until it charges."""
    tag = harness.core.issue_id_tag("cp-1")
    await harness.server.commands.remote_start("cp-1", 1, tag)
    await sim.wait_until(charging(sim))
    return await harness.sink.wait_for(TransactionStarted)


async def test_a_power_cut_reboots_and_firmware_that_keeps_transactions_goes_on(
    harness: Harness,
) -> None:
    async with running(harness, plugged=(1,)) as sim:
        transaction = (await remote_charge(harness, sim)).transaction
        sim.power_cut()
        await sim.wait_until(lambda: sim.boots == 2)
        assert str(sim.connectors[1].transaction_id) == transaction
        assert len(harness.sink.of_type(ChargerBooted)) == 2  # every accepted boot is told
        assert harness.sink.of_type(TransactionStopped) == []


async def test_stopping_strom_while_a_busy_charger_charges_is_prompt(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(meter_value_sample_interval_s=1)
    async with running(harness, plugged=(1,), speed=360.0) as sim:
        await sim.wait_until(lambda: sim.configuration["MeterValueSampleInterval"] == "1")
        started = await remote_charge(harness, sim)
        await harness.sink.wait_for(MeterSample, lambda s: s.register_wh > 0)
        # Firmware busy sending its meter values reads nothing, the close frame included.
        connection = sim._client._connection
        assert connection is not None
        connection.ws.transport.pause_reading()
        began = time.monotonic()
        await harness.server.stop()
        # Bounded by close_timeout_s (1.5 s), not by the websockets default of 10 s.
        assert time.monotonic() - began < harness.settings.close_timeout_s + 3.0
        await harness.sink.wait_for(ChargerOffline)
        # Stopping Strom ends no transaction: the charger goes on and reports it later.
        record = harness.core.transaction(started.transaction)
        assert record is not None
        assert record.open
        assert harness.sink.of_type(TransactionStopped) == []


async def test_a_power_cut_makes_forgetful_firmware_lose_its_transaction_silently(
    harness: Harness,
) -> None:
    async with running(harness, plugged=(1,), persist_transactions=False) as sim:
        started = await remote_charge(harness, sim)
        sim.power_cut()
        await sim.wait_until(lambda: sim.boots == 2)
        # Back without it: the car still plugged in, so Preparing; no StopTransaction, ever.
        assert sim.connectors[1].transaction_id is None
        await harness.sink.wait_for(
            ConnectorStatusChanged,
            lambda e: e.connector_id == 1 and e.status == "Preparing",
            after=harness.sink.events.index(harness.sink.of_type(ChargerBooted)[-1]),
        )
        rejected = await harness.server.commands.remote_stop("cp-1", started.transaction)
        assert rejected.status is CommandStatus.REJECTED
        assert harness.sink.of_type(TransactionStopped) == []
        assert [t.transaction for t in harness.core.open_transactions("cp-1")] == [
            started.transaction
        ]


async def test_a_refused_start_is_never_an_open_transaction(harness: Harness) -> None:
    async with running(harness, plugged=(1,)) as sim:
        answer = await sim.start_transaction(1, "NOT-ISSUED")
        assert answer["idTagInfo"]["status"] == "Invalid"
        record = harness.core.transaction(str(answer["transactionId"]))
        assert record is not None
        assert record.status is Authorization.INVALID
        assert not record.open
        assert harness.core.open_transactions("cp-1") == []
        assert sim.connectors[1].transaction_id is None  # nor does the charger keep it


async def test_configuration_and_authorization_key(harness: Harness) -> None:
    async with running(harness) as sim:
        commands = harness.commands16
        config = await commands.get_configuration("cp-1")
        keys = {k.key: k for k in config.keys}
        assert keys["NumberOfConnectors"].readonly
        assert "AuthorizationKey" not in keys  # write-only
        unknown = await commands.change_configuration("cp-1", "Nope", "1")
        assert unknown.status is CommandStatus.NOT_SUPPORTED
        readonly = await commands.change_configuration("cp-1", "NumberOfConnectors", "3")
        assert readonly.status is CommandStatus.REJECTED
        key_hex = b"0123456789abcdef0123".hex()
        assert (await commands.change_configuration("cp-1", "AuthorizationKey", key_hex)).accepted
        assert sim.password == "0123456789abcdef0123"
        logged = "".join(m.frame for m in harness.server.message_log("cp-1"))
        assert "(redacted)" in logged
        assert key_hex not in logged
        assert (await commands.clear_cache("cp-1")).accepted
        assert (await commands.trigger_message("cp-1", "Heartbeat")).accepted
        with pytest.raises(ValueError, match="cannot request"):
            await commands.trigger_message("cp-1", "StartTransaction")


async def test_resume_without_boot_gets_the_backstop(start_harness: HarnessFactory) -> None:
    clock = FakeClock()
    harness = await start_harness(boot_backstop_delay_s=30, monotonic=clock)
    async with running(harness, "cp-open", boot_on_reconnect=False) as sim:
        seen = len(harness.sink.events)
        sim.drop_connection()
        await harness.sink.wait_for(ChargerOnline, after=seen)  # the new connection
        assert sim.boots == 1
        clock.advance(31)
        harness.server.sweep()
        await sim.wait_until(lambda: sim.boots == 2)


async def test_simulator_over_tls(
    start_harness: HarnessFactory, tls_files: tuple[Path, Path]
) -> None:
    cert, key = tls_files
    harness = await start_harness(tls_cert=cert, tls_key=key)
    async with running(harness, ca_file=cert) as sim:
        assert sim.boot_status == "Accepted"


async def test_run_simulator_reports_a_refusal(
    harness: Harness, expect_errors: list[logging.LogRecord]
) -> None:
    options = SimulatorOptions(
        url=harness.url, charger_id="cp-1", password="wrong-password-123456", reconnect=False
    )
    assert await run_simulator(options) == 2


async def test_run_simulator_ends_after_its_duration(harness: Harness) -> None:
    options = SimulatorOptions(url=harness.url, charger_id="cp-open", duration_s=0.5)
    assert await run_simulator(options) == 0


def test_command_line_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    ns = parser.parse_args(
        ["--id", "cp-9", "--connectors", "2", "--power-kw", "22", "--speed", "60", "--plug", "2"]
    )
    options = options_from_args(ns, environ={})
    assert options.password is None
    assert options.charger_id == "cp-9"
    assert options.power_kw == Decimal(22)
    assert options.plugged == (2,)
    assert options.endpoint == "ws://127.0.0.1:9000/ocpp/cp-9"
    with pytest.raises(ValueError, match="plugged"):
        SimulatorOptions(plugged=(3,))


def test_the_password_comes_from_the_option_or_the_environment() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    environ = {"STROM_SIMULATE_PASSWORD": "from-the-environment"}
    assert options_from_args(parser.parse_args([]), environ).password == "from-the-environment"
    given = parser.parse_args(["--password=-starts-with-a-dash"])
    assert options_from_args(given, environ).password == "-starts-with-a-dash"


async def test_the_charger_keeps_retrying_when_the_server_dies_during_the_handshake(
    harness: Harness,
) -> None:
    """A central system killed half-way through a websocket handshake closes the TCP
    connection before any HTTP answer (websockets: InvalidMessage). A real charger retries;
    the simulator once let that end its run, so a soak charger stayed off for good."""
    target = harness.url.rsplit(":", 1)[1].split("/")[0]
    attempts = 0

    async def half_dead(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:  # the first two handshakes meet a dying server
            await reader.read(1)
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", int(target))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            while chunk := await src.read(65536):
                dst.write(chunk)
                await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    proxy = await asyncio.start_server(half_dead, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        sim = SimulatedChargePoint(
            SimulatorOptions(
                url=f"ws://127.0.0.1:{port}/ocpp",
                charger_id="cp-1",
                password=PASSWORD,
                reconnect_delay_s=0.05,
            )
        )
        run = asyncio.create_task(sim.run())
        try:
            booted = asyncio.create_task(sim.wait_until(lambda: sim.boots >= 1, within_s=10))
            await asyncio.wait({run, booted}, return_when=asyncio.FIRST_COMPLETED)
            assert not run.done(), f"the simulator gave up: {run.exception()!r}"
            await booted
            assert sim.boot_status == "Accepted"
            assert attempts >= 3
        finally:
            sim.stop()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    finally:
        proxy.close()


async def test_a_charger_powered_off_as_its_connection_drops_stops_running(
    harness: Harness,
) -> None:
    """Cancelling a charger's run in the same moment its connection drops (a power cut) must
    end the run. The drop fails the connection's task group with an error of its own, and a
    task group lets such an error win over a cancellation: the run used to swallow the cancel,
    reconnect and run on, so whoever awaited it (the soak's reboot) waited for ever."""
    for _ in range(5):
        sim = SimulatedChargePoint(
            SimulatorOptions(
                url=harness.url, charger_id="cp-1", password=PASSWORD, reconnect_delay_s=0.05
            )
        )
        run = asyncio.create_task(sim.run())
        await sim.wait_until(lambda: sim.boots >= 1)  # noqa: B023 - awaited in this iteration
        sim.power_cut()
        await asyncio.sleep(0)  # the reader sees the drop before the cancel is delivered
        run.cancel()
        done, _ = await asyncio.wait({run}, timeout=5)
        if not done:
            sim.stop()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        assert done, "the cancelled charger kept running"
        assert run.cancelled()


def test_a_charger_with_fallback_urls_tries_them_in_turn() -> None:
    options = SimulatorOptions(
        url="ws://a:9000/ocpp",
        fallback_urls=("ws://b:9000/ocpp/", "ws://c:9000/ocpp"),
        charger_id="cp-9",
    )
    tried = [options.endpoint_at(attempt) for attempt in range(4)]
    assert tried == [
        "ws://a:9000/ocpp/cp-9",
        "ws://b:9000/ocpp/cp-9",
        "ws://c:9000/ocpp/cp-9",
        "ws://a:9000/ocpp/cp-9",
    ]
    assert options.endpoint == tried[0]
