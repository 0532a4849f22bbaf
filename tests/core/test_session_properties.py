"""Properties of the charging-session state machine and its ledger.

Random event sequences (hypothesis) drive sessions through every state, ordinary ones and
reservations. After every step: the ledger invariant holds, an illegal event raised and changed
nothing, and applying the same event again changes nothing and produces no effects. A
reservation that ends unused keeps exactly the tariff's share of its fee, once; one that
starts in time is billed exactly like an ordinary session paid the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom_core.errors import IllegalTransition, LedgerError
from strom_core.session import POST_STOP_STATES, Session, State, apply, check_ledger, new_session
from strom_core.session_events import (
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
    ReservationExpired,
    ReservationRejected,
    StartRequested,
    StartTimedOut,
    StopReason,
    StopRequested,
    TopUpSettled,
    TransactionLost,
    TransactionStarted,
    TransactionStopped,
)
from strom_core.tariff import Tariff

T0 = datetime(2026, 1, 1, tzinfo=UTC)

tariffs = st.builds(
    Tariff,
    energy_msat_per_kwh=st.integers(0, 2_000_000),
    time_msat_per_minute=st.integers(0, 50_000),
    session_fee_msat=st.integers(0, 5_000),
    min_prepay_msat=st.just(10_000),
    max_prepay_msat=st.just(10**12),
    reservation_fee_msat=st.integers(0, 2_000_000),
    reservation_fee_msat_per_minute=st.integers(0, 20_000),
    reservation_max_minutes=st.just(120),
    reservation_kept_percent=st.integers(0, 100),
)
minutes = st.one_of(st.just(0), st.integers(1, 120))  # 0: an ordinary session

amounts = st.integers(1, 5_000_000)
times = st.integers(0, 4 * 3600).map(lambda s: T0 + timedelta(seconds=s))
registers = st.integers(0, 200_000)
refund_ids = st.sampled_from(["r1", "r2", "r3"])
hashes = st.sampled_from(["h1", "h2", "h3", "h4"])

events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        PaymentSettled, payment_hash=hashes, amount_msat=amounts, at=st.one_of(st.none(), times)
    ),
    st.builds(TopUpSettled, payment_hash=hashes, amount_msat=amounts),
    st.just(InvoiceExpired()),
    st.just(RemoteStartAccepted()),
    st.builds(RemoteStartRejected, reason=st.just("Rejected")),
    st.just(StartTimedOut()),
    st.builds(
        TransactionStarted,
        transaction_id=st.integers(1, 3),
        meter_start_wh=registers,
        at=times,
    ),
    st.builds(MeterReading, register_wh=registers, at=times),
    st.builds(StopRequested, reason=st.sampled_from(list(StopReason))),
    st.builds(TransactionStopped, meter_stop_wh=registers, at=times),
    st.builds(TransactionLost, transaction_id=st.integers(1, 3)),
    st.builds(RefundClaimed, refund_id=refund_ids, amount_msat=st.integers(-1, 6_000_000)),
    st.builds(RefundPaid, refund_id=refund_ids, fee_msat=st.integers(0, 1000)),
    st.builds(RefundFailed, refund_id=refund_ids),
    st.builds(PowerLimited, limit_w=st.integers(1, 22_000)),
    st.just(ReservationAccepted()),
    st.builds(ReservationRejected, reason=st.sampled_from(["Occupied", "offline"])),
    st.just(ReservationExpired()),
    st.just(StartRequested()),
)


def make_session(tariff: Tariff, reserve_minutes: int = 0) -> Session:
    return new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=1,
        id_tag="tag-0123456789",
        tariff=tariff,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=120,
        reserve_minutes=reserve_minutes,
        reservation_id=7 if reserve_minutes else None,
    )


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(tariff=tariffs, reserve=minutes, sequence=st.lists(events, max_size=40))
def test_ledger_invariant_holds_after_every_event(
    tariff: Tariff, reserve: int, sequence: list[Event]
) -> None:
    session = make_session(tariff, reserve)
    for event in sequence:
        try:
            result = apply(session, event)
        except (IllegalTransition, LedgerError):
            # An illegal event raises; the caller keeps `session`, which is untouched
            # (frozen), and it still balances.
            check_ledger(session)
            continue
        check_ledger(result.session)
        session = result.session


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(tariff=tariffs, reserve=minutes, prefix=st.lists(events, max_size=30), event=events)
def test_applying_an_event_twice_equals_applying_it_once(
    tariff: Tariff, reserve: int, prefix: list[Event], event: Event
) -> None:
    session = make_session(tariff, reserve)
    for earlier in prefix:
        try:
            session = apply(session, earlier).session
        except (IllegalTransition, LedgerError):
            continue
    try:
        once = apply(session, event)
    except (IllegalTransition, LedgerError):
        return
    twice = apply(once.session, event)
    assert twice.session == once.session
    assert twice.effects == ()


def _drive(tariff: Tariff, sequence: list[Event], reserve: int = 0) -> Session:
    session = make_session(tariff, reserve)
    for event in sequence:
        try:
            session = apply(session, event).session
        except (IllegalTransition, LedgerError):
            continue
    return session


@settings(max_examples=300, deadline=None)
@given(tariff=tariffs, reserve=minutes, sequence=st.lists(events, max_size=40))
def test_consumption_never_exceeds_what_was_paid(
    tariff: Tariff, reserve: int, sequence: list[Event]
) -> None:
    session = _drive(tariff, sequence, reserve)
    assert session.consumed_msat + session.refunded_msat <= session.paid_msat
    if session.state in (State.AWAITING_PAYMENT, State.EXPIRED):
        assert session.paid_msat == 0
    if session.state is State.RESERVED:
        assert session.consumed_msat == 0  # nothing is spent while the start waits
        assert session.paid_msat >= session.reservation_fee_msat


@settings(max_examples=400, deadline=None)
@given(tariff=tariffs, sequence=st.lists(events, max_size=40))
def test_energy_is_never_billed_beyond_the_highest_register_the_charger_reported(
    tariff: Tariff, sequence: list[Event]
) -> None:
    session = make_session(tariff)
    reported = 0
    for event in sequence:
        try:
            session = apply(session, event).session
        except (IllegalTransition, LedgerError):
            continue
        if isinstance(event, MeterReading | TransactionStopped) and session.state in (
            State.CHARGING,
            State.STOPPING,
            State.STOPPED,
            State.CLOSED,
        ):
            value = event.register_wh if isinstance(event, MeterReading) else event.meter_stop_wh
            reported = max(reported, value)
        assert session.energy_wh <= max(
            0, max(reported, session.meter_start_wh) - session.meter_start_wh
        )


small = st.integers(0, 3_000)  # Wh above meterStart: budgets of a few thousand sat last


@settings(max_examples=400, deadline=None)
@given(
    tariff=tariffs,
    paid=amounts,
    start=registers,
    readings=st.lists(small, max_size=5),
    lost=st.booleans(),
    stop=small,
    late=st.lists(small, min_size=1, max_size=3),
    after=st.lists(events, max_size=20),
)
def test_once_the_bill_is_final_nothing_the_charger_reports_changes_it(
    tariff: Tariff,
    paid: int,
    start: int,
    readings: list[int],
    lost: bool,
    stop: int,
    late: list[int],
    after: list[Event],
) -> None:
    """After the stop (or the lost end) the driver's consumption never changes again."""
    session = apply(make_session(tariff), PaymentSettled("h0", paid)).session
    session = apply(session, TransactionStarted(1, start, T0)).session
    for n, wh in enumerate(readings, 1):
        session = apply(session, MeterReading(start + wh, T0 + timedelta(minutes=n))).session
    end_at = T0 + timedelta(minutes=len(readings) + 1)
    end = TransactionLost(1) if lost else TransactionStopped(start + stop, end_at)
    session = apply(session, end).session
    final = session.consumed_msat
    assert session.state in POST_STOP_STATES
    stops: list[Event] = [TransactionStopped(start + wh, end_at) for wh in late]
    for event in [*stops, *after]:
        try:
            session = apply(session, event).session
        except (IllegalTransition, LedgerError):
            continue
        assert session.consumed_msat == final


