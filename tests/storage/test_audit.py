"""The audit log on SQLite and PostgreSQL: an entry commits with its change, or not at all."""

from __future__ import annotations

from functools import partial

import pytest

from strom_storage import audit
from strom_storage.db import Connection, Database
from tests.storage.test_session_store import T0


async def test_an_entry_is_written_in_the_callers_transaction(db: Database) -> None:
    async with db.transaction() as tx:
        await audit.record(
            tx,
            actor="charger:cp1",
            action="transaction_lost",
            target="s" * 120,
            detail={"billed_wh": 5},
            now=T0,
        )
        await audit.record(tx, actor="cli", action="other", target="", detail={}, now=T0)
    async with db.reader() as tx:
        [entry] = await audit.entries(tx, "transaction_lost")
        assert len(await audit.entries(tx)) == 2
    assert (entry.actor, entry.target, entry.detail) == ("charger:cp1", "s" * 100, {"billed_wh": 5})
    assert entry.at == T0


async def test_an_entry_of_a_rolled_back_change_is_not_kept(db: Database) -> None:
    async def failing_change() -> None:
        async with db.transaction() as tx:
            await audit.record(tx, actor="cli", action="x", target="", detail={}, now=T0)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await failing_change()
    async with db.reader() as tx:
        assert await audit.entries(tx) == []


async def test_a_one_hop_change_writes_its_entry_and_a_failing_one_keeps_none(db: Database) -> None:
    def change(conn: Connection, *, fail: bool) -> None:
        audit.record_in(conn, actor="cli", action="x", target="cp1", detail={}, now=T0)
        if fail:
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await db.write(partial(change, fail=True))
    assert await db.read(audit.entries_in) == []
    await db.write(partial(change, fail=False))
    [entry] = await db.read(partial(audit.entries_in, action="x"))
    assert (entry.actor, entry.target, entry.at) == ("cli", "cp1", T0)
