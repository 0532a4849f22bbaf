"""The fake lightning backend: the embedded default. It moves NO REAL MONEY.

It mints real BOLT11 invoices, signed with its own node key (kept in its database), on regtest
(``lnbcrt``) unless configured otherwise, so every wallet and library decodes them - but no
real node can pay them. What pays them:

* :class:`~strom_lightning.fake_driver.FakeDriverWallet`, in the same process (the demo and
  the tests): the settlement is seen at once;
* :func:`fake_pay`, from any process (``strom fake pay <bolt11>``): it writes to the same
  SQLite file, and the running backend notices within ``poll_interval`` (200 ms).

Refunds (``pay_invoice``) reach only the driver wallet's invoices; anything else fails with
"no route", before anything is sent. The driver wallet can be scripted to fail, hang or
answer unknown, so every payment outcome can be exercised.

All state is in one SQLite file in the data folder (see :mod:`strom_lightning._fake_store`),
so a SIGKILLed Strom restarts with its invoices, settlements and payments intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from strom_core.errors import BackendUnavailable, ConfigError
from strom_core.lightning import (
    Failed,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Network,
    NodeInfo,
    PaymentResult,
    Settlement,
    Succeeded,
    Unknown,
)
from strom_core.lightning_config import BackendConfig, FakeConfig
from strom_core.lightning_errors import InvoiceNotFound, InvoiceRejected
from strom_core.units import Msat, format_sat
from strom_lightning._fake_store import (
    Attempt,
    FakeStore,
    IncomingOutcome,
    InvoiceRow,
    PaymentRow,
)
from strom_lightning._mint import mint_invoice, node_pubkey
from strom_lightning._stream import SettlementSink
from strom_lightning.base import Clock, LightningBackend, check_invoice_args, check_payment_args
from strom_lightning.checks import decode_invoice

__all__ = ["NO_REAL_MONEY", "FakeBackend", "FakePayReceipt", "FakePayStatus", "fake_pay"]

NO_REAL_MONEY = "NO REAL MONEY"
_LOG_PREFIX = f"[fake lightning, {NO_REAL_MONEY}]"


class _FakeLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every line the fake writes, so no log reader mistakes it for a payment."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"{_LOG_PREFIX} {msg}", kwargs


_log = _FakeLog(logging.getLogger("strom_lightning.fake"))


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _seconds(moment: datetime) -> int:
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
        return f"{self.message} ({_LOG_PREFIX[1:-1]})"


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
        return await _pay_into(store, bolt11, now or datetime.now(UTC))
    finally:
        await store.close()


async def _pay_into(
    store: FakeStore, bolt11: str, now: datetime, amount_msat: int | None = None
) -> FakePayReceipt:
    try:
        invoice = decode_invoice(bolt11)
    except InvoiceRejected as exc:
        return FakePayReceipt(FakePayStatus.INVALID_INVOICE, f"not a valid invoice: {exc}")
    outcome, row = await store.pay_incoming(
        invoice.payment_hash, invoice.bolt11, _seconds(now), amount_msat
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
        IncomingOutcome.EXPIRED: f"not paid: the invoice expired at {_ts(row.expires_at)}",
    }
    status = FakePayStatus(outcome.value)
    if status is FakePayStatus.PAID:
        _log.info("invoice %s paid: %s msat", row.payment_hash, amount)
    return FakePayReceipt(status, messages[outcome], row.payment_hash, amount)


class FakeBackend(LightningBackend):
    """The embedded fake backend; see the module docstring. Moves NO REAL MONEY."""

    name = "fake"
    real_money = False

    def __init__(
        self,
        db_path: Path,
        *,
        network: Network = "bcrt",
        poll_interval_s: float = 0.2,
        fee_msat: int = 0,
        clock: Clock | None = None,
        reconcile_every_s: float = 30.0,
        fallback_poll_s: float = 1.0,
    ) -> None:
        super().__init__(
            network=network,
            clock=clock,
            reconcile_every_s=reconcile_every_s,
            fallback_poll_s=fallback_poll_s,
            logger=_log,
        )
        self.db_path = db_path
        self._poll_interval_s = poll_interval_s
        self._fee_msat = fee_msat
        self._store_obj: FakeStore | None = None
        self._node_key: str | None = None
        self._open_lock = asyncio.Lock()
        self._changed: set[asyncio.Event] = set()
        self._cursor: int | None = None  # last settle_index delivered, kept across reconnects
        self._down = False

    @classmethod
    def from_config(cls, config: BackendConfig, *, data_dir: Path) -> Self:
        """Build from a :class:`~strom_core.lightning_config.FakeConfig` section."""
        if not isinstance(config, FakeConfig):
            raise ConfigError(f"fake backend given a {config.backend} configuration")
        path = config.db_file if config.db_file.is_absolute() else data_dir / config.db_file
        return cls(
            path,
            network=config.network,
            poll_interval_s=config.poll_interval_ms / 1000,
            fee_msat=config.fee_msat,
        )

    def __repr__(self) -> str:
        return f"<FakeBackend {NO_REAL_MONEY} network={self.network} db={self.db_path}>"

    # --- the store and in-process notification --------------------------------------------

    async def _store(self) -> FakeStore:
        if self._store_obj is None:
            async with self._open_lock:
                if self._store_obj is None:
                    store = FakeStore(self.db_path)
                    await store.open()
                    self._store_obj = store
                    _log.info("fake lightning node %s ready at %s", self.network, self.db_path)
        return self._store_obj

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """Simulate the node being unreachable while inside the block (tests and demo).

        Invoice calls and ``node_info`` raise ``BackendUnavailable``, ``pay_invoice`` answers
        ``Unknown`` without sending, and the settlement listener drops. Payments *into* the
        fake (driver wallet, ``strom fake pay``) still land; they are delivered afterwards.
        """
        self._down = True
        self._notify()
        try:
            yield
        finally:
            self._down = False
            self._notify()

    def _check_up(self) -> None:
        if self._down:
            raise BackendUnavailable("fake backend: the node is unreachable (simulated outage)")

    def _notify(self) -> None:
        for event in self._changed:
            event.set()

    async def _wait_change(self, event: asyncio.Event, timeout_s: float) -> bool:
        """Wait for an in-process change or the timeout; True when something changed."""
        try:
            async with asyncio.timeout(timeout_s):
                await event.wait()
        except TimeoutError:
            pass
        fired = event.is_set()
        event.clear()
        return fired

    # --- money in --------------------------------------------------------------------------

    async def create_invoice(
        self,
        amount_msat: int,
        *,
        memo: str | None = None,
        description_hash: bytes | None = None,
        expiry_s: int,
    ) -> Invoice:
        """Mint a signed invoice (see :meth:`LightningBackend.create_invoice`)."""
        amount = check_invoice_args(amount_msat, description_hash, expiry_s)
        self._check_up()
        store = await self._store()
        if self._node_key is None:  # written once when the file is created; never changes
            self._node_key = await store.meta("node_key")
        row = await self._mint(store, self._node_key, amount, memo, description_hash, expiry_s)
        await store.add_invoice(row)
        _log.info("invoice %s created for %s msat", row.payment_hash, amount)
        return Invoice(row.bolt11, row.payment_hash, amount, _ts(row.expires_at))

    async def _mint(
        self,
        store: FakeStore,
        key: str,
        amount: Msat,
        memo: str | None,
        description_hash: bytes | None,
        expiry_s: int,
    ) -> InvoiceRow:
        preimage = secrets.token_bytes(32)
        payment_hash = hashlib.sha256(preimage).hexdigest()
        created = _seconds(self._now())
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

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        """See :meth:`LightningBackend.lookup_invoice`."""
        self._check_up()
        row = await (await self._store()).invoice(payment_hash.lower())
        if row is None:
            raise InvoiceNotFound(payment_hash, self.name)
        return self._status(row)

    def _status(self, row: InvoiceRow) -> InvoiceStatus:
        state = InvoiceState.SETTLED if row.state == "settled" else InvoiceState.PENDING
        if state is InvoiceState.PENDING and self._now() >= _ts(row.expires_at):
            state = InvoiceState.EXPIRED
        return InvoiceStatus(
            payment_hash=row.payment_hash,
            state=state,
            amount_msat=Msat(row.amount_msat),
            received_msat=Msat(row.received_msat),
            expires_at=_ts(row.expires_at),
            settled_at=_ts(row.settled_at) if row.settled_at is not None else None,
        )

    async def _listen(self, sink: SettlementSink) -> None:
        self._check_up()
        store = await self._store()
        event = asyncio.Event()
        self._changed.add(event)
        try:
            if self._cursor is None:
                self._cursor = await store.max_settle_index()
            version = await store.data_version()
            sink.connected()
            while not self.closed:
                self._check_up()
                for row in await store.settled_after(self._cursor):
                    self._cursor = max(self._cursor, row.settle_index or 0)
                    sink.settled(
                        Settlement(
                            row.payment_hash,
                            Msat(row.received_msat),
                            _ts(row.settled_at or _seconds(self._now())),
                        )
                    )
                # Cheap: wake at once for this process's payments, otherwise read one pragma
                # every poll interval and only query when another process committed.
                while not self.closed and not self._down:
                    fired = await self._wait_change(event, self._poll_interval_s)
                    latest = await store.data_version()
                    if fired or latest != version:
                        version = latest
                        break
        finally:
            self._changed.discard(event)

    async def _receive(self, bolt11: str, amount_msat: int | None = None) -> FakePayReceipt:
        """In-process fast path for the driver wallet: pay one of this node's invoices."""
        receipt = await _pay_into(await self._store(), bolt11, self._now(), amount_msat)
        self._notify()
        return receipt

    # --- money out -------------------------------------------------------------------------

    async def pay_invoice(
        self, bolt11: str, *, max_fee_msat: int, timeout_s: float
    ) -> PaymentResult:
        """Pay a driver-wallet invoice (see :meth:`LightningBackend.pay_invoice`)."""
        check_payment_args(max_fee_msat, timeout_s)
        prepared = self._prepare_payment(bolt11)
        if isinstance(prepared, Failed):
            return prepared
        invoice, amount = prepared
        if self._down:
            return Unknown(reason="the fake node is unreachable (simulated outage); nothing sent")
        store = await self._store()
        attempt = Attempt(
            payment_hash=invoice.payment_hash,
            bolt11=invoice.bolt11,
            amount_msat=amount,
            fee_msat=self._fee_msat,
            max_fee_msat=max_fee_msat,
            now=_seconds(self._now()),
        )
        row = await store.attempt_payment(attempt)
        self._notify()
        if row.status == "in_flight" and row.wait:
            row = await self._wait_payment(store, row, timeout_s)
        result = _result(row)
        _log.info("payment %s: %s", row.payment_hash, result)
        return result

    async def _wait_payment(
        self, store: FakeStore, row: PaymentRow, timeout_s: float
    ) -> PaymentRow:
        event = asyncio.Event()
        self._changed.add(event)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while row.status == "in_flight" and loop.time() < deadline:
                await self._wait_change(
                    event, min(self._poll_interval_s, max(deadline - loop.time(), 0.0))
                )
                row = await store.payment(row.payment_hash) or row
        finally:
            self._changed.discard(event)
        return row

    async def lookup_payment(self, payment_hash: str) -> PaymentResult:
        """See :meth:`LightningBackend.lookup_payment`."""
        if self._down:
            return Unknown(reason="the fake node is unreachable (simulated outage)")
        row = await (await self._store()).payment(payment_hash.lower())
        if row is None:
            return Failed(reason="the fake node has no payment with this hash", pre_dispatch=True)
        return _result(row)

    # --- health and lifecycle --------------------------------------------------------------

    async def node_info(self) -> NodeInfo:
        """The fake node, labelled NO REAL MONEY."""
        self._check_up()
        store = await self._store()
        return NodeInfo(
            backend=self.name,
            alias=f"strom fake node ({NO_REAL_MONEY})",
            network=self.network,
            real_money=False,
            can_receive=True,
            can_pay=True,
            pubkey=node_pubkey(await store.meta("node_key")),
            version="strom-fake",
            synced=True,
            notes=(
                f"{NO_REAL_MONEY}: the fake lightning backend signs real invoices that only its "
                "own driver wallet or `strom fake pay` can pay",
            ),
        )

    async def _aclose(self) -> None:
        store, self._store_obj = self._store_obj, None
        if store is not None:
            await store.close()
        self._notify()


def _result(row: PaymentRow) -> PaymentResult:
    if row.status == "succeeded":
        return Succeeded(preimage=row.preimage or "", fee_msat=Msat(row.fee_msat))
    if row.status == "failed":
        return Failed(reason=row.reason, pre_dispatch=row.pre_dispatch)
    since = _ts(row.created_at)
    return Unknown(
        reason=row.reason or f"in flight since {since.isoformat()}; the payee has not answered"
    )
