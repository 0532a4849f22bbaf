"""Paid reservations in the pure core: the tariff's terms and the RESERVED transitions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from strom_core.config import TariffConfig
from strom_core.errors import ConfigError, IllegalTransition, LedgerError
from strom_core.session import HOLDING_STATES, Session, State, apply, check_ledger, new_session
from strom_core.session_effects import (
    ArmReservationExpiry,
    ArmStartTimeout,
    CancelReservation,
    Notify,
    RemoteStart,
    ReserveNow,
)
from strom_core.session_events import (
    MeterReading,
    PaymentSettled,
    PowerLimited,
    RefundClaimed,
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
    TransactionStarted,
    TransactionStopped,
)
from strom_core.tariff import Tariff

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
# 300 sat/kWh; reserving costs 50 sat + 2 sat a minute, up to an hour; 60 % kept.
TARIFF = Tariff(
    energy_msat_per_kwh=300_000,
    min_prepay_msat=20_000,
    reservation_fee_msat=50_000,
    reservation_fee_msat_per_minute=2_000,
    reservation_max_minutes=60,
    reservation_kept_percent=60,
)
FEE_30 = 50_000 + 30 * 2_000  # 110 sat


def fresh(minutes: int = 30, tariff: Tariff = TARIFF) -> Session:
    return new_session(
        session_id="s1",
        charger_id="cp1",
        connector_id=2,
        id_tag="STROM0001",
        tariff=tariff,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=90,
        reserve_minutes=minutes,
        reservation_id=41,
    )


def reserved(paid: int = 1_000_000) -> Session:
    return apply(fresh(), PaymentSettled("h1", paid, T0)).session


# --- the tariff ------------------------------------------------------------------------------


def test_the_fee_is_flat_plus_per_minute_and_the_kept_share_is_floored() -> None:
    assert TARIFF.reservation_fee(30) == FEE_30
    assert TARIFF.reservation_kept(FEE_30) == 66_000
    assert Tariff(1, reservation_kept_percent=33).reservation_kept(1_001) == 330
    assert TARIFF.reservation_min_msat(30) == FEE_30  # above the minimum prepayment
    assert TARIFF.reservation_min_msat(0) == 50_000
    assert TARIFF.offers_reservations
    assert not Tariff(1).offers_reservations  # the default: no reservations


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"reservation_kept_percent": 101}, "0 to 100"),
        ({"reservation_max_minutes": -1}, "non-negative"),
        ({"reservation_fee_msat": True}, "non-negative"),
        ({"reservation_max_minutes": 24 * 60 + 1}, "at most"),
        (
            {"reservation_max_minutes": 60, "reservation_fee_msat_per_minute": 10**9},
            "exceeds max_prepay",
        ),
    ],
)
def test_a_tariff_with_impossible_reservation_terms_is_refused(
    terms: dict[str, int], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Tariff(energy_msat_per_kwh=1, **terms)


def test_the_profile_keys_are_sats_and_minutes() -> None:
    config = TariffConfig(
        per_kwh_sat=300,
        reservation_fee_sat="50.5",
        reservation_fee_per_minute_sat=2,
        reservation_max_minutes=60,
        reservation_kept_percent=60,
    )
    tariff = config.to_tariff()
    assert (tariff.reservation_fee_msat, tariff.reservation_fee_msat_per_minute) == (50_500, 2_000)
    assert (tariff.reservation_max_minutes, tariff.reservation_kept_percent) == (60, 60)
    assert TariffConfig().to_tariff().reservation_max_minutes == 0
    with pytest.raises(ValueError, match="less than or equal to 100"):
        TariffConfig(reservation_kept_percent=150)
    with pytest.raises(ValueError, match="valid integer"):
        TariffConfig(reservation_max_minutes="30")


# --- creating and paying ---------------------------------------------------------------------


def test_a_reservation_freezes_its_fee_at_the_offer() -> None:
    session = fresh()
    assert (session.reserve_minutes, session.reservation_fee_msat) == (30, FEE_30)
    assert session.reservation_id == 41
    assert session.reserved_until is None
    assert fresh(0).reservation_fee_msat == 0
    assert fresh(0).reservation_id is None


@pytest.mark.parametrize("minutes", [61, -5])
def test_a_reservation_longer_than_the_tariff_allows_is_not_created(minutes: int) -> None:
    with pytest.raises(LedgerError, match="1 to 60 minutes"):
        fresh(minutes)


def test_a_reservation_needs_a_reservation_id() -> None:
    with pytest.raises(LedgerError, match="reservation id"):
        new_session(
            session_id="s1",
            charger_id="cp1",
            connector_id=2,
            id_tag="STROM0001",
            tariff=TARIFF,
            power_w=11_000,
            meter_interval_s=60,
            start_timeout_s=90,
            reserve_minutes=30,
        )


def test_paying_a_reservation_reserves_until_settlement_plus_minutes() -> None:
    result = apply(fresh(), PaymentSettled("h1", 1_000_000, T0))
    session = result.session
    until = T0 + timedelta(minutes=30)
    assert session.state is State.RESERVED
    assert session.reserved_until == until
    assert session.refundable_msat == 1_000_000
    assert session.consumed_msat == 0
    assert result.effects == (
        Notify("reserved"),
        ReserveNow("cp1", 2, 41, until, "STROM0001"),
        ArmReservationExpiry(until),
    )
    assert State.RESERVED in HOLDING_STATES


def test_a_payment_below_the_fee_reserves_nothing_and_is_refundable_in_full() -> None:
    result = apply(fresh(), PaymentSettled("h1", FEE_30 - 1, T0))
    assert result.session.state is State.START_FAILED
    assert result.session.stop_reason == "paid less than the reservation fee"
    assert result.session.refundable_msat == FEE_30 - 1
    assert result.effects == (Notify("start_failed"),)


def test_a_reservation_payment_without_its_time_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="settlement time"):
        apply(fresh(), PaymentSettled("h1", 1_000_000))


# --- the charger's answer --------------------------------------------------------------------


def test_the_chargers_acceptance_keeps_the_reservation() -> None:
    result = apply(reserved(), ReservationAccepted())
    assert result.session.state is State.RESERVED
    assert result.effects == ()


def test_a_reservation_the_charger_refuses_keeps_nothing() -> None:
    result = apply(reserved(), ReservationRejected("Occupied"))
    session = result.session
    assert session.state is State.START_FAILED
    assert session.stop_reason == "the charger could not reserve the connector: Occupied"
    assert (session.consumed_msat, session.refundable_msat) == (0, 1_000_000)
    assert result.effects == (Notify("start_failed"),)
    # Only the first answer counts; the expiry timer is stale now.
    assert not apply(session, ReservationAccepted()).changed
    stale = apply(session, ReservationExpired())
    assert stale.session.state is State.START_FAILED
    assert stale.effects == ()
    assert stale.session.refundable_msat == 1_000_000


# --- arrival: the fee counts toward the session ----------------------------------------------


def test_start_requested_starts_with_the_reserved_id_tag() -> None:
    result = apply(reserved(), StartRequested())
    assert result.session.state is State.PAID
    assert result.effects == (RemoteStart("cp1", 2, "STROM0001"), ArmStartTimeout(90))
    assert not apply(result.session, StartRequested()).changed  # a double click


def test_started_in_time_the_whole_payment_is_budget_and_only_energy_is_billed() -> None:
    session = apply(reserved(200_000), StartRequested()).session
    session = apply(session, RemoteStartAccepted()).session
    session = apply(session, TransactionStarted(7, 1_000, T0 + timedelta(minutes=5))).session
    session = apply(session, MeterReading(1_100, T0 + timedelta(minutes=6))).session
    session = apply(session, TransactionStopped(1_200, T0 + timedelta(minutes=7))).session
    assert session.state is State.STOPPED
    assert session.consumed_msat == 60_000  # 0.2 kWh at 300 sat: no reservation fee on top
    assert session.refundable_msat == 140_000
    # The expiry timer firing later changes nothing.
    late = apply(session, ReservationExpired())
    assert late.session.consumed_msat == 60_000
    assert late.effects == ()


def test_a_start_at_the_charger_with_the_reserved_tag_charges() -> None:
    session = apply(reserved(), TransactionStarted(9, 0, T0 + timedelta(minutes=3))).session
    assert session.state is State.CHARGING
    assert session.transaction_id == 9
    assert session.consumed_msat == 0


def test_top_ups_and_power_limits_apply_while_reserved() -> None:
    session = apply(reserved(), TopUpSettled("h2", 500_000)).session
    assert session.state is State.RESERVED
    assert session.refundable_msat == 1_500_000
    session = apply(session, PowerLimited(7_000)).session
    assert session.state is State.RESERVED
    assert session.power_w == 7_000


# --- expiry and cancel: the fee share is kept, once ------------------------------------------


def test_expiry_keeps_the_tariffs_share_of_the_fee_and_cancels_the_reservation() -> None:
    result = apply(reserved(), ReservationExpired())
    session = result.session
    assert session.state is State.START_FAILED
    assert session.stop_reason == "reservation expired"
    assert session.consumed_msat == 66_000  # 60 % of 110 sat
    assert session.refundable_msat == 934_000
    assert result.effects == (CancelReservation("cp1", 41), Notify("reservation_ended"))
    again = apply(session, ReservationExpired())
    assert not again.changed
    assert again.session.consumed_msat == 66_000


def test_a_cancel_by_the_payer_keeps_the_same_share() -> None:
    result = apply(reserved(), StopRequested(StopReason.INITIATOR))
    assert result.session.stop_reason == "reservation cancelled"
    assert result.session.consumed_msat == 66_000
    assert CancelReservation("cp1", 41) in result.effects
    # the expiry timer still fires later: stale
    assert apply(result.session, ReservationExpired()).effects == ()


def test_a_fee_kept_in_full_of_a_payment_of_exactly_the_fee_closes_the_session() -> None:
    tariff = Tariff(
        energy_msat_per_kwh=300_000,
        min_prepay_msat=20_000,
        reservation_fee_msat=FEE_30,
        reservation_max_minutes=30,
    )
    session = apply(fresh(30, tariff), PaymentSettled("h1", FEE_30, T0)).session
    session = apply(session, ReservationExpired()).session
    assert session.state is State.CLOSED
    assert (session.consumed_msat, session.refundable_msat) == (FEE_30, 0)


def test_nothing_kept_when_the_tariff_keeps_nothing() -> None:
    tariff = Tariff(
        energy_msat_per_kwh=1,
        reservation_fee_msat=50_000,
        reservation_max_minutes=30,
        reservation_kept_percent=0,
    )
    session = apply(fresh(30, tariff), PaymentSettled("h1", 1_000_000, T0)).session
    session = apply(session, ReservationExpired()).session
    assert (session.consumed_msat, session.refundable_msat) == (0, 1_000_000)


def test_the_refund_after_expiry_is_whole_sats() -> None:
    tariff = Tariff(
        energy_msat_per_kwh=1,
        reservation_fee_msat=1_500,  # 1.5 sat, all kept
        reservation_max_minutes=30,
    )
    session = apply(fresh(30, tariff), PaymentSettled("h1", 1_000_000, T0)).session
    session = apply(session, ReservationExpired()).session
    assert session.refundable_msat % 1000 == 0
    assert session.consumed_msat == 1_000  # rounded down in the payer's favour
    check_ledger(session)


def test_the_rest_is_refunded_through_the_usual_path() -> None:
    session = apply(reserved(), ReservationExpired()).session
    session = apply(session, RefundClaimed("r1", 934_000)).session
    session = apply(session, RefundPaid("r1", fee_msat=12)).session
    assert session.state is State.REFUNDED
    assert (session.consumed_msat, session.refunded_msat) == (66_000, 934_000)


# --- a start that never began ----------------------------------------------------------------


@pytest.mark.parametrize("event", [StartTimedOut(), StopRequested(StopReason.INITIATOR)])
def test_a_payer_who_asked_to_start_but_never_charged_pays_the_kept_share(event: object) -> None:
    session = apply(reserved(), StartRequested()).session
    result = apply(session, event)  # type: ignore[arg-type]
    assert result.session.state is State.START_FAILED
    assert result.session.consumed_msat == 66_000
    assert CancelReservation("cp1", 41) in result.effects


def test_a_start_the_charger_rejects_keeps_nothing_and_frees_the_connector() -> None:
    session = apply(reserved(), StartRequested()).session
    result = apply(session, RemoteStartRejected("Rejected"))
    assert result.session.state is State.START_FAILED
    assert (result.session.consumed_msat, result.session.refundable_msat) == (0, 1_000_000)
    assert result.effects == (CancelReservation("cp1", 41), Notify("start_failed"))


def test_an_ordinary_session_is_unchanged_by_all_this() -> None:
    session = apply(fresh(0), PaymentSettled("h1", 1_000_000)).session
    assert session.state is State.PAID
    assert session.reserved_until is None
    failed = apply(session, StartTimedOut())
    assert failed.session.consumed_msat == 0
    assert failed.effects == (Notify("start_failed"),)
    with pytest.raises(IllegalTransition):
        apply(session, StartRequested())


# --- post-paid reservations (a roaming partner's RESERVE_NOW) ---------------------------------

UNTIL = T0 + timedelta(minutes=30)


def partner_reservation(tariff: Tariff = TARIFF) -> Session:
    created = new_session(
        session_id="p1",
        charger_id="cp1",
        connector_id=2,
        id_tag="Pp1",
        tariff=tariff,
        power_w=11_000,
        meter_interval_s=60,
        start_timeout_s=90,
        payer="partner:7",
        reserve_minutes=30,
        reservation_id=42,
    )
    assert created.state is State.PAID
    assert created.reservation_fee_msat == tariff.reservation_fee(30)
    return apply(created, ReservationAuthorized(UNTIL, "04A1B2C3")).session


def test_a_partner_reservation_holds_the_connector_for_the_token_without_payment() -> None:
    created = replace(
        partner_reservation(), state=State.PAID, reserved_until=None, applied=frozenset()
    )
    step = apply(created, ReservationAuthorized(UNTIL, "04A1B2C3"))
    assert step.session.state is State.RESERVED
    assert step.session.reserved_until == UNTIL
    assert step.session.paid_msat == 0
    assert step.session.postpaid_msat == 0
    assert step.effects == (
        ReserveNow("cp1", 2, 42, UNTIL, "04A1B2C3"),
        ArmReservationExpiry(UNTIL),
    )
    assert apply(step.session, ReservationAuthorized(UNTIL, "04A1B2C3")).changed is False


def test_only_a_post_paid_reservation_is_reserved_without_payment() -> None:
    with pytest.raises(IllegalTransition):
        apply(replace(fresh(), state=State.PAID), ReservationAuthorized(UNTIL, "04A1B2C3"))
    with pytest.raises(IllegalTransition):  # a reservation is not remote-started at once
        apply(replace(partner_reservation(), state=State.PAID), StartAuthorized())


@pytest.mark.parametrize("event", [ReservationExpired(), StopRequested(StopReason.INITIATOR)])
def test_a_partner_reservation_ending_unused_owes_the_kept_share(event: object) -> None:
    step = apply(partner_reservation(), event)  # type: ignore[arg-type]
    assert step.session.state is State.CLOSED
    assert step.session.postpaid_msat == 66_000  # 60 % of 110 sat
    assert step.session.consumed_msat == 0
    assert step.session.refundable_msat == 0
    assert CancelReservation("cp1", 42) in step.effects


def test_a_partner_reservation_with_nothing_kept_owes_nothing() -> None:
    free_cancel = Tariff(
        energy_msat_per_kwh=300_000,
        reservation_fee_msat=50_000,
        reservation_max_minutes=60,
        reservation_kept_percent=0,
    )
    step = apply(partner_reservation(free_cancel), ReservationExpired())
    assert step.session.state is State.CLOSED
    assert step.session.postpaid_msat == 0


def test_a_partner_reservation_the_charger_refuses_owes_nothing() -> None:
    step = apply(partner_reservation(), ReservationRejected("Occupied"))
    assert step.session.state is State.START_FAILED
    assert step.session.postpaid_msat == 0


def test_a_partner_reservation_charged_in_time_owes_the_bill_only() -> None:
    started = apply(partner_reservation(), TransactionStarted(7, 1_000, T0)).session
    assert started.state is State.CHARGING
    stopped = apply(started, TransactionStopped(2_000, T0 + timedelta(minutes=10))).session
    assert stopped.postpaid_msat == 300_000  # 1 kWh; no reservation fee on top
    assert stopped.paid_msat == 0


def test_a_partner_start_request_starts_with_the_reserved_token() -> None:
    step = apply(partner_reservation(), StartRequested("04A1B2C3"))
    assert step.session.state is State.PAID
    assert RemoteStart("cp1", 2, "04A1B2C3") in step.effects
    timed_out = apply(step.session, StartTimedOut())
    assert timed_out.session.state is State.CLOSED
    assert timed_out.session.postpaid_msat == 66_000
