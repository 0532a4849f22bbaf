"""The operator's view of OCPI roaming partners: the port the cockpit manages them through.

``ocpi_server`` implements it (:class:`ocpi_server.partners.Partners`) and the composition root
hands it to the cockpit, which may not import ``ocpi_server``. Tokens appear here only once: the
token A of a new offer, to hand to the partner; every other token stays inside ``ocpi_server``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from strom_core.errors import StromError

__all__ = [
    "OcpiLogLine",
    "OcpiOffer",
    "OcpiPartner",
    "OcpiPartners",
    "PartnerConflict",
    "PartnerNotFound",
    "PartnerUnreachable",
    "Settlement",
]

Settlement = Literal["after_cdr", "streaming"]


class PartnerNotFound(StromError):
    """No partner has that id."""


class PartnerConflict(StromError):
    """The partner's state does not allow this (e.g. registering one that is registered)."""


class PartnerUnreachable(StromError):
    """The partner did not answer as OCPI requires; the message says which step failed."""


@dataclass(frozen=True, slots=True)
class OcpiPartner:
    """One roaming partner as the operator sees it (no tokens)."""

    id: int
    name: str
    country_code: str | None
    party_id: str | None
    roles: tuple[str, ...]
    state: Literal["offered", "registered", "unregistered"]
    versions_url: str | None
    version: str | None
    modules: tuple[str, ...]  # identifier:ROLE of the partner's endpoints
    settlement: Settlement
    blocked: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class OcpiOffer:
    """A new offer: hand ``token_a`` and ``versions_url`` to the partner (out of band)."""

    partner: OcpiPartner
    token_a: str
    versions_url: str


@dataclass(frozen=True, slots=True)
class OcpiLogLine:
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


@runtime_checkable
class OcpiPartners(Protocol):
    """Managing roaming partners (every method raises StorageError when the database fails)."""

    async def partners(self) -> list[OcpiPartner]:
        """Every partner, oldest first."""
        ...

    async def partner(self, partner_id: int) -> OcpiPartner:
        """One partner; raises PartnerNotFound."""
        ...

    async def offer(self, name: str) -> OcpiOffer:
        """A new partner record with a fresh token A for the partner to register with."""
        ...

    async def register_with(
        self, versions_url: str, token_a: str, name: str, partner_id: int | None = None
    ) -> OcpiPartner:
        """Strom registers with a partner (its versions URL and the token A it issued).

        A new record is made unless ``partner_id`` names one not registered. Raises
        PartnerNotFound, PartnerConflict (registered already) or PartnerUnreachable.
        """
        ...

    async def rotate(self, partner_id: int) -> OcpiOffer | OcpiPartner:
        """New tokens: a credentials PUT to a registered partner, else a new token A (an offer).

        Raises PartnerNotFound, PartnerConflict or PartnerUnreachable.
        """
        ...

    async def remove(self, partner_id: int) -> None:
        """Unregister (a DELETE to a registered partner, whatever it answers) and forget it."""
        ...

    async def set_flags(
        self, partner_id: int, *, settlement: Settlement | None, blocked: bool | None
    ) -> OcpiPartner:
        """Change the settlement mode or the blocked flag; raises PartnerNotFound."""
        ...

    async def log(self, limit: int, partner_id: int | None = None) -> list[OcpiLogLine]:
        """The newest OCPI requests (of one partner, or all), newest first."""
        ...
