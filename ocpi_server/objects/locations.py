"""A Strom charger (its profile and live connector statuses) as an OCPI 2.2.1 Location.

Theory of operation
-------------------
One charge point is one Location (``id`` = the charger id) with one EVSE per connector: OCPP
1.6 cannot start a chosen connector of a multi-connector EVSE, and OCPI says a CPO SHOULD then
present each connector as its own EVSE (mod_locations, EVSE object note). Every EVSE carries
one Connector with ``id`` "1".

* EVSE ``uid`` = ``<charger id>-<connector id>`` (stable, never reused for another charger);
  ``evse_id`` is eMI3: ``<CC>*<PID>*E<charger>*<connector>`` with the charger id upper-cased
  and each character other than a letter or digit written ``*`` (the only separator eMI3
  allows in a power outlet id), e.g. ``DE*STR*ECP*1*2`` for charger ``cp-1``, connector 2.
* The address: a profile has one free-text ``address`` and coordinates. OCPI requires
  ``address``, ``city`` and ``country`` (alpha-3) and wants a ``postal_code``. Unless the
  caller passes a :class:`Site`, :func:`site_from_profile` reads the profile's address as
  ``"<street>, <postal code> <city>"`` (the part after the last comma is the postal code, a
  first word with a digit, and the city); without a comma the whole text is the street and the
  city is the charger's name. The country is the party's country (alpha-2 to alpha-3 from the
  table below; other countries need a Site).
* ``time_zone`` is the tariff's ``time_zone`` (the clock its time-of-use windows are read on,
  UTC unless given): the restrictions of the published Tariff are in that zone.
* Coordinates: strings with 6 decimals (the spec's regex wants 5 to 7).
* Status: :data:`STATUS` maps OCPP 1.6 and 2.0.1 connector statuses; an unknown status or a
  charger that is offline (no status) is ``UNKNOWN``.
* Connector: :data:`CONNECTOR_TYPES` maps Strom's free-text connector ``type`` (case, spaces,
  '-', '_' and '/' ignored) to the OCPI standard, with a default format and power type.
  ``max_voltage`` is nominal: 230 V line to neutral for AC (the Site may say otherwise),
  500 V for DC up to 150 kW and 920 V above; ``max_amperage`` follows from ``max_power_kw``
  (rounded half up, per phase for AC_3_PHASE), and ``max_electric_power`` is the exact
  profile value in W.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Final

from ocpi_server.objects._common import ObjectError, OcpiObject, Party, check_cistring, timestamp
from strom_core.config import ConnectorConfig, ProfileConfig

__all__ = [
    "ALPHA3",
    "CONNECTOR_TYPES",
    "STATUS",
    "ConnectorKind",
    "Site",
    "connector_kind",
    "evse_id",
    "evse_patch",
    "evse_status",
    "evse_uid",
    "location",
    "site_from_profile",
]

STATUS: Final[Mapping[str, str]] = {
    # OCPP 1.6 ChargePointStatus
    "Available": "AVAILABLE",
    "Preparing": "CHARGING",  # plugged in, a session is starting: in use
    "Charging": "CHARGING",
    "SuspendedEV": "CHARGING",  # in a session, the car or the charger pauses: still in use
    "SuspendedEVSE": "CHARGING",
    "Finishing": "BLOCKED",  # the session is over but the car is still plugged in
    "Reserved": "RESERVED",
    "Unavailable": "INOPERATIVE",
    "Faulted": "OUTOFORDER",
    # OCPP 2.0.1 ConnectorStatusEnumType (Available, Reserved, Unavailable, Faulted as above)
    "Occupied": "CHARGING",
}
"""OCPP connector status -> OCPI EVSE status (anything else, or no status: ``UNKNOWN``)."""


@dataclass(frozen=True, slots=True)
class ConnectorKind:
    """An OCPI connector ``standard`` with the ``format`` and ``power_type`` assumed for it."""

    standard: str
    format: str
    power_type: str


def _kind(standard: str, fmt: str, power: str) -> ConnectorKind:
    return ConnectorKind(standard, fmt, power)


_T2 = _kind("IEC_62196_T2", "SOCKET", "AC_3_PHASE")
_T1 = _kind("IEC_62196_T1", "CABLE", "AC_1_PHASE")
_CCS2 = _kind("IEC_62196_T2_COMBO", "CABLE", "DC")
_CCS1 = _kind("IEC_62196_T1_COMBO", "CABLE", "DC")
_CHADEMO = _kind("CHADEMO", "CABLE", "DC")
_SCHUKO = _kind("DOMESTIC_F", "SOCKET", "AC_1_PHASE")
_TESLA_S = _kind("TESLA_S", "CABLE", "DC")

CONNECTOR_TYPES: Final[Mapping[str, ConnectorKind]] = {
    "type2": _T2,
    "mennekes": _T2,
    "iec62196t2": _T2,
    "type1": _T1,
    "j1772": _T1,
    "saej1772": _T1,
    "iec62196t1": _T1,
    "ccs": _CCS2,
    "ccs2": _CCS2,
    "combo2": _CCS2,
    "ccstype2": _CCS2,
    "iec62196t2combo": _CCS2,
    "ccs1": _CCS1,
    "combo1": _CCS1,
    "ccstype1": _CCS1,
    "iec62196t1combo": _CCS1,
    "chademo": _CHADEMO,
    "schuko": _SCHUKO,
    "domesticf": _SCHUKO,
    "cee74": _SCHUKO,
    "tesla": _TESLA_S,
    "teslas": _TESLA_S,
    "teslar": _kind("TESLA_R", "CABLE", "AC_1_PHASE"),
    "type3a": _kind("IEC_62196_T3A", "SOCKET", "AC_1_PHASE"),
    "iec62196t3a": _kind("IEC_62196_T3A", "SOCKET", "AC_1_PHASE"),
    "type3c": _kind("IEC_62196_T3C", "SOCKET", "AC_3_PHASE"),
    "iec62196t3c": _kind("IEC_62196_T3C", "SOCKET", "AC_3_PHASE"),
    "gbtac": _kind("GBT_AC", "SOCKET", "AC_3_PHASE"),
    "gbtdc": _kind("GBT_DC", "CABLE", "DC"),
    "chaoji": _kind("CHAOJI", "CABLE", "DC"),
    "cee16": _kind("IEC_60309_2_single_16", "SOCKET", "AC_1_PHASE"),
    "ceeblue": _kind("IEC_60309_2_single_16", "SOCKET", "AC_1_PHASE"),
    "iec603092single16": _kind("IEC_60309_2_single_16", "SOCKET", "AC_1_PHASE"),
    "cee16red": _kind("IEC_60309_2_three_16", "SOCKET", "AC_3_PHASE"),
    "iec603092three16": _kind("IEC_60309_2_three_16", "SOCKET", "AC_3_PHASE"),
    "cee32": _kind("IEC_60309_2_three_32", "SOCKET", "AC_3_PHASE"),
    "cee32red": _kind("IEC_60309_2_three_32", "SOCKET", "AC_3_PHASE"),
    "iec603092three32": _kind("IEC_60309_2_three_32", "SOCKET", "AC_3_PHASE"),
    "cee63": _kind("IEC_60309_2_three_64", "SOCKET", "AC_3_PHASE"),
    "iec603092three64": _kind("IEC_60309_2_three_64", "SOCKET", "AC_3_PHASE"),
}
"""Strom's connector ``type`` (normalised: lower case without spaces, '-', '_', '/', '.')."""

