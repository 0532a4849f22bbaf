"""The values that cross the lightning backend interface.

All are frozen dataclasses with exact types: amounts in integer msat
(:data:`strom_core.units.Msat`),
times as aware UTC datetimes, hashes and preimages as lowercase hex strings.

Payment outcomes have exactly three shapes (:data:`PaymentResult`):

* :class:`Succeeded` - the payee revealed the preimage. Final.
* :class:`Failed` - the payment definitely did not happen and never will. ``pre_dispatch`` is
  True when nothing ever left the node (refused before sending), False when the node tried
  and every attempt failed. Only a ``Failed`` allows the money to be offered again.
* :class:`Unknown` - anything else: a timeout, a dropped connection, a 5xx, a 409/429, a
  payment still in flight. The caller keeps it pending and asks again with
  ``lookup_payment`` later; it must never treat it as failed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, TypeAlias

from strom_core.units import Msat

__all__ = [
    "NETWORK_NAMES",
    "Failed",
    "Health",
    "Invoice",
    "InvoiceState",
    "InvoiceStatus",
    "Network",
    "NodeInfo",
    "PaymentResult",
    "Settlement",
    "Succeeded",
    "Unknown",
]

Network: TypeAlias = Literal["bc", "tb", "tbs", "bcrt"]
"""A bitcoin network as its BOLT11 currency prefix (``lnbc``, ``lntb``, ``lntbs``, ``lnbcrt``)."""

NETWORK_NAMES: dict[str, str] = {
    "bc": "mainnet",
    "tb": "testnet",
    "tbs": "signet",
    "bcrt": "regtest",
}


class InvoiceState(enum.StrEnum):
    """Where an incoming invoice stands.

    ``EXPIRED`` is derived (pending and past its expiry). A backend that still accepts a late
    payment reports ``SETTLED`` afterwards: a settlement always wins over expiry.
    """

    PENDING = "pending"
    SETTLED = "settled"
    EXPIRED = "expired"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice the backend created for Strom to be paid."""

    bolt11: str
    payment_hash: str
    amount_msat: Msat
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class InvoiceStatus:
    """The state of one incoming invoice, as the backend reports it now."""

    payment_hash: str
    state: InvoiceState
    amount_msat: Msat
    """What the invoice asked for."""
    received_msat: Msat
    """What was received (0 unless settled; a payer may overpay)."""
    expires_at: datetime
    settled_at: datetime | None = None

    @property
    def settled(self) -> bool:
        """True once the invoice is paid."""
        return self.state is InvoiceState.SETTLED


@dataclass(frozen=True, slots=True)
class Settlement:
    """One paid invoice, as delivered by ``settled_invoices()``."""

    payment_hash: str
    amount_msat: Msat
    """What was received."""
    settled_at: datetime


@dataclass(frozen=True, slots=True)
class Succeeded:
    """The payment arrived: the payee's preimage proves it."""

    preimage: str
    fee_msat: Msat


@dataclass(frozen=True, slots=True)
class Failed:
    """The payment definitely failed; no money moved and none will."""

    reason: str
    pre_dispatch: bool


@dataclass(frozen=True, slots=True)
class Unknown:
    """The outcome is not known yet; ask ``lookup_payment`` later, never refund on this."""

    reason: str


PaymentResult: TypeAlias = Succeeded | Failed | Unknown


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a backend says about itself (for the health page and the logs)."""

    backend: str
    alias: str
    network: Network
    real_money: bool
    can_receive: bool
    can_pay: bool
    """False when refunds are disabled (for example LNbits without an admin key)."""
    pubkey: str | None = None
    version: str | None = None
    block_height: int | None = None
    synced: bool | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Human-readable remarks: ``NO REAL MONEY``, ``refunds disabled: …``."""


@dataclass(frozen=True, slots=True)
class Health:
    """A health probe: ``ok`` with the node's info, or the reason it is not ok."""

    ok: bool
    detail: str
    info: NodeInfo | None = None
