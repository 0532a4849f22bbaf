"""A lower power for a session: the budget stop plans at that power, and still holds its bound.

A charger that accepted a limit draws at most that much, so the stop may come later than at the
connector's full power; the overrun (energy and time billed beyond the budget) must still be at
most one meter interval at the limited power. Hypothesis drives sessions of random tariffs,
budgets, powers and limits (set before the start or at a random reading) through regular meter
readings, with the charger taking one more interval to stop after the budget stop.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom_core.errors import IllegalTransition, LedgerError
from strom_core.session import Session, State, apply, new_session
from strom_core.session_effects import RemoteStop
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    PowerLimited,
    RemoteStartAccepted,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from strom_core.tariff import Tariff

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL_S = 60

tariffs = st.builds(
    Tariff,
    energy_msat_per_kwh=st.integers(100_000, 2_000_000),
    time_msat_per_minute=st.integers(0, 50_000),
    session_fee_msat=st.integers(0, 5_000),
    min_prepay_msat=st.just(10_000),
    max_prepay_msat=st.just(10**12),
)


def paid_session(tariff: Tariff, power_w: int, paid_msat: int) -> Session:
    session = new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=1,
        id_tag="tag-1",
        tariff=tariff,
        power_w=power_w,
        meter_interval_s=INTERVAL_S,
        start_timeout_s=120,
    )
    return apply(session, PaymentSettled("h1", paid_msat)).session


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    tariff=tariffs,
    power_w=st.integers(3_000, 50_000),
    limit_w=st.integers(1_000, 50_000),
    paid_msat=st.integers(50_000, 2_000_000),
    limit_at=st.integers(-1, 30),
    draw=st.floats(0.5, 1.0),
)
def test_the_budget_stop_overruns_by_at_most_one_interval_at_the_limited_power(
    tariff: Tariff, power_w: int, limit_w: int, paid_msat: int, limit_at: int, draw: float
) -> None:
    s = paid_session(tariff, power_w, paid_msat)
    if limit_at < 0:  # the limit was accepted before the transaction started
        s = apply(s, PowerLimited(limit_w)).session
    s = apply(s, RemoteStartAccepted()).session
    s = apply(s, TransactionStarted(7, 0, T0)).session
    register = 0
    step = 0
    while s.state is State.CHARGING:
        if step == limit_at:
            s = apply(s, PowerLimited(limit_w)).session
            if s.state is not State.CHARGING:
                break
        step += 1
        # The charger draws at most the session's power (its accepted limits) for one interval.
        register += int(s.power_w * draw * INTERVAL_S // 3600)
        s = apply(s, MeterReading(register, T0 + timedelta(seconds=step * INTERVAL_S))).session
        assert step < 10_000
    assert s.state is State.STOPPING
    assert s.stop_reason == StopReason.BUDGET
    limited_w = s.power_w
    assert limited_w == (min(power_w, limit_w) if limit_at < step else power_w)
    # The charger stops one interval later, still drawing at its limit.
    register += limited_w * INTERVAL_S // 3600
    stop_at = T0 + timedelta(seconds=(step + 1) * INTERVAL_S)
    s = apply(s, TransactionStopped(register, stop_at)).session
    assert s.consumed_msat <= paid_msat
    assert s.overrun_msat <= tariff.interval_cost(limited_w, INTERVAL_S)


def charging(power_w: int = 11_000) -> Session:
    tariff = Tariff(
        energy_msat_per_kwh=300_000,
        time_msat_per_minute=0,
        session_fee_msat=0,
        min_prepay_msat=10_000,
        max_prepay_msat=10**9,
    )
    s = paid_session(tariff, power_w, 1_000_000)
    s = apply(s, RemoteStartAccepted()).session
    return apply(s, TransactionStarted(7, 0, T0)).session


def test_a_limit_only_ever_lowers_the_sessions_power() -> None:
    s = apply(charging(), PowerLimited(4_000)).session
    assert s.power_w == 4_000
    higher = apply(s, PowerLimited(7_000))
    assert higher.session.power_w == 4_000
    assert higher.effects == ()


def test_a_limited_session_charges_on_where_full_power_would_stop() -> None:
    # 1,000,000 msat at 300 sat/kWh: after 3,200 Wh 40 sat are left. One minute at 11 kW
    # (184 Wh) costs 55.2 sat, so the full-power session stops; at 4 kW (67 Wh) 20.1 sat.
    reading = MeterReading(3_200, T0 + timedelta(minutes=20))
    full = apply(charging(), reading)
    assert full.session.state is State.STOPPING
    assert RemoteStop("cp1", 7) in full.effects
    limited = apply(apply(charging(), PowerLimited(4_000)).session, reading)
    assert limited.session.state is State.CHARGING
    assert not any(isinstance(e, RemoteStop) for e in limited.effects)


def test_a_limit_accepted_in_the_last_interval_keeps_the_stop_one_interval_early() -> None:
    s = apply(charging(), MeterReading(3_250, T0 + timedelta(minutes=20))).session
    assert s.state is State.STOPPING
    s = apply(charging(4_000), MeterReading(3_250, T0 + timedelta(minutes=20))).session
    assert s.state is State.CHARGING  # 25 sat left > 20.1
    assert apply(s, PowerLimited(4_000)).session.state is State.CHARGING


def test_a_limit_is_refused_after_the_session_stopped_and_when_not_positive() -> None:
    s = charging()
    with pytest.raises(LedgerError):
        apply(s, PowerLimited(0))
    stopped = apply(s, TransactionStopped(10, T0 + timedelta(minutes=1))).session
    with pytest.raises(IllegalTransition):
        apply(stopped, PowerLimited(4_000))
