"""Settlement in bitcoin with roaming partners: their Lightning invoices, made and followed.

Theory of operation
-------------------
Everything here is driven by the database, so it survives a restart: one loop
(:meth:`PartnerInvoices.run`, one process in a cluster) looks every ``[ocpi]
invoice_check_s`` seconds and

1. stops each streaming session whose interval invoice is unpaid past its due time (once:
   the invoice's ``stop_asked`` and the session's ``StopRequested`` are one transaction);
2. invoices each streaming partner's charging session whose last interval ended
   ``stream_interval_s`` ago (or that started that long ago) for the cost accrued since:
   a BOLT 11 expiring at its due time, a ``payments`` row of kind ``stream`` (the one
   settlement step records it), the invoice and its push in one transaction;
3. marks ``EXPIRED`` the invoices whose BOLT 11 expired unpaid, and makes a receivable's
   expired invoice anew (same id, new BOLT 11, pushed again) while the receivable is open;
4. offers an invoice for every partner's receivable not offered yet (``after_cdr``: kind
   ``CDR``; ``streaming``: the rest, the last ``INTERVAL``). It waits while an interval of
   the session may still be paid, so a receivable's invoice never asks for money an interval
   invoice asks too.

Step 4 is the after-CDR trigger for now (it follows the receivable being opened); the OCPI
sessions/CDRs side calls :meth:`PartnerInvoices.on_cdr_sent` once a partner accepted a CDR,
which offers at once. Every change of an invoice queues one push to the partner (outbox kind
:data:`~strom_storage.partner_invoices.PUSH_KIND`, run by the OCPI front door).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig
from strom_core.errors import BackendError, IllegalTransition, StorageError
from strom_core.partner_invoices import (
    InvoiceKind,
    InvoiceStatus,
    PartnerInvoice,
    Settlement,
    interval_amount_msat,
    invoice_id,
)
from strom_core.roaming import PartnerRefused, Receivable, ReceivableState
from strom_core.session import State, Transition
from strom_core.session_events import StopReason, StopRequested
from strom_lightning import Invoice, LightningBackend
from strom_services.payments import STREAM_KIND
from strom_services.roaming import RoamingService
from strom_storage.db import Connection
from strom_storage.partner_invoices import (
    change_invoice,
    charging_sessions_of,
    expired_open_invoices,
    insert_invoice,
    load_invoice,
    mark_stop_asked,
    partner_settlements,
    payment_expires_at,
    queue_push,
    session_invoices,
    unoffered_receivables,
    unpaid_intervals_due,
)
from strom_storage.payments import insert_payments, new_payment_row
from strom_storage.sessions import apply_event, load_session

__all__ = ["PartnerInvoices"]

log = logging.getLogger(__name__)

_LIGHTNING = frozenset({Settlement.AFTER_CDR.value, Settlement.STREAMING.value})


class PartnerInvoices:
    """Makes, replaces and follows the invoices offered to roaming partners.

    Args:
        roaming: partners' sessions and receivables.
        backend: the lightning backend.
        live: the configuration in force (``[ocpi]`` intervals and times).
        clock: the current time.
    """

    def __init__(
        self,
        roaming: RoamingService,
        backend: LightningBackend,
        live: LiveConfig,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.roaming = roaming
        self.store = roaming.store
        self.db = roaming.db
        self.backend = backend
        self.live = live
        self.clock = clock

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Look every ``[ocpi] invoice_check_s`` seconds until cancelled."""
        while True:
            try:
                await self.tick()
            except (BackendError, StorageError) as exc:
                log.warning("partner invoices: will try again: %s", exc)
            await asyncio.sleep(self.live.current.ocpi.invoice_check_s)

    async def tick(self) -> None:
        """One look: stop unpaid streams, invoice intervals, replace expired, offer new."""
        settlements = await self.db.read(partner_settlements)
        streaming = [p for p, s in settlements.items() if s == Settlement.STREAMING.value]
        await self.stop_unpaid()
        await self.bill_intervals(streaming)
        await self.follow_expired()
        await self.offer_open([p for p, s in settlements.items() if s in _LIGHTNING])

    async def on_cdr_sent(self, partner_id: str, session_id: str, cdr: Any) -> None:
        """The partner accepted the session's CDR: offer the invoice of its receivable now."""
        receivable = await self.roaming.receivable_of(session_id)
        if receivable is None or receivable.partner_id != partner_id:
            return
        if receivable.state is ReceivableState.OPEN:
            await self.offer(receivable)

    # --- streaming ----------------------------------------------------------------------------

    async def stop_unpaid(self) -> int:
        """Stop the sessions whose interval invoice is unpaid past its due time; how many."""
        now, at = self.clock.now(), self.store.clock.now()
        due = await self.db.read(partial(unpaid_intervals_due, now=now))
        stopped = 0
        for invoice in due:
            transitions = await self.db.write(partial(self._stop, invoice=invoice, at=at))
            self.store.committed(transitions)
            if transitions:
                stopped += 1
                log.warning(
                    "partner %s: session %s stopped: interval invoice %s (%s msat) unpaid at %s",
                    invoice.partner_id,
                    invoice.session_id,
                    invoice.id,
                    invoice.amount_msat,
                    invoice.due_at.isoformat(),
                )
        return stopped

    @staticmethod
    def _stop(conn: Connection, invoice: PartnerInvoice, at: datetime) -> list[Transition]:
        current = load_invoice(conn, invoice.id, lock=True)
        if current is None or current.status is not InvoiceStatus.OPEN or current.stop_asked:
            return []  # paid meanwhile, or stopped by another look
        mark_stop_asked(conn, invoice.id)
        try:
            return [
                apply_event(conn, invoice.session_id, StopRequested(StopReason.INTERVAL_UNPAID), at)
            ]
        except IllegalTransition:
            return []  # stopping or stopped already: its bill takes the debt

    async def bill_intervals(self, partner_ids: list[str]) -> int:
        """Invoice every interval that ended for these partners' charging sessions; how many."""
        made = 0
        for session_id in await self.db.read(
            partial(charging_sessions_of, partner_ids=partner_ids)
        ):
            made += await self._bill_interval(session_id)
        return made

    async def _bill_interval(self, session_id: str) -> int:
        ocpi = self.live.current.ocpi
        session = await self.store.get(session_id)
        earlier = await self.db.read(partial(session_invoices, session_id=session_id))
        now = self.clock.now()
        start = max((i.period_end for i in earlier), default=session.started_at)
        if start is None or now < start + timedelta(seconds=ocpi.stream_interval_s):
            return 0
        amount = interval_amount_msat(session.postpaid_msat, earlier)
        if amount <= 0:
            return 0  # nothing delivered and no time-based cost: no invoice
        seq = max((i.seq for i in earlier), default=0) + 1
        bolt11 = await self.backend.create_invoice(
            amount,
            memo=f"Strom charging session {session_id}, interval {seq}",
            expiry_s=ocpi.stream_due_s,
        )
        partner = session.payer.removeprefix("partner:")
        invoice = PartnerInvoice(
            id=invoice_id(session_id, seq),
            partner_id=partner,
            session_id=session_id,
            seq=seq,
            kind=InvoiceKind.INTERVAL,
            receivable_id=None,
            period_start=start,
            period_end=now,
            amount_msat=amount,
            payment_hash=bolt11.payment_hash,
            bolt11=bolt11.bolt11,
            expires_at=bolt11.expires_at,
            due_at=now + timedelta(seconds=ocpi.stream_due_s),
            status=InvoiceStatus.OPEN,
            paid_at=None,
            version=1,
            stop_asked=False,
            last_updated=now,
        )
        stored = await self.db.write(partial(self._store_interval, invoice=invoice, bolt11=bolt11))
        if stored:
            log.info(
                "partner %s: session %s interval invoice %s for %s msat, due %s",
                partner,
                session_id,
                invoice.id,
                amount,
                invoice.due_at.isoformat(),
            )
        return int(stored)

    @staticmethod
    def _store_interval(conn: Connection, invoice: PartnerInvoice, bolt11: Invoice) -> bool:
        if load_session(conn, invoice.session_id).state is not State.CHARGING:
            return False  # stopped meanwhile: its final bill takes it
        if not insert_invoice(conn, invoice, invoice.last_updated):
            return False  # another look made this interval's invoice first
        row = new_payment_row(
            session_id=invoice.session_id,
            kind=STREAM_KIND,
            payment_hash=bolt11.payment_hash,
            amount_msat=bolt11.amount_msat,
            bolt11=bolt11.bolt11,
            expires_at=bolt11.expires_at,
            zap_request=None,
            now=invoice.last_updated,
        )
        insert_payments(conn, [row])
        queue_push(conn, invoice, "PUT", invoice.last_updated)
        return True

    # --- receivables --------------------------------------------------------------------------

    async def follow_expired(self) -> int:
        """Mark expired invoices ``EXPIRED``; make a receivable's anew. How many expired."""
        now = self.clock.now()
        expired = await self.db.read(expired_open_invoices)
        for invoice in expired:
            await self.db.write(partial(_expire, invoice_id=invoice.id, now=now))
            log.info("partner %s: invoice %s expired unpaid", invoice.partner_id, invoice.id)
            if invoice.receivable_id is None:
                continue  # an interval is not replaced: its amount stays in the receivable
            receivable = await self.roaming.records.receivable(invoice.receivable_id)
            if receivable is not None and receivable.state is ReceivableState.INVOICED:
                await self.offer(receivable)
        return len(expired)

    async def offer_open(self, partner_ids: list[str]) -> int:
        """Offer an invoice for these partners' receivables not offered yet; how many offered."""
        offered = 0
        for receivable in await self.db.read(
            partial(unoffered_receivables, partner_ids=partner_ids)
        ):
            offered += await self.offer(receivable) is not None
        return offered

    async def offer(self, receivable: Receivable) -> PartnerInvoice | None:
        """Invoice a receivable and hand the invoice to the partner (a new one, or a replacement).

        Returns:
            The partner's invoice as stored; None when nothing was offered now (an interval
            of the session may still be paid, the receivable changed, or is paid).
        """
        settlements = await self.db.read(partner_settlements)
        streaming = settlements.get(receivable.partner_id) == Settlement.STREAMING.value
        session = await self.store.get(receivable.session_id)
        earlier = await self.db.read(partial(session_invoices, session_id=receivable.session_id))
        mine = next((i for i in earlier if i.receivable_id == receivable.id), None)
        intervals = [i for i in earlier if i.receivable_id is None]
        if mine is not None:
            seq = mine.seq
        elif streaming or intervals:
            seq = max((i.seq for i in intervals), default=0) + 1
        else:
            seq = 0
        start = max((i.period_end for i in intervals), default=session.started_at)
        period = (start or receivable.created_at, session.stopped_at or receivable.created_at)
        made: list[PartnerInvoice] = []

        def record(conn: Connection, invoiced: Receivable) -> None:
            made.append(_record_offer(conn, invoiced, seq, period, self.clock.now()))

        try:
            await self.roaming.invoice(receivable.id, within=record)
        except PartnerRefused as exc:
            log.info("receivable %s: no invoice offered: %s", receivable.id, exc.reason)
            return None
        if made:
            log.info(
                "partner %s: invoice %s offered for receivable %s (%s msat)",
                receivable.partner_id,
                made[0].id,
                receivable.id,
                made[0].amount_msat,
            )
        return made[0] if made else None


