"""Fuzzing chargers' answers to the OCPP 1.6 commands of the feature profiles.

Reservation (ReserveNow, CancelReservation), SmartCharging (SetChargingProfile,
ClearChargingProfile, GetCompositeSchedule), the security edition's certificate actions
(CertificateSigned, InstallCertificate, GetInstalledCertificateIds, DeleteCertificate,
ExtendedTriggerMessage), FirmwareManagement (UpdateFirmware, GetDiagnostics), GetLog and
SignedUpdateFirmware.

Answers are drawn from each action's OCPP 1.6 response schema and then, half of the time,
broken in one way (a field of the wrong type, a missing or extra field, a huge string or
number) or replaced by any JSON object. Whatever comes back, the command returns its typed
result and never raises: ``ERROR`` exactly when the answer breaks the schema (the connection
checks it), otherwise the status the answer maps to. A live server keeps serving the charger
whatever it answers.

Seeded: CI runs the same sample every time; ``STROM_FUZZ_SCALE`` runs more.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from itertools import count
from typing import Any, Final

import orjson
from hypothesis import HealthCheck, example, given, seed, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from ocpp_server._connection import CallOutcome, OutcomeKind
from ocpp_server.commands import command_result
from ocpp_server.ocppj import PayloadInvalid
from ocpp_server.v16.commands import Ocpp16Commands
from ocpp_server.v16.schemas import validate_result
from strom_core.ports import CommandResult, CommandStatus
from strom_core.ports.power import CompositeSchedule, SchedulePeriod
from tests.fuzz.counts import CASES, examples
from tests.fuzz.ocpp201 import _strategy
from tests.fuzz.test_fuzz_pure import json_values
from tests.ocpp.conftest import HarnessFactory
from tests.ocpp.drivers import DEFAULT_ANSWERS

SEED = 20261207
AT: Final = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
HASH_DATA: Final = {
    "hashAlgorithm": "SHA256",
    "issuerNameHash": "a" * 64,
    "issuerKeyHash": "b" * 64,
    "serialNumber": "01",
}

Command = Callable[[Ocpp16Commands, str], Awaitable[Any]]


async def _certificate_signed(commands: Ocpp16Commands, charger_id: str) -> CommandResult:
    # Strom sends CertificateSigned after a SignCertificate (no command of its own); its
    # answer goes through the same mapping as every command's.
    outcome = await commands._call(charger_id, "CertificateSigned", {"certificateChain": "x"})
    return command_result(outcome)


# Each action, and the commands that send it.
COMMANDS: Final[dict[str, tuple[Command, ...]]] = {
    "ReserveNow": (
        lambda c, cp: c.reserve_now(cp, 1, reservation_id=9, expires_at=AT, id_tag="TAG-1"),
    ),
    "CancelReservation": (lambda c, cp: c.cancel_reservation(cp, 9),),
    "SetChargingProfile": (
        lambda c, cp: c.set_charger_limit(cp, 4_000),
        lambda c, cp: c.limit_session(cp, 1, "17", 3_700),
        lambda c, cp: c.limit_session(cp, 1, None, 3_700),
        lambda c, cp: c.plan_session(cp, 1, "17", AT, 3_600, (SchedulePeriod(0, 0),)),
    ),
    "ClearChargingProfile": (
        lambda c, cp: c.set_charger_limit(cp, None),
        lambda c, cp: c.clear_session_limit(cp, 1),
    ),
    "GetCompositeSchedule": (lambda c, cp: c.composite_schedule(cp, 1, 600),),
    "CertificateSigned": (_certificate_signed,),
    "InstallCertificate": (lambda c, cp: c.install_certificate(cp, "-----BEGIN CERT"),),
    "GetInstalledCertificateIds": (lambda c, cp: c.get_installed_certificate_ids(cp),),
    "DeleteCertificate": (lambda c, cp: c.delete_certificate(cp, HASH_DATA),),
    "ExtendedTriggerMessage": (
        lambda c, cp: c.extended_trigger_message(cp, "StatusNotification", 1),
    ),
    "UpdateFirmware": (lambda c, cp: c.update_firmware(cp, "https://fw.example/f.bin", AT),),
    "GetDiagnostics": (lambda c, cp: c.get_diagnostics(cp, "https://strom.example/up/"),),
    "GetLog": (lambda c, cp: c.get_log(cp, "https://strom.example/up/", 3),),
    "SignedUpdateFirmware": (
        lambda c, cp: c.signed_update_firmware(
            cp,
            "https://fw.example/f.bin",
            AT,
            request_id=4,
            signing_certificate="-----BEGIN CERTIFICATE-----",
            signature="c2ln",
        ),
    ),
}
ACTIONS: Final = sorted(COMMANDS)
# Actions whose answer is only its status.
EXACT: Final = frozenset(
    {
        "CancelReservation",
        "DeleteCertificate",
        "InstallCertificate",
        "ReserveNow",
        "SignedUpdateFirmware",
    }
)

# How a schema-valid answer's status maps, where the command does not read more of it.
_MAPPED: Final = {
    "Accepted": CommandStatus.ACCEPTED,
    "AcceptedCanceled": CommandStatus.ACCEPTED,
    "NotSupported": CommandStatus.NOT_SUPPORTED,
    "NotImplemented": CommandStatus.NOT_SUPPORTED,
}


@cache
def _response_schema(action: str) -> dict[str, Any]:
    path = resources.files("ocpp.v16").joinpath("schemas", f"{action}Response.json")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return loaded


def answers_of(action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Answers to ``action`` its OCPP 1.6 response schema (mostly) accepts."""
    root = _response_schema(action)
    drawn: st.SearchStrategy[dict[str, Any]] = _strategy(root, root)
    return drawn


