"""The charging session: one state table, one pure transition function, and its ledger.

Theory of operation
-------------------
A session is created when a driver asks for an invoice (``AWAITING_PAYMENT``) and carries a
frozen copy of the tariff. Everything that happens to it afterwards is an *event*;
:func:`apply` maps ``(session, event)`` to ``(session', effects)`` and does no I/O. The shell
stores ``session'`` and the effects in one database transaction (the outbox) and runs the
effects after commit.

States (``STOPPED`` is DESIGN.md's "stopped -> settled": the final bill is computed in the very
transition that records StopTransaction, so no stopped session ever lacks a bill)::

    AWAITING_PAYMENT --PaymentSettled--> PAID --RemoteStartAccepted--> STARTING
    AWAITING_PAYMENT --PaymentSettled (reserve_minutes > 0, amount >= fee)--> RESERVED
    AWAITING_PAYMENT --PaymentSettled (reserve_minutes > 0, amount < fee)--> START_FAILED
    RESERVED --ReservationAccepted--> RESERVED (the charger holds the connector)
    RESERVED --ReservationRejected--> START_FAILED (all refundable: Strom could not reserve)
    RESERVED --StartRequested--> PAID (RemoteStart with the reserved idTag)
    PAID (post-paid) --StartAuthorized--> PAID (RemoteStart: a roaming partner's remote start)
    PAID (post-paid reservation) --ReservationAuthorized--> RESERVED (a partner's RESERVE_NOW)
    RESERVED --TransactionStarted--> CHARGING (the payer started at the charger)
    RESERVED --ReservationExpired | StopRequested--> START_FAILED | CLOSED (fee share kept)
    RESERVED --TopUpSettled | PowerLimited--> RESERVED (more budget, a lower power)
    AWAITING_PAYMENT --InvoiceExpired--> EXPIRED --PaymentSettled (late)--> START_FAILED
    PAID|STARTING --TransactionStarted--> CHARGING --MeterReading--> CHARGING
    PAID|STARTING --RemoteStartRejected|StartTimedOut|StopRequested--> START_FAILED
    CHARGING --StopRequested | MeterReading over budget--> STOPPING
    PAID|STARTING|CHARGING --PowerLimited--> the same state at the lower power
    any state past RESERVED --ReservationAccepted|Rejected|Expired--> the same (stale answer/timer)
    CHARGING|STOPPING --TransactionStopped--> STOPPED (refundable > 0) | CLOSED (nothing left)
    CHARGING|STOPPING --TransactionLost--> STOPPED | CLOSED (billed from the last reading)
    STOPPED|REFUND_PENDING|REFUNDED|CLOSED --TransactionStopped (late, after TransactionLost)-->
        the same state: the bill stays final; unbilled energy is the operator's overrun
    STOPPED|START_FAILED --RefundClaimed--> REFUND_PENDING
    REFUND_PENDING --RefundPaid--> REFUNDED (nothing left) | back to STOPPED/START_FAILED
    REFUND_PENDING --RefundFailed--> back to STOPPED/START_FAILED (amount restored)

Money (integer msat) obeys, after every transition::

    paid == consumed + refunded + refundable + refund_in_flight

``refundable`` is the unspent budget while charging and the claimable balance once stopped.
Energy delivered beyond the budget is not billed to the driver; it is recorded as
``overrun_msat`` (the operator's loss). The final bill is rounded down by less than one sat
so that the refund is a whole number of sats (wallets invoice in whole sats). Refund routing
fees are paid by the operator and recorded as ``refund_fee_msat``; they are not taken from
the driver.

The bill is the transaction's energy: the highest energy register the charger reported for
it (its MeterValues and its meterStop) minus meterStart. A register only grows, so for a sound
charger that is meterStop - meterStart; a meterStop below a register the charger itself
reported during the transaction is a charger fault (an older register restored after a crash),
and the energy up to the reported register was delivered and metered. The driver never pays
for more than the charger reported. A charger that lost the transaction (it rebooted without
it: :class:`TransactionLost`) is billed up to its last reading, and that bill is final: a
StopTransaction that still comes later is recorded, never billed to the driver (the refund may
be paid already); energy it adds is the operator's ``overrun_msat``.

Dynamic prices: a session may carry the :class:`~strom_core.prices.PriceSchedule` frozen when
its invoice was made (``schedule``; ``None`` for a static tariff, billed exactly at
``tariff.energy_msat_per_kwh``). Its energy is then billed per interval of the schedule: each
growth of the register is attributed to the intervals between the previous reading and this
one (:func:`strom_core.billing.attribute`, linear in time, whole Wh adding up to exactly the
register delta) and kept per interval in ``interval_wh``; the energy component is the sum over
intervals of floor(energy x price). Past the schedule's end the last interval's price holds.
The bill never goes below zero (negative spot prices lower it, the fees stay due at most).
The budget stop plans with the highest price of the next meter interval, so a budget is
still overrun by at most one meter interval.

Fiat components (:mod:`strom_core.fiat`): a session whose tariff gives components in a fiat
currency carries ``fiat`` (the terms and the payment's rate) and a tariff already in msat: at
the payment's rate (``at_payment``), or at the planning rate below it (``at_billing``). For
``at_billing`` the stop (:class:`TransactionStopped`, :class:`TransactionLost`) brings the fresh
rates; the final bill converts at the one of the tariff's currency, else at the payment's rate
(recorded as a fallback), and stays capped at the budget like every bill.

Idle fee: :class:`VehicleIdle` (the charger says the car finished but is still plugged) starts
the idle clock, :class:`VehicleCharging` stops it; the time idled (``idle_s`` plus the running
period since ``idle_since``, counted up to the latest reading or the stop) is billed per whole
minute beyond the tariff's grace (:meth:`~strom_core.tariff.Tariff.idle_cost`). The budget stop
counts it too.

Reservations: a reservation is a prepaid session whose start waits (``reserve_minutes > 0``),
not a second lifecycle. Its payment is at least the reservation fee frozen at the offer
(``reservation_fee_msat``) and is the session's budget, so a payer who starts in time charges
for all of it and the fee simply counts toward the session. The first payment makes it
``RESERVED`` until ``reserved_until`` (settlement time + minutes) and asks the shell to send
ReserveNow (the OCPP ``reservation_id`` comes from a persisted allocator) and to arm the
expiry timer. If the time runs out or the payer cancels, the fee share the tariff keeps
(:meth:`~strom_core.tariff.Tariff.reservation_kept`, never more than was paid) is consumed,
the rest is refundable (whole sats, as for any bill) and CancelReservation frees the
connector. A payer who asked to start but never began charging (no vehicle within the start
timeout, or a stop before the transaction) is treated the same way: the fee share is kept and
the charger's reservation cancelled; a start the charger rejects, like a reservation it
refuses, keeps nothing. A payment below the fee (a zap that sent too little) reserves
nothing and is refundable in full.

Idempotency: every event that can be delivered twice has a ``key``; a session remembers the keys
it has applied and a repeated key is a no-op with no effects. Meter readings need no key: the
bill uses the highest register seen, so repeats and out-of-order samples change nothing.

Post-paid sessions (the operator's cards and roaming partners' tokens, :mod:`strom_core.cards`)
are created ``PAID`` by the start of their transaction, with a ``payer`` (``"free"``,
``"account:<name>"`` or ``"partner:<id>"``); a partner's remote start creates one ``PAID``
before any transaction and asks for the start with :class:`StartAuthorized` (RemoteStart and
the start timer, as a first payment does; a failed start ends ``START_FAILED`` owing
nothing). They hold no prepaid money (``paid`` stays 0, so does the rest of the equation);
their cost at the tariff is ``postpaid_msat``, which grows with the meter like any bill, is
never capped by a budget (no budget stop) and is final at the stop, exactly once, like a
prepaid one.

Post-paid reservations (a roaming partner's RESERVE_NOW) follow the same RESERVED lifecycle
without a payment: the session is created ``PAID`` with its ``reserve_minutes`` and fee
frozen, and :class:`ReservationAuthorized` makes it ``RESERVED`` until the partner's expiry
time, with ReserveNow for the partner's token uid (the idTag its driver presents; the
session's own idTag stays unique). What the partner owes mirrors a prepaid payer: charging in
time owes the bill only (the fee counts toward the session, as a prepaid fee counts toward
its budget); expiry, a cancel or a start that never charged owes the share of the fee the
tariff keeps, as ``postpaid_msat`` (``CLOSED``; a share of 0 owes nothing); a reservation the
charger refuses owes nothing.

An event that is not allowed in the current state raises :class:`IllegalTransition` and the
caller keeps the old session: nothing changes.

The events live in :mod:`strom_core.session_events` and the effects in
:mod:`strom_core.session_effects`; this module holds the session record, its ledger check and
the transition table.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from strom_core.billing import attribute, energy_bill_msat, highest_price, interval_index
from strom_core.errors import IllegalTransition, InvariantViolation, LedgerError
from strom_core.fiat import FiatBilling, FiatRate
from strom_core.prices import PriceSchedule
from strom_core.session_effects import (
    ArmReservationExpiry,
    ArmStartTimeout,
    CancelReservation,
    Effect,
    Notify,
    RemoteStart,
    RemoteStop,
    ReserveNow,
)
from strom_core.session_events import (
    LOST_KEY,
    RESERVATION_END_KEY,
    STOP_KEY,
    Event,
    InvoiceExpired,
    MeterReading,
    PaymentSettled,
    PowerLimited,
    RefundClaimed,
    RefundFailed,
    RefundPaid,
    RemoteStartAccepted,
    RemoteStartRejected,
    ReservationAccepted,
    ReservationAuthorized,
    ReservationExpired,
    ReservationRejected,
    StartAuthorized,
    StartRequested,
    StartTimedOut,
    StopReason,
    StopRequested,
    TopUpSettled,
    TransactionLost,
    TransactionStarted,
    TransactionStopped,
    VehicleCharging,
    VehicleIdle,
)
from strom_core.tariff import Tariff
from strom_core.units import time_cost_msat

__all__ = [
    "HOLDING_STATES",
    "POST_STOP_STATES",
    "Session",
    "State",
    "Transition",
    "apply",
    "check_ledger",
    "new_session",
]


class State(enum.StrEnum):
    """Where a session is in its life."""

    AWAITING_PAYMENT = "awaiting_payment"
    EXPIRED = "expired"
    RESERVED = "reserved"
    PAID = "paid"
    STARTING = "starting"
    CHARGING = "charging"
    STOPPING = "stopping"
    STOPPED = "stopped"
    START_FAILED = "start_failed"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"
    CLOSED = "closed"


POST_STOP_STATES = frozenset(
    {State.STOPPED, State.START_FAILED, State.REFUND_PENDING, State.REFUNDED, State.CLOSED}
)
_RUNNING = frozenset({State.PAID, State.STARTING, State.CHARGING, State.STOPPING})
HOLDING_STATES = frozenset({State.RESERVED, *_RUNNING})
"""States in which a session holds its connector: nobody else may pay for it."""


# --- the session -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Session:
    """A charging session and its money, all in integer msat and Wh."""

    id: str
    charger_id: str
    connector_id: int
    id_tag: str
    tariff: Tariff
    power_w: int
    meter_interval_s: int
    start_timeout_s: int
    state: State = State.AWAITING_PAYMENT
    paid_msat: int = 0
    consumed_msat: int = 0
    refunded_msat: int = 0
    refundable_msat: int = 0
    refund_in_flight_msat: int = 0
    refund_fee_msat: int = 0
    overrun_msat: int = 0
    transaction_id: int | None = None
    meter_start_wh: int = 0
    register_wh: int = 0
    energy_wh: int = 0
    started_at: datetime | None = None
    last_reading_at: datetime | None = None
    stopped_at: datetime | None = None
    stop_reason: str = ""
    refund_id: str | None = None
    payer: str = ""  # "" prepaid; post-paid: "free", "account:<name>", "partner:<id>" (cards)
    postpaid_msat: int = 0  # a post-paid session's cost at its tariff
    reserve_minutes: int = 0  # > 0: a reservation (its start waits for the payer)
    reservation_fee_msat: int = 0  # the reservation fee, frozen at the offer
    reserved_until: datetime | None = None  # set when the reservation's payment settled
    reservation_id: int | None = None  # the OCPP reservationId (never reused)
    schedule: PriceSchedule | None = None  # frozen at the invoice; None: static energy price
    interval_wh: tuple[int, ...] = ()  # energy billed in each interval of the schedule
    # Fiat components: their terms and rates (strom_core.fiat); None: a tariff in sats only.
    fiat: FiatBilling | None = None
    idle_since: datetime | None = None  # the car finished but is still plugged, since
    idle_s: int = 0  # seconds idled in ended idle periods
    applied: frozenset[str] = field(default_factory=frozenset)

    @property
    def elapsed_s(self) -> int:
        """Seconds charged so far (from transaction start to the latest reading or the stop)."""
        if self.started_at is None:
            return 0
        end = self.stopped_at or self.last_reading_at or self.started_at
        return max(0, int((end - self.started_at).total_seconds()))

    @property
    def idle_seconds(self) -> int:
        """Seconds idled so far (ended periods, and the running one up to the latest time)."""
        running = 0
        end = self.stopped_at or self.last_reading_at
        if self.idle_since is not None and end is not None:
            running = max(0, int((end - self.idle_since).total_seconds()))
        return self.idle_s + running

    @property
    def idle_msat(self) -> int:
        """The idle fee so far."""
        return self.tariff.idle_cost(self.idle_seconds)

    def cost_msat(self) -> int:
        """What the session costs so far at its tariff (and schedule), never below zero."""
        energy = max(0, self.register_wh - self.meter_start_wh)
        base: int
        if self.schedule is None:
            base = self.tariff.cost(energy, self.elapsed_s)
        else:
            base = (
                self.tariff.session_fee_msat
                + energy_bill_msat(self.schedule, self.interval_wh)
                + time_cost_msat(self.elapsed_s, self.tariff.time_msat_per_minute)
            )
        return max(0, base + self.idle_msat)

    @property
    def postpaid(self) -> bool:
        """Whether the energy is billed after the fact (an operator's card), not prepaid."""
        return bool(self.payer)

    @property
    def reserved(self) -> bool:
        """Whether the session was paid as a reservation (it may have started since)."""
        return self.reserved_until is not None

    @property
    def resting_state(self) -> State:
        """Where a stopped session rests while a balance may be claimed."""
        return State.START_FAILED if self.transaction_id is None else State.STOPPED


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of applying one event."""

    session: Session
    effects: tuple[Effect, ...] = ()
    changed: bool = True


def new_session(
    *,
    session_id: str,
    charger_id: str,
    connector_id: int,
    id_tag: str,
    tariff: Tariff,
    power_w: int,
    meter_interval_s: int,
    start_timeout_s: int,
    payer: str = "",
    reserve_minutes: int = 0,
    reservation_id: int | None = None,
    schedule: PriceSchedule | None = None,
    fiat: FiatBilling | None = None,
) -> Session:
    """A session with the tariff (and the price schedule, if dynamic) frozen into it.

    A tariff with fiat components comes converted at the payment's rate (at the planning rate
    for ``at_billing``), with ``fiat`` recording the terms and the rate.

    A prepaid session (no ``payer``) awaits its first payment; a post-paid one (a card's
    ``payer``) is ``PAID`` at once: its card authorised it. ``reserve_minutes > 0`` makes it a
    reservation (with its ``reservation_id``); its fee is frozen here. A post-paid one is
    reserved by :class:`ReservationAuthorized`, a prepaid one by its first payment.
    """
    if not 1 <= len(id_tag) <= 20:
        raise LedgerError(f"idTag must be 1 to 20 characters, got {len(id_tag)}")
    if isinstance(reserve_minutes, bool) or not isinstance(reserve_minutes, int):
        raise LedgerError(f"reserve_minutes must be an int, got {reserve_minutes!r}")
    if reserve_minutes:
        if not 1 <= reserve_minutes <= tariff.reservation_max_minutes:
            raise LedgerError(
                f"a reservation is 1 to {tariff.reservation_max_minutes} minutes here, "
                f"got {reserve_minutes}"
            )
        if reservation_id is None or reservation_id <= 0:
            raise LedgerError("a reservation needs a positive reservation id")
    return Session(
        schedule=schedule,
        fiat=fiat,
        interval_wh=(0,) * len(schedule.intervals) if schedule is not None else (),
        reserve_minutes=reserve_minutes,
        reservation_fee_msat=tariff.reservation_fee(reserve_minutes) if reserve_minutes else 0,
        reservation_id=reservation_id if reserve_minutes else None,
        state=State.PAID if payer else State.AWAITING_PAYMENT,
        payer=payer,
        id=session_id,
        charger_id=charger_id,
        connector_id=connector_id,
        id_tag=id_tag,
        tariff=tariff,
        power_w=power_w,
        meter_interval_s=meter_interval_s,
        start_timeout_s=start_timeout_s,
    )


def check_ledger(session: Session) -> None:
    """Raise :class:`InvariantViolation` unless the session's money adds up.

    ``paid == consumed + refunded + refundable + refund_in_flight``, every amount is a
    non-negative int, a session billed by a schedule has all its energy in its intervals, and
    a session whose bill is final has nothing left unaccounted.
    """
    amounts = {
        "paid": session.paid_msat,
        "consumed": session.consumed_msat,
        "refunded": session.refunded_msat,
        "refundable": session.refundable_msat,
        "refund_in_flight": session.refund_in_flight_msat,
        "refund_fee": session.refund_fee_msat,
        "overrun": session.overrun_msat,
        "postpaid": session.postpaid_msat,
    }
    for name, value in amounts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvariantViolation(
                f"session {session.id}: {name} is {value!r}, not a msat amount"
            )
    total = (
        session.consumed_msat
        + session.refunded_msat
        + session.refundable_msat
        + session.refund_in_flight_msat
    )
    if session.paid_msat != total:
        raise InvariantViolation(
            f"session {session.id}: paid {session.paid_msat} != consumed {session.consumed_msat}"
            f" + refunded {session.refunded_msat} + refundable {session.refundable_msat}"
            f" + in flight {session.refund_in_flight_msat}"
        )
    if (session.refund_in_flight_msat > 0) != (session.state is State.REFUND_PENDING):
        raise InvariantViolation(f"session {session.id}: refund in flight outside refund_pending")
    if session.postpaid and session.paid_msat:
        raise InvariantViolation(f"session {session.id}: a post-paid session was paid")
    if session.schedule is not None and (
        len(session.interval_wh) != len(session.schedule.intervals)
        or sum(session.interval_wh) != session.energy_wh
    ):
        raise InvariantViolation(
            f"session {session.id}: energy by interval {sum(session.interval_wh)} Wh is not "
            f"the energy delivered {session.energy_wh} Wh"
        )
    if session.state in (State.REFUNDED, State.CLOSED) and session.refundable_msat:
        raise InvariantViolation(
            f"session {session.id}: closed with {session.refundable_msat} unpaid"
        )


# --- the transition function -----------------------------------------------------------------


def apply(session: Session, event: Event) -> Transition:
    """Apply one event to a session.

    Returns:
        The new session and the effects the shell must run, or the unchanged session with
        ``changed=False`` when the event was already applied.

    Raises:
        IllegalTransition: the event is not allowed in the session's state; nothing changed.
        LedgerError: the event carries an amount that would break the ledger.
    """
    key = event.key
    if key is not None and key in session.applied:
        return Transition(session, (), changed=False)
    handler = _HANDLERS.get((session.state, type(event)))
    if handler is None:
        raise IllegalTransition(session.state, type(event).__name__)
    new, effects = handler(session, event)
    if key is not None:
        new = replace(new, applied=new.applied | {key})
    check_ledger(new)
    return Transition(new, tuple(effects))


def _illegal(session: Session, event: Event, detail: str) -> IllegalTransition:
    return IllegalTransition(session.state, type(event).__name__, detail)


def _amount(session: Session, event: PaymentSettled | TopUpSettled) -> int:
    amount = event.amount_msat
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerError(f"session {session.id}: payment amount must be a positive int msat")
    return amount


def _first_payment(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, PaymentSettled)
    amount = _amount(session, event)
    paid = replace(session, paid_msat=amount, refundable_msat=amount)
    if session.state is State.EXPIRED:
        # Paid just as the invoice expired: the connector may be someone else's by now, so
        # Strom does not start; the whole payment becomes refundable.
        return replace(paid, state=State.START_FAILED, stop_reason="paid after expiry"), [
            Notify("start_failed")
        ]
    if session.reserve_minutes:
        return _reserve(paid, event)
    start = RemoteStart(session.charger_id, session.connector_id, session.id_tag)
    return replace(paid, state=State.PAID), [
        Notify("paid"),
        start,
        ArmStartTimeout(session.start_timeout_s),
    ]


def _reserve(paid: Session, event: PaymentSettled) -> tuple[Session, list[Effect]]:
    """A reservation's payment: hold the connector until settlement time + its minutes."""
    if event.at is None:
        raise _illegal(paid, event, "a reservation's payment needs its settlement time")
    if paid.paid_msat < paid.reservation_fee_msat:
        failed = replace(
            paid, state=State.START_FAILED, stop_reason="paid less than the reservation fee"
        )
        return failed, [Notify("start_failed")]
    assert paid.reservation_id is not None
    until = event.at + timedelta(minutes=paid.reserve_minutes)
    reserved = replace(paid, state=State.RESERVED, reserved_until=until)
    return reserved, [
        Notify("reserved"),
        ReserveNow(paid.charger_id, paid.connector_id, paid.reservation_id, until, paid.id_tag),
        ArmReservationExpiry(until),
    ]


