"""One harness per backend: the backend under test plus "the rest of the network".

The contract suite only talks to :class:`Harness`, so the same tests run against the fake
(with its driver wallet), LND (the TLS stub replaying LND's shapes) and a real LNbits (a
driver wallet in the same LNbits, behind a proxy that can cut the line).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from strom_lightning import (
    FakeBackend,
    FakeDriverWallet,
    LightningBackend,
    LNbitsBackend,
    LndRestBackend,
)
from strom_lightning._mint import mint_invoice
from tests.contract.proxy import ChaosProxy
from tests.lightning.lnd_stub import LndStub
from tests.peers.lnbits import LNbitsPeer

# Short intervals keep the suite fast; the production defaults are 30 s and 5 s.
RECONCILE_EVERY_S = 1.0
FALLBACK_POLL_S = 0.3


def foreign_invoice(
    network: str, amount_msat: int, *, expiry_s: int = 3600, created_at: int | None = None
) -> str:
    """A valid invoice of a node nobody here can reach."""
    preimage = secrets.token_bytes(32)
    return mint_invoice(
        private_key_hex=secrets.token_hex(32),
        network=network,
        amount_msat=amount_msat,
        payment_hash=hashlib.sha256(preimage).hexdigest(),
        payment_secret=secrets.token_hex(32),
        created_at=created_at if created_at is not None else int(time.time()),
        expiry_s=expiry_s,
        memo="somewhere else",
        description_hash=None,
    )


class Harness(abc.ABC):
    name: str
    network: str
    backend: LightningBackend
    whole_sats_only = False

    @abc.abstractmethod
    async def driver_pay(self, bolt11: str) -> None:
        """A driver pays one of Strom's invoices (not through the backend under test)."""

    @abc.abstractmethod
    async def refund_invoice(self, amount_msat: int) -> str:
        """The driver's wallet makes an invoice the backend can pay."""

    @abc.abstractmethod
    async def driver_received(self, payment_hash: str) -> bool:
        """True once the driver's invoice is paid."""

    async def unpayable_invoice(self, amount_msat: int) -> str:
        """An invoice whose payment definitely fails."""
        return foreign_invoice(self.network, amount_msat)

    @abc.abstractmethod
    async def arm_unknown(self) -> None:
        """The next payment's outcome will not reach the backend (it ends ``Unknown``)."""

    @abc.abstractmethod
    async def resolve_unknown(self, payment_hash: str) -> None:
        """Let the payment left unknown complete."""

    @abc.abstractmethod
    def outage(self) -> contextlib.AbstractAsyncContextManager[None]:
        """The backend cannot reach its node inside the block; drivers can still pay."""

    @abc.abstractmethod
    async def restart(self) -> LightningBackend:
        """Close the backend and make a new one on the same node (a Strom restart)."""

    async def aclose(self) -> None:
        await self.backend.aclose()


class FakeHarness(Harness):
    name = "fake"
    network = "bcrt"

    backend: FakeBackend

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "fake-lightning.sqlite3"
        self.backend = self._make()
        self.driver = FakeDriverWallet(self.backend)

    def _make(self) -> FakeBackend:
        return FakeBackend(
            self._path,
            network="bcrt",
            poll_interval_s=0.05,
            reconcile_every_s=RECONCILE_EVERY_S,
            fallback_poll_s=FALLBACK_POLL_S,
        )

    async def driver_pay(self, bolt11: str) -> None:
        receipt = await self.driver.pay(bolt11)
        assert receipt.ok, str(receipt)

    async def refund_invoice(self, amount_msat: int) -> str:
        return (await self.driver.create_invoice(amount_msat)).bolt11

    async def driver_received(self, payment_hash: str) -> bool:
        return (await self.driver.invoice_status(payment_hash)).settled

    async def arm_unknown(self) -> None:
        await self.driver.unknown_next()

    async def resolve_unknown(self, payment_hash: str) -> None:
        await self.driver.resolve(payment_hash, succeed=True)

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        async with self.backend.outage():
            yield

    async def restart(self) -> LightningBackend:
        await self.backend.aclose()
        self.backend = self._make()
        self.driver = FakeDriverWallet(self.backend)
        return self.backend


