"""Money in: invoices for sessions and top-ups, and their settlement.

Theory of operation
-------------------
* :meth:`PaymentService.open_session` refuses a connector that is disabled, unknown or busy, or
  whose charger is not connected (offline, or still reconnecting after a restart of Strom),
  *before* any invoice exists (from the in-memory view of :mod:`strom_services.offers`, which every
  committed session transition and OCPP event refreshes), asks the backend for the invoice, then
  stores a session ``awaiting_payment`` with its pending payment in one transaction — the
  invoice is handed out only after that commit, so a settled invoice always finds its session.
* :meth:`PaymentService.settle` is the one idempotent "payment settled" step. The backend's
  settlement stream, the reconciliation at start, the expiry sweep and the zap-receipt path all
  end here; the payment row's state (``pending`` → ``settled``) is flipped once, in the same
  transaction as the session event, so a session starts exactly once whichever path comes first.
  It credits what the backend reports received, and only when that is the invoice amount or up
  to twice it (an overpayment is the driver's budget); any other report is not credited: the
  payment is ``flagged`` for the operator (see :meth:`PaymentService.settle`).
* Two strangers can hold invoices for one free connector at the same time (a connector is not
  reserved by an unpaid invoice, so nobody can block a charger by scanning). The first payment
  to settle gets the connector; a later one is recorded, and its whole amount becomes
  refundable to its payer at once (the session page shows the refund link).
* Settlement does not look at the charger's link: a payment can settle in the moment its
  charger drops (an invoice paid a minute after it was made, say). That race cannot be closed
  — the driver's wallet pays when it pays — so such a session goes the usual way: RemoteStart
  answers ``Offline``, and the whole payment becomes refundable.
* A roaming partner's bill (:mod:`strom_services.roaming`) is paid by an invoice whose payment
  row has kind ``receivable`` and points at the partner's session: it settles here like any
  other, once (the payment row flips once), and marks the receivable ``paid`` and journals
  ``receivable_paid`` in the same transaction; no session event (the session's bill is final).
* A partner's interval invoice of a streaming session (kind ``stream``,
  :mod:`strom_services.partner_invoices`) settles the same way: the invoice turns ``PAID``
  and is journalled ``stream_paid`` once; no session event (the session is post-paid).
* A top-up (:meth:`PaymentService.open_top_up`) is refused too while the session's charger is
  not connected: Strom could neither see the charge go on nor stop it at the new budget.
* A reservation (``open_session(..., reserve_minutes=m)``) is offered only where the tariff
  allows it and the charger reports the connector ``Available``
  (:meth:`~strom_services.offers.OfferView.reserve_check`); its amount must be at least the
  fee and the tariff's minimum and at most its maximum. Its OCPP reservation id is taken from a
  persisted counter before the session is stored (an id is never reused, even if the invoice
  is never paid). Settlement makes it ``RESERVED`` and checks the connector like any first
  payment: a connector taken meanwhile makes it a refused reservation, refunded in full.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ProfileConfig, SessionsConfig
from strom_core.crashpoints import crashpoint
from strom_core.errors import ConfigError, StromError
from strom_core.fiat import Conversion, FiatBilling, ShownTariff, shown_tariff
from strom_core.partner_invoices import PartnerInvoice
from strom_core.ports import ChargerLink
from strom_core.ports.prices import NoPrice, PriceSource, RateSource
from strom_core.prices import PriceSchedule
from strom_core.roaming import Receivable
from strom_core.session import State, Transition, new_session
from strom_core.session_events import (
    InvoiceExpired,
    PaymentSettled,
    RemoteStartRejected,
    ReservationRejected,
    TopUpSettled,
)
from strom_core.session_secrets import SessionSecrets
from strom_core.tariff import Tariff
from strom_core.time_of_use import time_of_use_schedule
from strom_lightning import Invoice, InvoiceNotFound, InvoiceState, InvoiceStatus, LightningBackend
from strom_services.group_commit import GroupCommit
from strom_services.offers import BUSY_STATES, ConnectorUnavailable, OfferView, check_connector
from strom_services.reservations import RESERVATION_COUNTER
from strom_services.tariffs import TariffBook
from strom_storage.chargers import ChargerStore
from strom_storage.db import Connection
from strom_storage.leases import agent_lease
from strom_storage.ocpp import allocate_id
from strom_storage.outbox import queue_effect
from strom_storage.partner_invoices import invoice_paid, record_stream_payment
from strom_storage.payments import (
    PaymentRow,
    PaymentStore,
    ZapRequestAlreadyUsed,
    expire_payment,
    flag_payment,
    insert_payments,
    load_payment,
    new_payment_row,
    record_zap_request,
    settle_payment,
)
from strom_storage.roaming import record_receivable_payment
from strom_storage.sessions import (
    SessionStore,
    apply_event,
    insert_sessions,
    load_session,
    new_session_row,
)

__all__ = [
    "BUSY_STATES",
    "OVERPAY_LIMIT",
    "RECEIVABLE_KIND",
    "STREAM_KIND",
    "ConnectorUnavailable",
    "NoPrice",
    "OpenedSession",
    "PaymentService",
    "ReservationRefused",
    "ZapRequestUsed",
]

log = logging.getLogger(__name__)

_ID_TAG_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
RECEIVABLE_KIND = "receivable"  # a payment of a partner's bill (strom_services.roaming)
STREAM_KIND = "stream"  # a partner's interval invoice (strom_services.partner_invoices)
# The most a settlement is credited, as a multiple of its invoice: BOLT 4 lets a payee refuse
# more than twice the amount asked, so a larger report is a backend's error, not a payment.
OVERPAY_LIMIT = 2


class ReservationRefused(StromError):
    """A reservation cannot be made with these minutes or amount (nothing was stored).

    ``reason`` is for the driver's wallet.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ZapRequestUsed(StromError):
    """A zap request (by event id) opened a session before: each is used once."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class OpenedSession:
    """A new session and the invoice that pays for it."""

    session_id: str
    secret: str
    invoice: Invoice


@dataclass(frozen=True, slots=True)
class _Settlement:
    """What settle's transaction found and did (logged after the commit)."""

    row: PaymentRow | None
    received: int = 0
    flagged: bool = False
    transitions: tuple[Transition, ...] = ()
    refused: str | None = None  # why a paid session could not have its connector
    receivable: Receivable | None = None  # a partner's bill this settlement paid
    interval: PartnerInvoice | None = None  # a partner's interval invoice this settlement paid


