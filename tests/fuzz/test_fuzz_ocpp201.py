"""Hostile OCPP 2.0.1 frames and payloads: the v201 schemas module, then a live connection.

Payloads are drawn from the official 2.0.1 request schemas (:mod:`tests.fuzz.ocpp201`) and
broken one rule at a time. The schemas module must accept every drawn payload and refuse a
broken one with the 2.0.1 code of the rule (``OccurrenceConstraintViolation``, not 1.6's
``OccurenceConstraintViolation``). A live server, with a booted 2.0.1 station on one
connection, must answer every CALL with a CALLRESULT or a CALLERROR carrying a 2.0.1 code,
keep the connection, and record nothing in the core for a payload it refused.

Seeded: CI runs the same sample every time; ``STROM_FUZZ_SCALE`` runs more.
"""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from ocpp_server.ocppj import Call, FrameRejected, parse_frame
from ocpp_server.v201 import schemas as v201
from strom_core.errors import RemoteProtocolError
from tests.fuzz.counts import CASES, examples
from tests.fuzz.ocpp201 import CODES_201, mutated, payloads
from tests.fuzz.test_fuzz_pure import json_values, mutate
from tests.ocpp.conftest import Harness, HarnessFactory
from tests.ocpp.drivers import PythonDriver

SEED = 20260201
ACTIONS = sorted(v201.CHARGER_TO_CSMS)
# What a station sends most, and what moves money: drawn more often.
HOT = ["TransactionEvent", "MeterValues", "StatusNotification", "Authorize", "BootNotification"]
actions = st.one_of(st.sampled_from(HOT), st.sampled_from(ACTIONS))


def code_of(action: str, payload: Any) -> str | None:
    """The 2.0.1 code the schemas module refuses a CALL with, or None when it accepts it."""
    try:
        v201.validate_call(Call("u-1", action, payload))
    except FrameRejected as exc:
        return str(exc.code)
    return None


@seed(SEED)
@settings(max_examples=examples(600), deadline=None)
@given(actions.flatmap(lambda action: st.tuples(st.just(action), payloads(action))))
def test_every_payload_drawn_from_the_201_schemas_is_accepted(
    drawn: tuple[str, dict[str, Any]],
) -> None:
    CASES["OCPP 2.0.1 payloads (from schemas)"] += 1
    action, payload = drawn
    assert code_of(action, payload) is None, (action, payload)
    v201.validate_request(action, payload)  # what Strom would send is held to the same rules
    # Through the framing too: the text a station sends parses to the same CALL.
    frame = parse_frame(json.dumps([2, "u-1", action, payload]))
    assert isinstance(frame, Call)
    assert frame.payload == json.loads(json.dumps(payload))


@seed(SEED)
@settings(max_examples=examples(800), deadline=None)
@given(st.data())
def test_a_broken_201_payload_is_refused_with_the_2_0_1_code_of_the_rule(
    data: st.DataObject,
) -> None:
    CASES["OCPP 2.0.1 payloads (mutated)"] += 1
    action = data.draw(actions, label="action")
    payload, mutation = mutated(action, data.draw(payloads(action), label="payload"), data)
    code = code_of(action, payload)
    if mutation.code is not None:
        assert code == mutation.code, (mutation, payload)
    assert code is None or code in CODES_201, code


@st.composite
def mutated_frames(draw: st.DrawFn) -> str:
    """The text of a valid TransactionEvent CALL with a few characters flipped or dropped."""
    payload = draw(payloads("TransactionEvent"))
    return mutate(json.dumps([2, "u-1", "TransactionEvent", payload]), draw(st.data()))


