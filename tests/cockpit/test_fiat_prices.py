"""The operator's view of a charger priced in euros: the sats a payer gets now, never 0.

``GET /chargers/{id}/prices`` answers a static euro energy price as a flat day of its sats at
the fresh rate (source ``fiat:EUR``, the rate in ``rate_source``); ``GET /chargers/{id}`` gives
the converted price and the euro price as written. With the rate sources down there are no
intervals and the reason is said, and the charger's sat price is null.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from strom_prices import RateBook
from strom_prices.errors import ProviderError
from tests.cockpit.conftest import CHARGER, Cockpit
from tests.e2e.test_fiat_tariffs import price_in_euros

pytestmark = pytest.mark.slow


class SourcesDown:
    """Every rate source fails."""

    async def get(
        self, source: str, url: str, params: Mapping[str, str], headers: Mapping[str, str]
    ) -> bytes:
        raise ProviderError(f"{source}: HTTP 503")


async def test_a_static_euro_price_is_answered_in_sats_at_the_current_rate(
    cockpit: Cockpit,
) -> None:
    strom = cockpit.stack.strom
    await price_in_euros(cockpit.stack, "at_payment")  # 0.36 EUR/kWh, 0.009 EUR per session
    strom.payments.rates = RateBook(
        None, [], now=lambda: datetime.now(UTC), fixed={"EUR": Decimal(90_000)}
    )
    prices = (await cockpit.call("GET", f"/chargers/{CHARGER}/prices?hours=24")).json()
    assert (prices["dynamic"], prices["source"]) == (False, "fiat:EUR")
    assert prices["rate_source"] == "fixed=90000 EUR/BTC"
    assert prices["error"] == ""
    assert len(prices["intervals"]) == 24
    assert {i["energy_msat_per_kwh"] for i in prices["intervals"]} == {400_000}  # not 0
    charger = (await cockpit.call("GET", f"/chargers/{CHARGER}")).json()
    assert charger["energy_msat_per_kwh"] == 400_000
    assert charger["energy_price"] == "0.36 EUR/kWh (about 400 sat at the current rate)"

    strom.payments.rates = RateBook(SourcesDown(), ["kraken"], now=lambda: datetime.now(UTC))
    prices = (await cockpit.call("GET", f"/chargers/{CHARGER}/prices?hours=24")).json()
    assert prices["intervals"] == []
    assert prices["error"] == "no fresh BTC/EUR rate to convert the EUR prices"
    charger = (await cockpit.call("GET", f"/chargers/{CHARGER}")).json()
    assert charger["energy_msat_per_kwh"] is None
    assert charger["energy_price"] == "0.36 EUR/kWh"
