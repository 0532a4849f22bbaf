"""The charging-session flows of DESIGN.md, step by step, with exact amounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from strom_core.errors import IllegalTransition, LedgerError
from strom_core.session import Session, State, apply, new_session
from strom_core.session_effects import ArmStartTimeout, Notify, RemoteStart, RemoteStop
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    RefundClaimed,
    RefundFailed,
    RefundPaid,
    RemoteStartAccepted,
    RemoteStartRejected,
    StopReason,
    StopRequested,
    TopUpSettled,
    TransactionLost,
    TransactionStarted,
    TransactionStopped,
)
from strom_core.tariff import Tariff

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# 300 sat/kWh, 10 sat per session, no time component.
TARIFF = Tariff(energy_msat_per_kwh=300_000, session_fee_msat=10_000, min_prepay_msat=20_000)


def fresh(power_w: int = 11_000, interval_s: int = 60) -> Session:
    return new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=2,
        id_tag="STROM0001",
        tariff=TARIFF,
        power_w=power_w,
        meter_interval_s=interval_s,
        start_timeout_s=90,
    )


def charging(paid_msat: int = 5_000_000) -> Session:
    s = apply(fresh(), PaymentSettled("h1", paid_msat)).session
    s = apply(s, RemoteStartAccepted()).session
    return apply(s, TransactionStarted(7, 1_000, T0)).session


def test_payment_starts_the_charger_with_the_sessions_id_tag_and_a_timeout() -> None:
    result = apply(fresh(), PaymentSettled("h1", 5_000_000))
    assert result.session.state is State.PAID
    assert RemoteStart("cp1", 2, "STROM0001") in result.effects
    assert ArmStartTimeout(90) in result.effects
    assert result.session.refundable_msat == 5_000_000


def test_happy_path_bills_the_register_difference_and_leaves_the_rest_refundable() -> None:
    s = charging()
    s = apply(s, MeterReading(3_000, T0 + timedelta(minutes=10))).session
    assert s.energy_wh == 2_000
    assert s.consumed_msat == 10_000 + 600_000
    result = apply(s, StopRequested(StopReason.INITIATOR))
    assert result.effects == (RemoteStop("cp1", 7),)
    s = apply(result.session, TransactionStopped(5_500, T0 + timedelta(minutes=20))).session
    assert s.state is State.STOPPED
    assert s.energy_wh == 4_500
    assert s.consumed_msat == 10_000 + 1_350_000
    assert s.refundable_msat == 5_000_000 - 1_360_000
    s = apply(s, RefundClaimed("r1", s.refundable_msat)).session
    assert s.state is State.REFUND_PENDING
    s = apply(s, RefundPaid("r1", fee_msat=3)).session
    assert s.state is State.REFUNDED
    assert (s.refunded_msat, s.refund_fee_msat, s.refundable_msat) == (3_640_000, 3, 0)


def test_budget_stops_one_interval_early_and_never_bills_more_than_paid() -> None:
    # 11 kW for 60 s is 184 Wh ≈ 55.2 sat: the stop fires once less than that remains.
    s = charging(paid_msat=200_000)
    s_before = apply(s, MeterReading(1_300, T0 + timedelta(minutes=2))).session
    # 90 + 10 sat spent, 100 sat left > 55.2; at the next reading 135 + 10 spent, 55 left.
    assert s_before.state is State.CHARGING
    result = apply(s_before, MeterReading(1_450, T0 + timedelta(minutes=3)))
    assert result.session.state is State.STOPPING
    assert result.session.stop_reason == StopReason.BUDGET
    assert RemoteStop("cp1", 7) in result.effects
    # The charger overshoots by more than the budget before it stops: the driver pays no more.
    s = apply(result.session, TransactionStopped(2_000, T0 + timedelta(minutes=4))).session
    assert s.consumed_msat == 200_000
    assert s.overrun_msat == 10_000 + 300_000 - 200_000
    assert s.state is State.CLOSED


def test_initiator_stop_racing_the_budget_stop_is_one_stop() -> None:
    s = charging(paid_msat=200_000)
    s = apply(s, MeterReading(1_450, T0 + timedelta(minutes=3))).session
    assert s.state is State.STOPPING
    late = apply(s, StopRequested(StopReason.INITIATOR))
    assert late.changed is False
    assert late.effects == ()


def test_rejected_start_makes_the_whole_payment_refundable() -> None:
    s = apply(fresh(), PaymentSettled("h1", 50_000)).session
    s = apply(s, RemoteStartRejected("Rejected")).session
    assert s.state is State.START_FAILED
    assert (s.consumed_msat, s.refundable_msat) == (0, 50_000)


def test_failed_refund_restores_the_balance_and_a_second_claim_can_pay() -> None:
    s = apply(fresh(), PaymentSettled("h1", 50_000)).session
    s = apply(s, RemoteStartRejected("Rejected")).session
    s = apply(s, RefundClaimed("r1", 50_000)).session
    s = apply(s, RefundFailed("r1", "no route")).session
    assert s.state is State.START_FAILED
    assert s.refundable_msat == 50_000
    s = apply(s, RefundClaimed("r2", 50_000)).session
    s = apply(s, RefundPaid("r2")).session
    assert s.state is State.REFUNDED


def test_only_one_refund_can_be_in_flight() -> None:
    s = apply(fresh(), PaymentSettled("h1", 50_000)).session
    s = apply(s, RemoteStartRejected("Rejected")).session
    s = apply(s, RefundClaimed("r1", 50_000)).session
    with pytest.raises(IllegalTransition):
        apply(s, RefundClaimed("r2", 50_000))
    with pytest.raises(IllegalTransition):
        apply(s, RefundPaid("r2"))


def test_a_claim_above_the_refundable_balance_is_refused() -> None:
    s = apply(fresh(), PaymentSettled("h1", 50_000)).session
    s = apply(s, RemoteStartRejected("Rejected")).session
    with pytest.raises(LedgerError):
        apply(s, RefundClaimed("r1", 50_001))


def test_top_up_after_the_session_was_refunded_is_never_lost() -> None:
    s = apply(fresh(), PaymentSettled("h1", 50_000)).session
    s = apply(s, RemoteStartRejected("Rejected")).session
    s = apply(s, RefundClaimed("r1", 50_000)).session
    s = apply(s, RefundPaid("r1")).session
    s = apply(s, TopUpSettled("h2", 30_000)).session
    assert s.state is State.START_FAILED
    assert s.refundable_msat == 30_000


def test_top_up_while_charging_raises_the_budget() -> None:
    s = charging(paid_msat=200_000)
    s = apply(s, TopUpSettled("h2", 1_000_000)).session
    s = apply(s, MeterReading(1_450, T0 + timedelta(minutes=3))).session
    assert s.state is State.CHARGING
    assert s.paid_msat == 1_200_000


def test_illegal_events_raise() -> None:
    with pytest.raises(IllegalTransition):
        apply(fresh(), TransactionStopped(1, T0))
    with pytest.raises(IllegalTransition):
        apply(fresh(), TopUpSettled("h", 1))
    with pytest.raises(IllegalTransition):
        apply(charging(), PaymentSettled("h9", 1))


def test_a_meter_stop_below_a_register_the_charger_reported_bills_that_register() -> None:
    # The charger restored an older register after a crash: 3,000 Wh were metered and
    # reported, then meterStop says 2,400. The driver pays for what was reported, not more.
    s = charging()
    s = apply(s, MeterReading(3_000, T0 + timedelta(minutes=10))).session
    s = apply(s, TransactionStopped(2_400, T0 + timedelta(minutes=11))).session
    assert s.energy_wh == 2_000
    assert s.consumed_msat == 10_000 + 600_000


def test_a_lost_transaction_ends_billed_to_the_last_reading_and_the_rest_is_refundable() -> None:
    s = charging()
    s = apply(s, MeterReading(3_000, T0 + timedelta(minutes=10))).session
    result = apply(s, TransactionLost(7))
    lost = result.session
    assert lost.state is State.STOPPED
    assert lost.stop_reason == StopReason.CHARGER_LOST
    assert (lost.energy_wh, lost.stopped_at) == (2_000, T0 + timedelta(minutes=10))
    assert lost.consumed_msat == 10_000 + 600_000
    assert lost.refundable_msat == 5_000_000 - 610_000
    assert result.effects == (Notify("stopped"),)


def test_a_stopping_session_whose_charger_lost_the_transaction_ends_the_same_way() -> None:
    s = apply(charging(), MeterReading(3_000, T0 + timedelta(minutes=10))).session
    s = apply(s, StopRequested(StopReason.INITIATOR)).session
    lost = apply(s, TransactionLost(7)).session
    assert (lost.state, lost.stop_reason, lost.energy_wh) == (
        State.STOPPED,
        StopReason.CHARGER_LOST,
        2_000,
    )


def test_only_the_sessions_own_running_transaction_can_be_lost() -> None:
    with pytest.raises(IllegalTransition):
        apply(charging(), TransactionLost(8))
    stopped = apply(charging(), TransactionStopped(2_000, T0 + timedelta(minutes=5))).session
    with pytest.raises(IllegalTransition):
        apply(stopped, TransactionLost(7))
    paid = apply(fresh(), PaymentSettled("h1", 5_000_000)).session
    with pytest.raises(IllegalTransition):
        apply(paid, TransactionLost(7))


def test_a_late_stop_after_a_lost_end_keeps_the_bill_and_records_the_operators_overrun() -> None:
    s = apply(charging(), MeterReading(3_000, T0 + timedelta(minutes=10))).session
    lost = apply(s, TransactionLost(7)).session
    refunded = apply(lost, RefundClaimed("r1", lost.refundable_msat)).session
    refunded = apply(refunded, RefundPaid("r1")).session
    late = apply(refunded, TransactionStopped(3_500, T0 + timedelta(hours=2)))
    assert late.effects == ()
    after = late.session
    assert after.state is State.REFUNDED
    assert (after.consumed_msat, after.refunded_msat, after.energy_wh) == (
        refunded.consumed_msat,
        refunded.refunded_msat,
        2_000,
    )
    assert after.overrun_msat == refunded.overrun_msat + 150_000  # 500 Wh unbilled
    assert apply(after, TransactionStopped(3_500, T0 + timedelta(hours=2))).changed is False
    lower = apply(lost, TransactionStopped(2_500, T0 + timedelta(hours=2))).session
    assert (lower.consumed_msat, lower.refundable_msat, lower.overrun_msat) == (
        lost.consumed_msat,
        lost.refundable_msat,
        lost.overrun_msat,
    )
