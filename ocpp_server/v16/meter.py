"""Energy register readings out of OCPP 1.6 MeterValue lists, with no I/O.

Theory of operation: Strom bills ``meterStop - meterStart`` and follows a session with the
energy register (``Energy.Active.Import.Register``). A MeterValue (one timestamp, many sampled
values) may carry several registers: per phase, at the inlet and the outlet, and - on some
chargers - a stale ``Transaction.Begin`` copy next to the periodic one (Growatt Thor,
lbbrhzn/ocpp#1466 and #1838). :func:`register_readings` reduces each MeterValue to at most one
reading:

* only the register measurand (the OCPP default when ``measurand`` is absent), only ``Raw``
  values (``SignedData`` is an opaque blob), no per-phase values (a phase is a part, not the
  whole), at the outlet or without a location (the inlet only when nothing else is there);
* the unit decides the scale: ``Wh`` (also when absent) or ``kWh``; any other unit, or a value
  that is not a non-negative decimal, is skipped with a note;
* among what is left, a non-``Transaction.Begin`` value wins, then the highest (a register only
  grows, so the highest is the latest).

Values are exact: :func:`strom_core.units.parse_energy_wh` turns the decimal string into whole Wh
(half-up). Repeated and out-of-order readings are returned as they come; the core tolerates them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from ocpp_server.ocppj import PayloadInvalid, parse_timestamp
from strom_core.units import UnitError, parse_energy_wh

__all__ = ["REGISTER", "RegisterReading", "register_readings"]

REGISTER: Final = "Energy.Active.Import.Register"
_TRANSACTION_BEGIN: Final = "Transaction.Begin"


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
        return (self.at_outlet, self.context != _TRANSACTION_BEGIN, self.register_wh)


def _candidate(
    sampled: Mapping[str, Any], *, kwh_labelled_wh: bool, notes: list[str]
) -> _Candidate | None:
    if sampled.get("measurand", REGISTER) != REGISTER:
        return None
    if sampled.get("format", "Raw") != "Raw" or sampled.get("phase") is not None:
        return None
    location = sampled.get("location", "Outlet")
    if location not in ("Outlet", "Inlet"):
        return None
    unit = sampled.get("unit")
    if kwh_labelled_wh and unit in (None, "Wh"):
        unit = "kWh"
    value = sampled.get("value")
    if not isinstance(value, str) or not isinstance(unit, str | None):
        notes.append("register value is not a string")
        return None
    try:
        register = parse_energy_wh(value, unit)
    except UnitError as exc:
        notes.append(f"register skipped: {exc}")
        return None
    context = sampled.get("context", "Sample.Periodic")
    return _Candidate(register, str(context), location == "Outlet")


def register_readings(
    meter_values: Iterable[Mapping[str, Any]], *, kwh_labelled_wh: bool = False
) -> tuple[list[RegisterReading], list[str]]:
    """Reduce MeterValue objects to energy register readings.

    Args:
        meter_values: the ``meterValue`` list of MeterValues.req, or ``transactionData`` of
            StopTransaction.req.
        kwh_labelled_wh: the charger's quirk flag: read a register labelled Wh as kWh.

    Returns:
        The readings (at most one per MeterValue, in the order given) and notes on what was
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
            and (candidate := _candidate(sampled, kwh_labelled_wh=kwh_labelled_wh, notes=notes))
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
