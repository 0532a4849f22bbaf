"""Money out: LNURL-withdraw refunds, paid once, only to the payer.

Theory of operation
-------------------
* The withdraw link of a session carries the session secret, which only its payer has (the
  success-action page or a DM). Each time a wallet opens it (:meth:`RefundService.request`),
  Strom mints a fresh ``k1`` from 32 random bytes, stores only its SHA-256, and gives it an
  expiry. If the session is still charging, opening the link first stops the charge, because
  the refundable amount is only known once the charger has reported the final meter value.
* :meth:`RefundService.claim` checks the wallet's invoice (signature, network, exact amount,
  expiry, never seen before), then — in one transaction — consumes the k1 (``offered`` →
  ``claimed``, guarded so only one of many concurrent callbacks can win), debits the session
  (``RefundClaimed``: refundable → in flight) and queues the ``pay_refund`` effect. The invoice's
  payment hash is unique across all refunds, so one invoice is paid at most once.
* :meth:`RefundService.pay` (the effect) calls the backend's ``pay_invoice`` at most once per
  refund: the row is marked ``paying`` in its own commit *before* the call. After a crash, or
  when the backend's answer was unknown, only ``lookup_payment`` is used, until the result is
  definite: success → ``RefundPaid``; definite failure → ``RefundFailed`` (the amount becomes
  claimable again, with a new k1 and a new invoice). An unknown result stays pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from strom.config import SessionsConfig
from strom.crashpoints import crashpoint
from strom.effects import RetryLater
from strom.errors import IllegalTransition, LedgerError, StromError
from strom.lightning import (
    Failed,
    InvoiceRejected,
    LightningBackend,
    PaymentResult,
    Succeeded,
    check_withdraw_invoice,
)
from strom.lightning.checks import DecodedInvoice
from strom.session import (
    POST_STOP_STATES,
    RefundClaimed,
    RefundFailed,
    RefundPaid,
    Session,
    State,
    StopReason,
    StopRequested,
    Transition,
)
from strom.storage.outbox import OutboxRow, enqueue
from strom.storage.schema import refunds, sessions
from strom.storage.sessions import SessionStore, hash_secret

__all__ = ["RefundError", "RefundOffer", "RefundService", "min_refund", "verify_secret"]

log = logging.getLogger(__name__)

K1_LIFETIME = timedelta(minutes=10)


class RefundError(StromError):
    """A refund request cannot be served; ``reason`` is shown by the wallet."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RefundOffer:
    """A fresh withdraw offer for a session's refundable balance."""

    k1: str
    amount_msat: int
    session: Session


def min_refund(refundable_msat: int) -> int:
    """The least a wallet may withdraw: the balance rounded down to whole sats.

    Final bills leave whole-sat refunds, but a payment of fractional sats can leave a sub-sat
    remainder that wallets cannot invoice; they may take the whole sats.
    """
    return max(refundable_msat - refundable_msat % 1000, min(refundable_msat, 1000))


