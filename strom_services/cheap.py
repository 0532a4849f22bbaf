"""Charge when cheap: a driver's deadline becomes a plan, the plan a charging profile.

Theory of operation
-------------------
:meth:`CheapCharging.plan` takes a charging session's deadline (and, optionally, the energy the
driver wants), plans the session's power into the cheapest seconds before it at the session's
frozen price schedule (:func:`strom_core.charge_plan.plan_cheap`) and sends the plan to the
charger as a schedule of the running transaction (:meth:`PowerLimits.plan_session`). The
energy planned is what the driver asked for, at most what the remaining budget buys: the
budget less the time price up to the deadline, spent at each slot's price (a post-paid session
has no budget; it needs the energy).

Only a plan the charger ACCEPTED is kept (``charge_plans``) and shown; anything else changes
nothing. The budget stop stays as it is: the plan never draws more than the session's power,
and the stop already plans one meter interval at that power and the highest price ahead, so a
plan can only make the session reach its budget later, never overrun it.

A charger whose OCPP version carries no power limits in Strom (2.0.1 today), or a 1.6 charger
that reported its ``SupportedFeatureProfiles`` without SmartCharging, is not offered the option
(:meth:`CheapCharging.offered`); a 1.6 charger that never said answers the profile with
NotSupported or NotImplemented, and the driver is told it was refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Final

from strom_core.charge_plan import ChargePlan, plan_cheap
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.ports import CommandResult
from strom_core.ports.power import PowerLimits
from strom_core.session import Session, State
from strom_core.units import time_cost_msat
from strom_storage.charge_plans import plan_of, save_plan
from strom_storage.ocpp import reference_of
from strom_storage.sessions import SessionStore

__all__ = ["MAX_AHEAD", "CheapCharging", "PlanInvalid", "PlanRefused", "Planned"]

log = logging.getLogger(__name__)

MAX_AHEAD: Final = timedelta(hours=24)  # a deadline further ahead than a day is refused


class PlanRefused(Exception):
    """The session cannot be planned (the reason is for the driver); nothing was sent."""


class PlanInvalid(PlanRefused):
    """The deadline or the energy cannot be planned; nothing was sent."""


@dataclass(frozen=True, slots=True)
class Planned:
    """What became of a plan: the charger's answer and the plan it was sent."""

    result: CommandResult
    plan: ChargePlan


class CheapCharging:
    """Plans sessions into their cheapest hours and sends the plans.

    Args:
        store: the sessions.
        limits: the chargers' power limits.
        offered: whether a charger's live OCPP version carries power limits.
        clock: the time.
    """

    def __init__(
        self,
        store: SessionStore,
        limits: PowerLimits,
        offered: Callable[[str], bool] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.limits = limits
        self._offered = offered
        self.clock = clock

    def offered(self, session: Session) -> bool:
        """Whether the page offers the option: a charging session, a schedule, smart charging."""
        if session.state is not State.CHARGING or session.schedule is None:
            return False
        return self._offered is None or self._offered(session.charger_id)

    async def plan_in_force(self, session_id: str) -> ChargePlan | None:
        """The plan the charger accepted last for the session, if any."""
        return await self.store.db.read(partial(plan_of, session_id=session_id))

    async def plan(
        self, session_id: str, deadline: datetime, energy_wh: int | None = None
    ) -> Planned:
        """Plan the session up to ``deadline`` and send the plan.

        Raises:
            PlanRefused: the session is not charging on a dynamic tariff at a charger with
                smart charging, or the deadline or energy cannot be planned.
            SessionNotFound: no such session.
        """
        session = await self.store.get(session_id)
        if session.schedule is None:
            raise PlanRefused("this session has a fixed price: there are no cheaper hours")
        if not self.offered(session):
            if session.state is not State.CHARGING:
                raise PlanRefused("the session is not charging")
            raise PlanRefused("this charger cannot follow a charging plan (no smart charging)")
        now = self.clock.now()
        if not now < deadline <= now + MAX_AHEAD:
            raise PlanInvalid("the time must be in the next 24 hours")
        budget = None
        if not session.postpaid:
            minutes_s = int((deadline - now).total_seconds())
            budget = max(
                0,
                session.refundable_msat
                - time_cost_msat(minutes_s, session.tariff.time_msat_per_minute),
            )
        elif energy_wh is None:
            raise PlanInvalid("say how much energy you want")
        try:
            plan = plan_cheap(
                session.schedule,
                now,
                deadline,
                session.power_w,
                energy_wh=energy_wh,
                budget_msat=budget,
            )
        except ValueError as exc:
            raise PlanInvalid(str(exc)) from None
        assert session.transaction_id is not None
        transaction = await self.store.db.read(
            partial(reference_of, charger_id=session.charger_id, number=session.transaction_id)
        )
        result = await self.limits.plan_session(
            session.charger_id,
            session.connector_id,
            transaction,
            plan.start,
            plan.duration_s,
            plan.periods,
        )
        log.info(
            "session %s cp_id=%s: plan to %s, %s Wh (fits %s): %s %s",
            session_id,
            session.charger_id,
            deadline.isoformat(),
            plan.energy_wh,
            plan.fits,
            result.status,
            result.detail,
        )
        if result.accepted:
            await self.store.db.write(
                partial(save_plan, session_id=session_id, plan=plan, at=self.clock.now())
            )
        return Planned(result, plan)
