"""The one small interface every lightning backend implements.

Money in: :meth:`LightningBackend.create_invoice`, :meth:`LightningBackend.lookup_invoice` and
:meth:`LightningBackend.settled_invoices`. Money out: :meth:`LightningBackend.pay_invoice` and
:meth:`LightningBackend.lookup_payment`. Plus :meth:`LightningBackend.node_info` /
:meth:`LightningBackend.health` and :meth:`LightningBackend.aclose`.

Error rules (the same for every backend):

* Invoice calls and ``node_info`` raise :class:`~strom_core.errors.BackendTimeout` or
  :class:`~strom_core.errors.BackendUnavailable` when the outcome is unknown (timeout, connection
  drop, 5xx) and :class:`~strom_core.errors.BackendRejected` when the backend refused (4xx);
  ``lookup_invoice`` raises :class:`~strom_core.lightning_errors.InvoiceNotFound` for an
  unknown hash.
* ``pay_invoice`` and ``lookup_payment`` do not raise for backend trouble: they return a
  :data:`~strom_core.lightning.PaymentResult`, and everything ambiguous is ``Unknown``.
  ``pay_invoice`` raises only :class:`~strom_core.lightning_errors.RefundsDisabled` when the backend
  was configured without a credential that can pay.
* No exception of httpx, websockets or sqlite3 ever leaves a backend.
"""

from __future__ import annotations

import abc
import logging
import weakref
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Self

from strom_core.bolt11 import DecodedInvoice, decode_invoice
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import BackendError
from strom_core.lightning import (
    Failed,
    Health,
    Invoice,
    InvoiceStatus,
    Network,
    NodeInfo,
    PaymentResult,
)
from strom_core.lightning_errors import InvoiceRejected
from strom_core.units import Msat, UnitError, msat
from strom_lightning._stream import PendingHashes, SettlementSink, SettlementStream

if TYPE_CHECKING:
    from strom_core.lightning_config import BackendConfig

__all__ = [
    "LightningBackend",
    "PendingHashes",
    "SettlementStream",
    "check_invoice_args",
    "check_payment_args",
    "is_payment_hash",
]


