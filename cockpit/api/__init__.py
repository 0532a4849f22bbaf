"""The REST API under ``/api/v1``: one module per resource, one table of endpoints.

Every operation is declared once, in its resource's ``endpoints()`` (see
:mod:`cockpit.endpoint`); routes and the OpenAPI document come from :meth:`Api.endpoints`.
Handlers read through the core's stores and the storage's read models
(:mod:`strom_storage.reports`) and act through the same paths the other front doors use: a
stop is a ``StopRequested`` applied to the session's state machine (so it is billed and
refunded like any stop), charger commands go through :class:`strom_core.ports.ChargerCommands`,
the agents and the OCPP server are reached only through the core's ports
(:mod:`strom_core.ports.agents`, :mod:`strom_core.ports.station`).

Resources: :mod:`~cockpit.api.me`, :mod:`~cockpit.api.lightning`,
:mod:`~cockpit.api.chargers`, :mod:`~cockpit.api.charger_commands`, :mod:`~cockpit.api.firmware`,
:mod:`~cockpit.api.power`, :mod:`~cockpit.api.certificates`, :mod:`~cockpit.api.cards`,
:mod:`~cockpit.api.stickers`, :mod:`~cockpit.api.tariffs`, :mod:`~cockpit.api.sessions`,
:mod:`~cockpit.api.ledger`, :mod:`~cockpit.api.reports`, :mod:`~cockpit.api.sold`,
:mod:`~cockpit.api.nostr`, :mod:`~cockpit.api.ocpi`,
:mod:`~cockpit.api.audit`; what they share is :mod:`~cockpit.api.context` (Strom's parts and
the lookups) and :mod:`~cockpit.api.answers` (rows as answers, pages, CSV).
"""

from __future__ import annotations

from typing import Any

from cockpit.api.answers import session_out
from cockpit.api.audit import AuditResource
from cockpit.api.cards import CardsResource
from cockpit.api.certificates import CertificatesResource
from cockpit.api.charger_commands import ChargerCommandsResource
from cockpit.api.chargers import ChargersResource
from cockpit.api.context import ApiContext, ProfileApplier
from cockpit.api.firmware import FirmwareResource, SignedFirmwareResource
from cockpit.api.ledger import LedgerResource
from cockpit.api.lightning import LightningResource
from cockpit.api.me import MeResource
from cockpit.api.nostr import NostrResource
from cockpit.api.ocpi import OcpiResource
from cockpit.api.power import PowerResource
from cockpit.api.prices import PricesResource
from cockpit.api.reports import ReportsResource
from cockpit.api.sessions import SessionsResource
from cockpit.api.sold import SoldResource
from cockpit.api.stickers import StickersResource
from cockpit.api.tariffs import TariffsResource, quotes
from cockpit.auth import Principal
from cockpit.endpoint import Endpoint, Resource
from cockpit.uploads import ChargerUploads

__all__ = ["Api", "ApiContext", "ProfileApplier", "quotes", "session_out"]


class Api:
    """Every resource of the API over one context.

    Args:
        ctx: Strom's parts as the handlers use them.
        uploads: the files chargers upload, and their one-time URLs.
    """

    def __init__(self, ctx: ApiContext, uploads: ChargerUploads) -> None:
        self.ctx = ctx
        self.audit = AuditResource(ctx)
        self.resources: tuple[Resource, ...] = (
            MeResource(),
            LightningResource(ctx),
            ChargersResource(ctx),
            ChargerCommandsResource(ctx),
            FirmwareResource(ctx, uploads),
            SignedFirmwareResource(ctx),
            PowerResource(ctx),
            PricesResource(ctx),
            CertificatesResource(ctx),
            CardsResource(ctx),
            StickersResource(ctx),
            TariffsResource(ctx),
            SessionsResource(ctx),
            LedgerResource(ctx),
            ReportsResource(ctx),
            SoldResource(ctx),
            NostrResource(ctx),
            OcpiResource(ctx),
            self.audit,
        )

    async def write_audit(
        self, principal: Principal, action: str, target: str, detail: dict[str, Any]
    ) -> None:
        """One audit row per mutating call, with who made it."""
        await self.audit.write(principal, action, target, detail)

    def endpoints(self) -> list[Endpoint]:
        """Every operation of the API, in the order of the OpenAPI document."""
        return [endpoint for resource in self.resources for endpoint in resource.endpoints()]
