"""``/chargers/{charger_id}/site-limit`` and ``…/composite-schedule``: a charger's power limits.

The site limit is part of the charger's profile (``site_limit_kw``): setting it writes the
profile file (in place, comments kept: :class:`cockpit.profiles.ProfileFiles`), applies the
profile to the running Strom and sends the charger its new cap at once
(:meth:`strom_services.power.PowerService.set_site_limit`), so the next boot gets the same.
``null`` removes the cap (ClearChargingProfile). The file is written whatever the charger
answers: the limit is the operator's decision, and a charger that is offline gets it at its
next boot. The composite schedule is what the charger says it allows, read live. The write is
audited like every charger command.
"""

from __future__ import annotations

from decimal import Decimal

from cockpit import models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.errors import ConfigError
from strom_services.power import PowerService

__all__ = ["PowerResource"]


class PowerResource:
    """The site limit and composite schedule of each charger."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _power(self) -> PowerService:
        if self.ctx.power is None:
            raise ApiError(409, "conflict", "power limits are not available in this Strom")
        return self.ctx.power

    async def set_site_limit(self, call: Call) -> m.SiteLimitAnswer:
        """``PUT /chargers/{charger_id}/site-limit``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        power = self._power()
        body: m.SiteLimitIn = call.body
        limit_w = None if body.limit_kw is None else int(body.limit_kw * 1000)
        try:
            written = ctx.files.write_site_limit(profile.id, body.limit_kw)
        except ConfigError as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        _, restart = await ctx.apply(written)
        result = await power.set_site_limit(profile.id, limit_w)
        call.audit_detail.update(
            limit_w=limit_w, charger=result.status.value, restart_required=restart
        )
        return m.SiteLimitAnswer(
            charger_id=profile.id,
            limit_kw=written.site_limit_kw,
            status=result.status.value,
            detail=result.detail,
            restart_required=restart,
        )

    async def composite_schedule(self, call: Call) -> m.CompositeScheduleOut:
        """``GET /chargers/{charger_id}/composite-schedule``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        query: m.CompositeScheduleQuery = call.query
        if query.connector_id:
            ctx.connector(profile, str(query.connector_id))
        schedule = await self._power().limits.composite_schedule(
            profile.id, query.connector_id, query.duration_s
        )
        site_limit_kw = ctx.config.profile(profile.id).site_limit_kw
        return m.CompositeScheduleOut(
            charger_id=profile.id,
            connector_id=schedule.connector_id,
            site_limit_kw=None if site_limit_kw is None else Decimal(site_limit_kw),
            status=schedule.result.status.value,
            detail=schedule.result.detail,
            start=schedule.start,
            duration_s=schedule.duration_s,
            periods=[
                m.SchedulePeriodOut(start_s=p.start_s, limit_w=p.limit_w) for p in schedule.periods
            ],
        )

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "PUT",
                "/chargers/{charger_id}/site-limit",
                self.set_site_limit,
                "Set (or, with null, remove) the charger's site limit: profile and charger",
                "chargers",
                m.SiteLimitAnswer,
                body=m.SiteLimitIn,
                action="charger.site_limit",
                target="charger_id",
            ),
            e(
                "GET",
                "/chargers/{charger_id}/composite-schedule",
                self.composite_schedule,
                "GetCompositeSchedule: the power the charger allows, and its site limit",
                "chargers",
                m.CompositeScheduleOut,
                query=m.CompositeScheduleQuery,
            ),
        ]
