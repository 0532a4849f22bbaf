"""The CDRs module: the Sender interface (GET) and the durable POST of each partner's CDR.

Theory of operation
-------------------
* ``GET /ocpi/2.2.1/cdrs`` lists the CDRs of the calling partner's sessions that charged and
  ended (paginated; ``last_updated`` is the session's stop: a CDR never changes).
* **The POST** is money, so it is an outbox effect (:data:`~strom_storage.partner_cdrs.PARTNER_CDR`)
  queued in the transaction that makes the partner's bill final
  (:func:`strom_storage.partner_cdrs.queue_partner_cdr`), once per session (idempotency key
  ``partner_cdr:<session id>``). :meth:`Cdrs.send` runs it: it builds the CDR from the stored
  session and POSTs it to the partner's ``cdrs`` RECEIVER endpoint through :class:`OcpiClient`
  (logged). Anything but status 1000 (the partner down, refusing, timing out) raises
  :class:`~strom_services.effects.RetryLater`: the runner retries with exponential backoff
  (up to 5 minutes apart) and, after every attempt failed, leaves the row ``dead`` for the
  operator. A crash after the POST and before the row is marked done POSTs the same CDR (same
  id, same content) again: the partner recognises it by its id.
* **The hook** (:meth:`Cdrs.on_cdr_sent`): once the partner accepted a CDR (1000), every
  registered callback is awaited with ``(partner_id, session_id, cdr)`` before the effect is
  marked done; ``cdr`` is the object as sent, its numbers exact ``Decimal``. A callback that
  raises makes the effect run again (the CDR is not POSTed a second time by this process;
  after a restart it may be): callbacks must be idempotent.
* A partner that is no longer registered, or lists no ``cdrs`` RECEIVER endpoint (it pulls
  its CDRs), gets nothing pushed and no callback runs: the effect is done, with a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ocpi_server.catalogue import Catalogue, NoRate
from ocpi_server.client import OcpiClient, OcpiRequestFailed
from ocpi_server.listing import exact, list_answer, page_request, segments
from ocpi_server.protocol import InterfaceRole, ModuleId
from ocpi_server.pushes import receiver_url
from ocpi_server.server import Answer, Module, OcpiRequest, OcpiServer
from strom_services.effects import Handler, RetryLater
from strom_storage.ocpi import OcpiPartnerRow, OcpiStore
from strom_storage.ocpi_views import OcpiViews
from strom_storage.outbox import OutboxRow
from strom_storage.partner_cdrs import PARTNER_CDR

__all__ = ["CdrSent", "Cdrs"]

log = logging.getLogger(__name__)

CdrSent = Callable[[str, str, dict[str, Any]], Awaitable[None]]
"""``on_cdr_sent(partner_id, session_id, cdr)``: a partner accepted a session's CDR."""


class Cdrs:
    """The CDRs module (Sender) and the CDR effect.

    Args:
        server: the OCPI server the module is registered on.
        catalogue: partners' sessions as CDRs.
        views: the partners' sessions.
        store: the partners.
        client: requests to partners.
        token_of: the token Strom uses on a partner.
    """

    def __init__(
        self,
        server: OcpiServer,
        catalogue: Catalogue,
        views: OcpiViews,
        store: OcpiStore,
        client: OcpiClient,
        token_of: Callable[[OcpiPartnerRow], str],
    ) -> None:
        self.server = server
        self.catalogue = catalogue
        self.views = views
        self.store = store
        self.client = client
        self.token_of = token_of
        self._callbacks: list[CdrSent] = []
        self._accepted: set[str] = set()  # CDRs a partner took whose callbacks still failed
        server.register(Module(ModuleId.CDRS.value, (InterfaceRole.SENDER,), {"GET": self._get}))

    def on_cdr_sent(self, callback: CdrSent) -> None:
        """Await ``callback`` after each CDR a partner accepted (see the module docstring)."""
        self._callbacks.append(callback)

    def handlers(self) -> dict[str, Handler]:
        """The outbox handler of the CDR effect."""
        return {PARTNER_CDR: self.send}

    async def _get(self, call: OcpiRequest) -> Answer:
        segments(call.tail, 0)
        request = page_request(call.request, self.server)
        items = await self.catalogue.cdrs_for(call.partner)
        return list_answer(items, request, self.server, ModuleId.CDRS.value)

    async def send(self, row: OutboxRow) -> None:
        """POST one session's CDR to its partner, then run the callbacks.

        Raises:
            RetryLater: the partner did not accept it (or no fresh rate for its currency).
        """
        partner_id = str(row.payload["partner_id"])
        session_id = str(row.payload["session_id"])
        partner = await self.store.get(int(partner_id))
        if partner is None or partner.state != "registered":
            log.warning(
                "ocpi: CDR of %s not sent: partner %s not registered", session_id, partner_id
            )
            return
        found = await self.views.partner_session(session_id)
        if found is None or found.start.partner_id != partner_id:
            log.error("ocpi: CDR of %s not sent: not partner %s's session", session_id, partner_id)
            return
        try:
            made = await self.catalogue.cdr_object(partner, found)
        except NoRate as exc:
            raise RetryLater(exc.message) from None
        if made is None:
            log.error("ocpi: session %s has no CDR to send (no final bill or charger)", session_id)
            return
        url = receiver_url(partner, ModuleId.CDRS)
        if url is None:
            log.info("ocpi: partner %s takes no CDR pushes (it GETs %s)", partner_id, session_id)
            return
        if row.key not in self._accepted:
            try:
                await self.client.request(
                    "POST", url, self.token_of(partner), partner_id=partner.id, body=exact(made.obj)
                )
            except OcpiRequestFailed as exc:
                raise RetryLater(f"CDR {session_id} to partner {partner_id}: {exc}") from None
            self._accepted.add(row.key)
            log.info("ocpi: partner %s accepted the CDR of %s", partner_id, session_id)
        for callback in self._callbacks:
            await callback(partner_id, session_id, made.obj)
        self._accepted.discard(row.key)
