"""``/ocpi/partners`` and ``/ocpi/log``: the operator's OCPI roaming partners.

Reached through the port :class:`strom_core.ports.ocpi.OcpiPartners` (the cockpit does not
import ``ocpi_server``). With ``[ocpi]`` off every route answers 409 ``ocpi_disabled``: the
routes exist (the OpenAPI document does not change with the configuration), the feature is
not on. A partner that does not answer as OCPI requires while Strom registers or rotates is
502 ``partner_unreachable``, with the step that failed; nothing is stored then.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from cockpit import ocpi_models as m
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.ports.ocpi import (
    OcpiLogLine,
    OcpiOffer,
    OcpiPartner,
    OcpiPartners,
    PartnerConflict,
    PartnerNotFound,
    PartnerUnreachable,
)

__all__ = ["OcpiResource"]

_MAX_ID = 2_147_483_647
T = TypeVar("T")


def partner_out(partner: OcpiPartner) -> m.OcpiPartnerOut:
    """A partner as the API shows it."""
    return m.OcpiPartnerOut(
        id=partner.id,
        name=partner.name,
        country_code=partner.country_code,
        party_id=partner.party_id,
        roles=list(partner.roles),
        state=partner.state,
        versions_url=partner.versions_url,
        version=partner.version,
        modules=list(partner.modules),
        settlement=partner.settlement,
        blocked=partner.blocked,
        created_at=partner.created_at,
        updated_at=partner.updated_at,
    )


def _line_out(line: OcpiLogLine) -> m.OcpiLogLineOut:
    return m.OcpiLogLineOut(
        id=line.id,
        partner_id=line.partner_id,
        direction=line.direction,
        method=line.method,
        url=line.url,
        http_status=line.http_status,
        status_code=line.status_code,
        request_id=line.request_id,
        correlation_id=line.correlation_id,
        at=line.at,
        excerpt=line.excerpt,
    )


def _offer_out(offer: OcpiOffer) -> m.OcpiOfferOut:
    return m.OcpiOfferOut(
        partner=partner_out(offer.partner), token_a=offer.token_a, versions_url=offer.versions_url
    )


class OcpiResource:
    """The roaming partners and the OCPI log."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _port(self) -> OcpiPartners:
        if self.ctx.ocpi is None:
            raise ApiError(409, "ocpi_disabled", "OCPI is off: set [ocpi] enabled = true")
        return self.ctx.ocpi

    @staticmethod
    def _id(call: Call) -> int:
        text = call.path("partner_id")
        if not text.isdigit() or not 1 <= int(text) <= _MAX_ID:
            raise ApiError(404, "not_found", "there is no such partner")
        return int(text)

    async def list_partners(self, call: Call) -> m.OcpiPartnersOut:
        """``GET /ocpi/partners``."""
        partners = await self._port().partners()
        return m.OcpiPartnersOut(partners=[partner_out(p) for p in partners])

    async def create_partner(self, call: Call) -> m.OcpiOfferOut:
        """``POST /ocpi/partners``: an offer, or Strom registers with the partner at once."""
        port = self._port()
        body: m.OcpiPartnerIn = call.body
        if body.versions_url is None or body.token is None:
            offer = await port.offer(body.name)
            call.audit_detail.update(partner=offer.partner.id, offered=True)
            return _offer_out(offer)
        partner = await _acting(port.register_with(body.versions_url, body.token, body.name))
        call.audit_detail.update(partner=partner.id, registered=True)
        return m.OcpiOfferOut(partner=partner_out(partner))

    async def get_partner(self, call: Call) -> m.OcpiPartnerOut:
        """``GET /ocpi/partners/{partner_id}``."""
        return partner_out(await _acting(self._port().partner(self._id(call))))

    async def delete_partner(self, call: Call) -> m.OcpiRemovedOut:
        """``DELETE /ocpi/partners/{partner_id}``."""
        partner_id = self._id(call)
        await _acting(self._port().remove(partner_id))
        return m.OcpiRemovedOut(id=partner_id, removed=True)

    async def register_partner(self, call: Call) -> m.OcpiOfferOut:
        """``POST /ocpi/partners/{partner_id}/register``."""
        port = self._port()
        partner_id = self._id(call)
        body: m.OcpiRegisterIn = call.body
        current = await _acting(port.partner(partner_id))
        partner = await _acting(
            port.register_with(body.versions_url, body.token, current.name, partner_id)
        )
        return m.OcpiOfferOut(partner=partner_out(partner))

    async def rotate_partner(self, call: Call) -> m.OcpiOfferOut:
        """``POST /ocpi/partners/{partner_id}/rotate``."""
        result = await _acting(self._port().rotate(self._id(call)))
        if isinstance(result, OcpiOffer):
            call.audit_detail.update(offered=True)
            return _offer_out(result)
        return m.OcpiOfferOut(partner=partner_out(result))

    async def patch_partner(self, call: Call) -> m.OcpiPartnerOut:
        """``PATCH /ocpi/partners/{partner_id}``."""
        body: m.OcpiPartnerPatch = call.body
        partner = await _acting(
            self._port().set_flags(self._id(call), settlement=body.settlement, blocked=body.blocked)
        )
        call.audit_detail.update(settlement=body.settlement, blocked=body.blocked)
        return partner_out(partner)

    async def log(self, call: Call) -> m.OcpiLogOut:
        """``GET /ocpi/log``."""
        query: m.OcpiLogQuery = call.query
        lines = await self._port().log(query.limit, query.partner_id)
        return m.OcpiLogOut(lines=[_line_out(line) for line in lines])

    def endpoints(self) -> list[Endpoint]:
        """The operations of this resource."""
        e = Endpoint
        return [
            e(
                "GET",
                "/ocpi/partners",
                self.list_partners,
                "The OCPI roaming partners",
                "ocpi",
                m.OcpiPartnersOut,
                conflict=True,
            ),
            e(
                "POST",
                "/ocpi/partners",
                self.create_partner,
                "A new partner: an offer (a token A and Strom's versions URL to hand over), or, "
                "with the partner's versions URL and token A, Strom registers with it",
                "ocpi",
                m.OcpiOfferOut,
                body=m.OcpiPartnerIn,
                action="ocpi.create",
                conflict=True,
            ),
            e(
                "GET",
                "/ocpi/partners/{partner_id}",
                self.get_partner,
                "One roaming partner",
                "ocpi",
                m.OcpiPartnerOut,
                conflict=True,
            ),
            e(
                "DELETE",
                "/ocpi/partners/{partner_id}",
                self.delete_partner,
                "Unregister the partner (told when registered) and forget it",
                "ocpi",
                m.OcpiRemovedOut,
                action="ocpi.delete",
                target="partner_id",
                conflict=True,
            ),
            e(
                "PATCH",
                "/ocpi/partners/{partner_id}",
                self.patch_partner,
                "Set the partner's settlement mode or blocked flag",
                "ocpi",
                m.OcpiPartnerOut,
                body=m.OcpiPartnerPatch,
                action="ocpi.update",
                target="partner_id",
                conflict=True,
            ),
            e(
                "POST",
                "/ocpi/partners/{partner_id}/register",
                self.register_partner,
                "Strom registers with the partner (its versions URL and the token A it issued)",
                "ocpi",
                m.OcpiOfferOut,
                body=m.OcpiRegisterIn,
                action="ocpi.register",
                target="partner_id",
                conflict=True,
            ),
            e(
                "POST",
                "/ocpi/partners/{partner_id}/rotate",
                self.rotate_partner,
                "New credentials tokens: a credentials PUT to a registered partner, otherwise "
                "a new token A to hand over",
                "ocpi",
                m.OcpiOfferOut,
                action="ocpi.rotate",
                target="partner_id",
                conflict=True,
            ),
            e(
                "GET",
                "/ocpi/log",
                self.log,
                "The newest OCPI requests in and out (of one partner, or all)",
                "ocpi",
                m.OcpiLogOut,
                query=m.OcpiLogQuery,
                conflict=True,
            ),
        ]


async def _acting(work: Awaitable[T]) -> T:
    """Await the port, mapping its errors: 404, 409, 502."""
    try:
        return await work
    except PartnerNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except PartnerConflict as exc:
        raise ApiError(409, "conflict", str(exc)) from None
    except PartnerUnreachable as exc:
        raise ApiError(502, "partner_unreachable", str(exc)) from None
