"""A session's "charge when cheap" plan, as its charger accepted it (one row per session).

Written only after the charger ACCEPTED the plan (:mod:`strom_services.cheap`); a newer
accepted plan replaces the row. The session page reads it to show when the car charges.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from strom_core.charge_plan import ChargePlan, PlannedSlot
from strom_storage.schema import charge_plans

__all__ = ["plan_of", "save_plan"]


def save_plan(conn: Connection, session_id: str, plan: ChargePlan, at: datetime) -> None:
    """Keep ``plan`` as the session's plan in force (replacing an older one)."""
    conn.execute(delete(charge_plans).where(charge_plans.c.session_id == session_id))
    conn.execute(
        insert(charge_plans).values(
            session_id=session_id,
            start=plan.start,
            deadline=plan.deadline,
            power_w=plan.power_w,
            fits=plan.fits,
            slots=[[s.start_s, s.end_s, s.energy_msat_per_kwh, s.charge_s] for s in plan.slots],
            planned_at=at,
        )
    )


def plan_of(conn: Connection, session_id: str) -> ChargePlan | None:
    """The session's plan in force, or None when the charger accepted none."""
    row = (
        conn.execute(select(charge_plans).where(charge_plans.c.session_id == session_id))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return ChargePlan(
        start=row["start"],
        deadline=row["deadline"],
        power_w=int(row["power_w"]),
        slots=tuple(PlannedSlot(*(int(v) for v in slot)) for slot in row["slots"]),
        fits=bool(row["fits"]),
    )