def _reservation_rejected(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """The charger would not hold the connector: nothing is kept, everything refundable."""
    assert isinstance(event, ReservationRejected)
    reason = "the charger could not reserve the connector"
    if event.reason:
        reason = f"{reason}: {event.reason}"
    return replace(session, state=State.START_FAILED, stop_reason=reason[:120]), [
        Notify("start_failed")
    ]


def _reservation_accepted(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    return session, []


def _reservation_authorized(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """A post-paid reservation: hold the connector until ``until`` for the given idTag."""
    assert isinstance(event, ReservationAuthorized)
    if not session.postpaid or not session.reserve_minutes or session.reserved:
        raise _illegal(session, event, "only a post-paid reservation is reserved without payment")
    if session.reservation_id is None or not 1 <= len(event.id_tag) <= 20:
        raise _illegal(session, event, "a reservation needs its id and an idTag of 1 to 20")
    until = event.until
    reserved = replace(session, state=State.RESERVED, reserved_until=until)
    reserve = ReserveNow(
        session.charger_id, session.connector_id, session.reservation_id, until, event.id_tag
    )
    return reserved, [reserve, ArmReservationExpiry(until)]


def _start_requested(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """The payer arrived: start with the reserved idTag, which the charger lets through."""
    assert isinstance(event, StartRequested)
    start = RemoteStart(session.charger_id, session.connector_id, event.id_tag or session.id_tag)
    return replace(session, state=State.PAID), [start, ArmStartTimeout(session.start_timeout_s)]


def _start_authorized(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """A post-paid session's payer asks for the start: RemoteStart, as after a payment."""
    if not session.postpaid:
        raise _illegal(session, event, "only a post-paid session is started without a payment")
    if session.reserve_minutes:
        raise _illegal(session, event, "a reservation starts with StartRequested")
    start = RemoteStart(session.charger_id, session.connector_id, session.id_tag)
    return session, [start, ArmStartTimeout(session.start_timeout_s)]


def _keep_reservation_fee(session: Session, stop_reason: str) -> tuple[Session, list[Effect]]:
    """End a reservation nobody charged on: keep the tariff's share of the fee, free the rest.

    Nothing has been consumed or refunded before (a reservation never charged), so the whole
    payment is split into the kept share (at most what was paid) and the refundable rest, the
    rest rounded up to whole sats like any bill. A post-paid reservation owes the kept share
    (``postpaid_msat``) and has nothing to refund: it closes.
    """
    cancel: list[Effect] = []
    if session.reservation_id is not None:
        cancel.append(CancelReservation(session.charger_id, session.reservation_id))
    if session.postpaid:
        owed = replace(
            session,
            postpaid_msat=session.tariff.reservation_kept(session.reservation_fee_msat),
            stop_reason=stop_reason,
            state=State.CLOSED,
            applied=session.applied | {RESERVATION_END_KEY},
        )
        return owed, [*cancel, Notify("reservation_ended")]
    kept = min(session.paid_msat, session.tariff.reservation_kept(session.reservation_fee_msat))
    spendable = session.paid_msat - session.refunded_msat - session.refund_in_flight_msat
    kept = min(kept, spendable)
    billed = _whole_sat_refund(
        replace(
            session,
            consumed_msat=kept,
            refundable_msat=spendable - kept,
            stop_reason=stop_reason,
            applied=session.applied | {RESERVATION_END_KEY},
        )
    )
    state = State.START_FAILED if billed.refundable_msat else State.CLOSED
    return replace(billed, state=state), [*cancel, Notify("reservation_ended")]


def _reservation_ended(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    reason = "reservation expired" if isinstance(event, ReservationExpired) else ""
    return _keep_reservation_fee(session, reason or "reservation cancelled")


def _top_up(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, TopUpSettled)
    amount = _amount(session, event)
    new = replace(
        session,
        paid_msat=session.paid_msat + amount,
        refundable_msat=session.refundable_msat + amount,
    )
    if session.state in (State.REFUNDED, State.CLOSED):
        # A top-up paid after the session ended is never lost: it becomes claimable again.
        new = replace(new, state=session.resting_state)
    return new, [Notify("topped_up")]


def _expire(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    return replace(session, state=State.EXPIRED), []


def _start_accepted(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    return replace(session, state=State.STARTING), []


def _start_failed(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    reason = {
        RemoteStartRejected: "charger rejected the start",
        StartTimedOut: "no vehicle started charging in time",
        StopRequested: "stopped before charging began",
    }[type(event)]
    if isinstance(event, RemoteStartRejected) and event.reason:
        reason = f"{reason}: {event.reason}"
    if session.reserved and session.reservation_id is not None:
        if isinstance(event, RemoteStartRejected):  # the charger's fault: nothing kept
            cancel = CancelReservation(session.charger_id, session.reservation_id)
            failed = replace(session, state=State.START_FAILED, stop_reason=reason[:120])
            return failed, [cancel, Notify("start_failed")]
        # The payer asked to start but never charged: as if the reservation ran out.
        return _keep_reservation_fee(session, reason)
    return replace(session, state=State.START_FAILED, stop_reason=reason[:120]), [
        Notify("start_failed")
    ]


def _ignore(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """A stale timer or a late sample after the bill is final: record the key, change nothing."""
    return session, []


def _tx_started(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, TransactionStarted)
    if session.transaction_id is not None:
        raise _illegal(session, event, f"already has transaction {session.transaction_id}")
    started = replace(
        session,
        state=State.CHARGING,
        transaction_id=event.transaction_id,
        meter_start_wh=event.meter_start_wh,
        register_wh=event.meter_start_wh,
        started_at=event.at,
        last_reading_at=event.at,
    )
    billed = _rebill(started)
    effects: list[Effect] = [Notify("started")]
    return _maybe_stop_for_budget(billed, effects)


def _rebill(session: Session) -> Session:
    """Recompute consumed/refundable from the highest register and elapsed time seen."""
    energy = max(0, session.register_wh - session.meter_start_wh)
    cost = session.cost_msat()
    if session.postpaid:  # nothing prepaid to spend: the whole cost is the payer's
        return replace(session, energy_wh=energy, postpaid_msat=cost)
    spendable = session.paid_msat - session.refunded_msat - session.refund_in_flight_msat
    consumed = min(cost, spendable)
    return replace(
        session,
        energy_wh=energy,
        consumed_msat=consumed,
        refundable_msat=spendable - consumed,
        overrun_msat=cost - consumed,
    )


def _maybe_stop_for_budget(session: Session, effects: list[Effect]) -> tuple[Session, list[Effect]]:
    """Stop one interval early: if the next interval at the session's power could overrun, stop.

    The session's power is the connector's, or less once the charger accepted a lower limit
    (:class:`PowerLimited`): the overrun stays within one meter interval at that power.
    """
    if session.state is not State.CHARGING or session.postpaid:
        return session, effects
    price = None
    if session.schedule is not None:
        now = session.last_reading_at or session.started_at
        assert now is not None
        until = now + timedelta(seconds=session.meter_interval_s)
        price = highest_price(session.schedule, now, until)
    next_interval = session.tariff.interval_cost(session.power_w, session.meter_interval_s, price)
    low_key = f"low-budget:{session.paid_msat}"
    if session.refundable_msat <= next_interval:
        assert session.transaction_id is not None
        stopping = replace(
            session,
            state=State.STOPPING,
            stop_reason=StopReason.BUDGET,
            applied=session.applied | {STOP_KEY},
        )
        return stopping, [*effects, RemoteStop(session.charger_id, session.transaction_id)]
    if session.refundable_msat <= 3 * next_interval and low_key not in session.applied:
        return replace(session, applied=session.applied | {low_key}), [
            *effects,
            Notify("low_budget"),
        ]
    return session, effects


def _metered(session: Session, register_wh: int, at: datetime) -> Session:
    """The session with a register read at ``at``: the growth attributed to its intervals."""
    register = max(session.register_wh, register_wh)
    last = session.last_reading_at
    if session.schedule is not None and register > session.register_wh:
        start = last if last is not None else at
        session = replace(
            session,
            interval_wh=attribute(
                session.schedule,
                session.interval_wh,
                start,
                max(start, at),
                register - session.register_wh,
            ),
        )
    if last is None or at > last:
        last = at
    return replace(session, register_wh=register, last_reading_at=last)


def _meter(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, MeterReading)
    billed = _rebill(_metered(session, event.register_wh, event.at))
    return _maybe_stop_for_budget(billed, [])


def _vehicle_idle(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """The car finished but is still plugged: the idle clock runs (a repeat changes nothing)."""
    assert isinstance(event, VehicleIdle)
    if session.idle_since is not None or not session.tariff.idle_msat_per_minute:
        return session, []
    start = event.at
    if session.started_at is not None and start < session.started_at:
        start = session.started_at
    billed = _rebill(replace(session, idle_since=start))
    return _maybe_stop_for_budget(billed, [])


def _vehicle_charging(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """The car draws again: the running idle period ends at ``event.at``."""
    assert isinstance(event, VehicleCharging)
    if session.idle_since is None:
        return session, []
    idled = max(0, int((event.at - session.idle_since).total_seconds()))
    billed = _rebill(replace(session, idle_since=None, idle_s=session.idle_s + idled))
    return _maybe_stop_for_budget(billed, [])


def _power_limited(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """The charger will draw at most ``limit_w``: the budget stop plans at that power."""
    assert isinstance(event, PowerLimited)
    limit = event.limit_w
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        raise LedgerError(f"session {session.id}: a power limit must be a positive int W")
    if limit >= session.power_w:
        return session, []
    return _maybe_stop_for_budget(replace(session, power_w=limit), [])


def _stop_requested(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, StopRequested)
    assert session.transaction_id is not None
    return replace(session, state=State.STOPPING, stop_reason=event.reason), [
        RemoteStop(session.charger_id, session.transaction_id)
    ]


def _tx_stopped(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, TransactionStopped)
    metered = _billed_at_rate(_metered(session, event.meter_stop_wh, event.at), event.rates)
    final = replace(
        metered,
        stopped_at=metered.last_reading_at,
        stop_reason=session.stop_reason or event.reason or StopReason.CHARGER,
    )
    billed = _whole_sat_refund(_rebill(final))
    state = State.STOPPED if billed.refundable_msat else State.CLOSED
    return replace(billed, state=state), [Notify("stopped")]


def _tx_lost(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, TransactionLost)
    if event.transaction_id != session.transaction_id:
        raise _illegal(session, event, f"the session's transaction is {session.transaction_id}")
    # Billed up to the last reading the charger reported (energy and time), never more.
    final = replace(
        _billed_at_rate(session, event.rates),
        stopped_at=session.last_reading_at,
        stop_reason=StopReason.CHARGER_LOST,
    )
    billed = _whole_sat_refund(_rebill(final))
    state = State.STOPPED if billed.refundable_msat else State.CLOSED
    return replace(billed, state=state), [Notify("stopped")]


def _billed_at_rate(session: Session, rates: tuple[FiatRate, ...]) -> Session:
    """The tariff of the final bill: fiat converted at billing converts now (strom_core.fiat).

    The fresh rate of the tariff's currency, else the payment's rate (recorded as a fallback).
    The bill stays capped at the budget (:func:`_rebill`).
    """
    if session.fiat is None:
        return session
    tariff, fiat = session.fiat.final(session.tariff, rates)
    return replace(session, tariff=tariff, fiat=fiat)


def _late_stop(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    """A StopTransaction after the session ended as lost: the bill stays as it is.

    The refund may already be paid, and a driver is never charged after the bill is final;
    energy the late meterStop adds beyond what was billed is the operator's overrun.
    """
    assert isinstance(event, TransactionStopped)
    if LOST_KEY not in session.applied:
        raise _illegal(session, event, "the session's transaction has ended")
    late_energy = max(0, event.meter_stop_wh - session.meter_start_wh)
    if late_energy <= session.energy_wh:
        return session, []
    elapsed = session.elapsed_s
    tariff = session.tariff
    if session.schedule is not None:  # the price in force when the charger lost it holds
        at = session.stopped_at or session.last_reading_at or event.at
        interval = session.schedule.intervals[interval_index(session.schedule, at)]
        tariff = replace(tariff, energy_msat_per_kwh=max(0, interval.energy_msat_per_kwh))
    unbilled = tariff.cost(late_energy, elapsed) - tariff.cost(session.energy_wh, elapsed)
    return replace(session, overrun_msat=session.overrun_msat + unbilled), []


def _whole_sat_refund(session: Session) -> Session:
    """Round the final bill down so the refund is whole sats (< 1 sat in the driver's favour).

    Many wallets can only make invoices for whole sats; a refundable balance of 1,152.750 sat
    could never be withdrawn exactly. The driver gets the sub-sat remainder instead.
    """
    dust = session.refundable_msat % 1000
    if not dust or session.consumed_msat < 1000 - dust:
        return session
    gift = 1000 - dust
    return replace(
        session,
        consumed_msat=session.consumed_msat - gift,
        refundable_msat=session.refundable_msat + gift,
    )


def _refund_claimed(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, RefundClaimed)
    amount = event.amount_msat
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise LedgerError(f"session {session.id}: refund amount must be a positive int msat")
    if amount > session.refundable_msat:
        raise LedgerError(
            f"session {session.id}: refund of {amount} msat exceeds the refundable "
            f"{session.refundable_msat} msat"
        )
    return replace(
        session,
        state=State.REFUND_PENDING,
        refundable_msat=session.refundable_msat - amount,
        refund_in_flight_msat=amount,
        refund_id=event.refund_id,
    ), []


def _check_refund_id(session: Session, event: RefundPaid | RefundFailed) -> None:
    if event.refund_id != session.refund_id:
        raise _illegal(session, event, f"refund {event.refund_id} is not the one in flight")


def _refund_paid(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, RefundPaid)
    _check_refund_id(session, event)
    fee = event.fee_msat
    if isinstance(fee, bool) or not isinstance(fee, int) or fee < 0:
        raise LedgerError(f"session {session.id}: refund fee must be a non-negative int msat")
    new = replace(
        session,
        refunded_msat=session.refunded_msat + session.refund_in_flight_msat,
        refund_in_flight_msat=0,
        refund_fee_msat=session.refund_fee_msat + fee,
        refund_id=None,
    )
    state = State.REFUNDED if new.refundable_msat == 0 else new.resting_state
    return replace(new, state=state), [Notify("refund_paid")]


def _refund_failed(session: Session, event: Event) -> tuple[Session, list[Effect]]:
    assert isinstance(event, RefundFailed)
    _check_refund_id(session, event)
    new = replace(
        session,
        refundable_msat=session.refundable_msat + session.refund_in_flight_msat,
        refund_in_flight_msat=0,
        refund_id=None,
    )
    return replace(new, state=new.resting_state), [Notify("refund_failed")]


_Handler = Callable[[Session, Event], tuple[Session, list[Effect]]]

_HANDLERS: dict[tuple[State, type[Event]], _Handler] = {}


def _table() -> dict[tuple[State, type[Event]], _Handler]:
    s = State
    table: dict[tuple[State, type[Event]], _Handler] = {
        (s.AWAITING_PAYMENT, PaymentSettled): _first_payment,
        (s.EXPIRED, PaymentSettled): _first_payment,
        (s.AWAITING_PAYMENT, InvoiceExpired): _expire,
        (s.RESERVED, ReservationAccepted): _reservation_accepted,
        (s.RESERVED, ReservationRejected): _reservation_rejected,
        (s.RESERVED, StartRequested): _start_requested,
        (s.RESERVED, TransactionStarted): _tx_started,
        (s.RESERVED, ReservationExpired): _reservation_ended,
        (s.RESERVED, StopRequested): _reservation_ended,
        (s.RESERVED, PowerLimited): _power_limited,
        (s.PAID, StartAuthorized): _start_authorized,
        (s.PAID, ReservationAuthorized): _reservation_authorized,
        (s.PAID, RemoteStartAccepted): _start_accepted,
        (s.PAID, RemoteStartRejected): _start_failed,
        (s.STARTING, RemoteStartRejected): _start_failed,
        (s.PAID, StartTimedOut): _start_failed,
        (s.STARTING, StartTimedOut): _start_failed,
        (s.PAID, StopRequested): _start_failed,
        (s.STARTING, StopRequested): _start_failed,
        # The CALLRESULT of RemoteStart may arrive after the charger's StartTransaction.
        (s.PAID, TransactionStarted): _tx_started,
        (s.STARTING, TransactionStarted): _tx_started,
        (s.CHARGING, RemoteStartAccepted): _ignore,
        (s.CHARGING, MeterReading): _meter,
        (s.STOPPING, MeterReading): _meter,
        (s.CHARGING, StopRequested): _stop_requested,
        (s.PAID, PowerLimited): _power_limited,
        (s.STARTING, PowerLimited): _power_limited,
        (s.CHARGING, PowerLimited): _power_limited,
        (s.CHARGING, VehicleIdle): _vehicle_idle,
        (s.STOPPING, VehicleIdle): _vehicle_idle,
        (s.CHARGING, VehicleCharging): _vehicle_charging,
        (s.STOPPING, VehicleCharging): _vehicle_charging,
        (s.CHARGING, TransactionStopped): _tx_stopped,
        (s.STOPPING, TransactionStopped): _tx_stopped,
        (s.CHARGING, TransactionLost): _tx_lost,
        (s.STOPPING, TransactionLost): _tx_lost,
        (s.STOPPED, RefundClaimed): _refund_claimed,
        (s.START_FAILED, RefundClaimed): _refund_claimed,
        (s.REFUND_PENDING, RefundPaid): _refund_paid,
        (s.REFUND_PENDING, RefundFailed): _refund_failed,
    }
    for state in (s.CHARGING, s.STOPPING, *POST_STOP_STATES):
        table[(state, StartTimedOut)] = _ignore  # a stale timer
    for state in (s.RESERVED, s.PAID, s.STARTING, *POST_STOP_STATES):
        # a status before the transaction, or after the bill is final: nothing to bill
        table[(state, VehicleIdle)] = _ignore
        table[(state, VehicleCharging)] = _ignore
    for state in POST_STOP_STATES:
        table[(state, MeterReading)] = _ignore  # a late sample: the bill is final
        table[(state, TransactionStopped)] = _late_stop  # only after TransactionLost
        table[(state, RemoteStartAccepted)] = _ignore  # accepted after we gave up waiting
    for state in (*_RUNNING, *POST_STOP_STATES):
        # a stale answer to ReserveNow, or the expiry timer of a reservation that started
        for stale in (ReservationAccepted, ReservationRejected, ReservationExpired):
            table[(state, stale)] = _ignore
    for state in (s.RESERVED, *_RUNNING, *POST_STOP_STATES):
        table[(state, TopUpSettled)] = _top_up
    return table


_HANDLERS.update(_table())
