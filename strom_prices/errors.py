"""The errors of the price and rate sources."""

from __future__ import annotations

from strom_core.errors import StromError

__all__ = ["ProviderError"]


class ProviderError(StromError):
    """A price or rate source could not be reached, or answered something we cannot read.

    The text names the source and what was wrong (``awattar: HTTP 503``, ``entsoe: no
    TimeSeries in the answer``). It never reaches a driver directly: the last good schedule
    stays in use while it covers the time asked, then :class:`~strom_core.ports.prices.NoPrice`
    is raised with a reason.
    """
