"""How a charger presents itself on nostr: its status, profile and relay lists, from its state.

Pure functions from a profile and the run-time state to the builders' inputs in
:mod:`strom_nostr.discovery`. A charger that is offline shows every connector as unavailable,
and so does a connector the operator disabled; OCPP states are folded by
:func:`~strom_nostr.discovery.connector_status_from_ocpp`. OCPP connector 0 speaks for the
whole charge point: when it is ``Unavailable`` or ``Faulted`` every connector shows that.

A connector is ``reserved`` when the charger reports OCPP ``Reserved``, and also when Strom
holds a reservation on it that the charger still shows ``Available`` (its answer to ReserveNow
is not in yet, or never came): the sticker refuses strangers then too. The end of the
reservation goes with it when Strom knows it (a reservation Strom made).

A dynamic tariff (time of use, a provider's prices) publishes the energy price in force at the
time of publication and its coming intervals, from the schedule the agent got from the same
price source the payments freeze their prices from; a static tariff publishes its price as
before and no intervals. A negative price in force is published as 0 in the ``kWh`` price tag
(the bill never goes below zero); the intervals carry the exact prices.

A component priced in fiat (:mod:`strom_core.fiat`) is published in sats converted at the fresh
rate of the publication (the sats a payment now would be priced at), and as written in a
``price_fiat`` tag; with no fresh rate its sat price tag is left out, as for a dynamic tariff
without a price (never 0: a missing price is not a free one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from strom_core.config import ProfileConfig
from strom_core.fiat import ShownTariff
from strom_core.prices import PriceSchedule
from strom_core.tariff import Tariff
from strom_nostr.discovery import (
    ChargerStatus,
    ConnectorInfo,
    ConnectorStatus,
    FiatPrice,
    Location,
    Prices,
    Profile,
    RelayEntry,
    ScheduledPrice,
    connector_status_from_ocpp,
    lightning_address,
)

__all__ = [
    "SCHEDULE_HOURS",
    "charger_profile",
    "charger_status",
    "connector_state",
    "published_schedule",
    "relay_entries",
]

SCHEDULE_HOURS = 24
"""How far ahead a dynamic tariff's intervals are published."""

_WHOLE_CHARGER_DOWN = {
    "Unavailable": ConnectorStatus.UNAVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
}


def connector_state(
    online: bool,
    ocpp_status: str,
    enabled: bool,
    charger_status: str = "",
    *,
    reserved: bool = False,
) -> ConnectorStatus:
    """The published state of one connector (``reserved``: Strom holds a reservation on it)."""
    if not online or not enabled:
        return ConnectorStatus.UNAVAILABLE
    if charger_status in _WHOLE_CHARGER_DOWN:
        return _WHOLE_CHARGER_DOWN[charger_status]
    state = connector_status_from_ocpp(ocpp_status)
    if reserved and state is ConnectorStatus.AVAILABLE:
        return ConnectorStatus.RESERVED
    return state


