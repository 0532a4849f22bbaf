"""The bodies of ``/ocpi/…`` (the operator's OCPI roaming partners), beside :mod:`cockpit.models`.

Tokens appear in one answer only: the token A of a new offer (``POST /ocpi/partners`` without a
versions URL, or ``POST /ocpi/partners/{id}/rotate`` of a partner not registered), to hand to
the partner once; nothing else ever shows a token.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, StrictBool, model_validator

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
]

_URL = r"^https?://[^\s/]+(/\S*)?$"
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
    blocked: bool
    created_at: datetime
    updated_at: datetime


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
    """The settlement mode and/or the blocked flag."""

    settlement: Settlement | None = None
    blocked: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> OcpiPartnerPatch:
        if self.settlement is None and self.blocked is None:
            raise ValueError("give settlement, blocked or both")
        return self


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
