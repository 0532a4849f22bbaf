"""Charge when cheap: a session's power planned into the cheapest intervals before a deadline.

Theory of operation
-------------------
A session on a dynamic tariff carries the price schedule frozen when the driver paid
(:mod:`strom_core.prices`). Given a deadline ("ready by 07:00"), :func:`plan_cheap` splits the
time from now to the deadline into *slots*: the parts of the schedule's intervals that fall
before the deadline (past the schedule's end its last price holds, as billing does). Every whole
second of a slot charges ``power_w`` watts or nothing, so every second delivers the same energy
and the cheapest plan is the one that charges the cheapest seconds: fill the cheapest slots
first (ties: the earlier one), each from its start, until

* the energy asked for is planned (``energy_wh``), or
* the budget is spent (``budget_msat``, at each slot's price: never plan more than the driver
  paid for), or
* every slot is full. The energy does not fit before the deadline: the plan is then to charge
  at full power from now (``fits`` is False, and the driver is told so).

The plan becomes a charging schedule (:attr:`ChargePlan.periods`): from each slot's start the
full power for the seconds it charges, then 0 W for the rest of the slot (OCPP 1.6 allows a 0 W
limit), merged where neighbours are equal; it lasts until the deadline
(:attr:`ChargePlan.duration_s`), after which the charger is back to the session's full power.

Times are whole seconds from the plan's start (``now`` without its fraction of a second); a
slot boundary that falls inside a second is taken at the next whole second, the deadline at the
previous one, so no planned second lies past the deadline. Energy and money are exact integers:
a second at ``power_w`` watts is ``power_w`` joules (W·s), and its cost at ``p`` msat/kWh is
``p * power_w / 3_600_000`` msat, compared without division.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from strom_core.billing import interval_index
from strom_core.ports.power import SchedulePeriod
from strom_core.prices import PriceSchedule

__all__ = ["ChargePlan", "PlannedSlot", "plan_cheap"]

_WS_PER_WH = 3_600  # W·s (joules) in one Wh
_UNITS_PER_MSAT = 3_600_000  # price (msat/kWh) x joules per msat


@dataclass(frozen=True, slots=True)
class PlannedSlot:
    """A part of one price interval before the deadline, and what the plan charges in it.

    Attributes:
        start_s: seconds from the plan's start (inclusive).
        end_s: seconds from the plan's start (exclusive).
        energy_msat_per_kwh: the price in force.
        charge_s: the seconds it charges at full power, from ``start_s`` (0: it waits).
    """

    start_s: int
    end_s: int
    energy_msat_per_kwh: int
    charge_s: int


@dataclass(frozen=True, slots=True)
class ChargePlan:
    """When a session charges before its deadline.

    Attributes:
        start: the plan's start (whole second, aware UTC); offsets count from it.
        deadline: when the driver wants the car ready.
        power_w: the session's power: what it charges at when it charges.
        slots: every slot before the deadline, in time order.
        fits: False when the energy could not be planned before the deadline; then the plan
            is to charge at full power from now, and ``slots`` say what that delivers.
    """

    start: datetime
    deadline: datetime
    power_w: int
    slots: tuple[PlannedSlot, ...]
    fits: bool

    @property
    def duration_s(self) -> int:
        """How long the schedule runs: up to the deadline."""
        return self.slots[-1].end_s

    @property
    def energy_wh(self) -> int:
        """The energy the plan delivers before the deadline, whole Wh (rounded down)."""
        return sum(slot.charge_s for slot in self.slots) * self.power_w // _WS_PER_WH

    @property
    def cost_msat(self) -> int:
        """The energy cost of the plan at the schedule's prices (rounded down)."""
        units = sum(s.charge_s * self.power_w * s.energy_msat_per_kwh for s in self.slots)
        return units // _UNITS_PER_MSAT

    @property
    def periods(self) -> tuple[SchedulePeriod, ...]:
        """The charging schedule: the limit (W) from each offset on, 0 W where it waits."""
        if not self.fits:
            return (SchedulePeriod(0, self.power_w),)
        periods: list[SchedulePeriod] = []
        for slot in self.slots:
            if slot.charge_s:
                periods.append(SchedulePeriod(slot.start_s, self.power_w))
            if slot.charge_s < slot.end_s - slot.start_s:
                periods.append(SchedulePeriod(slot.start_s + slot.charge_s, 0))
        merged: list[SchedulePeriod] = []
        for period in periods:
            if not merged or merged[-1].limit_w != period.limit_w:
                merged.append(period)
        return tuple(merged)

    def charging_hours(self) -> list[tuple[datetime, datetime, int]]:
        """When it charges: (from, until, price msat/kWh) per slot that charges, in time order."""
        return [
            (
                self.start + timedelta(seconds=slot.start_s),
                self.start + timedelta(seconds=slot.start_s + slot.charge_s),
                slot.energy_msat_per_kwh,
            )
            for slot in self.slots
            if slot.charge_s
        ]