ODD_VALUES: Final = (
    None,
    True,
    0,
    -1,
    2**63,
    -(2**63),
    1e306,
    1e308,
    -1e308,
    -5.0,
    0.05,
    "x",
    [],
    {},
    [1],
)


def _objects(value: Any) -> Iterator[dict[str, Any]]:
    """Every object in a decoded JSON value, the outermost first."""
    if isinstance(value, dict):
        yield value
        children = list(value.values())
    elif isinstance(value, list):
        children = value
    else:
        return
    for child in children:
        yield from _objects(child)


@st.composite
def broken(draw: st.DrawFn, answer: dict[str, Any]) -> dict[str, Any]:
    """``answer`` broken in one way (it may still fit the schema)."""
    copy: dict[str, Any] = json.loads(json.dumps(answer))
    objects = list(_objects(copy))
    target = draw(st.sampled_from(objects))
    kind = draw(st.sampled_from(["wrong type", "missing", "extra", "huge string", "odd value"]))
    names = sorted(target)
    if kind == "extra" or not names:
        target[draw(st.sampled_from(["x", "status", "__proto__", "connectorId"]))] = draw(
            json_values
        )
    elif kind == "missing":
        del target[draw(st.sampled_from(names))]
    elif kind == "huge string":
        target[draw(st.sampled_from(names))] = draw(st.sampled_from(["A", "é", "\u0000"])) * (
            draw(st.sampled_from([21, 256, 5_501]))
        )
    elif kind == "odd value":
        target[draw(st.sampled_from(names))] = draw(st.sampled_from(ODD_VALUES))
    else:
        target[draw(st.sampled_from(names))] = draw(json_values)
    return copy


def on_the_wire(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The answer as the server reads it off the wire (None: it is no JSON frame at all)."""
    try:
        read: dict[str, Any] = orjson.loads(json.dumps(answer, allow_nan=False))
    except (ValueError, orjson.JSONDecodeError):
        return None  # an unreadable frame: ignored by the server, the command times out
    return read


def drawn_answers(action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Valid, broken or arbitrary answers to ``action``, as JSON carries them."""
    valid = answers_of(action)
    drawn = st.one_of(
        valid,
        valid.flatmap(broken),
        st.dictionaries(st.sampled_from(["status", "filename", "fileName", "x"]), json_values),
    )
    return drawn.map(on_the_wire).filter(lambda answer: answer is not None)  # type: ignore[return-value]


class _Answering:
    """A live connection that answers every CALL with one payload, checked as the server does."""

    online = True

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload
        self.calls: list[str] = []

    async def call(self, action: str, payload: Mapping[str, Any]) -> CallOutcome:
        self.calls.append(action)
        try:
            validate_result(action, self.payload)
        except PayloadInvalid as exc:
            return CallOutcome(OutcomeKind.INVALID, detail=str(exc))
        return CallOutcome(OutcomeKind.ANSWERED, self.payload)


def fits(action: str, answer: Mapping[str, Any]) -> bool:
    try:
        validate_result(action, answer)
    except PayloadInvalid:
        return False
    return True


def result_of(typed: Any) -> CommandResult:
    """The command result inside any typed answer."""
    if isinstance(typed, CommandResult):
        return typed
    result = typed.result
    assert isinstance(result, CommandResult)
    return result


def check(action: str, answer: Mapping[str, Any], typed: Any) -> None:
    """The typed result is ERROR for a broken answer and the mapped status for a valid one."""
    result = result_of(typed)
    assert isinstance(result.status, CommandStatus)
    if not fits(action, answer):
        assert result.status is CommandStatus.ERROR, (action, answer, typed)
        return
    status = answer.get("status")
    if action in EXACT:
        expected = _MAPPED.get(str(status), CommandStatus.REJECTED)
        assert (result.status, result.detail) == (
            expected,
            "" if status == "Accepted" else status,
        ), (action, answer, typed)
    if isinstance(typed, CompositeSchedule) and absurd_limit(answer):
        assert result.status is CommandStatus.ERROR, (action, answer, typed)
        return
    assert result.status is not CommandStatus.ERROR, (action, answer, typed)
    if isinstance(typed, CompositeSchedule) and result.accepted:
        for period in typed.periods:
            assert isinstance(period.limit_w, int)
            assert isinstance(period.start_s, int)


def absurd_limit(answer: Mapping[str, Any]) -> bool:
    """A composite schedule whose limit, in watts, is negative or beyond any float."""
    schedule = answer.get("chargingSchedule")
    if answer.get("status") != "Accepted" or not isinstance(schedule, dict):
        return False
    per_unit = 1.0 if schedule.get("chargingRateUnit") == "W" else 690.0
    watts = [float(p["limit"]) * per_unit for p in schedule["chargingSchedulePeriod"]]
    return any(not 0 <= w < math.inf for w in watts)


LIMIT_BEYOND_FLOATS: Final = {
    "status": "Accepted",
    "chargingSchedule": {
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1e306}],
    },
}


