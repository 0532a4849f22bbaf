"""Money out: LNURL-withdraw refunds, paid once, only to the payer.

Theory of operation
-------------------
* The withdraw link of a session carries the session secret, which only its payer has (the
  success-action page or a DM). When a wallet opens it (:meth:`RefundService.request`), Strom
  offers the refundable balance with a ``k1`` of 32 bytes derived from the session secret and
  a random offer id (HMAC-SHA256, so nobody without the secret can compute it); only its
  SHA-256 is stored, with an expiry. Opening the link again while that offer is fresh hands
  out the same ``k1`` (the id is in the row, the secret in the link) instead of a new row.
* If the session is still charging, opening the link first stops the charge and waits for
  the charger's confirmation, because the refundable amount is only known once the charger has
  reported the final meter value. The wait has one deadline (``stop_wait_s``, 20 s), wakes on
  the session's committed transitions and polls the database only as a fallback (another
  process may record the stop). Openings of one session share one in-flight attempt: the
  concurrent ones wait for the same result, and only new attempts take a token from the
  per-session bucket (``admit_opening``).
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
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from strom_core.bolt11 import DecodedInvoice
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import SessionsConfig
from strom_core.crashpoints import crashpoint
from strom_core.errors import IllegalTransition, LedgerError, StromError
from strom_core.session import POST_STOP_STATES, Session, State, Transition
from strom_core.session_events import (
    RefundClaimed,
    RefundFailed,
    RefundPaid,
    StopReason,
    StopRequested,
)
from strom_lightning import (
    Failed,
    InvoiceRejected,
    LightningBackend,
    PaymentResult,
    Succeeded,
    check_withdraw_invoice,
)
from strom_services.effects import RetryLater
from strom_storage.db import Connection
from strom_storage.outbox import OutboxRow, queue_effect
from strom_storage.refunds import (
    InvoiceAlreadySubmitted,
    RefundStore,
    claim_refund,
    set_refund_state,
)
from strom_storage.sessions import SessionStore, apply_event, hash_secret

__all__ = [
    "RefundError",
    "RefundOffer",
    "RefundService",
    "derive_k1",
    "min_refund",
    "verify_secret",
]

log = logging.getLogger(__name__)

K1_LIFETIME = timedelta(minutes=10)
# An offer is handed out again while at least this much of its lifetime is left.
K1_REUSE_MIN_LEFT = timedelta(minutes=5)
_RUNNING = (State.PAID, State.STARTING, State.CHARGING)
ALREADY_USED = "this withdraw request was already used"
NETWORK_UNKNOWN = (
    "refunds wait until the lightning node of this charger has answered once (Strom checks "
    "refund invoices against its network); nothing was debited, scan the link again later"
)


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


def derive_k1(secret: str, offer_id: str) -> str:
    """The ``k1`` of one withdraw offer: HMAC-SHA256 of the offer id under the session secret.

    32 bytes that only a holder of the session secret can compute; the same offer gives the
    same ``k1`` every time, so reopening the link need not store a new one.
    """
    message = b"strom lnurl-withdraw k1\x00" + offer_id.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _admit_all(_session_id: str) -> bool:
    return True


def _retrieve(task: asyncio.Task[RefundOffer]) -> None:
    if not task.cancelled():
        task.exception()  # read even when every caller has gone


class RefundService:
    """LNURL-withdraw refunds for sessions."""

    def __init__(
        self,
        store: SessionStore,
        backend: LightningBackend,
        config: SessionsConfig,
        *,
        network: str | Callable[[], str | None],
        clock: Clock = SYSTEM_CLOCK,
        stop_wait_s: float = 20.0,
        stop_poll_s: float = 1.0,
        admit_opening: Callable[[str], bool] = _admit_all,
        refunds: RefundStore | None = None,
    ) -> None:
        """Refunds of ``store``'s sessions through ``backend``.

        Args:
            store: the sessions.
            backend: pays the refunds.
            config: the sessions' settings (fee cap).
            network: the network whose invoices are accepted, or a callable that says it
                (the node's, learned on first contact; None refuses every claim until known).
            clock: the wall clock (offer expiry).
            stop_wait_s: how long opening the withdraw link of a running session waits, in
                all, for the charger to confirm the stop.
            stop_poll_s: while waiting, how often the database is read when no committed
                transition of the session woke the wait (another process's writes).
            admit_opening: the per-session bucket; False refuses a new attempt to open a
                session's withdraw link (joining one in flight is always allowed).
            refunds: the refunds' repository (by default on the sessions' database).
        """
        self.store = store
        self.db = store.db
        self.refunds = refunds or RefundStore(store.db)
        self.backend = backend
        self.config = config
        self._network = network
        self.clock = clock
        self.stop_wait_s = stop_wait_s
        self.stop_poll_s = stop_poll_s
        self.admit_opening = admit_opening
        self._openings: dict[str, asyncio.Task[RefundOffer]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        store.on_committed(self._wake)

    @property
    def network(self) -> str | None:
        """The network whose refund invoices are accepted now; None while it is not known."""
        return self._network if isinstance(self._network, str) else self._network()

    async def authenticate(self, session_id: str, secret: str | None) -> Session:
        """The session, if ``secret`` is its secret.

        Raises:
            RefundError: unknown session or wrong secret (the same answer for both).
        """
        await self._verify(session_id, secret)
        return await self.store.get(session_id)

    async def _verify(self, session_id: str, secret: str | None) -> str:
        stored_hash = await self.store.secret_hash(session_id)
        if stored_hash is None or secret is None or not verify_secret(secret, stored_hash):
            raise RefundError("this refund link is not valid")
        return secret

    async def request(self, session_id: str, secret: str | None) -> RefundOffer:
        """LUD-03 first step: stop the charge if needed, then offer the refundable balance.

        Concurrent openings of one session share one attempt (one stop, one wait, one offer);
        a new attempt needs a token of the per-session bucket.

        Raises:
            RefundError: bad link, opened too often, nothing to refund, a refund already in
                flight, or the charger has not confirmed the stop within ``stop_wait_s``.
        """
        secret = await self._verify(session_id, secret)
        opening = self._openings.get(session_id)
        if opening is None:
            if not self.admit_opening(session_id):
                log.info("session %s: withdraw link opened too often; refused", session_id)
                raise RefundError(
                    "this withdraw link was opened too often just now; "
                    "wait a few seconds and scan it again"
                )
            opening = asyncio.create_task(
                self._open(session_id, secret), name=f"withdraw-offer:{session_id}"
            )
            opening.add_done_callback(_retrieve)
            opening.add_done_callback(partial(self._opened, session_id))
            self._openings[session_id] = opening
        # A caller that gives up (the wallet hung up) does not cancel the others' attempt.
        return await asyncio.shield(opening)

    def _opened(self, session_id: str, task: asyncio.Task[RefundOffer]) -> None:
        if self._openings.get(session_id) is task:
            del self._openings[session_id]

    async def _open(self, session_id: str, secret: str) -> RefundOffer:
        deadline = asyncio.get_running_loop().time() + self.stop_wait_s  # one, for every branch
        session = await self.store.get(session_id)
        if session.state in _RUNNING:
            # If it moved on meanwhile, the state is looked at again below.
            with contextlib.suppress(IllegalTransition):
                await self.store.apply(session_id, StopRequested(StopReason.INITIATOR))
        if session.state in (*_RUNNING, State.STOPPING):
            session = await self._wait_until_stopped(session_id, deadline)
        if session.state is State.RESERVED:
            until = session.reserved_until
            when = "" if until is None else f" until {until.astimezone(UTC):%H:%M} UTC"
            raise RefundError(
                f"the connector is reserved for you{when}: start charging or cancel the "
                "reservation on your session page first; nothing was debited"
            )
        if session.state is State.REFUND_PENDING:
            raise RefundError("a refund for this session is already being paid")
        if session.state in (State.AWAITING_PAYMENT, State.EXPIRED):
            raise RefundError("this session was never paid; there is nothing to refund")
        if session.state not in POST_STOP_STATES:
            raise RefundError(
                "the charger has not confirmed the stop yet; scan again in a few seconds"
            )
        if session.refundable_msat < 1000:
            raise RefundError("nothing (or less than 1 sat) is left to refund for this session")
        k1 = await self._offer(session_id, secret)
        return RefundOffer(k1=k1, amount_msat=session.refundable_msat, session=session)

    async def _offer(self, session_id: str, secret: str) -> str:
        """The ``k1`` of the session's fresh offer, or of a new one."""
        now = self.clock.now()
        fresh = await self.refunds.latest_offer(session_id, valid_after=now + K1_REUSE_MIN_LEFT)
        if fresh is not None:
            k1 = derive_k1(secret, fresh.id)
            if hmac.compare_digest(hash_secret(k1), fresh.k1_hash):
                return k1
        offer_id = secrets.token_hex(8)
        k1 = derive_k1(secret, offer_id)
        await self.refunds.add_offer(
            offer_id, session_id, hash_secret(k1), now=now, expires_at=now + K1_LIFETIME
        )
        return k1

    def _wake(self, transition: Transition) -> None:
        changed = self._changed.get(transition.session.id)
        if changed is not None:
            changed.set()

    async def _wait_until_stopped(self, session_id: str, deadline: float) -> Session:
        """The session once it is past the stop, or as it is at ``deadline`` (loop time)."""
        loop = asyncio.get_running_loop()
        changed = self._changed[session_id] = asyncio.Event()
        try:
            while True:
                changed.clear()
                session = await self.store.get(session_id)
                left = deadline - loop.time()
                if session.state in POST_STOP_STATES or left <= 0:
                    return session
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), min(left, self.stop_poll_s))
        finally:
            if self._changed.get(session_id) is changed:
                del self._changed[session_id]

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
        now = self.clock.now()
        offer = await self.refunds.find_offer(session_id, hash_secret(k1))
        if offer is None:
            raise RefundError("this withdraw request is not known; scan the link again")
        if offer.state != "offered":
            raise RefundError(ALREADY_USED)
        if offer.expires_at <= now:
            raise RefundError("this withdraw request has expired; scan the link again")
        network = self.network
        if network is None:
            raise RefundError(NETWORK_UNKNOWN)
        session = await self.store.get(session_id)
        try:
            decoded = check_withdraw_invoice(
                invoice,
                network=network,
                min_msat=min_refund(session.refundable_msat),
                max_msat=session.refundable_msat,
                now=now,
                min_remaining_s=30,
            )
        except InvoiceRejected as exc:
            # A concurrent callback may have won this k1 between the two reads above: then
            # the balance checked was already debited, and the true answer is "used".
            if await self._offer_state(offer.id) != "offered":
                raise RefundError(ALREADY_USED) from None
            raise RefundError(str(exc)) from None
        return await self._debit(offer.id, session_id, decoded, now)

    async def _offer_state(self, refund_id: str) -> str | None:
        refund = await self.refunds.get(refund_id)
        return None if refund is None else refund.state

    async def _debit(
        self, refund_id: str, session_id: str, decoded: DecodedInvoice, now: datetime
    ) -> str:
        payment_hash = decoded.payment_hash
        bolt11 = decoded.bolt11
        assert decoded.amount_msat is not None  # checked by check_withdraw_invoice
        amount = int(decoded.amount_msat)
        max_fee = max(1_000, amount * self.config.refund_max_fee_ppm // 1_000_000)
        event_at = self.store.clock.now()

        def debit(conn: Connection) -> Transition:
            taken = claim_refund(
                conn,
                refund_id,
                amount_msat=amount,
                bolt11=bolt11,
                payment_hash=payment_hash,
                now=now,
            )
            if not taken:
                raise RefundError(ALREADY_USED)
            transition = apply_event(conn, session_id, RefundClaimed(refund_id, amount), event_at)
            queue_effect(
                conn,
                key=f"refund:{refund_id}",
                kind="pay_refund",
                payload={"refund_id": refund_id, "max_fee_msat": max_fee},
                session_id=session_id,
                now=now,
            )
            return transition

        try:
            transition = await self.db.write(debit)
        except InvoiceAlreadySubmitted:
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
        refund = await self.refunds.get(refund_id)
        if refund is None:
            raise LedgerError(f"refund {refund_id} is not known")
        if refund.state in ("paid", "failed"):
            return
        if refund.state == "claimed":
            if not await self.refunds.take(refund_id, self.clock.now()):
                # Another runner moved it to "paying" first: that one pays and records the
                # result. Looking the payment up now could find nothing sent yet.
                log.info("refund %s is being paid by another runner; nothing to do", refund_id)
                return
            crashpoint("refund.before_pay")
            assert refund.bolt11 is not None  # a claimed refund has its invoice
            result = await self.backend.pay_invoice(
                refund.bolt11, max_fee_msat=row.payload["max_fee_msat"], timeout_s=60
            )
            crashpoint("refund.after_pay")
        else:  # paying or unknown: a call may have gone out; never pay again, only look
            assert refund.payment_hash is not None
            result = await self.backend.lookup_payment(refund.payment_hash)
        await self._settle(refund.session_id, refund_id, result)

    async def _settle(self, session_id: str, refund_id: str, result: PaymentResult) -> None:
        now, event_at = self.clock.now(), self.store.clock.now()
        if isinstance(result, Succeeded):
            fee_msat = int(result.fee_msat)

            def paid(conn: Connection) -> Transition:
                set_refund_state(conn, refund_id, "paid", now=now, fee_msat=fee_msat)
                event = RefundPaid(refund_id, fee_msat=fee_msat)
                return apply_event(conn, session_id, event, event_at)

            transition = await self.db.write(paid)
            log.info(
                "session %s: refund %s paid (fee %s msat)", session_id, refund_id, result.fee_msat
            )
        elif isinstance(result, Failed):
            reason = result.reason

            def failed(conn: Connection) -> Transition:
                set_refund_state(conn, refund_id, "failed", now=now, detail=reason)
                return apply_event(conn, session_id, RefundFailed(refund_id, reason), event_at)

            transition = await self.db.write(failed)
            log.warning(
                "session %s: refund %s failed: %s (claimable again)",
                session_id,
                refund_id,
                result.reason,
            )
        else:
            await self.refunds.mark(refund_id, "unknown", now=now, detail=result.reason)
            raise RetryLater(f"refund {refund_id} outcome unknown: {result.reason}")
        self.store.committed([transition])