def _slots(schedule: PriceSchedule, start: datetime, deadline_s: int) -> list[PlannedSlot]:
    """The schedule's intervals cut at the plan's start and its deadline, whole seconds."""
    bounds = {0, deadline_s}
    for interval in schedule.intervals:
        offset = math.ceil((interval.start - start).total_seconds())
        if 0 < offset < deadline_s:
            bounds.add(offset)
    edges = sorted(bounds)
    return [
        PlannedSlot(
            begin,
            end,
            schedule.intervals[
                interval_index(schedule, start + timedelta(seconds=begin))
            ].energy_msat_per_kwh,
            0,
        )
        for begin, end in itertools.pairwise(edges)
    ]


def _check(power_w: int, energy_wh: int | None, budget_msat: int | None) -> None:
    if power_w <= 0:
        raise ValueError(f"a plan needs a positive power, got {power_w} W")
    if energy_wh is None and budget_msat is None:
        raise ValueError("a plan needs an energy or a budget")
    if (energy_wh is not None and energy_wh < 0) or (budget_msat is not None and budget_msat < 0):
        raise ValueError("the energy and the budget of a plan must not be negative")


def _fill(
    slots: list[PlannedSlot], power_w: int, energy_wh: int | None, budget_msat: int | None
) -> tuple[list[int], bool]:
    """The seconds each slot charges, cheapest first; and whether the energy or budget ran out."""
    wanted_ws = None if energy_wh is None else energy_wh * _WS_PER_WH
    budget = None if budget_msat is None else budget_msat * _UNITS_PER_MSAT
    charge = [0] * len(slots)
    short = False  # a slot left partly empty: the energy, or the budget, ran out
    for index in sorted(range(len(slots)), key=lambda i: (slots[i].energy_msat_per_kwh, i)):
        slot = slots[index]
        length = slot.end_s - slot.start_s
        cost_per_s = slot.energy_msat_per_kwh * power_w
        seconds = length  # a slot at a price below 0 is filled whole
        if cost_per_s >= 0 and wanted_ws is not None:
            seconds = min(seconds, max(0, -(-wanted_ws // power_w)))
        if cost_per_s > 0 and budget is not None:
            seconds = min(seconds, budget // cost_per_s)
        charge[index] = seconds
        short = short or seconds < length
        if wanted_ws is not None:
            wanted_ws -= seconds * power_w
        if budget is not None:
            budget -= seconds * cost_per_s
    return charge, short or (wanted_ws is not None and wanted_ws <= 0)


def plan_cheap(
    schedule: PriceSchedule,
    now: datetime,
    deadline: datetime,
    power_w: int,
    *,
    energy_wh: int | None = None,
    budget_msat: int | None = None,
) -> ChargePlan:
    """Plan a session's charging into the cheapest seconds before ``deadline``.

    Args:
        schedule: the session's frozen price schedule.
        now: the plan starts here (its fraction of a second is dropped).
        deadline: the car should be ready by then.
        power_w: the session's power (the connector's, or the driver's lower one), > 0.
        energy_wh: the energy to plan (None: as much as the budget buys).
        budget_msat: the most the planned energy may cost (None: no bound).

    Returns:
        The plan; ``fits`` False (full power from now) when the energy asked for, or the
        budget, is more than the slots before the deadline take.

    Raises:
        ValueError: the deadline is not at least one whole second after ``now``, the power is
            not positive, neither an energy nor a budget is given, or one of them is negative.
    """
    _check(power_w, energy_wh, budget_msat)
    start = now.replace(microsecond=0)
    deadline_s = math.floor((deadline - start).total_seconds())
    if deadline_s < 1:
        raise ValueError(f"the deadline {deadline.isoformat()} is not after {start.isoformat()}")
    slots = _slots(schedule, start, deadline_s)
    charge, done = _fill(slots, power_w, energy_wh, budget_msat)
    planned = tuple(
        PlannedSlot(s.start_s, s.end_s, s.energy_msat_per_kwh, c)
        for s, c in zip(slots, charge, strict=True)
    )
    if not done:  # every slot full and energy (or budget) left: full power from now
        planned = tuple(
            PlannedSlot(s.start_s, s.end_s, s.energy_msat_per_kwh, s.end_s - s.start_s)
            for s in slots
        )
    return ChargePlan(start, deadline, power_w, planned, done)
