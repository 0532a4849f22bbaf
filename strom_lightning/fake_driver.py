"""A simulated driver's wallet for the fake backend (demo and tests). NO REAL MONEY.

The driver wallet lives in the fake backend's database with its own node key. It

* pays Strom's invoices (:meth:`FakeDriverWallet.pay`) - in process, so Strom's settlement
  stream sees the payment at once;
* makes invoices for refunds (:meth:`FakeDriverWallet.create_invoice`) that the fake backend
  can pay, and reports what it received (:meth:`FakeDriverWallet.received`);
* can pay another amount than asked (:meth:`FakeDriverWallet.pay` with ``amount_msat``): an
  overpayment, or a report of less than the invoice that no real node would make;
* can be scripted, for the refunds it receives: fail, hang (the payer waits until its
  timeout and gets ``Unknown``) or answer unknown at once, for the next payment(s)
  (:meth:`fail_next`, :meth:`hang_next`, :meth:`unknown_next`) or for one invoice
  (``payment_hash=…``); a hung or unknown payment is settled or failed later with
  :meth:`resolve`. The script is stored in the database, so it survives a restart too.
"""

from __future__ import annotations

from strom_core.lightning import Invoice, InvoiceStatus, PaymentResult, Settlement
from strom_core.lightning_errors import InvoiceNotFound
from strom_core.units import Msat, msat
from strom_lightning._fake_store import InvoiceRow, ScriptAction
from strom_lightning._mint import node_pubkey
from strom_lightning.base import check_invoice_args
from strom_lightning.fake import FakeBackend
from strom_lightning.fake_network import FakePayReceipt, fake_log, from_seconds, to_seconds

__all__ = ["FakeDriverWallet"]


class FakeDriverWallet:
    """The driver's side of the fake lightning network; see the module docstring."""

    def __init__(self, backend: FakeBackend) -> None:
        self._backend = backend  # asked how a refund stands, as Strom would see it
        self._network = backend.fake_network

    def __repr__(self) -> str:
        return f"<FakeDriverWallet NO REAL MONEY of {self._backend!r}>"

    async def pubkey(self) -> str:
        """The driver wallet's node id."""
        store = await self._network.store()
        return node_pubkey(await store.meta("driver_key"))

    # --- paying Strom ----------------------------------------------------------------------

    async def pay(self, bolt11: str, *, amount_msat: int | None = None) -> FakePayReceipt:
        """Pay one of Strom's invoices (NO REAL MONEY). Paying twice is harmless.

        Args:
            bolt11: the invoice.
            amount_msat: what the fake backend then reports as received, when it is not the
                invoice amount: more is an overpayment (lightning allows one); less is what
                no real node accepts, so it scripts a backend that misreports.
        """
        if amount_msat is not None:
            msat(amount_msat)
        return await self._network.receive(bolt11, amount_msat)

    # --- being refunded --------------------------------------------------------------------

    async def create_invoice(
        self, amount_msat: int, *, memo: str = "refund", expiry_s: int = 3600
    ) -> Invoice:
        """An invoice the fake backend can pay (what a wallet gives LNURL-withdraw)."""
        amount = check_invoice_args(amount_msat, None, expiry_s)
        store = await self._network.store()
        row = await self._network.mint(
            await store.meta("driver_key"),
            amount,
            memo=memo,
            description_hash=None,
            expiry_s=expiry_s,
        )
        await store.add_invoice(row, driver=True)
        return Invoice(row.bolt11, row.payment_hash, amount, from_seconds(row.expires_at))

    async def invoice_status(self, payment_hash: str) -> InvoiceStatus:
        """Where one of the driver's invoices stands.

        Raises:
            InvoiceNotFound: the driver has no such invoice.
        """
        store = await self._network.store()
        row = await store.invoice(payment_hash.lower(), driver=True)
        if row is None:
            raise InvoiceNotFound(payment_hash, "fake driver wallet")
        return self._network.status(row)

    async def received(self) -> list[Settlement]:
        """Every refund the driver received, oldest first."""
        store = await self._network.store()
        return [_settlement(row) for row in await store.driver_received()]

    async def received_msat(self) -> Msat:
        """The total the driver received."""
        return Msat(sum(settlement.amount_msat for settlement in await self.received()))

    # --- scripting -------------------------------------------------------------------------

    async def fail_next(
        self, count: int = 1, *, payment_hash: str | None = None, reason: str = ""
    ) -> None:
        """Reject the next ``count`` payments (or the next one to ``payment_hash``)."""
        await self._script(ScriptAction.FAIL, count, payment_hash, reason)

    async def hang_next(self, count: int = 1, *, payment_hash: str | None = None) -> None:
        """Hold the next payment(s): the payer waits its timeout, then gets ``Unknown``."""
        await self._script(ScriptAction.HANG, count, payment_hash, "")

    async def unknown_next(self, count: int = 1, *, payment_hash: str | None = None) -> None:
        """Leave the next payment(s) in flight and answer ``Unknown`` at once."""
        await self._script(ScriptAction.UNKNOWN, count, payment_hash, "")

    async def _script(
        self, action: ScriptAction, count: int, payment_hash: str | None, reason: str
    ) -> None:
        if count < 1:
            raise ValueError("count must be at least 1")
        store = await self._network.store()
        for _ in range(count):
            await store.add_script(action, payment_hash.lower() if payment_hash else None, reason)
        fake_log.info("driver wallet scripted: %s x%d (%s)", action, count, payment_hash or "next")

    async def resolve(
        self, payment_hash: str, *, succeed: bool = True, reason: str = ""
    ) -> PaymentResult:
        """Settle (``succeed``) or fail a payment left in flight by ``hang``/``unknown``.

        Returns:
            The payment's result as the fake backend now reports it.

        Raises:
            InvoiceNotFound: the fake backend made no payment with this hash.
        """
        store = await self._network.store()
        row = await store.resolve_payment(
            payment_hash.lower(),
            succeed=succeed,
            reason=reason,
            now=to_seconds(self._network.clock.now()),
        )
        if row is None:
            raise InvoiceNotFound(payment_hash, "fake backend payments")
        self._network.changed()
        fake_log.info("payment %s resolved by the driver: %s", payment_hash, row.status)
        return await self._backend.lookup_payment(payment_hash)


def _settlement(row: InvoiceRow) -> Settlement:
    return Settlement(
        payment_hash=row.payment_hash,
        amount_msat=Msat(row.received_msat),
        settled_at=from_seconds(row.settled_at or row.created_at),
    )