class LightningBackend(abc.ABC):
    """A lightning node (or wallet service) Strom receives and sends payments through.

    Subclasses set :attr:`name` and :attr:`real_money`, implement the abstract methods and the
    ``_listen`` hook that feeds :meth:`settled_invoices`. Instances are async context managers.
    """

    name: ClassVar[str] = "backend"
    real_money: ClassVar[bool] = True

    def __init__(
        self,
        *,
        network: Network,
        clock: Clock = SYSTEM_CLOCK,
        reconcile_every_s: float = 30.0,
        fallback_poll_s: float = 5.0,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        self.network: Network = network
        self._clock = clock
        self._reconcile_every_s = reconcile_every_s
        self._fallback_poll_s = fallback_poll_s
        self._log = logger or logging.getLogger(f"strom_lightning.{self.name}")
        self._streams: weakref.WeakSet[SettlementStream] = weakref.WeakSet()
        self._closed = False

    # --- construction ----------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def from_config(
        cls,
        config: BackendConfig,
        *,
        data_dir: Path,
        clock: Clock = SYSTEM_CLOCK,
        config_file: Path | None = None,
    ) -> Self:
        """Build the backend from its configuration section.

        Args:
            config: this backend's section (``FakeConfig``, ``LndConfig``, ``LNbitsConfig``).
            data_dir: Strom's data folder (the fake keeps its database there; relative paths
                in the configuration are resolved against it).
            clock: the clock (invoice expiry, timestamps).
            config_file: Strom's configuration file, when there is one; named in advice to
                the operator (the command that pins a renewed LND certificate).

        Raises:
            ConfigError: a secret file is missing or unreadable, or the section is for
                another backend.
        """

    # --- money in --------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_invoice(
        self,
        amount_msat: int,
        *,
        memo: str | None = None,
        description_hash: bytes | None = None,
        expiry_s: int,
    ) -> Invoice:
        """Create an invoice for Strom to be paid.

        Args:
            amount_msat: the amount, a positive integer of msat.
            memo: a description for the invoice (or, with ``description_hash``, a note kept
                by the node only).
            description_hash: the sha256 of the LNURL metadata (32 bytes); when given the
                invoice commits to it instead of carrying ``memo``.
            expiry_s: seconds until the invoice expires.

        Returns:
            The invoice.

        Raises:
            UnitError: the amount is not a positive integer of msat, or the backend cannot
                represent it (LNbits: whole sats only).
            ValueError: a bad ``description_hash`` or ``expiry_s``.
            BackendError: see the module docstring.
        """

    @abc.abstractmethod
    async def lookup_invoice(self, payment_hash: str) -> InvoiceStatus:
        """Ask the backend where an incoming invoice stands.

        Raises:
            InvoiceNotFound: the backend has no invoice with this hash.
            BackendError: see the module docstring.
        """

    def settled_invoices(
        self,
        pending: PendingHashes,
        *,
        reconcile_every_s: float | None = None,
        fallback_poll_s: float | None = None,
        quiet: Callable[[], bool] | None = None,
    ) -> SettlementStream:
        """An async iterator of settlements that survives reconnects without missing one.

        Args:
            pending: an async callable returning the payment hashes the caller still waits
                for (typically the ledger's pending invoices). The stream looks each one up
                at start, after every reconnect and periodically, so a payment made while
                nothing listened is still delivered.
            reconcile_every_s: how often to reconcile while the push channel is up.
            fallback_poll_s: how often to reconcile while it is down (polling fallback).
            quiet: True while the node is known to be down (a :class:`~strom_lightning.watch.
                NodeWatch` said so already): the stream's outage lines are then DEBUG.

        Returns:
            A :class:`SettlementStream`. Delivery is at least once: be idempotent on the
            payment hash. Close it (``async with`` or ``aclose()``); ``aclose()`` of the
            backend closes it too.
        """
        stream = SettlementStream(
            self,
            pending,
            reconcile_every_s=reconcile_every_s or self._reconcile_every_s,
            fallback_poll_s=fallback_poll_s or self._fallback_poll_s,
            logger=self._log,
            quiet=quiet,
        )
        self._streams.add(stream)
        return stream

    @abc.abstractmethod
    async def _listen(self, sink: SettlementSink) -> None:
        """Connect the push channel once and report settlements until it ends."""

    # --- money out -------------------------------------------------------------------------

    @abc.abstractmethod
    async def pay_invoice(
        self, bolt11: str, *, max_fee_msat: int, timeout_s: float
    ) -> PaymentResult:
        """Pay an invoice (a refund). Paying the same invoice again never pays twice.

        Args:
            bolt11: the invoice; check it first with
                :func:`strom_lightning.checks.check_withdraw_invoice`.
            max_fee_msat: the most the routing may cost.
            timeout_s: how long to try; when it passes without a final answer the result is
                ``Unknown`` and the payment may still complete.

        Returns:
            ``Succeeded``, ``Failed`` (definite) or ``Unknown`` (ask ``lookup_payment`` later).

        Raises:
            RefundsDisabled: the backend has no credential that can pay.
        """

    @abc.abstractmethod
    async def lookup_payment(self, payment_hash: str) -> PaymentResult:
        """Where an outgoing payment stands now.

        A hash the node never saw gives ``Failed(pre_dispatch=True)``: call this to reconcile
        an ``Unknown`` only after the ``pay_invoice`` call has returned.
        """

    # --- health ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def node_info(self) -> NodeInfo:
        """What the backend says about itself.

        Raises:
            BackendError: the backend cannot be reached or refuses the credentials.
        """

    async def health(self) -> Health:
        """Probe the backend; never raises for backend trouble."""
        try:
            info = await self.node_info()
        except BackendError as exc:
            return Health(ok=False, detail=str(exc))
        if info.network != self.network:
            return Health(
                ok=False,
                detail=f"{self.name} is on {info.network} but Strom is configured for "
                f"{self.network}",
                info=info,
            )
        detail = "; ".join((f"{self.name} {info.alias} is up", *info.notes))
        return Health(ok=True, detail=detail, info=info)

    async def refresh(self) -> bool:
        """Read the configured credentials again (files that a person or the node rewrote).

        Called before every reconnect attempt while the node is unreachable, so a renewed
        certificate is taken up without a restart. The default has nothing to read.

        Returns:
            True when something changed and is used from now on.

        Raises:
            BackendError: a configured file cannot be read (the message names it).
        """
        return False

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._closed

    async def aclose(self) -> None:
        """Close open settlement streams and the backend's connections. Idempotent."""
        self._closed = True
        for stream in list(self._streams):
            await stream.aclose()
        await self._aclose()

    @abc.abstractmethod
    async def _aclose(self) -> None:
        """Release the backend's own resources (clients, files)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} network={self.network}>"

    # --- helpers for subclasses ------------------------------------------------------------

    def _now(self) -> datetime:
        return self._clock.now()

    def _prepare_payment(self, bolt11: str) -> tuple[DecodedInvoice, Msat] | Failed:
        """Decode and sanity-check an invoice before sending; a refusal is pre-dispatch."""
        try:
            invoice = decode_invoice(bolt11)
        except InvoiceRejected as exc:
            return Failed(reason=f"not payable: {exc.message}", pre_dispatch=True)
        if invoice.network != self.network:
            return Failed(
                reason=f"the invoice is for ln{invoice.network}, this node is on ln{self.network}",
                pre_dispatch=True,
            )
        if invoice.amount_msat is None:
            return Failed(reason="the invoice has no amount", pre_dispatch=True)
        if invoice.expired(self._now()):
            return Failed(reason="the invoice has expired", pre_dispatch=True)
        return invoice, invoice.amount_msat


def check_invoice_args(amount_msat: int, description_hash: bytes | None, expiry_s: int) -> Msat:
    """Validate ``create_invoice`` arguments the same way in every backend."""
    amount = msat(amount_msat)
    if amount == 0:
        raise UnitError("an invoice needs a positive amount; amountless invoices are not made")
    if description_hash is not None and len(description_hash) != 32:
        raise ValueError("description_hash must be the 32-byte sha256 of the description")
    if isinstance(expiry_s, bool) or not isinstance(expiry_s, int) or expiry_s <= 0:
        raise ValueError(f"expiry_s must be a positive number of seconds, got {expiry_s!r}")
    return amount


def is_payment_hash(text: str) -> bool:
    """True for 64 hex digits (what every backend's lookups accept)."""
    return len(text) == 64 and all(char in "0123456789abcdefABCDEF" for char in text)


def check_payment_args(max_fee_msat: int, timeout_s: float) -> None:
    """Validate ``pay_invoice`` arguments the same way in every backend."""
    msat(max_fee_msat)
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
