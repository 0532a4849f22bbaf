"""Strom's live data as OCPI objects: the chargers, their tariffs, a partner's sessions and CDRs.

Theory of operation: the pure :mod:`ocpi_server.objects` turns one charger, tariff or session
into an OCPI object; this module feeds it what Strom knows now, for one partner:

* **Locations**: the profiles in force (``LiveConfig``: a profile saved through the API is
  served at once) and each connector's last OCPP status from the database (every process
  reads the same). A charger that is offline shows ``UNKNOWN``. ``last_updated`` is the newest
  change of the charger's row or of a connector's status.
* **Tariffs**: each charger's tariff in force (an operator's change at run time wins over the
  file, as for the chargers' pages) in the partner's currency; a dynamic tariff with its
  known prices.
* **Sessions and CDRs**: only the partner's own (``roaming_sessions.partner_id`` =
  ``str(partner.id)``), with the token it gave.

**The currency of a partner** (:meth:`Catalogue.currency`): ``[ocpi] partner_currencies``
names it per partner id, else ``[ocpi] currency`` (``BTC`` unless set). Bitcoin is exact and
needs no rate (Strom's settlement extension, see docs/ocpi-objects.md). A fiat currency needs a
fresh BTC rate from Strom's rates (``[rates]``): a published tariff converts at the rate in
force now; a session or CDR at the rate its bill used when its tariff was written in that
currency, else at the rate in force when it is sent. Without a fresh rate nothing is
converted at a stale one: the request fails with 3000 (try again later) and a CDR waits.

A charger whose profile cannot be expressed in OCPI (a connector type without an OCPI
standard, an id too long) is left out of the lists with a warning, never served half-made.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from ocpi_server.objects import (
    Authorization,
    ObjectError,
    OcpiObject,
    Party,
    Pricing,
    cdr,
    location,
    session,
    tariff,
    tariff_id,
    terms_from_config,
)
from ocpi_server.objects.money import BITCOIN
from ocpi_server.protocol import OcpiError, StatusCode
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig, ProfileConfig
from strom_core.ports import ChargerLink, charger_link
from strom_core.ports.prices import NoPrice, PriceSource, RateSource
from strom_core.roaming import StartedBy
from strom_core.session import POST_STOP_STATES, Session
from strom_services.tariffs import TariffBook
from strom_storage.ocpi import OcpiPartnerRow
from strom_storage.ocpi_views import ChargerView, OcpiViews, PartnerSession

__all__ = ["Catalogue", "Dated", "NoRate"]

log = logging.getLogger(__name__)

SCHEDULE_HOURS = 48  # the known prices of a dynamic tariff published ahead


class NoRate(OcpiError):
    """No fresh exchange rate for the partner's currency: nothing is converted at a stale one."""

    def __init__(self, currency: str, reason: str) -> None:
        super().__init__(
            StatusCode.SERVER_ERROR, f"no fresh BTC/{currency} rate now ({reason}); try again"
        )


@dataclass(frozen=True, slots=True)
class Dated:
    """An OCPI object, its ``last_updated`` and its id (the order of a list)."""

    obj: OcpiObject
    last_updated: datetime
    key: str


