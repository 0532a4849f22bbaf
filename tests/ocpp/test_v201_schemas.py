"""OCPP 2.0.1 payload validation: the official schemas, with the error codes of OCPP-J 2.0.1."""

from __future__ import annotations

from importlib import resources
from typing import Any

import pytest

from ocpp_server.ocppj import Call, ErrorCode, FrameRejected, PayloadInvalid
from ocpp_server.v16 import schemas as v16_schemas
from ocpp_server.v201.schemas import (
    KNOWN_ACTIONS,
    validate_call,
    validate_request,
    validate_result,
    wire_code,
)

BOOT: dict[str, Any] = {
    "reason": "PowerUp",
    "chargingStation": {"model": "M1", "vendorName": "V"},
}


def test_every_action_with_a_shipped_schema_is_known_and_no_other() -> None:
    directory = resources.files("ocpp.v201").joinpath("schemas")
    shipped = {
        entry.name.removesuffix("Request.json")
        for entry in directory.iterdir()
        if entry.name.endswith("Request.json")
    }
    assert shipped == set(KNOWN_ACTIONS)


def test_a_valid_boot_passes_and_custom_data_is_allowed() -> None:
    validate_call(Call("1", "BootNotification", BOOT))
    with_custom = {**BOOT, "customData": {"vendorId": "acme", "anything": [1, 2]}}
    validate_call(Call("2", "BootNotification", with_custom))


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"reason": "PowerUp"}, ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION),
        ({**BOOT, "extra": 1}, ErrorCode.FORMAT_VIOLATION),
        ({**BOOT, "reason": "Bored"}, ErrorCode.PROPERTY_CONSTRAINT_VIOLATION),
        ({**BOOT, "reason": 3}, ErrorCode.TYPE_CONSTRAINT_VIOLATION),
        (
            {"reason": "PowerUp", "chargingStation": {"model": "M" * 21, "vendorName": "V"}},
            ErrorCode.TYPE_CONSTRAINT_VIOLATION,
        ),
    ],
)
def test_violations_get_the_2_0_1_error_codes(payload: dict[str, Any], code: ErrorCode) -> None:
    with pytest.raises(FrameRejected) as caught:
        validate_call(Call("7", "BootNotification", payload))
    assert caught.value.code is code
    assert caught.value.unique_id == "7"


def test_an_action_2_0_1_does_not_define_is_not_implemented() -> None:
    with pytest.raises(FrameRejected) as caught:
        validate_call(Call("1", "StartTransaction", {}))
    assert caught.value.code is ErrorCode.NOT_IMPLEMENTED


def test_a_bad_date_time_is_a_property_violation() -> None:
    payload = {
        "timestamp": "yesterday",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }
    with pytest.raises(FrameRejected) as caught:
        validate_call(Call("1", "StatusNotification", payload))
    assert caught.value.code is ErrorCode.PROPERTY_CONSTRAINT_VIOLATION


def test_lenient_lengths_never_relax_id_tokens() -> None:
    long_model = {"reason": "PowerUp", "chargingStation": {"model": "M" * 30, "vendorName": "V"}}
    validate_call(Call("1", "BootNotification", long_model), lenient_lengths=True)
    long_token = {"idToken": {"idToken": "T" * 37, "type": "Central"}}
    with pytest.raises(FrameRejected):
        validate_call(Call("2", "Authorize", long_token), lenient_lengths=True)


def test_results_and_requests_are_checked() -> None:
    validate_result("Heartbeat", {"currentTime": "2024-01-01T00:00:00Z"})
    with pytest.raises(PayloadInvalid) as caught:
        validate_result("Heartbeat", {})
    assert caught.value.code is ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    validate_request("Reset", {"type": "Immediate"})
    with pytest.raises(PayloadInvalid):
        validate_request("Reset", {"type": "Hard"})
    with pytest.raises(ValueError, match=r"OCPP 2\.0\.1"):
        validate_request("RemoteStartTransaction", {})


def test_each_version_spells_the_renamed_codes_its_own_way() -> None:
    assert wire_code(ErrorCode.FORMATION_VIOLATION) is ErrorCode.FORMAT_VIOLATION
    assert (
        wire_code(ErrorCode.OCCURENCE_CONSTRAINT_VIOLATION)
        is ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION
    )
    assert wire_code(ErrorCode.SECURITY_ERROR) is ErrorCode.SECURITY_ERROR
    assert v16_schemas.wire_code(ErrorCode.FORMAT_VIOLATION) is ErrorCode.FORMATION_VIOLATION
