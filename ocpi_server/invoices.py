"""The ``strom-invoices`` custom module: Lightning invoices for partners (docs/ocpi-lightning.md).

Strom is the SENDER: a partner lists its invoices (``GET``, paginated by ``last_updated``)
or fetches one (``GET /{invoice_id}``), and only its own. When the partner's version details
list a ``strom-invoices`` RECEIVER, every change of an invoice is pushed there too: ``PUT``
for a new or replaced invoice, ``PATCH`` for a change of status. A push is an outbox effect
(:data:`~strom_storage.partner_invoices.PUSH_KIND`, one per version of the invoice), retried
with backoff while the partner does not answer 1000; it sends the invoice as it is when it
runs (the newest), a ``PATCH`` the status of the version that queued it.

The module is announced and served only to partners whose settlement is in bitcoin
(``after_cdr`` or ``streaming``: today every partner; a partner settled another way would not
see it). Making the invoices is :mod:`strom_services.partner_invoices`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, overload

from ocpi_server.client import OcpiClient, OcpiRequestFailed
from ocpi_server.partners import Partners
from ocpi_server.protocol import (
    InterfaceRole,
    OcpiError,
    PageRequest,
    StatusCode,
    format_datetime,
    page,
)
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer
from strom_core.partner_invoices import InvoiceStatus, PartnerInvoice, Settlement
from strom_core.ports.ocpi import PartnerConflict
from strom_services.effects import Handler, RetryLater
from strom_storage.db import Database
from strom_storage.ocpi import OcpiPartnerRow, OcpiStore
from strom_storage.outbox import OutboxRow
from strom_storage.partner_invoices import PUSH_KIND, list_partner_invoices, load_invoice

__all__ = ["MODULE_ID", "Invoices", "invoice_object", "settles_in_bitcoin"]

log = logging.getLogger(__name__)

MODULE_ID = "strom-invoices"
_BITCOIN = frozenset({Settlement.AFTER_CDR.value, Settlement.STREAMING.value})


def settles_in_bitcoin(partner: OcpiPartnerRow) -> bool:
    """Whether the partner settles over Lightning (and so is offered ``strom-invoices``)."""
    return partner.settlement in _BITCOIN


def invoice_object(invoice: PartnerInvoice, country_code: str, party_id: str) -> dict[str, Any]:
    """The draft's ``Invoice`` object of a stored invoice (pure)."""
    found: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": invoice.id,
        "kind": invoice.kind.value,
        "session_id": invoice.session_id,
        "period_start": format_datetime(invoice.period_start),
        "period_end": format_datetime(invoice.period_end),
        "amount_msat": invoice.amount_msat,
        "bolt11": invoice.bolt11,
        "payment_hash": invoice.payment_hash,
        "expires_at": format_datetime(invoice.expires_at),
        "due_at": format_datetime(invoice.due_at),
        "status": invoice.status.value,
        "last_updated": format_datetime(invoice.last_updated),
    }
    if invoice.paid_at is not None:
        found["paid_at"] = format_datetime(invoice.paid_at)
    return found


def _patch_object(payload: dict[str, Any]) -> dict[str, Any]:
    """The PATCH of one version: its status, ``paid_at`` and ``last_updated`` (queued then)."""
    found: dict[str, Any] = {
        "status": InvoiceStatus(payload["status"]).value,
        "last_updated": format_datetime(datetime.fromisoformat(payload["last_updated"])),
    }
    if payload.get("paid_at"):
        found["paid_at"] = format_datetime(datetime.fromisoformat(payload["paid_at"]))
    return found


class _Window(Sequence[Any]):
    """The page of objects read from the database, seen by :func:`page` as the whole list."""

    def __init__(self, offset: int, objects: list[Any], total: int) -> None:
        self.offset = offset
        self.objects = objects
        self.total = total

    def __len__(self) -> int:
        return self.total

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):  # page() asks for [offset : offset + limit]
            return self.objects
        return self.objects[index - self.offset]