ALPHA3: Final[Mapping[str, str]] = {
    "AD": "AND",
    "AT": "AUT",
    "BE": "BEL",
    "BG": "BGR",
    "CH": "CHE",
    "CY": "CYP",
    "CZ": "CZE",
    "DE": "DEU",
    "DK": "DNK",
    "EE": "EST",
    "ES": "ESP",
    "FI": "FIN",
    "FR": "FRA",
    "GB": "GBR",
    "GR": "GRC",
    "HR": "HRV",
    "HU": "HUN",
    "IE": "IRL",
    "IS": "ISL",
    "IT": "ITA",
    "LI": "LIE",
    "LT": "LTU",
    "LU": "LUX",
    "LV": "LVA",
    "MC": "MCO",
    "MT": "MLT",
    "NL": "NLD",
    "NO": "NOR",
    "PL": "POL",
    "PT": "PRT",
    "RO": "ROU",
    "RS": "SRB",
    "SE": "SWE",
    "SI": "SVN",
    "SK": "SVK",
    "SM": "SMR",
    "UA": "UKR",
    "AL": "ALB",
    "BA": "BIH",
    "ME": "MNE",
    "MK": "MKD",
    "MD": "MDA",
    "TR": "TUR",
    "US": "USA",
    "CA": "CAN",
    "MX": "MEX",
    "BR": "BRA",
    "AR": "ARG",
    "CL": "CHL",
    "AU": "AUS",
    "NZ": "NZL",
    "JP": "JPN",
    "KR": "KOR",
    "CN": "CHN",
    "IN": "IND",
    "SG": "SGP",
    "ZA": "ZAF",
    "IL": "ISR",
    "AE": "ARE",
    "SV": "SLV",
}
"""ISO 3166-1 alpha-2 -> alpha-3 for the countries a party's code is read from (Site otherwise)."""

