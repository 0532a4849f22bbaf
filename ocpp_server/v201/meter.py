"""Energy register readings out of OCPP 2.0.1 meter values, with no I/O.

The rules (which register counts, units, the stale ``Transaction.Begin`` copy) are the
version-neutral ones of :mod:`ocpp_server.meter`; this module reads a 2.0.1 ``SampledValue``:
``value`` is a JSON number, the unit is ``unitOfMeasure.unit`` (``Wh`` when absent) scaled by
ten to the power ``unitOfMeasure.multiplier`` (0 when absent). A ``signedMeterValue`` travels
next to the value, which stays the reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ocpp_server.meter import REGISTER, RegisterReading, Sampled
from ocpp_server.meter import register_readings as _register_readings

__all__ = ["register_readings", "sampled"]


def _decimal(value: object) -> object:
    """A JSON number as a decimal string; anything else as it is (it is then skipped)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return str(value)


def sampled(value: Mapping[str, Any]) -> Sampled:
    """Read one OCPP 2.0.1 SampledValue."""
    unit_of_measure = value.get("unitOfMeasure")
    if not isinstance(unit_of_measure, dict):
        unit_of_measure = {}
    multiplier = unit_of_measure.get("multiplier", 0)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int):
        multiplier = 0
    return Sampled(
        measurand=str(value.get("measurand", REGISTER)),
        value=_decimal(value.get("value")),
        unit=unit_of_measure.get("unit"),
        multiplier=multiplier,
        context=str(value.get("context", "Sample.Periodic")),
        location=str(value.get("location", "Outlet")),
        phase=value.get("phase"),
    )


def register_readings(
    meter_values: Iterable[Mapping[str, Any]], *, kwh_labelled_wh: bool = False
) -> tuple[list[RegisterReading], list[str]]:
    """Reduce OCPP 2.0.1 MeterValue objects to energy register readings.

    Args:
        meter_values: the ``meterValue`` list of MeterValues or TransactionEvent.
        kwh_labelled_wh: the charger's quirk flag: read a register labelled Wh as kWh.

    Returns:
        The readings (at most one per MeterValue, in the order given) and notes on what was
        skipped and why, for the log.
    """
    return _register_readings(meter_values, sampled, kwh_labelled_wh=kwh_labelled_wh)
