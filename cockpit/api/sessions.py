"""``/sessions``: sessions with filters, one in detail with its money, and the operator's stop.

A stop is a ``StopRequested`` applied to the session's state machine, so it is billed and
refunded like any stop.
"""

from __future__ import annotations

from aiohttp import web

from cockpit import models as m
from cockpit.api.answers import paged, payment_out, refund_out, session_out
from cockpit.api.context import ApiContext
from cockpit.endpoint import Call, Endpoint
from strom_storage.sessions import row_to_session

__all__ = ["SessionsResource"]


class SessionsResource:
    """The charging sessions."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def list_sessions(self, call: Call) -> m.SessionPage | web.Response:
        """``GET /sessions``."""
        query: m.SessionQuery = call.query
        page = self.ctx.reports.page_sessions(
            charger=query.charger,
            state=query.state.value if query.state else None,
            since=query.since,
            until=query.until,
            limit=query.limit,
            cursor=query.cursor,
        )
        return await paged(page, session_out, m.SessionOut, m.SessionPage, query.format, "sessions")

    async def get_session(self, call: Call) -> m.SessionDetail:
        """``GET /sessions/{session_id}``."""
        ctx = self.ctx
        row = await ctx.session_row(call.path("session_id"))
        base = session_out(row)
        return m.SessionDetail(
            **base.model_dump(),
            energy_msat_per_kwh=row_to_session(row).tariff.energy_msat_per_kwh,
            payments=[payment_out(p) for p in await ctx.reports.payments_of(row.id)],
            refunds=[refund_out(r) for r in await ctx.reports.refunds_of(row.id)],
        )

    async def stop_session(self, call: Call) -> m.SessionOut:
        """``POST /sessions/{session_id}/stop``."""
        session_id = call.path("session_id")
        await self.ctx.stop(session_id)
        return session_out(await self.ctx.session_row(session_id))

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/sessions",
                self.list_sessions,
                "Sessions, newest first, with filters",
                "sessions",
                m.SessionPage,
                query=m.SessionQuery,
                not_found=False,
                media=("application/json", "text/csv"),
            ),
            e(
                "GET",
                "/sessions/{session_id}",
                self.get_session,
                "One session with its payments and refunds",
                "sessions",
                m.SessionDetail,
            ),
            e(
                "POST",
                "/sessions/{session_id}/stop",
                self.stop_session,
                "Stop a session (billed and refunded as usual)",
                "sessions",
                m.SessionOut,
                action="session.stop",
                target="session_id",
                conflict=True,
            ),
        ]
