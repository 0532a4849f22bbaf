"""Where energy prices come from: the port the session core and the payment path price with.

A :class:`PriceSource` answers, for one charger, the energy prices (msat/kWh) from a start time
for a number of hours as a :class:`~strom_core.prices.PriceSchedule`. Adapters implement it: a
profile's time-of-use windows, a flat static price, the network providers (spot markets, dynamic
contracts) converted at live exchange rates. When no trustworthy price can be given (provider
down beyond its schedule's validity, no fresh exchange rate) it raises :class:`NoPrice` with a
reason fit to show the driver and the operator; the caller then refuses the payment and creates
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from strom_core.errors import StromError
from strom_core.fiat import FiatRate
from strom_core.prices import PriceSchedule

__all__ = ["NoPrice", "PriceSource", "RateSource"]


class NoPrice(StromError):
    """No price can be given now; the message says why.

    For example ``"no fresh BTC/EUR rate (newest 2 h old)"``: shown to the driver in the LUD-06
    error and to the operator.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@runtime_checkable
class PriceSource(Protocol):
    """The energy prices for a charger."""

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        """The energy prices (msat/kWh) from start for hours; raises NoPrice."""
        ...


@runtime_checkable
class RateSource(Protocol):
    """BTC exchange rates for tariffs priced in fiat (:mod:`strom_core.fiat`)."""

    async def rate(self, currency: str) -> FiatRate:
        """The rate in force, asking the sources when none is fresh; raises NoPrice."""
        ...

    def fresh_rates(self) -> tuple[FiatRate, ...]:
        """The rates fresh now, from memory (no I/O): what a final bill converts at."""
        ...