def charger_status(
    profile: ProfileConfig,
    *,
    host: str,
    page_url: str,
    online: bool,
    connectors: Mapping[int, tuple[str, bool]],
    charger_status_text: str = "",
    tariff: Tariff | None = None,
    reserved_until: Mapping[int, int] | None = None,
    schedule: PriceSchedule | None = None,
    at: datetime | None = None,
    price_unknown: bool = False,
    shown: ShownTariff | None = None,
) -> ChargerStatus:
    """The status event's content for a charger.

    Args:
        profile: the charger's profile.
        host: the public host, the domain of its lightning address.
        page_url: the charger's public page (prices, QR code), the status event's ``r`` tag.
        online: whether it is connected, or within its reconnect grace after a restart of
            Strom (its connectors keep their last state until the grace ends).
        connectors: connector id -> (OCPP status, enabled); missing ones count as unknown.
        charger_status_text: the OCPP status of connector 0 (the charge point as a whole).
        tariff: the tariff in force (the profile's when None).
        reserved_until: connector id -> end (unix seconds) of the reservations Strom holds.
        schedule: a dynamic tariff's prices; its interval in force ``at`` is the energy price
            published, and its intervals of the next :data:`SCHEDULE_HOURS` are published too.
        at: the time of publication (needed with ``schedule``).
        price_unknown: a dynamic tariff without a price now: no energy price is published.
        shown: the tariff as a driver paying now gets it (fiat components converted at the
            fresh rate); given, it replaces ``tariff``.
    """
    fiat, unpriced = _fiat_prices(shown)
    if shown is not None:
        tariff = shown.tariff
        price_unknown = price_unknown or "kWh" in unpriced
    tariff = tariff or profile.tariff.to_tariff()
    ends = reserved_until or {}
    infos = []
    for connector in profile.connectors:
        status, enabled = connectors.get(connector.id, ("Unknown", True))
        until = ends.get(connector.id)
        state = connector_state(
            online, status, enabled, charger_status_text, reserved=until is not None
        )
        infos.append(
            ConnectorInfo(
                connector.id,
                connector.type,
                connector.max_power_w,
                state,
                until if state is ConnectorStatus.RESERVED else None,
            )
        )
    price = tariff.energy_msat_per_kwh
    slots: tuple[ScheduledPrice, ...] = ()
    if schedule is not None and at is not None and not price_unknown:
        in_force = schedule.price_at(at)
        if in_force is None:
            price_unknown = True
        else:
            price = max(0, in_force.energy_msat_per_kwh)
            slots = published_schedule(schedule, at)
    return ChargerStatus(
        charger_id=profile.id,
        name=profile.name,
        location=Location(profile.location.lat, profile.location.lon, profile.location.address),
        connectors=tuple(infos),
        prices=Prices(price, tariff.time_msat_per_minute, tariff.session_fee_msat),
        lud16=lightning_address(profile.id, host),
        summary=profile.description,
        website=page_url,
        schedule=slots,
        energy_price_known=not price_unknown,
        unpriced=frozenset(unpriced - {"kWh"}),
        fiat=fiat,
    )


_PER_OF: dict[str, str] = {"per_kwh": "kWh", "per_minute": "min", "session_fee": "session"}


def _fiat_prices(shown: ShownTariff | None) -> tuple[tuple[FiatPrice, ...], set[str]]:
    """The published fiat prices, and the ``<per>`` of those no sat price can be given for."""
    if shown is None or shown.terms is None:
        return (), set()
    terms = shown.terms
    fiat = tuple(
        FiatPrice(f"{amount:f}", terms.currency, _PER_OF[key], terms.convert.value)
        for key, amount in terms.prices
        if key in _PER_OF  # the status has no idle price
    )
    unpriced = {price.per for price in fiat} if shown.tariff is None else set()
    return fiat, unpriced


def published_schedule(schedule: PriceSchedule, at: datetime) -> tuple[ScheduledPrice, ...]:
    """The intervals of ``schedule`` from the one in force at ``at`` for :data:`SCHEDULE_HOURS`."""
    until = at + timedelta(hours=SCHEDULE_HOURS)
    return tuple(
        ScheduledPrice(
            int(interval.start.timestamp()),
            int(interval.end.timestamp()),
            interval.energy_msat_per_kwh,
        )
        for interval in schedule.intervals
        if interval.end > at and interval.start < until
    )


def charger_profile(profile: ProfileConfig, *, host: str) -> Profile:
    """The kind-0 metadata of a charger: ``name`` is its id, ``display_name`` its name."""
    return Profile(
        name=profile.id,
        display_name=profile.name,
        about=profile.description,
        lud16=lightning_address(profile.id, host),
        picture=profile.branding.picture,
        website=profile.branding.website,
    )


def relay_entries(read: Sequence[str], write: Sequence[str]) -> list[RelayEntry]:
    """The NIP-65 entries of the pool's relays, in configuration order."""
    return [RelayEntry(url, url in read, url in write) for url in dict.fromkeys([*read, *write])]
