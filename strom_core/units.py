"""Exact units: money in integer millisatoshi, energy in integer watt-hours.

Theory of operation: no float ever touches money or energy. Values enter and leave Strom only
through the conversion functions below, and each one states its rounding rule:

* sat -> msat is exact (x1000). msat -> sat for *display* floors; msat -> sat for an amount a
  wallet must *send* rounds up, so a payer is never asked for less than the price.
* kWh/Wh strings from chargers (OCPP ``Energy.Active.Import.Register``) are parsed with
  :class:`decimal.Decimal` and rounded half-up to whole Wh.
* Prices per kWh are msat per kWh; the cost of ``wh`` is ``floor(wh * price / 1000)``: at most
  one msat in the driver's favour, never against.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import NewType

Msat = NewType("Msat", int)
Wh = NewType("Wh", int)

MSAT_PER_SAT = 1000
WH_PER_KWH = 1000

__all__ = [
    "MSAT_PER_SAT",
    "WH_PER_KWH",
    "Msat",
    "UnitError",
    "Wh",
    "energy_cost_msat",
    "format_kwh",
    "format_sat",
    "kwh_to_wh",
    "msat",
    "msat_to_sat_ceil",
    "msat_to_sat_floor",
    "parse_energy_wh",
    "sat_decimal_to_msat",
    "sat_to_msat",
    "time_cost_msat",
    "wh",
]


class UnitError(ValueError):
    """A quantity that cannot be represented exactly (negative, fractional msat, not a number)."""


def msat(value: int) -> Msat:
    """Return ``value`` as a non-negative msat amount.

    Raises:
        UnitError: when ``value`` is not a non-negative int (bool is refused too).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnitError(f"msat must be a non-negative integer, got {value!r}")
    return Msat(value)


def wh(value: int) -> Wh:
    """Return ``value`` as a non-negative Wh amount.

    Raises:
        UnitError: when ``value`` is not a non-negative int.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnitError(f"Wh must be a non-negative integer, got {value!r}")
    return Wh(value)


def sat_to_msat(sat: int) -> Msat:
    """Exact conversion of whole satoshis to msat."""
    if isinstance(sat, bool) or not isinstance(sat, int) or sat < 0:
        raise UnitError(f"sat must be a non-negative integer, got {sat!r}")
    return Msat(sat * MSAT_PER_SAT)


def sat_decimal_to_msat(value: Decimal | int | str) -> Msat:
    """Convert a decimal number of sats (e.g. ``"0.5"`` for a per-minute price) to msat.

    Raises:
        UnitError: when the value is negative, not a number, or finer than 1 msat.
    """
    try:
        amount = Decimal(value) * MSAT_PER_SAT
    except (InvalidOperation, TypeError) as exc:
        raise UnitError(f"not a number of sats: {value!r}") from exc
    if not amount.is_finite() or amount < 0:
        raise UnitError(f"sat amount must be a non-negative number, got {value!r}")
    if amount != amount.to_integral_value():
        raise UnitError(f"sat amount {value!r} is finer than one msat")
    return Msat(int(amount))


def msat_to_sat_floor(amount: int) -> int:
    """Whole sats for display (floors: 1999 msat shows as 1 sat)."""
    return amount // MSAT_PER_SAT


def msat_to_sat_ceil(amount: int) -> int:
    """Whole sats a payer must send to cover ``amount`` msat (rounds up)."""
    return -(-amount // MSAT_PER_SAT)


def kwh_to_wh(kwh: Decimal | int | str) -> Wh:
    """Convert kWh (exact decimal) to whole Wh, rounding half-up."""
    return parse_energy_wh(str(kwh), "kWh")


def parse_energy_wh(value: str, unit: str | None) -> Wh:
    """Parse an energy register reading as sent by a charger into whole Wh.

    Args:
        value: the decimal string (OCPP ``SampledValue.value``).
        unit: ``"Wh"`` (the OCPP default when absent) or ``"kWh"``.

    Returns:
        Whole watt-hours, rounded half-up.

    Raises:
        UnitError: for a non-numeric or negative value or an unknown unit.
    """
    try:
        number = Decimal(value)
    except (InvalidOperation, TypeError) as exc:
        raise UnitError(f"energy value is not a number: {value!r}") from exc
    if not number.is_finite() or number < 0:
        raise UnitError(f"energy value must be a non-negative number, got {value!r}")
    unit = unit or "Wh"
    if unit == "kWh":
        number *= WH_PER_KWH
    elif unit != "Wh":
        raise UnitError(f"energy unit must be Wh or kWh, got {unit!r}")
    return Wh(int(number.to_integral_value(rounding=ROUND_HALF_UP)))


def energy_cost_msat(energy: int, price_msat_per_kwh: int) -> Msat:
    """Cost of ``energy`` Wh at ``price_msat_per_kwh``; floors (driver's favour, < 1 msat)."""
    return Msat(energy * price_msat_per_kwh // WH_PER_KWH)


def time_cost_msat(seconds: int, price_msat_per_minute: int) -> Msat:
    """Cost of ``seconds`` of charging at a per-minute price, prorated per second; floors."""
    return Msat(max(seconds, 0) * price_msat_per_minute // 60)


def format_sat(amount: int) -> str:
    """Human display of msat as sats: whole sats, or three decimals when not whole."""
    if amount % MSAT_PER_SAT == 0:
        return f"{amount // MSAT_PER_SAT:,} sat"
    sats = (Decimal(amount) / MSAT_PER_SAT).quantize(Decimal("0.001"), rounding=ROUND_FLOOR)
    return f"{sats:,} sat"


def format_kwh(energy: int) -> str:
    """Human display of Wh as kWh with three decimals (exact)."""
    kwh = (Decimal(energy) / WH_PER_KWH).quantize(Decimal("0.001"), rounding=ROUND_CEILING)
    return f"{kwh} kWh"
