"""A Strom tariff as an OCPI 2.2.1 Tariff.

Theory of operation
-------------------
Strom's price components map one to one onto OCPI dimensions, each ``step_size`` 1 (the
finest OCPI can say; Strom bills per Wh, per second and per whole idle minute, always rounding
down, so a bill is never above what an eMSP computes from this Tariff):

==================================  ====================================================
Strom                               OCPI price component
==================================  ====================================================
``per_kwh`` (sat/kWh)               ENERGY, per kWh
``per_minute`` (sat/min, per s)     TIME, per hour (x 60), and in PARKING_TIME too:
                                    Strom's time runs while the car is plugged, charging
                                    or not
``session_fee``                     FLAT
``idle_per_minute`` (after grace)   added to PARKING_TIME, per hour (x 60)
reservation fee kept on expiry      FLAT and TIME of a ``RESERVATION_EXPIRES`` element
==================================  ====================================================

The idle fee's grace (``idle_grace_minutes``) has no OCPI restriction: ``min_duration``
counts from the start of the session, not from when the car finished. The published
PARKING_TIME price includes the idle fee from the first parked second (an upper bound) and
``tariff_alt_text`` states the grace. A reservation that is used costs nothing extra (its fee
is the session's prepayment), so only the kept share of an expired one is a cost.

Energy prices over time, in elements before the unrestricted one (the first element whose
restrictions match wins, per dimension):

* time-of-use windows: one element per window with ``start_time``/``end_time`` on the
  Location's ``time_zone`` (the tariff's own zone); a window past midnight wraps, as OCPI allows,
  and ``24:00`` is written ``00:00``.
* a dynamic schedule (prices known ahead, e.g. a day of hourly spot prices): one element per
  interval with ``start_date``/``end_date`` and ``start_time``/``end_time`` in local time, split
  at local midnight, so an eMSP can price any session in the known window with plain OCPI.
  After the last interval the last price holds (Strom bills so), which the fallback element
  says. The Tariff is re-sent (same id) when new prices are known. ``start_date_time`` is not
  used: one Tariff per interval would make an eMSP juggle dozens of tariff ids per connector.

Currency: :class:`~ocpi_server.objects.money.Pricing`. Fiat components given in the
published currency are published as written; everything else is converted from msat. VAT:
Strom has no VAT model; ``vat`` is omitted ("no VAT applicable") and prices are what the
driver pays.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final
from zoneinfo import ZoneInfo

from ocpi_server.objects._common import ObjectError, OcpiObject, Party, check_cistring, timestamp
from ocpi_server.objects.money import Pricing
from strom_core.config import TariffConfig
from strom_core.fiat import COMPONENTS, FiatTerms, fiat_to_msat
from strom_core.prices import PriceSchedule
from strom_core.tariff import Tariff
from strom_core.time_of_use import TimeOfUse
from strom_core.units import format_sat

__all__ = ["TariffTerms", "tariff", "tariff_id", "terms_from_config"]

_DAY: Final = 24 * 60


@dataclass(frozen=True, slots=True)
class TariffTerms:
    """Everything that prices a session, in msat, ready to publish.

    Attributes:
        tariff: the static components (energy is the price outside windows/schedule).
        time_zone: the IANA zone of the time-of-use windows (and the Location).
        time_of_use: daily energy windows, or None.
        schedule: a dynamic schedule (prices known ahead), or None.
        fiat: components written in a fiat currency (published as written in it), or None.
    """

    tariff: Tariff
    time_zone: str = "UTC"
    time_of_use: TimeOfUse | None = None
    schedule: PriceSchedule | None = None
    fiat: FiatTerms | None = None


def terms_from_config(
    config: TariffConfig,
    *,
    schedule: PriceSchedule | None = None,
    fiat_rate: Decimal | None = None,
) -> TariffTerms:
    """The terms of a profile's tariff.

    Args:
        config: the profile's ``[tariff]``.
        schedule: the known prices of a ``[tariff.dynamic]`` tariff (None for others).
        fiat_rate: the rate (fiat per BTC) converting fiat components to msat, needed only
            when the Tariff is published in another currency than theirs.

    Raises:
        ObjectError: a dynamic tariff without its schedule.
    """
    if config.dynamic_price is not None and schedule is None:
        raise ObjectError("a dynamic tariff is published with its known prices (schedule)")
    base = config.to_tariff()
    terms = config.to_fiat()
    if terms is not None and fiat_rate is not None:
        values = {COMPONENTS[key]: fiat_to_msat(amount, fiat_rate) for key, amount in terms.prices}
        base = replace(base, **values)
    return TariffTerms(
        tariff=base,
        time_zone=config.time_zone,
        time_of_use=config.to_time_of_use(),
        schedule=schedule if config.dynamic_price is not None else None,
        fiat=terms,
    )


def tariff_id(charger_id: str) -> str:
    """The id of a charger's Tariff: the charger id (CiString(36))."""
    return check_cistring(charger_id, 36, "tariff id")


