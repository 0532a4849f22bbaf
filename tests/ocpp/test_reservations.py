"""Reservations over OCPP 1.6 (ReserveNow, CancelReservation) through ``OcppServer.reservations``.

Against Strom's simulated charge point over a real websocket (it honours reservations: the
connector goes Reserved, strangers are refused, the reserved idTag starts with the
reservationId, expiry and cancellation free it), and against both charge point drivers
(ocpp-rpc checks both actions against the OCPP 1.6 schemas, strictly, and every answer status
maps onto a typed result).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from ocpp_server import SimulatedChargePoint201, SimulatorOptions, simulated_charge_point
from ocpp_server.v16.sim_reservations import ConnectorReserved
from strom_core.ports import CommandStatus, ConnectorStatusChanged, TransactionStarted
from strom_core.ports.reservations import ReservationCommands
from tests.ocpp.conftest import PASSWORD, Harness, boot, running
from tests.ocpp.drivers import ChargePointDriver, OcppRpcDriver, PythonDriver, install_ocpp_rpc
from tests.waits import until


def soon(minutes: float = 30) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def reported(harness: Harness, connector_id: int) -> list[str]:
    """The statuses the charger reported for a connector, in order."""
    return [
        event.status
        for event in harness.sink.events
        if isinstance(event, ConnectorStatusChanged)
        and event.charger_id == "cp-1"
        and event.connector_id == connector_id
    ]


async def reserve(
    harness: Harness,
    *,
    connector_id: int = 1,
    reservation_id: int = 7,
    expires_at: datetime | None = None,
    id_tag: str = "RESERVED-1",
) -> CommandStatus:
    result = await harness.server.reservations.reserve_now(
        "cp-1",
        connector_id,
        reservation_id=reservation_id,
        expires_at=soon() if expires_at is None else expires_at,
        id_tag=id_tag,
    )
    return result.status


async def test_the_server_offers_the_reservation_port(harness: Harness) -> None:
    assert isinstance(harness.server.reservations, ReservationCommands)
    assert isinstance(harness.commands16, ReservationCommands)


async def test_an_available_connector_is_reserved_and_reported_reserved(harness: Harness) -> None:
    async with running(harness, connectors=2) as sim:
        at = datetime(2031, 5, 6, 7, 8, 9, 123_000, tzinfo=UTC)
        result = await harness.server.reservations.reserve_now(
            "cp-1", 2, reservation_id=41, expires_at=at, id_tag="RESERVED-1"
        )
        assert (result.status, result.detail) == (CommandStatus.ACCEPTED, "")
        sent = [c.payload for c in sim.received_calls if c.action == "ReserveNow"]
        assert sent == [
            {
                "connectorId": 2,
                "expiryDate": "2031-05-06T07:08:09.123Z",
                "idTag": "RESERVED-1",
                "reservationId": 41,
            }
        ]
        await harness.sink.wait_for(
            ConnectorStatusChanged, lambda e: e.connector_id == 2 and e.status == "Reserved"
        )
        assert [r.reservation_id for r in sim.reservations.held] == [41]
        assert sim.connectors[1].status == "Available"


@pytest.mark.parametrize(
    ("setup", "answer"),
    [
        ("plugged", "Occupied"),
        ("charging", "Occupied"),
        ("reserved", "Occupied"),
        ("inoperative", "Unavailable"),
        ("faulted", "Faulted"),
        ("no such connector", "Rejected"),
    ],
)
async def test_a_connector_that_is_not_available_is_not_reserved(
    harness: Harness, setup: str, answer: str
) -> None:
    async with running(harness) as sim:
        connector = 1
        if setup == "plugged":
            await sim.plug(1)
        elif setup == "charging":
            await sim.plug(1)
            tag = harness.core.issue_id_tag("cp-1")
            assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
            await harness.sink.wait_for(TransactionStarted)
        elif setup == "reserved":
            assert await reserve(harness, reservation_id=1) is CommandStatus.ACCEPTED
        elif setup == "inoperative":
            await sim.apply_availability(1, False)
        elif setup == "faulted":
            await sim.set_status(1, "Faulted")
        else:
            connector = 9
        result = await harness.server.reservations.reserve_now(
            "cp-1", connector, reservation_id=7, expires_at=soon(), id_tag="RESERVED-1"
        )
        assert (result.status, result.detail) == (CommandStatus.REJECTED, answer)
        assert 7 not in [r.reservation_id for r in sim.reservations.held]


async def test_another_id_tag_is_refused_on_the_reserved_connector(harness: Harness) -> None:
    async with running(harness, plugged=(1,)) as sim:
        await sim.unplug(1)
        assert await reserve(harness) is CommandStatus.ACCEPTED
        await sim.wait_until(lambda: sim.connectors[1].status == "Reserved")
        stranger = harness.core.issue_id_tag("cp-1")
        refused = await harness.server.commands.remote_start("cp-1", 1, stranger)
        assert (refused.status, refused.detail) == (CommandStatus.REJECTED, "Rejected")
        with pytest.raises(ConnectorReserved):
            await sim.start_transaction(1, stranger)
        actions = [c.action for c in sim.received_calls]
        assert "StartTransaction" not in [a for a in actions]
        assert not any(isinstance(e, TransactionStarted) for e in harness.sink.events)
        assert sim.connectors[1].status == "Reserved"


async def test_a_remote_start_without_a_connector_avoids_a_connector_reserved_for_another(
    harness: Harness,
) -> None:
    async with running(harness, connectors=2, plugged=(1, 2)) as sim:
        await sim.unplug(1)
        assert await reserve(harness) is CommandStatus.ACCEPTED
        await sim.plug(1)  # the reserved driver's neighbour cannot take connector 1 anyway
        stranger = harness.core.issue_id_tag("cp-1")
        answer = sim.reservations.on_remote_start_transaction({"idTag": stranger})
        assert answer.payload == {"status": "Accepted"}
        assert answer.then is not None
        await answer.then()
        assert sim.connectors[1].transaction_id is None
        await harness.sink.wait_for(TransactionStarted, lambda e: e.connector_id == 2)


async def test_the_reserved_id_tag_starts_and_its_start_carries_the_reservation_id(
    harness: Harness,
) -> None:
    async with running(harness) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        assert await reserve(harness, id_tag=tag, reservation_id=12) is CommandStatus.ACCEPTED
        await sim.wait_until(lambda: sim.connectors[1].status == "Reserved")
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
        await sim.plug(1)
        started = await harness.sink.wait_for(TransactionStarted)
        assert (started.connector_id, started.id_tag, started.reservation_id) == (1, tag, 12)
        start = [c for c in sim.received_calls if c.action == "RemoteStartTransaction"]
        assert len(start) == 1
        assert sim.reservations.held == []
        await sim.wait_until(lambda: sim.connectors[1].status == "Charging")
        # Used up: cancelling it now finds nothing.
        gone = await harness.server.reservations.cancel_reservation("cp-1", 12)
        assert (gone.status, gone.detail) == (CommandStatus.REJECTED, "Rejected")


async def test_a_local_start_of_the_reserved_id_tag_carries_the_reservation_id(
    harness: Harness,
) -> None:
    async with running(harness) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        assert await reserve(harness, id_tag=tag, reservation_id=13) is CommandStatus.ACCEPTED
        answer = await sim.start_transaction(1, tag)
        assert answer["idTagInfo"]["status"] == "Accepted"
        started = await harness.sink.wait_for(TransactionStarted)
        assert started.reservation_id == 13


async def test_at_its_expiry_the_reservation_ends_and_the_connector_is_available(
    harness: Harness,
) -> None:
    async with running(harness) as sim:
        expiry = datetime.now(UTC) + timedelta(seconds=0.3)
        assert await reserve(harness, expires_at=expiry) is CommandStatus.ACCEPTED
        await harness.sink.wait_for(
            ConnectorStatusChanged, lambda e: e.connector_id == 1 and e.status == "Reserved"
        )
        seen = len(harness.sink.events)
        await harness.sink.wait_for(
            ConnectorStatusChanged,
            lambda e: e.connector_id == 1 and e.status == "Available",
            after=seen,
        )
        assert sim.reservations.held == []
        assert reported(harness, 1)[-2:] == ["Reserved", "Available"]
        # Anyone may start now.
        stranger = harness.core.issue_id_tag("cp-1")
        assert (await harness.server.commands.remote_start("cp-1", 1, stranger)).accepted


async def test_a_cancelled_reservation_frees_the_connector(harness: Harness) -> None:
    async with running(harness) as sim:
        assert await reserve(harness) is CommandStatus.ACCEPTED
        await sim.wait_until(lambda: sim.connectors[1].status == "Reserved")
        seen = len(harness.sink.events)
        result = await harness.server.reservations.cancel_reservation("cp-1", 7)
        assert (result.status, result.detail) == (CommandStatus.ACCEPTED, "")
        assert [c.payload for c in sim.received_calls if c.action == "CancelReservation"] == [
            {"reservationId": 7}
        ]
        await harness.sink.wait_for(
            ConnectorStatusChanged,
            lambda e: e.connector_id == 1 and e.status == "Available",
            after=seen,
        )
        stranger = harness.core.issue_id_tag("cp-1")
        assert (await harness.server.commands.remote_start("cp-1", 1, stranger)).accepted


async def test_cancelling_an_unknown_reservation_is_rejected(harness: Harness) -> None:
    async with running(harness) as sim:
        result = await harness.server.reservations.cancel_reservation("cp-1", 999)
        assert (result.status, result.detail) == (CommandStatus.REJECTED, "Rejected")
        assert sim.connectors[1].status == "Available"


async def test_the_same_reservation_id_again_replaces_the_reservation(harness: Harness) -> None:
    async with running(harness, connectors=2) as sim:
        assert await reserve(harness, connector_id=1) is CommandStatus.ACCEPTED
        await sim.wait_until(lambda: sim.connectors[1].status == "Reserved")
        assert await reserve(harness, connector_id=2) is CommandStatus.ACCEPTED
        await sim.wait_until(
            lambda: (
                (sim.connectors[1].status, sim.connectors[2].status) == ("Available", "Reserved")
            )
        )
        assert [(r.reservation_id, r.connector_id) for r in sim.reservations.held] == [(7, 2)]


async def test_an_offline_charger_is_sent_nothing(harness: Harness) -> None:
    reservations = harness.server.reservations
    reserved = await reservations.reserve_now(
        "cp-1", 1, reservation_id=1, expires_at=soon(), id_tag="T"
    )
    assert reserved.status is CommandStatus.OFFLINE
    assert (await reservations.cancel_reservation("cp-1", 1)).status is CommandStatus.OFFLINE


async def test_a_request_ocpp_16_cannot_carry_is_refused_before_sending(harness: Harness) -> None:
    async with running(harness) as sim:
        reservations = harness.server.reservations
        assert await reserve(harness, id_tag="X" * 21) is CommandStatus.REJECTED
        assert await reserve(harness, id_tag="") is CommandStatus.REJECTED
        naive = datetime(2031, 1, 1)
        assert await reserve(harness, expires_at=naive) is CommandStatus.REJECTED
        assert await reserve(harness, reservation_id=-1) is CommandStatus.REJECTED
        assert await reserve(harness, connector_id=-1) is CommandStatus.REJECTED
        refused = await reservations.cancel_reservation("cp-1", -1)
        assert refused.status is CommandStatus.REJECTED
        sent = {c.action for c in sim.received_calls}
        assert not sent & {"ReserveNow", "CancelReservation"}


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ({"status": "Accepted"}, CommandStatus.ACCEPTED),
        ({"status": "Occupied"}, CommandStatus.REJECTED),
        ({"status": "Faulted"}, CommandStatus.REJECTED),
        ({"status": "Unavailable"}, CommandStatus.REJECTED),
        ({"status": "Rejected"}, CommandStatus.REJECTED),
    ],
)
async def test_the_strict_client_gets_reservations_that_fit_the_schemas(
    harness: Harness, driver: ChargePointDriver, answer: dict[str, str], status: CommandStatus
) -> None:
    await boot(driver, harness)
    for _ in range(3):
        await driver.server_call("ChangeConfiguration")
    for _ in range(3):
        await driver.server_call("TriggerMessage")
    reservations = harness.server.reservations
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)

    await driver.answer("ReserveNow", answer)
    reserved = await reservations.reserve_now(
        "cp-1", 1, reservation_id=2_000_000_000, expires_at=at, id_tag="ABCDEFGHIJ0123456789"
    )
    assert await driver.server_call("ReserveNow") == {
        "connectorId": 1,
        "expiryDate": "2030-01-02T03:04:05.000Z",
        "idTag": "ABCDEFGHIJ0123456789",
        "reservationId": 2_000_000_000,
    }
    expected_detail = "" if status is CommandStatus.ACCEPTED else answer["status"]
    assert (reserved.status, reserved.detail) == (status, expected_detail)

    cancel_answer = "Accepted" if status is CommandStatus.ACCEPTED else "Rejected"
    await driver.answer("CancelReservation", {"status": cancel_answer})
    cancelled = await reservations.cancel_reservation("cp-1", 2_000_000_000)
    assert await driver.server_call("CancelReservation") == {"reservationId": 2_000_000_000}
    assert cancelled.status is status

    # The reserved idTag's StartTransaction carries the reservationId: accepted and passed on.
    tag = harness.core.issue_id_tag("cp-1")
    started = await driver.call(
        "StartTransaction",
        {
            "connectorId": 1,
            "idTag": tag,
            "meterStart": 0,
            "timestamp": "2030-01-02T03:05:00.000Z",
            "reservationId": 2_000_000_000,
        },
    )
    assert started["idTagInfo"]["status"] == "Accepted"
    event = await harness.sink.wait_for(TransactionStarted)
    assert event.reservation_id == 2_000_000_000
    assert driver.validation_failures == []


async def test_a_call_error_or_silence_from_the_charger_is_typed(
    harness: Harness, driver: ChargePointDriver
) -> None:
    await boot(driver, harness)
    reservations = harness.server.reservations
    await driver.answer("ReserveNow", error="NotSupported")
    unsupported = await reservations.reserve_now(
        "cp-1", 1, reservation_id=1, expires_at=soon(), id_tag="T"
    )
    assert unsupported.status is CommandStatus.NOT_SUPPORTED
    await driver.answer("CancelReservation", error="InternalError")
    failed = await reservations.cancel_reservation("cp-1", 1)
    assert failed.status is CommandStatus.ERROR
    assert driver.validation_failures == []


@pytest.fixture(params=["python", pytest.param("ocpp-rpc", marks=pytest.mark.peer)])
async def station(request: pytest.FixtureRequest) -> AsyncIterator[ChargePointDriver]:
    """A 2.0.1 charging station of one kind (ocpp-rpc checks the 2.0.1 schemas strictly)."""
    if request.param == "python":
        made: ChargePointDriver = PythonDriver("ocpp2.0.1")
        yield made
        await made.close()
        return
    rpc = OcppRpcDriver(install_ocpp_rpc(), "ocpp2.0.1")
    await rpc.start()
    yield rpc
    with contextlib.suppress(Exception):
        await rpc.close()
    await rpc.stop()


async def boot_201(station: ChargePointDriver, harness: Harness) -> None:
    await station.connect(harness.url, "cp-1", PASSWORD, protocols=("ocpp2.0.1",))
    answer = await station.call(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "M", "vendorName": "V"}},
    )
    assert answer["status"] == "Accepted"
    await station.server_call("GetBaseReport")  # the end of the post-boot configuration


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        ("Accepted", CommandStatus.ACCEPTED),
        ("Occupied", CommandStatus.REJECTED),
        ("Faulted", CommandStatus.REJECTED),
        ("Unavailable", CommandStatus.REJECTED),
        ("Rejected", CommandStatus.REJECTED),
    ],
)
async def test_a_201_station_gets_reservations_that_fit_the_201_schemas(
    harness: Harness, station: ChargePointDriver, answer: str, status: CommandStatus
) -> None:
    await boot_201(station, harness)
    reservations = harness.server.reservations
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    tag = harness.core.issue_id_tag("cp-1")

    await station.answer("ReserveNow", {"status": answer})
    reserved = await reservations.reserve_now(
        "cp-1", 2, reservation_id=2_000_000_000, expires_at=at, id_tag=tag
    )
    assert await station.server_call("ReserveNow") == {
        "id": 2_000_000_000,
        "expiryDateTime": "2030-01-02T03:04:05.000Z",
        "idToken": {"idToken": tag, "type": "Central"},
        "evseId": 2,
    }
    assert (reserved.status, reserved.detail) == (status, "" if answer == "Accepted" else answer)

    cancel_answer = "Accepted" if status is CommandStatus.ACCEPTED else "Rejected"
    await station.answer("CancelReservation", {"status": cancel_answer})
    cancelled = await reservations.cancel_reservation("cp-1", 2_000_000_000)
    assert await station.server_call("CancelReservation") == {"reservationId": 2_000_000_000}
    assert cancelled.status is status

    # The station says a reservation ended by itself; Strom keeps the last such update.
    update = {"reservationId": 2_000_000_000, "reservationUpdateStatus": "Expired"}
    assert await station.call("ReservationStatusUpdate", update) == {}
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.notifications["ReservationStatusUpdate"] == "Expired"

    # The reserved idToken's transaction names the reservation: passed on with its start.
    started = {
        "eventType": "Started",
        "timestamp": "2030-01-02T03:05:00.000Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-r1"},
        "evse": {"id": 2, "connectorId": 1},
        "idToken": {"idToken": tag, "type": "Central"},
        "reservationId": 2_000_000_000,
        "meterValue": [
            {
                "timestamp": "2030-01-02T03:05:00.000Z",
                "sampledValue": [{"value": 0, "context": "Transaction.Begin"}],
            }
        ],
    }
    await station.call("TransactionEvent", started)
    event = await harness.sink.wait_for(TransactionStarted)
    assert (event.transaction, event.connector_id, event.reservation_id) == (
        "tx-r1",
        2,
        2_000_000_000,
    )
    assert station.validation_failures == []


async def test_a_request_201_cannot_carry_is_refused_before_sending(harness: Harness) -> None:
    station = PythonDriver("ocpp2.0.1")
    try:
        await boot_201(station, harness)
        reservations = harness.server.reservations
        for connector_id, tag in ((0, "T"), (1, "X" * 37)):
            refused = await reservations.reserve_now(
                "cp-1", connector_id, reservation_id=1, expires_at=soon(), id_tag=tag
            )
            assert refused.status is CommandStatus.REJECTED
        assert (await reservations.cancel_reservation("cp-1", -1)).status is (
            CommandStatus.REJECTED
        )
        await station.answer("ReserveNow", {"status": "Accepted"})
        longest = await reservations.reserve_now(
            "cp-1", 1, reservation_id=1, expires_at=soon(), id_tag="X" * 36
        )
        assert longest.accepted
        assert (await station.server_call("ReserveNow"))["id"] == 1
        assert station.validation_failures == []
    finally:
        await station.close()


@contextlib.asynccontextmanager
async def running_201(harness: Harness) -> AsyncIterator[SimulatedChargePoint201]:
    """Strom's simulated 2.0.1 station against the harness, booted and configured."""
    sim = simulated_charge_point(
        SimulatorOptions(
            url=harness.url,
            charger_id="cp-1",
            ocpp_version="2.0.1",
            password=PASSWORD,
            connectors=2,
            reconnect_delay_s=0.05,
        )
    )
    assert isinstance(sim, SimulatedChargePoint201)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(sim.run())
        try:
            await sim.wait_until(
                lambda: any(c.action == "GetBaseReport" for c in sim.received_calls)
            )
            yield sim
        finally:
            sim.stop()
            task.cancel()
    assert sim.validation_failures == []


