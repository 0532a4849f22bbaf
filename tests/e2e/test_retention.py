"""The running service sweeps history, and a finished session keeps every money record."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from strom_storage.schema import (
    ledger_entries,
    meter_readings,
    nostr_events,
    payments,
    refunds,
    sessions,
)
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_pay_charge_refund import claim_refund


async def _count(stack: Stack, query: object) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(query) or 0)  # type: ignore[call-overload]


async def test_the_service_sweeps_old_claims_every_interval(tmp_path: Path) -> None:
    env = {"STROM_RETENTION__SWEEP_INTERVAL_S": "1"}
    async with running_stack(tmp_path, env) as stack:
        swept: asyncio.Queue[dict[str, int]] = asyncio.Queue()
        stack.strom.retention.on_sweep = swept.put_nowait
        old = datetime.now(UTC) - timedelta(days=3)
        async with stack.strom.db.transaction() as conn:
            await conn.execute(
                insert(nostr_events).values(
                    event_id=os.urandom(32).hex(), kind=4, pubkey="p" * 64, received_at=old
                )
            )
        async with asyncio.timeout(20):
            while (await swept.get()).get("nostr_events", 0) != 1:
                pass
        assert await _count(stack, select(func.count()).select_from(nostr_events)) == 0


async def test_a_refunded_session_loses_its_readings_years_later_but_no_money_record(
    stack: Stack,
) -> None:
    status_url, _ = await stack.pay(2_000_000)
    charging = await stack.wait_state(status_url, "charging")
    while charging["energy_wh"] < 300:
        await asyncio.sleep(0.1)
        charging = await stack.get(status_url)
    await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    money = [
        select(func.count()).select_from(table) for table in (sessions, payments, ledger_entries)
    ]
    money.append(select(func.count()).select_from(refunds).where(refunds.c.state == "paid"))
    before = [await _count(stack, query) for query in money]
    assert await _count(stack, select(func.count()).select_from(meter_readings)) > 0
    await stack.strom.retention.sweep(datetime.now(UTC) + timedelta(days=3 * 365))
    assert [await _count(stack, query) for query in money] == before
    assert await _count(stack, select(func.count()).select_from(meter_readings)) == 0
    assert await stack.get(status_url) == final  # the session page shows the same bill
    await stack.ledgers_balance()
