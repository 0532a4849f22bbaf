"""A Strom charging session as an OCPI 2.2.1 Session, and its bill as a CDR.

Theory of operation
-------------------
**Status** (:data:`SESSION_STATUS`): awaiting payment, paid and starting are ``PENDING``; a
paid reservation is ``RESERVATION``; charging and stopping are ``ACTIVE``; a session that
ended after a transaction is ``COMPLETED``. A session that never had a transaction (expired
invoice, failed start, refunded in full) is ``INVALID`` ("will not be billed") unless it kept
part of a reservation fee, which makes it ``COMPLETED``.

**Authorization**: Strom's own drivers pay with Lightning; Strom then starts the charger
itself, so the token is Strom's (the CPO's party), ``AD_HOC_USER`` with the session's idTag as
``uid`` and ``contract_id``, and ``auth_method`` is ``COMMAND``. An operator's card is an
``RFID`` token found in the charger's local list: ``WHITELIST``. Sessions of roaming drivers
pass their eMSP's token and method (:class:`Authorization`).

**The bill** (:func:`bill`): Strom's bill is ``consumed_msat`` (prepaid) or ``postpaid_msat``
(a card). Its parts are recomputed from the session exactly as Strom computes them: FLAT (the
session fee), ENERGY (per Wh, or per interval of the frozen schedule), TIME (per second of
charging) and PARKING_TIME (per second plugged in while idle, plus the idle fee). Strom caps a
bill at the prepayment and rounds it down by less than a sat so the refund is whole sats; that
difference is taken off the parts in the order parking, time, energy, fixed (never below 0)
and stated in the CDR's ``remark``. With negative spot prices a bill never goes below 0; the
difference is added back to the energy part. So the parts always add up to the bill.

**Money** (:class:`~ocpi_server.objects.money.Pricing`): ``total_cost`` is the bill converted
(fiat: at the rate given, rounded down to 4 decimals; BTC: exact), and the parts are
converted on running totals (:func:`~ocpi_server.objects._common.split_exact`), so
``total_fixed_cost + total_energy_cost + total_time_cost + total_parking_cost ==
total_cost`` exactly. Strom has no VAT model: its prices are what the driver pays, so
``incl_vat`` equals ``excl_vat`` (no VAT applicable, as an omitted ``vat`` says in the Tariff).

**Charging periods** (:func:`charging_periods`): the session's charging time first, then its
idle time (Strom keeps the total idle time, not when each idle period was: it is placed at the
end, where a car that finished usually idles). A static tariff gives one charging period; a
schedule gives one per interval the session charged in, with the interval's energy (Strom's
own attribution) and the charging time within it. Energy is kWh (Wh exact, 3 decimals); time
is hours, 4 decimals, rounded on running totals so that the periods add up to ``total_time``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Literal

from ocpi_server.objects._common import (
    ObjectError,
    OcpiObject,
    Party,
    check_cistring,
    split_exact,
    timestamp,
)
from ocpi_server.objects.locations import (
    Site,
    connector_kind,
    coordinates,
    evse_id,
    evse_uid,
    site_from_profile,
)
from ocpi_server.objects.money import Pricing
from ocpi_server.objects.tariffs import TariffTerms, tariff
from strom_core.billing import energy_bill_msat
from strom_core.config import ProfileConfig
from strom_core.session import Session, State
from strom_core.units import energy_cost_msat, time_cost_msat

__all__ = [
    "SESSION_STATUS",
    "Authorization",
    "Bill",
    "bill",
    "cdr",
    "charging_periods",
    "session",
    "session_status",
    "session_terms",
    "strom_authorization",
]

AuthMethod = Literal["AUTH_REQUEST", "COMMAND", "WHITELIST"]

SESSION_STATUS: Final = {
    State.AWAITING_PAYMENT: "PENDING",
    State.PAID: "PENDING",
    State.STARTING: "PENDING",
    State.RESERVED: "RESERVATION",
    State.CHARGING: "ACTIVE",
    State.STOPPING: "ACTIVE",
    State.EXPIRED: "INVALID",
}
"""Strom state -> OCPI SessionStatus; the ended states depend on the session (session_status)."""

_HOUR_US: Final = 3_600_000_000
_US: Final = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Authorization:
    """How a session was authorised, as OCPI's ``cdr_token`` and ``auth_method`` say it.

    Attributes:
        country_code: the token's issuer (an eMSP, or Strom itself).
        party_id: the issuer's party id.
        uid: the token's uid (CiString(36)).
        token_type: AD_HOC_USER, APP_USER, OTHER or RFID.
        contract_id: the driver's contract id (CiString(36)).
        method: AUTH_REQUEST, COMMAND or WHITELIST.
        reference: the eMSP's ``authorization_reference``, if it gave one.
    """

    country_code: str
    party_id: str
    uid: str
    token_type: Literal["AD_HOC_USER", "APP_USER", "OTHER", "RFID"]
    contract_id: str
    method: AuthMethod
    reference: str | None = None

    def token(self) -> OcpiObject:
        """The CdrToken."""
        return {
            "country_code": self.country_code,
            "party_id": self.party_id,
            "uid": check_cistring(self.uid, 36, "token uid"),
            "type": self.token_type,
            "contract_id": check_cistring(self.contract_id, 36, "contract id"),
        }

    def fields(self) -> OcpiObject:
        """``cdr_token``, ``auth_method`` and (when given) ``authorization_reference``."""
        fields: OcpiObject = {"cdr_token": self.token(), "auth_method": self.method}
        if self.reference is not None:
            fields["authorization_reference"] = check_cistring(self.reference, 36, "reference")
        return fields


def strom_authorization(party: Party, session: Session) -> Authorization:
    """The authorization of a session of Strom's own: Lightning (COMMAND) or a card (WHITELIST)."""
    card = session.postpaid
    return Authorization(
        country_code=party.country_code,
        party_id=party.party_id,
        uid=session.id_tag,
        token_type="RFID" if card else "AD_HOC_USER",
        contract_id=session.id_tag,
        method="WHITELIST" if card else "COMMAND",
    )


