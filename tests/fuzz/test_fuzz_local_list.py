"""Fuzzing LocalAuthListManagement: Strom's SendLocalList requests and any answers to both actions.

* Any update of valid cards builds a SendLocalList.req that passes the OCPP 1.6 schema, or is
  refused before sending (a removal in a full update).
* Any answer to SendLocalList or GetLocalListVersion either breaks its schema (the connection
  makes that an ``ERROR``) or becomes a typed result: the command never raises.
"""

from __future__ import annotations

import asyncio
import string
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ocpp_server._connection import CallOutcome, OutcomeKind
from ocpp_server.ocppj import PayloadInvalid
from ocpp_server.v16.local_list import LocalList16, send_local_list_payload
from ocpp_server.v16.schemas import validate_request, validate_result
from strom_core.ports import CommandStatus
from strom_core.ports.local_list import ListEntry, ListUpdate
from tests.fuzz.counts import CASES, examples
from tests.fuzz.test_fuzz_pure import json_values

tags = st.text(alphabet=string.ascii_letters + string.digits + "-_.", min_size=1, max_size=20)
entries = st.lists(st.builds(ListEntry, tags, st.booleans()), max_size=8)


@settings(max_examples=examples(400), deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(list(ListUpdate)), entries)
def test_an_update_is_a_valid_request_or_refused_before_sending(
    version: int, update: ListUpdate, listed: list[ListEntry]
) -> None:
    CASES["ocpp 1.6 SendLocalList request"] += 1
    try:
        payload = send_local_list_payload(version, update, listed)
    except ValueError:
        assert update is ListUpdate.FULL
        assert any(not e.accepted for e in listed)
        return
    validate_request("SendLocalList", payload)
    removed = [e for e in payload.get("localAuthorizationList", []) if "idTagInfo" not in e]
    assert len(removed) == sum(not e.accepted for e in listed)


class _Answering:
    """A live connection that answers every CALL with one payload, checked as the server does."""

    online = True

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload

    async def call(self, action: str, payload: Mapping[str, Any]) -> CallOutcome:
        try:
            validate_result(action, self.payload)
        except PayloadInvalid as exc:
            return CallOutcome(OutcomeKind.INVALID, detail=str(exc))
        return CallOutcome(OutcomeKind.ANSWERED, self.payload)


answers = st.one_of(
    st.dictionaries(st.sampled_from(["status", "listVersion", "x"]), json_values, max_size=3),
    st.fixed_dictionaries(
        {"status": st.sampled_from(["Accepted", "Failed", "NotSupported", "VersionMismatch"])}
    ),
    st.fixed_dictionaries({"listVersion": st.integers(-(2**40), 2**40)}),
)


@settings(max_examples=examples(600), deadline=None)
@given(answers)
def test_any_answer_becomes_a_typed_result(answer: dict[str, Any]) -> None:
    CASES["ocpp 1.6 local list answers"] += 1
    commands = LocalList16(lambda _charger_id: _Answering(answer))  # type: ignore[arg-type,return-value]

    async def both() -> None:
        version = await commands.local_list_version("cp-1")
        assert (version.version is None) != (version.result.status is CommandStatus.ACCEPTED)
        if version.version is not None:
            assert version.version >= 0
        sent = await commands.send_local_list("cp-1", 1, ListUpdate.FULL, [ListEntry("A")])
        assert isinstance(sent.status, CommandStatus)

    asyncio.run(both())
