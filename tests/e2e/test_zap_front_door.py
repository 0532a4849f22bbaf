"""Zaps through the front door: a NIP-57 zap request pays for a session, once.

The wallet side is played like a nostr client: it reads ``allowsNostr``/``nostrPubkey`` from the
charger's lightning address, signs a kind-9734 request with its own key and sends it in the
callback's ``nostr`` parameter. Strom must commit the invoice to that exact request, start the
session for the zapper, publish a receipt, and refuse reuse and forgeries without storing
anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from typing import Any

from sqlalchemy import func, select

from strom_lightning import decode_invoice
from strom_nostr.event import sign_event
from strom_nostr.keys import public_key_hex
from strom_storage.schema import outbox, payments, sessions
from tests.e2e.conftest import CHARGER, Stack

ZAPPER = bytes.fromhex("7f" * 32)


def zap_request(charger_pubkey: str, amount_msat: int, **overrides: Any) -> str:
    tags = [
        ["p", overrides.get("p", charger_pubkey)],
        ["amount", str(overrides.get("amount", amount_msat))],
        ["relays", "ws://127.0.0.1:1"],
        *overrides.get("extra", []),
    ]
    event = sign_event(overrides.get("key", ZAPPER), 9734, tags, "for the charge", int(time.time()))
    return event.to_json()


async def counts(stack: Stack) -> tuple[int, int]:
    async with stack.strom.db.reader() as conn:
        n_sessions = await conn.scalar(select(func.count()).select_from(sessions))
        n_payments = await conn.scalar(select(func.count()).select_from(payments))
    return int(n_sessions or 0), int(n_payments or 0)


async def test_a_zap_pays_for_a_session_of_the_zapper_and_gets_a_receipt(stack: Stack) -> None:
    address = await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}")
    assert address["allowsNostr"] is True
    pubkey = address["nostrPubkey"]
    assert pubkey == stack.strom.agents.pubkey(CHARGER)
    request = zap_request(pubkey, 2_000_000)
    answer = await stack.get(address["callback"], amount="2000000", nostr=request)
    assert "pr" in answer, answer
    invoice = decode_invoice(answer["pr"])
    assert invoice.description_hash == hashlib.sha256(request.encode()).hexdigest()
    await stack.wallet.pay(answer["pr"])
    async with stack.strom.db.reader() as conn:
        row = (await conn.execute(select(sessions))).one()
    assert row.initiator == "zap"
    assert row.initiator_pubkey == public_key_hex(ZAPPER)
    for _ in range(200):
        session = await stack.strom.sessions.get(row.id)
        if session.state.value == "charging":
            break
        await asyncio.sleep(0.05)
    assert session.state.value == "charging"
    async with stack.strom.db.reader() as conn:
        receipt_rows = (
            await conn.execute(select(outbox).where(outbox.c.kind == "zap_receipt"))
        ).all()
    assert len(receipt_rows) == 1
    assert receipt_rows[0].payload["zap_request"]["description"] == request
    # The same zap request cannot open a second session.
    again = await stack.get(address["callback"], amount="2000000", nostr=request)
    assert again["status"] == "ERROR"
    # A new zap from the same person while charging tops up their own session.
    await asyncio.sleep(1)  # a new created_at, so a new event
    top_up = await stack.get(
        address["callback"], amount="1000000", nostr=zap_request(pubkey, 1_000_000)
    )
    assert "pr" in top_up, top_up
    await stack.wallet.pay(top_up["pr"])
    for _ in range(200):
        if (await stack.strom.sessions.get(row.id)).paid_msat == 3_000_000:
            break
        await asyncio.sleep(0.05)
    assert (await stack.strom.sessions.get(row.id)).paid_msat == 3_000_000
    # Anyone else's zap is refused while the connector is busy.
    stranger = sign_event(
        bytes.fromhex("3c" * 32),
        9734,
        [["p", pubkey], ["amount", "1000000"], ["relays", "ws://127.0.0.1:1"]],
        "",
        int(time.time()),
    ).to_json()
    refused = await stack.get(address["callback"], amount="1000000", nostr=stranger)
    assert refused["status"] == "ERROR"
    await stack.ledgers_balance()


async def test_forged_or_mismatched_zap_requests_are_refused_and_store_nothing(
    stack: Stack,
) -> None:
    address = await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}")
    pubkey = address["nostrPubkey"]
    callback = address["callback"]
    good = zap_request(pubkey, 2_000_000)
    tampered = json.loads(good)
    tampered["content"] = "changed after signing"
    bad_cases = {
        "amount differs from the query": zap_request(pubkey, 2_000_000, amount=1_000_000),
        "another recipient": zap_request(pubkey, 2_000_000, p="ab" * 32),
        "tampered content": json.dumps(tampered),
        "not json": "{not json",
        "random bytes": os.urandom(16).hex(),
    }
    before = await counts(stack)
    for name, request in bad_cases.items():
        answer = await stack.get(callback, amount="2000000", nostr=request)
        assert answer["status"] == "ERROR", name
        assert answer["reason"], name
    assert await counts(stack) == before


async def test_a_zap_of_the_listing_a_map_client_shows_gets_an_invoice(stack: Stack) -> None:
    """A map or marketplace client zaps the charger's NIP-99 listing it shows (kind 30402):
    the request names the listing's coordinate, and it pays for a session like a zap of the
    status event. Another charger's listing is refused."""
    address = await stack.get(f"{stack.base}/.well-known/lnurlp/{CHARGER}")
    pubkey = address["nostrPubkey"]
    other = zap_request(pubkey, 2_000_000, extra=[["a", f"30402:{pubkey}:another-charger"]])
    refused = await stack.get(address["callback"], amount="2000000", nostr=other)
    assert refused["status"] == "ERROR"
    assert "listing" in refused["reason"]
    listing = zap_request(pubkey, 2_000_000, extra=[["a", f"30402:{pubkey}:{CHARGER}"]])
    answer = await stack.get(address["callback"], amount="2000000", nostr=listing)
    assert "pr" in answer, answer