@seed(SEED)
@settings(max_examples=examples(800), deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        st.tuples(
            st.sampled_from([2, 3, 4, 5, 6, "2", -1]),
            st.text(max_size=40),
            st.sampled_from([*HOT, "RequestStartTransaction", "StartTransaction", "Nonsense"]),
            json_values,
        ).map(lambda t: json.dumps(list(t))),
        mutated_frames(),
    )
)
def test_201_frames_parse_or_are_refused_with_a_2_0_1_code(frame: str | bytes) -> None:
    CASES["OCPP 2.0.1 frames"] += 1
    try:
        parsed = parse_frame(frame)
        if isinstance(parsed, Call):
            v201.validate_call(parsed)
    except RemoteProtocolError as exc:
        code = getattr(exc, "code", None)
        if code is not None:  # what the server would answer: the 2.0.1 spelling
            assert str(v201.wire_code(code)) in CODES_201, code


# --- a live 2.0.1 connection ------------------------------------------------------------------

TRANSACTIONS = ["tx-1", "tx-2", "4b7f1e0c-3c1a-4d52-9a57-1f2d8c9e6a10"]


def focused(action: str, payload: dict[str, Any], tag: str, data: st.DataObject) -> None:
    """Point a drawn payload at what the core knows (EVSE 1, an issued idToken, few
    transaction ids), so that valid ones reach the session code and broken ones test it."""
    if data.draw(st.booleans(), label="focus"):
        return
    if "evseId" in payload:
        payload["evseId"] = 1
    if isinstance(payload.get("evse"), dict):
        payload["evse"]["id"] = 1
    if isinstance(payload.get("idToken"), dict):
        payload["idToken"]["idToken"] = tag
    if action == "TransactionEvent":
        payload["transactionInfo"]["transactionId"] = data.draw(st.sampled_from(TRANSACTIONS))
        payload["seqNo"] = data.draw(st.integers(0, 5))


def recorded(harness: Harness) -> tuple[Any, ...]:
    """Everything the core and the event sink hold."""
    core = harness.core
    transactions = core.transactions()
    samples = [core.samples(t.charger_id, t.transaction) for t in transactions]
    return transactions, core.unknown_stops(), samples, len(harness.sink.events)


async def booted_station(harness: Harness) -> PythonDriver:
    driver = PythonDriver("ocpp2.0.1")
    await driver.connect(harness.url, "cp-open")
    boot = {"reason": "PowerUp", "chargingStation": {"model": "Fuzz", "vendorName": "Strom"}}
    assert (await driver.call("BootNotification", boot))["status"] == "Accepted"
    await driver.server_call("GetBaseReport")  # the post-boot configuration is done
    return driver


@seed(SEED)
@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_a_live_201_connection_answers_every_call_and_refused_ones_record_nothing(
    start_harness: HarnessFactory, data: st.DataObject
) -> None:
    # Hypothesis runs this body many times; each run gets its own server.
    CASES["OCPP 2.0.1 CALL sequences (live server)"] += 1
    harness = await start_harness()
    driver = await booted_station(harness)
    tag = harness.core.issue_id_tag("cp-open", 1)
    ids = count(1)
    for _ in range(data.draw(st.integers(1, 6), label="calls")):
        CASES["OCPP 2.0.1 CALLs (live server)"] += 1
        action = data.draw(actions, label="action")
        payload = data.draw(payloads(action), label="payload")
        focused(action, payload, tag, data)
        if data.draw(st.booleans(), label="break it"):
            payload, _ = mutated(action, payload, data)
        expected = code_of(action, payload)
        unique_id = f"f{next(ids)}"
        before = recorded(harness)
        await driver.raw(json.dumps([2, unique_id, action, payload]))
        reply = await driver.reply_to(unique_id, within_s=10)
        assert reply[0] in (3, 4), reply
        if expected is not None:  # the schemas refuse it: so does the server, same code
            assert reply[0] == 4, (action, payload, reply)
            assert reply[2] == expected, (action, payload, reply)
        if reply[0] == 4:
            assert reply[2] in CODES_201, reply
            assert recorded(harness) == before, (action, payload, reply)
    # The connection is still served, in order, and the station is still online.
    assert "currentTime" in await driver.call("Heartbeat", {})
    assert harness.server.online_chargers() == ["cp-open"]
    assert driver.validation_failures == []
    await driver.close()
    await harness.server.stop()
