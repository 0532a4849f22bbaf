"""``/ocpi/partners``, ``/ocpi/receivables`` and ``/ocpi/log``: the operator's roaming partners.

Reached through the port :class:`strom_core.ports.ocpi.OcpiPartners` (the cockpit does not
import ``ocpi_server``). With ``[ocpi]`` off every route answers 409 ``ocpi_disabled``: the
routes exist (the OpenAPI document does not change with the configuration), the feature is
not on. A partner that does not answer as OCPI requires while Strom registers or rotates is
502 ``partner_unreachable``, with the step that failed; nothing is stored then.

What partners owe (receivables) and their payment terms come from
:class:`strom_services.roaming.RoamingService`, below the front doors, whose partner id is the
OCPI partner's integer id as text. A partner's answer shows its terms, what it owes and
whether an overdue invoice blocks its new starts; the operator's own ``blocked`` flag is
separate.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import TypeVar

from cockpit import ocpi_models as m
from cockpit.api.answers import sat
from cockpit.api.context import ApiContext
from cockpit.endpoint import ApiError, Call, Endpoint
from strom_core.errors import BackendError
from strom_core.ports.ocpi import (
    OcpiLogLine,
    OcpiOffer,
    OcpiPartner,
    OcpiPartners,
    PartnerConflict,
    PartnerNotFound,
    PartnerUnreachable,
)
from strom_core.roaming import PartnerRefused, PartnerTerms, Receivable, ReceivableState
from strom_services.roaming import RoamingService

__all__ = ["OcpiResource"]

_MAX_ID = 2_147_483_647
_UNPAID = (ReceivableState.OPEN, ReceivableState.INVOICED)
T = TypeVar("T")


def partner_out(
    partner: OcpiPartner, terms: PartnerTerms, unpaid: Sequence[Receivable], now: datetime
) -> m.OcpiPartnerOut:
    """A partner as the API shows it, with its terms and what it owes (``unpaid``) at ``now``."""
    overdue = [r for r in unpaid if r.overdue(now)]
    open_msat = sum(r.amount_msat for r in unpaid)
    overdue_msat = sum(r.amount_msat for r in overdue)
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
        block_when_overdue=terms.block_when_overdue,
        payment_terms_days=terms.payment_terms_days,
        open_receivables=len(unpaid),
        open_msat=open_msat,
        open_sat=sat(open_msat),
        overdue_receivables=len(overdue),
        overdue_msat=overdue_msat,
        overdue_sat=sat(overdue_msat),
        blocked_by_overdue=terms.block_when_overdue and bool(overdue),
    )


def receivable_out(receivable: Receivable, names: dict[str, str], now: datetime) -> m.ReceivableOut:
    """A receivable as the API shows it; ``names``: partner id → the OCPI partner's name."""
    return m.ReceivableOut(
        id=receivable.id,
        partner_id=receivable.partner_id,
        partner_name=names.get(receivable.partner_id),
        session_id=receivable.session_id,
        amount_msat=receivable.amount_msat,
        amount_sat=sat(receivable.amount_msat),
        state=receivable.state.value,
        overdue=receivable.overdue(now),
        created_at=receivable.created_at,
        invoiced_at=receivable.invoiced_at,
        due_at=receivable.due_at,
        paid_at=receivable.paid_at,
        payment_hash=receivable.payment_hash,
        bolt11=receivable.bolt11,
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


class OcpiResource:
    """The roaming partners, what they owe, and the OCPI log."""

    def __init__(self, ctx: ApiContext) -> None:
        self.ctx = ctx

    def _port(self) -> OcpiPartners:
        if self.ctx.ocpi is None:
            raise ApiError(409, "ocpi_disabled", "OCPI is off: set [ocpi] enabled = true")
        return self.ctx.ocpi

    def _roaming(self) -> RoamingService:
        self._port()
        if self.ctx.roaming is None:
            raise ApiError(409, "ocpi_disabled", "roaming receivables are not available here")
        return self.ctx.roaming

    @staticmethod
    def _id(call: Call, name: str = "partner_id", what: str = "partner") -> int:
        text = call.path(name)
        if not text.isdigit() or not 1 <= int(text) <= _MAX_ID:
            raise ApiError(404, "not_found", f"there is no such {what}")
        return int(text)

    async def _shown(self, partners: list[OcpiPartner]) -> list[m.OcpiPartnerOut]:
        """Partners with their terms and what they owe (one read of the unpaid receivables)."""
        roaming = self._roaming()
        unpaid: dict[str, list[Receivable]] = defaultdict(list)
        if len(partners) == 1:
            found = await roaming.receivables(str(partners[0].id), _UNPAID)
        else:
            found = await roaming.receivables(None, _UNPAID)
        for receivable in found:
            unpaid[receivable.partner_id].append(receivable)
        now = self.ctx.clock.now()
        return [
            partner_out(p, await roaming.terms(str(p.id)), unpaid[str(p.id)], now) for p in partners
        ]

    async def _one(self, partner: OcpiPartner) -> m.OcpiPartnerOut:
        return (await self._shown([partner]))[0]

    async def _offer_out(self, offer: OcpiOffer) -> m.OcpiOfferOut:
        return m.OcpiOfferOut(
            partner=await self._one(offer.partner),
            token_a=offer.token_a,
            versions_url=offer.versions_url,
        )

    async def list_partners(self, call: Call) -> m.OcpiPartnersOut:
        """``GET /ocpi/partners``."""
        partners = await self._port().partners()
        return m.OcpiPartnersOut(partners=await self._shown(partners))

    async def create_partner(self, call: Call) -> m.OcpiOfferOut:
        """``POST /ocpi/partners``: an offer, or Strom registers with the partner at once."""
        port = self._port()
        body: m.OcpiPartnerIn = call.body
        if body.versions_url is None or body.token is None:
            offer = await port.offer(body.name)
            call.audit_detail.update(partner=offer.partner.id, offered=True)
            return await self._offer_out(offer)
        partner = await _acting(port.register_with(body.versions_url, body.token, body.name))
        call.audit_detail.update(partner=partner.id, registered=True)
        return m.OcpiOfferOut(partner=await self._one(partner))

    async def get_partner(self, call: Call) -> m.OcpiPartnerOut:
        """``GET /ocpi/partners/{partner_id}``."""
        return await self._one(await _acting(self._port().partner(self._id(call))))

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
        return m.OcpiOfferOut(partner=await self._one(partner))

    async def rotate_partner(self, call: Call) -> m.OcpiOfferOut:
        """``POST /ocpi/partners/{partner_id}/rotate``."""
        result = await _acting(self._port().rotate(self._id(call)))
        if isinstance(result, OcpiOffer):
            call.audit_detail.update(offered=True)
            return await self._offer_out(result)
        return m.OcpiOfferOut(partner=await self._one(result))

    async def patch_partner(self, call: Call) -> m.OcpiPartnerOut:
        """``PATCH /ocpi/partners/{partner_id}``: flags and payment terms, checked first."""
        port, roaming = self._port(), self._roaming()
        body: m.OcpiPartnerPatch = call.body
        partner_id = self._id(call)
        partner = await _acting(port.partner(partner_id))  # unknown: 404, nothing changed
        if body.changes_terms:
            now = await roaming.terms(str(partner_id))
            terms = PartnerTerms(
                now.block_when_overdue
                if body.block_when_overdue is None
                else body.block_when_overdue,
                now.payment_terms_days
                if body.payment_terms_days is None
                else body.payment_terms_days,
            )
            await roaming.set_terms(str(partner_id), terms)
        if body.changes_flags:
            partner = await _acting(
                port.set_flags(partner_id, settlement=body.settlement, blocked=body.blocked)
            )
        call.audit_detail.update(body.model_dump(exclude_none=True))
        return await self._one(partner)

    # --- receivables -------------------------------------------------------------------------

    async def receivables(self, call: Call) -> m.ReceivablesOut:
        """``GET /ocpi/receivables``."""
        port, roaming = self._port(), self._roaming()
        query: m.ReceivablesQuery = call.query
        partner = None if query.partner_id is None else str(query.partner_id)
        if query.overdue:
            found = [
                r
                for r in await roaming.overdue()
                if partner in (None, r.partner_id) and query.state in (None, r.state.value)
            ]
        else:
            states = None if query.state is None else [ReceivableState(query.state)]
            found = await roaming.receivables(partner, states)
        names = {str(p.id): p.name for p in await port.partners()}
        now = self.ctx.clock.now()
        return m.ReceivablesOut(receivables=[receivable_out(r, names, now) for r in found])

    async def _receivable(self, call: Call) -> tuple[RoamingService, Receivable]:
        roaming = self._roaming()
        receivable_id = self._id(call, "receivable_id", "receivable")
        found = await roaming.receivable(receivable_id)
        if found is None:
            raise ApiError(404, "not_found", "there is no such receivable")
        call.audit_detail.update(partner=found.partner_id, amount_msat=found.amount_msat)
        return roaming, found

    async def _answer(self, receivable: Receivable) -> m.ReceivableOut:
        names = {str(p.id): p.name for p in await self._port().partners()}
        return receivable_out(receivable, names, self.ctx.clock.now())

    async def invoice(self, call: Call) -> m.ReceivableOut:
        """``POST /ocpi/receivables/{receivable_id}/invoice``."""
        roaming, found = await self._receivable(call)
        try:
            invoiced = await roaming.invoice(found.id)
        except PartnerRefused as exc:
            raise ApiError(409, "conflict", exc.reason) from None
        except BackendError as exc:
            raise ApiError(503, "lightning_unavailable", f"no invoice made: {exc}") from None
        call.audit_detail.update(payment_hash=invoiced.payment_hash)
        return await self._answer(invoiced)

    async def write_off(self, call: Call) -> m.ReceivableOut:
        """``POST /ocpi/receivables/{receivable_id}/write-off``."""
        roaming, found = await self._receivable(call)
        if not await roaming.write_off(found.id):
            raise ApiError(409, "conflict", f"the receivable is {found.state.value}")
        written = await roaming.receivable(found.id)
        assert written is not None
        return await self._answer(written)

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
                "Set the partner's settlement mode, blocked flag or payment terms",
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
                "/ocpi/receivables",
                self.receivables,
                "What roaming partners owe, session by session (in a state, of a partner, or "
                "only the overdue ones)",
                "ocpi",
                m.ReceivablesOut,
                query=m.ReceivablesQuery,
                conflict=True,
            ),
            e(
                "POST",
                "/ocpi/receivables/{receivable_id}/invoice",
                self.invoice,
                "Offer the partner a Lightning invoice for the receivable (a new one when the "
                "last expired unpaid; one still payable is returned as it is)",
                "ocpi",
                m.ReceivableOut,
                action="ocpi.invoice",
                target="receivable_id",
                conflict=True,
            ),
            e(
                "POST",
                "/ocpi/receivables/{receivable_id}/write-off",
                self.write_off,
                "Give up an unpaid receivable (the partner's new starts are no longer blocked "
                "by it)",
                "ocpi",
                m.ReceivableOut,
                action="ocpi.write_off",
                target="receivable_id",
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
