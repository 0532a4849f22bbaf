"""The whole story on PostgreSQL, as production runs it: pay, charge, stop, refund.

The storage contract tests run every repository on PostgreSQL; this runs Strom itself on a
fresh PostgreSQL database (its own, dropped afterwards), so the composition — migrations at
start, the one-hop transactions on psycopg threads, the async engine beside them — is proven
together, not only piece by piece.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_pay_charge_refund import claim_refund

PG_URL = os.environ.get("STROM_TEST_DATABASE_URL", "")

pytestmark = pytest.mark.postgres


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """The URL of a new, empty database on the test server (dropped afterwards)."""
    if not PG_URL:
        pytest.skip("PostgreSQL run needs STROM_TEST_DATABASE_URL (set by .ci/run)")
    name = f"strom_e2e_{secrets.token_hex(4)}"
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.dispose()


async def test_pay_charge_stop_and_refund_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    env = {"STROM_STORAGE__DATABASE_URL": f'"{postgres_url}"'}
    async with running_stack(tmp_path, env=env) as stack:
        assert stack.strom.db.dialect == "postgresql"
        await _pay_charge_refund(stack)


async def _pay_charge_refund(stack: Stack) -> None:
    status_url, _ = await stack.pay(2_000_000)
    charging = await stack.wait_state(status_url, "charging")
    while charging["energy_wh"] < 300:
        await asyncio.sleep(0.1)
        charging = await stack.get(status_url)
    offer, before = await claim_refund(stack, status_url)
    final = await stack.wait_state(status_url, "refunded")
    assert final["paid_msat"] == final["consumed_msat"] + final["refunded_msat"]
    assert final["refunded_msat"] == offer["maxWithdrawable"]
    assert await stack.wallet.received_msat() - before == final["refunded_msat"]
    await stack.ledgers_balance()