def session_status(session: Session) -> str:
    """The OCPI SessionStatus of a Strom session (see the module docstring)."""
    status = SESSION_STATUS.get(session.state)
    if status is not None:
        return status
    if session.transaction_id is not None or _billed_msat(session) > 0:
        return "COMPLETED"
    return "INVALID"


def _billed_msat(session: Session) -> int:
    return session.postpaid_msat if session.postpaid else session.consumed_msat


@dataclass(frozen=True, slots=True)
class Bill:
    """A session's bill in msat by OCPI cost part; the parts add up to ``total``.

    Attributes:
        fixed: the session fee.
        energy: the energy (may be < 0 with negative spot prices).
        time: charging time.
        parking: time plugged in while idle, and the idle fee.
        total: what Strom billed (the sum of the parts).
        unbilled: what the tariff would charge beyond ``total`` (the prepayment cap and the
            whole-sat rounding), taken off the parts.
    """

    fixed: int
    energy: int
    time: int
    parking: int
    total: int
    unbilled: int

    @property
    def parts(self) -> tuple[int, int, int, int]:
        """fixed, energy, time, parking."""
        return (self.fixed, self.energy, self.time, self.parking)


def _spans(session: Session) -> tuple[int, int]:
    """Seconds charging and seconds idle, as Strom bills them (elapsed = the two added)."""
    elapsed = session.elapsed_s
    idle = min(session.idle_seconds, elapsed)
    return elapsed - idle, idle


def bill(session: Session) -> Bill:
    """The parts of a session's bill (see the module docstring)."""
    tariff_ = session.tariff
    started = session.transaction_id is not None
    charging_s, idle_s = _spans(session)
    energy_wh = max(0, session.register_wh - session.meter_start_wh)
    energy: int
    if session.schedule is not None:
        energy = energy_bill_msat(session.schedule, session.interval_wh)
    else:
        energy = energy_cost_msat(energy_wh, tariff_.energy_msat_per_kwh)
    time_all: int = time_cost_msat(charging_s + idle_s, tariff_.time_msat_per_minute)
    time: int = time_cost_msat(charging_s, tariff_.time_msat_per_minute)
    parts: list[int] = [
        tariff_.session_fee_msat if started else 0,
        energy if started else 0,
        time if started else 0,
        (time_all - time + session.idle_msat) if started else 0,
    ]
    total = _billed_msat(session)
    excess = sum(parts) - total
    unbilled = max(0, excess)
    for index in (3, 2, 1, 0):
        if excess <= 0:
            break
        taken = min(excess, max(0, parts[index]))
        parts[index] -= taken
        excess -= taken
    if excess < 0:  # a bill never goes below 0: negative energy prices are cut there
        parts[1] -= excess
    if excess > 0:
        raise ObjectError(f"session {session.id}: bill {total} msat above its tariff's cost")
    return Bill(parts[0], parts[1], parts[2], parts[3], total=total, unbilled=unbilled)