def verify_secret(secret: str | None, stored_hash: str) -> bool:
    """Constant-time check of a session secret against its stored hash."""
    if not secret or len(secret) > 200:
        return False
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class RefundService:
    """LNURL-withdraw refunds for sessions."""

    def __init__(
        self,
        store: SessionStore,
        backend: LightningBackend,
        config: SessionsConfig,
        *,
        network: str,
        clock: Callable[[], datetime] = _utcnow,
        stop_wait_s: float = 20.0,
    ) -> None:
        self.store = store
        self.db = store.db
        self.backend = backend
        self.config = config
        self.network = network
        self.clock = clock
        self.stop_wait_s = stop_wait_s

    async def authenticate(self, session_id: str, secret: str | None) -> Session:
        """The session, if ``secret`` is its secret.

        Raises:
            RefundError: unknown session or wrong secret (the same answer for both).
        """
        async with self.db.reader() as conn:
            row = (
                await conn.execute(
                    select(sessions.c.secret_hash).where(sessions.c.id == session_id)
                )
            ).first()
        if row is None or not verify_secret(secret, row.secret_hash):
            raise RefundError("this refund link is not valid")
        return await self.store.get(session_id)

    async def request(self, session_id: str, secret: str | None) -> RefundOffer:
        """LUD-03 first step: stop the charge if needed, then offer the refundable balance.

        Raises:
            RefundError: bad link, nothing to refund, a refund already in flight, or the
                charger has not confirmed the stop yet.
        """
        session = await self.authenticate(session_id, secret)
        if session.state is State.CHARGING or session.state in (State.PAID, State.STARTING):
            # If it moved on meanwhile, the state is looked at again below.
            with contextlib.suppress(IllegalTransition):
                await self.store.apply(session_id, StopRequested(StopReason.INITIATOR))
            session = await self._wait_until_stopped(session_id)
        if session.state is State.STOPPING:
            session = await self._wait_until_stopped(session_id)
        if session.state is State.REFUND_PENDING:
            raise RefundError("a refund for this session is already being paid")
        if session.state not in POST_STOP_STATES:
            raise RefundError(
                "the charger has not confirmed the stop yet; scan again in a few seconds"
            )
        if session.refundable_msat < 1000:
            raise RefundError("nothing (or less than 1 sat) is left to refund for this session")
        k1 = secrets.token_bytes(32).hex()
        now = self.clock()
        async with self.db.transaction() as conn:
            await conn.execute(
                insert(refunds).values(
                    id=secrets.token_hex(8),
                    session_id=session_id,
                    k1_hash=hash_secret(k1),
                    state="offered",
                    detail="",
                    created_at=now,
                    expires_at=now + K1_LIFETIME,
                    updated_at=now,
                )
            )
        return RefundOffer(k1=k1, amount_msat=session.refundable_msat, session=session)

    async def _wait_until_stopped(self, session_id: str) -> Session:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.stop_wait_s
        session = await self.store.get(session_id)
        while session.state not in POST_STOP_STATES and loop.time() < deadline:
            await asyncio.sleep(0.1)
            session = await self.store.get(session_id)
        return session

    async def claim(self, session_id: str, k1: str | None, invoice: str | None) -> str:
        """LUD-03 callback: check the invoice, debit the session, queue the payment.

        Returns:
            The refund id.

        Raises:
            RefundError: bad or used k1, bad invoice, nothing refundable.
        """
        if not k1 or len(k1) != 64:
            raise RefundError("k1 is missing or malformed")
        if not invoice:
            raise RefundError("pr (the invoice to pay) is missing")
        now = self.clock()
        async with self.db.reader() as conn:
            offer = (
                await conn.execute(
                    select(refunds).where(
                        refunds.c.k1_hash == hash_secret(k1), refunds.c.session_id == session_id
                    )
                )
            ).first()
        if offer is None:
            raise RefundError("this withdraw request is not known; scan the link again")
        if offer.state != "offered":
            raise RefundError("this withdraw request was already used")
        if offer.expires_at <= now:
            raise RefundError("this withdraw request has expired; scan the link again")
        session = await self.store.get(session_id)
        try:
            decoded = check_withdraw_invoice(
                invoice,
                network=self.network,
                min_msat=min_refund(session.refundable_msat),
                max_msat=session.refundable_msat,
                now=now,
                min_remaining_s=30,
            )
        except InvoiceRejected as exc:
            raise RefundError(str(exc)) from None
        return await self._debit(offer.id, session_id, decoded, now)

    async def _debit(
        self, refund_id: str, session_id: str, decoded: DecodedInvoice, now: datetime
    ) -> str:
        payment_hash = decoded.payment_hash
        bolt11 = decoded.bolt11
        assert decoded.amount_msat is not None  # checked by check_withdraw_invoice
        amount = int(decoded.amount_msat)
        max_fee = max(1_000, amount * self.config.refund_max_fee_ppm // 1_000_000)
        try:
            async with self.db.transaction() as conn:
                taken = await conn.execute(
                    update(refunds)
                    .where(refunds.c.id == refund_id, refunds.c.state == "offered")
                    .values(
                        state="claimed",
                        amount_msat=amount,
                        bolt11=bolt11,
                        payment_hash=payment_hash,
                        updated_at=now,
                    )
                )
                if taken.rowcount != 1:
                    raise RefundError("this withdraw request was already used")
                transition = await self.store.apply_in(
                    conn, session_id, RefundClaimed(refund_id, amount)
                )
                await enqueue(
                    conn,
                    key=f"refund:{refund_id}",
                    kind="pay_refund",
                    payload={"refund_id": refund_id, "max_fee_msat": max_fee},
                    session_id=session_id,
                    now=now,
                )
        except IntegrityError:
            raise RefundError("this invoice was already submitted; it is paid only once") from None
        except (IllegalTransition, LedgerError) as exc:
            log.info("session %s: refund claim refused: %s", session_id, exc)
            raise RefundError("a refund for this session is already being paid") from None
        self.store.committed([transition])
        log.info(
            "session %s: refund %s claimed: %s msat to invoice %s",
            session_id,
            refund_id,
            amount,
            payment_hash,
        )
        return refund_id

    async def pay(self, row: OutboxRow) -> None:
        """The ``pay_refund`` effect (see module docstring)."""
        refund_id = row.payload["refund_id"]
        async with self.db.reader() as conn:
            refund = (await conn.execute(select(refunds).where(refunds.c.id == refund_id))).one()
        if refund.state in ("paid", "failed"):
            return
        if refund.state == "claimed":
            await self._mark(refund_id, "paying")
            crashpoint("refund.before_pay")
            result = await self.backend.pay_invoice(
                refund.bolt11, max_fee_msat=row.payload["max_fee_msat"], timeout_s=60
            )
            crashpoint("refund.after_pay")
        else:  # paying or unknown: a call may have gone out; never pay again, only look
            result = await self.backend.lookup_payment(refund.payment_hash)
        await self._settle(refund.session_id, refund_id, result)

    async def _settle(self, session_id: str, refund_id: str, result: PaymentResult) -> None:
        transitions: list[Transition] = []
        if isinstance(result, Succeeded):
            async with self.db.transaction() as conn:
                await self._set(conn, refund_id, "paid", fee=int(result.fee_msat))
                event = RefundPaid(refund_id, fee_msat=int(result.fee_msat))
                transitions.append(await self.store.apply_in(conn, session_id, event))
            log.info(
                "session %s: refund %s paid (fee %s msat)", session_id, refund_id, result.fee_msat
            )
        elif isinstance(result, Failed):
            async with self.db.transaction() as conn:
                await self._set(conn, refund_id, "failed", detail=result.reason)
                event_failed = RefundFailed(refund_id, result.reason)
                transitions.append(await self.store.apply_in(conn, session_id, event_failed))
            log.warning(
                "session %s: refund %s failed: %s (claimable again)",
                session_id,
                refund_id,
                result.reason,
            )
        else:
            reason = result.reason
            await self._mark(refund_id, "unknown", detail=reason)
            raise RetryLater(f"refund {refund_id} outcome unknown: {reason}")
        self.store.committed(transitions)

    async def _mark(self, refund_id: str, state: str, detail: str = "") -> None:
        async with self.db.transaction() as conn:
            await self._set(conn, refund_id, state, detail=detail)

    async def _set(
        self,
        conn: AsyncConnection,
        refund_id: str,
        state: str,
        *,
        fee: int | None = None,
        detail: str = "",
    ) -> None:
        values: dict[str, object] = {"state": state, "updated_at": self.clock(), "detail": detail}
        if fee is not None:
            values["fee_msat"] = fee
        await conn.execute(update(refunds).where(refunds.c.id == refund_id).values(**values))
