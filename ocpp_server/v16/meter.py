"""Energy register readings out of OCPP 1.6 MeterValue lists, with no I/O.

The rules (which register counts, units, the stale ``Transaction.Begin`` copy) are the
version-neutral ones of :mod:`ocpp_server.meter`; this module reads a 1.6 ``SampledValue``:
``value`` is a decimal string, ``unit`` sits next to it, ``format`` ``SignedData`` is an opaque
blob, not a reading.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ocpp_server.meter import REGISTER, RegisterReading, Sampled
from ocpp_server.meter import register_readings as _register_readings

__all__ = ["REGISTER", "RegisterReading", "register_readings", "sampled"]


def sampled(value: Mapping[str, Any]) -> Sampled:
    """Read one OCPP 1.6 SampledValue."""
    return Sampled(
        measurand=str(value.get("measurand", REGISTER)),
        value=value.get("value"),
        unit=value.get("unit"),
        context=str(value.get("context", "Sample.Periodic")),
        location=str(value.get("location", "Outlet")),
        phase=value.get("phase"),
        raw=value.get("format", "Raw") == "Raw",
    )


def register_readings(
    meter_values: Iterable[Mapping[str, Any]], *, kwh_labelled_wh: bool = False
) -> tuple[list[RegisterReading], list[str]]:
    """Reduce OCPP 1.6 MeterValue objects to energy register readings.

    Args:
        meter_values: the ``meterValue`` list of MeterValues.req, or ``transactionData`` of
            StopTransaction.req.
        kwh_labelled_wh: the charger's quirk flag: read a register labelled Wh as kWh.

    Returns:
        The readings (at most one per MeterValue, in the order given) and notes on what was
        skipped and why, for the log.
    """
    return _register_readings(meter_values, sampled, kwh_labelled_wh=kwh_labelled_wh)