@dataclass(frozen=True, slots=True)
class _Segment:
    start: datetime
    energy_wh: int
    charging_us: int
    parking_us: int


def _segments(session: Session) -> list[_Segment]:
    if session.started_at is None:
        return []
    start = session.started_at
    charging_s, idle_s = _spans(session)
    charge_end = start + timedelta(seconds=charging_s)
    energy_wh = max(0, session.register_wh - session.meter_start_wh)
    segments: list[_Segment] = []
    schedule = session.schedule
    if schedule is None or not session.interval_wh:
        segments.append(_Segment(start, energy_wh, charging_s * 1_000_000, 0))
    else:
        last = len(schedule.intervals) - 1
        for index, (interval, wh) in enumerate(
            zip(schedule.intervals, session.interval_wh, strict=True)
        ):
            low = interval.start if index else min(interval.start, start)
            high = interval.end if index < last else max(interval.end, charge_end)
            overlap = max(timedelta(0), min(high, charge_end) - max(low, start)) // _US
            if wh or overlap:
                segments.append(_Segment(max(low, start), wh, overlap, 0))
        if not segments:
            segments.append(_Segment(start, 0, 0, 0))
    if idle_s:
        segments.append(_Segment(charge_end, 0, 0, idle_s * 1_000_000))
    return segments


def _hours(microseconds: int) -> Decimal:
    return (Decimal(microseconds) / _HOUR_US).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


def _kwh(wh: int) -> Decimal:
    return Decimal(wh) / 1000


def charging_periods(session: Session, tariff_id: str | None) -> list[OcpiObject]:
    """The session's ChargingPeriods (see the module docstring); none before it started."""
    segments = _segments(session)
    times = split_exact([s.charging_us + s.parking_us for s in segments], _hours)
    energies = split_exact([s.energy_wh for s in segments], _kwh)
    periods = []
    for segment, hours, kwh in zip(segments, times, energies, strict=True):
        if segment.parking_us:
            dimensions: list[OcpiObject] = [{"type": "PARKING_TIME", "volume": hours}]
        else:
            dimensions = [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}]
        period: OcpiObject = {"start_date_time": timestamp(segment.start), "dimensions": dimensions}
        if tariff_id is not None:
            period["tariff_id"] = tariff_id
        periods.append(period)
    return periods


def _price(amount: Decimal) -> OcpiObject:
    return {"excl_vat": amount, "incl_vat": amount}


def _where(profile: ProfileConfig, session: Session) -> OcpiObject:
    if not any(c.id == session.connector_id for c in profile.connectors):
        raise ObjectError(
            f"session {session.id}: charger {profile.id} has no connector {session.connector_id}"
        )
    return {
        "location_id": check_cistring(profile.id, 36, "location id"),
        "evse_uid": evse_uid(profile.id, session.connector_id),
        "connector_id": "1",
    }


def session(
    session_: Session,
    profile: ProfileConfig,
    party: Party,
    pricing: Pricing,
    now: datetime,
    *,
    tariff_id: str | None,
    authorization: Authorization | None = None,
    created_at: datetime | None = None,
) -> OcpiObject:
    """The OCPI Session of a Strom session, in any state.

    Args:
        session_: the Strom session.
        profile: its charger's profile.
        party: Strom as a CPO.
        pricing: the currency of ``total_cost`` (for a fiat tariff: the session's own rate).
        now: ``last_updated``.
        tariff_id: the Tariff the charging periods refer to.
        authorization: the token and method; default :func:`strom_authorization`.
        created_at: when the session was created, ``start_date_time`` before it started
            (default ``now``).

    Raises:
        ObjectError: an id too long for OCPI, or a connector the profile does not have.
    """
    auth = authorization or strom_authorization(party, session_)
    start = session_.started_at or created_at or now
    obj: OcpiObject = {
        **party.fields(),
        "id": check_cistring(session_.id, 36, "session id"),
        "start_date_time": timestamp(start),
    }
    if session_.stopped_at is not None:
        obj["end_date_time"] = timestamp(session_.stopped_at)
    obj |= {
        "kwh": _kwh(max(0, session_.register_wh - session_.meter_start_wh)),
        **auth.fields(),
        **_where(profile, session_),
        "currency": pricing.currency,
        "charging_periods": charging_periods(session_, tariff_id),
        "total_cost": _price(pricing.amount(_billed_msat(session_))),
        "status": session_status(session_),
        "last_updated": timestamp(now),
    }
    return obj


