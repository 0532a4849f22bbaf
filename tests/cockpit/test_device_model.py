"""An OCPP 2.0.1 charger through the operator's API: its device model read, set and reported
over a real websocket, and the security events it sends, as the admin UI shows them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cockpit.conftest import CHARGER, Cockpit, start_cockpit

pytestmark = pytest.mark.slow

TIMEOUT = "TxCtrlr/EVConnectionTimeOut"  # ReadWrite integer in the simulator, 60 at boot


@pytest.fixture
async def cockpit(tmp_path: Path) -> AsyncIterator[Cockpit]:
    async for running in start_cockpit(tmp_path, ocpp_version="2.0.1"):
        yield running


async def detail(cockpit: Cockpit) -> dict[str, Any]:
    answer = await cockpit.call("GET", f"/chargers/{CHARGER}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def reported(cockpit: Cockpit, key: str, value: str, within_s: float = 15) -> None:
    """Wait until the charger's reported variables hold ``key`` = ``value``."""

    async def poll() -> None:
        while True:
            if (await detail(cockpit))["variables"].get(key) == value:
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), within_s)


async def variables(cockpit: Cockpit, verb: str, *entries: dict[str, Any]) -> dict[str, Any]:
    answer = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/variables/{verb}", json={"variables": list(entries)}
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_an_operator_reads_sets_and_reports_the_device_model_and_each_call_is_audited(
    cockpit: Cockpit,
) -> None:
    # The boot's own full report has arrived: the UI lists it.
    await reported(cockpit, TIMEOUT, "60")
    shown = await detail(cockpit)
    assert shown["ocpp_version"] == "ocpp2.0.1"
    assert shown["variables"]["SecurityCtrlr/Identity"] == CHARGER
    listed = (await cockpit.call("GET", "/chargers")).json()["items"]
    assert [c["ocpp_version"] for c in listed] == ["ocpp2.0.1"]

    got = await variables(
        cockpit,
        "get",
        {"component": "TxCtrlr", "variable": "EVConnectionTimeOut"},
        {"component": "TxCtrlr", "variable": "NoSuchVariable"},
        {"component": "NoSuchCtrlr", "variable": "Enabled"},
    )
    assert got["status"] == "Accepted"
    assert [(v["variable"], v["status"], v["value"]) for v in got["variables"]] == [
        ("EVConnectionTimeOut", "Accepted", "60"),
        ("NoSuchVariable", "UnknownVariable", None),
        ("Enabled", "UnknownComponent", None),
    ]

    # A typed result per variable: the integer is taken, a word for it and a read-only
    # variable are rejected, and the charger keeps what it had for those.
    set_ = await variables(
        cockpit,
        "set",
        {"component": "TxCtrlr", "variable": "EVConnectionTimeOut", "value": "45"},
        {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "soon"},
        {"component": "ChargingStation", "variable": "Model", "value": "Other"},
    )
    assert [(v["variable"], v["status"]) for v in set_["variables"]] == [
        ("EVConnectionTimeOut", "Accepted"),
        ("HeartbeatInterval", "Rejected"),
        ("Model", "Rejected"),
    ]
    back = await variables(
        cockpit,
        "get",
        {"component": "TxCtrlr", "variable": "EVConnectionTimeOut"},
        {"component": "ChargingStation", "variable": "Model"},
    )
    assert [v["value"] for v in back["variables"]] == [
        "45",
        shown["variables"]["ChargingStation/Model"],
    ]
    assert (await detail(cockpit))["variables"][TIMEOUT] == "60"  # until it reports again

    report = await cockpit.call(
        "POST", f"/chargers/{CHARGER}/commands/get-base-report", json={"report": "FullInventory"}
    )
    assert report.status_code == 200, report.text
    assert report.json()["status"] == "Accepted"
    await reported(cockpit, TIMEOUT, "45")  # the NotifyReport pages arrived

    audit = (await cockpit.call("GET", "/audit")).json()["items"]
    trail = [(e["action"], e["target"], e["actor"]) for e in reversed(audit)]
    assert trail == [
        ("api.charger.get_variables", CHARGER, "token:ops"),
        ("api.charger.set_variables", CHARGER, "token:ops"),
        ("api.charger.get_variables", CHARGER, "token:ops"),
        ("api.charger.get_base_report", CHARGER, "token:ops"),
    ]
    assert audit[2]["detail"]["variables"] == {
        "TxCtrlr/EVConnectionTimeOut": "Accepted",
        "OCPPCommCtrlr/HeartbeatInterval": "Rejected",
        "ChargingStation/Model": "Rejected",
    }
    assert audit[0]["detail"] == {"report": "FullInventory", "charger": "Accepted", "http": 200}


async def test_a_security_event_the_charger_sends_shows_in_its_detail_and_on_the_list(
    cockpit: Cockpit,
) -> None:
    listed = (await cockpit.call("GET", "/chargers")).json()["items"][0]
    assert (listed["security_event_count"], listed["latest_security_event"]) == (0, None)
    assert (await detail(cockpit))["security_events"] == []

    at = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
    for kind, info in [("SettingSystemTime", None), ("InvalidCsmsCertificate", "expired")]:
        payload: dict[str, Any] = {"type": kind, "timestamp": at.isoformat()}
        if info:
            payload["techInfo"] = info
        assert await cockpit.stack.charger.call("SecurityEventNotification", payload) == {}

    events = (await detail(cockpit))["security_events"]
    assert events == [
        {"type": "SettingSystemTime", "timestamp": "2025-03-14T09:26:53Z", "tech_info": None},
        {
            "type": "InvalidCsmsCertificate",
            "timestamp": "2025-03-14T09:26:53Z",
            "tech_info": "expired",
        },
    ]
    listed = (await cockpit.call("GET", "/chargers")).json()["items"][0]
    assert listed["security_event_count"] == 2
    assert listed["latest_security_event"] == events[-1]
    # Kept in the audit log too: it outlives a restart of Strom.
    audit = (await cockpit.call("GET", "/audit")).json()["items"]
    kept = [e for e in audit if e["action"] == "charger_security_event"]
    assert [(e["actor"], e["target"], e["detail"]["type"]) for e in reversed(kept)] == [
        (f"charger:{CHARGER}", CHARGER, "SettingSystemTime"),
        (f"charger:{CHARGER}", CHARGER, "InvalidCsmsCertificate"),
    ]
    assert kept[0]["detail"] == {
        "type": "InvalidCsmsCertificate",
        "at": "2025-03-14T09:26:53+00:00",
        "tech_info": "expired",
    }
