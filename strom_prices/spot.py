"""Spot prices as the providers give them, and the rules that turn them into a clean series.

Theory of operation
-------------------
Each provider's answer is parsed by a pure function over bytes into :class:`SpotPrice` rows:
a UTC interval and a price in the provider's currency per kWh (``Decimal``, converted from
EUR/MWh or p/kWh exactly). Local time never appears: providers give UTC or offsets, so days of
23 and 25 hours (daylight saving changes) need no special case.

:func:`clean` then makes one contiguous, sorted series:

- rows are sorted; a row repeated with the same start keeps the first one; rows that overlap
  a previous one are refused (a shape we do not understand is a :class:`ProviderError`);
- resolutions may mix (15-minute and hourly rows side by side);
- a **gap** (no row for some time between two rows) is filled with the **higher** of the two
  neighbouring prices: a missing price is never guessed lower than what is known around it;
- negative prices are kept as they are (the formula and its minimum decide what is billed).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from strom_prices.errors import ProviderError

__all__ = ["SpotPrice", "clean", "decimal_of", "json_of", "utc_of"]


@dataclass(frozen=True, slots=True)
class SpotPrice:
    """One interval's price as a provider gave it.

    Attributes:
        start: UTC, inclusive.
        end: UTC, exclusive.
        per_kwh: the price in ``currency`` per kWh (may be negative).
        currency: ISO 4217 code, e.g. ``EUR``.
    """

    start: datetime
    end: datetime
    per_kwh: Decimal
    currency: str


def json_of(source: str, body: bytes) -> Any:
    """Parse a JSON answer; anything else is a ProviderError naming the source."""
    try:
        return json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProviderError(f"{source}: the answer is not JSON ({exc})") from None


def decimal_of(source: str, value: object, what: str) -> Decimal:
    """A finite Decimal from a JSON or XML value."""
    if isinstance(value, bool) or not isinstance(value, Decimal | str | int):
        raise ProviderError(f"{source}: {what} is not a number: {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ProviderError(f"{source}: {what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise ProviderError(f"{source}: {what} is not a finite number: {value!r}")
    return number


def utc_of(source: str, value: object, what: str) -> datetime:
    """A UTC datetime from an ISO 8601 text; a text without offset is taken as UTC."""
    if not isinstance(value, str):
        raise ProviderError(f"{source}: {what} is not a time: {value!r}")
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProviderError(f"{source}: {what} is not a time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def clean(source: str, rows: Iterable[SpotPrice]) -> tuple[SpotPrice, ...]:
    """Sort, de-duplicate and fill gaps (with the higher neighbour); see the module docstring.

    Raises:
        ProviderError: no rows, an empty or overlapping interval, or mixed currencies.
    """
    ordered = sorted(rows, key=lambda row: row.start)
    if not ordered:
        raise ProviderError(f"{source}: the answer holds no prices")
    currencies = {row.currency for row in ordered}
    if len(currencies) > 1:
        raise ProviderError(f"{source}: prices in several currencies {sorted(currencies)}")
    result: list[SpotPrice] = []
    for row in ordered:
        if row.end <= row.start:
            raise ProviderError(f"{source}: an empty interval at {row.start.isoformat()}")
        if result and row.start == result[-1].start:
            continue
        if result and row.start < result[-1].end:
            raise ProviderError(f"{source}: overlapping intervals at {row.start.isoformat()}")
        if result and row.start > result[-1].end:
            before = result[-1]
            result.append(
                SpotPrice(before.end, row.start, max(before.per_kwh, row.per_kwh), row.currency)
            )
        result.append(row)
    return tuple(result)
