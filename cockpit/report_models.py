"""The bodies of ``/reports`` (the operator's pictures): queries, totals per period, availability.

Kept beside :mod:`cockpit.models` (whose rules they follow: integer msat and Wh with a ``*_sat``
/ ``*_kwh`` twin as a decimal string, ISO 8601 UTC times, unknown query fields refused).
Every report covers a window ``[since, until)`` that must be given, in order, and not longer
than the report allows, so a typo or a fuzzer's extreme cannot make the database sum years.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from cockpit.models import ChargerId, IsoTime, _In, _Out

__all__ = [
    "AvailabilityQuery",
    "AvailabilityReport",
    "AvailabilitySpan",
    "ConnectorAvailability",
    "DailyQuery",
    "Measure",
    "MonthlyQuery",
    "PeriodChartQuery",
    "PeriodReport",
    "ReportRow",
    "SoldInterval",
    "SoldQuery",
    "SoldReport",
]

Measure = Literal["energy", "received", "refunded", "revenue", "sessions"]
"""What a period chart shows: energy (kWh), money in, money out, what is kept (sat), sessions."""


class _Window(_In):
    since: IsoTime = Field(description="Start of the window (inclusive), ISO 8601 with zone")
    until: IsoTime = Field(description="End of the window (exclusive), after since")
    longest: ClassVar[timedelta] = timedelta(days=366)

    @model_validator(mode="after")
    def _in_order(self) -> _Window:
        if self.until <= self.since:
            raise ValueError("until must be after since")
        if self.until - self.since > self.longest:
            raise ValueError(f"the window may span at most {self.longest.days} days")
        return self


class DailyQuery(_Window):
    """``GET /reports/daily``: at most 366 days."""


class MonthlyQuery(_Window):
    """``GET /reports/monthly``: at most ten years."""

    longest: ClassVar[timedelta] = timedelta(days=3660)


class PeriodChartQuery(_Window):
    """``GET /reports/daily.svg`` and ``/reports/monthly.svg``: the window and the measure."""

    measure: Measure = "energy"
    longest: ClassVar[timedelta] = timedelta(days=3660)


class AvailabilityQuery(_Window):
    """``GET /reports/availability`` (and ``.svg``): at most 92 days, one charger or all."""

    charger_id: ChargerId | None = None
    longest: ClassVar[timedelta] = timedelta(days=92)


class ReportRow(_Out):
    """One period's totals (``period`` is ``2026-12-07``, ``2026-12`` or ``total``).

    Money in is settled payments by settlement time; money out paid refunds (and their
    routing fees) by payment time; energy the sessions' by stop time; sessions those paid for
    in the period. Revenue is what stays: received - refunded - refund fees.
    """

    period: str
    sessions: int
    energy_wh: int
    energy_kwh: str
    received_msat: int
    received_sat: str
    refunded_msat: int
    refunded_sat: str
    refund_fees_msat: int
    refund_fees_sat: str
    revenue_msat: int
    revenue_sat: str


class PeriodReport(_Out):
    """Totals per UTC day or month of a window, every period present (zeros included)."""

    period: Literal["day", "month"]
    since: datetime
    until: datetime
    rows: list[ReportRow]
    total: ReportRow


class AvailabilitySpan(_Out):
    """One state of a connector from ``start`` to ``end`` (online, charging, faulted, ...)."""

    start: datetime
    end: datetime
    state: str


class ConnectorAvailability(_Out):
    """One connector's timeline over the window, and the seconds spent in each state."""

    charger_id: str
    connector_id: int
    spans: list[AvailabilitySpan]
    seconds: dict[str, int]


class AvailabilityReport(_Out):
    """Each connector's availability over ``[since, until)``."""

    since: datetime
    until: datetime
    connectors: list[ConnectorAvailability]


class SoldQuery(_In):
    """``GET /chargers/{charger_id}/reports/sold`` (and ``.svg``): one UTC day."""

    day: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", description="The UTC day, YYYY-MM-DD")

    @field_validator("day")
    @classmethod
    def _a_date(cls, value: str) -> str:
        try:
            date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is no date") from None
        return value


class SoldInterval(_Out):
    """One interval of the day: the schedule's price, and what was sold in it.

    ``energy_wh`` and ``revenue_msat`` (the energy's cost as billed) are the sums over the
    sessions' billed intervals that start in it (``ledger_intervals``); ``billed_msat_per_kwh``
    the prices they were billed at (each session at the schedule frozen when it was paid).
    """

    start: datetime
    end: datetime
    schedule_msat_per_kwh: int | None  # None: the schedule does not cover it
    schedule_sat_per_kwh: str | None
    energy_wh: int
    energy_kwh: str
    revenue_msat: int
    revenue_sat: str
    billed_msat_per_kwh: list[int]
    sessions: int


class SoldReport(_Out):
    """A charger's price schedule for one UTC day beside the energy sold at each price."""

    charger_id: str
    day: str
    since: datetime
    until: datetime
    source: str  # the schedule's source: static, tou:profile, awattar:DE-LU, ...
    fetched_at: datetime | None
    rate_source: str
    schedule_error: str  # why no schedule can be given, if none can
    intervals: list[SoldInterval]
    energy_wh: int
    energy_kwh: str
    revenue_msat: int
    revenue_sat: str
    sessions: int
