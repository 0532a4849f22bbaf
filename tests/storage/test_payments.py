"""The payments repository on SQLite and PostgreSQL: pending → settled, expired or flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strom_storage.db import Database
from strom_storage.payments import PaymentStore, ZapRequestAlreadyUsed, new_payment_row
from tests.storage.test_session_store import T0, make


def _row(payment_hash: str, kind: str = "initial", zap: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    return new_payment_row(
        session_id="s1",
        kind=kind,
        payment_hash=payment_hash,
        amount_msat=21_000,
        bolt11=f"lnbc-{payment_hash}",
        expires_at=T0 + timedelta(minutes=10),
        zap_request=zap,
        now=T0,
    )


async def _store(db: Database) -> PaymentStore:
    await make(db)
    payments = PaymentStore(db)
    async with db.transaction() as tx:
        await payments.insert(tx, [_row("a" * 64), _row("b" * 64, "topup", {"id": "z"})])
    return payments


async def test_a_stored_payment_reads_back_pending(db: Database) -> None:
    payments = await _store(db)
    row = await payments.get("b" * 64)
    assert row is not None
    assert (row.session_id, row.kind, row.amount_msat, row.state) == (
        "s1",
        "topup",
        21_000,
        "pending",
    )
    assert row.zap_request == {"id": "z"}
    assert await payments.get("c" * 64) is None
    assert sorted(await payments.pending_hashes()) == ["a" * 64, "b" * 64]


async def test_settling_records_what_was_received_once(db: Database) -> None:
    payments = await _store(db)
    async with db.transaction() as tx:
        locked = await payments.lock(tx, "a" * 64)
        assert locked is not None
        assert locked.state == "pending"
        await payments.mark_settled(tx, "a" * 64, 30_000, T0)
    settled = await payments.get("a" * 64)
    assert settled is not None
    assert (settled.state, settled.amount_msat) == ("settled", 30_000)
    assert await payments.pending_hashes() == ["b" * 64]
    async with db.transaction() as tx:
        assert await payments.lock(tx, "f" * 64) is None


async def test_a_flagged_payment_is_no_longer_pending(db: Database) -> None:
    payments = await _store(db)
    async with db.transaction() as tx:
        await payments.flag(tx, "a" * 64)
    flagged = await payments.get("a" * 64)
    assert flagged is not None
    assert flagged.state == "flagged"
    assert await payments.pending_hashes() == ["b" * 64]


async def test_only_a_pending_payment_expires(db: Database) -> None:
    payments = await _store(db)
    assert await payments.pending_expired_before(T0) == []
    due = await payments.pending_expired_before(T0 + timedelta(minutes=11))
    assert sorted(due) == ["a" * 64, "b" * 64]
    async with db.transaction() as tx:
        expired = await payments.expire(tx, "a" * 64)
        assert expired is not None
        assert (expired.session_id, expired.kind) == ("s1", "initial")
        assert await payments.expire(tx, "a" * 64) is None  # expired already
        await payments.mark_settled(tx, "b" * 64, 21_000, T0)
        assert await payments.expire(tx, "b" * 64) is None  # settled: never expires
    assert await payments.pending_expired_before(T0 + timedelta(hours=1)) == []


async def test_a_zap_request_is_used_once_and_the_transaction_goes_on(db: Database) -> None:
    payments = await _store(db)
    async with db.transaction() as tx:
        await payments.mark_zap_request_used(tx, "e" * 64, "p" * 64, T0)
    async with db.transaction() as tx:
        with pytest.raises(ZapRequestAlreadyUsed):
            await payments.mark_zap_request_used(tx, "e" * 64, None, T0)
        await payments.flag(tx, "a" * 64)  # the caller's transaction is still usable
    flagged = await payments.get("a" * 64)
    assert flagged is not None
    assert flagged.state == "flagged"
