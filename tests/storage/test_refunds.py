"""The refunds repository on SQLite and PostgreSQL: offers claimed once, invoices paid once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from strom_storage.db import Database
from strom_storage.refunds import InvoiceAlreadySubmitted, RefundStore
from tests.storage.test_session_store import T0, make


async def _store(db: Database) -> RefundStore:
    await make(db)
    refunds = RefundStore(db)
    await refunds.add_offer("r1", "s1", "1" * 64, now=T0, expires_at=T0 + timedelta(minutes=10))
    await refunds.add_offer("r2", "s1", "2" * 64, now=T0, expires_at=T0 + timedelta(minutes=20))
    return refunds


async def test_the_latest_valid_offer_is_found(db: Database) -> None:
    refunds = await _store(db)
    latest = await refunds.latest_offer("s1", valid_after=T0)
    assert latest is not None
    assert (latest.id, latest.k1_hash) == ("r2", "2" * 64)
    assert await refunds.latest_offer("s1", valid_after=T0 + timedelta(minutes=20)) is None
    assert await refunds.latest_offer("other", valid_after=T0) is None


async def test_an_offer_is_found_by_its_k1_hash_within_its_session(db: Database) -> None:
    refunds = await _store(db)
    found = await refunds.find_offer("s1", "1" * 64)
    assert found is not None
    assert (found.id, found.state) == ("r1", "offered")
    assert found.expires_at == T0 + timedelta(minutes=10)
    assert await refunds.find_offer("other", "1" * 64) is None
    assert await refunds.get("nope") is None


async def test_an_offer_is_claimed_once(db: Database) -> None:
    refunds = await _store(db)
    async with db.transaction() as tx:
        claim = {"amount_msat": 5_000, "bolt11": "lnbc1", "payment_hash": "h" * 64, "now": T0}
        assert await refunds.claim(tx, "r1", **claim)
        assert not await refunds.claim(tx, "r1", **claim)
    claimed = await refunds.get("r1")
    assert claimed is not None
    assert (claimed.state, claimed.amount_msat, claimed.bolt11, claimed.payment_hash) == (
        "claimed",
        5_000,
        "lnbc1",
        "h" * 64,
    )


async def test_an_invoice_is_accepted_for_one_refund_only(db: Database) -> None:
    refunds = await _store(db)
    async with db.transaction() as tx:
        await refunds.claim(tx, "r1", amount_msat=5_000, bolt11="a", payment_hash="h" * 64, now=T0)
    with pytest.raises(InvoiceAlreadySubmitted):
        async with db.transaction() as tx:
            await refunds.claim(
                tx, "r2", amount_msat=5_000, bolt11="a", payment_hash="h" * 64, now=T0
            )
    second = await refunds.get("r2")
    assert second is not None
    assert second.state == "offered"


async def test_paying_is_taken_once_and_the_outcome_recorded(db: Database) -> None:
    refunds = await _store(db)
    assert not await refunds.take("r1", T0)  # only a claimed refund is taken
    async with db.transaction() as tx:
        await refunds.claim(tx, "r1", amount_msat=5_000, bolt11="a", payment_hash="h" * 64, now=T0)
    assert await refunds.take("r1", T0)
    assert not await refunds.take("r1", T0)
    await refunds.mark("r1", "unknown", now=T0, detail="timeout")
    async with db.transaction() as tx:
        await refunds.set_state(tx, "r1", "paid", now=T0, fee_msat=12)
    paid = await refunds.get("r1")
    assert paid is not None
    assert paid.state == "paid"