class _Prices:
    """Per-unit prices of one Tariff in its currency."""

    def __init__(self, terms: TariffTerms, pricing: Pricing) -> None:
        self.terms = terms
        self.pricing = pricing

    def _fiat(self, key: str) -> Decimal | None:
        fiat = self.terms.fiat
        if fiat is None or fiat.currency != self.pricing.currency:
            return None
        return fiat.amount(key)

    def _msat_or_fiat(self, key: str, msat: int, factor: int = 1) -> Decimal:
        written = self._fiat(key)
        if written is not None:
            return self.pricing.written(written * factor)
        fiat = self.terms.fiat
        if fiat is not None and fiat.amount(key) and msat == 0:
            raise ObjectError(
                f"{key} is priced in {fiat.currency}: publish in {fiat.currency} or give the "
                f"{fiat.currency} rate to convert it"
            )
        return self.pricing.amount(msat * factor)

    def energy(self, msat_per_kwh: int) -> Decimal:
        return self.pricing.amount(max(0, msat_per_kwh))

    def base_energy(self) -> Decimal:
        return self._msat_or_fiat("per_kwh", self.terms.tariff.energy_msat_per_kwh)

    def time_per_hour(self) -> Decimal:
        return self._msat_or_fiat("per_minute", self.terms.tariff.time_msat_per_minute, 60)

    def idle_per_hour(self) -> Decimal:
        return self._msat_or_fiat("idle_per_minute", self.terms.tariff.idle_msat_per_minute, 60)

    def flat(self) -> Decimal:
        return self._msat_or_fiat("session_fee", self.terms.tariff.session_fee_msat)


def _component(kind: str, price: Decimal) -> OcpiObject:
    return {"type": kind, "price": price, "step_size": 1}


def _hhmm(minute: int) -> str:
    minute %= _DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _tou_elements(tou: TimeOfUse, prices: _Prices) -> list[OcpiObject]:
    return [
        {
            "price_components": [_component("ENERGY", prices.energy(w.msat_per_kwh))],
            "restrictions": {"start_time": _hhmm(w.start), "end_time": _hhmm(w.end)},
        }
        for w in sorted(tou.windows, key=lambda w: w.start)
    ]


