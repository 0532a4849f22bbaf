"""The payments repository on SQLite and PostgreSQL: pending → settled, expired or flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strom_storage.db import Connection, Database
from strom_storage.payments import (
    PaymentStore,
    ZapRequestAlreadyUsed,
    expire_payment,
    flag_payment,
    insert_payments,
    load_payment,
    new_payment_row,
    record_zap_request,
    settle_payment,
)
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
    rows = [_row("a" * 64), _row("b" * 64, "topup", {"id": "z"})]
    await db.write(lambda conn: insert_payments(conn, rows))
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

    def settle(conn: Connection) -> None:
        locked = load_payment(conn, "a" * 64, lock=True)
        assert locked is not None
        assert locked.state == "pending"
        settle_payment(conn, "a" * 64, 30_000, T0)

    await db.write(settle)
    settled = await payments.get("a" * 64)
    assert settled is not None
    assert (settled.state, settled.amount_msat) == ("settled", 30_000)
    assert await payments.pending_hashes() == ["b" * 64]
    assert await db.write(lambda conn: load_payment(conn, "f" * 64, lock=True)) is None


async def test_a_flagged_payment_is_no_longer_pending(db: Database) -> None:
    payments = await _store(db)
    await db.write(lambda conn: flag_payment(conn, "a" * 64))
    flagged = await payments.get("a" * 64)
    assert flagged is not None
    assert flagged.state == "flagged"
    assert await payments.pending_hashes() == ["b" * 64]


async def test_only_a_pending_payment_expires(db: Database) -> None:
    payments = await _store(db)
    assert await payments.pending_expired_before(T0) == []
    due = await payments.pending_expired_before(T0 + timedelta(minutes=11))
    assert sorted(due) == ["a" * 64, "b" * 64]

    def expire(conn: Connection) -> None:
        expired = expire_payment(conn, "a" * 64)
        assert expired is not None
        assert (expired.session_id, expired.kind) == ("s1", "initial")
        assert expire_payment(conn, "a" * 64) is None  # expired already
        settle_payment(conn, "b" * 64, 21_000, T0)
        assert expire_payment(conn, "b" * 64) is None  # settled: never expires

    await db.write(expire)
    assert await payments.pending_expired_before(T0 + timedelta(hours=1)) == []


async def test_a_zap_request_is_used_once_and_the_transaction_goes_on(db: Database) -> None:
    payments = await _store(db)
    await db.write(lambda conn: record_zap_request(conn, "e" * 64, "p" * 64, T0))

    def use_again(conn: Connection) -> None:
        with pytest.raises(ZapRequestAlreadyUsed):
            record_zap_request(conn, "e" * 64, None, T0)
        flag_payment(conn, "a" * 64)  # the caller's transaction is still usable

    await db.write(use_again)
    flagged = await payments.get("a" * 64)
    assert flagged is not None
    assert flagged.state == "flagged"
