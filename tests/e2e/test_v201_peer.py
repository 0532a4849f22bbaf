"""An independent OCPP 2.0.1 station through a whole paid session: ocpp-rpc in strict mode.

ocpp-rpc (npm) shares no code with Strom or the Python ``ocpp`` library. In strict mode it
checks every frame both ways against its own copy of the OCPP 2.0.1 schemas: what it sends
before sending, and what Strom sends before answering or accepting it. It takes the simulated
charger's place in front of the whole Strom (database, payments, the fake lightning backend):
boot, status, a payment, RequestStartTransaction, TransactionEvent Started, Updated with meter
values, the driver's withdraw stopping the charge (RequestStopTransaction), Ended, and the
refund of exactly what was paid minus what the energy cost.

ocpp-rpc does not really check date-times (a missing zone passes its format check), so the
test checks every timestamp Strom sent against RFC 3339 with at most three decimals itself.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ocpp_server.v201.messages import remote_start_id
from tests.e2e.conftest import CHARGER, Front, connector_online, running_front
from tests.ocpp.drivers import OcppRpcDriver, install_ocpp_rpc

pytestmark = pytest.mark.peer

PAID_MSAT = 2_000_000
START_WH = 10_000
DELIVERED_WH = 1_236
COST_MSAT = 309_000  # 1,236 Wh at 250 sat/kWh (whole sats: the bill is not rounded)

# OCPP 2.0.1 Part 4 §4.1.6: RFC 3339 with a zone, at most three decimals of a second.
RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:\d{2})")
DATE_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}")


def now() -> str:
    """The current time as a 2.0.1 station writes it (milliseconds, UTC)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def register(wh: float, context: str, unit: str = "Wh") -> list[dict[str, Any]]:
    """One meterValue with the energy register (a JSON number, as the schema wants)."""
    sampled = {
        "value": wh,
        "context": context,
        "measurand": "Energy.Active.Import.Register",
        "unitOfMeasure": {"unit": unit},
    }
    return [{"timestamp": now(), "sampledValue": [sampled]}]


def strings(value: Any) -> Iterator[str]:
    """Every string anywhere in a decoded JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


@pytest.fixture
async def front(tmp_path: Path) -> AsyncIterator[Front]:
    async with running_front(tmp_path) as running:
        yield running


@pytest.fixture
async def station() -> AsyncIterator[OcppRpcDriver]:
    rpc = OcppRpcDriver(install_ocpp_rpc(), "ocpp2.0.1")
    await rpc.start()
    try:
        yield rpc
    finally:
        await rpc.close()
        await rpc.stop()


async def test_ocpp_rpc_strict_201_pays_charges_stops_and_is_refunded_exactly(
    front: Front, station: OcppRpcDriver
) -> None:
    tariff = front.strom.config.profile(CHARGER).tariff.to_tariff()
    assert tariff.cost(DELIVERED_WH, 3600) == COST_MSAT  # the price does not depend on time
    online = connector_online(front.strom)
    await station.connect(front.ocpp_url, CHARGER, front.charger_password)
    boot = await station.call(
        "BootNotification",
        {"reason": "PowerUp", "chargingStation": {"model": "Strict", "vendorName": "ocpp-rpc"}},
    )
    assert boot["status"] == "Accepted"
    assert boot["interval"] > 0
    # The post-boot configuration reached the station and passed its schemas.
    assert (await station.server_call("SetVariables"))["setVariableData"]
    await station.server_call("GetBaseReport")
    status = {"timestamp": now(), "connectorStatus": "Available", "evseId": 1, "connectorId": 1}
    assert await station.call("StatusNotification", status) == {}
    await asyncio.wait_for(online.wait(), 10)
    await station.call("Heartbeat", {})

    # A driver pays; Strom asks the station to start, for the session's idToken.
    status_url, _ = await front.pay(PAID_MSAT)
    start = await station.server_call("RequestStartTransaction", within_s=20)
    assert start["evseId"] == 1
    token = start["idToken"]
    assert token["type"] == "Central"
    assert start["remoteStartId"] == remote_start_id(token["idToken"])

    transaction = str(uuid.uuid4())
    occupied = {**status, "timestamp": now(), "connectorStatus": "Occupied"}
    assert await station.call("StatusNotification", occupied) == {}
    started = await station.call(
        "TransactionEvent",
        {
            "eventType": "Started",
            "timestamp": now(),
            "triggerReason": "RemoteStart",
            "seqNo": 0,
            "transactionInfo": {
                "transactionId": transaction,
                "chargingState": "Charging",
                "remoteStartId": start["remoteStartId"],
            },
            "idToken": token,
            "evse": {"id": 1, "connectorId": 1},
            "meterValue": register(START_WH, "Transaction.Begin"),
        },
    )
    assert started["idTokenInfo"]["status"] == "Accepted"
    await front.wait_state(status_url, "charging")

    for seq_no, meter in enumerate(
        (register(10_600, "Sample.Periodic"), register(11.236, "Sample.Periodic", "kWh")),
        start=1,
    ):
        updated = {
            "eventType": "Updated",
            "timestamp": now(),
            "triggerReason": "MeterValuePeriodic",
            "seqNo": seq_no,
            "transactionInfo": {"transactionId": transaction, "chargingState": "Charging"},
            "meterValue": meter,
        }
        assert await station.call("TransactionEvent", updated) == {}
    charging = await front.get(status_url)
    assert charging["energy_wh"] == DELIVERED_WH

    # The driver opens the withdraw link: Strom stops the charge and waits for the end.
    withdraw_url = str(charging["withdraw_url"]).replace("lnurlw://", "http://", 1)
    opening = asyncio.create_task(front.get(withdraw_url))
    stop = await station.server_call("RequestStopTransaction", within_s=20)
    assert stop == {"transactionId": transaction}
    ended = {
        "eventType": "Ended",
        "timestamp": now(),
        "triggerReason": "RemoteStop",
        "seqNo": 3,
        "transactionInfo": {
            "transactionId": transaction,
            "chargingState": "EVConnected",
            "stoppedReason": "Remote",
        },
        "meterValue": register(START_WH + DELIVERED_WH, "Transaction.End"),
    }
    assert await station.call("TransactionEvent", ended) == {}
    offer = await opening
    assert offer["maxWithdrawable"] == PAID_MSAT - COST_MSAT

    before = await front.wallet.received_msat()
    invoice = await front.wallet.create_invoice(PAID_MSAT - COST_MSAT, memo="refund")
    claim = await front.get(str(offer["callback"]), k1=str(offer["k1"]), pr=invoice.bolt11)
    assert claim == {"status": "OK"}
    final = await front.wait_state(status_url, "refunded")
    assert (final["paid_msat"], final["consumed_msat"], final["refunded_msat"]) == (
        PAID_MSAT,
        COST_MSAT,
        PAID_MSAT - COST_MSAT,
    )
    assert final["energy_wh"] == DELIVERED_WH
    assert await front.wallet.received_msat() - before == PAID_MSAT - COST_MSAT
    await front.ledgers_balance()

    # Nothing Strom sent broke ocpp-rpc's 2.0.1 schemas, and every timestamp is RFC 3339.
    assert station.validation_failures == []
    stamps = [
        text
        for frame in station.frames
        for text in strings(frame)
        if DATE_LIKE.match(text) and text not in (transaction, token["idToken"])
    ]
    assert stamps, "Strom sent no timestamp (BootNotification and Heartbeat carry one)"
    assert [s for s in stamps if not RFC3339.fullmatch(s)] == []
