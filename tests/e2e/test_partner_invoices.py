"""Settlement in bitcoin with an OCPI partner (strom-invoices), on the whole stack.

Strom runs with [ocpi] on, the simulated charger on a real websocket and the fake lightning
backend; the partner's receiver is a real aiohttp server on 127.0.0.1 that records what Strom
pushes; the partner pays with the driver wallet (real BOLT 11 invoices). The partner is
registered straight in the store (the credentials handshake has tests of its own).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from ocpi_server.protocol import authorization_header, token_candidates
from ocpi_server.server import token_hash
from strom_core.partner_invoices import InvoiceStatus
from strom_core.roaming import ReceivableState, RoamingToken, TokenType
from strom_core.session import State
from strom_core.session_events import StopReason
from strom_storage.ocpi import Credentials
from strom_storage.partner_invoices import PUSH_KIND, STREAM_PAID, session_invoices
from strom_storage.schema import ledger_entries, outbox
from tests.e2e.conftest import CHARGER, Stack, running_stack
from tests.waits import until

T0 = datetime(2026, 1, 1, tzinfo=UTC)
OCPI_ENV = {
    "STROM_OCPI__ENABLED": "true",
    "STROM_OCPI__COUNTRY_CODE": '"DE"',
    "STROM_OCPI__PARTY_ID": '"STR"',
    "STROM_OCPI__BUSINESS_NAME": '"Strom Test CPO"',
    "STROM_OCPI__INVOICE_CHECK_S": "0.1",
}


@dataclass
class Receiver:
    """The partner's strom-invoices RECEIVER: records every PUT and PATCH Strom sends."""

    token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    base: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/emsp/invoices/{cc}/{party}/{id}", self._invoice)
        return app

    async def _invoice(self, request: web.Request) -> web.Response:
        if self.token not in token_candidates(request.headers.get("Authorization")):
            return web.json_response({"status_code": 2000, "timestamp": "x"}, status=401)
        assert (request.match_info["cc"], request.match_info["party"]) == ("DE", "STR")
        self.calls.append((request.method, request.match_info["id"], await request.json()))
        return web.json_response({"status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"})

    def of(self, invoice_id: str, method: str | None = None) -> list[dict[str, Any]]:
        return [body for m, i, body in self.calls if i == invoice_id and method in (None, m)]


@dataclass
class Partner:
    id: str
    token: str  # the partner's token on Strom


