"""Tariff components priced in fiat: exact conversion, the profile keys, and the bills they make.

Pure: no I/O. The conversion floors on exact integers; a profile refuses a component given twice;
a session converted at payment is billed exactly like the static tariff at the frozen rate; one
converted at billing is billed at the rate of its stop (the payment's when none is fresh,
recorded as such), never above its budget, and its budget stop, planned below the payment's
rate, overruns by at most one meter interval while BTC stays within the headroom.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from strom_core.config import TariffConfig
from strom_core.errors import ConfigError
from strom_core.fiat import Conversion, FiatBilling, FiatRate, FiatTerms, fiat_to_msat
from strom_core.session import Session, State, apply, check_ledger, new_session
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    RemoteStartAccepted,
    TransactionLost,
    TransactionStarted,
    TransactionStopped,
)
from strom_core.tariff import Tariff

T0 = datetime(2026, 12, 7, 12, tzinfo=UTC)
BASE = Tariff(energy_msat_per_kwh=0, min_prepay_msat=5_000_000, max_prepay_msat=10**12)


def rate(value: str, currency: str = "EUR", source: str = "fixed") -> FiatRate:
    return FiatRate(currency, Decimal(value), f"{source}={value} {currency}/BTC", T0)


# --- the conversion ---------------------------------------------------------------------------


def test_a_fiat_amount_converts_to_whole_msat_floored() -> None:
    # 0.39 EUR at 90,000 EUR/BTC = 0.39e11 / 9e4 msat = 433,333.33... -> 433,333
    assert fiat_to_msat(Decimal("0.39"), Decimal(90_000)) == 433_333
    # exact when it divides: 0.9 EUR at 90,000 EUR/BTC is 1,000,000 msat, not 999,999
    assert fiat_to_msat(Decimal("0.9"), Decimal(90_000)) == 1_000_000
    assert fiat_to_msat(Decimal(0), Decimal(90_000)) == 0


def test_a_rate_with_many_digits_converts_exactly_not_by_decimal_rounding() -> None:
    amount, value = Decimal("0.123456789"), Decimal("91234.56789012345678901234567")
    n, d = amount.as_integer_ratio()
    rn, rd = value.as_integer_ratio()
    assert fiat_to_msat(amount, value) == n * 10**11 * rd // (d * rn)


@given(
    amount=st.decimals(min_value=0, max_value=10_000, places=4),
    value=st.decimals(min_value=1, max_value=10**7, places=2),
)
def test_the_conversion_is_never_more_than_the_exact_price_and_less_by_under_one_msat(
    amount: Decimal, value: Decimal
) -> None:
    msat = fiat_to_msat(amount, value)
    exact = amount * 10**11 / value  # Decimal division, 28 digits: a check, not the method
    assert msat <= exact + Decimal("1e-6")
    assert exact - msat < 1 + Decimal("1e-6")


def test_the_planning_rate_prices_higher_by_the_headroom() -> None:
    # 10 % below 100,000 EUR/BTC is 90,000: 0.9 EUR is then 1,000,000 msat (not 900,000)
    assert fiat_to_msat(Decimal("0.9"), Decimal(100_000), 10) == 1_000_000
    with pytest.raises(ValueError, match="positive"):
        fiat_to_msat(Decimal(1), Decimal(0))
    with pytest.raises(ValueError, match="non-negative"):
        fiat_to_msat(Decimal(-1), Decimal(1))


def test_a_rate_of_another_currency_is_refused() -> None:
    terms = FiatTerms("EUR", (("per_kwh", Decimal("0.39")),))
    with pytest.raises(ValueError, match="USD rate cannot convert EUR"):
        terms.to_msat(rate("100000", "USD"))


def test_a_fee_the_rate_makes_as_large_as_the_minimum_payment_is_refused_but_bills() -> None:
    terms = FiatTerms("EUR", (("session_fee", Decimal(5)),))
    with pytest.raises(ConfigError, match="min_prepay must exceed the session fee"):
        terms.apply(BASE, rate("100000"))  # 5 EUR = 5,000,000 msat = the minimum
    billed = terms.apply(BASE, rate("100000"), billing=True)
    assert billed.session_fee_msat == 5_000_000


def test_the_pages_show_each_component_as_written_with_its_sat_value() -> None:
    terms = FiatTerms("EUR", (("per_kwh", Decimal("0.39")), ("session_fee", Decimal("0.50"))))
    assert terms.describe(Decimal(90_000)) == {
        "per_kwh": "0.39 EUR/kWh (about 433 sat at the current rate)",
        "session_fee": "0.50 EUR per session (about 555 sat at the current rate)",
    }
    assert terms.describe(None)["per_kwh"] == "0.39 EUR/kWh"


# --- the profile keys -------------------------------------------------------------------------


def test_a_profile_gives_fiat_components_with_their_currency_and_when_they_convert() -> None:
    config = TariffConfig.model_validate(
        {
            "currency": "EUR",
            "per_kwh": "0.39",
            "per_minute": "0.02",
            "session_fee": "0.5",
            "idle_per_minute": "0.10",
            "per_kwh_sat": 0,  # a sat key at 0 beside its fiat one (as a rewritten file has)
            "convert": "at_billing",
            "rate_headroom_percent": 15,
        }
    )
    terms = config.to_fiat()
    assert terms is not None
    assert terms.convert is Conversion.AT_BILLING
    assert terms.headroom_percent == 15
    assert dict(terms.prices) == {
        "per_kwh": Decimal("0.39"),
        "per_minute": Decimal("0.02"),
        "session_fee": Decimal("0.5"),
        "idle_per_minute": Decimal("0.10"),
    }
    assert TariffConfig(per_kwh_sat=Decimal(300)).to_fiat() is None


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ({"currency": "EUR", "per_kwh": "0.39", "per_kwh_sat": 300}, "both in sats"),
        ({"currency": "EUR", "session_fee": "1", "session_fee_sat": 5}, "both in sats"),
        ({"per_kwh": "0.39"}, "need the tariff's currency"),
        ({"currency": "EUR"}, "give per_kwh"),
        ({"currency": "eur", "per_kwh": "0.39"}, "currency"),
        ({"currency": "EUR", "per_kwh": "-0.1"}, "per_kwh"),
        ({"currency": "EUR", "per_kwh": "0.39", "convert": "later"}, "convert"),
        ({"currency": "EUR", "per_kwh": "1", "rate_headroom_percent": 5}, "at_billing"),
        (
            {"currency": "EUR", "per_kwh": "0.39", "time_of_use": {"07:00-22:00": 400}},
            "both price the energy",
        ),
    ],
)
def test_a_fiat_component_given_wrongly_is_a_clear_error(
    keys: dict[str, object], error: str
) -> None:
    with pytest.raises(ValidationError, match=error):
        TariffConfig.model_validate(keys)


# --- the bills --------------------------------------------------------------------------------


def opened(terms: FiatTerms, at_rate: FiatRate, *, power_w: int = 11_000) -> Session:
    planning = terms.convert is Conversion.AT_BILLING
    return new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=1,
        id_tag="TAG",
        tariff=terms.apply(BASE, at_rate, planning=planning),
        power_w=power_w,
        meter_interval_s=60,
        start_timeout_s=60,
        fiat=FiatBilling(terms, at_rate),
    )


def charged(session: Session, paid: int, readings: list[int], step_s: int = 60) -> Session:
    """Pay, start, and meter ``readings`` (cumulative Wh) every ``step_s`` until a stop."""
    for event in (
        PaymentSettled("h1", paid),
        RemoteStartAccepted(),
        TransactionStarted(1, 0, T0),
    ):
        session = apply(session, event).session
    for index, register in enumerate(readings, start=1):
        if session.state is not State.CHARGING:
            break
        session = apply(
            session, MeterReading(register, T0 + timedelta(seconds=step_s * index))
        ).session
    return session


def stop(session: Session, rates: tuple[FiatRate, ...]) -> Session:
    at = (session.last_reading_at or T0) + timedelta(seconds=1)
    stopped = apply(session, TransactionStopped(session.register_wh, at, rates=rates)).session
    check_ledger(stopped)
    return stopped


prices = st.tuples(
    st.decimals(min_value=0, max_value=2, places=3),  # per kWh
    st.decimals(min_value=0, max_value=Decimal("0.1"), places=3),  # per minute
    st.decimals(min_value=0, max_value=Decimal("0.5"), places=2),  # session fee
)
rate_values = st.decimals(min_value=20_000, max_value=200_000, places=2)
series = st.lists(st.integers(0, 300), min_size=1, max_size=20).map(
    lambda steps: [sum(steps[: i + 1]) for i in range(len(steps))]
)


def fiat_terms(values: tuple[Decimal, Decimal, Decimal], convert: Conversion) -> FiatTerms:
    per_kwh, per_minute, fee = values
    return FiatTerms(
        "EUR",
        (("per_kwh", per_kwh), ("per_minute", per_minute), ("session_fee", fee)),
        convert,
    )


@settings(max_examples=60, deadline=None)
@given(values=prices, value=rate_values, readings=series, later=rate_values)
def test_a_bill_converted_at_payment_is_the_static_bill_at_the_frozen_rate(
    values: tuple[Decimal, Decimal, Decimal],
    value: Decimal,
    readings: list[int],
    later: Decimal,
) -> None:
    terms = fiat_terms(values, Conversion.AT_PAYMENT)
    frozen = rate(str(value))
    msat = terms.to_msat(frozen)
    static = replace(BASE, **msat)  # the same tariff written in sats at that rate
    paid = 500_000_000
    fiat_session = stop(charged(opened(terms, frozen), paid, readings), (rate(str(later)),))
    sat_session = charged(
        new_session(
            session_id="s1",
            charger_id="cp1",
            connector_id=1,
            id_tag="TAG",
            tariff=static,
            power_w=11_000,
            meter_interval_s=60,
            start_timeout_s=60,
        ),
        paid,
        readings,
    )
    sat_session = stop(sat_session, ())
    # a later rate changes nothing: the bill is the static one, to the msat
    assert fiat_session.consumed_msat == sat_session.consumed_msat
    assert fiat_session.refundable_msat == sat_session.refundable_msat
    assert fiat_session.tariff == static
    assert fiat_session.fiat is not None
    assert fiat_session.fiat.billed_rate == frozen


@settings(max_examples=60, deadline=None)
@given(
    values=prices,
    value=rate_values,
    readings=series,
    move=st.integers(-60, 60),
    paid=st.integers(1_000_001, 50_000_000),
)
def test_a_bill_converted_at_billing_uses_the_stop_rate_and_never_exceeds_the_budget(
    values: tuple[Decimal, Decimal, Decimal],
    value: Decimal,
    readings: list[int],
    move: int,
    paid: int,
) -> None:
    terms = fiat_terms(values, Conversion.AT_BILLING)
    at_payment = rate(str(value))
    at_stop = rate(str(value * (100 + move) / 100), source="median(kraken)")
    session = charged(opened(terms, at_payment, power_w=7_000), paid, readings)
    stopped = stop(session, (rate("1", "USD"), at_stop))
    assert stopped.consumed_msat <= stopped.paid_msat  # never above the budget
    assert stopped.fiat is not None
    assert stopped.fiat.billing_rate == at_stop
    assert not stopped.fiat.fallback
    # recomputable from what is recorded: the terms at the billed rate, the metered quantities
    tariff = terms.apply(BASE, stopped.fiat.billed_rate, billing=True)
    cost = tariff.cost(stopped.energy_wh, stopped.elapsed_s) + tariff.idle_cost(
        stopped.idle_seconds
    )
    bill = min(cost, paid)
    assert bill - 1000 < stopped.consumed_msat <= bill
    assert stopped.overrun_msat == cost - min(cost, paid)


def test_with_no_fresh_rate_at_billing_the_payment_rate_bills_and_is_recorded_as_fallback() -> None:
    terms = FiatTerms("EUR", (("per_kwh", Decimal("0.30")),), Conversion.AT_BILLING)
    at_payment = rate("100000")
    session = charged(opened(terms, at_payment), 20_000_000, [1_000, 2_000])
    # while charging, priced 10 % below the payment's rate: 0.30 EUR at 90,000 EUR/BTC
    assert session.tariff.energy_msat_per_kwh == 333_333
    stopped = stop(session, ())
    assert stopped.fiat == FiatBilling(terms, at_payment, billing_rate=at_payment, fallback=True)
    assert stopped.tariff.energy_msat_per_kwh == 300_000  # 0.30 EUR at 100,000 EUR/BTC
    assert stopped.consumed_msat == 600_000


def test_a_lost_transaction_is_billed_at_the_rate_of_its_end_too() -> None:
    terms = FiatTerms("EUR", (("per_kwh", Decimal("0.30")),), Conversion.AT_BILLING)
    session = charged(opened(terms, rate("100000")), 20_000_000, [1_000, 2_000])
    lost = apply(session, TransactionLost(1, rates=(rate("120000"),))).session
    check_ledger(lost)
    assert lost.tariff.energy_msat_per_kwh == 250_000  # BTC rose: fewer sats per kWh
    assert lost.consumed_msat == 500_000


@settings(max_examples=60, deadline=None)
@given(
    per_kwh=st.decimals(min_value=Decimal("0.05"), max_value=1, places=3),
    value=rate_values,
    fall=st.integers(0, 10),
    paid=st.integers(2_000_000, 30_000_000),
)
def test_within_the_headroom_the_budget_stop_overruns_by_at_most_one_meter_interval(
    per_kwh: Decimal, value: Decimal, fall: int, paid: int
) -> None:
    terms = FiatTerms("EUR", (("per_kwh", per_kwh),), Conversion.AT_BILLING)  # 10 % headroom
    power_w, interval_s = 11_000, 60
    step_wh = power_w * interval_s // 3600  # full power between readings
    session = opened(terms, rate(str(value)), power_w=power_w)
    step_msat = session.tariff.energy_msat_per_kwh * step_wh // 1000
    enough = paid // step_msat + 3  # more readings than the budget pays for
    session = charged(session, paid, [step_wh * i for i in range(1, enough)], interval_s)
    assert session.state is State.STOPPING  # the budget stop
    # BTC fell by ``fall`` % (<= the headroom) by the time the charger reports the stop, one
    # more meter interval at full power later
    at_stop = rate(str(value * (100 - fall) / 100))
    final_register = session.register_wh + step_wh
    stopped = apply(
        session,
        TransactionStopped(
            final_register,
            (session.last_reading_at or T0) + timedelta(seconds=interval_s),
            rates=(at_stop,),
        ),
    ).session
    one_interval = fiat_to_msat(per_kwh, at_stop.value) * step_wh // 1000 + 1
    assert stopped.overrun_msat <= one_interval
    assert stopped.consumed_msat <= paid
