"""Invoices opened at the same time are committed together, and each only once committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

import strom_services.payments
from strom_storage.schema import payments, sessions
from tests.e2e.conftest import CHARGER, Stack


async def open_many(stack: Stack, count: int) -> list[Any]:
    profile = next(p for p in stack.strom.config.profiles if p.id == CHARGER)
    return await asyncio.gather(
        *(
            stack.strom.payments.open_session(
                profile, 1, 1_000_000, description_hash=bytes(32), initiator="lnurl"
            )
            for _ in range(count)
        ),
        return_exceptions=True,
    )


async def count_rows(stack: Stack, table: Any) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_concurrent_invoices_share_transactions_and_all_are_stored(stack: Stack) -> None:
    db = stack.strom.db
    real_write = db.write
    transactions = 0

    async def counting(work: Callable[[Connection], Any], **kwargs: Any) -> Any:
        nonlocal transactions
        transactions += 1
        return await real_write(work, **kwargs)

    db.write = counting  # type: ignore[method-assign]
    try:
        opened = await open_many(stack, 30)
    finally:
        db.write = real_write  # type: ignore[method-assign]
    assert all(not isinstance(o, BaseException) for o in opened), opened
    assert len({o.session_id for o in opened}) == 30
    assert transactions < 30  # grouped: fewer commits than invoices
    async with db.reader() as conn:
        stored = set(
            await conn.scalars(
                select(payments.c.payment_hash).where(
                    payments.c.session_id.in_([o.session_id for o in opened])
                )
            )
        )
    assert stored == {o.invoice.payment_hash for o in opened}  # every invoice has its row


async def test_a_failed_group_fails_every_caller_in_it_and_stores_none(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = (await count_rows(stack, sessions), await count_rows(stack, payments))

    def broken(conn: Connection, rows: list[dict[str, Any]]) -> None:
        raise OSError("disk I/O error")

    # The group's transaction writes the new sessions with this function (one hop).
    monkeypatch.setattr(strom_services.payments, "insert_sessions", broken)
    outcomes = await open_many(stack, 10)
    assert all(isinstance(o, OSError) for o in outcomes)  # nobody got an invoice to pay
    assert (await count_rows(stack, sessions), await count_rows(stack, payments)) == before
    monkeypatch.undo()
    later = await open_many(stack, 3)  # the committer recovers for the next callers
    assert all(not isinstance(o, BaseException) for o in later), later
