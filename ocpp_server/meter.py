"""Energy register readings out of OCPP meter values, with no I/O, for every OCPP version.

Theory of operation: Strom bills ``meterStop - meterStart`` and follows a session with the
energy register (``Energy.Active.Import.Register``). A meter value (one timestamp, many sampled
values) may carry several registers: per phase, at the inlet and the outlet, and - on some
chargers - a stale ``Transaction.Begin`` copy next to the periodic one (Growatt Thor,
lbbrhzn/ocpp#1466 and #1838). :func:`register_readings` reduces each meter value to at most one
reading:

* only the register measurand (the OCPP default when ``measurand`` is absent), only raw values
  (1.6's ``SignedData`` is an opaque blob), no per-phase values (a phase is a part, not the
  whole), at the outlet or without a location (the inlet only when nothing else is there);
* the unit decides the scale: ``Wh`` (also when absent) or ``kWh``, times ten to the power of
  the unit's multiplier (OCPP 2.0.1's ``unitOfMeasure.multiplier``); any other unit, or a value
  that is not a non-negative decimal, is skipped with a note;
* among what is left, a non-``Transaction.Begin`` value wins, then the highest (a register only
  grows, so the highest is the latest).

The versions differ in how a sampled value is written (1.6: a decimal string with ``unit`` and
``format``; 2.0.1: a number with ``unitOfMeasure``); each version's module reads its own into a
:class:`Sampled` and calls :func:`register_readings` with that reader. Values are exact:
:func:`strom_core.units.parse_energy_wh` turns the decimal into whole Wh (half-up). Repeated and
out-of-order readings are returned as they come; the core tolerates them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from ocpp_server.ocppj import PayloadInvalid, parse_timestamp
from strom_core.units import UnitError, parse_energy_wh

__all__ = [
    "REGISTER",
    "TRANSACTION_BEGIN",
    "TRANSACTION_END",
    "RegisterReading",
    "Sampled",
    "SampledReader",
    "register_readings",
]

REGISTER: Final = "Energy.Active.Import.Register"
TRANSACTION_BEGIN: Final = "Transaction.Begin"
TRANSACTION_END: Final = "Transaction.End"


@dataclass(frozen=True, slots=True)
class Sampled:
    """One sampled value, as every OCPP version can express it.

    Attributes:
        measurand: what was measured (the register when the charger left it out).
        value: the reading as sent: a decimal string is read, anything else is skipped.
        unit: ``Wh``, ``kWh`` or None (Wh).
        multiplier: the power of ten the value is scaled by (0 when not given).
        context: why it was sampled (``Sample.Periodic`` when not given).
        location: where (``Outlet`` when not given).
        phase: the phase, or None for the whole.
        raw: False for a signed blob that is no reading.
    """

    measurand: str
    value: object
    unit: object
    multiplier: int = 0
    context: str = "Sample.Periodic"
    location: str = "Outlet"
    phase: object = None
    raw: bool = True


SampledReader = Callable[[Mapping[str, Any]], Sampled]
"""Reads one version's sampled-value object into a :class:`Sampled`."""


@dataclass(frozen=True, slots=True)
class RegisterReading:
    """One energy register reading, in whole Wh."""

    timestamp: datetime
    register_wh: int
    context: str


@dataclass(frozen=True, slots=True)
class _Candidate:
    register_wh: int
    context: str
    at_outlet: bool

    def rank(self) -> tuple[bool, bool, int]:
        return (self.at_outlet, self.context != TRANSACTION_BEGIN, self.register_wh)


def _scaled(value: str, multiplier: int) -> str:
    if multiplier == 0:
        return value
    try:
        return format(Decimal(value).scaleb(multiplier), "f")
    except InvalidOperation:
        return value  # parse_energy_wh names the bad value


def _candidate(sampled: Sampled, *, kwh_labelled_wh: bool, notes: list[str]) -> _Candidate | None:
    if sampled.measurand != REGISTER or not sampled.raw or sampled.phase is not None:
        return None
    if sampled.location not in ("Outlet", "Inlet"):
        return None
    unit = sampled.unit
    if kwh_labelled_wh and unit in (None, "Wh"):
        unit = "kWh"
    value = sampled.value
    if not isinstance(value, str) or not isinstance(unit, str | None):
        notes.append("register value is not a decimal")
        return None
    try:
        register = parse_energy_wh(_scaled(value, sampled.multiplier), unit)
    except UnitError as exc:
        notes.append(f"register skipped: {exc}")
        return None
    return _Candidate(register, sampled.context, sampled.location == "Outlet")


def register_readings(
    meter_values: Iterable[Mapping[str, Any]],
    read: SampledReader,
    *,
    kwh_labelled_wh: bool = False,
) -> tuple[list[RegisterReading], list[str]]:
    """Reduce meter value objects to energy register readings.

    Args:
        meter_values: a list of meter value objects (``timestamp`` and ``sampledValue``).
        read: the version's reader of one sampled value.
        kwh_labelled_wh: the charger's quirk flag: read a register labelled Wh as kWh.

    Returns:
        The readings (at most one per meter value, in the order given) and notes on what was
        skipped and why, for the log.
    """
    readings: list[RegisterReading] = []
    notes: list[str] = []
    for entry in meter_values:
        sampled_values = entry.get("sampledValue")
        if not isinstance(sampled_values, list):
            notes.append("MeterValue without sampledValue list")
            continue
        candidates = [
            candidate
            for sampled in sampled_values
            if isinstance(sampled, dict)
            and (
                candidate := _candidate(read(sampled), kwh_labelled_wh=kwh_labelled_wh, notes=notes)
            )
        ]
        if not candidates:
            continue
        try:
            timestamp = parse_timestamp(entry.get("timestamp"))
        except PayloadInvalid:
            notes.append("MeterValue with an unreadable timestamp")
            continue
        best = max(candidates, key=_Candidate.rank)
        readings.append(RegisterReading(timestamp, best.register_wh, best.context))
    return readings, notes
