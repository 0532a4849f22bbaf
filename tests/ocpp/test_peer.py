"""The sans-IO OCPP-J peer: framing, call matching and deadlines without sockets or a loop."""

from __future__ import annotations

import orjson
import pytest

from ocpp_server.ocppj import Call, CallError, CallResult, ErrorCode
from ocpp_server.peer import (
    Answered,
    CallInProgress,
    Ignored,
    IgnoredKind,
    IncomingCall,
    OcppJPeer,
    Refused,
)


def test_a_call_is_framed_with_the_next_unique_id_and_matched_to_its_answer() -> None:
    peer = OcppJPeer("s")
    first, frame = peer.start_call("Reset", {"type": "Soft"}, now=10.0, timeout_s=5.0)
    assert orjson.loads(frame) == [2, "s1", "Reset", {"type": "Soft"}]
    assert (first.unique_id, first.deadline) == ("s1", 15.0)
    received = peer.receive('[3, "s1", {"status": "Accepted"}]')
    assert received == Answered(first, CallResult("s1", {"status": "Accepted"}))
    assert peer.pending is None
    second, _ = peer.start_call("Reset", {"type": "Hard"}, now=11.0, timeout_s=5.0)
    assert second.unique_id == "s2"


def test_one_call_is_outstanding_at_a_time() -> None:
    peer = OcppJPeer("c")
    peer.start_call("Heartbeat", {}, now=0.0, timeout_s=1.0)
    with pytest.raises(CallInProgress):
        peer.start_call("Heartbeat", {}, now=0.0, timeout_s=1.0)


def test_a_call_error_answers_the_call() -> None:
    peer = OcppJPeer("s")
    call, _ = peer.start_call("Reset", {"type": "Soft"}, now=0.0, timeout_s=1.0)
    received = peer.receive('[4, "s1", "NotSupported", "no", {}]')
    assert received == Answered(call, CallError("s1", "NotSupported", "no", {}))


def test_an_answer_after_the_deadline_or_to_another_id_is_ignored() -> None:
    peer = OcppJPeer("s")
    peer.start_call("Reset", {"type": "Soft"}, now=0.0, timeout_s=1.0)
    assert isinstance(peer.receive('[3, "other", {}]'), Ignored)
    assert peer.expire(0.5) is None
    expired = peer.expire(1.0)
    assert expired is not None
    assert expired.unique_id == "s1"
    late = peer.receive('[3, "s1", {"status": "Accepted"}]')
    assert late == Ignored(IgnoredKind.STRAY, "answer to no outstanding CALL", "s1")


def test_an_abandoned_call_is_never_matched() -> None:
    peer = OcppJPeer("s")
    peer.start_call("Reset", {"type": "Soft"}, now=0.0, timeout_s=1.0)
    assert peer.abandon() is not None
    assert isinstance(peer.receive('[3, "s1", {}]'), Ignored)


def test_incoming_calls_broken_calls_and_unreadable_frames() -> None:
    peer = OcppJPeer("s")
    assert peer.receive('[2, "a", "Heartbeat", {}]') == IncomingCall(Call("a", "Heartbeat", {}))
    refused = peer.receive('[2, "b", "Heartbeat"]')
    assert isinstance(refused, Refused)
    assert refused.error.code is ErrorCode.PROTOCOL_ERROR
    assert orjson.loads(refused.reply)[:3] == [4, "b", "ProtocolError"]
    unreadable = peer.receive("not json")
    assert isinstance(unreadable, Ignored)
    assert unreadable.kind is IgnoredKind.UNREADABLE
    binary = peer.receive(b"[2]")
    assert isinstance(binary, Ignored)
    assert binary.kind is IgnoredKind.BINARY


def test_answers_are_framed_for_the_call() -> None:
    call = Call("x1", "Heartbeat", {})
    assert orjson.loads(OcppJPeer.answer(call, {"currentTime": "t"})) == [
        3,
        "x1",
        {"currentTime": "t"},
    ]
    assert orjson.loads(OcppJPeer.refuse("x1", ErrorCode.NOT_SUPPORTED, "no")) == [
        4,
        "x1",
        "NotSupported",
        "no",
        {},
    ]
