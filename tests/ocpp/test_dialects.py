"""Commands follow the OCPP version each charger's connection negotiated.

A second, test-only dialect (subprotocol ``strom.test``) is served next to OCPP 1.6; its command
set sends nothing and records what it was asked. A 1.6 charger and a ``strom.test`` charger are
connected at the same time and each gets the commands of its own version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from websockets.asyncio.client import connect

from ocpp_server._connection import ChargerConnection, ConnectionLookup, Dialect, DialectContext
from ocpp_server.ocppj import Call
from ocpp_server.v16 import SUBPROTOCOL, dialect
from strom_core.ports import (
    ChargerOffline,
    ChargerOnline,
    CommandResult,
    CommandStatus,
)
from tests.ocpp.conftest import Harness, HarnessFactory, running

TEST_SUBPROTOCOL: Final = "strom.test"


class NoSchemas:
    """The test version validates nothing."""

    def validate_call(self, call: Call, *, lenient_lengths: bool = False) -> None:
        return None

    def validate_result(
        self, action: str, payload: Mapping[str, Any], *, lenient_lengths: bool = False
    ) -> None:
        return None

    def validate_request(self, action: str, payload: Mapping[str, Any]) -> None:
        return None


class RecordingCommands:
    """The test version's command set: records every command and accepts it."""

    def __init__(self, connection: ConnectionLookup) -> None:
        self.connection = connection
        self.calls: list[tuple[Any, ...]] = []

    def _record(self, *call: Any) -> CommandResult:
        self.calls.append(call)
        return CommandResult(CommandStatus.ACCEPTED)

    def is_online(self, charger_id: str) -> bool:
        conn = self.connection(charger_id)
        return conn is not None and conn.online

    async def remote_start(self, charger_id: str, connector_id: int, id_tag: str) -> CommandResult:
        return self._record("remote_start", charger_id, connector_id, id_tag)

    async def remote_stop(self, charger_id: str, transaction: str) -> CommandResult:
        return self._record("remote_stop", charger_id, transaction)

    async def unlock(self, charger_id: str, connector_id: int) -> CommandResult:
        return self._record("unlock", charger_id, connector_id)

    async def change_availability(
        self, charger_id: str, connector_id: int, *, operative: bool
    ) -> CommandResult:
        return self._record("change_availability", charger_id, connector_id, operative)

    async def reset(self, charger_id: str, *, hard: bool) -> CommandResult:
        return self._record("reset", charger_id, hard)

    async def trigger_status(self, charger_id: str, connector_id: int | None) -> CommandResult:
        return self._record("trigger_status", charger_id, connector_id)


async def _nothing(conn: ChargerConnection) -> None:
    return None


def recording_dialect(context: DialectContext) -> Dialect:
    return Dialect(
        subprotocol=TEST_SUBPROTOCOL,
        schemas=NoSchemas(),
        handlers={},
        configure=_nothing,
        trigger_boot=_nothing,
        commands=RecordingCommands,
    )


def calls_sent(harness: Harness, charger_id: str) -> list[tuple[str, dict[str, Any]]]:
    """The CALLs the server sent over the charger's connections: (action, payload)."""
    frames = [json.loads(m.frame) for m in harness.server.message_log(charger_id)]
    return [(frame[2], frame[3]) for frame in frames if frame[0] == 2]


async def test_each_charger_gets_the_commands_of_the_version_its_connection_speaks(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(dialects=(dialect, recording_dialect))
    commands = harness.server.commands
    recorder = commands.command_set(TEST_SUBPROTOCOL)
    assert isinstance(recorder, RecordingCommands)
    offer: Any = [TEST_SUBPROTOCOL]
    async with (
        running(harness, "cp-1") as sim,
        connect(f"{harness.url}/cp-open", subprotocols=offer) as other,
    ):
        assert other.subprotocol == TEST_SUBPROTOCOL
        await harness.sink.wait_for(ChargerOnline, lambda e: e.charger_id == "cp-open")
        assert commands.is_online("cp-1")
        assert commands.is_online("cp-open")

        assert (await commands.unlock("cp-open", 2)).accepted
        assert (await commands.reset("cp-open", hard=True)).accepted
        assert (await commands.trigger_status("cp-1", 1)).accepted
        assert (await commands.change_availability("cp-1", 1, operative=False)).accepted

        assert recorder.calls == [("unlock", "cp-open", 2), ("reset", "cp-open", True)]
        to_sim = calls_sent(harness, "cp-1")
        assert (
            "TriggerMessage",
            {"requestedMessage": "StatusNotification", "connectorId": 1},
        ) in to_sim
        assert ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}) in to_sim
        assert sim.connectors[1].status == "Unavailable"
        assert calls_sent(harness, "cp-open") == []  # nothing went over the test connection
        # Each command set finds only the connections of its own version.
        assert recorder.connection("cp-1") is None
        assert not harness.commands16.is_online("cp-open")

    offline = await harness.sink.wait_for(ChargerOffline, lambda e: e.charger_id == "cp-open")
    assert offline.reason == "disconnected"
    assert (await commands.reset("cp-open", hard=False)).status is CommandStatus.OFFLINE
    assert len(recorder.calls) == 2

    # The same charger back with OCPP 1.6: its commands are 1.6 now.
    async with running(harness, "cp-open"):
        assert (await commands.unlock("cp-open", 1)).accepted
        assert ("UnlockConnector", {"connectorId": 1}) in calls_sent(harness, "cp-open")
    assert len(recorder.calls) == 2


async def test_a_charger_offering_both_speaks_the_preferred_version(
    start_harness: HarnessFactory,
) -> None:
    harness = await start_harness(dialects=(recording_dialect, dialect))
    offers: Any = [SUBPROTOCOL, TEST_SUBPROTOCOL]
    async with connect(f"{harness.url}/cp-open", subprotocols=offers) as both:
        assert both.subprotocol == TEST_SUBPROTOCOL
        await harness.sink.wait_for(ChargerOnline)
        assert (await harness.server.commands.trigger_status("cp-open", None)).accepted
    recorder = harness.server.commands.command_set(TEST_SUBPROTOCOL)
    assert isinstance(recorder, RecordingCommands)
    assert recorder.calls == [("trigger_status", "cp-open", None)]