# --- reservations ----------------------------------------------------------------------------


def _pay_reservation(tariff: Tariff, reserve: int, extra: int) -> Session:
    session = make_session(tariff, reserve)
    paid = session.reservation_fee_msat + extra
    return apply(session, PaymentSettled("h0", paid, T0)).session


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    tariff=tariffs,
    reserve=st.integers(1, 120),
    extra=st.integers(1, 3_000_000),
    after=st.lists(events, max_size=30),
)
def test_a_reservation_that_ends_unused_keeps_exactly_the_fee_share_once(
    tariff: Tariff, reserve: int, extra: int, after: list[Event]
) -> None:
    """Whatever comes before and after the end, the kept share is the tariff's, taken once."""
    session = _pay_reservation(tariff, reserve, extra)
    assert session.state is State.RESERVED
    kept = min(session.paid_msat, tariff.reservation_kept(session.reservation_fee_msat))
    ended_at: int | None = None
    for event in after:
        try:
            result = apply(session, event)
        except (IllegalTransition, LedgerError):
            continue
        before, session = session, result.session
        if before.state is State.RESERVED and session.state in (State.START_FAILED, State.CLOSED):
            if session.transaction_id is None and session.stop_reason.startswith("reservation"):
                # whole-sat rounding gives the payer less than one sat
                assert kept - 999 <= session.consumed_msat <= kept
                assert session.refundable_msat == session.paid_msat - session.consumed_msat
                ended_at = session.consumed_msat
            else:  # the charger refused: nothing kept
                assert session.consumed_msat == 0
        if ended_at is not None:
            assert session.consumed_msat == ended_at  # never taken twice, never changed
        check_ledger(session)


@settings(max_examples=400, deadline=None)
@given(
    tariff=tariffs,
    reserve=st.integers(1, 120),
    extra=st.integers(1, 3_000_000),
    via_start=st.booleans(),
    start=registers,
    readings=st.lists(small, max_size=5),
    stop=small,
)
def test_a_reservation_started_in_time_is_billed_like_an_ordinary_session_paid_the_same(
    tariff: Tariff,
    reserve: int,
    extra: int,
    via_start: bool,
    start: int,
    readings: list[int],
    stop: int,
) -> None:
    """The fee counts toward the session: the whole payment is budget, nothing is added."""
    reservation = _pay_reservation(tariff, reserve, extra)
    ordinary = apply(make_session(tariff), PaymentSettled("h0", reservation.paid_msat)).session
    if via_start:
        reservation = apply(reservation, StartRequested()).session
    charging: list[Event] = [TransactionStarted(1, start, T0)]
    charging += [
        MeterReading(start + wh, T0 + timedelta(minutes=n)) for n, wh in enumerate(readings, 1)
    ]
    charging.append(TransactionStopped(start + stop, T0 + timedelta(minutes=len(readings) + 1)))
    for event in charging:
        try:
            reservation = apply(reservation, event).session
            ordinary = apply(ordinary, event).session
        except IllegalTransition:  # both stopped for the budget the same way
            continue
    assert reservation.state is ordinary.state
    assert reservation.consumed_msat == ordinary.consumed_msat
    assert reservation.refundable_msat == ordinary.refundable_msat
    assert apply(reservation, ReservationExpired()).session.consumed_msat == ordinary.consumed_msat