def _expire(conn: Connection, invoice_id: str, now: datetime) -> None:
    current = load_invoice(conn, invoice_id, lock=True)
    if current is None or current.status is not InvoiceStatus.OPEN:
        return
    expired = change_invoice(conn, invoice_id, now, status=InvoiceStatus.EXPIRED.value)
    queue_push(conn, expired, "PATCH", now)


def _record_offer(
    conn: Connection,
    invoiced: Receivable,
    seq: int,
    period: tuple[datetime, datetime],
    now: datetime,
) -> PartnerInvoice:
    """The partner's invoice for a receivable's new BOLT 11 (inserted, or replaced), pushed."""
    assert invoiced.payment_hash is not None
    assert invoiced.bolt11 is not None
    assert invoiced.due_at is not None
    expires_at = payment_expires_at(conn, invoiced.payment_hash)
    the_id = invoice_id(invoiced.session_id, seq)
    values: dict[str, Any] = {
        "amount_msat": invoiced.amount_msat,
        "payment_hash": invoiced.payment_hash,
        "bolt11": invoiced.bolt11,
        "expires_at": expires_at,
        "due_at": invoiced.due_at,
        "status": InvoiceStatus.OPEN.value,
    }
    if load_invoice(conn, the_id) is not None:
        stored = change_invoice(conn, the_id, now, **values)
    else:
        stored = PartnerInvoice(
            id=the_id,
            partner_id=invoiced.partner_id,
            session_id=invoiced.session_id,
            seq=seq,
            kind=InvoiceKind.CDR if seq == 0 else InvoiceKind.INTERVAL,
            receivable_id=invoiced.id,
            period_start=period[0],
            period_end=period[1],
            amount_msat=invoiced.amount_msat,
            payment_hash=invoiced.payment_hash,
            bolt11=invoiced.bolt11,
            expires_at=expires_at,
            due_at=invoiced.due_at,
            status=InvoiceStatus.OPEN,
            paid_at=None,
            version=1,
            stop_asked=False,
            last_updated=now,
        )
        insert_invoice(conn, stored, now)
    queue_push(conn, stored, "PUT", now)
    return stored
