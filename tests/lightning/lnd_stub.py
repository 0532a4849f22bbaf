"""A stand-in for LND's REST interface, on 127.0.0.1 with TLS, for the tests.

No real LND can run here, so this aiohttp server replays LND's response shapes: every body it
sends is built from the recorded exchanges in ``tests/fixtures/lnd/*.json`` with the values of
the moment filled in (hashes, amounts, indexes). It behaves like LND where Strom depends on it:

* it checks the ``Grpc-Metadata-macaroon`` header and answers a wrong one like LND (HTTP 500,
  "verification failed");
* streams (``/v1/invoices/subscribe``, ``/v2/router/send``) send their HTTP headers only with
  their first message, as LND's gateway does; ``settle_index`` replays settlements;
* ``/v2/router/send`` answers 409 for a hash already paid or in flight; ``track`` answers 404
  "payment isn't initiated" for a hash never sent.

Test controls (plain methods, the "rest of the network"): :meth:`LndStub.settle` is a driver
paying Strom's invoice; :meth:`LndStub.remote_invoice` is a driver's wallet making a refund
invoice; :meth:`LndStub.script` makes the next payment ``fail``, ``drop`` (connection closed
before any answer, payment left in flight), ``hang`` (held until :meth:`LndStub.resolve`) or
``error500``; :meth:`LndStub.drop_subscribers` cuts open invoice streams mid-way;
``refuse_subscriptions`` makes new ones fail. :meth:`LndStub.stop` and
:meth:`LndStub.start` (on the same port) take it off the network and back with its state;
:meth:`LndStub.restart` with another certificate is LND renewing its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import json
import secrets
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from strom_core.bolt11 import decode_invoice
from strom_lightning._mint import mint_invoice, node_pubkey

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "lnd"


def fixture(name: str) -> dict[str, Any]:
    """One recorded exchange from ``tests/fixtures/lnd``."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


_DROP = object()


@dataclass
class _Payment:
    payment_hash: str
    bolt11: str
    amount_msat: int
    status: str = "IN_FLIGHT"
    fee_msat: int = 0
    preimage: str = "0" * 64
    failure_reason: str = "FAILURE_REASON_NONE"
    attempts: int = 1
    index: int = 0
    resolved: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _RemoteInvoice:
    bolt11: str
    preimage: str
    amount_msat: int
    paid: bool = False


