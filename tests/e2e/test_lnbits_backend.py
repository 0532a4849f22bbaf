"""The happy path with a real LNbits (FakeWallet) as Strom's lightning backend.

The driver's wallet is a second wallet of the same LNbits, so the driver's payment and
Strom's refund are real LNbits payments (FakeWallet settles what its own process issued).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from strom_lightning import Invoice, decode_invoice
from tests.e2e.conftest import running_stack
from tests.e2e.test_pay_charge_refund import claim_refund
from tests.peers.lnbits import LNbitsPeer, LNbitsWallet

pytestmark = pytest.mark.peer


class LNbitsDriver:
    """A driver's wallet on LNbits, used only over LNbits's REST API."""

    def __init__(self, peer: LNbitsPeer, wallet: LNbitsWallet) -> None:
        self.peer = peer
        self.wallet = wallet

    async def _post(self, key: str, body: dict[str, object]) -> dict[str, object]:
        async with httpx.AsyncClient(base_url=self.peer.url, timeout=30) as client:
            response = await client.post("/api/v1/payments", json=body, headers={"X-Api-Key": key})
        assert response.status_code < 300, response.text
        data: dict[str, object] = response.json()
        return data

    async def pay(self, bolt11: str) -> object:
        return await self._post(self.wallet.adminkey, {"out": True, "bolt11": bolt11})

    async def create_invoice(self, amount_msat: int, *, memo: str = "refund") -> Invoice:
        assert amount_msat % 1000 == 0, "LNbits invoices are whole sats"
        body = {"out": False, "amount": amount_msat // 1000, "memo": memo}
        data = await self._post(self.wallet.inkey, body)
        bolt11 = str(data.get("bolt11") or data.get("payment_request"))
        decoded = decode_invoice(bolt11)
        assert decoded.amount_msat is not None
        return Invoice(bolt11, decoded.payment_hash, decoded.amount_msat, decoded.expires_at)

    async def received_msat(self) -> int:
        return self.peer.balance_msat(self.wallet)


async def test_pay_charge_stop_and_refund_with_lnbits(
    tmp_path: Path, lnbits_peer: LNbitsPeer
) -> None:
    assert lnbits_peer.strom is not None
    assert lnbits_peer.driver is not None
    env = {
        "STROM_LIGHTNING__BACKEND": '"lnbits"',
        "STROM_LIGHTNING__NETWORK": '"bc"',  # LNbits's FakeWallet makes mainnet invoices
        "STROM_LIGHTNING__URL": f'"{lnbits_peer.url}"',
        "STROM_LIGHTNING__INVOICE_KEY": f'"{lnbits_peer.strom.inkey}"',
        "STROM_LIGHTNING__ADMIN_KEY": f'"{lnbits_peer.strom.adminkey}"',
    }
    driver = LNbitsDriver(lnbits_peer, lnbits_peer.driver)
    strom_before = lnbits_peer.balance_msat(lnbits_peer.strom)
    async with running_stack(tmp_path, env, driver) as stack:
        assert stack.strom.backend.name == "lnbits"
        status_url, _ = await stack.pay(2_000_000)
        await stack.wait_state(status_url, "charging")
        status = await stack.get(status_url)
        while status["energy_wh"] < 300:
            await asyncio.sleep(0.1)
            status = await stack.get(status_url)
        _offer, before = await claim_refund(stack, status_url)
        final = await stack.wait_state(status_url, "refunded", within_s=30)
        assert final["paid_msat"] == 2_000_000
        assert final["paid_msat"] == final["consumed_msat"] + final["refunded_msat"]
        assert await driver.received_msat() - before == final["refunded_msat"]
        strom_gain = lnbits_peer.balance_msat(lnbits_peer.strom) - strom_before
        assert strom_gain == final["consumed_msat"] - final["refund_fee_msat"]
        await stack.ledgers_balance()
