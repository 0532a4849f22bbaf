"""Properties of billing by a frozen price schedule (dynamic tariffs) and of the idle fee.

For any schedule and meter series: the energy attributed to the intervals adds up to exactly the
register delta and stays within one Wh per reading of the exact linear share (recomputed here
with fractions); the bill is the session fee plus the sum over intervals of floor(energy x
price) plus the time fee (recomputed here); the ledger invariant holds after every event; the
budget stop overruns by at most one meter interval at the highest price; the price shown at
payment is the price billed for that interval. Static tariffs keep no schedule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom_core.billing import attribute, energy_bill_msat, highest_price, interval_bills
from strom_core.errors import IllegalTransition, LedgerError
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import Session, State, apply, check_ledger, new_session
from strom_core.session_events import (
    Event,
    MeterReading,
    PaymentSettled,
    RefundClaimed,
    RefundPaid,
    StopReason,
    StopRequested,
    TopUpSettled,
    TransactionStarted,
    TransactionStopped,
    VehicleCharging,
    VehicleIdle,
)
from strom_core.tariff import Tariff

T0 = datetime(2026, 3, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
SETTINGS = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)


@st.composite
def schedules(draw: st.DrawFn, *, negative: bool = True) -> PriceSchedule:
    lengths = draw(st.lists(st.sampled_from([15, 30, 60, 60, 60, 120]), min_size=1, max_size=12))
    low = -200_000 if negative else 0
    start = T0
    intervals = []
    for minutes in lengths:
        end = start + timedelta(minutes=minutes)
        intervals.append(PriceInterval(start, end, draw(st.integers(low, 3_000_000))))
        start = end
    return PriceSchedule(tuple(intervals), source="tou:profile", fetched_at=T0)


tariffs = st.builds(
    Tariff,
    energy_msat_per_kwh=st.integers(0, 2_000_000),
    time_msat_per_minute=st.integers(0, 20_000),
    session_fee_msat=st.integers(0, 5_000),
    min_prepay_msat=st.just(10_000),
    max_prepay_msat=st.just(10**12),
    idle_msat_per_minute=st.integers(0, 50_000),
    idle_grace_minutes=st.integers(0, 30),
)

# A meter series: (seconds since the previous reading, Wh since the previous reading).
steps = st.lists(st.tuples(st.integers(0, 5400), st.integers(0, 5_000)), min_size=1, max_size=25)


def _session(tariff: Tariff, schedule: PriceSchedule | None, power_w: int = 11_000) -> Session:
    return new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=1,
        id_tag="tag-0123456789",
        tariff=tariff,
        power_w=power_w,
        meter_interval_s=60,
        start_timeout_s=120,
        schedule=schedule,
    )


def _exact_shares(
    schedule: PriceSchedule, start: datetime, end: datetime, wh: int
) -> list[Fraction]:
    """The exact linear share of each interval (the edges extended), in fractions of a Wh."""
    last = len(schedule.intervals) - 1
    spans = []
    for index, interval in enumerate(schedule.intervals):
        low = min(interval.start, start) if index == 0 else interval.start
        high = max(interval.end, end) if index == last else interval.end
        spans.append(max(timedelta(0), min(high, end) - max(low, start)))
    total = sum(spans, timedelta(0))
    if total == timedelta(0):
        shares = [Fraction(0)] * len(spans)
        at = start
        index = next((i for i, iv in enumerate(schedule.intervals) if at < iv.end), last)
        shares[0 if at < schedule.intervals[0].start else index] = Fraction(wh)
        return shares
    return [Fraction(wh) * Fraction(span // _US, total // _US) for span in spans]


@SETTINGS
@given(schedule=schedules(), tariff=tariffs, series=steps, offset=st.integers(-3600, 7200))
def test_the_bill_is_the_sum_over_intervals_of_energy_times_price(
    schedule: PriceSchedule, tariff: Tariff, series: list[tuple[int, int]], offset: int
) -> None:
    started = T0 + timedelta(seconds=offset)
    session = _session(tariff, schedule)
    session = apply(session, PaymentSettled("h1", 10**12)).session
    session = apply(session, TransactionStarted(1, 1_000, started)).session
    exact = [Fraction(0)] * len(schedule.intervals)
    readings = [0] * len(schedule.intervals)
    at, register = started, 1_000
    for seconds, wh in series:
        before = at
        at, register = at + timedelta(seconds=seconds), register + wh
        shares = _exact_shares(schedule, before, at, wh)
        exact = [e + s for e, s in zip(exact, shares, strict=True)]
        readings = [r + (1 if s else 0) for r, s in zip(readings, shares, strict=True)]
        session = apply(session, MeterReading(register, at)).session
    # whole Wh, exactly the register delta, each within one Wh per reading of its exact share
    assert sum(session.interval_wh) == register - 1_000 == session.energy_wh
    for billed, share, count in zip(session.interval_wh, exact, readings, strict=True):
        assert abs(billed - share) <= count
    energy = sum(
        wh * interval.energy_msat_per_kwh // 1000
        for wh, interval in zip(session.interval_wh, schedule.intervals, strict=True)
    )
    seconds = int((at - started).total_seconds())
    expected = max(
        0, tariff.session_fee_msat + energy + seconds * tariff.time_msat_per_minute // 60
    )
    assert session.consumed_msat == expected
    assert energy_bill_msat(schedule, session.interval_wh) == energy
    check_ledger(session)


@SETTINGS
@given(schedule=schedules(), data=st.data())
def test_readings_on_interval_boundaries_bill_each_interval_exactly_its_energy(
    schedule: PriceSchedule, data: st.DataObject
) -> None:
    tariff = Tariff(energy_msat_per_kwh=1, min_prepay_msat=10_000, max_prepay_msat=10**12)
    session = apply(_session(tariff, schedule), PaymentSettled("h1", 10**12)).session
    session = apply(session, TransactionStarted(1, 0, T0)).session
    register = 0
    delivered = []
    for interval in schedule.intervals:
        wh = data.draw(st.integers(0, 20_000))
        register += wh
        delivered.append(wh)
        session = apply(session, MeterReading(register, interval.end)).session
    assert list(session.interval_wh) == delivered
    bills = interval_bills(schedule, session.interval_wh)
    assert [bill.energy_wh for bill in bills] == [wh for wh in delivered if wh]


events: st.SearchStrategy[Event] = st.one_of(
    st.builds(
        PaymentSettled,
        payment_hash=st.sampled_from(["h1", "h2"]),
        amount_msat=st.integers(1, 5_000_000),
    ),
    st.builds(
        TopUpSettled,
        payment_hash=st.sampled_from(["h2", "h3"]),
        amount_msat=st.integers(1, 5_000_000),
    ),
    st.builds(
        TransactionStarted,
        transaction_id=st.just(1),
        meter_start_wh=st.integers(0, 1_000),
        at=st.integers(-3600, 20 * 3600).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    st.builds(
        MeterReading,
        register_wh=st.integers(0, 200_000),
        at=st.integers(-3600, 20 * 3600).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    st.builds(VehicleIdle, at=st.integers(0, 20 * 3600).map(lambda s: T0 + timedelta(seconds=s))),
    st.builds(
        VehicleCharging, at=st.integers(0, 20 * 3600).map(lambda s: T0 + timedelta(seconds=s))
    ),
    st.builds(StopRequested, reason=st.sampled_from(list(StopReason))),
    st.builds(
        TransactionStopped,
        meter_stop_wh=st.integers(0, 200_000),
        at=st.integers(0, 20 * 3600).map(lambda s: T0 + timedelta(seconds=s)),
    ),
    st.builds(RefundClaimed, refund_id=st.just("r1"), amount_msat=st.integers(1, 6_000_000)),
    st.builds(RefundPaid, refund_id=st.just("r1")),
)


@SETTINGS
@given(schedule=schedules(), tariff=tariffs, sequence=st.lists(events, max_size=40))
def test_ledger_invariant_holds_for_scheduled_sessions_with_idle_fees(
    schedule: PriceSchedule, tariff: Tariff, sequence: list[Event]
) -> None:
    session = _session(tariff, schedule)
    for event in sequence:
        try:
            result = apply(session, event)
        except (IllegalTransition, LedgerError):
            continue
        session = result.session
        check_ledger(session)
        assert sum(session.interval_wh) == session.energy_wh
        again = apply(session, event)
        assert again.session.consumed_msat == session.consumed_msat


@SETTINGS
@given(
    schedule=schedules(negative=False),
    tariff=tariffs,
    budget=st.integers(10_000, 50_000_000),
    power_w=st.integers(1_000, 50_000),
    draws=st.lists(st.integers(0, 100), min_size=400, max_size=400),
)
def test_the_budget_stop_overruns_by_at_most_one_meter_interval_at_the_highest_price(
    schedule: PriceSchedule, tariff: Tariff, budget: int, power_w: int, draws: list[int]
) -> None:
    session = _session(tariff, schedule, power_w)
    session = apply(session, PaymentSettled("h1", budget)).session
    session = apply(session, TransactionStarted(1, 0, T0)).session
    at, register, most_per_interval = T0, 0, -(-power_w * 60 // 3600)
    for percent in draws:
        if session.state is not State.CHARGING:
            break
        at += timedelta(seconds=60)
        register += most_per_interval * percent // 100
        session = apply(session, MeterReading(register, at)).session
        if percent % 7 == 0:
            session = apply(session, VehicleIdle(at)).session
        elif percent % 5 == 0:
            session = apply(session, VehicleCharging(at)).session
    if (
        session.state is State.STOPPING
    ):  # the charger takes one more interval to stop, at full power
        at += timedelta(seconds=60)
        register += most_per_interval
    session = apply(session, TransactionStopped(register, at)).session
    worst = tariff.interval_cost(power_w, 60, schedule.max_msat_per_kwh)
    assert session.overrun_msat <= worst
    check_ledger(session)


@SETTINGS
@given(schedule=schedules(), tariff=tariffs, data=st.data())
def test_the_price_shown_at_payment_is_the_price_billed_for_that_interval(
    schedule: PriceSchedule, tariff: Tariff, data: st.DataObject
) -> None:
    span = int((schedule.valid_until - schedule.valid_from).total_seconds())
    paid_at = T0 + timedelta(seconds=data.draw(st.integers(0, span - 1)))
    shown = schedule.price_at(paid_at)
    assert shown is not None
    left = int((shown.end - paid_at).total_seconds())
    wh = data.draw(st.integers(1, 50_000))
    later = paid_at + timedelta(seconds=data.draw(st.integers(0, left - 1)))
    session = apply(_session(tariff, schedule), PaymentSettled("h1", 10**12, paid_at)).session
    session = apply(session, TransactionStarted(1, 0, paid_at)).session
    session = apply(session, MeterReading(wh, later)).session
    (bill,) = interval_bills(schedule, session.interval_wh)
    assert (bill.start, bill.energy_msat_per_kwh) == (shown.start, shown.energy_msat_per_kwh)
    assert bill.cost_msat == wh * shown.energy_msat_per_kwh // 1000


def test_a_static_tariff_keeps_no_schedule_and_bills_exactly_as_before() -> None:
    tariff = Tariff(energy_msat_per_kwh=400_000, time_msat_per_minute=1_000, session_fee_msat=500)
    session = apply(_session(tariff, None), PaymentSettled("h1", 50_000_000)).session
    session = apply(session, TransactionStarted(1, 100, T0)).session
    session = apply(session, MeterReading(7_433, T0 + timedelta(minutes=50))).session
    assert session.schedule is None
    assert session.interval_wh == ()
    assert session.consumed_msat == tariff.cost(7_333, 3000)


def test_past_the_schedule_the_last_price_holds() -> None:
    schedule = PriceSchedule.flat(100_000, T0, 1)
    tariff = Tariff(energy_msat_per_kwh=1)
    session = apply(_session(tariff, schedule), PaymentSettled("h1", 50_000_000)).session
    session = apply(session, TransactionStarted(1, 0, T0 + timedelta(minutes=30))).session
    session = apply(session, MeterReading(3_000, T0 + timedelta(minutes=90))).session
    assert session.interval_wh == (3_000,)
    assert session.consumed_msat == 300_000


def test_energy_across_an_hour_boundary_is_split_by_time() -> None:
    schedule = PriceSchedule(
        (
            PriceInterval(T0, T0 + timedelta(hours=1), 200_000),
            PriceInterval(T0 + timedelta(hours=1), T0 + timedelta(hours=2), 500_000),
        ),
        source="tou:profile",
        fetched_at=T0,
    )
    # 45 min before the hour, 15 after: 3/4 and 1/4 of 1001 Wh (cumulative floors)
    assert attribute(
        schedule, (), T0 + timedelta(minutes=15), T0 + timedelta(minutes=75), 1001
    ) == (750, 251)
    assert (
        highest_price(schedule, T0 + timedelta(minutes=59), T0 + timedelta(minutes=60)) == 500_000
    )
    assert highest_price(schedule, T0, T0 + timedelta(minutes=1)) == 200_000


def test_the_idle_fee_runs_per_whole_minute_after_the_grace_until_the_stop() -> None:
    tariff = Tariff(energy_msat_per_kwh=0, idle_msat_per_minute=10_000, idle_grace_minutes=10)
    session = apply(_session(tariff, None), PaymentSettled("h1", 50_000_000)).session
    session = apply(session, TransactionStarted(1, 0, T0)).session
    session = apply(session, VehicleIdle(T0 + timedelta(minutes=5))).session
    session = apply(session, VehicleIdle(T0 + timedelta(minutes=9))).session  # a repeat
    session = apply(session, MeterReading(0, T0 + timedelta(minutes=14))).session
    assert session.consumed_msat == 0  # 9 minutes idle: within the grace
    session = apply(session, VehicleCharging(T0 + timedelta(minutes=20))).session
    session = apply(session, VehicleIdle(T0 + timedelta(minutes=40))).session
    session = apply(session, TransactionStopped(0, T0 + timedelta(minutes=42, seconds=59))).session
    # idled 15 + 2:59 minutes = 17:59, 10 free: 7 whole minutes billed
    assert session.idle_seconds == 17 * 60 + 59
    assert session.idle_msat == 70_000
    assert session.paid_msat - session.refundable_msat == 70_000


def test_without_an_idle_fee_the_status_changes_nothing() -> None:
    tariff = Tariff(energy_msat_per_kwh=100_000)
    session = apply(_session(tariff, None), PaymentSettled("h1", 50_000_000)).session
    session = apply(session, TransactionStarted(1, 0, T0)).session
    result = apply(session, VehicleIdle(T0 + timedelta(minutes=1)))
    assert result.session == session


@pytest.mark.parametrize("state_events", [[], [PaymentSettled("h1", 50_000_000)]])
def test_an_idle_status_before_the_transaction_is_ignored(state_events: list[Event]) -> None:
    tariff = Tariff(energy_msat_per_kwh=100_000, idle_msat_per_minute=1)
    session = _session(tariff, None)
    for event in state_events:
        session = apply(session, event).session
    if session.state is State.AWAITING_PAYMENT:
        with pytest.raises(IllegalTransition):
            apply(session, VehicleIdle(T0))
    else:
        assert apply(session, VehicleIdle(T0)).session.idle_since is None
