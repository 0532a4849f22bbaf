"""The operator's formula on top of a provider's price, and the conversion to msat.

``price = (spot + grid_fees + taxes) x (1 + margin)``, clamped to ``[min, max]``, all in the
provider's currency per kWh (exact ``Decimal``). The clamped price is then converted at the
BTC rate to msat per kWh and **floored** to a whole msat: 1 BTC = 10^11 msat, so
``msat = floor(price x 10^11 / rate)``. A price below zero (negative spot prices and no
minimum) bills zero: Strom never pays a driver for energy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal
from typing import Final

from strom_core.prices import PriceInterval, PriceSchedule
from strom_prices.spot import SpotPrice

__all__ = ["MSAT_PER_BTC", "Formula", "to_msat_per_kwh", "to_schedule"]

MSAT_PER_BTC: Final = Decimal(100_000_000_000)


@dataclass(frozen=True, slots=True)
class Formula:
    """``(spot + grid_fees + taxes) x (1 + margin)`` clamped to ``[minimum, maximum]``.

    Attributes:
        grid_fees: currency per kWh added to the spot price.
        taxes: currency per kWh added to the spot price.
        margin: a fraction (0.2 is 20 %) of the sum, added on top.
        minimum: the lowest price billed (currency per kWh); None: no lower bound but zero.
        maximum: the highest price billed; None: no upper bound.
    """

    grid_fees: Decimal = Decimal(0)
    taxes: Decimal = Decimal(0)
    margin: Decimal = Decimal(0)
    minimum: Decimal | None = None
    maximum: Decimal | None = None

    def apply(self, spot_per_kwh: Decimal) -> Decimal:
        """The price per kWh for a spot price per kWh."""
        price = (spot_per_kwh + self.grid_fees + self.taxes) * (1 + self.margin)
        if self.minimum is not None:
            price = max(price, self.minimum)
        if self.maximum is not None:
            price = min(price, self.maximum)
        return price


def to_msat_per_kwh(price_per_kwh: Decimal, btc_rate: Decimal) -> int:
    """A fiat price per kWh in whole msat per kWh at ``btc_rate`` fiat per BTC, floored.

    Negative prices give 0.

    Raises:
        ValueError: a rate that is not positive.
    """
    if btc_rate <= 0:
        raise ValueError(f"an exchange rate must be positive, not {btc_rate}")
    if price_per_kwh <= 0:
        return 0
    return int((price_per_kwh * MSAT_PER_BTC / btc_rate).to_integral_value(ROUND_FLOOR))


def to_schedule(
    rows: Iterable[SpotPrice],
    formula: Formula,
    *,
    btc_rate: Decimal,
    source: str,
    fetched_at: datetime,
    rate_source: str,
) -> PriceSchedule:
    """The schedule of ``rows`` (contiguous, see :func:`strom_prices.spot.clean`) in msat/kWh.

    Raises:
        ValueError: no rows, rows not contiguous, or a rate that is not positive.
    """
    intervals = tuple(
        PriceInterval(row.start, row.end, to_msat_per_kwh(formula.apply(row.per_kwh), btc_rate))
        for row in rows
    )
    return PriceSchedule(intervals, source, fetched_at, rate_source)