class Invoices:
    """The ``strom-invoices`` SENDER endpoints and the pushes to the partners' receivers.

    Args:
        server: the OCPI server (the module is registered on it here).
        db: the database (invoices).
        store: the partners.
        client: requests to partners.
        partners: the tokens Strom uses on partners.
    """

    def __init__(
        self,
        server: OcpiServer,
        db: Database,
        store: OcpiStore,
        client: OcpiClient,
        partners: Partners,
    ) -> None:
        self.server = server
        self.db = db
        self.store = store
        self.client = client
        self.partners = partners
        server.register(
            Module(
                MODULE_ID,
                (InterfaceRole.SENDER,),
                {"GET": self._get},
                offered_to=settles_in_bitcoin,
            )
        )

    def handlers(self) -> dict[str, Handler]:
        """The outbox handlers of this module (the pushes)."""
        return {PUSH_KIND: self.push}

    def _party(self) -> tuple[str, str]:
        ocpi = self.server.live.current.ocpi
        return ocpi.country_code, ocpi.party_id

    # --- SENDER ------------------------------------------------------------------------------

    async def _get(self, call: OcpiRequest) -> Answer:
        partner_id = str(call.partner.id)
        if call.tail:
            return await self._one(partner_id, call.tail.strip("/"))
        limit = self.server.page_limit
        request = PageRequest.parse(call.request.query, limit)
        found = await self.db.read(
            partial(
                list_partner_invoices,
                partner_id=partner_id,
                date_from=request.date_from,
                date_to=request.date_to,
                offset=request.offset,
                limit=min(request.limit, limit),
            )
        )
        country, party = self._party()
        objects = [invoice_object(i, country, party) for i in found.invoices]
        url = f"{self.server.base_url}/2.2.1/{MODULE_ID}"
        served = page(_Window(request.offset, objects, found.total), request, url, limit)
        return Answer(served.data, headers=served.headers)

    async def _one(self, partner_id: str, wanted: str) -> Answer:
        if not wanted or "/" in wanted or len(wanted) > 36:
            raise OcpiError(StatusCode.INVALID_PARAMETERS, "expected /{invoice_id}")
        found = await self.db.read(partial(load_invoice, invoice_id=wanted))
        if found is None or found.partner_id != partner_id:
            raise OcpiError(StatusCode.CLIENT_ERROR, f"no invoice {wanted}", 404)
        country, party = self._party()
        return Answer(invoice_object(found, country, party))

    # --- pushes to the partner's RECEIVER ------------------------------------------------------

    async def push(self, row: OutboxRow) -> None:
        """Tell the partner of an invoice's change (outbox handler).

        Nothing is sent when the partner lists no ``strom-invoices`` receiver (it pulls), is
        gone or unregistered, or the invoice is unknown.

        Raises:
            RetryLater: the partner did not answer 1000.
        """
        invoice = await self.db.read(partial(load_invoice, invoice_id=row.payload["invoice_id"]))
        if invoice is None or not invoice.partner_id.isdigit():
            return
        partner = await self.store.get(int(invoice.partner_id))
        if partner is None or partner.state != "registered":
            return
        url = _receiver(partner)
        if url is None:
            return
        try:
            token = self.partners.token_for(partner)
        except PartnerConflict:
            return
        country, party = self._party()
        method = str(row.payload.get("method", "PUT"))
        body = (
            _patch_object(row.payload)
            if method == "PATCH"
            else invoice_object(invoice, country, party)
        )
        target = f"{url.rstrip('/')}/{country}/{party}/{invoice.id}"
        try:
            await self.client.request(method, target, token, partner_id=partner.id, body=body)
        except OcpiRequestFailed as exc:
            raise RetryLater(f"invoice {invoice.id}: {exc}") from None
        log.info(
            "partner %s: invoice %s pushed (%s, %s)",
            partner.id,
            invoice.id,
            method,
            invoice.status.value,
        )


def _receiver(partner: OcpiPartnerRow) -> str | None:
    for endpoint in partner.endpoints:
        if endpoint.get("identifier") == MODULE_ID and endpoint.get("role") == "RECEIVER":
            url = endpoint.get("url")
            return url if isinstance(url, str) else None
    return None
