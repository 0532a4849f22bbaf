"""Typed reads of payload fields, for every OCPP version's message views, with no I/O.

Payloads have passed schema validation (unless a quirk relaxed it); these reads re-check the
type the code relies on and raise :class:`~ocpp_server.ocppj.PayloadInvalid` (answered with a
CALLERROR) rather than letting a wrong type fail elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ocpp_server.ocppj import ErrorCode, PayloadInvalid, parse_timestamp

__all__ = ["integer", "optional_string", "string", "timestamp"]


def string(payload: Mapping[str, Any], key: str) -> str:
    """A required string field."""
    value = payload.get(key)
    if not isinstance(value, str):
        raise PayloadInvalid(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{key}: expected a string")
    return value


def optional_string(payload: Mapping[str, Any], key: str) -> str | None:
    """An optional string field (None when absent)."""
    value = payload.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadInvalid(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{key}: expected a string")
    return value


def integer(payload: Mapping[str, Any], key: str) -> int:
    """A required integer field (a JSON boolean is no integer)."""
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadInvalid(ErrorCode.TYPE_CONSTRAINT_VIOLATION, f"{key}: expected an integer")
    return value


def timestamp(payload: Mapping[str, Any], key: str) -> datetime:
    """A required RFC 3339 date-time field, as an aware UTC datetime."""
    try:
        return parse_timestamp(string(payload, key))
    except PayloadInvalid as exc:
        raise PayloadInvalid(exc.code, f"{key}: {exc.description}") from exc
