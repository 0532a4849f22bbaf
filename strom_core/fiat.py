"""Tariff components priced in a fiat currency, and their conversion to msat.

Theory of operation
-------------------
A tariff may give any of its energy, time, session-fee and idle components in a fiat currency
(:class:`FiatTerms`) instead of sats. Such a component becomes msat only through an exchange
rate (:class:`FiatRate`, fiat per BTC): ``msat = floor(amount x 10^11 / rate)``, computed on
exact integers (:func:`fiat_to_msat`), so a converted price is never more than the exact one.

The terms say *when* the conversion happens (:class:`Conversion`):

* ``at_payment``: the rate of the moment the invoice is made converts the fiat components into
  the session's frozen msat tariff; the session keeps that rate (:class:`FiatBilling`), and the
  bill is exactly the static bill of that tariff.
* ``at_billing``: the session keeps the fiat amounts and the payment's rate; the final bill
  converts at the rate in force when the session is billed (its stop). While it charges, the
  session is priced at a *planning rate*, the payment's rate lowered by ``headroom_percent``
  (a sat price up to ``1 / (1 - headroom)`` higher): the budget stop plans with those prices,
  so as long as BTC does not fall by more than the headroom during the session the budget is
  overrun by at most one meter interval, as for any tariff. The final bill is capped at the
  budget whatever the rate: the driver never pays more than the prepayment (a larger fall is
  the operator's ``overrun``). When no fresh rate exists at billing, the payment's rate (the
  one the driver saw) bills, recorded as a fallback.

What a driver is *shown* before paying (the pages, the charger's screen, the nostr status, the
operator's views) is :class:`ShownTariff` (:func:`shown_tariff`): the tariff converted at the
fresh rate of now, as a payment now would be (``at_billing``: at the rate itself, the best guess
of the bill, not the planning rate), with the fiat amounts as written. Without a fresh rate it
has no sat tariff at all: a fiat component is never shown as 0 sat.

A conversion may make a tariff that :class:`~strom_core.tariff.Tariff` refuses (a session fee
not below the minimum payment at this rate); :meth:`FiatTerms.apply` raises ConfigError then,
and a payment is refused. The final bill ignores the prepayment bounds (they bound payments,
not bills), so billing never fails.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Final

from strom_core.errors import ConfigError
from strom_core.tariff import Tariff
from strom_core.units import format_sat

__all__ = [
    "COMPONENTS",
    "MSAT_PER_BTC",
    "Conversion",
    "FiatBilling",
    "FiatRate",
    "FiatTerms",
    "ShownTariff",
    "fiat_to_msat",
    "shown_tariff",
]

MSAT_PER_BTC: Final = 100_000_000_000

COMPONENTS: Final = {
    "per_kwh": "energy_msat_per_kwh",
    "per_minute": "time_msat_per_minute",
    "session_fee": "session_fee_msat",
    "idle_per_minute": "idle_msat_per_minute",
}
"""The fiat keys of a tariff and the msat field each one sets."""

_UNITS: Final = {
    "per_kwh": "/kWh",
    "per_minute": "/min",
    "session_fee": " per session",
    "idle_per_minute": "/min idle",
}


class Conversion(enum.StrEnum):
    """When fiat components become msat."""

    AT_PAYMENT = "at_payment"
    AT_BILLING = "at_billing"


def fiat_to_msat(amount: Decimal, rate: Decimal, headroom_percent: int = 0) -> int:
    """``amount`` of fiat in whole msat at ``rate`` fiat per BTC, floored (exact integers).

    ``headroom_percent`` lowers the rate by that share first (the planning rate of
    ``at_billing``), which raises the msat price.

    Raises:
        ValueError: a negative or non-finite amount, a rate that is not positive, or a
            headroom outside 0-99.
    """
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a fiat price must be a non-negative number, not {amount}")
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"an exchange rate must be positive, not {rate}")
    if not 0 <= headroom_percent < 100:
        raise ValueError(f"a rate headroom must be 0 to 99 percent, not {headroom_percent}")
    amount_n, amount_d = amount.as_integer_ratio()
    rate_n, rate_d = rate.as_integer_ratio()
    numerator = amount_n * MSAT_PER_BTC * rate_d * 100
    return numerator // (amount_d * rate_n * (100 - headroom_percent))


@dataclass(frozen=True, slots=True)
class FiatRate:
    """An exchange rate a bill used.

    Attributes:
        currency: ISO 4217 code.
        value: fiat per BTC.
        source: how it was made, e.g. ``median(bitstamp,kraken)=91234.5 EUR/BTC``.
        at: when (the oldest quote it was taken over), aware UTC.
    """

    currency: str
    value: Decimal
    source: str
    at: datetime


@dataclass(frozen=True, slots=True)
class FiatTerms:
    """The fiat components of a tariff, as the operator wrote them.

    Attributes:
        currency: ISO 4217 code of every amount.
        prices: ``(key, amount)`` pairs, keys from :data:`COMPONENTS`, sorted.
        convert: when the amounts become msat.
        headroom_percent: ``at_billing`` only: how far below the payment's rate the session
            is priced while it charges (the budget stop's margin for a falling BTC).
    """

    currency: str
    prices: tuple[tuple[str, Decimal], ...]
    convert: Conversion = Conversion.AT_PAYMENT
    headroom_percent: int = 10

    def __post_init__(self) -> None:
        for key, amount in self.prices:
            if key not in COMPONENTS:
                raise ConfigError(f"unknown fiat tariff component {key!r}")
            if not amount.is_finite() or amount < 0:
                raise ConfigError(f"fiat {key} must be a non-negative number, got {amount}")
        if not 0 <= self.headroom_percent <= 50:
            raise ConfigError(f"rate_headroom_percent must be 0 to 50, got {self.headroom_percent}")

    def amount(self, key: str) -> Decimal | None:
        """The fiat amount of component ``key``, None when it is in sats."""
        return dict(self.prices).get(key)

    def to_msat(self, rate: FiatRate, *, planning: bool = False) -> dict[str, int]:
        """Each fiat component in msat at ``rate`` (``planning``: at the planning rate).

        Raises:
            ValueError: ``rate`` is of another currency.
        """
        if rate.currency != self.currency:
            raise ValueError(f"a {rate.currency} rate cannot convert {self.currency} prices")
        headroom = self.headroom_percent if planning else 0
        return {
            COMPONENTS[key]: fiat_to_msat(amount, rate.value, headroom)
            for key, amount in self.prices
        }

    def apply(
        self, tariff: Tariff, rate: FiatRate, *, planning: bool = False, billing: bool = False
    ) -> Tariff:
        """``tariff`` with its fiat components converted at ``rate``.

        ``billing``: for a final bill, the prepayment bounds are widened where the converted
        fees would break them (they bound payments, never a bill), so this cannot fail.

        Raises:
            ConfigError: not ``billing``, and the converted tariff is invalid (a session fee
                not below the minimum payment at this rate).
        """
        values = self.to_msat(rate, planning=planning)
        if billing:
            fee = values.get("session_fee_msat", tariff.session_fee_msat)
            low = max(tariff.min_prepay_msat, fee + 1)
            values["min_prepay_msat"] = low
            values["max_prepay_msat"] = max(tariff.max_prepay_msat, low)
        return replace(tariff, **values)

    def describe(self, rate: Decimal | None) -> dict[str, str]:
        """Each component (by key) as written, with its sat value at ``rate`` when given.

        For example ``"0.39 EUR/kWh (about 433 sat at the current rate)"``.
        """
        lines = {}
        for key, amount in self.prices:
            text = f"{amount} {self.currency}{_UNITS[key]}"
            if rate is not None and rate > 0:
                sats = fiat_to_msat(amount, rate) // 1000
                text += f" (about {sats} sat at the current rate)"
            lines[key] = text
        return lines

    @property
    def when(self) -> str:
        """When the driver's sats are counted, in words (pages, metadata)."""
        if self.convert is Conversion.AT_PAYMENT:
            return f"{self.currency} prices are converted to sats when you pay"
        return (
            f"{self.currency} prices are converted to sats at the rate when the session is "
            "billed, never for more than your payment"
        )


@dataclass(frozen=True, slots=True)
class FiatBilling:
    """What a session on a fiat tariff keeps to bill and to recompute its bill.

    Attributes:
        terms: the fiat components frozen at payment.
        payment_rate: the rate when the invoice was made (``at_payment``: the billed rate).
        billing_rate: ``at_billing``: the rate of the final bill, once billed.
        fallback: the final bill used ``payment_rate``: no fresh rate existed at billing.
    """

    terms: FiatTerms
    payment_rate: FiatRate
    billing_rate: FiatRate | None = None
    fallback: bool = False

    @property
    def billed_rate(self) -> FiatRate:
        """The rate the bill is (or will be, so far) converted at."""
        if self.terms.convert is Conversion.AT_PAYMENT:
            return self.payment_rate
        return self.billing_rate or self.payment_rate

    def describe(self, tariff: Tariff) -> tuple[list[str], str]:
        """What the session page says of the fiat prices of a session priced with ``tariff``.

        Returns:
            Each fiat component as written with the sats the session is priced (or billed)
            at, e.g. ``0.39 EUR/kWh = 433.333 sat/kWh``; and the rate used, in words.
        """
        lines = [
            f"{amount} {self.terms.currency}{_UNITS[key]} = "
            f"{format_sat(getattr(tariff, COMPONENTS[key]))}{_UNITS[key]}"
            for key, amount in self.terms.prices
        ]
        paid = f"{self.payment_rate.value} {self.payment_rate.currency}/BTC"
        if self.terms.convert is Conversion.AT_PAYMENT:
            return lines, f"converted at {paid}, the rate when you paid"
        if self.billing_rate is None:
            return lines, (
                f"charged at {self.terms.headroom_percent} % below {paid} (the rate when you "
                "paid) while charging; the bill converts at the rate when the session is "
                "billed, never for more than your payment"
            )
        if self.fallback:
            return lines, f"billed at {paid}, the rate when you paid (no fresh rate at billing)"
        return lines, (
            f"billed at {self.billing_rate.value} {self.billing_rate.currency}/BTC, "
            "the rate when the session was billed"
        )

    def final(self, tariff: Tariff, rates: tuple[FiatRate, ...]) -> tuple[Tariff, FiatBilling]:
        """The tariff of the final bill and the record of its rate (``at_billing``).

        ``rates`` are the fresh rates at billing; the one of the terms' currency bills, else
        the payment's rate (recorded as a fallback). ``at_payment`` terms change nothing.
        """
        if self.terms.convert is Conversion.AT_PAYMENT or self.billing_rate is not None:
            return tariff, self
        fresh = [rate for rate in rates if rate.currency == self.terms.currency]
        rate = fresh[0] if fresh else self.payment_rate
        billed = replace(self, billing_rate=rate, fallback=not fresh)
        return self.terms.apply(tariff, rate, billing=True), billed


@dataclass(frozen=True, slots=True)
class ShownTariff:
    """The prices a driver paying now gets, for display (never frozen into a session).

    Attributes:
        base: the tariff in force, its fiat components 0 (what sessions are converted from).
        tariff: ``base`` with its fiat components converted at ``rate``; None when a component
            is priced in fiat and no fresh rate converts it (no price can be given now, which
            is not free: never show it as 0).
        terms: the fiat components as written; None for a tariff in sats only.
        rate: the fresh rate of ``terms``' currency, when there is one.
    """

    base: Tariff
    tariff: Tariff | None
    terms: FiatTerms | None = None
    rate: FiatRate | None = None

    def in_fiat(self, key: str) -> bool:
        """Whether component ``key`` (of :data:`COMPONENTS`) is priced in fiat."""
        return self.terms is not None and self.terms.amount(key) is not None

    @property
    def lines(self) -> dict[str, str]:
        """The fiat components as written, with their sats at ``rate`` (FiatTerms.describe)."""
        if self.terms is None:
            return {}
        return self.terms.describe(None if self.rate is None else self.rate.value)

    def text(self, key: str) -> str:
        """Component ``key`` as a driver reads it.

        ``250 sat/kWh`` in sats; in fiat as written with its sats now, e.g. ``0.39 EUR/kWh
        (about 433 sat at the current rate)``, or without them when no rate is fresh.
        """
        line = self.lines.get(key)
        if line is not None:
            return line
        return format_sat(getattr(self.base, COMPONENTS[key])) + _UNITS[key]

    def parts(self, *, idle: bool = False) -> list[str]:
        """The price list: the energy price, then the other components that are not 0.

        The idle fee only with ``idle``.
        """
        keys = ["per_kwh", "per_minute", "session_fee"] + (["idle_per_minute"] if idle else [])
        return [
            self.text(key)
            for key in keys
            if key == "per_kwh" or self.in_fiat(key) or getattr(self.base, COMPONENTS[key])
        ]

    @property
    def note(self) -> str:
        """When fiat prices become sats, in words; empty for a tariff in sats only."""
        return "" if self.terms is None else self.terms.when


def shown_tariff(
    tariff: Tariff, terms: FiatTerms | None, rates: tuple[FiatRate, ...]
) -> ShownTariff:
    """``tariff`` (the tariff in force) as shown now, its ``terms`` converted at ``rates``.

    The first of ``rates`` (the fresh ones) in the terms' currency converts, as a payment now
    would; none, or a rate at which the tariff is invalid (a payment would be refused): no sat
    tariff.
    """
    if terms is None:
        return ShownTariff(tariff, tariff)
    rate = next((r for r in rates if r.currency == terms.currency), None)
    if rate is None:
        return ShownTariff(tariff, None, terms)
    try:
        converted = terms.apply(tariff, rate)
    except ConfigError:
        return ShownTariff(tariff, None, terms, rate)
    return ShownTariff(tariff, converted, terms, rate)
