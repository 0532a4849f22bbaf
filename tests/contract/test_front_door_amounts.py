"""The front door over every backend: an amount the backend cannot invoice is a LUD error.

LNbits counts whole sats, so it cannot make an invoice for 21.5 sat; the fake and LND can.
Whatever the backend, a wallet gets either an invoice for exactly the amount it asked for or
``{"status": "ERROR", "reason": …}`` that says why, and nothing is stored - never an HTTP 500.
Strom runs whole (real HTTP, a simulated charger over OCPP) on the backend under test.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from strom_core.units import format_sat
from strom_lightning import Invoice, decode_invoice
from strom_storage.schema import payments, sessions
from tests.contract.harness import Harness
from tests.e2e.conftest import Stack, running_stack


def whole_sats_only(amount_msat: int) -> str:
    return (
        f"this lightning node (LNbits) makes invoices for whole sats only, and {amount_msat} msat "
        f"is {format_sat(amount_msat)}: send a whole number of sats; nothing was charged"
    )


class HarnessWallet:
    """The driver's side of the harness, as the stack's wallet."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness

    async def pay(self, bolt11: str) -> object:
        await self.harness.driver_pay(bolt11)
        return None

    async def create_invoice(self, amount_msat: int, *, memo: str = "refund") -> Invoice:
        decoded = decode_invoice(await self.harness.refund_invoice(amount_msat))
        assert decoded.amount_msat is not None
        return Invoice(
            decoded.bolt11, decoded.payment_hash, decoded.amount_msat, decoded.expires_at
        )

    async def received_msat(self) -> int:
        raise NotImplementedError("not needed here")


async def counts(stack: Stack) -> tuple[int, int]:
    async with stack.strom.db.reader() as conn:
        made = await conn.scalar(select(func.count()).select_from(sessions))
        asked = await conn.scalar(select(func.count()).select_from(payments))
    return int(made or 0), int(asked or 0)


async def test_a_sub_sat_amount_is_invoiced_exactly_or_refused_with_a_lud_error(
    harness: Harness, tmp_path: Path
) -> None:
    wallet = HarnessWallet(harness)
    async with running_stack(tmp_path, wallet=wallet, backend=harness.backend) as stack:
        offer = await stack.get(stack.pay_url)
        amount = int(offer["minSendable"]) + 500  # a whole sat plus half a sat
        opened = await stack.get(str(offer["callback"]), amount=str(amount + 500))
        page = str(opened["successAction"]["url"])
        topup = await stack.get(page.replace("?", "/topup?", 1))
        before = await counts(stack)

        answers = [
            await stack.get(str(offer["callback"]), amount=str(amount)),
            await stack.get(str(topup["callback"]), amount="1500"),
        ]

        if harness.whole_sats_only:
            assert answers == [
                {"status": "ERROR", "reason": whole_sats_only(amount)},
                {"status": "ERROR", "reason": whole_sats_only(1500)},
            ]
            assert await counts(stack) == before  # nothing stored
        else:
            assert [decode_invoice(a["pr"]).amount_msat for a in answers] == [amount, 1500]
            assert await counts(stack) == (before[0] + 1, before[1] + 2)