async def test_the_simulated_201_station_honours_a_reservation(harness: Harness) -> None:
    reservations = harness.server.reservations
    async with running_201(harness) as sim:
        tag = harness.core.issue_id_tag("cp-1")
        reserved = await reservations.reserve_now(
            "cp-1", 1, reservation_id=21, expires_at=soon(), id_tag=tag
        )
        assert reserved.accepted
        await harness.sink.wait_for(
            ConnectorStatusChanged, lambda e: e.connector_id == 1 and e.status == "Reserved"
        )
        # Another EVSE's reservation, or this one's for another idToken, is refused.
        occupied = await reservations.reserve_now(
            "cp-1", 1, reservation_id=22, expires_at=soon(), id_tag="OTHER"
        )
        assert (occupied.status, occupied.detail) == (CommandStatus.REJECTED, "Occupied")
        stranger = harness.core.issue_id_tag("cp-1")
        refused = await harness.server.commands.remote_start("cp-1", 1, stranger)
        assert (refused.status, refused.detail) == (CommandStatus.REJECTED, "Rejected")
        with pytest.raises(ConnectorReserved):
            await sim.start_transaction(1, stranger)
        # The reserved idToken starts; its Started event names the reservation.
        assert (await harness.server.commands.remote_start("cp-1", 1, tag)).accepted
        await sim.plug(1)
        started = await harness.sink.wait_for(TransactionStarted)
        assert (started.connector_id, started.reservation_id) == (1, 21)
        assert sim.reservations.held == []


