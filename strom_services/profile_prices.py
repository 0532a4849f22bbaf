"""Prices that need no network: a profile's time-of-use windows, or its static price.

:class:`ProfilePrices` is a :class:`strom_core.ports.prices.PriceSource`. For a charger whose
profile has ``[tariff.time_of_use]`` windows it gives their schedule
(:func:`strom_core.time_of_use.time_of_use_schedule`, source ``tou:profile``); for any other
charger the static energy price as a flat schedule (source ``static``). A charger it does not
know gets :class:`~strom_core.ports.prices.NoPrice`. The network providers (spot markets,
dynamic contracts, exchange rates) are other sources behind the same port.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ProfileConfig
from strom_core.errors import ConfigError
from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceSchedule
from strom_core.time_of_use import time_of_use_schedule

__all__ = ["ProfilePrices"]


class ProfilePrices:
    """A price source from the chargers' profiles.

    Args:
        profile_of: the current profile of a charger, or None for an unknown charger.
        clock: stamps ``fetched_at`` (when the schedule was made).
    """

    def __init__(
        self, profile_of: Callable[[str], ProfileConfig | None], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._profile_of = profile_of
        self._clock = clock

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        """The energy prices (msat/kWh) from start for hours; raises NoPrice."""
        profile = self._profile_of(charger_id)
        if profile is None:
            raise NoPrice(f"no prices for unknown charger {charger_id}")
        try:
            tou = profile.tariff.to_time_of_use()
        except ConfigError as exc:  # validated at load; a profile changed under us
            raise NoPrice(f"the time-of-use prices of {charger_id} are invalid: {exc}") from exc
        now = self._clock.now()
        if tou is None:
            schedule = PriceSchedule.flat(
                profile.tariff.to_tariff().energy_msat_per_kwh, start, hours
            )
            return PriceSchedule(schedule.intervals, schedule.source, now)
        return time_of_use_schedule(tou, start, hours, fetched_at=now)
