"""The fake lightning network: what the fake node and the driver's wallet share. NO REAL MONEY.

:class:`FakeNetwork` holds the one SQLite ledger file of the fake world (see
:mod:`strom_lightning._fake_store`), its clock, and the in-process wake-ups: a payment made by
the driver's wallet wakes the node's settlement listener at once, a refund resolved by the
driver wakes the node's payer. :class:`~strom_lightning.fake.FakeBackend` (Strom's side) and
:class:`~strom_lightning.fake_driver.FakeDriverWallet` (the driver's side) both hold it; each
uses only its public methods.

:func:`fake_pay` pays an invoice from any process (``strom fake pay``): it writes to the same
file, and a running node notices within its poll interval.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import secrets
from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strom_core.bolt11 import decode_invoice
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.lightning import InvoiceState, InvoiceStatus, Network
from strom_core.lightning_errors import InvoiceRejected
from strom_core.units import Msat, format_sat
from strom_lightning._fake_store import FakeStore, IncomingOutcome, InvoiceRow
from strom_lightning._mint import mint_invoice

__all__ = [
    "NO_REAL_MONEY",
    "FakeNetwork",
    "FakePayReceipt",
    "FakePayStatus",
    "fake_log",
    "fake_pay",
    "from_seconds",
    "to_seconds",
]

NO_REAL_MONEY = "NO REAL MONEY"
LOG_PREFIX = f"[fake lightning, {NO_REAL_MONEY}]"


class _FakeLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line the fake writes, so no log reader mistakes it for a payment."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"{LOG_PREFIX} {msg}", kwargs


fake_log = _FakeLog(logging.getLogger("strom_lightning.fake"))
"""The fake world's logger: every line says NO REAL MONEY."""


def from_seconds(seconds: int) -> datetime:
    """An aware UTC datetime from the ledger file's unix seconds."""
    return datetime.fromtimestamp(seconds, UTC)


def to_seconds(moment: datetime) -> int:
    """The ledger file's unix seconds of an aware datetime."""
    return int(moment.timestamp())


class FakePayStatus(enum.StrEnum):
    """The outcome of :func:`fake_pay`."""

    PAID = "paid"
    ALREADY_PAID = "already-paid"
    EXPIRED = "expired"
    UNKNOWN_INVOICE = "unknown-invoice"
    INVALID_INVOICE = "invalid-invoice"


@dataclass(frozen=True, slots=True)
class FakePayReceipt:
    """What :func:`fake_pay` did; ``str()`` of it is a line for a terminal."""

    status: FakePayStatus
    message: str
    payment_hash: str | None = None
    amount_msat: Msat | None = None

    @property
    def ok(self) -> bool:
        """True when the invoice is paid now (by this call or an earlier one)."""
        return self.status in (FakePayStatus.PAID, FakePayStatus.ALREADY_PAID)

    def __str__(self) -> str:
        return f"{self.message} ({LOG_PREFIX[1:-1]})"


async def fake_pay(
    db_path: Path | str, bolt11: str, *, now: datetime | None = None
) -> FakePayReceipt:
    """Pay an invoice of the fake backend whose database is ``db_path``, from any process.

    The running backend sees the payment within its poll interval. Paying twice is harmless.

    Args:
        db_path: the fake backend's SQLite file (``<data>/fake-lightning.sqlite3``).
        bolt11: an invoice that backend issued.
        now: the time to pay at (defaults to the system clock).

    Returns:
        A receipt; ``receipt.ok`` tells success, ``str(receipt)`` explains.
    """
    path = Path(db_path)
    if not await asyncio.to_thread(path.exists):
        return FakePayReceipt(
            FakePayStatus.UNKNOWN_INVOICE, f"there is no fake lightning database at {path}"
        )
    store = FakeStore(path)
    try:
        await store.open()
        return await pay_into(store, bolt11, now or SYSTEM_CLOCK.now())
    finally:
        await store.close()


async def pay_into(
    store: FakeStore, bolt11: str, now: datetime, amount_msat: int | None = None
) -> FakePayReceipt:
    """Pay one of the fake node's invoices into its ledger ``store`` (see :func:`fake_pay`)."""
    try:
        invoice = decode_invoice(bolt11)
    except InvoiceRejected as exc:
        return FakePayReceipt(FakePayStatus.INVALID_INVOICE, f"not a valid invoice: {exc}")
    outcome, row = await store.pay_incoming(
        invoice.payment_hash, invoice.bolt11, to_seconds(now), amount_msat
    )
    if row is None or outcome is IncomingOutcome.UNKNOWN_INVOICE:
        return FakePayReceipt(
            FakePayStatus.UNKNOWN_INVOICE,
            f"invoice {invoice.payment_hash} was not issued by the fake backend at {store.path}",
            payment_hash=invoice.payment_hash,
        )
    amount = Msat(row.received_msat or row.amount_msat)
    what = f"{format_sat(amount)} ({amount} msat) for invoice {row.payment_hash}"
    messages = {
        IncomingOutcome.PAID: f"paid {what}",
        IncomingOutcome.ALREADY_PAID: f"already paid: {what}",
        IncomingOutcome.EXPIRED: f"not paid: the invoice expired at {from_seconds(row.expires_at)}",
    }
    status = FakePayStatus(outcome.value)
    if status is FakePayStatus.PAID:
        fake_log.info("invoice %s paid: %s msat", row.payment_hash, amount)
    return FakePayReceipt(status, messages[outcome], row.payment_hash, amount)