def _payment_row(
    session_id: str,
    kind: str,
    invoice: Invoice,
    zap_request: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    return new_payment_row(
        session_id=session_id,
        kind=kind,
        payment_hash=invoice.payment_hash,
        amount_msat=invoice.amount_msat,
        bolt11=invoice.bolt11,
        expires_at=invoice.expires_at,
        zap_request=zap_request,
        now=now,
    )


def _log_flagged(row: PaymentRow, received: int) -> None:
    log.error(
        "session %s: payment %s NOT credited: the lightning backend reports %s msat received "
        "for an invoice of %s msat (%s); the payment is flagged for the operator — check the "
        "node and the backend (see docs/lightning.md, 'Settlements the backend misreports')",
        row.session_id,
        row.payment_hash,
        received,
        row.amount_msat,
        "less than the invoice" if received < row.amount_msat else "more than twice the invoice",
    )


def new_id_tag() -> str:
    """A per-session OCPP idTag: 16 characters (some chargers cut longer tags), unguessable."""
    return "S" + "".join(secrets.choice(_ID_TAG_ALPHABET) for _ in range(15))


class PaymentService:
    """Invoices for sessions, and the one settlement step.

    Args:
        store: the session store.
        backend: the lightning backend.
        sessions_config: invoice expiry, start timeout.
        meter_interval_s: the chargers' meter interval (the budget's safety margin).
        session_secrets: derives each new session's secret from the server key
            (:mod:`strom_core.session_secrets`), so no secret is ever stored.
        tariffs: the tariff in force for each charger (what a new session is priced at).
        clock: the current time (payments' timestamps; the sessions' store has its own).
        payments: the payments' repository (by default on the sessions' database).
        chargers: the chargers' run-time state, for offers (by default on the same database).
        prices: where a dynamic tariff's energy prices come from (a profile with
            ``[tariff.time_of_use]``); its schedule for the next
            ``sessions.price_schedule_hours`` is frozen into each new session. None: every
            tariff is billed at its static price.
        rates: the BTC rates that convert a tariff's fiat components (:mod:`strom_core.fiat`)
            when a session is opened; None: a tariff with fiat components is refused.
    """

    def __init__(
        self,
        store: SessionStore,
        backend: LightningBackend,
        sessions_config: SessionsConfig,
        *,
        meter_interval_s: int,
        session_secrets: SessionSecrets,
        tariffs: TariffBook,
        clock: Clock = SYSTEM_CLOCK,
        payments: PaymentStore | None = None,
        chargers: ChargerStore | None = None,
        prices: PriceSource | None = None,
        rates: RateSource | None = None,
    ) -> None:
        self.prices = prices
        self.rates = rates
        self._schedules: dict[str, PriceSchedule] = {}  # the newest schedule of each charger
        self.store = store
        self.payments = payments or PaymentStore(store.db)
        self.session_secrets = session_secrets
        self.db = store.db
        self.backend = backend
        self.config = sessions_config
        self.meter_interval_s = meter_interval_s
        self.clock = clock
        self.tariffs = tariffs
        tariffs.on_change(lambda _charger_id: self.forget_view())
        self.offers = OfferView(store, chargers or ChargerStore(store.db), clock)
        store.on_committed(self.forget_view)
        # Sessions opened together commit together (one transaction for a burst of scans).
        self._openings: GroupCommit[tuple[dict[str, Any], dict[str, Any]]] = GroupCommit(
            self._insert_opened, name="open-sessions"
        )

    def tariff_for(self, profile: ProfileConfig) -> Tariff:
        """The tariff a new session of this charger gets (the tariff in force)."""
        return self.tariffs.in_force(profile)

    async def schedule_for(self, profile: ProfileConfig) -> PriceSchedule | None:
        """The prices a new session of this charger is frozen with; None for a static tariff.

        Raises:
            NoPrice: the tariff is dynamic and no price can be given now; its reason is the
                source's, worded for the payer.
        """
        if not profile.tariff.dynamic:
            return None
        if self.prices is None:
            raise NoPrice("no price can be given now (no price source); nothing was charged")
        try:
            schedule = await self.prices.schedule(
                profile.id, self.clock.now(), self.config.price_schedule_hours
            )
        except NoPrice as exc:
            raise NoPrice(f"no price can be given now ({exc.reason}); nothing was charged") from exc
        self._schedules[profile.id] = schedule
        return schedule

    async def fiat_priced(
        self, profile: ProfileConfig, tariff: Tariff
    ) -> tuple[Tariff, FiatBilling | None]:
        """The tariff a new session is frozen with, its fiat components converted.

        At the current rate (``at_payment``), or at the planning rate below it
        (``at_billing``, whose final bill converts again); the rate is kept with the session.

        Raises:
            NoPrice: no fresh rate of the tariff's currency, or a tariff the rate makes
                invalid; worded for the payer (nothing is created).
        """
        terms = profile.tariff.to_fiat()
        if terms is None:
            return tariff, None
        if self.rates is None:
            raise NoPrice(
                f"no price can be given now (no BTC/{terms.currency} rate source); "
                "nothing was charged"
            )
        try:
            rate = await self.rates.rate(terms.currency)
        except NoPrice as exc:
            raise NoPrice(f"no price can be given now ({exc.reason}); nothing was charged") from exc
        planning = terms.convert is Conversion.AT_BILLING
        try:
            converted = terms.apply(tariff, rate, planning=planning)
        except ConfigError as exc:
            raise NoPrice(
                f"no price can be given now (at {rate.value} {rate.currency}/BTC: {exc}); "
                "nothing was charged"
            ) from exc
        return converted, FiatBilling(terms, rate)

    def fiat_lines(self, profile: ProfileConfig) -> dict[str, str]:
        """The tariff's fiat components as written, with sat values at the current rate.

        For the LNURL metadata and the pages; a value only when a rate is fresh. Empty: the
        tariff is in sats only.
        """
        return self.shown_tariff(profile).lines

    def shown_tariff(self, profile: ProfileConfig) -> ShownTariff:
        """The prices a driver paying now gets, for display (:func:`strom_core.fiat.shown_tariff`).

        The tariff in force, its fiat components converted at the fresh rate of now as
        :meth:`fiat_priced` would (``at_billing``: at the rate itself, the best guess of the
        bill), from memory: no I/O, nothing frozen.
        """
        terms = profile.tariff.to_fiat()
        fresh = () if self.rates is None or terms is None else self.rates.fresh_rates()
        return shown_tariff(self.tariff_for(profile), terms, fresh)

    def display_tariff(self, profile: ProfileConfig) -> Tariff | None:
        """The sat tariff of :meth:`shown_tariff`; None: priced in fiat and no fresh rate.

        What every display of a sat price reads (never the stored sat tariff, whose fiat
        components are 0).
        """
        return self.shown_tariff(profile).tariff

    def static_schedule(self, profile: ProfileConfig, start: datetime, hours: int) -> PriceSchedule:
        """The energy price of :meth:`display_tariff`, flat, for the price charts and the API.

        An energy price in fiat is converted at the fresh rate (source ``fiat:<currency>``, the
        rate in ``rate_source``, its time in ``fetched_at``).

        Raises:
            NoPrice: a price in fiat and no fresh rate converts it (worded for the operator
                and the driver).
        """
        shown = self.shown_tariff(profile)
        if shown.tariff is None:
            assert shown.terms is not None  # only a fiat price lacks a tariff
            currency = shown.terms.currency
            if shown.rate is None:
                raise NoPrice(f"no fresh BTC/{currency} rate to convert the {currency} prices")
            raise NoPrice(
                f"at {shown.rate.value} {currency}/BTC the session fee is not below the "
                "minimum payment (payments are refused)"
            )
        flat = PriceSchedule.flat(shown.tariff.energy_msat_per_kwh, start, hours)
        if shown.rate is None or not shown.in_fiat("per_kwh"):
            return flat
        return replace(
            flat,
            source=f"fiat:{shown.rate.currency}",
            rate_source=shown.rate.source,
            fetched_at=shown.rate.at,
        )

    async def warm_rate(self, profile: ProfileConfig) -> None:
        """Ask for a fresh rate of the tariff's currency if none is (for displays, no payment).

        Nothing happens for a tariff in sats; a failure leaves the displays without a price
        (they say so), and is the rate book's to log.
        """
        terms = profile.tariff.to_fiat()
        if terms is None or self.rates is None:
            return
        try:
            await self.rates.rate(terms.currency)
        except NoPrice:
            return

    def price_now(self, profile: ProfileConfig) -> int | None:
        """The energy price (msat/kWh) in force now for a dynamic tariff.

        Read from the charger's newest schedule, else from the profile's time-of-use windows
        (the LNURL metadata states it); None when the tariff is static or nothing covers now.
        """
        if not profile.tariff.dynamic:
            return None
        now = self.clock.now()
        schedule = self._schedules.get(profile.id)
        interval = None if schedule is None else schedule.price_at(now)
        if interval is None:  # no schedule yet: the profile's own windows need no network
            tou = profile.tariff.to_time_of_use()
            interval = None if tou is None else time_of_use_schedule(tou, now, 1).price_at(now)
        return None if interval is None else interval.energy_msat_per_kwh

    async def check_connector(self, profile: ProfileConfig, connector_id: int) -> None:
        """Raise :class:`ConnectorUnavailable` unless the connector can take a session now."""
        await self.offers.check_in_database(profile, connector_id)

    async def offer_check(self, profile: ProfileConfig, connector_id: int) -> None:
        """:meth:`check_connector` answered from memory, for offers (:class:`OfferView`).

        Raises:
            ConnectorUnavailable: disabled, unknown, out of order or busy connector, or a
                charger that is not connected.
        """
        await self.offers.check(profile, connector_id)

    async def link_of(self, charger_id: str) -> ChargerLink:
        """The charger's link as offers see it (online, reconnecting, offline)."""
        return await self.offers.link_of(charger_id)

    async def top_up_check(self, charger_id: str) -> None:
        """Refuse a top-up while the session's charger is not connected.

        Raises:
            ConnectorUnavailable: the charger is offline or reconnecting.
        """
        await self.offers.top_up_check(charger_id)

    def forget_view(self, *_: object) -> None:
        """Drop the in-memory view offers are answered from; the next offer rebuilds it."""
        self.offers.forget()

    async def open_session(
        self,
        profile: ProfileConfig,
        connector_id: int,
        amount_msat: int,
        *,
        description_hash: bytes,
        initiator: str,
        initiator_pubkey: str | None = None,
        zap_request: dict[str, Any] | None = None,
        zap_request_id: str | None = None,
        reserve_minutes: int = 0,
        fee_at_settlement: bool = False,
    ) -> OpenedSession:
        """Create a session awaiting payment and its invoice.

        A zap request's event id is recorded as processed in the same transaction, so each zap
        request opens at most one session. ``reserve_minutes > 0`` makes it a reservation;
        ``fee_at_settlement`` (a zap: its amount is the zapper's) lets an amount below the fee
        through, which the core refunds in full at settlement (``START_FAILED``).

        Raises:
            ZapRequestUsed: the zap request was already used.
            ConnectorUnavailable: disabled, faulted or busy connector, or a charger that is
                not connected (no invoice made); for a reservation also a tariff without
                reservations or a connector that is not ``Available``.
            ReservationRefused: minutes or amount outside what the tariff allows (nothing
                stored).
            NoPrice: a dynamic tariff has no price now, or a tariff priced in fiat no fresh
                exchange rate (nothing stored, no invoice made).
            BackendError: the lightning backend could not make an invoice (nothing stored).
        """
        tariff = self.tariff_for(profile)
        reservation_id = None
        if reserve_minutes:
            self.check_reservation(
                tariff, reserve_minutes, amount_msat, fee_at_settlement=fee_at_settlement
            )
            await self.offers.reserve_check(profile, connector_id, tariff)
        else:
            # From the in-memory view: current to the last commit of this process; the
            # session that pays first gets the connector (settle checks in its transaction),
            # so an invoice made in the instant a connector turns busy can only become a full
            # refund.
            await self.offer_check(profile, connector_id)
        connector = next(c for c in profile.connectors if c.id == connector_id)
        schedule = await self.schedule_for(profile)  # before the invoice: NoPrice makes none
        tariff, fiat = await self.fiat_priced(profile, tariff)  # likewise
        invoice = await self.backend.create_invoice(
            amount_msat,
            description_hash=description_hash,
            expiry_s=self.config.invoice_expiry_s,
        )
        session_id = secrets.token_hex(8)
        secret = self.session_secrets.secret(session_id)  # derived: nothing to keep
        if reserve_minutes:
            reservation_id = await self.db.write(
                lambda conn: allocate_id(conn, RESERVATION_COUNTER)
            )
        session = new_session(
            session_id=session_id,
            charger_id=profile.id,
            connector_id=connector_id,
            id_tag=new_id_tag(),
            tariff=tariff,
            power_w=profile.session_power_w(connector.id),
            meter_interval_s=self.meter_interval_s,
            start_timeout_s=self.config.start_timeout_s,
            reserve_minutes=reserve_minutes,
            reservation_id=reservation_id,
            schedule=schedule,
            fiat=fiat,
        )
        now = self.clock.now()
        row = new_session_row(session, secret, initiator, initiator_pubkey, now)
        payment = _payment_row(session_id, "initial", invoice, zap_request, now)
        if zap_request_id is None:
            await self._openings.submit((row, payment))
        else:
            zap_id = zap_request_id

            def open_zapped(conn: Connection) -> None:
                insert_sessions(conn, [row])
                insert_payments(conn, [payment])
                _record_zap_request(conn, zap_id, initiator_pubkey, now)

            await self.db.write(open_zapped)
        # Everything the payer's links and a zapper's DMs need is committed now (the secret
        # is derived, the zapper's key and relays are in the rows): a crash here costs nothing.
        crashpoint("session.after_open")
        log.info(
            "session %s: invoice %s for %s msat on %s/%s (%s)",
            session_id,
            invoice.payment_hash,
            amount_msat,
            profile.id,
            connector_id,
            initiator,
        )
        return OpenedSession(session_id=session_id, secret=secret, invoice=invoice)

    @staticmethod
    def check_reservation(
        tariff: Tariff, minutes: int, amount_msat: int, *, fee_at_settlement: bool = False
    ) -> None:
        """Whether ``amount_msat`` may reserve for ``minutes`` at ``tariff``.

        With ``fee_at_settlement`` the amount needs only the tariff's minimum: less than the
        fee is the core's to refuse at settlement (a zap's refund, ``START_FAILED``).

        Raises:
            ReservationRefused: no reservations here, minutes out of range, or an amount
                below the fee (or the minimum) or above the maximum.
        """
        if not tariff.offers_reservations:
            raise ReservationRefused("this charger takes no reservations; nothing was charged")
        if isinstance(minutes, bool) or not 1 <= minutes <= tariff.reservation_max_minutes:
            raise ReservationRefused(
                f"a reservation here is 1 to {tariff.reservation_max_minutes} minutes, not "
                f"{minutes}; nothing was charged"
            )
        least = (
            tariff.min_prepay_msat if fee_at_settlement else tariff.reservation_min_msat(minutes)
        )
        if not least <= amount_msat <= tariff.max_prepay_msat:
            raise ReservationRefused(
                f"reserving for {minutes} min takes {least} to {tariff.max_prepay_msat} msat, "
                f"not {amount_msat}; nothing was charged"
            )

    async def _insert_opened(self, group: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """One transaction for a group of new sessions and their payments (group commit)."""

        def insert_group(conn: Connection) -> None:
            insert_sessions(conn, [session for session, _ in group])
            insert_payments(conn, [payment for _, payment in group])

        await self.db.write(insert_group)

    async def running_session_of(
        self, charger_id: str, connector_id: int, initiator_pubkey: str
    ) -> str | None:
        """The id of the connector's running session if ``initiator_pubkey`` started it."""
        return await self.store.holder(
            charger_id, connector_id, BUSY_STATES, initiator_pubkey=initiator_pubkey
        )

    async def open_top_up(
        self,
        session_id: str,
        amount_msat: int,
        *,
        charger_id: str,
        description_hash: bytes,
        zap_request: dict[str, Any] | None = None,
        zap_request_id: str | None = None,
        initiator_pubkey: str | None = None,
    ) -> Invoice:
        """An invoice that adds to a session's budget (a top-up page, or the zapper's new zap).

        Args:
            session_id: the session to top up.
            amount_msat: the invoice amount.
            charger_id: the session's charger, which must be connected
                (:meth:`top_up_check`).
            description_hash: what the invoice commits to.
            zap_request: the zap request that pays it, for the receipt.
            zap_request_id: its event id, recorded as used in the same transaction.
            initiator_pubkey: the zapper's key.

        Raises:
            ConnectorUnavailable: the charger is not connected (no invoice made).
            ZapRequestUsed: the zap request was already used.
        """
        await self.top_up_check(charger_id)
        invoice = await self.backend.create_invoice(
            amount_msat, description_hash=description_hash, expiry_s=self.config.invoice_expiry_s
        )
        now = self.clock.now()
        payment = _payment_row(session_id, "topup", invoice, zap_request, now)

        def open_top_up(conn: Connection) -> None:
            insert_payments(conn, [payment])
            if zap_request_id is not None:
                _record_zap_request(conn, zap_request_id, initiator_pubkey, now)

        await self.db.write(open_top_up)
        log.info("session %s: top-up invoice %s", session_id, invoice.payment_hash)
        return invoice

    async def settle(self, payment_hash: str, amount_msat: int | None = None) -> bool:
        """Record a settled payment and advance its session, exactly once.

        The session is credited what the backend says was received: at least the invoice
        amount, and at most :data:`OVERPAY_LIMIT` times it (an overpayment is the driver's
        money: it adds to the budget and what is not used is refunded). A report outside
        that range cannot be a real payment of this invoice (a receiving node refuses less,
        and BOLT 4 lets it refuse more than twice the amount): the payment is not credited,
        it leaves ``pending`` for ``flagged`` (so it is not retried) and an error is logged
        for the operator with the payment hash and both amounts.

        Args:
            payment_hash: the invoice's payment hash.
            amount_msat: what the backend says was received; the invoice amount when not
                given (a caller that has no figure of its own).

        Returns:
            True if this call recorded the settlement, False if it was already recorded,
            flagged, or the hash is not one of Strom's invoices.
        """
        # One hop: the whole settlement is one function on the database's connection.
        paid_at, event_at = self.clock.now(), self.store.clock.now()
        done = await self.db.write(
            lambda conn: self._settle_in(conn, payment_hash, amount_msat, paid_at, event_at),
            urgent=True,
        )
        row, received = done.row, done.received
        if row is None:
            log.warning("settlement for unknown payment hash %s ignored", payment_hash)
            return False
        if done.flagged:
            _log_flagged(row, received)
            return False
        if row.kind == RECEIVABLE_KIND and received:  # recorded now (a replay received nothing)
            return _log_receivable(row, received, done.receivable)
        if row.kind == STREAM_KIND and received:
            return _log_interval(row, received, done.interval)
        if not done.transitions:  # settled before, expired, or flagged
            return False
        if done.refused is not None:
            log.info("session %s: paid but not started: %s", row.session_id, done.refused)
        if done.transitions[-1].session.state is State.RESERVED:
            # The reservation and its ReserveNow, expiry timer and notification are durable;
            # none of them has run yet.
            crashpoint("reservation.after_reserved")
        self.store.committed(list(done.transitions))
        if received > row.amount_msat:
            log.info(
                "session %s: payment %s was overpaid: %s msat received for an invoice of %s msat "
                "(the difference is the driver's budget, refundable if unused)",
                row.session_id,
                payment_hash,
                received,
                row.amount_msat,
            )
        log.info("session %s: payment %s settled (%s msat)", row.session_id, payment_hash, received)
        return True

    def _settle_in(
        self,
        conn: Connection,
        payment_hash: str,
        amount_msat: int | None,
        paid_at: datetime,
        event_at: datetime,
    ) -> _Settlement:
        """Settle's transaction: lock the payment, then flag it or record it (:meth:`settle`)."""
        row = load_payment(conn, payment_hash, lock=True)
        if row is None or row.state != "pending":  # unknown; settled before, expired, flagged
            return _Settlement(row)
        received = row.amount_msat if amount_msat is None else amount_msat
        if not row.amount_msat <= received <= OVERPAY_LIMIT * row.amount_msat:
            flag_payment(conn, payment_hash)
            return _Settlement(row, received, flagged=True)
        return self._record(conn, row, received, paid_at, event_at)

    def _record(
        self, conn: Connection, row: PaymentRow, received: int, paid_at: datetime, at: datetime
    ) -> _Settlement:
        """The settlement's writes: the payment row, the session event, the zap receipt."""
        payment_hash = row.payment_hash
        settle_payment(conn, payment_hash, received, paid_at)
        if row.kind == RECEIVABLE_KIND:  # a partner paid a session's bill: no session event
            paid = record_receivable_payment(conn, row.session_id, payment_hash, received, at)
            if paid is not None:
                invoice_paid(conn, payment_hash, at)  # the partner is told (strom-invoices)
            return _Settlement(row, received, receivable=paid)
        if row.kind == STREAM_KIND:  # a partner paid an interval of a streaming session
            interval = record_stream_payment(conn, payment_hash, received, at)
            return _Settlement(row, received, interval=interval)
        if row.kind == "initial":
            event: PaymentSettled | TopUpSettled = PaymentSettled(payment_hash, received, at)
        else:
            event = TopUpSettled(payment_hash, received)
        transition = apply_event(conn, row.session_id, event, at)
        transitions = [transition]
        if row.zap_request is not None:
            # The agent signs and publishes the kind-9735 receipt after commit.
            queue_effect(
                conn,
                key=f"zap-receipt:{payment_hash}",
                kind="zap_receipt",
                payload={
                    "charger_id": transition.session.charger_id,
                    "zap_request": row.zap_request,
                    "bolt11": row.bolt11,
                    "paid_at": paid_at.isoformat(),
                },
                session_id=row.session_id,
                now=at,
                lease=agent_lease(transition.session.charger_id),  # signed by its agent
            )
        refused = None
        if row.kind == "initial" and transition.session.state in (State.PAID, State.RESERVED):
            session = transition.session
            try:
                check_connector(conn, session.charger_id, session.connector_id, session.id)
            except ConnectorUnavailable as exc:
                # Short: the session's stop_reason column holds 120 characters (PostgreSQL
                # enforces it), and the driver's reason is meant for a wallet, not the bill.
                refused = exc.reason
                taken = "the connector was not free when the payment came"
                reject: RemoteStartRejected | ReservationRejected = (
                    ReservationRejected(taken)
                    if session.state is State.RESERVED
                    else RemoteStartRejected(taken)
                )
                transitions.append(apply_event(conn, session.id, reject, at))
        return _Settlement(row, received, transitions=tuple(transitions), refused=refused)

    async def pending_hashes(self) -> list[str]:
        """Payment hashes of invoices Strom still waits for (the settlement stream polls these)."""
        return await self.payments.pending_hashes()

    async def _lookup(self, payment_hash: str) -> InvoiceStatus | None:
        try:
            return await self.backend.lookup_invoice(payment_hash)
        except InvoiceNotFound:
            log.warning("invoice %s is unknown to the lightning backend", payment_hash)
            return None

    async def reconcile(self) -> int:
        """Ask the backend about every pending payment; settle or expire it. Returns settled."""
        settled = 0
        for payment_hash in await self.pending_hashes():
            status = await self._lookup(payment_hash)
            if status is None:
                continue
            if status.state is InvoiceState.SETTLED:
                settled += await self.settle(payment_hash, status.received_msat)
            elif status.state in (InvoiceState.EXPIRED, InvoiceState.CANCELED):
                await self.expire(payment_hash)
        return settled

    async def expire_due(self) -> int:
        """Expire pending payments past their expiry (after one last look at the backend)."""
        now = self.clock.now()
        due = await self.payments.pending_expired_before(now - timedelta(seconds=5))
        expired = 0
        for payment_hash in due:
            status = await self._lookup(payment_hash)
            if status is None:
                expired += await self.expire(payment_hash)
            elif status.state is InvoiceState.SETTLED:
                await self.settle(payment_hash, status.received_msat)
            elif status.state is not InvoiceState.PENDING or status.expires_at < now:
                expired += await self.expire(payment_hash)
        return expired

    async def expire(self, payment_hash: str) -> bool:
        """Mark an unpaid invoice expired; its session, if never paid, expires too."""
        at = self.store.clock.now()

        def expire(conn: Connection) -> list[Transition] | None:
            row = expire_payment(conn, payment_hash)
            if row is None:
                return None
            if row.kind == "initial":
                session = load_session(conn, row.session_id)
                if session.state is State.AWAITING_PAYMENT:
                    return [apply_event(conn, row.session_id, InvoiceExpired(), at)]
            return []

        transitions = await self.db.write(expire)
        if transitions is None:
            return False
        self.store.committed(transitions)
        return True


def _log_receivable(row: PaymentRow, received: int, paid: Receivable | None) -> bool:
    if paid is None:
        log.error(
            "session %s: payment %s of %s msat settled for a partner's bill that was paid "
            "already: not credited again; return it to the partner by hand",
            row.session_id,
            row.payment_hash,
            received,
        )
        return False
    log.info(
        "session %s: partner %s paid receivable %s (%s msat, invoice %s)",
        row.session_id,
        paid.partner_id,
        paid.id,
        received,
        row.payment_hash,
    )
    return True


def _log_interval(row: PaymentRow, received: int, paid: PartnerInvoice | None) -> bool:
    if paid is None:
        log.error(
            "session %s: payment %s of %s msat settled for a partner's interval invoice that "
            "was paid already: not credited again; return it to the partner by hand",
            row.session_id,
            row.payment_hash,
            received,
        )
        return False
    log.info(
        "session %s: partner %s paid interval invoice %s (%s msat)",
        row.session_id,
        paid.partner_id,
        paid.id,
        received,
    )
    return True


def _record_zap_request(conn: Connection, event_id: str, pubkey: str | None, now: datetime) -> None:
    try:
        record_zap_request(conn, event_id, pubkey, now)
    except ZapRequestAlreadyUsed:
        raise ZapRequestUsed("this zap request was already used; make a new one") from None
