"""OCPP 2.0.1 firmware quirks Strom survives: each test names the quirk and fails without its
handling (a raw 2.0.1 station over a real websocket, the in-memory core)."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ocpp_server import ChargerAuth, Quirk, hash_password
from ocpp_server.ocppj import ErrorCode, parse_timestamp
from ocpp_server.schemas import ErrorSpelling
from ocpp_server.v201 import schemas as v201_schemas
from ocpp_server.v201.meter import register_readings
from strom_core.ports import ConnectorStatusChanged, TransactionStarted
from tests.ocpp.conftest import FAST_HASH, PASSWORD, Harness
from tests.ocpp.test_v201_server import T0, T2, event, register, station


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2023-10-19T15:28:07", "2023-10-19T15:28:07"),  # no zone: read as UTC
        ("2023-10-19T15:28:07+03", "2023-10-19T12:28:07"),  # short offset
        ("2023-10-19T15:28:07+0300", "2023-10-19T12:28:07"),
        ("2023-10-19T15:28:07.123456789+10:00", "2023-10-19T05:28:07.123456"),
    ],
)
def test_timestamps_without_zone_short_offsets_and_long_fractions_are_read(
    sent: str, utc: str
) -> None:
    assert parse_timestamp(sent) == datetime.fromisoformat(utc).replace(tzinfo=UTC)


async def test_a_started_event_with_a_short_offset_is_billed(harness: Harness) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    async with station(harness) as driver:
        start = event("Started", 0, token=tag, at="2025-01-01T12:00:00+02", meter=[register(5)])
        await driver.call("TransactionEvent", start)
    recorded = harness.core.transaction("tx-1", "cp-1")
    assert recorded is not None
    assert recorded.started_at == datetime(2025, 1, 1, 10, tzinfo=UTC)


def test_meter_values_without_context_location_measurand_or_unit_use_the_spec_defaults() -> None:
    bare = {"timestamp": T0, "sampledValue": [{"value": 1234.4}]}
    readings, notes = register_readings([bare])
    assert [(r.register_wh, r.context) for r in readings] == [(1234, "Sample.Periodic")]
    assert notes == []


def test_a_zero_begin_register_next_to_the_periodic_one_is_not_the_reading() -> None:
    both = {
        "timestamp": T0,
        "sampledValue": [
            {"value": 0, "context": "Transaction.Begin"},
            {"value": 5000, "context": "Sample.Periodic"},
        ],
    }
    [reading] = register_readings([both])[0]
    assert reading.register_wh == 5000


async def test_evse_only_in_the_first_event_and_no_connector_id(harness: Harness) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    async with station(harness) as driver:
        start = event("Started", 0, token=tag, meter=[register(100, "Transaction.Begin")])
        start["evse"] = {"id": 2}  # no connectorId
        await driver.call("TransactionEvent", start)
        later = [
            event("Updated", 1, meter=[register(300)]),
            event("Ended", 2, at=T2, meter=[register(700, "Transaction.End")]),
        ]
        for payload in later:
            del payload["evse"]
            await driver.call("TransactionEvent", payload)
    recorded = harness.core.transaction("tx-1", "cp-1")
    assert recorded is not None
    assert (recorded.connector_id, recorded.energy_wh) == (2, 600)


async def test_an_empty_no_authorization_token_is_no_payment(harness: Harness) -> None:
    async with station(harness) as driver:
        start = event("Started", 0, trigger="CablePluggedIn", meter=[register(10)])
        start["idToken"] = {"idToken": "", "type": "NoAuthorization"}
        assert await driver.call("TransactionEvent", start) == {}
        end = event("Ended", 1, meter=[register(90, "Transaction.End")])
        end["idToken"] = {"idToken": "", "type": "NoAuthorization"}
        await driver.call("TransactionEvent", end)
    assert harness.core.transaction("tx-1", "cp-1") is None
    assert harness.sink.of_type(TransactionStarted) == []


async def test_a_uuid_transaction_id_is_kept_as_an_opaque_string(harness: Harness) -> None:
    tag = harness.core.issue_id_tag("cp-1")
    reference = "0E8F6A52-3C1B-4B8E-9C73-1F2A3B4C5D6E"
    async with station(harness) as driver:
        start = event("Started", 0, tx=reference, token=tag, meter=[register(1)])
        await driver.call("TransactionEvent", start)
    assert harness.core.transaction(reference, "cp-1") is not None


async def test_station_status_and_degenerate_evse_connector_pairs(harness: Harness) -> None:
    async with station(harness) as driver:
        reports = [(0, 0, "Unavailable"), (1, 0, "Faulted"), (0, 1, "Faulted")]
        for evse, connector, status in reports:
            await driver.call(
                "StatusNotification",
                {
                    "timestamp": T0,
                    "connectorStatus": status,
                    "evseId": evse,
                    "connectorId": connector,
                },
            )
    changes = [(e.connector_id, e.status) for e in harness.sink.of_type(ConnectorStatusChanged)]
    assert (0, "Unavailable") in changes  # (0, 0) is the station
    assert all(status != "Faulted" for _, status in changes)  # (1, 0) and (0, 1) dropped


async def test_a_leading_empty_subprotocol_entry_is_ignored(harness: Harness) -> None:
    """Keba x30 sends ``Sec-WebSocket-Protocol: ,ocpp2.0.1`` (a raw HTTP upgrade here)."""
    port = harness.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(b"0123456789abcdef").decode()
    writer.write(
        (
            f"GET /ocpp/cp-open HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ,ocpp2.0.1\r\n\r\n"
        ).encode()
    )
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    writer.close()
    assert head.startswith("HTTP/1.1 101")
    assert "Sec-WebSocket-Protocol: ocpp2.0.1\r\n" in head


async def _handshake(harness: Harness, charger_id: str, user: str, password: str) -> int:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        async with connect(
            f"{harness.url}/{charger_id}",
            subprotocols=["ocpp2.0.1"],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Basic {token}"},
        ):
            return 101
    except InvalidStatus as exc:
        return int(exc.response.status_code)


async def test_any_basic_auth_username_only_with_the_flag_and_the_right_password(
    harness: Harness,
) -> None:
    hashed = hash_password(PASSWORD, log2_n=FAST_HASH)
    harness.chargers.add(ChargerAuth("cp-serial", hashed))
    assert await _handshake(harness, "cp-serial", "SN-123", PASSWORD) == 401
    flagged = frozenset({Quirk.ANY_BASIC_AUTH_USERNAME})
    harness.chargers.add(ChargerAuth("cp-serial", hashed, flagged))
    assert await _handshake(harness, "cp-serial", "SN-123", PASSWORD) == 101
    assert await _handshake(harness, "cp-serial", "SN-123", "wrong-password-here!!") == 401


async def test_over_long_strings_pass_only_with_lenient_string_lengths(harness: Harness) -> None:
    boot: dict[str, Any] = {
        "reason": "PowerUp",
        "chargingStation": {"model": "M", "vendorName": "V", "serialNumber": "S" * 26},
    }
    async with station(harness) as driver:
        with pytest.raises(Exception, match="TypeConstraintViolation"):
            await driver.call("BootNotification", boot)
    harness.chargers.add(ChargerAuth("cp-quirky", None, frozenset({Quirk.LENIENT_STRING_LENGTHS})))
    async with station(harness, "cp-quirky") as driver:
        assert (await driver.call("BootNotification", boot))["status"] == "Accepted"


def test_both_occurrence_spellings_are_read_and_table_8_s_is_sent() -> None:
    spelling: ErrorSpelling = v201_schemas.SPELLING
    for received in ("OccurenceConstraintViolation", "OccurrenceConstraintViolation"):
        assert spelling.wire_code(ErrorCode(received)) == "OccurrenceConstraintViolation"


async def test_notify_report_pages_are_collected_until_the_last(harness: Harness) -> None:
    def page(seq: int, tbc: bool, name: str, value: str) -> dict[str, Any]:
        return {
            "requestId": 7,
            "generatedAt": T0,
            "seqNo": seq,
            "tbc": tbc,
            "reportData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": name},
                    "variableAttribute": [{"type": "Actual", "value": value}],
                }
            ],
        }

    async with station(harness) as driver:
        assert await driver.call("NotifyReport", page(0, True, "HeartbeatInterval", "300")) == {}
        assert await driver.call("NotifyReport", page(1, False, "OfflineThreshold", "60")) == {}
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.variables["OCPPCommCtrlr/HeartbeatInterval"] == "300"
    assert info.variables["OCPPCommCtrlr/OfflineThreshold"] == "60"


async def test_security_events_are_kept_per_charger_bounded_newest_last(harness: Harness) -> None:
    async with station(harness) as driver:
        for n in range(55):
            payload = {"type": f"Event{n}", "timestamp": T0, "techInfo": f"info {n}"}
            assert await driver.call("SecurityEventNotification", payload) == {}
    info = harness.server.charger_info("cp-1")
    assert info is not None
    assert info.ocpp_version == "ocpp2.0.1"
    assert len(info.security_events) == 50
    assert (info.security_events[-1].type, info.security_events[-1].tech_info) == (
        "Event54",
        "info 54",
    )