class LndStub:
    """See the module docstring."""

    def __init__(self, *, macaroon: bytes, cert: Path, key: Path, network: str = "bcrt") -> None:
        self.macaroon_hex = macaroon.hex()
        self.network = network
        self.node_key = secrets.token_hex(32)
        self.remote_key = secrets.token_hex(32)
        self.route_fee_msat = 12
        self.refuse_subscriptions = False
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._cert, self._key = cert, key
        self._invoices: dict[str, dict[str, Any]] = {}
        self._remote: dict[str, _RemoteInvoice] = {}
        self._payments: dict[str, _Payment] = {}
        self._script: list[str] = []
        self._add_index = 0
        self._settle_index = 0
        self._subscribers: set[asyncio.Queue[Any]] = set()
        self._subscribed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1 (a free port, or ``port``); returns the URL."""
        app = web.Application()
        app.middlewares.append(self._auth)
        app.router.add_get("/v1/getinfo", self._getinfo)
        app.router.add_post("/v1/invoices", self._add_invoice)
        app.router.add_get("/v1/invoice/{r_hash_str}", self._lookup_invoice)
        app.router.add_get("/v1/invoices/subscribe", self._subscribe)
        app.router.add_post("/v2/router/send", self._send)
        app.router.add_get("/v2/router/track/{payment_hash}", self._track)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self._cert, self._key)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=context)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        port = server.sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        await self.drop_subscribers()
        for payment in self._payments.values():
            payment.resolved.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    async def restart(self, *, cert: Path | None = None, key: Path | None = None) -> None:
        """Come back on the same port with every invoice and payment kept, as LND does after
        a restart; with ``cert``/``key`` it presents a new certificate (LND renewed it)."""
        await self.stop()
        if cert is not None and key is not None:
            self._cert, self._key = cert, key
        await self.start(self.port)

    # --- the rest of the network (test controls) -------------------------------------------

    def settle(self, bolt11: str) -> bool:
        """A driver pays one of Strom's invoices; False if it cannot be paid."""
        payment_hash = decode_invoice(bolt11).payment_hash
        invoice = self._invoices.get(payment_hash)
        if invoice is None or invoice["state"] != "OPEN":
            return False
        self._settle_index += 1
        now = str(int(time.time()))
        invoice.update(
            state="SETTLED",
            settled=True,
            settle_date=now,
            settle_index=str(self._settle_index),
            amt_paid=invoice["value_msat"],
            amt_paid_sat=str(int(invoice["value_msat"]) // 1000),
            amt_paid_msat=invoice["value_msat"],
        )
        self._publish(invoice)
        return True

    def remote_invoice(self, amount_msat: int, *, expiry_s: int = 3600) -> str:
        """A driver's wallet makes an invoice (for a refund) that this node can reach."""
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        bolt11 = mint_invoice(
            private_key_hex=self.remote_key,
            network=self.network,
            amount_msat=amount_msat,
            payment_hash=payment_hash,
            payment_secret=secrets.token_hex(32),
            created_at=int(time.time()),
            expiry_s=expiry_s,
            memo="refund",
            description_hash=None,
        )
        self._remote[payment_hash] = _RemoteInvoice(bolt11, preimage.hex(), amount_msat)
        return bolt11

    def remote_paid(self, payment_hash: str) -> bool:
        remote = self._remote.get(payment_hash)
        return remote is not None and remote.paid

    def script(self, action: str) -> None:
        """``fail``, ``drop``, ``hang`` or ``error500`` for the next payment."""
        assert action in ("fail", "drop", "hang", "error500")
        self._script.append(action)

    def resolve(self, payment_hash: str, *, succeed: bool = True) -> None:
        """Finish a dropped or held payment."""
        payment = self._payments[payment_hash]
        if succeed:
            self._deliver(payment)
        else:
            payment.status = "FAILED"
            payment.failure_reason = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
        payment.resolved.set()

    async def wait_subscribed(self, count: int = 1) -> None:
        """Wait until ``count`` invoice subscriptions are open."""
        async with asyncio.timeout(10):
            while len(self._subscribers) < count:
                self._subscribed.clear()
                await self._subscribed.wait()

    async def drop_subscribers(self) -> None:
        """Cut every open invoice subscription mid-stream."""
        for queue in list(self._subscribers):
            queue.put_nowait(_DROP)
        await asyncio.sleep(0)

    # --- shapes ----------------------------------------------------------------------------

    def _invoice_json(self, **values: Any) -> dict[str, Any]:
        template: dict[str, Any] = copy.deepcopy(fixture("invoice_open")["response"]["body"])
        template.update(values)
        return template

    def _payment_json(self, payment: _Payment) -> dict[str, Any]:
        name = "router_send_succeeded" if payment.status != "FAILED" else "router_send_failed"
        template: dict[str, Any] = copy.deepcopy(fixture(name)["response"]["chunks"][0]["result"])
        template.update(
            payment_hash=payment.payment_hash,
            value=str(payment.amount_msat // 1000),
            value_sat=str(payment.amount_msat // 1000),
            value_msat=str(payment.amount_msat),
            payment_request=payment.bolt11,
            status=payment.status,
            payment_preimage=payment.preimage,
            fee_msat=str(payment.fee_msat),
            fee_sat=str(payment.fee_msat // 1000),
            payment_index=str(payment.index),
            failure_reason=payment.failure_reason,
        )
        attempt = template["htlcs"][0]
        attempt["status"] = payment.status
        attempt["preimage"] = (
            _b64(bytes.fromhex(payment.preimage)) if payment.status == "SUCCEEDED" else ""
        )
        template["htlcs"] = [attempt] * payment.attempts
        return template

    # --- handlers --------------------------------------------------------------------------

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        if request.headers.get("Grpc-Metadata-macaroon", "").lower() != self.macaroon_hex:
            refused = fixture("macaroon_refused")["response"]
            return web.json_response(refused["body"], status=refused["status"])
        response: web.StreamResponse = await handler(request)
        return response

    async def _getinfo(self, request: web.Request) -> web.Response:
        body = copy.deepcopy(fixture("getinfo")["response"]["body"])
        names = {"bc": "mainnet", "tb": "testnet", "tbs": "signet", "bcrt": "regtest"}
        body.update(
            identity_pubkey=node_pubkey(self.node_key),
            alias="lnd-stub",
            chains=[{"chain": "bitcoin", "network": names[self.network]}],
            testnet=self.network != "bc",
        )
        return web.json_response(body)

    async def _add_invoice(self, request: web.Request) -> web.Response:
        body = await request.json()
        assert isinstance(body["value_msat"], str), "LND takes int64 as strings"
        amount = int(body["value_msat"])
        expiry = int(body.get("expiry", "86400"))
        description_hash = (
            base64.b64decode(body["description_hash"]) if body.get("description_hash") else None
        )
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).digest()
        created = int(time.time())
        payment_addr = secrets.token_bytes(32)
        bolt11 = mint_invoice(
            private_key_hex=self.node_key,
            network=self.network,
            amount_msat=amount,
            payment_hash=payment_hash.hex(),
            payment_secret=payment_addr.hex(),
            created_at=created,
            expiry_s=expiry,
            memo=body.get("memo"),
            description_hash=description_hash,
        )
        self._add_index += 1
        invoice = self._invoice_json(
            memo=body.get("memo", ""),
            r_preimage=_b64(preimage),
            r_hash=_b64(payment_hash),
            value=str(amount // 1000),
            value_msat=str(amount),
            settled=False,
            creation_date=str(created),
            settle_date="0",
            payment_request=bolt11,
            description_hash=_b64(description_hash) if description_hash else "",
            expiry=str(expiry),
            add_index=str(self._add_index),
            settle_index="0",
            amt_paid="0",
            amt_paid_sat="0",
            amt_paid_msat="0",
            state="OPEN",
            payment_addr=_b64(payment_addr),
        )
        self._invoices[payment_hash.hex()] = invoice
        self._publish(invoice)
        response = copy.deepcopy(fixture("addinvoice")["response"]["body"])
        response.update(
            r_hash=_b64(payment_hash),
            payment_request=bolt11,
            add_index=str(self._add_index),
            payment_addr=_b64(payment_addr),
        )
        return web.json_response(response)

    async def _lookup_invoice(self, request: web.Request) -> web.Response:
        invoice = self._invoices.get(request.match_info["r_hash_str"])
        if invoice is None:
            missing = fixture("invoice_not_found")["response"]
            return web.json_response(missing["body"], status=missing["status"])
        return web.json_response(invoice)

    def _publish(self, invoice: dict[str, Any]) -> None:
        for queue in self._subscribers:
            queue.put_nowait(copy.deepcopy(invoice))

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if self.refuse_subscriptions:
            return web.json_response(
                {"code": 14, "message": "server is still starting", "details": []}, status=503
            )
        settle_index = int(request.query.get("settle_index", "0") or "0")
        if settle_index:
            replay = sorted(
                (i for i in self._invoices.values() if int(i["settle_index"]) > settle_index),
                key=lambda i: int(i["settle_index"]),
            )
            for invoice in replay:
                queue.put_nowait(copy.deepcopy(invoice))
        self._subscribers.add(queue)
        self._subscribed.set()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            while True:
                item = await queue.get()
                if item is _DROP:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if not response.prepared:  # headers go out with the first message, like LND
                    await response.prepare(request)
                await response.write(json.dumps({"result": item}).encode() + b"\n")
        finally:
            self._subscribers.discard(queue)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        assert isinstance(body["fee_limit_msat"], str), "LND takes int64 as strings"
        assert body["no_inflight_updates"] is True
        assert isinstance(body["timeout_seconds"], int)
        invoice = decode_invoice(body["payment_request"])
        payment_hash = invoice.payment_hash
        existing = self._payments.get(payment_hash)
        if existing is not None and existing.status != "FAILED":
            name = (
                "router_send_already_paid"
                if existing.status == "SUCCEEDED"
                else ("router_send_in_transition")
            )
            refused = fixture(name)["response"]
            return web.json_response(refused["body"], status=refused["status"])
        action = self._script.pop(0) if self._script else None
        if action == "error500":
            return web.json_response(
                {"error": {"code": 2, "message": "channel link not found", "details": []}},
                status=500,
            )
        payment = _Payment(payment_hash, invoice.bolt11, invoice.amount_msat or 0)
        payment.index = len(self._payments) + 1
        self._payments[payment_hash] = payment
        remote = self._remote.get(payment_hash)
        if remote is None or self.route_fee_msat > int(body["fee_limit_msat"]):
            payment.status, payment.failure_reason, payment.attempts = (
                "FAILED",
                "FAILURE_REASON_NO_ROUTE",
                0,
            )
        elif action == "fail":
            payment.status = "FAILED"
            payment.failure_reason = "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS"
        elif action == "drop":
            if request.transport is not None:
                request.transport.abort()  # before any answer: the client learns nothing
            return web.StreamResponse()
        elif action == "hang":
            await payment.resolved.wait()
        else:
            self._deliver(payment)
        return await self._one_chunk(request, {"result": self._payment_json(payment)})

    def _deliver(self, payment: _Payment) -> None:
        remote = self._remote[payment.payment_hash]
        remote.paid = True
        payment.status = "SUCCEEDED"
        payment.preimage = remote.preimage
        payment.fee_msat = self.route_fee_msat

    async def _one_chunk(self, request: web.Request, chunk: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if request.transport is None or request.transport.is_closing():
            return response  # the client hung up while the payment was held
        with contextlib.suppress(ConnectionResetError):
            await response.prepare(request)
            await response.write(json.dumps(chunk).encode() + b"\n")
            await response.write_eof()
        return response

    async def _track(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["payment_hash"]
        payment_hash = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
        payment = self._payments.get(payment_hash)
        if payment is None:
            missing = fixture("router_track_not_found")["response"]
            return web.json_response(missing["body"], status=missing["status"])
        # LND keeps the stream open until the payment is final; the client reads the first
        # update (the current state) and hangs up, so the stub sends just that one.
        return await self._one_chunk(request, {"result": self._payment_json(payment)})