class LndHarness(Harness):
    name = "lnd"
    network = "bcrt"

    def __init__(self, stub: LndStub, macaroon: bytes, cert_pem: str) -> None:
        self.stub = stub
        self._macaroon = macaroon
        self._cert_pem = cert_pem
        self.backend = self._make()

    def _make(self) -> LndRestBackend:
        return LndRestBackend(
            self.stub.url,
            macaroon=self._macaroon,
            cert_pem=self._cert_pem,
            network="bcrt",
            timeout_s=10.0,
            reconcile_every_s=RECONCILE_EVERY_S,
            fallback_poll_s=FALLBACK_POLL_S,
        )

    async def driver_pay(self, bolt11: str) -> None:
        assert self.stub.settle(bolt11)

    async def refund_invoice(self, amount_msat: int) -> str:
        return self.stub.remote_invoice(amount_msat)

    async def driver_received(self, payment_hash: str) -> bool:
        return self.stub.remote_paid(payment_hash)

    async def arm_unknown(self) -> None:
        self.stub.script("drop")

    async def resolve_unknown(self, payment_hash: str) -> None:
        self.stub.resolve(payment_hash, succeed=True)

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        self.stub.refuse_subscriptions = True
        await self.stub.drop_subscribers()
        try:
            yield
        finally:
            self.stub.refuse_subscriptions = False

    async def restart(self) -> LightningBackend:
        await self.backend.aclose()
        self.backend = self._make()
        return self.backend

    async def aclose(self) -> None:
        await self.backend.aclose()
        await self.stub.stop()


class LNbitsHarness(Harness):
    name = "lnbits"
    network = "bc"  # LNbits' FakeWallet mints lnbc invoices
    whole_sats_only = True

    def __init__(self, peer: LNbitsPeer, proxy: ChaosProxy) -> None:
        assert peer.strom is not None
        assert peer.driver is not None
        self.peer = peer
        self.proxy = proxy
        self._strom = peer.strom
        self._driver = peer.driver
        self._http = httpx.AsyncClient(base_url=peer.url, timeout=30.0)
        self.backend = self._make()

    def _make(self) -> LNbitsBackend:
        return LNbitsBackend(
            self.proxy.url,
            invoice_key=self._strom.inkey,
            admin_key=self._strom.adminkey,
            network="bc",
            timeout_s=10.0,
            reconcile_every_s=RECONCILE_EVERY_S,
            fallback_poll_s=FALLBACK_POLL_S,
            pay_poll_s=0.2,
        )

    async def driver_pay(self, bolt11: str) -> None:
        response = await self._http.post(
            "/api/v1/payments",
            json={"out": True, "bolt11": bolt11},
            headers={"X-Api-Key": self._driver.adminkey},
        )
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "success", response.text

    async def refund_invoice(self, amount_msat: int) -> str:
        assert amount_msat % 1000 == 0
        response = await self._http.post(
            "/api/v1/payments",
            json={"out": False, "amount": amount_msat // 1000, "memo": "refund"},
            headers={"X-Api-Key": self._driver.inkey},
        )
        assert response.status_code == 201, response.text
        bolt11: str = response.json()["bolt11"]
        return bolt11

    async def driver_received(self, payment_hash: str) -> bool:
        response = await self._http.get(
            f"/api/v1/payments/{payment_hash}", headers={"X-Api-Key": self._driver.inkey}
        )
        return response.status_code == 200 and response.json().get("paid") is True

    async def arm_unknown(self) -> None:
        self.proxy.drop_response_to(b"POST /api/v1/payments ")

    async def resolve_unknown(self, payment_hash: str) -> None:
        """Nothing to do: LNbits finished the payment; only its answer was lost."""
        assert self.proxy.dropped == 1, "the proxy did not cut the payment's answer"

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        async with self.proxy.outage():
            yield

    async def restart(self) -> LightningBackend:
        await self.backend.aclose()
        self.backend = self._make()
        return self.backend

    async def aclose(self) -> None:
        await self.backend.aclose()
        await self._http.aclose()
        await self.proxy.stop()
