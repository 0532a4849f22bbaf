"""The operator's calls to a charger's agent, answered by the process that runs it.

Theory of operation
-------------------
In a cluster each charger's agent runs in one process (:mod:`agent.cluster`), but the operator's
API answers at any process (a load balancer picks one per request). What the API asks of an
agent — its last status publication, publish now, an operator's change to show — is one of the
:data:`CALLS` below. In the process running the agent it runs there (:func:`run_here`); in any
other it crosses the bus as one JSON object ``{"m": <call>, "c": <charger id>, "a": {...}}`` to
the process holding the lease ``agent:<charger id>``, subject :data:`SUBJECT`, which answers
``{"r": <result>}`` or ``{"e": <kind>, "m": <text>}``. Nothing is unpickled or looked up by a
name from the wire: an unknown call, or arguments of the wrong shape, are refused
(:class:`BadAgentCall`) before the agent sees them.

Error kinds in an answer: ``elsewhere`` (the agent does not run in the process asked: it moved
meanwhile; the caller looks the owner up once more), ``busy`` (the agent did not get to it:
it is restarting or stopping; :class:`~strom_services.effects.RetryLater` for the caller) and
``refused`` (not a call of :data:`CALLS`; nothing ran).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import orjson

from strom_core.errors import RemoteProtocolError
from strom_core.ports.agents import PublishResult

if TYPE_CHECKING:
    from agent.agent import Agent

__all__ = [
    "CALLS",
    "SUBJECT",
    "BadAgentCall",
    "decode_request",
    "decode_result",
    "encode_error",
    "encode_request",
    "encode_result",
    "publish_from_json",
    "publish_json",
    "result_json",
    "run_here",
    "shortened",
]

SUBJECT: Final = "agents"
"""The bus subject of the operator's calls to agents."""

Json = Any


class BadAgentCall(RemoteProtocolError):
    """A call or answer that is not what :data:`CALLS` says (the agent saw nothing)."""


def _str_map(value: Json) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise BadAgentCall(f"expected an object of strings, got {value!r:.80}")
    return dict(value)


def publish_json(result: PublishResult | None) -> Json:
    """A publication as JSON (None stays None)."""
    if result is None:
        return None
    return {"id": result.event_id, "ok": result.ok, "failed": result.failed}


def shortened(value: Json, limit: int = 100) -> Json:
    """A publication's JSON with each relay's answer cut to ``limit`` characters.

    What a reply too large for the bus carries instead (PostgreSQL's notifications hold less
    than 8,000 bytes; a relay's refusal can be long, the event id and relays are kept whole).
    """
    if not isinstance(value, dict) or set(value) != {"id", "ok", "failed"}:
        return value
    return {
        "id": value["id"],
        "ok": {url: text[:limit] for url, text in value["ok"].items()},
        "failed": {url: text[:limit] for url, text in value["failed"].items()},
    }