_DC_HIGH_KW: Final = Decimal(150)
_NORMALISE: Final = re.compile(r"[\s_\-/.]")
_OUTLET: Final = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True, slots=True)
class Site:
    """Where a charger is, as OCPI wants it (strings within OCPI's lengths).

    Attributes:
        address: street and house number (at most 45 characters).
        city: at most 45 characters.
        country: ISO 3166-1 alpha-3.
        postal_code: at most 10 characters; "" when the place has none.
        ac_voltage: nominal line-to-neutral voltage of the AC connectors.
    """

    address: str
    city: str
    country: str
    postal_code: str = ""
    ac_voltage: int = 230

    def __post_init__(self) -> None:
        for name, value, length in (
            ("address", self.address, 45),
            ("city", self.city, 45),
            ("postal_code", self.postal_code, 10),
        ):
            if len(value) > length or (name != "postal_code" and not value.strip()):
                raise ObjectError(f"site {name} {value!r}: expected 1-{length} characters")
        if not re.fullmatch(r"[A-Z]{3}", self.country):
            raise ObjectError(f"site country {self.country!r}: expected ISO 3166-1 alpha-3")
        if not 100 <= self.ac_voltage <= 400:
            raise ObjectError(f"site ac_voltage {self.ac_voltage}: expected 100-400 V")


def site_from_profile(profile: ProfileConfig, party: Party) -> Site:
    """The Site read from the profile's free-text address (see the module docstring).

    Raises:
        ObjectError: the party's country is not in :data:`ALPHA3` (pass a Site instead).
    """
    country = ALPHA3.get(party.country_code)
    if country is None:
        raise ObjectError(
            f"no ISO 3166-1 alpha-3 code known for {party.country_code}: give the site's country"
        )
    text = " ".join(profile.location.address.split())
    street, _, rest = text.rpartition(",")
    postal, city = "", profile.name
    if street:
        first, _, remainder = rest.strip().partition(" ")
        if any(c.isdigit() for c in first) and len(first) <= 10 and remainder:
            postal, city = first, remainder
        elif rest.strip():
            city = rest.strip()
    else:
        street = text or profile.name
    return Site(_clip(street.strip(), 45), _clip(city.strip(), 45), country, postal)


