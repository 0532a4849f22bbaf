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
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Self

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import BackendUnavailable, ConfigError
from strom_core.lightning import (
    Failed,
    Invoice,
    InvoiceStatus,
    Network,
    NodeInfo,
    PaymentResult,
    Settlement,
    Succeeded,
    Unknown,
)
from strom_core.lightning_config import BackendConfig, FakeConfig
from strom_core.lightning_errors import InvoiceNotFound
from strom_core.units import Msat
from strom_lightning._fake_store import Attempt, FakeStore, PaymentRow
from strom_lightning._mint import node_pubkey
from strom_lightning._stream import SettlementSink
from strom_lightning.base import LightningBackend, check_invoice_args, check_payment_args
from strom_lightning.fake_network import (
    NO_REAL_MONEY,
    FakeNetwork,
    FakePayReceipt,
    FakePayStatus,
    fake_log,
    fake_pay,
    from_seconds,
    to_seconds,
)

__all__ = [
    "NO_REAL_MONEY",
    "FakeBackend",
    "FakeNetwork",
    "FakePayReceipt",
    "FakePayStatus",
    "fake_pay",
]


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
        clock: Clock = SYSTEM_CLOCK,
        reconcile_every_s: float = 30.0,
        fallback_poll_s: float = 1.0,
    ) -> None:
        super().__init__(
            network=network,
            clock=clock,
            reconcile_every_s=reconcile_every_s,
            fallback_poll_s=fallback_poll_s,
            logger=fake_log,
        )
        self.db_path = db_path
        self.fake_network = FakeNetwork(db_path, network=network, clock=clock)
        self._poll_interval_s = poll_interval_s
        self._fee_msat = fee_msat
        self._node_key: str | None = None
        self._cursor: int | None = None  # last settle_index delivered, kept across reconnects
        self._down = False

    @classmethod
    def from_config(
        cls,
        config: BackendConfig,
        *,
        data_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        config_file: Path | None = None,
    ) -> Self:
        """Build from a :class:`~strom_core.lightning_config.FakeConfig` section."""
        if not isinstance(config, FakeConfig):
            raise ConfigError(f"fake backend given a {config.backend} configuration")
        path = config.db_file if config.db_file.is_absolute() else data_dir / config.db_file
        return cls(
            path,
            network=config.network,
            poll_interval_s=config.poll_interval_ms / 1000,
            fee_msat=config.fee_msat,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"<FakeBackend {NO_REAL_MONEY} network={self.network} db={self.db_path}>"

    # --- the store and in-process notification --------------------------------------------

    async def _store(self) -> FakeStore:
        return await self.fake_network.store()

    @contextlib.asynccontextmanager
    async def outage(self) -> AsyncIterator[None]:
        """Simulate the node being unreachable while inside the block (tests and demo).

        Invoice calls and ``node_info`` raise ``BackendUnavailable``, ``pay_invoice`` answers
        ``Unknown`` without sending, and the settlement listener drops. Payments *into* the
        fake (driver wallet, ``strom fake pay``) still land; they are delivered afterwards.
        """
        self._down = True
        self.fake_network.changed()
        try:
            yield
        finally:
            self._down = False
            self.fake_network.changed()

    def _check_up(self) -> None:
        if self._down:
            raise BackendUnavailable("fake backend: the node is unreachable (simulated outage)")

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
        row = await self.fake_network.mint(
            self._node_key,
            amount,
            memo=memo,
            description_hash=description_hash,
            expiry_s=expiry_s,
        )
        await store.add_invoice(row)
        fake_log.info("invoice %s created for %s msat", row.payment_hash, amount)
        return Invoice(row.bolt11, row.payment_hash, amount, from_seconds(row.expires_at))

    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        """See :meth:`LightningBackend.lookup_invoice`."""
        self._check_up()
        row = await (await self._store()).invoice(payment_hash.lower())
        if row is None:
            raise InvoiceNotFound(payment_hash, self.name)
        return self.fake_network.status(row)

    async def _listen(self, sink: SettlementSink) -> None:
        self._check_up()
        store = await self._store()
        event = self.fake_network.watch()
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
                            from_seconds(row.settled_at or to_seconds(self._now())),
                        )
                    )
                # Cheap: wake at once for this process's payments, otherwise read one pragma
                # every poll interval and only query when another process committed.
                while not self.closed and not self._down:
                    fired = await self.fake_network.wait_change(event, self._poll_interval_s)
                    latest = await store.data_version()
                    if fired or latest != version:
                        version = latest
                        break
        finally:
            self.fake_network.unwatch(event)

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
            now=to_seconds(self._now()),
        )
        row = await store.attempt_payment(attempt)
        self.fake_network.changed()
        if row.status == "in_flight" and row.wait:
            row = await self._wait_payment(store, row, timeout_s)
        result = _result(row)
        fake_log.info("payment %s: %s", row.payment_hash, result)
        return result

    async def _wait_payment(
        self, store: FakeStore, row: PaymentRow, timeout_s: float
    ) -> PaymentRow:
        event = self.fake_network.watch()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        try:
            while row.status == "in_flight" and loop.time() < deadline:
                await self.fake_network.wait_change(
                    event, min(self._poll_interval_s, max(deadline - loop.time(), 0.0))
                )
                row = await store.payment(row.payment_hash) or row
        finally:
            self.fake_network.unwatch(event)
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
        await self.fake_network.close()


def _result(row: PaymentRow) -> PaymentResult:
    if row.status == "succeeded":
        return Succeeded(preimage=row.preimage or "", fee_msat=Msat(row.fee_msat))
    if row.status == "failed":
        return Failed(reason=row.reason, pre_dispatch=row.pre_dispatch)
    since = from_seconds(row.created_at)
    return Unknown(
        reason=row.reason or f"in flight since {since.isoformat()}; the payee has not answered"
    )
