"""OCPP 2.0.1 payloads for fuzzing: valid ones drawn from the official JSON schemas, and
mutations of them that break one rule each.

:func:`payloads` reads ``<Action>Request.json`` (the files the server validates with, shipped
by the ``ocpp`` package) and builds a hypothesis strategy from the subset of JSON Schema the
2.0.1 files use (``$ref`` to local definitions, objects with ``required`` and
``additionalProperties: false``, arrays with ``minItems``/``maxItems``, strings with
``maxLength``, ``enum`` and ``format: date-time``, integers with bounds, numbers, booleans).
What it draws is valid by construction; the tests check that the server agrees.

:func:`mutated` breaks a drawn payload in one of the ways a broken or hostile station does:
a wrong type, a missing required field, an extra property, a huge string, a bad timestamp,
a seqNo or transactionId of the wrong shape. :class:`Mutation` says which, and whether the
payload is now certainly invalid (and with which 2.0.1 error code) or may still be valid
(a dropped optional field, a naive timestamp the server tolerates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import Any, Final

from hypothesis import strategies as st

from ocpp_server.ocppj import ErrorCode

__all__ = [
    "CODES_201",
    "Mutation",
    "mutated",
    "payloads",
    "schema",
]

# Every CALLERROR code OCPP-J 2.0.1 defines (Part 4, Table 8).
CODES_201: Final = frozenset(
    {
        "FormatViolation",
        "GenericError",
        "InternalError",
        "MessageTypeNotSupported",
        "NotImplemented",
        "NotSupported",
        "OccurrenceConstraintViolation",
        "PropertyConstraintViolation",
        "ProtocolError",
        "RpcFrameworkError",
        "SecurityError",
        "TypeConstraintViolation",
    }
)

_TEXT: Final = st.characters(codec="utf-8")  # what a websocket text frame can carry
_ANY: Final = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(_TEXT), inner, max_size=3),
    max_leaves=8,
)

# Timestamps no reading of RFC 3339 accepts.
BAD_TIMESTAMPS: Final = (
    "",
    "yesterday",
    "2024-13-01T00:00:00Z",
    "2024-02-30T10:00:00Z",
    "2024-01-01T25:00:00Z",
    "2024-01-01",
    "10:00:00Z",
    "2024-01-01T10:00:00+25:00",
    "2024-01-01T10:00:00ZZ",
    "\uff11\uff19\uff19\uff19-01-01T10:00:00Z",  # fullwidth digits
    "2024-01-01T10:00:00.Z",
)
# Timestamps outside OCPP 2.0.1's profile of RFC 3339 that a lenient server may read.
ODD_TIMESTAMPS: Final = (
    "2024-01-01T10:00:00",
    "2024-01-01 10:00:00Z",
    "2024-01-01T10:00:00.123456789Z",
    "2024-01-01t10:00:00z",
    "2024-01-01T10:00:00+0100",
)


@cache
def schema(action: str) -> dict[str, Any]:
    """The OCPP 2.0.1 request schema of ``action`` (decoded JSON)."""
    path = resources.files("ocpp.v201").joinpath("schemas", f"{action}Request.json")
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8-sig"))
    return loaded


def _timestamps() -> st.SearchStrategy[str]:
    """RFC 3339 date-times as OCPP 2.0.1 writes them: a zone, at most three decimals."""

    def write(moment: datetime, decimals: int, offset_min: int, zulu: bool) -> str:
        zone = timezone(timedelta(minutes=offset_min))
        local = moment.astimezone(zone)
        text = local.strftime("%Y-%m-%dT%H:%M:%S")
        if decimals:
            text += "." + f"{local.microsecond:06d}"[:decimals]
        if zulu and offset_min == 0:
            return text + "Z"
        sign = "-" if offset_min < 0 else "+"
        return f"{text}{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"

    return st.builds(
        write,
        st.datetimes(datetime(2000, 1, 1), datetime(2099, 12, 31), timezones=st.just(UTC)),
        st.integers(0, 3),
        st.integers(-14 * 60, 14 * 60),
        st.booleans(),
    )


def _scalar(node: dict[str, Any], kind: str | None) -> st.SearchStrategy[Any]:
    if kind == "string":
        if node.get("format") == "date-time":
            return _timestamps()
        return st.text(_TEXT, max_size=min(node.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(node.get("minimum", -(2**53)), node.get("maximum", 2**53))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False, width=64)
    if kind == "boolean":
        return st.booleans()
    if kind is None:  # DataTransfer's data: any JSON value
        return _ANY
    raise ValueError(f"a schema node the generator does not know: {node}")  # pragma: no cover


def _object(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with every required property and any of the optional ones (no customData)."""
    properties = node.get("properties", {})
    required = set(node.get("required", ()))
    fields = {
        name: _strategy(sub, root)
        for name, sub in properties.items()
        if name in required or name != "customData"
    }
    optional = sorted(set(fields) - required)
    return st.builds(
        lambda values, present: {
            name: value for name, value in values.items() if name in required or name in present
        },
        st.fixed_dictionaries(fields),
        st.sets(st.sampled_from(optional)) if optional else st.just(set()),
    )


