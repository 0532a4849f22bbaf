"""``GET /chargers/{charger_id}/prices``: the energy prices ahead, and their source's health.

A charger with a static tariff answers its energy price as one flat schedule (source
``static``; an energy price in fiat converted at the fresh rate, source ``fiat:<currency>`` with
the rate in ``rate_source``, or no intervals and the reason in ``error`` without a fresh
rate); a time-of-use charger the schedule of its windows (source ``tou:profile``, the prices its
payments freeze; no provider, so no health); a charger whose profile has
``[tariff.dynamic]`` answers the schedule a driver paying now would get
(:class:`strom_prices.DynamicPricing`, the formula applied, converted at the exchange rate in
force) and the health of its provider: last success, last error, until when prices are known,
when it is asked next. When no price can be given the answer still comes, with ``error``
saying why and no intervals: the operator needs the reason most then.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from cockpit.api.context import ApiContext
from cockpit.endpoint import Call, Endpoint
from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceSchedule
from strom_prices import FeedHealth

__all__ = ["PricesOut", "PricesQuery", "PricesResource"]


class PricesQuery(BaseModel):
    """How many hours ahead (1 to 48) from the start of the current hour."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hours: int = Field(24, ge=1, le=48)


class PriceIntervalOut(BaseModel):
    """One interval: UTC times (ISO 8601) and its energy price in msat per kWh."""

    model_config = ConfigDict(frozen=True)

    start: str
    end: str
    energy_msat_per_kwh: int


class PriceHealthOut(BaseModel):
    """The provider's state, for a dynamically priced charger."""

    model_config = ConfigDict(frozen=True)

    source: str
    last_success: str | None
    last_error: str
    last_error_at: str | None
    known_until: str | None
    next_attempt: str | None


class PricesOut(BaseModel):
    """A charger's prices ahead."""

    model_config = ConfigDict(frozen=True)

    charger_id: str
    dynamic: bool
    source: str
    fetched_at: str | None
    rate_source: str
    valid_until: str | None
    intervals: list[PriceIntervalOut]
    health: PriceHealthOut | None
    error: str = ""


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


class PricesResource:
    """Each charger's prices ahead and the health of their source."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    async def prices(self, call: Call) -> PricesOut:
        """``GET /chargers/{charger_id}/prices``."""
        ctx = self.ctx
        profile = ctx.profile(call)
        query: PricesQuery = call.query
        now = ctx.clock.now()
        start = now.replace(minute=0, second=0, microsecond=0)
        pricing = ctx.prices
        health = pricing.health(profile.id) if pricing is not None else None
        if pricing is None or health is None:
            own = ctx.payments.prices  # time of use: the profile's own prices, no provider
            if profile.tariff.dynamic and own is not None:
                try:
                    schedule = await own.schedule(profile.id, start, query.hours)
                except NoPrice as exc:
                    return _no_price(profile.id, "", None, exc)
                end = start + timedelta(hours=query.hours)
                return _out(profile.id, schedule, None, end, dynamic=True)
            await ctx.payments.warm_rate(profile)  # a price in fiat: its rate, if stale
            try:
                schedule = ctx.payments.static_schedule(profile, start, query.hours)
            except NoPrice as exc:
                return _no_price(profile.id, "", None, exc, dynamic=False)
            return _out(profile.id, schedule, None)
        try:
            schedule = await pricing.schedule(profile.id, start, query.hours)
        except NoPrice as exc:
            return _no_price(profile.id, health.source, pricing.health(profile.id) or health, exc)
        end = start + timedelta(hours=query.hours)
        return _out(profile.id, schedule, pricing.health(profile.id), end)

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        return [
            Endpoint(
                "GET",
                "/chargers/{charger_id}/prices",
                self.prices,
                "The energy prices ahead (msat/kWh per interval) and the price source's health",
                "chargers",
                PricesOut,
                query=PricesQuery,
            )
        ]


def _health(health: FeedHealth | None) -> PriceHealthOut | None:
    if health is None:
        return None
    return PriceHealthOut(
        source=health.source,
        last_success=_iso(health.last_success),
        last_error=health.last_error,
        last_error_at=_iso(health.last_error_at),
        known_until=_iso(health.known_until),
        next_attempt=_iso(health.next_attempt),
    )


def _no_price(
    charger_id: str,
    source: str,
    health: FeedHealth | None,
    exc: NoPrice,
    *,
    dynamic: bool = True,
) -> PricesOut:
    return PricesOut(
        charger_id=charger_id,
        dynamic=dynamic,
        source=source,
        fetched_at=None,
        rate_source="",
        valid_until=None,
        intervals=[],
        health=_health(health),
        error=str(exc),
    )


def _out(
    charger_id: str,
    schedule: PriceSchedule,
    health: FeedHealth | None,
    end: datetime | None = None,
    *,
    dynamic: bool = False,
) -> PricesOut:
    intervals = [i for i in schedule.intervals if end is None or i.start < end]
    return PricesOut(
        charger_id=charger_id,
        dynamic=dynamic or health is not None,
        source=schedule.source,
        fetched_at=_iso(schedule.fetched_at),
        rate_source=schedule.rate_source,
        valid_until=_iso(schedule.valid_until),
        intervals=[
            PriceIntervalOut(
                start=_iso(i.start) or "",
                end=_iso(i.end) or "",
                energy_msat_per_kwh=i.energy_msat_per_kwh,
            )
            for i in intervals
        ],
        health=_health(health),
    )
