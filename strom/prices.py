"""Wiring the price and rate sources: the RateBook, DynamicPricing and their refresh loop.

Built once from the configuration (``[rates]``, or the deprecated ``server.fiat_per_btc``, and
each profile's ``[tariff.dynamic]``). With neither live rate sources nor dynamic tariffs nothing
here touches the network.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from strom_core.clock import Clock
from strom_core.config import ProfileConfig, StromConfig
from strom_core.ports.prices import NoPrice, PriceSource
from strom_core.prices import PriceSchedule
from strom_prices import DynamicPricing, HttpFetcher, RateBook

__all__ = ["PriceParts", "RoutedPrices", "build_prices"]

log = logging.getLogger(__name__)


@dataclass
class PriceParts:
    """The exchange rates and the dynamic prices of one Strom.

    Attributes:
        rates: the BTC rates.
        pricing: the :class:`~strom_core.ports.prices.PriceSource` of the chargers whose
            profile has ``[tariff.dynamic]`` (the payment path asks it for their schedules).
        currency: the fiat of the estimates on the pages.
        refresh_s: seconds between two rounds of the rate sources.
    """

    rates: RateBook
    pricing: DynamicPricing
    currency: str
    refresh_s: float
    fetcher: HttpFetcher
    live_rates: bool

    def estimate_rate(self) -> Decimal | None:
        """The rate for fiat estimates on the pages; None (no estimate) when none is fresh."""
        try:
            return self.rates.current(self.currency).value
        except NoPrice:
            return None

    @property
    def busy(self) -> bool:
        """Whether anything here fetches now (live rate sources or a dynamic tariff)."""
        return self.live_rates or bool(self.pricing.chargers())

    async def run(self) -> None:
        """Refresh the rates and the dynamic prices until cancelled.

        The price loop runs even with no dynamic tariff yet: a profile applied later
        (:meth:`apply_profile`) joins it; with none it asks nobody.
        """
        async with asyncio.TaskGroup() as group:
            if self.live_rates:
                group.create_task(self._rates_loop(), name="rates")
            group.create_task(self.pricing.run(), name="prices")

    def apply_profile(self, profile: ProfileConfig) -> None:
        """Price a charger added or changed while Strom runs by its ``[tariff.dynamic]``."""
        self.pricing.configure(profile.id, profile.tariff.dynamic_price)

    async def _rates_loop(self) -> None:
        while True:
            await self.rates.refresh(self.currency)
            await asyncio.sleep(self.refresh_s)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        await self.fetcher.aclose()


class RoutedPrices:
    """One :class:`~strom_core.ports.prices.PriceSource` for every charger.

    A charger with ``[tariff.dynamic]`` is priced by :class:`~strom_prices.DynamicPricing`;
    every other one by ``fallback`` (the profiles' own prices: static, time of use).

    Args:
        dynamic: the provider-priced chargers.
        fallback: the rest; None refuses them with NoPrice.
    """

    def __init__(self, dynamic: DynamicPricing, fallback: PriceSource | None = None) -> None:
        self.dynamic = dynamic
        self.fallback = fallback

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        """The charger's prices from its own source.

        Raises:
            NoPrice: that source has none.
        """
        if charger_id in self.dynamic.chargers() or self.fallback is None:
            return await self.dynamic.schedule(charger_id, start, hours)
        return await self.fallback.schedule(charger_id, start, hours)


def build_prices(config: StromConfig, clock: Clock) -> PriceParts:
    """The price parts of ``config``."""
    settings = config.rate_settings()
    fetcher = HttpFetcher(timeout_s=max(settings.timeout_s, 10.0))
    fixed = {settings.currency: settings.fixed} if settings.fixed > 0 else None
    rates = RateBook(
        fetcher,
        () if fixed else settings.sources,
        now=clock.now,
        max_age_s=settings.max_age_s,
        timeout_s=settings.timeout_s,
        outlier_percent=settings.outlier_percent,
        fixed=fixed,
    )
    tariffs = {
        profile.id: profile.tariff.dynamic_price
        for profile in config.profiles
        if profile.tariff.dynamic_price is not None
    }
    pricing = DynamicPricing(tariffs, rates, fetcher, now=clock.now)
    return PriceParts(
        rates=rates,
        pricing=pricing,
        currency=settings.currency,
        refresh_s=settings.refresh_s,
        fetcher=fetcher,
        live_rates=bool(settings.sources) and fixed is None,
    )
