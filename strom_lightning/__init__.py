"""Lightning backends: money in (invoices, settlements) and money out (refunds).

One small interface, :class:`LightningBackend`, three implementations: :class:`FakeBackend`
(the embedded default; NO REAL MONEY), :class:`LndRestBackend` and :class:`LNbitsBackend`.
Build one from configuration with :func:`create_backend`; check invoices that wallets submit
for refunds with :func:`check_withdraw_invoice`. See ``docs/lightning.md``.
"""

from strom_core.bolt11 import DecodedInvoice, decode_invoice
from strom_core.lightning import (
    Failed,
    Health,
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
from strom_core.lightning_config import (
    BackendConfig,
    FakeConfig,
    LightningConfig,
    LNbitsConfig,
    LndConfig,
    parse_lightning_config,
)
from strom_core.lightning_errors import (
    CertificateNotTrusted,
    InvoiceAlreadySeen,
    InvoiceAmountMissing,
    InvoiceAmountOutOfRange,
    InvoiceExpired,
    InvoiceMalformed,
    InvoiceNotFound,
    InvoiceRejected,
    InvoiceSignatureInvalid,
    InvoiceUnsupportedFeature,
    InvoiceWrongNetwork,
    RefundsDisabled,
)
from strom_lightning.base import LightningBackend, PendingHashes, SettlementStream
from strom_lightning.checks import check_withdraw_invoice
from strom_lightning.fake import NO_REAL_MONEY, FakeBackend, FakePayReceipt, FakePayStatus, fake_pay
from strom_lightning.fake_driver import FakeDriverWallet
from strom_lightning.fake_network import FakeNetwork
from strom_lightning.lnbits import LNbitsBackend
from strom_lightning.lnd import LndRestBackend
from strom_lightning.lndconnect import LndConnect, parse_lndconnect
from strom_lightning.registry import BACKENDS, create_backend
from strom_lightning.watch import NodeState, NodeWatch

__all__ = [
    "BACKENDS",
    "NO_REAL_MONEY",
    "BackendConfig",
    "CertificateNotTrusted",
    "DecodedInvoice",
    "Failed",
    "FakeBackend",
    "FakeConfig",
    "FakeDriverWallet",
    "FakeNetwork",
    "FakePayReceipt",
    "FakePayStatus",
    "Health",
    "Invoice",
    "InvoiceAlreadySeen",
    "InvoiceAmountMissing",
    "InvoiceAmountOutOfRange",
    "InvoiceExpired",
    "InvoiceMalformed",
    "InvoiceNotFound",
    "InvoiceRejected",
    "InvoiceSignatureInvalid",
    "InvoiceState",
    "InvoiceStatus",
    "InvoiceUnsupportedFeature",
    "InvoiceWrongNetwork",
    "LNbitsBackend",
    "LNbitsConfig",
    "LightningBackend",
    "LightningConfig",
    "LndConfig",
    "LndConnect",
    "LndRestBackend",
    "Network",
    "NodeInfo",
    "NodeState",
    "NodeWatch",
    "PaymentResult",
    "PendingHashes",
    "RefundsDisabled",
    "Settlement",
    "SettlementStream",
    "Succeeded",
    "Unknown",
    "check_withdraw_invoice",
    "create_backend",
    "decode_invoice",
    "fake_pay",
    "parse_lightning_config",
    "parse_lndconnect",
]
