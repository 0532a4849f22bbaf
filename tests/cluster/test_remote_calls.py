"""The remote calls: what crosses the bus comes back the same, anything else is refused."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from ocpp_server.remote_calls import METHODS, BadCall, decode_result, encode_result
from ocpp_server.v16 import GetConfigurationResult
from ocpp_server.v16.commands import ConfigurationKey
from strom_core.ports import CommandResult, CommandStatus, ScreenMessage
from strom_core.ports.local_list import ListEntry, ListUpdate
from strom_core.ports.power import CompositeSchedule, SchedulePeriod

AT = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _across(name: str, args: Mapping[str, object]) -> dict[str, object]:
    method = METHODS[name]
    return method.decode_args(orjson.loads(orjson.dumps(method.encode_args(args))))


def test_arguments_of_every_kind_cross_the_bus_unchanged() -> None:
    plan = {
        "connector_id": 1,
        "transaction": "42",
        "start": AT,
        "duration_s": 3600,
        "periods": (SchedulePeriod(0, 0), SchedulePeriod(1800, 7_000)),
    }
    assert _across("plan_session", plan) == plan
    show = {"message": ScreenMessage(3, 1, "lightning:LNURL1", uri=True, urgent=True)}
    assert _across("show", show) == show
    assert _across("show_cost", {"connector_id": 1, "total": Decimal("1.25")}) == {
        "connector_id": 1,
        "total": Decimal("1.25"),
    }
    update = {
        "version": 7,
        "update": ListUpdate.DIFFERENTIAL,
        "entries": (ListEntry("CARD-1"), ListEntry("CARD-2", accepted=False)),
    }
    assert _across("send_local_list", update) == update


def test_results_cross_the_bus_unchanged() -> None:
    schedule = CompositeSchedule(
        CommandResult(CommandStatus.ACCEPTED),
        1,
        "2026-12-08T09:00:00Z",
        600,
        (SchedulePeriod(0, 4000),),
    )
    config = GetConfigurationResult(
        CommandResult(CommandStatus.ACCEPTED),
        (ConfigurationKey("HeartbeatInterval", False, "60"), ConfigurationKey("X", True, None)),
        ("Unknown",),
    )
    for name, result in (("composite_schedule", schedule), ("get_configuration", config)):
        wire = orjson.loads(orjson.dumps(encode_result(METHODS[name], result)))
        assert decode_result(METHODS[name], wire) == result


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("remote_start", {"connector_id": "1", "id_tag": "T"}),  # a string for an int
        ("remote_start", {"connector_id": True, "id_tag": "T"}),  # a boolean for an int
        ("remote_start", {"connector_id": 1}),  # an argument missing
        ("reset", {"hard": True, "charger_id": "other"}),  # one too many
        (
            "reserve_now",
            {
                "connector_id": 1,
                "reservation_id": 2,
                "expires_at": "2026-12-08T09:00:00",
                "id_tag": "T",
            },
        ),
    ],
)
def test_a_mistyped_call_is_refused(name: str, args: dict[str, object]) -> None:
    with pytest.raises(BadCall):
        METHODS[name].decode_args(args)


def test_only_the_registered_methods_exist() -> None:
    assert "__init__" not in METHODS
    assert "_call" not in METHODS
    assert {"remote_start", "composite_schedule", "get_configuration", "show"} <= set(METHODS)
