"""The operator's formula, clamping, and the conversion to whole msat (floored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strom_prices import Formula, SpotPrice, to_msat_per_kwh, to_schedule


def test_formula_adds_fees_and_taxes_then_the_margin() -> None:
    formula = Formula(grid_fees=Decimal("0.08"), taxes=Decimal("0.02"), margin=Decimal("0.25"))
    assert formula.apply(Decimal("0.10")) == Decimal("0.25")  # (0.10 + 0.08 + 0.02) x 1.25


def test_formula_is_clamped_to_min_and_max() -> None:
    formula = Formula(minimum=Decimal("0.05"), maximum=Decimal("0.60"))
    assert formula.apply(Decimal("-0.02")) == Decimal("0.05")
    assert formula.apply(Decimal("2.40")) == Decimal("0.60")
    assert formula.apply(Decimal("0.30")) == Decimal("0.30")


def test_conversion_floors_to_whole_msat() -> None:
    # 0.30 EUR/kWh at 90 000 EUR/BTC = 333.33... sat = 333 333.33... msat -> 333 333
    assert to_msat_per_kwh(Decimal("0.30"), Decimal(90_000)) == 333_333
    assert to_msat_per_kwh(Decimal("0.09"), Decimal(90_000)) == 100_000


def test_a_negative_price_bills_zero_never_pays_the_driver() -> None:
    assert to_msat_per_kwh(Decimal("-0.05"), Decimal(90_000)) == 0


def test_a_rate_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        to_msat_per_kwh(Decimal("0.30"), Decimal(0))


@given(
    price=st.decimals(min_value=Decimal("-5"), max_value=Decimal("50"), places=6),
    rate=st.decimals(min_value=Decimal("1000"), max_value=Decimal("10000000"), places=2),
)
def test_conversion_never_bills_more_than_the_exact_price(price: Decimal, rate: Decimal) -> None:
    msat = to_msat_per_kwh(price, rate)
    exact = max(price, Decimal(0)) * Decimal(10**11) / rate
    assert isinstance(msat, int)
    assert 0 <= exact - msat < 1


def test_schedule_carries_source_time_and_rate() -> None:
    start = datetime(2025, 10, 26, 0, tzinfo=UTC)
    rows = [
        SpotPrice(start, start + timedelta(hours=1), Decimal("0.10"), "EUR"),
        SpotPrice(start + timedelta(hours=1), start + timedelta(hours=2), Decimal("0.20"), "EUR"),
    ]
    schedule = to_schedule(
        rows,
        Formula(grid_fees=Decimal("0.05")),
        btc_rate=Decimal(100_000),
        source="awattar:DE-LU",
        fetched_at=start,
        rate_source="median(kraken)=100000 EUR/BTC",
    )
    assert [i.energy_msat_per_kwh for i in schedule.intervals] == [150_000, 250_000]
    assert schedule.source == "awattar:DE-LU"
    assert schedule.rate_source == "median(kraken)=100000 EUR/BTC"
    assert schedule.valid_until == start + timedelta(hours=2)