def session_terms(session_: Session, time_zone: str) -> TariffTerms:
    """The prices frozen into a session, as Tariff terms (for its CDR)."""
    return TariffTerms(
        tariff=session_.tariff,
        time_zone=time_zone,
        schedule=session_.schedule,
        fiat=None if session_.fiat is None else session_.fiat.terms,
    )


def _remark(parts: Bill, pricing: Pricing) -> str:
    if not parts.unbilled:
        return ""
    return (
        f"{format(pricing.amount(parts.unbilled), 'f')} {pricing.currency} of the tariff's cost "
        "not billed: "
        "capped at the prepayment and rounded down to whole sats"
    )


def cdr(
    session_: Session,
    profile: ProfileConfig,
    party: Party,
    pricing: Pricing,
    now: datetime,
    *,
    tariff_id: str,
    site: Site | None = None,
    authorization: Authorization | None = None,
) -> OcpiObject:
    """The CDR of an ended, billed session.

    Args:
        session_: the Strom session, stopped with a final bill.
        profile: its charger's profile (``cdr_location``).
        party: Strom as a CPO.
        pricing: the currency (for a fiat tariff: the session's billed rate).
        now: ``last_updated``.
        tariff_id: the id of the Tariff in the CDR (the session's frozen prices).
        site: the address in OCPI's fields; default from the profile.
        authorization: the token and method; default :func:`strom_authorization`.

    Raises:
        ObjectError: the session has no final bill (not ended, or never started charging).
    """
    if session_.stopped_at is None or session_.started_at is None:
        raise ObjectError(f"session {session_.id} has no final bill yet: no CDR")
    site = site or site_from_profile(profile, party)
    auth = authorization or strom_authorization(party, session_)
    where = _where(profile, session_)
    connector = next(c for c in profile.connectors if c.id == session_.connector_id)
    kind = connector_kind(connector)
    parts = bill(session_)
    fixed, energy, time, parking = split_exact(parts.parts, pricing.amount)
    periods = charging_periods(session_, tariff_id)
    charging_s, idle_s = _spans(session_)
    total_hours = _hours((charging_s + idle_s) * 1_000_000)
    parking_hours = sum(
        (d["volume"] for p in periods for d in p["dimensions"] if d["type"] == "PARKING_TIME"),
        Decimal(0),
    )
    location: OcpiObject = {
        "id": where["location_id"],
        "name": profile.name[:255],
        "address": site.address,
        "city": site.city,
    }
    if site.postal_code:
        location["postal_code"] = site.postal_code
    location |= {
        "country": site.country,
        "coordinates": coordinates(profile),
        "evse_uid": where["evse_uid"],
        "evse_id": evse_id(party, profile.id, session_.connector_id),
        "connector_id": where["connector_id"],
        "connector_standard": kind.standard,
        "connector_format": kind.format,
        "connector_power_type": kind.power_type,
    }
    terms = session_terms(session_, profile.tariff.time_zone)
    obj: OcpiObject = {
        **party.fields(),
        "id": check_cistring(session_.id, 36, "CDR id"),
        "start_date_time": timestamp(session_.started_at),
        "end_date_time": timestamp(session_.stopped_at),
        "session_id": session_.id,
        **auth.fields(),
        "cdr_location": location,
        "currency": pricing.currency,
        "tariffs": [tariff(tariff_id, terms, party, pricing, now, since=session_.started_at)],
        "charging_periods": periods,
        "total_cost": _price(pricing.amount(parts.total)),
        "total_fixed_cost": _price(fixed),
        "total_energy": _kwh(max(0, session_.register_wh - session_.meter_start_wh)),
        "total_energy_cost": _price(energy),
        "total_time": total_hours,
        "total_time_cost": _price(time),
        "total_parking_time": parking_hours,
        "total_parking_cost": _price(parking),
        "last_updated": timestamp(now),
    }
    remark = _remark(parts, pricing)
    if remark:
        obj["remark"] = remark
    return obj