class FakeNetwork:
    """The fake world's ledger, clock and wake-ups (see the module docstring).

    Args:
        db_path: the ledger file (created on first use).
        network: the chain its invoices are for (``bcrt`` by default in the backend).
        clock: the fake world's clock (invoice creation and expiry, payments).
    """

    def __init__(self, db_path: Path, *, network: Network, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db_path = db_path
        self.network: Network = network
        self.clock = clock
        self._store: FakeStore | None = None
        self._open_lock = asyncio.Lock()
        self._watchers: set[asyncio.Event] = set()

    def __repr__(self) -> str:
        return f"<FakeNetwork {NO_REAL_MONEY} network={self.network} db={self.db_path}>"

    async def store(self) -> FakeStore:
        """The ledger, opened on first use."""
        if self._store is None:
            async with self._open_lock:
                if self._store is None:
                    store = FakeStore(self.db_path)
                    await store.open()
                    self._store = store
                    fake_log.info("fake lightning node %s ready at %s", self.network, self.db_path)
        return self._store

    async def close(self) -> None:
        """Close the ledger and wake every watcher (a later call opens it again)."""
        store, self._store = self._store, None
        if store is not None:
            await store.close()
        self.changed()

    # --- wake-ups --------------------------------------------------------------------------

    def watch(self) -> asyncio.Event:
        """An event set at every in-process change; :meth:`unwatch` it when done."""
        event = asyncio.Event()
        self._watchers.add(event)
        return event

    def unwatch(self, event: asyncio.Event) -> None:
        """Stop waking ``event``."""
        self._watchers.discard(event)

    def changed(self) -> None:
        """Something changed in the ledger: wake every watcher."""
        for event in self._watchers:
            event.set()

    @staticmethod
    async def wait_change(event: asyncio.Event, timeout_s: float) -> bool:
        """Wait for a change or the timeout; True when something changed."""
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass
        fired = event.is_set()
        event.clear()
        return fired

    # --- invoices --------------------------------------------------------------------------

    async def mint(
        self,
        key: str,
        amount: Msat,
        *,
        memo: str | None,
        description_hash: bytes | None,
        expiry_s: int,
    ) -> InvoiceRow:
        """A new, signed invoice of the node whose private key is ``key`` (not yet stored)."""
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        created = to_seconds(self.clock.now())
        bolt11 = mint_invoice(
            private_key_hex=key,
            network=self.network,
            amount_msat=amount,
            payment_hash=payment_hash,
            payment_secret=secrets.token_hex(32),
            created_at=created,
            expiry_s=expiry_s,
            memo=memo,
            description_hash=description_hash,
        )
        return InvoiceRow(
            payment_hash=payment_hash,
            preimage=preimage.hex(),
            bolt11=bolt11,
            amount_msat=amount,
            memo=memo,
            created_at=created,
            expires_at=created + expiry_s,
            state="pending",
            received_msat=0,
            settled_at=None,
            settle_index=None,
        )

    def status(self, row: InvoiceRow) -> InvoiceStatus:
        """Where an invoice stands now (a pending one past its expiry is expired)."""
        state = InvoiceState.SETTLED if row.state == "settled" else InvoiceState.PENDING
        if state is InvoiceState.PENDING and self.clock.now() >= from_seconds(row.expires_at):
            state = InvoiceState.EXPIRED
        return InvoiceStatus(
            payment_hash=row.payment_hash,
            state=state,
            amount_msat=Msat(row.amount_msat),
            received_msat=Msat(row.received_msat),
            expires_at=from_seconds(row.expires_at),
            settled_at=from_seconds(row.settled_at) if row.settled_at is not None else None,
        )

    async def receive(self, bolt11: str, amount_msat: int | None = None) -> FakePayReceipt:
        """Pay one of the node's invoices in process: its listener wakes at once."""
        receipt = await pay_into(await self.store(), bolt11, self.clock.now(), amount_msat)
        self.changed()
        return receipt
