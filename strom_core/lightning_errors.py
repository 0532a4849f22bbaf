"""Errors of the lightning package, each a branch of Strom's error tree.

Backends raise :class:`~strom_core.errors.BackendTimeout` /
:class:`~strom_core.errors.BackendUnavailable` when the outcome of a call is unknown and
:class:`~strom_core.errors.BackendRejected` when the backend
definitely refused it. Payments never raise for those: ``pay_invoice`` and ``lookup_payment``
return a :data:`~strom_core.lightning.PaymentResult` instead.

The ``Invoice…`` errors below are raised by :mod:`strom_core.bolt11` (the BOLT11 reader) and
:mod:`strom_lightning.checks` when a wallet submits an invoice Strom must not pay. Each has a
short, stable ``code`` that the LNURL layer can put in a LUD error reason, and a message a
person can act on.
"""

from __future__ import annotations

from strom_core.errors import BackendRejected, BackendUnavailable, ConfigError, RemoteProtocolError

__all__ = [
    "CertificateNotTrusted",
    "InvoiceAlreadySeen",
    "InvoiceAmountMissing",
    "InvoiceAmountOutOfRange",
    "InvoiceExpired",
    "InvoiceMalformed",
    "InvoiceNotFound",
    "InvoiceRejected",
    "InvoiceSignatureInvalid",
    "InvoiceUnsupportedFeature",
    "InvoiceWrongNetwork",
    "RefundsDisabled",
]


class InvoiceNotFound(BackendRejected):
    """The backend has no invoice with this payment hash."""

    def __init__(self, payment_hash: str, backend: str) -> None:
        super().__init__(f"{backend}: no invoice with payment hash {payment_hash}")
        self.payment_hash = payment_hash


class CertificateNotTrusted(BackendUnavailable):
    """The node's TLS certificate does not verify; nothing was sent.

    Not the pinned one (LND renewed it at a restart), or not signed by a public CA: the node
    counts as unreachable until its certificate is trusted.
    """


class RefundsDisabled(ConfigError):
    """The backend was configured without the credential that can send payments."""


class InvoiceRejected(RemoteProtocolError):
    """An invoice submitted by a wallet is not acceptable; nothing was paid."""

    code = "invalid-invoice"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvoiceMalformed(InvoiceRejected):
    """Not a BOLT11 invoice: bad bech32, bad checksum, missing fields, bad amount encoding."""

    code = "malformed"


class InvoiceSignatureInvalid(InvoiceRejected):
    """The invoice signature does not verify (or the payee key cannot be recovered)."""

    code = "bad-signature"


class InvoiceWrongNetwork(InvoiceRejected):
    """The invoice is for another bitcoin network than the one Strom runs on."""

    code = "wrong-network"


class InvoiceUnsupportedFeature(InvoiceRejected):
    """The invoice requires a feature bit (an even bit) that no payer here understands."""

    code = "unsupported-feature"


class InvoiceAmountMissing(InvoiceRejected):
    """The invoice has no amount; Strom only pays invoices that state one."""

    code = "no-amount"


class InvoiceAmountOutOfRange(InvoiceRejected):
    """The invoice amount is outside the range Strom offered."""

    code = "wrong-amount"


class InvoiceExpired(InvoiceRejected):
    """The invoice has expired (or expires too soon to be paid)."""

    code = "expired"


class InvoiceAlreadySeen(InvoiceRejected):
    """An invoice with this payment hash was submitted before."""

    code = "duplicate"
