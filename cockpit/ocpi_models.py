"""The bodies of ``/ocpi/…`` (the operator's OCPI roaming partners), beside :mod:`cockpit.models`.

Tokens appear in one answer only: the token A of a new offer (``POST /ocpi/partners`` without a
versions URL, or ``POST /ocpi/partners/{id}/rotate`` of a partner not registered), to hand to
the partner once; nothing else ever shows a token.

Money is integer msat with a ``*_sat`` twin as a decimal string, as in :mod:`cockpit.models`.
A receivable is what a partner owes for one session (:mod:`strom_core.roaming`); its partner is
named by the roaming partner id, the OCPI partner's integer id as text.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool, StrictInt, model_validator

from cockpit.models import _In, _Out

__all__ = [
    "OcpiLogLineOut",
    "OcpiLogOut",
    "OcpiLogQuery",
    "OcpiOfferOut",
    "OcpiPartnerIn",
    "OcpiPartnerOut",
    "OcpiPartnerPatch",
    "OcpiPartnersOut",
    "OcpiRegisterIn",
    "OcpiRemovedOut",
    "ReceivableOut",
    "ReceivablesOut",
    "ReceivablesQuery",
]

# Printable ASCII only, no space (an IDN host in its punycode form): the HTTP client refuses
# control characters, which a "not whitespace" class would let through.
_URL = r"^https?://[!-.0-~]+(/[!-~]*)?$"
_CREDENTIALS_CHARS = r"^[\x21-\x7e]{1,64}$"  # printable ASCII, no space (OCPI)
Settlement = Literal["after_cdr", "streaming"]


class OcpiPartnerOut(_Out):
    """One roaming partner (no tokens)."""

    id: int
    name: str
    country_code: str | None
    party_id: str | None
    roles: list[str]
    state: Literal["offered", "registered", "unregistered"]
    versions_url: str | None
    version: str | None
    modules: list[str] = Field(description="the partner's endpoints, as identifier:ROLE")
    settlement: Settlement
    blocked: bool = Field(description="blocked by the operator (see blocked_by_overdue too)")
    created_at: datetime
    updated_at: datetime
    block_when_overdue: bool = Field(description="an overdue receivable blocks new starts")
    payment_terms_days: int = Field(description="days to pay an invoice")
    open_receivables: int = Field(description="receivables not paid nor written off")
    open_msat: int = Field(description="their total")
    open_sat: str
    overdue_receivables: int = Field(description="invoiced, unpaid past their due date")
    overdue_msat: int = Field(description="their total")
    overdue_sat: str
    blocked_by_overdue: bool = Field(description="new starts are refused: an overdue invoice")


class OcpiPartnersOut(_Out):
    """Every partner, oldest first."""

    partners: list[OcpiPartnerOut]


class OcpiPartnerIn(_In):
    """A new partner: a name alone is an offer; with a versions URL and token A, a registration.

    A name alone makes an offer (a token A to hand over); with the partner's versions URL and
    the token A it issued, Strom registers with it at once.
    """

    name: str = Field(min_length=1, max_length=100)
    versions_url: str | None = Field(None, max_length=255, pattern=_URL)
    token: str | None = Field(None, pattern=_CREDENTIALS_CHARS)

    @model_validator(mode="after")
    def _both_or_neither(self) -> OcpiPartnerIn:
        if (self.versions_url is None) != (self.token is None):
            raise ValueError("give versions_url and token together, or neither")
        return self


class OcpiRegisterIn(_In):
    """The partner's versions URL and the token A it issued to Strom."""

    versions_url: str = Field(max_length=255, pattern=_URL)
    token: str = Field(pattern=_CREDENTIALS_CHARS)


class OcpiOfferOut(_Out):
    """A partner, and when a token A was made for it: the token and Strom's versions URL."""

    partner: OcpiPartnerOut
    token_a: str | None = Field(None, description="shown once: hand it to the partner")
    versions_url: str | None = Field(None, description="Strom's versions endpoint")


class OcpiPartnerPatch(_In):
    """The settlement mode, the blocked flag and the payment terms: any of them."""

    settlement: Settlement | None = None
    blocked: StrictBool | None = None
    block_when_overdue: StrictBool | None = None
    payment_terms_days: StrictInt | None = Field(None, ge=0, le=365)

    @model_validator(mode="after")
    def _something(self) -> OcpiPartnerPatch:
        if all(value is None for value in self.model_dump().values()):
            raise ValueError("give settlement, blocked, block_when_overdue or payment_terms_days")
        return self

    @property
    def changes_terms(self) -> bool:
        """Whether the payment terms are changed."""
        return self.block_when_overdue is not None or self.payment_terms_days is not None

    @property
    def changes_flags(self) -> bool:
        """Whether the settlement mode or the blocked flag is changed."""
        return self.settlement is not None or self.blocked is not None


class OcpiRemovedOut(_Out):
    """The partner that was unregistered and removed."""

    id: int
    removed: bool


class OcpiLogQuery(_In):
    """The newest rows of the OCPI log."""

    limit: int = Field(100, ge=1, le=1000)
    partner_id: int | None = Field(None, ge=1, le=2_147_483_647)


class OcpiLogLineOut(_Out):
    """One OCPI request in or out."""

    id: int
    partner_id: int | None
    direction: Literal["in", "out"]
    method: str
    url: str
    http_status: int | None
    status_code: int | None
    request_id: str
    correlation_id: str
    at: datetime
    excerpt: str


class OcpiLogOut(_Out):
    """Log rows, newest first."""

    lines: list[OcpiLogLineOut]


# --- receivables ---------------------------------------------------------------------------

ReceivableStateName = Literal["open", "invoiced", "paid", "written_off"]


class ReceivablesQuery(_In):
    """Receivables in a state, of a partner, or only the overdue ones."""

    state: ReceivableStateName | None = None
    partner_id: int | None = Field(None, ge=1, le=2_147_483_647)
    overdue: bool = Field(False, description="only those invoiced and unpaid past their due date")


class ReceivableOut(_Out):
    """What a partner owes for one session, and where its payment is."""

    id: int
    partner_id: str = Field(description="the roaming partner id: the OCPI partner's id as text")
    partner_name: str | None = Field(description="None: no OCPI partner has that id (any more)")
    session_id: str
    amount_msat: int
    amount_sat: str
    state: ReceivableStateName
    overdue: bool
    created_at: datetime
    invoiced_at: datetime | None
    due_at: datetime | None
    paid_at: datetime | None
    payment_hash: str | None
    bolt11: str | None = Field(description="the Lightning invoice offered to the partner")


class ReceivablesOut(_Out):
    """Receivables, oldest first (overdue ones: oldest due first)."""

    receivables: list[ReceivableOut]
