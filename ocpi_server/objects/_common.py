"""What every OCPI object of Strom shares: the party, timestamps, exact numbers, JSON.

Pure: no I/O, no clock (``now`` is always an argument), no global state.

Numbers: OCPI numbers are JSON numbers (types.asciidoc: "4 decimals unless mentioned
otherwise"). Strom keeps them as :class:`~decimal.Decimal` from the integer msat and Wh they
come from, and :func:`dumps` writes each one as a plain decimal JSON number (never a float, never
an exponent), so what an eMSP reads is exactly what was computed here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from strom_core.errors import StromError

__all__ = [
    "ObjectError",
    "OcpiObject",
    "Party",
    "check_cistring",
    "dumps",
    "split_exact",
    "timestamp",
]

OcpiObject = dict[str, Any]
"""An OCPI object as JSON-ready data (``Decimal`` numbers; see :func:`dumps`)."""

_COUNTRY: Final = re.compile(r"[A-Z]{2}")
_PARTY_ID: Final = re.compile(r"[A-Z0-9]{3}")


class ObjectError(StromError):
    """A Strom object cannot be expressed as a valid OCPI object (the message says why)."""


@dataclass(frozen=True, slots=True)
class Party:
    """Strom as an OCPI party: ISO 3166-1 alpha-2 ``country_code`` and 3-character ``party_id``.

    Both are CiStrings; they are kept upper case, as the eMI3 EVSE ids built from them are.
    """

    country_code: str
    party_id: str

    def __post_init__(self) -> None:
        if not _COUNTRY.fullmatch(self.country_code):
            raise ObjectError(
                f"country_code {self.country_code!r}: expected ISO 3166-1 alpha-2, e.g. 'DE'"
            )
        if not _PARTY_ID.fullmatch(self.party_id):
            raise ObjectError(
                f"party_id {self.party_id!r}: expected 3 upper-case letters or digits, e.g. 'STR'"
            )

    def fields(self) -> OcpiObject:
        """The ``country_code`` and ``party_id`` members every owned object starts with."""
        return {"country_code": self.country_code, "party_id": self.party_id}


def timestamp(at: datetime) -> str:
    """An OCPI DateTime: UTC with ``Z``, whole seconds (RFC 3339, types.asciidoc).

    Raises:
        ObjectError: a naive datetime (its time zone would be a guess).
    """
    if at.tzinfo is None or at.utcoffset() is None:
        raise ObjectError(f"timestamp {at!r} has no time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check_cistring(value: str, length: int, what: str) -> str:
    """``value`` if it is a CiString of at most ``length`` printable ASCII characters.

    Raises:
        ObjectError: too long, empty, or not printable ASCII.
    """
    if not value or len(value) > length or not all(" " <= c <= "~" for c in value):
        raise ObjectError(f"{what} {value!r}: expected 1-{length} printable ASCII characters")
    return value


def split_exact(amounts: Sequence[int], convert: Callable[[int], Decimal]) -> list[Decimal]:
    """Convert ``amounts`` so that the converted parts add up to ``convert(sum(amounts))``.

    Each part is ``convert(cumulative sum up to it) - convert(cumulative sum before it)``: the
    rounding of ``convert`` happens on running totals, never on the parts, so no rounding error
    accumulates and the total is the exact conversion of the exact total.
    """
    parts: list[Decimal] = []
    running = 0
    before = convert(0)
    for amount in amounts:
        running += amount
        after = convert(running)
        parts.append(after - before)
        before = after
    return parts


def dumps(obj: OcpiObject | list[OcpiObject]) -> bytes:
    """``obj`` as compact UTF-8 JSON, every Decimal written exactly as a plain decimal number.

    ``0.00000005`` stays ``0.00000005`` (a float would print ``5e-08``); ``2.5000`` is written
    ``2.5``. Other values are written as :func:`json.dumps` writes them.
    """
    return _encode(obj).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ObjectError(f"not a JSON number: {value}")
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, dict):
        members = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{_encode(v)}" for k, v in value.items()
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)