def _clip(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"


def evse_status(ocpp_status: str | None) -> str:
    """The OCPI EVSE status of an OCPP connector status (None: offline or never reported)."""
    if ocpp_status is None:
        return "UNKNOWN"
    return STATUS.get(ocpp_status, "UNKNOWN")


def evse_patch(ocpp_status: str | None, now: datetime) -> OcpiObject:
    """The PATCH body of an EVSE whose connector changed status (mod_locations PATCH)."""
    return {"status": evse_status(ocpp_status), "last_updated": timestamp(now)}


def connector_kind(connector: ConnectorConfig) -> ConnectorKind:
    """The OCPI standard, format and power type of a profile connector.

    Raises:
        ObjectError: a ``type`` Strom cannot name in OCPI (the message lists what it reads).
    """
    key = _NORMALISE.sub("", connector.type).lower()
    kind = CONNECTOR_TYPES.get(key)
    if kind is None:
        known = ", ".join(sorted({k.standard for k in CONNECTOR_TYPES.values()}))
        raise ObjectError(
            f"connector {connector.id} type {connector.type!r} has no OCPI standard; use e.g. "
            f"Type2, Type1, CCS2, CCS1, CHAdeMO, Schuko or one of {known}"
        )
    if kind is _T2 and connector.max_power_kw <= Decimal("7.4"):
        return ConnectorKind(kind.standard, kind.format, "AC_1_PHASE")  # one phase at 32 A
    return kind


def evse_uid(charger_id: str, connector_id: int) -> str:
    """The EVSE's technical id: ``<charger id>-<connector id>`` (CiString(36))."""
    return check_cistring(f"{charger_id}-{connector_id}", 36, "EVSE uid")


def evse_id(party: Party, charger_id: str, connector_id: int) -> str:
    """The eMI3 EVSE id ``<CC>*<PID>*E<charger>*<connector>`` (see the module docstring).

    Raises:
        ObjectError: the power outlet part would exceed eMI3's 31 characters.
    """
    outlet = f"{_OUTLET.sub('*', charger_id.upper())}*{connector_id}"
    if len(outlet) > 31:
        raise ObjectError(
            f"charger id {charger_id!r} is too long for an eMI3 EVSE id (at most 29 characters "
            "with the connector)"
        )
    return f"{party.country_code}*{party.party_id}*E{outlet}"


def _electrics(kind: ConnectorKind, power_kw: Decimal, site: Site) -> tuple[int, int]:
    watts = power_kw * 1000
    if kind.power_type == "DC":
        voltage = 920 if power_kw > _DC_HIGH_KW else 500
        return voltage, int((watts / voltage).to_integral_value(ROUND_CEILING))
    phases = 3 if kind.power_type == "AC_3_PHASE" else 1
    amperage = (watts / (phases * site.ac_voltage)).to_integral_value(ROUND_HALF_UP)
    return site.ac_voltage, max(1, int(amperage))


def _connector(
    connector: ConnectorConfig, site: Site, tariff_ids: list[str], now: datetime
) -> OcpiObject:
    kind = connector_kind(connector)
    voltage, amperage = _electrics(kind, connector.max_power_kw, site)
    return {
        "id": "1",
        "standard": kind.standard,
        "format": kind.format,
        "power_type": kind.power_type,
        "max_voltage": voltage,
        "max_amperage": amperage,
        "max_electric_power": connector.max_power_w,
        "tariff_ids": tariff_ids,
        "last_updated": timestamp(now),
    }


def _coordinate(value: float) -> str:
    return format(Decimal(repr(value)).quantize(Decimal("0.000001"), ROUND_HALF_EVEN), "f")


def coordinates(profile: ProfileConfig) -> OcpiObject:
    """The profile's coordinates as an OCPI GeoLocation (strings, 6 decimals)."""
    return {
        "latitude": _coordinate(profile.location.lat),
        "longitude": _coordinate(profile.location.lon),
    }


def location(
    profile: ProfileConfig,
    statuses: Mapping[int, str | None],
    party: Party,
    now: datetime,
    *,
    tariff_ids: list[str],
    site: Site | None = None,
    publish: bool = True,
) -> OcpiObject:
    """The OCPI Location of one charger.

    Args:
        profile: the charger's profile.
        statuses: the live OCPP status of each connector id (missing or None: unknown/offline).
        party: Strom as a CPO.
        now: ``last_updated`` of the Location, its EVSEs and connectors.
        tariff_ids: the ids of the Tariffs valid at the connectors (:func:`tariff_id`).
        site: the address in OCPI's fields; default :func:`site_from_profile`.
        publish: whether apps may show the Location.

    Raises:
        ObjectError: an id too long for OCPI, a connector type without an OCPI standard, or a
            country that needs a Site.
    """
    site = site or site_from_profile(profile, party)
    check_cistring(profile.id, 36, "location id (the charger id)")
    geo = coordinates(profile)
    obj: OcpiObject = {
        **party.fields(),
        "id": profile.id,
        "publish": publish,
        "name": profile.name[:255],
        "address": site.address,
        "city": site.city,
    }
    if site.postal_code:
        obj["postal_code"] = site.postal_code
    obj |= {
        "country": site.country,
        "coordinates": geo,
        "evses": [
            {
                "uid": evse_uid(profile.id, c.id),
                "evse_id": evse_id(party, profile.id, c.id),
                "status": evse_status(statuses.get(c.id)),
                "capabilities": ["REMOTE_START_STOP_CAPABLE"],
                "connectors": [_connector(c, site, tariff_ids, now)],
                "coordinates": geo,
                "physical_reference": str(c.id),
                "last_updated": timestamp(now),
            }
            for c in profile.connectors
        ],
        "time_zone": profile.tariff.time_zone,
        "last_updated": timestamp(now),
    }
    return obj
