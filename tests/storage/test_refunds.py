"""The refunds repository on SQLite and PostgreSQL: offers claimed once, invoices paid once."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest

from strom_storage.db import Connection, Database
from strom_storage.refunds import (
    InvoiceAlreadySubmitted,
    RefundStore,
    claim_refund,
    set_refund_state,
)
from tests.storage.test_session_store import T0, make


async def _store(db: Database) -> RefundStore:
    await make(db)
    refunds = RefundStore(db)
    await refunds.add_offer("r1", "s1", "1" * 64, now=T0, expires_at=T0 + timedelta(minutes=10))
    await refunds.add_offer("r2", "s1", "2" * 64, now=T0, expires_at=T0 + timedelta(minutes=20))
    return refunds


def _claim(conn: Connection, refund_id: str) -> bool:
    return claim_refund(
        conn, refund_id, amount_msat=5_000, bolt11="a", payment_hash="h" * 64, now=T0
    )


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

    def claim_twice(conn: Connection) -> None:
        claim = partial(
            claim_refund, conn, amount_msat=5_000, bolt11="lnbc1", payment_hash="h" * 64, now=T0
        )
        assert claim("r1")
        assert not claim("r1")

    await db.write(claim_twice)
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
    await db.write(partial(_claim, refund_id="r1"))
    with pytest.raises(InvoiceAlreadySubmitted):
        await db.write(partial(_claim, refund_id="r2"))
    second = await refunds.get("r2")
    assert second is not None
    assert second.state == "offered"


async def test_paying_is_taken_once_and_the_outcome_recorded(db: Database) -> None:
    refunds = await _store(db)
    assert not await refunds.take("r1", T0)  # only a claimed refund is taken
    await db.write(partial(_claim, refund_id="r1"))
    assert await refunds.take("r1", T0)
    assert not await refunds.take("r1", T0)
    await refunds.mark("r1", "unknown", now=T0, detail="timeout")
    await db.write(lambda conn: set_refund_state(conn, "r1", "paid", now=T0, fee_msat=12))
    paid = await refunds.get("r1")
    assert paid is not None
    assert paid.state == "paid"
