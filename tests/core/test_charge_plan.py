"""Charge when cheap: the planner's plans are within power, in time, and cheapest (brute force).

Hypothesis draws small schedules (a few intervals of a few seconds, prices that may tie or be
negative), a start inside them, a deadline and an energy or a budget; every plan is compared
with every other way of charging whole seconds at the session's power before the deadline.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strom_core.charge_plan import ChargePlan, plan_cheap
from strom_core.ports.power import SchedulePeriod
from strom_core.prices import PriceInterval, PriceSchedule

T0 = datetime(2026, 3, 1, 22, tzinfo=UTC)
MSAT_UNITS = 3_600_000


@st.composite
def schedules(draw: st.DrawFn) -> PriceSchedule:
    lengths = draw(st.lists(st.integers(1, 3), min_size=1, max_size=4))
    prices = draw(st.lists(st.integers(-50_000, 400_000), min_size=len(lengths)))
    intervals = []
    at = T0
    for length, price in zip(lengths, prices, strict=False):
        intervals.append(PriceInterval(at, at + timedelta(seconds=length), price))
        at += timedelta(seconds=length)
    return PriceSchedule(tuple(intervals), source="test", fetched_at=T0)


powers = st.sampled_from([720, 1_800, 3_600, 7_200])


def starts_and_deadlines(schedule: PriceSchedule) -> st.SearchStrategy[tuple[datetime, datetime]]:
    """A start inside the schedule (maybe within a second) and a deadline a second or more on."""
    span = int((schedule.valid_until - T0).total_seconds())
    return st.tuples(
        st.integers(0, span * 1000), st.integers(1, span + 2), st.integers(0, 999)
    ).map(
        lambda t: (
            T0 + timedelta(milliseconds=t[0]),
            T0 + timedelta(seconds=t[0] // 1000 + t[1], milliseconds=t[2]),
        )
    )


def every_plan(plan: ChargePlan) -> list[tuple[int, ...]]:
    """Every way of charging whole seconds in the plan's slots."""
    return list(itertools.product(*(range(s.end_s - s.start_s + 1) for s in plan.slots)))


def cost_units(plan: ChargePlan, charge: tuple[int, ...]) -> int:
    return sum(
        c * plan.power_w * s.energy_msat_per_kwh for c, s in zip(charge, plan.slots, strict=True)
    )


def charged(plan: ChargePlan) -> tuple[int, ...]:
    return tuple(s.charge_s for s in plan.slots)


def limit_at(plan: ChargePlan, second: int) -> int:
    return [p.limit_w for p in plan.periods if p.start_s <= second][-1]


settings_ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings_
@given(data=st.data(), schedule=schedules(), power_w=powers, energy_wh=st.integers(0, 20))
def test_a_plan_for_an_energy_is_within_power_before_the_deadline_and_cheapest(
    data: st.DataObject, schedule: PriceSchedule, power_w: int, energy_wh: int
) -> None:
    now, deadline = data.draw(starts_and_deadlines(schedule))
    plan = plan_cheap(schedule, now, deadline, power_w, energy_wh=energy_wh)
    assert all(0 <= p.limit_w <= power_w for p in plan.periods)
    assert plan.start + timedelta(seconds=plan.duration_s) <= deadline
    capacity_ws = plan.duration_s * power_w
    assert plan.fits == (capacity_ws >= energy_wh * 3600)
    if not plan.fits:
        assert plan.periods == (SchedulePeriod(0, power_w),)
        return
    # the schedule the charger gets charges exactly the planned seconds of each slot
    for slot in plan.slots:
        at_power = [limit_at(plan, s) for s in range(slot.start_s, slot.end_s)]
        assert at_power.count(power_w) == slot.charge_s
        assert at_power[: slot.charge_s] == [power_w] * slot.charge_s
    assert sum(charged(plan)) * power_w >= energy_wh * 3600
    cheapest = min(
        cost_units(plan, c) for c in every_plan(plan) if sum(c) * power_w >= energy_wh * 3600
    )
    assert cost_units(plan, charged(plan)) == cheapest


@settings_
@given(data=st.data(), schedule=schedules(), power_w=powers, budget=st.integers(0, 3_000))
def test_a_plan_for_a_budget_buys_the_most_energy_the_budget_pays_for(
    data: st.DataObject, schedule: PriceSchedule, power_w: int, budget: int
) -> None:
    now, deadline = data.draw(starts_and_deadlines(schedule))
    plan = plan_cheap(schedule, now, deadline, power_w, budget_msat=budget)
    assert all(0 <= p.limit_w <= power_w for p in plan.periods)
    affordable = [c for c in every_plan(plan) if cost_units(plan, c) <= budget * MSAT_UNITS]
    most = max(sum(c) for c in affordable)
    if not plan.fits:  # the budget buys more than the slots hold: full power from now
        assert most == plan.duration_s
        return
    assert cost_units(plan, charged(plan)) <= budget * MSAT_UNITS
    assert sum(charged(plan)) == most


def test_the_cheap_night_is_chosen_and_the_dear_evening_skipped() -> None:
    evening = PriceInterval(T0, T0 + timedelta(hours=2), 400_000)
    night = PriceInterval(evening.end, evening.end + timedelta(hours=3), 100_000)
    morning = PriceInterval(night.end, night.end + timedelta(hours=3), 300_000)
    schedule = PriceSchedule((evening, night, morning), "tou:profile", T0)
    now = T0 + timedelta(minutes=30, microseconds=5)
    plan = plan_cheap(schedule, now, night.end + timedelta(hours=1), 11_000, energy_wh=22_000)
    assert plan.fits
    assert [(p.start_s, p.limit_w) for p in plan.periods] == [
        (0, 0),
        (5_400, 11_000),  # the night from its start (90 min from now), two hours at 11 kW
        (5_400 + 7_200, 0),
    ]
    assert plan.energy_wh == 22_000
    assert plan.cost_msat == 22_000 * 100_000 // 1000
    assert plan.charging_hours() == [(night.start, night.start + timedelta(hours=2), 100_000)]


def test_energy_that_does_not_fit_charges_at_full_power_from_now() -> None:
    schedule = PriceSchedule.flat(200_000, T0, 4)
    plan = plan_cheap(schedule, T0, T0 + timedelta(hours=1), 7_400, energy_wh=40_000)
    assert not plan.fits
    assert [(p.start_s, p.limit_w) for p in plan.periods] == [(0, 7_400)]


def test_past_the_schedule_its_last_price_holds() -> None:
    schedule = PriceSchedule(
        (PriceInterval(T0, T0 + timedelta(hours=1), 100_000),), "awattar:DE-LU", T0
    )
    plan = plan_cheap(schedule, T0, T0 + timedelta(hours=3), 1_000, energy_wh=500)
    assert [(s.end_s, s.energy_msat_per_kwh, s.charge_s) for s in plan.slots] == [
        (3 * 3600, 100_000, 1_800)
    ]


@pytest.mark.parametrize(
    ("deadline", "power", "energy", "budget"),
    [
        (T0, 1_000, 1, None),
        (T0 + timedelta(hours=1), 0, 1, None),
        (T0 + timedelta(hours=1), 1_000, None, None),
        (T0 + timedelta(hours=1), 1_000, -1, None),
    ],
)
def test_a_plan_that_cannot_be_made_is_refused(
    deadline: datetime, power: int, energy: int | None, budget: int | None
) -> None:
    schedule = PriceSchedule.flat(200_000, T0, 4)
    with pytest.raises(ValueError, match=r"deadline|power|energy"):
        plan_cheap(schedule, T0, deadline, power, energy_wh=energy, budget_msat=budget)