def _strategy(node: dict[str, Any], root: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _strategy(root["definitions"][name], root)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind == "object":
        return _object(node, root)
    if kind == "array":
        low = node.get("minItems", 0)
        high = min(node.get("maxItems", low + 2), low + 2)
        return st.lists(_strategy(node["items"], root), min_size=low, max_size=high)
    return _scalar(node, kind)


def payloads(action: str) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of ``action`` that its OCPP 2.0.1 request schema accepts."""
    root = schema(action)
    return _strategy(root, root)


@dataclass(frozen=True, slots=True)
class Mutation:
    """What was broken, and the code a schema check must answer with (None: may be valid)."""

    kind: str
    code: str | None


def _objects(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The paths of every object in a decoded JSON value (the root first)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(value, dict):
        found.append(path)
        for key, item in value.items():
            found.extend(_objects(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(_objects(item, (*path, index)))
    return found


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


OTHER_TYPES: Final = (None, True, 0, -1, 1.5, "x", [], {}, [1], {"a": 1})


def mutated(
    action: str, payload: dict[str, Any], data: st.DataObject
) -> tuple[dict[str, Any], Mutation]:
    """``payload`` (a valid ``action`` request, copied) broken in one way drawn from ``data``."""
    broken: dict[str, Any] = json.loads(json.dumps(payload))
    top = schema(action)
    kinds = ["wrong type", "missing field", "extra property", "huge string", "bad timestamp"]
    if action == "TransactionEvent":
        kinds += ["seqNo shape", "transactionId shape"]
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    objects = _objects(broken)
    path = data.draw(st.sampled_from(objects), label="object")
    target = _at(broken, path)
    if kind == "extra property":
        target[data.draw(st.sampled_from(["x", "__proto__", "transactionid", "é"]))] = 1
        # Every object of the 2.0.1 schemas has additionalProperties false, except customData
        # (never drawn) and what DataTransfer's free-form data holds.
        free = action == "DataTransfer" and path[:1] == ("data",)
        return broken, Mutation(kind, None if free else ErrorCode.FORMAT_VIOLATION)
    if kind == "missing field":
        if not target:
            return broken, Mutation(kind, None)
        name = data.draw(st.sampled_from(sorted(target)))
        del target[name]
        certain = not path and name in top.get("required", ())
        code = ErrorCode.OCCURRENCE_CONSTRAINT_VIOLATION if certain else None
        return broken, Mutation(kind, code)
    if kind == "wrong type":
        if not target:
            return broken, Mutation(kind, None)
        name = data.draw(st.sampled_from(sorted(target)))
        before = target[name]
        target[name] = data.draw(
            st.sampled_from([v for v in OTHER_TYPES if type(v) is not type(before)])
        )
        return broken, Mutation(kind, None)  # an int may be a valid number, or an enum fails
    if kind == "huge string":
        name = data.draw(st.sampled_from(sorted(target) or ["x"]))
        target[name] = data.draw(st.sampled_from(["A", "é", "\u0000", "🔌"])) * data.draw(
            st.sampled_from([37, 256, 2_501, 15_000])
        )
        return broken, Mutation(kind, None)
    return _mutated_field(kind, broken, top, target, data)


def _mutated_field(
    kind: str,
    broken: dict[str, Any],
    top: dict[str, Any],
    target: dict[str, Any],
    data: st.DataObject,
) -> tuple[dict[str, Any], Mutation]:
    """A timestamp, seqNo or transactionId of the wrong shape (see :func:`mutated`)."""
    if kind == "bad timestamp":
        bad = data.draw(st.booleans(), label="certainly bad")
        stamp = data.draw(st.sampled_from(BAD_TIMESTAMPS if bad else ODD_TIMESTAMPS))
        if "timestamp" in top.get("properties", {}):
            broken["timestamp"] = stamp
            code = ErrorCode.PROPERTY_CONSTRAINT_VIOLATION if bad else None
            return broken, Mutation(kind, code)
        target["timestamp"] = stamp
        return broken, Mutation(kind, None)
    if kind == "seqNo shape":
        seq_no = data.draw(st.sampled_from([-1, 2**63, "0", 1.5, None, [0], 1e300, 7.0]))
        broken["seqNo"] = seq_no
        # JSON Schema counts a number with no fraction (1e300, 7.0) as an integer.
        integral = isinstance(seq_no, int) or (isinstance(seq_no, float) and seq_no.is_integer())
        wrong_type = not integral
        return broken, Mutation(kind, ErrorCode.TYPE_CONSTRAINT_VIOLATION if wrong_type else None)
    # transactionId shape
    info = broken["transactionInfo"]
    info["transactionId"] = data.draw(
        st.sampled_from(["", "x" * 36, "x" * 37, 123, None, ["tx"], " ", "tx-1\n", "../tx"])
    )
    shape_ok = isinstance(info["transactionId"], str) and len(info["transactionId"]) <= 36
    return broken, Mutation(kind, None if shape_ok else ErrorCode.TYPE_CONSTRAINT_VIOLATION)