@seed(SEED)
@settings(max_examples=examples(700), deadline=None)
@example(("GetCompositeSchedule", LIMIT_BEYOND_FLOATS))  # found by this test: OverflowError
@given(st.sampled_from(ACTIONS).flatmap(lambda a: st.tuples(st.just(a), drawn_answers(a))))
def test_any_answer_to_a_feature_profile_command_becomes_a_typed_result(
    drawn: tuple[str, dict[str, Any]],
) -> None:
    action, answer = drawn
    CASES["ocpp 1.6 feature profile answers"] += 1
    connection = _Answering(answer)
    commands = Ocpp16Commands(lambda _charger_id: connection)  # type: ignore[arg-type,return-value]

    async def every_command() -> None:
        for command in COMMANDS[action]:
            typed = await command(commands, "cp-1")
            check(action, answer, typed)

    asyncio.run(every_command())
    assert set(connection.calls) == {action}


# --- a live server ---------------------------------------------------------------------------


class RawCharger:
    """A 1.6 charger on a raw websocket that answers the server's CALLs verbatim, unchecked."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.answers: dict[str, Any] = {}
        self._ids = count(1)
        self._replies: dict[str, asyncio.Future[list[Any]]] = {}

    async def serve(self) -> None:
        async for message in self.ws:
            frame = json.loads(message)
            if frame[0] == 2:
                answer = self.answers.get(frame[2], DEFAULT_ANSWERS.get(frame[2]))
                payload = {"status": "Accepted"} if answer is None else answer
                await self.ws.send(json.dumps([3, frame[1], payload]))
            elif frame[0] in (3, 4) and frame[1] in self._replies:
                self._replies.pop(frame[1]).set_result(frame)

    async def call(self, action: str, payload: Mapping[str, Any]) -> list[Any]:
        unique_id = f"r{next(self._ids)}"
        reply = asyncio.get_running_loop().create_future()
        self._replies[unique_id] = reply
        await self.ws.send(json.dumps([2, unique_id, action, payload]))
        async with asyncio.timeout(10):
            return await reply


@contextlib.asynccontextmanager
async def raw_charger(url: str) -> AsyncIterator[RawCharger]:
    async with connect(f"{url}/cp-open", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        charger = RawCharger(ws)
        async with asyncio.TaskGroup() as tg:
            serving = tg.create_task(charger.serve())
            boot = {"chargePointVendor": "Fuzz", "chargePointModel": "Raw"}
            assert (await charger.call("BootNotification", boot))[2]["status"] == "Accepted"
            try:
                yield charger
            finally:
                serving.cancel()


@seed(SEED)
@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_a_live_connection_keeps_serving_whatever_the_charger_answers(
    start_harness: HarnessFactory, data: st.DataObject
) -> None:
    CASES["ocpp 1.6 feature profile answers (live server)"] += 1
    harness = await start_harness(command_timeout_s=2.0)
    commands = harness.server.commands.command_set("ocpp1.6")
    assert isinstance(commands, Ocpp16Commands)
    async with raw_charger(harness.url) as charger:
        for _ in range(data.draw(st.integers(1, 4), label="commands")):
            action = data.draw(st.sampled_from(ACTIONS), label="action")
            answer = data.draw(drawn_answers(action), label="answer")
            charger.answers[action] = answer
            for command in COMMANDS[action]:
                typed = await command(commands, "cp-open")
                check(action, answer, typed)
        heartbeat = await charger.call("Heartbeat", {})
        assert heartbeat[0] == 3
        assert "currentTime" in heartbeat[2]
        assert harness.server.online_chargers() == ["cp-open"]
    await harness.server.stop()