class Catalogue:
    """Strom's chargers, tariffs and partners' sessions as OCPI objects.

    Args:
        live: the configuration in force (profiles, ``[ocpi]``).
        views: the chargers' and partners' sessions' rows.
        tariffs: the tariffs in force (None: the profiles' own).
        prices: the known prices of dynamic tariffs (None: dynamic tariffs are not published).
        rates: BTC exchange rates (None: only BTC can be served).
        clock: the current time.
    """

    def __init__(
        self,
        live: LiveConfig,
        views: OcpiViews,
        *,
        tariffs: TariffBook | None = None,
        prices: PriceSource | None = None,
        rates: RateSource | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.live = live
        self.views = views
        self.tariffs = tariffs
        self.prices = prices
        self.rates = rates
        self.clock = clock

    @property
    def party(self) -> Party:
        """Strom as a CPO (``[ocpi] country_code``/``party_id``)."""
        ocpi = self.live.current.ocpi
        return Party(ocpi.country_code, ocpi.party_id)

    def profile(self, charger_id: str) -> ProfileConfig | None:
        """The charger's profile in force, or None."""
        return next((p for p in self.live.current.profiles if p.id == charger_id), None)

    # --- currency -------------------------------------------------------------------------------

    def currency(self, partner_id: int) -> str:
        """The currency of the partner's prices and costs (see the module docstring)."""
        ocpi = self.live.current.ocpi
        return ocpi.partner_currencies.get(str(partner_id), ocpi.currency)

    async def _rate(self, currency: str) -> Pricing:
        if self.rates is None:
            raise NoRate(currency, "no exchange rates are configured ([rates])")
        try:
            rate = await self.rates.rate(currency)
        except NoPrice as exc:
            raise NoRate(currency, exc.reason) from None
        return Pricing.fiat(currency, rate.value)

    async def pricing(self, partner_id: int) -> Pricing:
        """The partner's currency at the rate in force now.

        Raises:
            NoRate: a fiat currency and no fresh rate.
        """
        currency = self.currency(partner_id)
        return Pricing.bitcoin() if currency == BITCOIN else await self._rate(currency)

    async def session_pricing(self, partner_id: int, session_: Session) -> Pricing:
        """The partner's currency for one session: at the rate its bill used, when it has one.

        Raises:
            NoRate: a fiat currency, the session's bill in another, and no fresh rate.
        """
        currency = self.currency(partner_id)
        if currency == BITCOIN:
            return Pricing.bitcoin()
        fiat = session_.fiat
        if fiat is not None and fiat.billed_rate.currency == currency:
            return Pricing.fiat(currency, fiat.billed_rate.value)
        return await self._rate(currency)

    # --- locations ------------------------------------------------------------------------------

    async def locations(self) -> list[Dated]:
        """Every charger's Location, oldest change first."""
        views = await self.views.chargers()
        found = []
        for profile in self.live.current.profiles:
            dated = self._location(profile, views.get(profile.id))
            if dated is not None:
                found.append(dated)
        return sorted(found, key=lambda d: (d.last_updated, d.key))

    async def location(self, location_id: str) -> Dated | None:
        """One charger's Location (ids compare case-insensitively, as CiStrings), or None."""
        profile = next(
            (p for p in self.live.current.profiles if p.id.lower() == location_id.lower()), None
        )
        if profile is None:
            return None
        return self._location(profile, (await self.views.chargers()).get(profile.id))

    def _location(self, profile: ProfileConfig, view: ChargerView | None) -> Dated | None:
        if view is None:
            return None  # not synced yet: no run-time row
        now = self.clock.now()
        online = charger_link(view.online, view.reconnect_until, now) is ChargerLink.ONLINE
        statuses: dict[int, str | None] = dict(view.statuses) if online else {}
        return self._made(
            profile.id,
            view.last_updated,
            lambda: location(
                profile,
                statuses,
                self.party,
                view.last_updated,
                tariff_ids=[tariff_id(profile.id)],
            ),
        )

    # --- tariffs --------------------------------------------------------------------------------

    async def tariffs_for(self, partner_id: int) -> list[Dated]:
        """Every charger's Tariff in the partner's currency, oldest change first.

        Raises:
            NoRate: a fiat currency and no fresh rate.
        """
        pricing = await self.pricing(partner_id)
        views = await self.views.chargers()
        found = []
        for profile in self.live.current.profiles:
            view = views.get(profile.id)
            if view is None:
                continue
            dated = await self._tariff(profile, view, pricing)
            if dated is not None:
                found.append(dated)
        return sorted(found, key=lambda d: (d.last_updated, d.key))

    async def _tariff(
        self, profile: ProfileConfig, view: ChargerView, pricing: Pricing
    ) -> Dated | None:
        config = profile.tariff
        schedule = None
        changed = view.updated_at
        if config.dynamic_price is not None:
            if self.prices is None:
                return None
            try:
                schedule = await self.prices.schedule(profile.id, self.clock.now(), SCHEDULE_HOURS)
            except NoPrice as exc:
                log.warning("ocpi: tariff of %s not published: %s", profile.id, exc.reason)
                return None
            changed = max(changed, schedule.fetched_at)
        fiat_rate = None
        fiat = config.to_fiat()
        if fiat is not None and fiat.currency != pricing.currency:
            try:
                fiat_rate = (await self._rate(fiat.currency)).rate
            except NoRate as exc:
                log.warning("ocpi: tariff of %s not published: %s", profile.id, exc.message)
                return None
        terms = terms_from_config(config, schedule=schedule, fiat_rate=fiat_rate)
        if self.tariffs is not None and self.tariffs.changed_by(profile) is not None:
            terms = replace(terms, tariff=self.tariffs.in_force(profile))
        return self._made(
            profile.id,
            changed,
            lambda: tariff(tariff_id(profile.id), terms, self.party, pricing, changed),
        )

    # --- sessions and CDRs ----------------------------------------------------------------------

    def authorization(self, partner: OcpiPartnerRow, found: PartnerSession) -> Authorization:
        """The partner's token and how it authorised the session."""
        start = found.start
        return Authorization(
            country_code=partner.country_code or "",
            party_id=partner.party_id or "",
            uid=start.token_uid,
            token_type=start.token_type.value,
            contract_id=start.contract_id,
            method="COMMAND" if start.started_by is StartedBy.COMMAND else "WHITELIST",
            reference=start.authorization_reference,
        )

    async def session_object(self, partner: OcpiPartnerRow, found: PartnerSession) -> Dated | None:
        """The OCPI Session of one of the partner's sessions (None: its charger is gone).

        Raises:
            NoRate: a fiat currency and no rate for it.
        """
        session_ = found.session
        profile = self.profile(session_.charger_id)
        if profile is None:
            return None
        pricing = await self.session_pricing(partner.id, session_)
        return self._made(
            session_.id,
            found.updated_at,
            lambda: session(
                session_,
                profile,
                self.party,
                pricing,
                found.updated_at,
                tariff_id=tariff_id(profile.id),
                authorization=self.authorization(partner, found),
                created_at=found.created_at,
            ),
        )

    async def sessions_for(self, partner: OcpiPartnerRow) -> list[Dated]:
        """The partner's Sessions, oldest change first."""
        found = []
        for one in await self.views.partner_sessions(str(partner.id)):
            dated = await self.session_object(partner, one)
            if dated is not None:
                found.append(dated)
        return found

    @staticmethod
    def billed(session_: Session) -> bool:
        """Whether a session has its final bill (a CDR): it charged and it ended."""
        return (
            session_.state in POST_STOP_STATES
            and session_.started_at is not None
            and session_.stopped_at is not None
        )

    async def cdr_object(self, partner: OcpiPartnerRow, found: PartnerSession) -> Dated | None:
        """The CDR of one of the partner's billed sessions (None: not billed, or no charger).

        ``last_updated`` is the session's stop: a CDR never changes once made.

        Raises:
            NoRate: a fiat currency and no rate for it.
        """
        session_ = found.session
        profile = self.profile(session_.charger_id)
        if profile is None or not self.billed(session_) or session_.stopped_at is None:
            return None
        stopped = session_.stopped_at
        pricing = await self.session_pricing(partner.id, session_)
        return self._made(
            session_.id,
            stopped,
            lambda: cdr(
                session_,
                profile,
                self.party,
                pricing,
                stopped,
                tariff_id=tariff_id(profile.id),
                authorization=self.authorization(partner, found),
            ),
        )

    async def cdrs_for(self, partner: OcpiPartnerRow) -> list[Dated]:
        """The CDRs of the partner's billed sessions, oldest first."""
        found = []
        for one in await self.views.partner_sessions(str(partner.id)):
            dated = await self.cdr_object(partner, one)
            if dated is not None:
                found.append(dated)
        return sorted(found, key=lambda d: (d.last_updated, d.key))

    @staticmethod
    def _made(key: str, last_updated: datetime, make: Callable[[], OcpiObject]) -> Dated | None:
        try:
            return Dated(make(), last_updated, key)
        except ObjectError as exc:
            log.warning("ocpi: %s cannot be served in OCPI: %s", key, exc)
            return None
