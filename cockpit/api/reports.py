"""``/reports``: the operator's pictures — totals per day and month, availability over time.

The JSON answers carry the numbers; the ``.svg`` twins draw the same numbers with the chart
code of the public price chart (:mod:`strom_web.charts`), so the admin UI shows server-rendered
charts without a chart library. Totals come from the same read as ``/ledger/totals``
(:meth:`strom_storage.reports.Reports.period_totals`), so the two never disagree; here every
period of the window is present, zeros included, and a total row is added.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from cockpit import report_models as r
from cockpit.api.answers import kwh, sat
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.availability import availability_spans
from strom_storage.reports import Totals
from strom_web.charts import Bar, Span, bar_chart, timeline

__all__ = ["ReportsResource", "period_labels"]

SVG_HEADERS = {"Cache-Control": "no-store"}

# measure -> (chart title, unit, divisor, decimals)
_CHARTS: dict[str, tuple[str, str, int, int]] = {
    "energy": ("Energy delivered", "kWh", 1000, 3),
    "received": ("Money received", "sat", 1000, 0),
    "refunded": ("Refunds paid", "sat", 1000, 0),
    "revenue": ("Revenue (received - refunds - refund fees)", "sat", 1000, 0),
    "sessions": ("Sessions paid", "sessions", 1, 0),
}


def period_labels(since: datetime, until: datetime, period: str) -> list[str]:
    """Every UTC day (``YYYY-MM-DD``) or month (``YYYY-MM``) that ``[since, until)`` touches."""
    first = since.astimezone(UTC)
    last = (until - timedelta(microseconds=1)).astimezone(UTC)
    labels: list[str] = []
    if period == "day":
        day = first.date()
        while day <= last.date():
            labels.append(day.isoformat())
            day += timedelta(days=1)
        return labels
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month):
        labels.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return labels


def _row(period: str, entry: Totals) -> r.ReportRow:
    revenue = entry.paid_msat - entry.refunded_msat - entry.refund_fees_msat
    return r.ReportRow(
        period=period,
        sessions=entry.sessions,
        energy_wh=entry.energy_wh,
        energy_kwh=kwh(entry.energy_wh),
        received_msat=entry.paid_msat,
        received_sat=sat(entry.paid_msat),
        refunded_msat=entry.refunded_msat,
        refunded_sat=sat(entry.refunded_msat),
        refund_fees_msat=entry.refund_fees_msat,
        refund_fees_sat=sat(entry.refund_fees_msat),
        revenue_msat=revenue,
        revenue_sat=sat(revenue) if revenue >= 0 else "-" + sat(-revenue),
    )


def _value(row: r.ReportRow, measure: str) -> int:
    return {
        "energy": row.energy_wh,
        "received": row.received_msat,
        "refunded": row.refunded_msat,
        "revenue": row.revenue_msat,
        "sessions": row.sessions,
    }[measure]


class ReportsResource:
    """Totals per period and availability, as JSON and as SVG charts."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _report(self, period: str, since: datetime, until: datetime) -> r.PeriodReport:
        totals = await self.ctx.reports.period_totals(period=period, since=since, until=until)
        labels = period_labels(since, until, period)
        rows = [_row(label, totals.get(label, Totals())) for label in labels]
        whole = Totals()
        for entry in totals.values():
            whole.sessions += entry.sessions
            whole.paid_msat += entry.paid_msat
            whole.refunded_msat += entry.refunded_msat
            whole.refund_fees_msat += entry.refund_fees_msat
            whole.energy_wh += entry.energy_wh
        return r.PeriodReport(
            period="day" if period == "day" else "month",
            since=since,
            until=until,
            rows=rows,
            total=_row("total", whole),
        )

    async def daily(self, call: Call) -> r.PeriodReport:
        """``GET /reports/daily``."""
        query: r.DailyQuery = call.query
        return await self._report("day", query.since, query.until)

    async def monthly(self, call: Call) -> r.PeriodReport:
        """``GET /reports/monthly``."""
        query: r.MonthlyQuery = call.query
        return await self._report("month", query.since, query.until)

    async def _chart(self, call: Call, period: str) -> web.Response:
        query: r.PeriodChartQuery = call.query
        if period == "day" and query.until - query.since > r.DailyQuery.longest:
            raise ApiError(
                400,
                "bad_request",
                f"the window may span at most {r.DailyQuery.longest.days} days",
            )
        report = await self._report(period, query.since, query.until)
        title, unit, divisor, decimals = _CHARTS[query.measure]
        svg = bar_chart(
            [Bar(row.period, _value(row, query.measure)) for row in report.rows],
            title=f"{title} per {'day' if period == 'day' else 'month'} (UTC)",
            unit=unit,
            divisor=divisor,
            decimals=decimals,
            chart_id=f"{query.measure}-{period}",
        )
        return web.Response(text=svg, content_type="image/svg+xml", headers=SVG_HEADERS)

    async def daily_svg(self, call: Call) -> web.Response:
        """``GET /reports/daily.svg``."""
        return await self._chart(call, "day")

    async def monthly_svg(self, call: Call) -> web.Response:
        """``GET /reports/monthly.svg``."""
        return await self._chart(call, "month")

    async def _availability(self, query: r.AvailabilityQuery) -> r.AvailabilityReport:
        known, changes = await self.ctx.reports.status_changes(
            since=query.since, until=query.until, charger_id=query.charger_id
        )
        spans = availability_spans(changes, known, query.since, query.until)
        out = []
        for (charger_id, connector_id), timeline_ in spans.items():
            seconds: dict[str, int] = {}
            for span in timeline_:
                length = int((span.end - span.start).total_seconds())
                seconds[span.state] = seconds.get(span.state, 0) + length
            out.append(
                r.ConnectorAvailability(
                    charger_id=charger_id,
                    connector_id=connector_id,
                    spans=[
                        r.AvailabilitySpan(start=s.start, end=s.end, state=s.state)
                        for s in timeline_
                    ],
                    seconds=seconds,
                )
            )
        return r.AvailabilityReport(since=query.since, until=query.until, connectors=out)

    async def availability(self, call: Call) -> r.AvailabilityReport:
        """``GET /reports/availability``."""
        return await self._availability(call.query)

    async def availability_svg(self, call: Call) -> web.Response:
        """``GET /reports/availability.svg``."""
        query: r.AvailabilityQuery = call.query
        report = await self._availability(query)
        rows = [
            (
                f"{c.charger_id} #{c.connector_id}",
                [Span(s.start, s.end, s.state) for s in c.spans],
            )
            for c in report.connectors
        ]
        svg = timeline(
            rows,
            query.since,
            query.until,
            title="Availability of each connector",
            chart_id="availability",
        )
        return web.Response(text=svg, content_type="image/svg+xml", headers=SVG_HEADERS)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        svg = ("image/svg+xml",)
        return [
            e(
                "GET",
                "/reports/daily",
                self.daily,
                "Energy, money in, refunds and revenue per UTC day",
                "reports",
                r.PeriodReport,
                query=r.DailyQuery,
                not_found=False,
            ),
            e(
                "GET",
                "/reports/monthly",
                self.monthly,
                "Energy, money in, refunds and revenue per UTC month",
                "reports",
                r.PeriodReport,
                query=r.MonthlyQuery,
                not_found=False,
            ),
            e(
                "GET",
                "/reports/daily.svg",
                self.daily_svg,
                "A bar chart (SVG) of one measure per UTC day",
                "reports",
                query=r.PeriodChartQuery,
                media=svg,
                not_found=False,
            ),
            e(
                "GET",
                "/reports/monthly.svg",
                self.monthly_svg,
                "A bar chart (SVG) of one measure per UTC month",
                "reports",
                query=r.PeriodChartQuery,
                media=svg,
                not_found=False,
            ),
            e(
                "GET",
                "/reports/availability",
                self.availability,
                "Each connector's states (online, charging, faulted, offline) over time",
                "reports",
                r.AvailabilityReport,
                query=r.AvailabilityQuery,
                not_found=False,
            ),
            e(
                "GET",
                "/reports/availability.svg",
                self.availability_svg,
                "A timeline chart (SVG) of each connector's states",
                "reports",
                query=r.AvailabilityQuery,
                media=svg,
                not_found=False,
            ),
        ]
