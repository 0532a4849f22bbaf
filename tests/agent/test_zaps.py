"""Zap receipts: the charger publishes its own, and a receipt alone never starts a session."""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import func, select

from agent.relays import Inbound
from strom_core.session import State
from strom_nostr.event import Event, sign_event
from strom_nostr.zap_receipt import verify_zap_receipt, zap_receipt
from strom_storage.schema import ledger_entries, payments
from tests.agent.conftest import World


def _receipt(world: World, description: str, bolt11: str, secret: bytes | None = None) -> Event:
    key = world.charger.key.secret if secret is None else secret
    return zap_receipt(key, description, bolt11_invoice=bolt11, paid_at=int(world.clock.unix()))


async def _payment_entries(world: World, session_id: str) -> int:
    async with world.db.reader() as conn:
        count = await conn.scalar(
            select(func.count()).where(
                ledger_entries.c.session_id == session_id, ledger_entries.c.kind == "payment"
            )
        )
    return int(count or 0)


async def _payment_state(world: World, payment_hash: str) -> str:
    async with world.db.reader() as conn:
        state = await conn.scalar(
            select(payments.c.state).where(payments.c.payment_hash == payment_hash)
        )
    return str(state)


async def test_a_settled_zap_gets_its_receipt_signed_by_the_charger(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    payment_hash = opened.invoice.payment_hash
    world.backend.mark_paid(payment_hash)
    assert await world.payments.settle(payment_hash)
    await world.runner.drain()  # the zap_receipt row and the "paid" DM

    published = await world.latest(9735)
    verified = verify_zap_receipt(published, own_pubkey=world.charger_pk)
    assert verified.payment_hash == payment_hash
    assert verified.request.sender == world.driver.pubkey
    assert published.tag_values("P") == [world.driver.pubkey]
    text, scheme = await world.driver.next_dm()
    assert "Payment of 20,000 sat received" in text
    assert scheme == "nip04"  # the driver has no DM inbox list

    again = await world.runtime.publish_zap_receipt(
        "cp-1", description, opened.invoice.bolt11, published.created_at
    )
    assert again.event_id == published.id  # publishing twice is the same event


async def test_receipt_first_then_backend_settles_once(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    payment_hash = opened.invoice.payment_hash
    world.backend.mark_paid(payment_hash)
    receipt = _receipt(world, description, opened.invoice.bolt11)
    await world.stranger.publish(receipt)  # e.g. another instance published it
    assert await world.outcome(receipt.id) == "settled"
    assert await _payment_state(world, payment_hash) == "settled"
    assert (await world.sessions.get(opened.session_id)).state is State.PAID
    assert not await world.payments.settle(payment_hash)  # the backend stream comes second
    assert await _payment_entries(world, opened.session_id) == 1


async def test_backend_first_then_receipt_changes_nothing(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    payment_hash = opened.invoice.payment_hash
    world.backend.mark_paid(payment_hash)
    assert await world.payments.settle(payment_hash)
    receipt = _receipt(world, description, opened.invoice.bolt11)
    await world.stranger.publish(receipt)
    assert await world.outcome(receipt.id) == "already-settled"
    assert await _payment_entries(world, opened.session_id) == 1


async def test_receipt_and_backend_together_settle_exactly_once(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    payment_hash = opened.invoice.payment_hash
    world.backend.mark_paid(payment_hash)
    receipt = _receipt(world, description, opened.invoice.bolt11)
    by_backend, _ = await asyncio.gather(
        world.payments.settle(payment_hash), world.stranger.publish(receipt)
    )
    by_receipt = await world.outcome(receipt.id)
    assert [by_backend, by_receipt == "settled"].count(True) == 1
    assert await _payment_entries(world, opened.session_id) == 1


async def test_a_duplicate_receipt_is_ignored(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    world.backend.mark_paid(opened.invoice.payment_hash)
    receipt = _receipt(world, description, opened.invoice.bolt11)
    await world.stranger.publish(receipt)
    assert await world.outcome(receipt.id) == "settled"
    world.charger.submit(Inbound(world.relay_url, receipt))  # a relay sends it again
    assert await world.outcome(receipt.id) == "replay"
    assert world.backend.lookups == 1
    assert await _payment_entries(world, opened.session_id) == 1


async def test_forged_and_unpaid_receipts_settle_nothing(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    payment_hash = opened.invoice.payment_hash
    bolt11 = opened.invoice.bolt11

    by_stranger = _receipt(world, description, bolt11, secret=world.stranger.secret)
    forged = sign_event(  # the charger as p, but signed by someone else
        world.stranger.secret, 9735, by_stranger.tags, "", by_stranger.created_at
    )
    await world.stranger.publish(forged)
    assert await world.outcome(forged.id) == "refused"

    other, _ = await world.open_zap_session(world.driver, connector=2)
    mismatched = sign_event(  # our key, but the invoice commits to another request
        world.charger.key.secret,
        9735,
        [(t[0], other.invoice.bolt11) if t[0] == "bolt11" else t for t in by_stranger.tags],
        "",
        by_stranger.created_at,
    )
    await world.stranger.publish(mismatched)
    assert await world.outcome(mismatched.id) == "refused"

    unpaid = _receipt(world, description, bolt11)  # genuine form, but nobody paid
    await world.stranger.publish(unpaid)
    assert await world.outcome(unpaid.id) == "unpaid"

    assert await _payment_state(world, payment_hash) == "pending"
    assert (await world.sessions.get(opened.session_id)).state is State.AWAITING_PAYMENT
    assert await _payment_entries(world, opened.session_id) == 0


async def test_a_receipt_for_an_invoice_strom_never_made_is_ignored(world: World) -> None:
    request = world.zap_request(world.driver, 5_000_000)
    invoice = await world.backend.create_invoice(
        5_000_000,
        description_hash=hashlib.sha256(request.to_json().encode()).digest(),
        expiry_s=600,
    )
    world.backend.mark_paid(invoice.payment_hash)
    receipt = _receipt(world, request.to_json(), invoice.bolt11)
    await world.stranger.publish(receipt)
    assert await world.outcome(receipt.id) == "foreign-invoice"


async def test_a_backend_outage_leaves_the_receipt_for_later(world: World) -> None:
    opened, description = await world.open_zap_session(world.driver)
    world.backend.mark_paid(opened.invoice.payment_hash)
    world.backend.unavailable = True
    receipt = _receipt(world, description, opened.invoice.bolt11)
    await world.stranger.publish(receipt)
    assert await world.outcome(receipt.id) == "backend-error"
    world.backend.unavailable = False
    world.charger.submit(Inbound(world.relay_url, receipt))  # sent again later
    assert await world.outcome(receipt.id) == "settled"