def _local_pieces(
    start: datetime, end: datetime, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """``[start, end)`` in local time, split at local midnight."""
    pieces = []
    local, stop = start.astimezone(zone), end.astimezone(zone)
    while local < stop:
        midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        piece_end = min(stop, midnight)
        pieces.append((local, piece_end))
        local = piece_end
    return pieces


def _schedule_elements(
    schedule: PriceSchedule, prices: _Prices, zone: ZoneInfo, now: datetime
) -> list[OcpiObject]:
    elements = []
    for interval in schedule.intervals:
        if interval.end <= now:
            continue  # past prices price nothing any more
        for begin, finish in _local_pieces(interval.start, interval.end, zone):
            end_date = begin.date() + timedelta(days=1)
            elements.append(
                {
                    "price_components": [
                        _component("ENERGY", prices.energy(interval.energy_msat_per_kwh))
                    ],
                    "restrictions": {
                        "start_time": begin.strftime("%H:%M"),
                        "end_time": finish.strftime("%H:%M"),
                        "start_date": begin.date().isoformat(),
                        "end_date": end_date.isoformat(),
                    },
                }
            )
    return elements


def _fallback(terms: TariffTerms, prices: _Prices) -> OcpiObject:
    if terms.schedule is not None:
        energy = prices.energy(terms.schedule.intervals[-1].energy_msat_per_kwh)
    else:
        energy = prices.base_energy()
    components = [_component("ENERGY", energy)]
    time = prices.time_per_hour()
    if time:
        components.append(_component("TIME", time))
    parking = time + prices.idle_per_hour()
    if parking:
        components.append(_component("PARKING_TIME", parking))
    flat = prices.flat()
    if flat:
        components.append(_component("FLAT", flat))
    return {"price_components": components}


def _reservation_expiry(terms: TariffTerms, pricing: Pricing) -> list[OcpiObject]:
    tariff = terms.tariff
    if not tariff.offers_reservations or not tariff.reservation_kept_percent:
        return []
    kept = tariff.reservation_kept_percent
    components = [
        _component("FLAT", pricing.amount(tariff.reservation_fee_msat * kept // 100)),
        _component(
            "TIME",
            pricing.amount(Decimal(tariff.reservation_fee_msat_per_minute * 60 * kept) / 100),
        ),
    ]
    return [
        {"price_components": components, "restrictions": {"reservation": "RESERVATION_EXPIRES"}}
    ]


def _alt_text(terms: TariffTerms) -> list[OcpiObject]:
    tariff = terms.tariff
    if terms.schedule is not None:
        parts = ["Paid with Lightning: energy at the price of its hour (known a day ahead)"]
    else:
        parts = [f"Paid with Lightning: {format_sat(tariff.energy_msat_per_kwh)}/kWh"]
    if terms.time_of_use is not None:
        parts[0] += " outside the time-of-use windows"
    if tariff.time_msat_per_minute:
        parts.append(f"{format_sat(tariff.time_msat_per_minute)}/min while plugged in")
    if tariff.session_fee_msat:
        parts.append(f"{format_sat(tariff.session_fee_msat)} per session")
    if tariff.idle_msat_per_minute:
        parts.append(
            f"idle fee {format_sat(tariff.idle_msat_per_minute)}/min after the car finished, "
            f"the first {tariff.idle_grace_minutes} min free"
        )
    if tariff.offers_reservations:
        parts.append(
            f"reservations up to {tariff.reservation_max_minutes} min; "
            f"{tariff.reservation_kept_percent} % of the fee is kept when unused"
        )
    text = "; ".join(parts) + ". Each part is rounded down to the msat."
    return [{"language": "en", "text": text[:512]}]


def tariff(
    tariff_id: str,
    terms: TariffTerms,
    party: Party,
    pricing: Pricing,
    now: datetime,
    *,
    since: datetime | None = None,
) -> OcpiObject:
    """The OCPI Tariff of ``terms`` in ``pricing``'s currency.

    Args:
        tariff_id: the Tariff's id (:func:`tariff_id`).
        terms: the prices (:func:`terms_from_config`, or a session's frozen ones).
        party: Strom as a CPO.
        pricing: the currency and rate.
        now: ``last_updated``.
        since: schedule intervals that ended before it are left out (default ``now``; a
            CDR's Tariff gives the session's start).

    Raises:
        ObjectError: a fiat component that cannot be converted to the currency.
    """
    check_cistring(tariff_id, 36, "tariff id")
    prices = _Prices(terms, pricing)
    zone = ZoneInfo(terms.time_zone)
    elements: list[OcpiObject] = []
    if terms.time_of_use is not None:
        elements += _tou_elements(terms.time_of_use, prices)
    if terms.schedule is not None:
        elements += _schedule_elements(terms.schedule, prices, zone, (since or now).astimezone(UTC))
    elements.append(_fallback(terms, prices))
    elements += _reservation_expiry(terms, pricing)
    return {
        **party.fields(),
        "id": tariff_id,
        "currency": pricing.currency,
        "tariff_alt_text": _alt_text(terms),
        "elements": elements,
        "last_updated": timestamp(now),
    }
