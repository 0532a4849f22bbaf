"""Where dynamic energy prices come from: the port billing asks for a charger's schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from strom_core.errors import StromError
from strom_core.prices import PriceSchedule

__all__ = ["NoPrice", "PriceSource"]


class NoPrice(StromError):
    """No price can be given now; the text is the reason for the driver and the operator.

    For example ``no fresh BTC/EUR rate (newest 2 h old)``.
    """


@runtime_checkable
class PriceSource(Protocol):
    """The energy prices of a charger."""

    async def schedule(self, charger_id: str, start: datetime, hours: int) -> PriceSchedule:
        """The energy prices (msat/kWh) from start for hours; raises NoPrice."""
        ...
