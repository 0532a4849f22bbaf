"""A week of synthetic, finished sessions written through the storage layer, for the reports.

Each day of the week has a different number of sessions, each with a settled payment, a paid
refund (with a routing fee) and the energy it delivered, so that every day's totals differ;
the charger's connector goes through available, charging and faulted, and the charger drops
its connection once. The numbers are plain functions of the day and the session, so a test
can say what every total must be.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update

from strom_core.session import new_session
from strom_core.tariff import Tariff
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.schema import ledger_intervals, payments, refunds, sessions
from strom_storage.sessions import SessionStore

TARIFF = Tariff(energy_msat_per_kwh=250_000)


@dataclass
class Week:
    """What was written: its first UTC midnight and each day's expected totals."""

    start: datetime
    days: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)


def midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def write_week(db: Database, charger_id: str, start: datetime) -> Week:
    """Sessions on each of the seven UTC days from ``start`` (a midnight) on ``charger_id``."""
    store = SessionStore(db)
    chargers = ChargerStore(db)
    week = Week(start=start)
    for day in range(7):
        label = (start + timedelta(days=day)).date().isoformat()
        totals = week.days[label] = {
            "sessions": 0,
            "energy_wh": 0,
            "received_msat": 0,
            "refunded_msat": 0,
            "refund_fees_msat": 0,
        }
        for n in range(1 + day % 3):
            begin = start + timedelta(days=day, hours=8 + 3 * n)
            session_id = f"wk{day}{n}"
            session = new_session(
                session_id=session_id,
                charger_id=charger_id,
                connector_id=1,
                id_tag=f"WK{day}{n}",
                tariff=TARIFF,
                power_w=11_000,
                meter_interval_s=60,
                start_timeout_s=90,
            )
            await store.create(session, secret="x" * 32, initiator="lnurl", now=begin)
            paid = 5_000_000 + 1_000_000 * day + 250_000 * n
            energy = 4_000 + 1_500 * day + 700 * n
            used = energy * TARIFF.energy_msat_per_kwh // 1000
            refunded = paid - used
            fee = 1_000 * (n + 1)
            stopped = begin + timedelta(hours=1)
            async with db.transaction() as conn:
                await conn.execute(
                    insert(payments).values(
                        payment_hash=f"{day:032x}{n:032x}",
                        session_id=session_id,
                        kind="initial",
                        amount_msat=paid,
                        bolt11="lnbc1",
                        state="settled",
                        created_at=begin,
                        expires_at=begin + timedelta(minutes=10),
                        settled_at=begin,
                    )
                )
                await conn.execute(
                    update(sessions)
                    .where(sessions.c.id == session_id)
                    .values(
                        state="refunded",
                        energy_wh=energy,
                        started_at=begin,
                        stopped_at=stopped,
                        updated_at=stopped,
                    )
                )
                await conn.execute(
                    insert(refunds).values(
                        id=f"r-{session_id}",
                        session_id=session_id,
                        k1_hash=f"{day:032x}{n:031x}f",
                        state="paid",
                        amount_msat=refunded,
                        fee_msat=fee,
                        detail="",
                        created_at=stopped,
                        expires_at=stopped + timedelta(days=7),
                        updated_at=stopped,
                    )
                )
            await chargers.set_status(charger_id, 1, "Charging", "NoError", begin)
            await chargers.set_status(charger_id, 1, "Available", "NoError", stopped)
            totals["sessions"] += 1
            totals["energy_wh"] += energy
            totals["received_msat"] += paid
            totals["refunded_msat"] += refunded
            totals["refund_fees_msat"] += fee
    # A fault on day 2 and the charger's connection lost on day 4 for two hours.
    await chargers.set_status(
        charger_id, 1, "Faulted", "GroundFailure", start + timedelta(days=2, hours=20)
    )
    await chargers.set_status(
        charger_id, 1, "Available", "NoError", start + timedelta(days=2, hours=23)
    )
    await chargers.set_online(charger_id, False, start + timedelta(days=4, hours=2))
    await chargers.set_online(charger_id, True, start + timedelta(days=4, hours=4))
    return week


# One day of sessions billed by a schedule: (session, hour, Wh, msat per kWh billed). The
# 09:00 hour holds two sessions, one of them paid under an older price (400 sat/kWh).
SOLD = (
    ("sd-a", 8, 3_000, 450_000),
    ("sd-a", 9, 2_500, 450_000),
    ("sd-c", 9, 1_000, 400_000),
    ("sd-b", 21, 1_200, 450_000),
    ("sd-b", 22, 4_000, 250_000),
)


async def write_sold_day(db: Database, charger_id: str, day: datetime) -> None:
    """Sessions on ``charger_id`` whose billed intervals (``ledger_intervals``) are :data:`SOLD`."""
    store = SessionStore(db)
    for session_id in sorted({entry[0] for entry in SOLD}):
        session = new_session(
            session_id=session_id,
            charger_id=charger_id,
            connector_id=1,
            id_tag=session_id.upper(),
            tariff=TARIFF,
            power_w=11_000,
            meter_interval_s=60,
            start_timeout_s=90,
        )
        await store.create(session, secret="x" * 32, initiator="lnurl", now=day)
    async with db.transaction() as conn:
        await conn.execute(
            insert(ledger_intervals),
            [
                {
                    "session_id": session_id,
                    "natural_key": f"{session_id}:interval:{hour}",
                    "interval_start": day + timedelta(hours=hour),
                    "interval_end": day + timedelta(hours=hour + 1),
                    "energy_wh": wh,
                    "energy_msat_per_kwh": price,
                    "cost_msat": wh * price // 1000,
                    "source": "tou:profile",
                    "fetched_at": day,
                    "rate_source": "",
                    "created_at": day + timedelta(hours=hour + 1),
                }
                for session_id, hour, wh, price in SOLD
            ],
        )