async def test_a_201_reservation_expires_with_a_status_update_or_is_cancelled(
    harness: Harness,
) -> None:
    reservations = harness.server.reservations
    async with running_201(harness) as sim:
        expiry = datetime.now(UTC) + timedelta(seconds=0.3)
        assert (
            await reservations.reserve_now(
                "cp-1", 2, reservation_id=31, expires_at=expiry, id_tag="T-1"
            )
        ).accepted
        await harness.sink.wait_for(
            ConnectorStatusChanged, lambda e: e.connector_id == 2 and e.status == "Reserved"
        )
        seen = len(harness.sink.events)
        await harness.sink.wait_for(
            ConnectorStatusChanged,
            lambda e: e.connector_id == 2 and e.status == "Available",
            after=seen,
        )

        def expired() -> bool:
            info = harness.server.charger_info("cp-1")
            return (
                info is not None and info.notifications.get("ReservationStatusUpdate") == "Expired"
            )

        await until(expired, "ReservationStatusUpdate Expired")

        assert (
            await reservations.reserve_now(
                "cp-1", 2, reservation_id=32, expires_at=soon(), id_tag="T-2"
            )
        ).accepted
        await sim.wait_until(lambda: sim.connectors[2].status == "Reserved")
        assert (await reservations.cancel_reservation("cp-1", 32)).accepted
        await sim.wait_until(lambda: sim.connectors[2].status == "Available")
        gone = await reservations.cancel_reservation("cp-1", 32)
        assert (gone.status, gone.detail) == (CommandStatus.REJECTED, "Rejected")
        no_evse = await reservations.reserve_now(
            "cp-1", 9, reservation_id=33, expires_at=soon(), id_tag="T-3"
        )
        assert (no_evse.status, no_evse.detail) == (CommandStatus.REJECTED, "Rejected")
