"""``/chargers/{charger_id}/reports/sold``: a day's price schedule beside what was sold at it.

For one charger and one UTC day: each interval of the charger's price schedule (as its price
source gives it now: a static tariff's price in force all day, a time-of-use profile's windows,
a provider's prices through the formula at the exchange rate in force) with the energy the
charger's sessions were billed in it and what that energy cost them, from the ledger's billed
intervals (``ledger_intervals``: only sessions priced by a schedule journal them). A billed
interval belongs to the schedule interval its start falls in; one the schedule does not cover
(another length, or no schedule now) is a row of its own with no schedule price. The ``.svg``
twin draws the same rows with :func:`strom_web.charts.sold_chart`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from aiohttp import web

from cockpit import report_models as r
from cockpit.api.answers import kwh, sat
from cockpit.api.context import ApiContext
from cockpit.endpoint import Call, Endpoint
from strom_core.config import ProfileConfig
from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceSchedule
from strom_storage.reports import SoldInterval
from strom_web.charts import SoldBar, sold_chart

__all__ = ["SoldResource"]

SVG_HEADERS = {"Cache-Control": "no-store"}


@dataclass
class _Row:
    start: datetime
    end: datetime
    price: int | None
    energy_wh: int = 0
    revenue_msat: int = 0
    billed: set[int] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)

    def add(self, sold: SoldInterval) -> None:
        self.energy_wh += sold.energy_wh
        self.revenue_msat += sold.cost_msat
        self.billed.add(sold.energy_msat_per_kwh)
        self.sessions.add(sold.session_id)


def _signed_sat(msat: int) -> str:
    return sat(msat) if msat >= 0 else "-" + sat(-msat)


def rows_of(schedule: PriceSchedule | None, sold: list[SoldInterval]) -> list[_Row]:
    """The schedule's intervals with the billed intervals that start in each (pure)."""
    rows = [
        _Row(i.start, i.end, i.energy_msat_per_kwh)
        for i in (schedule.intervals if schedule is not None else ())
    ]
    extra: dict[tuple[datetime, datetime], _Row] = {}
    for entry in sold:
        home = next((row for row in rows if row.start <= entry.start < row.end), None)
        if home is None:
            key = (entry.start, entry.end)
            home = extra.setdefault(key, _Row(entry.start, entry.end, None))
        home.add(entry)
    return sorted([*rows, *extra.values()], key=lambda row: (row.start, row.end))


class SoldResource:
    """The price schedule beside what was sold at each price, per charger and day."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def _schedule(
        self, profile: ProfileConfig, since: datetime
    ) -> tuple[PriceSchedule | None, str]:
        """The charger's schedule for the day from ``since``, or None and why not."""
        own = self.ctx.payments.prices
        if profile.tariff.dynamic and own is not None:
            try:
                schedule = await own.schedule(profile.id, since, 24)
            except NoPrice as exc:
                return None, exc.reason
        else:  # static: the price in force (a price set by DM included; fiat at the rate now)
            try:
                schedule = self.ctx.payments.static_schedule(profile, since, 24)
            except NoPrice as exc:
                return None, exc.reason
        until = since + timedelta(days=1)
        kept = tuple(i for i in schedule.intervals if i.end > since and i.start < until)
        if not kept:
            return None, f"the {schedule.source} prices do not cover this day"
        return PriceSchedule(kept, schedule.source, schedule.fetched_at, schedule.rate_source), ""

    async def _report(self, call: Call) -> r.SoldReport:
        profile = self.ctx.profile(call)
        query: r.SoldQuery = call.query
        since = datetime.combine(date.fromisoformat(query.day), datetime.min.time(), UTC)
        until = since + timedelta(days=1)
        schedule, error = await self._schedule(profile, since)
        sold = await self.ctx.reports.sold_intervals(
            charger_id=profile.id, since=since, until=until
        )
        rows = rows_of(schedule, sold)
        energy = sum(row.energy_wh for row in rows)
        revenue = sum(row.revenue_msat for row in rows)
        return r.SoldReport(
            charger_id=profile.id,
            day=query.day,
            since=since,
            until=until,
            source="" if schedule is None else schedule.source,
            fetched_at=None if schedule is None else schedule.fetched_at,
            rate_source="" if schedule is None else schedule.rate_source,
            schedule_error=error,
            intervals=[
                r.SoldInterval(
                    start=row.start,
                    end=row.end,
                    schedule_msat_per_kwh=row.price,
                    schedule_sat_per_kwh=None if row.price is None else _signed_sat(row.price),
                    energy_wh=row.energy_wh,
                    energy_kwh=kwh(row.energy_wh),
                    revenue_msat=row.revenue_msat,
                    revenue_sat=_signed_sat(row.revenue_msat),
                    billed_msat_per_kwh=sorted(row.billed),
                    sessions=len(row.sessions),
                )
                for row in rows
            ],
            energy_wh=energy,
            energy_kwh=kwh(energy),
            revenue_msat=revenue,
            revenue_sat=_signed_sat(revenue),
            sessions=len({entry.session_id for entry in sold}),
        )

    async def sold(self, call: Call) -> r.SoldReport:
        """``GET /chargers/{charger_id}/reports/sold``."""
        return await self._report(call)

    async def sold_svg(self, call: Call) -> web.Response:
        """``GET /chargers/{charger_id}/reports/sold.svg``."""
        report = await self._report(call)
        svg = sold_chart(
            [
                SoldBar(i.start, i.end, i.schedule_msat_per_kwh, i.energy_wh, i.revenue_msat)
                for i in report.intervals
            ],
            title=f"Prices and energy sold, {report.charger_id}, {report.day} (UTC)",
            chart_id="sold",
        )
        return web.Response(text=svg, content_type="image/svg+xml", headers=SVG_HEADERS)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        return [
            Endpoint(
                "GET",
                "/chargers/{charger_id}/reports/sold",
                self.sold,
                "One UTC day: each interval's scheduled energy price beside the energy sold "
                "in it and what it was billed",
                "reports",
                r.SoldReport,
                query=r.SoldQuery,
            ),
            Endpoint(
                "GET",
                "/chargers/{charger_id}/reports/sold.svg",
                self.sold_svg,
                "The same day as a chart (SVG): energy sold per interval, and the price",
                "reports",
                query=r.SoldQuery,
                media=("image/svg+xml",),
            ),
        ]
