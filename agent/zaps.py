"""Zap receipts: publishing the charger's own, and acting on those that reach it.

Publishing: once a zap invoice is settled,
:meth:`strom_services.payments.PaymentService.settle` queues a
``zap_receipt`` outbox row; its handler (:meth:`agent.runtime.AgentRuntime.on_zap_receipt`)
has the charger's agent sign the kind-9735 receipt and publish it to the zap request's relays
and the agents' write relays. ``created_at`` is the settlement time, so a second run of the
row publishes an event with the same id, which relays drop.

Consuming: a receipt addressed to the charger is acted on only if (1) it is fresh, (2) it is
signed by the charger's own key and consistent with its invoice and embedded request
(:func:`~strom_nostr.zap_receipt.verify_zap_receipt`), (3) its id was not seen before, (4) the
invoice is one of Strom's zap invoices for that very request, and (5) the lightning backend says
the invoice is settled. A receipt alone is never proof of payment. Then it calls the one idempotent
settlement step, so a session starts once whether the backend's notification or the receipt
comes first.
"""

from __future__ import annotations

import logging

from agent.context import ChargerContext
from agent.relays import PublishResult
from strom_core.errors import BackendError
from strom_lightning import InvoiceNotFound, InvoiceState
from strom_nostr.discovery import status_coordinate
from strom_nostr.errors import InvalidEvent
from strom_nostr.event import Event, parse_event
from strom_nostr.zap_receipt import ZapReceiptError, verify_zap_receipt, zap_receipt
from strom_nostr.zap_request import MAX_ZAP_REQUEST_BYTES
from strom_storage.agents import claim_event, release_event, zap_request_of

__all__ = ["consume_receipt", "publish_receipt", "request_relays"]

log = logging.getLogger(__name__)


def request_relays(zap_request_json: str) -> tuple[str, ...]:
    """The relays a zap request asks its receipt to be published to."""
    try:
        request = parse_event(zap_request_json, verify=False, max_bytes=MAX_ZAP_REQUEST_BYTES)
    except InvalidEvent:
        return ()
    relays = [url for tag in request.tags if tag[0] == "relays" for url in tag[1:]]
    return tuple(dict.fromkeys(relays))


async def publish_receipt(
    agent: ChargerContext,
    zap_request_json: str,
    bolt11: str,
    paid_at: int,
    preimage: str | None = None,
) -> PublishResult:
    """Sign the receipt of a paid zap and publish it.

    Raises:
        BuildError: the invoice does not commit to the request, or the preimage is wrong.
    """
    receipt = zap_receipt(
        agent.key.secret,
        zap_request_json,
        bolt11_invoice=bolt11,
        paid_at=paid_at,
        preimage=preimage,
    )
    result = await agent.services.pool.publish(
        receipt, extra_relays=request_relays(zap_request_json)
    )
    log.info(
        "charger %s: zap receipt %s published to %d relay(s)",
        agent.charger_id,
        receipt.id,
        len(result.ok),
    )
    return result


async def consume_receipt(agent: ChargerContext, event: Event) -> str:
    """Act on a zap receipt addressed to this charger (see the module docstring).

    Returns:
        What became of it: ``settled``, ``already-settled``, ``stale``, ``refused``,
        ``replay``, ``foreign-invoice``, ``unknown-invoice``, ``backend-error`` or ``unpaid``.
    """
    services = agent.services
    settings = services.settings
    now = services.clock.unix()
    if not now - settings.receipt_max_age_s <= event.created_at <= now + settings.max_future_s:
        log.info("charger %s: zap receipt %s ignored: out of date", agent.charger_id, event.id)
        return "stale"
    try:
        verified = verify_zap_receipt(
            event,
            own_pubkey=agent.pubkey,
            status_coordinate=status_coordinate(agent.pubkey, agent.charger_id),
        )
    except ZapReceiptError as exc:
        log.warning(
            "charger %s: zap receipt %s refused: %s", agent.charger_id, event.id, exc.reason
        )
        return "refused"
    if not await claim_event(services.db, event.id, event.kind, event.pubkey, now):
        log.info("charger %s: zap receipt %s seen before", agent.charger_id, event.id)
        return "replay"
    payment_hash = verified.payment_hash
    stored = await zap_request_of(services.db, payment_hash)
    if stored is None or stored.get("description") != verified.request.description:
        log.warning(
            "charger %s: zap receipt %s names invoice %s, which is not a zap invoice of ours",
            agent.charger_id,
            event.id,
            payment_hash,
        )
        return "foreign-invoice"
    try:
        status = await services.backend.lookup_invoice(payment_hash)
    except InvoiceNotFound:
        log.warning(
            "charger %s: zap receipt for unknown invoice %s", agent.charger_id, payment_hash
        )
        return "unknown-invoice"
    except BackendError as exc:
        # Not a verdict: let the receipt be looked at again if a relay sends it again.
        await release_event(services.db, event.id)
        log.warning(
            "charger %s: zap receipt %s not checked, lightning backend: %s",
            agent.charger_id,
            event.id,
            exc,
        )
        return "backend-error"
    if status.state is not InvoiceState.SETTLED:
        log.warning(
            "charger %s: zap receipt %s ignored: invoice %s is %s, not settled",
            agent.charger_id,
            event.id,
            payment_hash,
            status.state.value,
        )
        return "unpaid"
    recorded = await services.payments.settle(payment_hash, status.received_msat)
    log.info(
        "charger %s: zap receipt %s confirmed by the backend; settlement %s",
        agent.charger_id,
        event.id,
        "recorded" if recorded else "was already recorded",
    )
    return "settled" if recorded else "already-settled"
