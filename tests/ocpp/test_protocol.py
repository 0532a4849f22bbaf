"""Pure OCPP-J framing, validation and timestamps (no sockets, no event loop)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocpp_server.ocppj import (
    Call,
    CallError,
    CallResult,
    ErrorCode,
    FrameRejected,
    PayloadInvalid,
    UnreadableFrame,
    format_timestamp,
    pack_call,
    pack_error,
    pack_result,
    parse_frame,
    parse_timestamp,
)
from ocpp_server.v16.schemas import validate_call, validate_request, validate_result

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def test_frames_round_trip() -> None:
    call = Call("1", "Heartbeat", {})
    assert parse_frame(pack_call(call)) == call
    assert parse_frame(pack_result("1", {"a": 1})) == CallResult("1", {"a": 1})
    error = parse_frame(pack_error("1", ErrorCode.GENERIC_ERROR, "no"))
    assert error == CallError("1", "GenericError", "no", {})


def test_frames_are_compact_json() -> None:
    assert pack_call(Call("7", "Heartbeat", {})) == '[2,"7","Heartbeat",{}]'


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nope",
        "{}",
        "[]",
        "[2]",
        '[2,5,"A",{}]',
        '[7,"1",{}]',
        '[true,"1","A",{}]',
        '[2.0,"1","A",{}]',
        '[3,"1"]',
        '[4,"1","x"]',
        "NaN",
        '[2,"1","A",NaN]',
    ],
)
def test_unreadable_frames(text: str) -> None:
    with pytest.raises(UnreadableFrame):
        parse_frame(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('[2,"1","Heartbeat"]', ErrorCode.PROTOCOL_ERROR),
        ('[2,"1","Heartbeat",[]]', ErrorCode.FORMATION_VIOLATION),
        ('[2,"1","Heartbeat",{},{}]', ErrorCode.FORMATION_VIOLATION),
        ('[2,"1",null,{}]', ErrorCode.FORMATION_VIOLATION),
        ('[2,"","Heartbeat",{}]', ErrorCode.FORMATION_VIOLATION),
        (f'[2,"{"x" * 37}","Heartbeat",{{}}]', ErrorCode.FORMATION_VIOLATION),
    ],
)
def test_answerable_but_malformed_calls(text: str, code: ErrorCode) -> None:
    with pytest.raises(FrameRejected) as rejected:
        parse_frame(text)
    assert rejected.value.code is code


def test_integers_beyond_64_bits_are_still_json() -> None:
    frame = parse_frame('[2,"1","MeterValues",{"connectorId":123456789012345678901234567890}]')
    assert isinstance(frame, Call)


@given(st.binary())
def test_parsing_arbitrary_bytes_raises_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(UnreadableFrame, FrameRejected):
        parse_frame(data)


@given(st.lists(json_values, max_size=6))
def test_parsing_arbitrary_arrays_raises_only_protocol_errors(items: list[object]) -> None:
    try:
        frame = parse_frame(json.dumps(items))
    except (UnreadableFrame, FrameRejected):
        return
    if isinstance(frame, Call):
        with contextlib.suppress(FrameRejected):
            validate_call(frame)


@given(st.sampled_from(["BootNotification", "StartTransaction", "MeterValues"]), json_values)
def test_validating_arbitrary_payloads_raises_only_frame_rejected(
    action: str, payload: object
) -> None:
    if not isinstance(payload, dict):
        payload = {"x": payload}
    codes: list[ErrorCode] = []
    try:
        validate_call(Call("1", action, payload))
    except FrameRejected as rejected:
        codes.append(rejected.code)
    assert set(codes) <= set(ErrorCode)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"chargePointModel": "m"}, ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION),
        ({"chargePointVendor": 5, "chargePointModel": "m"}, ErrorCode.TYPE_CONSTRAINT_VIOLATION),
        (
            {"chargePointVendor": "v" * 21, "chargePointModel": "m"},
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
        ),
        (
            {"chargePointVendor": "v", "chargePointModel": "m", "x": 1},
            ErrorCode.FORMATION_VIOLATION,
        ),
    ],
)
def test_boot_violations_map_to_ocpp_codes(payload: dict[str, object], code: ErrorCode) -> None:
    with pytest.raises(FrameRejected) as rejected:
        validate_call(Call("1", "BootNotification", payload))
    assert rejected.value.code is code


def test_unknown_action_is_not_implemented() -> None:
    with pytest.raises(FrameRejected) as rejected:
        validate_call(Call("1", "Teleport", {}))
    assert rejected.value.code is ErrorCode.NOT_IMPLEMENTED


def test_lenient_lengths_tolerate_serial_numbers_but_not_id_tags() -> None:
    # The EVlink Smart Wallbox boot (serial numbers of 26 and 33 characters).
    boot = Call(
        "1",
        "BootNotification",
        {
            "chargeBoxSerialNumber": "EVB1A22P2RI3N182341200100350795E5",
            "chargePointModel": "EVlink Smart Wallbox",
            "chargePointSerialNumber": "3N18310641B55ABCDEFGHIJKLM",
            "chargePointVendor": "Schneider Electric",
            "firmwareVersion": "3.4.0.2",
        },
    )
    with pytest.raises(FrameRejected):
        validate_call(boot)
    validate_call(boot, lenient_lengths=True)
    authorize = Call("2", "Authorize", {"idTag": "X" * 21})
    with pytest.raises(FrameRejected):
        validate_call(authorize, lenient_lengths=True)


def test_response_and_request_validation() -> None:
    validate_result("Heartbeat", {"currentTime": "2030-01-01T00:00:00Z"})
    with pytest.raises(PayloadInvalid):
        validate_result("Heartbeat", {"currentTime": "noon"})
    validate_request("Reset", {"type": "Soft"})
    with pytest.raises(PayloadInvalid):
        validate_request("Reset", {"type": "Gentle"})
    with pytest.raises(ValueError, match=r"no OCPP 1\.6"):
        validate_request("Teleport", {})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2030-01-01T10:00:00Z", datetime(2030, 1, 1, 10, tzinfo=UTC)),
        ("2030-01-01T12:00:00+02:00", datetime(2030, 1, 1, 10, tzinfo=UTC)),
        ("2030-01-01T10:00:00.123456789Z", datetime(2030, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2030-01-01T10:00:00", datetime(2030, 1, 1, 10, tzinfo=UTC)),  # no offset: UTC
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["", "2030-01-01", "yesterday", "2030-13-01T00:00:00Z", 5])
def test_bad_timestamps(text: object) -> None:
    with pytest.raises(PayloadInvalid):
        parse_timestamp(text)


def test_timestamps_are_formatted_in_utc_with_milliseconds() -> None:
    moment = datetime(2030, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2030-01-01T10:00:00.123Z"
    assert parse_timestamp(format_timestamp(moment)) == moment.replace(microsecond=123000)