def publish_from_json(value: Json) -> PublishResult | None:
    """A publication from JSON; a wrong shape raises BadAgentCall."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"id", "ok", "failed"}:
        raise BadAgentCall(f"not a publication: {value!r:.80}")
    if not isinstance(value["id"], str):
        raise BadAgentCall("a publication's id is a string")
    return PublishResult(value["id"], _str_map(value["ok"]), _str_map(value["failed"]))


def _arg(kind: type) -> Callable[[Json], Any]:
    def parse(value: Json) -> Any:
        if type(value) is not kind:  # a bool is not an int here
            raise BadAgentCall(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return parse


async def _status(agent: Agent) -> Json:
    return publish_json(agent.last_status)


async def _publish_status(agent: Agent) -> Json:
    result: PublishResult = await agent.call(agent.publish_status, timeout_s=30.0)
    return publish_json(result)


async def _set_enabled(agent: Agent, connector_id: int, enabled: bool) -> Json:
    agent.set_enabled(connector_id, enabled)
    return None


async def _mark_dirty(agent: Agent) -> Json:
    agent.mark_dirty()
    return None


@dataclass(frozen=True, slots=True)
class Call:
    """One call the API may make of an agent.

    Attributes:
        name: the call's name on the wire.
        args: each argument's parser, by name (all by keyword).
        run: runs it on the agent here; returns the JSON result.
        decode: the result from JSON, at the caller.
        timeout_s: how long a caller in another process waits for the answer.
    """

    name: str
    args: Mapping[str, Callable[[Json], Any]]
    run: Callable[..., Awaitable[Json]]
    decode: Callable[[Json], Any]
    timeout_s: float = 5.0

    def check(self, args: Json) -> dict[str, Any]:
        """The arguments, checked; anything else than the declared ones raises BadAgentCall."""
        if not isinstance(args, dict) or set(args) != set(self.args):
            raise BadAgentCall(f"{self.name} takes {sorted(self.args)}, got {args!r:.80}")
        return {name: parse(args[name]) for name, parse in self.args.items()}


def _none(value: Json) -> None:
    if value is not None:
        raise BadAgentCall(f"expected no result, got {value!r:.80}")


CALLS: Final[Mapping[str, Call]] = {
    call.name: call
    for call in (
        Call("status", {}, _status, publish_from_json),
        # The agent publishes within its own 30 s; the bus adds little.
        Call("publish_status", {}, _publish_status, publish_from_json, timeout_s=35.0),
        Call(
            "set_enabled",
            {"connector_id": _arg(int), "enabled": _arg(bool)},
            _set_enabled,
            _none,
        ),
        Call("mark_dirty", {}, _mark_dirty, _none),
    )
}


async def run_here(agent: Agent, name: str, args: Mapping[str, Any]) -> Any:
    """Run the call ``name`` on an agent of this process; return its (decoded) result.

    Raises:
        BadAgentCall: an unknown call or wrong arguments.
        RetryLater: the agent did not get to it (restarting, stopping).
    """
    call = _call(name)
    return call.decode(await call.run(agent, **call.check(dict(args))))


def _call(name: str) -> Call:
    call = CALLS.get(name)
    if call is None:
        raise BadAgentCall(f"no such agent call: {name!r:.40}")
    return call


def encode_request(name: str, charger_id: str, args: Mapping[str, Any]) -> bytes:
    """A call as the bus payload (its arguments checked first)."""
    call = _call(name)
    return orjson.dumps({"m": name, "c": charger_id, "a": call.check(dict(args))})


def decode_request(payload: bytes) -> tuple[Call, str, dict[str, Any]]:
    """The call, charger and arguments in a bus payload.

    Raises:
        BadAgentCall: not a payload of :func:`encode_request`.
    """
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadAgentCall(f"not JSON: {exc}") from None
    if not isinstance(body, dict) or set(body) != {"m", "c", "a"}:
        raise BadAgentCall("an agent call is {m, c, a}")
    if not isinstance(body["m"], str) or not isinstance(body["c"], str):
        raise BadAgentCall("an agent call names its call and charger as strings")
    call = _call(body["m"])
    return call, body["c"], call.check(body["a"])


def encode_result(result: Json) -> bytes:
    """An answer carrying a result (already JSON)."""
    return orjson.dumps({"r": result})


def encode_error(kind: str, text: str) -> bytes:
    """An answer saying why the call did not run (``elsewhere``, ``busy``)."""
    return orjson.dumps({"e": kind, "m": text})


def result_json(payload: bytes) -> tuple[str | None, Json]:
    """An answer: ``(None, result)`` or ``(error kind, text)``.

    Raises:
        BadAgentCall: not an answer of :func:`encode_result` or :func:`encode_error`.
    """
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise BadAgentCall(f"an answer that is not JSON: {exc}") from None
    if isinstance(body, dict) and set(body) == {"r"}:
        return None, body["r"]
    if (
        isinstance(body, dict)
        and set(body) == {"e", "m"}
        and isinstance(body["e"], str)
        and isinstance(body["m"], str)
    ):
        return body["e"], body["m"]
    raise BadAgentCall(f"not an agent call's answer: {payload[:80]!r}")


def decode_result(name: str, value: Json) -> Any:
    """A call's result from its JSON."""
    return _call(name).decode(value)
