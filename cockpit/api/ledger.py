"""``/ledger``: money in (settled payments), money out (refunds) and totals per day or month."""

from __future__ import annotations

from aiohttp import web

from cockpit import models as m
from cockpit.api.answers import kwh, paged, payment_out, refund_out, sat
from cockpit.api.context import ApiContext
from cockpit.endpoint import Call, Endpoint

__all__ = ["LedgerResource"]


class LedgerResource:
    """The ledger, read-only, as JSON pages or CSV downloads."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def ledger_payments(self, call: Call) -> m.PaymentPage | web.Response:
        """``GET /ledger/payments``."""
        query: m.LedgerQuery = call.query
        page = self.ctx.reports.page_payments(
            since=query.since, until=query.until, limit=query.limit, cursor=query.cursor
        )
        return await paged(page, payment_out, m.PaymentOut, m.PaymentPage, query.format, "payments")

    async def ledger_refunds(self, call: Call) -> m.RefundPage | web.Response:
        """``GET /ledger/refunds``."""
        query: m.LedgerQuery = call.query
        page = self.ctx.reports.page_refunds(
            since=query.since, until=query.until, limit=query.limit, cursor=query.cursor
        )
        return await paged(page, refund_out, m.RefundOut, m.RefundPage, query.format, "refunds")

    async def ledger_totals(self, call: Call) -> m.LedgerTotals:
        """``GET /ledger/totals``."""
        query: m.TotalsQuery = call.query
        totals = await self.ctx.reports.period_totals(
            period=query.period, since=query.since, until=query.until
        )
        return m.LedgerTotals(
            period=query.period,
            totals=[
                m.PeriodTotal(
                    period=period,
                    sessions=entry.sessions,
                    paid_msat=entry.paid_msat,
                    paid_sat=sat(entry.paid_msat),
                    refunded_msat=entry.refunded_msat,
                    refunded_sat=sat(entry.refunded_msat),
                    refund_fees_msat=entry.refund_fees_msat,
                    energy_wh=entry.energy_wh,
                    energy_kwh=kwh(entry.energy_wh),
                )
                for period, entry in totals.items()
            ],
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/ledger/payments",
                self.ledger_payments,
                "Settled payments, newest first",
                "ledger",
                m.PaymentPage,
                query=m.LedgerQuery,
                not_found=False,
                media=("application/json", "text/csv"),
            ),
            e(
                "GET",
                "/ledger/refunds",
                self.ledger_refunds,
                "Refunds, newest first",
                "ledger",
                m.RefundPage,
                query=m.LedgerQuery,
                not_found=False,
                media=("application/json", "text/csv"),
            ),
            e(
                "GET",
                "/ledger/totals",
                self.ledger_totals,
                "Money in, out and energy per UTC day or month",
                "ledger",
                m.LedgerTotals,
                query=m.TotalsQuery,
                not_found=False,
            ),
        ]
