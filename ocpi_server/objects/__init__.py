"""Strom's chargers, tariffs, sessions and bills as OCPI 2.2.1 objects (pure functions).

Every function takes the party (:class:`Party`) and ``now`` explicitly and returns JSON-ready
data (:func:`dumps` writes it with exact decimal numbers). Modules: :mod:`.locations`
(Location, EVSE status and its PATCH), :mod:`.tariffs` (Tariff), :mod:`.sessions` (Session,
CDR) and :mod:`.money` (the currency and the msat conversion). See docs/ocpi-objects.md.
"""

from ocpi_server.objects._common import ObjectError, OcpiObject, Party, dumps, timestamp
from ocpi_server.objects.locations import (
    Site,
    evse_id,
    evse_patch,
    evse_status,
    evse_uid,
    location,
    site_from_profile,
)
from ocpi_server.objects.money import Pricing
from ocpi_server.objects.sessions import (
    Authorization,
    bill,
    cdr,
    charging_periods,
    session,
    session_status,
    session_terms,
    strom_authorization,
)
from ocpi_server.objects.tariffs import TariffTerms, tariff, tariff_id, terms_from_config

__all__ = [
    "Authorization",
    "ObjectError",
    "OcpiObject",
    "Party",
    "Pricing",
    "Site",
    "TariffTerms",
    "bill",
    "cdr",
    "charging_periods",
    "dumps",
    "evse_id",
    "evse_patch",
    "evse_status",
    "evse_uid",
    "location",
    "session",
    "session_status",
    "session_terms",
    "site_from_profile",
    "strom_authorization",
    "tariff",
    "tariff_id",
    "terms_from_config",
    "timestamp",
]