async def partner(stack: Stack, receiver: Receiver | None, settlement: str) -> Partner:
    """A registered partner (with a strom-invoices receiver when given) and its token."""
    ocpi = stack.strom.ocpi
    assert ocpi is not None
    store = ocpi.partners.store
    now = stack.strom.clock.now()
    row = await store.create("Example eMSP", None, now)
    token = secrets.token_urlsafe(16)
    endpoints = []
    if receiver is not None:
        url = f"{receiver.base}/emsp/invoices"
        endpoints.append({"identifier": "strom-invoices", "role": "RECEIVER", "url": url})
    sealed = ocpi.partners.sealer.seal(
        f"ocpi-partner:{row.id}", receiver.token if receiver else "x"
    )
    creds = Credentials(
        token_hash=token_hash(token),
        their_token=sealed,
        versions_url="http://127.0.0.1:1/versions",
        version="2.2.1",
        endpoints=endpoints,
        roles=[{"role": "EMSP", "country_code": "NL", "party_id": "EMS"}],
    )
    assert await store.register(row.id, creds, now, states=("offered",))
    assert await store.set_flags(row.id, now, settlement=settlement, blocked=None)
    return Partner(str(row.id), token)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    runner = web.AppRunner(found.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    yield found
    await runner.cleanup()


async def pushes_done(stack: Stack) -> bool:
    query = select(outbox.c.id).where(outbox.c.kind == PUSH_KIND, outbox.c.state == "pending")
    return not await stack.strom.db.read(lambda c: c.execute(query).all())


async def get(stack: Stack, token: str | None, tail: str = "", **params: str) -> Any:
    headers = {} if token is None else {"Authorization": authorization_header(token)}
    url = f"{stack.base}/ocpi/2.2.1/strom-invoices{tail}"
    return await stack.http.get(url, params=params, headers=headers)


async def start(stack: Stack, who: Partner, reference: str) -> str:
    roaming = stack.strom.roaming
    assert roaming is not None
    app_user = RoamingToken(who.id, "app-user-1", TokenType.APP_USER, "NL-EMS-C1", T0)
    await roaming.upsert_token(app_user)
    session_id = await roaming.start_for_partner(who.id, app_user, CHARGER, 1, reference)

    async def charging() -> bool:
        return (await stack.strom.sessions.get(session_id)).state is State.CHARGING

    await until(charging, "the session charges", within_s=20)
    return session_id


async def closed(stack: Stack, session_id: str) -> None:
    async def done() -> bool:
        return (await stack.strom.sessions.get(session_id)).state is State.CLOSED

    await until(done, f"session {session_id} closed", within_s=30)


async def test_after_cdr_invoice_is_offered_pushed_paid_and_patched_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    async with running_stack(tmp_path, OCPI_ENV) as stack:
        who = await partner(stack, receiver, "after_cdr")
        stranger = await partner(stack, None, "after_cdr")
        session_id = await start(stack, who, "ref-cdr")
        await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")
        roaming = stack.strom.roaming
        assert roaming is not None
        await roaming.stop_for_partner(who.id, session_id)
        await closed(stack, session_id)
        await until(lambda: bool(receiver.of(session_id, "PUT")), "the invoice is pushed")
        pushed = receiver.of(session_id, "PUT")[0]
        receivable = await roaming.receivable_of(session_id)
        assert receivable is not None
        session = await stack.strom.sessions.get(session_id)
        assert pushed["kind"] == "CDR"
        assert pushed["amount_msat"] == receivable.amount_msat == session.postpaid_msat
        assert pushed["status"] == "OPEN"
        # The SENDER interface shows it to its partner only.
        listed = await get(stack, who.token)
        assert listed.status_code == 200
        assert [i["id"] for i in listed.json()["data"]] == [session_id]
        assert listed.headers["X-Total-Count"] == "1"
        one = (await get(stack, who.token, f"/{session_id}")).json()
        assert one["data"]["bolt11"] == pushed["bolt11"]
        assert (await get(stack, stranger.token)).json()["data"] == []
        hidden = await get(stack, stranger.token, f"/{session_id}")
        assert hidden.status_code == 404
        # Paid by the partner's wallet: the receivable is paid, the invoice PATCHed PAID once.
        await stack.wallet.pay(pushed["bolt11"])
        await until(lambda: bool(receiver.of(session_id, "PATCH")), "PAID is pushed")
        await until(lambda: pushes_done(stack), "every push ran")
        patches = receiver.of(session_id, "PATCH")
        assert [p["status"] for p in patches] == ["PAID"]
        assert "paid_at" in patches[0]
        paid = await roaming.receivable_of(session_id)
        assert paid is not None
        assert paid.state is ReceivableState.PAID
        assert not await stack.strom.payments.settle(pushed["payment_hash"])  # again: nothing
        assert (await get(stack, who.token, f"/{session_id}")).json()["data"]["status"] == "PAID"


async def test_an_expired_invoice_is_replaced_under_the_same_id(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = {**OCPI_ENV, "STROM_OCPI__INVOICE_EXPIRY_S": "3"}
    async with running_stack(tmp_path, env) as stack:
        who = await partner(stack, receiver, "after_cdr")
        session_id = await start(stack, who, "ref-exp")
        await until(lambda: stack.charger.connectors[1].meter_wh > 0, "energy flows")
        roaming = stack.strom.roaming
        assert roaming is not None
        await roaming.stop_for_partner(who.id, session_id)
        await closed(stack, session_id)
        await until(lambda: bool(receiver.of(session_id, "PUT")), "the invoice is pushed")
        first = receiver.of(session_id, "PUT")[0]
        # Its BOLT 11 expires unpaid (the expiry sweep's last step, called at once here).
        await until(
            lambda: stack.strom.clock.now().isoformat() > first["expires_at"].rstrip("Z"),
            "the invoice expired",
        )
        assert await stack.strom.payments.expire(first["payment_hash"])
        await until(lambda: len(receiver.of(session_id, "PUT")) == 2, "a replacement is pushed")
        second = receiver.of(session_id, "PUT")[1]
        assert [p["status"] for p in receiver.of(session_id, "PATCH")] == ["EXPIRED"]
        assert second["id"] == first["id"]
        assert second["bolt11"] != first["bolt11"]
        assert second["status"] == "OPEN"
        assert second["amount_msat"] == first["amount_msat"]
        await stack.wallet.pay(second["bolt11"])

        async def paid() -> bool:
            found = await roaming.receivable_of(session_id)
            return found is not None and found.state is ReceivableState.PAID

        await until(paid, "the replacement pays the receivable")


async def test_streaming_two_intervals_paid_the_third_not_stops_the_session(
    tmp_path: Path, receiver: Receiver
) -> None:
    env = {
        **OCPI_ENV,
        "STROM_OCPI__STREAM_INTERVAL_S": "1",
        "STROM_OCPI__STREAM_DUE_S": "3",
    }
    async with running_stack(tmp_path, env) as stack:
        who = await partner(stack, receiver, "streaming")
        session_id = await start(stack, who, "ref-stream")
        for seq in (1, 2):
            wanted = f"{session_id}-{seq}"
            await until(lambda w=wanted: bool(receiver.of(w, "PUT")), f"{wanted} pushed")  # type: ignore[misc]
            await stack.wallet.pay(receiver.of(wanted, "PUT")[0]["bolt11"])
        third = f"{session_id}-3"
        await until(lambda: bool(receiver.of(third, "PUT")), "the third interval is pushed")
        await closed(stack, session_id)  # stopped at the third's due time, unpaid
        session = await stack.strom.sessions.get(session_id)
        assert session.stop_reason == StopReason.INTERVAL_UNPAID
        invoices = await stack.strom.db.read(lambda c: session_invoices(c, session_id))
        by_seq = {i.seq: i for i in invoices}
        assert by_seq[1].status is by_seq[2].status is InvoiceStatus.PAID
        assert by_seq[3].status is InvoiceStatus.OPEN
        assert by_seq[3].stop_asked
        # The ledger: bill = the paid intervals + the receivable (the unpaid part).
        roaming = stack.strom.roaming
        assert roaming is not None
        receivable = await roaming.receivable_of(session_id)
        assert receivable is not None
        paid = by_seq[1].amount_msat + by_seq[2].amount_msat
        assert session.postpaid_msat == paid + receivable.amount_msat
        query = select(ledger_entries.c.kind, ledger_entries.c.amount_msat).where(
            ledger_entries.c.session_id == session_id
        )
        rows = await stack.strom.db.read(lambda c: c.execute(query).all())
        assert sorted(a for k, a in rows if k == STREAM_PAID) == sorted(
            [by_seq[1].amount_msat, by_seq[2].amount_msat]
        )
        assert [a for k, a in rows if k == "receivable"] == [session.postpaid_msat]
        # Billed once: one stop, and no interval is made after it.
        assert [i.seq for i in invoices if i.receivable_id is None] == sorted(by_seq)
        await stack.ledgers_balance()
        # The SENDER interface pages them, oldest first.
        first = await get(stack, who.token, limit="1")
        assert first.status_code == 200
        assert first.json()["data"][0]["id"] == f"{session_id}-1"
        assert int(first.headers["X-Total-Count"]) == len(invoices)
        assert 'rel="next"' in first.headers["Link"]
        assert "offset=1" in first.headers["Link"]


async def test_sender_refuses_strangers_and_bad_input(tmp_path: Path) -> None:
    async with running_stack(tmp_path, OCPI_ENV) as stack:
        who = await partner(stack, None, "after_cdr")
        missing = await get(stack, None)
        assert (missing.status_code, missing.json()["status_code"]) == (401, 2000)
        unknown = await get(stack, "not-a-token")
        assert (unknown.status_code, unknown.json()["status_code"]) == (401, 2000)
        bad = await get(stack, who.token, limit="many")
        assert bad.json()["status_code"] == 2001
        bad_date = await get(stack, who.token, date_from="yesterday")
        assert bad_date.json()["status_code"] == 2001
        assert (await get(stack, who.token, "/nope")).status_code == 404
        too_long = await get(stack, who.token, "/" + "x" * 40)
        assert too_long.json()["status_code"] == 2001
        details = await stack.http.get(
            f"{stack.base}/ocpi/2.2.1", headers={"Authorization": authorization_header(who.token)}
        )
        modules = {(e["identifier"], e["role"]) for e in details.json()["data"]["endpoints"]}
        assert ("strom-invoices", "SENDER") in modules
