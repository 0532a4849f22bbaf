"""``strom backup`` while payments flow, ``strom restore`` into a new folder, and the restored
installation started: the ledger, sessions, payments, keys (same npubs) and profiles are those
of the original. The backup runs as its own process beside the running Strom, as an operator's
cron job would; on PostgreSQL it restores into a second, empty database.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url, select
from sqlalchemy.ext.asyncio import create_async_engine

from agent.identity import npub_of
from strom.app import Strom
from strom.config import load_config
from strom_core.session import check_ledger
from strom_storage.db import Database
from strom_storage.outbox import OutboxStore
from strom_storage.schema import ledger_entries, payments, sessions
from strom_storage.sessions import SessionStore
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.e2e.test_pay_charge_refund import claim_refund

STROM = Path(sys.executable).with_name("strom")
PASSPHRASE = "a long passphrase for the tests"
PG_URL = os.environ.get("STROM_TEST_DATABASE_URL", "")
TABLES = {"sessions": sessions, "ledger_entries": ledger_entries, "payments": payments}


async def _strom(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(STROM),
        *args,
        env={**os.environ, "STROM_BACKUP_PASSPHRASE": PASSPHRASE, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.reader() as conn:
        return {
            name: sorted(tuple(row) for row in await conn.execute(select(table)))
            for name, table in TABLES.items()
        }


async def _one_session(stack: Stack) -> None:
    status_url, _ = await stack.pay(1_500_000)
    charging = await stack.wait_state(status_url, "charging")
    while charging["energy_wh"] < 100:
        await asyncio.sleep(0.1)
        charging = await stack.get(status_url)
    await claim_refund(stack, status_url)
    await stack.wait_state(status_url, "refunded")


async def _quiet(stack: Stack, within_s: float = 60) -> None:
    outbox = OutboxStore(stack.strom.db)
    async with asyncio.timeout(within_s):
        while (await outbox.counts()).get("pending", 0):  # noqa: ASYNC110 - a DB read
            await asyncio.sleep(0.2)


@asynccontextmanager
async def _start_restored(folder: Path) -> AsyncIterator[Strom]:
    environ = {
        "STROM_SERVER__PORT": "0",
        "STROM_OCPP__PORT": "0",
        "STROM_OCPP__HOST": '"127.0.0.1"',
    }
    config = load_config(folder / "strom.toml", environ=environ)
    strom = await Strom.open(config)
    stop = asyncio.Event()
    server = asyncio.create_task(strom.serve(stop))
    try:
        await asyncio.wait_for(strom.ready.wait(), 20)
        yield strom
    finally:
        stop.set()
        await server


async def _backup_restore_and_compare(
    tmp_path: Path, env: dict[str, str], flowing_args: list[str], quiet_args: list[str]
) -> None:
    site, flowing, quiet = tmp_path / "site", tmp_path / "flowing", tmp_path / "quiet"
    async with running_stack(site, env=env) as stack:
        await _one_session(stack)
        during = asyncio.create_task(_one_session(stack))  # payments and meter values flow
        await asyncio.sleep(0.5)
        code, out, err = await _strom(
            "backup", "-c", str(site / "strom.toml"), str(tmp_path / "flowing.tar.gz"), env=env
        )
        assert code == 0, err
        assert "wrote" in out
        await during
        await _quiet(stack)  # the sessions' last timers (start timeouts) have run
        before_quiet = await _rows(stack.strom.db)
        code, _, err = await _strom(
            "backup", "-c", str(site / "strom.toml"), str(tmp_path / "quiet.tar.gz"), env=env
        )
        assert code == 0, err
        original = await _rows(stack.strom.db)
        assert original == before_quiet
        npub = npub_of(site / "data", CHARGER)
        profiles = load_config(site / "strom.toml", environ={}).profiles

    # The backup taken while payments flowed is one consistent moment of the original.
    code, out, err = await _strom(
        "restore", str(tmp_path / "flowing.tar.gz"), str(flowing), *flowing_args
    )
    assert code == 0, err
    flowing_config = load_config(flowing / "strom.toml", environ={})
    db = Database.from_url(flowing_config.storage.url())
    try:
        snapshot = await _rows(db)
        # the ledger only grows: what the snapshot holds is the original's, entry for entry
        assert set(snapshot["ledger_entries"]) <= set(original["ledger_entries"])
        assert {row[0] for row in snapshot["sessions"]} <= {row[0] for row in original["sessions"]}
        assert len(snapshot["sessions"]) >= 1
        store = SessionStore(db)
        for row in snapshot["sessions"]:
            check_ledger(await store.get(row[0]))
    finally:
        await db.close()

    # The backup of the quiet installation restores it exactly, and it starts.
    code, out, err = await _strom(
        "restore", str(tmp_path / "quiet.tar.gz"), str(quiet), *quiet_args
    )
    assert code == 0, err
    assert f"strom run -c {quiet / 'strom.toml'}" in out
    async with _start_restored(quiet) as strom:
        assert await _rows(strom.db) == original
        for row in original["sessions"]:
            check_ledger(await strom.sessions.get(row[0]))
        assert strom.config.profiles == profiles
    assert npub_of(quiet / "data", CHARGER) == npub
    assert (quiet / "data" / "keys" / f"{CHARGER}.key").stat().st_mode & 0o077 == 0


async def test_a_backup_taken_while_payments_flow_restores_and_starts(tmp_path: Path) -> None:
    await _backup_restore_and_compare(tmp_path, {}, [], [])


@pytest.fixture
async def three_databases() -> AsyncIterator[list[str]]:
    """New, empty databases on the test server: the original's and two to restore into."""
    if not PG_URL:
        pytest.skip("PostgreSQL run needs STROM_TEST_DATABASE_URL (set by .ci/run)")
    names = [f"strom_backup_{secrets.token_hex(4)}" for _ in range(3)]
    admin = create_async_engine(PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        for name in names:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    urls = [make_url(PG_URL).set(database=n).render_as_string(hide_password=False) for n in names]
    try:
        yield urls
    finally:
        async with admin.connect() as conn:
            for name in names:
                await conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.dispose()


@pytest.mark.postgres
async def test_a_postgresql_installation_is_backed_up_with_pg_dump_and_restores(
    tmp_path: Path, three_databases: list[str]
) -> None:
    original, flowing, quiet = three_databases
    await _backup_restore_and_compare(
        tmp_path,
        {"STROM_STORAGE__DATABASE_URL": f'"{original}"'},
        ["--database-url", flowing],
        ["--database-url", quiet],
    )
