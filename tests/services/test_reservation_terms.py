"""The terms of a reservation as offered: lengths, the reserve parameter, metadata, amounts."""

from __future__ import annotations

import pytest

from lnurl_server.reservations import parse_reserve, reservation_text, reserve_choices
from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.tariff import Tariff
from strom_services.payments import PaymentService, ReservationRefused
from strom_web.lnurl import LnurlError

TARIFF = Tariff(
    energy_msat_per_kwh=250_000,
    min_prepay_msat=1_000_000,
    max_prepay_msat=100_000_000,
    reservation_fee_msat=100_000,
    reservation_fee_msat_per_minute=2_000,
    reservation_max_minutes=45,
    reservation_kept_percent=50,
)
PROFILE = ProfileConfig(
    id="cp-1",
    name="Example charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(ConnectorConfig(id=1, max_power_kw=11),),
    tariff=TariffConfig(per_kwh_sat=250),
)


def test_the_offered_lengths_stop_at_the_maximum_and_include_it() -> None:
    assert reserve_choices(TARIFF) == [15, 30, 45]
    assert reserve_choices(Tariff(1, reservation_max_minutes=90)) == [15, 30, 60, 90]
    assert reserve_choices(Tariff(1, reservation_max_minutes=10)) == [10]
    assert reserve_choices(Tariff(1)) == []


@pytest.mark.parametrize("raw", ["0", "46", "abc", "1e2", "30.0", " 30", "-1", "", "00000030"])
def test_a_reserve_parameter_outside_whole_minutes_1_to_max_is_refused(raw: str) -> None:
    with pytest.raises(LnurlError, match="from 1 to 45"):
        parse_reserve(raw, TARIFF)


def test_a_reserve_parameter_is_minutes_or_absent() -> None:
    assert parse_reserve(None, TARIFF) == 0
    assert parse_reserve("45", TARIFF) == 45
    with pytest.raises(LnurlError, match="takes no reservations"):
        parse_reserve("30", Tariff(1))


def test_the_metadata_states_minutes_fee_budget_and_what_is_kept() -> None:
    text = reservation_text(PROFILE, 1, TARIFF, 30)
    assert text == (
        "Reserve connector 1 at Example charger for 30 min (reservation fee 160 sat). "
        "Start charging within 30 min of paying and the whole payment, fee included, is your "
        "charging budget at 250 sat/kWh; unused budget is refunded. If you do not start in "
        "time or cancel, 50 % of the fee (80 sat) is kept and the rest refunded."
    )
    all_kept = reservation_text(PROFILE, 1, Tariff(1, reservation_max_minutes=30), 30)
    assert "the fee is kept and the rest refunded" in all_kept
    none_kept = Tariff(1, reservation_max_minutes=30, reservation_kept_percent=0)
    assert "the whole payment is refunded" in reservation_text(PROFILE, 1, none_kept, 30)


@pytest.mark.parametrize(
    ("minutes", "amount", "reason"),
    [
        (0, 2_000_000, "1 to 45 minutes"),
        (46, 2_000_000, "1 to 45 minutes"),
        (30, 999_999, "takes 1000000 to 100000000 msat"),
        (30, 100_000_001, "takes 1000000 to 100000000 msat"),
    ],
)
def test_an_amount_or_length_the_tariff_does_not_allow_is_refused(
    minutes: int, amount: int, reason: str
) -> None:
    with pytest.raises(ReservationRefused, match=reason):
        PaymentService.check_reservation(TARIFF, minutes, amount)


def test_the_fee_above_the_minimum_is_the_least_a_reservation_takes() -> None:
    dear = Tariff(1, min_prepay_msat=10_000, reservation_fee_msat=50_000, reservation_max_minutes=5)
    with pytest.raises(ReservationRefused, match="takes 50000"):
        PaymentService.check_reservation(dear, 5, 49_999)
    PaymentService.check_reservation(dear, 5, 50_000)
    with pytest.raises(ReservationRefused, match="no reservations"):
        PaymentService.check_reservation(Tariff(1), 5, 50_000)
