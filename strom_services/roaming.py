"""Roaming partners' sessions, tokens and receivables: what the OCPI front door calls.

Theory of operation
-------------------
A roaming partner pays after the charge (:mod:`strom_core.roaming`): its sessions are ordinary
post-paid sessions with ``payer = "partner:<id>"``, in the same table, state machine and
ledger as everything else. Nothing here is OCPI wire format; a partner is its id string.

* **Tokens.** :meth:`RoamingService.upsert_token` / :meth:`~RoamingService.patch_token` store
  a partner's tokens (newest ``last_updated`` wins) and rebuild the in-memory
  :class:`PartnerTokenIndex` that the OCPP core's card desk (:class:`RoamingCards`, which
  implements :class:`strom_core.cards.CardDesk`) reads synchronously. The operator's cards
  come first; then a partner's RFID token, compared as OCPP compares idTags. The index is a
  fast filter; the database decides: Authorize and StartTransaction check the stored token
  and the partner's block (:func:`token_refusal`) in their own transaction, so a token
  revoked or a partner blocked by another process is refused. A uid that two partners share
  is ambiguous and refused (a bill must never go to the wrong partner).
* **Remote start** (:meth:`RoamingService.start_for_partner`): in one transaction, a command
  seen before (same partner, same authorization reference) returns its session; else the
  partner must not be blocked, the charger must be connected and the connector free; the
  session is created ``PAID`` with the tariff in force frozen (as for a card), its OCPI
  record written, and :class:`~strom_core.session_events.StartAuthorized` queues the
  RemoteStart and start timer in the outbox, exactly as a first payment does.
* **Stop** (:meth:`RoamingService.stop_for_partner`): ``StopRequested`` for that partner's
  session only.
* **Reservations** (:meth:`RoamingService.reserve_for_partner`): a post-paid reservation,
  the same ``RESERVED`` lifecycle as a prepaid one (:mod:`strom_core.session`). In one
  transaction: the partner's reservation id must be new, the partner not blocked, the
  connector free; the session is created ``PAID`` with its minutes (the tariff's limit) and
  fee frozen, a reservation id allocated, its OCPI record and the partner's reservation id
  written, and :class:`~strom_core.session_events.ReservationAuthorized` queues ReserveNow
  for the token's uid and the expiry timer. The token presented at the charger then starts
  that session (:mod:`strom_services.ocpp_core`), as does a remote start for the same token
  on that connector (:meth:`~RoamingService.start_reserved`);
  :meth:`~RoamingService.cancel_reservation` ends it as the payer's cancel does.
* **Receivables.** The session store opens one with the final bill
  (:func:`strom_storage.roaming.open_receivable`). :meth:`RoamingService.invoice` makes a
  Lightning invoice for it and records a ``payments`` row of kind ``receivable`` pointing at
  the session, so :meth:`strom_services.payments.PaymentService.settle` settles it once. An
  invoice that expired unpaid may be replaced; its hash stays in ``payments`` (expired).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any

from strom_core.cards import Card, CardMode, check_partner_id, partner_of, partner_payer, tag_key
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import IllegalTransition, LedgerError
from strom_core.ports import ChargerLink, charger_link
from strom_core.roaming import (
    MAX_REFERENCE,
    PartnerRefused,
    PartnerTerms,
    Receivable,
    ReceivableState,
    RoamingStart,
    RoamingToken,
    StartedBy,
    TokenType,
    local_start_refusal,
)
from strom_core.session import Session, State, Transition
from strom_core.session_events import (
    ReservationAuthorized,
    StartAuthorized,
    StartRequested,
    StopReason,
    StopRequested,
)
from strom_lightning import LightningBackend
from strom_services.cards import ProfileCards
from strom_services.offers import ConnectorUnavailable, check_connector
from strom_services.payments import RECEIVABLE_KIND
from strom_services.reservations import RESERVATION_COUNTER
from strom_storage.chargers import link_columns, load_connector
from strom_storage.db import Connection
from strom_storage.ocpp import allocate_id
from strom_storage.partner_invoices import stream_pending
from strom_storage.payments import insert_payments, load_payment, new_payment_row
from strom_storage.roaming import (
    ReferenceTaken,
    ReservationTaken,
    RoamingStore,
    find_idtag_token,
    find_reservation,
    find_reserved_for_tag,
    find_started,
    insert_reservation,
    insert_roaming_start,
    invoice_receivable,
    load_receivable,
    load_terms,
    partner_blocked,
    patch_token,
    save_terms,
    upsert_token,
    write_off_receivable,
)
from strom_storage.sessions import SessionStore, apply_event, insert_sessions, new_session_row

__all__ = [
    "FREE_STATUSES",
    "PartnerTokenIndex",
    "RoamingCards",
    "RoamingService",
    "record_token_start",
    "token_refusal",
]

log = logging.getLogger(__name__)

# Connector statuses a remote start may begin from: free, or a cable plugged in waiting
# (OCPP 1.6 Preparing; 2.0.1 Occupied without a transaction: one with a transaction is a
# session's, and that session holds the connector).
FREE_STATUSES = frozenset({"Available", "Preparing", "Occupied"})
PARTNER_TAG = "P"  # a partner session's own idTag: "P" + session id
DEFAULT_INVOICE_EXPIRY_S = 86_400  # a partner pays when its back office runs: a day


class PartnerTokenIndex:
    """The partners' tokens a charger could present, by idTag (OCPP compares case-insensitively).

    Only RFID tokens of at most 20 characters (an idTag is ``CiString20``). A uid two partners
    share maps to nobody.
    """

    def __init__(self, tokens: Iterable[RoamingToken] = ()) -> None:
        self._by_tag: dict[str, RoamingToken | None] = {}
        self.reload(tokens)

    def reload(self, tokens: Iterable[RoamingToken]) -> None:
        """Index ``tokens`` (all of them, replacing the index)."""
        by_tag: dict[str, RoamingToken | None] = {}
        for token in tokens:
            if not token.idtag_capable:
                continue
            key = tag_key(token.uid)
            if key in by_tag:
                other = by_tag[key]
                if other is None or other.partner_id != token.partner_id:
                    log.warning("token uid %s is sent by two partners: refused at chargers", key)
                    by_tag[key] = None
                continue
            by_tag[key] = token
        self._by_tag = by_tag

    def token(self, id_tag: str) -> RoamingToken | None:
        """The one partner's token presented as ``id_tag``, if any."""
        return self._by_tag.get(tag_key(id_tag))


class RoamingCards:
    """:class:`strom_core.cards.CardDesk` over the operator's cards, then partners' tokens.

    Args:
        cards: the operator's cards (they come first).
        tokens: the partners' tokens.
    """

    def __init__(self, cards: ProfileCards, tokens: PartnerTokenIndex) -> None:
        self.cards = cards
        self.tokens = tokens

    def card(self, charger_id: str, id_tag: str) -> Card | None:
        """The charger's card with this idTag, else a partner's token as a card, if any."""
        found = self.cards.card(charger_id, id_tag)
        if found is not None:
            return found
        token = self.tokens.token(id_tag)
        if token is None or self.cards.profile(charger_id) is None:
            return None
        if local_start_refusal(token, partner_blocked=False) is not None:
            return None
        try:
            return Card(token.uid, token.contract_id, CardMode.PARTNER, token.partner_id)
        except ValueError:  # not an idTag a card can have (a space in it)
            return None

    def card_session(
        self, charger_id: str, connector_id: int, id_tag: str, session_id: str
    ) -> Session | None:
        """A new post-paid session for a start with a card or a partner's token, or None."""
        card = self.card(charger_id, id_tag)
        if card is None:
            return None
        tag = PARTNER_TAG if card.mode is CardMode.PARTNER else "C"
        return self.cards.postpaid_session(charger_id, connector_id, session_id, card.payer, tag)


def token_refusal(conn: Connection, partner_id: str, id_tag: str, now: datetime) -> str | None:
    """Why the stored token of ``partner_id`` presented as ``id_tag`` may not start; None: it may.

    The database's answer (the in-memory index only filters): the token as stored now and
    the partner's block (an overdue receivable, when its terms say so).
    """
    token = find_idtag_token(conn, partner_id, id_tag)
    blocked = token is not None and partner_blocked(conn, partner_id, now)
    return local_start_refusal(token, partner_blocked=blocked)


def record_token_start(
    conn: Connection, session: Session, id_tag: str, now: datetime
) -> str | None:
    """Admit a partner's token start: its OCPI record, in the caller's transaction.

    Call after the session row is inserted, in the same transaction.

    Returns:
        None when admitted (recorded); else why the start is refused (nothing written; the
        caller must not keep the session).
    """
    partner = partner_of(session.payer)
    assert partner is not None
    refusal = token_refusal(conn, partner, id_tag, now)
    if refusal is not None:
        return refusal
    token = find_idtag_token(conn, partner, id_tag)
    assert token is not None
    insert_roaming_start(conn, RoamingStart.of(session.id, token, None, StartedBy.TOKEN, now))
    return None


@dataclass(frozen=True, slots=True)
class _Opened:
    session_id: str
    transitions: tuple[Transition, ...] = ()


class RoamingService:
    """Partners' tokens, remote starts and stops, and receivables.

    Args:
        store: the session store.
        backend: the lightning backend (receivables' invoices).
        cards: the operator's cards and chargers' profiles (a partner session is priced and
            created as a card's).
        index: the in-memory token index the card desk reads.
        clock: the current time.
        invoice_expiry_s: how long a receivable's invoice stays payable.
    """

    def __init__(
        self,
        store: SessionStore,
        backend: LightningBackend,
        cards: ProfileCards,
        index: PartnerTokenIndex,
        *,
        clock: Clock = SYSTEM_CLOCK,
        invoice_expiry_s: int = DEFAULT_INVOICE_EXPIRY_S,
    ) -> None:
        self.store = store
        self.db = store.db
        self.backend = backend
        self.cards = cards
        self.index = index
        self.clock = clock
        self.invoice_expiry_s = invoice_expiry_s
        self.records = RoamingStore(store.db)

    # --- tokens ------------------------------------------------------------------------------

    async def load_tokens(self) -> None:
        """Rebuild the token index from the database (at start, and after any change)."""
        self.index.reload(await self.records.idtag_tokens())

    async def upsert_token(self, token: RoamingToken) -> bool:
        """Store a partner's token (idempotent; an older one never overwrites a newer one).

        Returns:
            Whether it changed anything.
        """
        written = await self.db.write(partial(upsert_token, token=token))
        if written:
            await self.load_tokens()
        return written

    async def patch_token(
        self, partner_id: str, uid: str, token_type: TokenType, changes: dict[str, Any]
    ) -> RoamingToken | None:
        """Change fields of a stored token (:func:`strom_storage.roaming.patch_token`).

        Returns:
            The token as stored afterwards; None: no such token.

        Raises:
            ValueError: a field that cannot be patched, or a bad value (nothing written).
        """
        work = partial(
            patch_token, partner_id=partner_id, uid=uid, token_type=token_type, changes=changes
        )
        patched = await self.db.write(work)
        await self.load_tokens()
        return patched

    async def token(self, partner_id: str, uid: str, token_type: TokenType) -> RoamingToken | None:
        """One of the partner's tokens."""
        return await self.records.token(partner_id, uid, token_type)

    async def tokens(self, partner_id: str) -> list[RoamingToken]:
        """The partner's tokens."""
        return await self.records.tokens(partner_id)

    # --- remote start and stop ---------------------------------------------------------------

    async def start_for_partner(
        self,
        partner_id: str,
        token: RoamingToken,
        charger_id: str,
        connector_id: int | None,
        authorization_reference: str,
    ) -> str:
        """Open a partner's post-paid session and ask the charger to start it.

        Args:
            partner_id: the partner.
            token: the partner's token the session is for (its own word: START_SESSION).
            charger_id: the charger.
            connector_id: its connector; None: the first free one.
            authorization_reference: the partner's reference of this start; the same one
                again returns the same session.

        Returns:
            The session id.

        Raises:
            PartnerRefused: a bad partner id or reference, a token of another partner or not
                valid, an unknown or unconnected charger, an unknown, busy or not free
                connector, a blocked partner (nothing was created).
        """
        self._check_start(partner_id, token, authorization_reference)
        profile = self.cards.profile(charger_id)
        if profile is None:
            raise PartnerRefused(f"unknown charger {charger_id}")
        candidates = [c.id for c in profile.connectors]
        if connector_id is not None:
            if connector_id not in candidates:
                raise PartnerRefused(f"charger {charger_id} has no connector {connector_id}")
            candidates = [connector_id]
        session_id = secrets.token_hex(8)
        sessions: list[Session] = []
        for candidate in candidates:
            session = self.cards.postpaid_session(
                charger_id, candidate, session_id, partner_payer(partner_id), PARTNER_TAG
            )
            assert session is not None
            sessions.append(session)
        now, event_at = self.clock.now(), self.store.clock.now()
        work = partial(
            self._open,
            partner_id=partner_id,
            token=token,
            sessions=sessions,
            reference=authorization_reference,
            now=now,
            event_at=event_at,
        )
        try:
            opened = await self.db.write(work)
        except ReferenceTaken:  # the same command, committed by another transaction first
            found = await self.db.read(
                partial(
                    find_started,
                    partner_id=partner_id,
                    authorization_reference=authorization_reference,
                )
            )
            if found is None:
                raise
            return found
        self.store.committed(list(opened.transitions))
        if opened.transitions:
            log.info(
                "partner %s: session %s on %s (reference %s): remote start queued",
                partner_id,
                opened.session_id,
                charger_id,
                authorization_reference,
            )
        return opened.session_id

    @staticmethod
    def _check_start(partner_id: str, token: RoamingToken, reference: str) -> None:
        if not 1 <= len(reference) <= MAX_REFERENCE:
            raise PartnerRefused(f"an authorization reference is 1 to {MAX_REFERENCE} characters")
        RoamingService._check_token(partner_id, token)

    @staticmethod
    def _check_token(partner_id: str, token: RoamingToken) -> None:
        try:
            check_partner_id(partner_id)
        except ValueError as exc:
            raise PartnerRefused(str(exc)) from None
        if token.partner_id != partner_id:
            raise PartnerRefused("the token is not the partner's")
        if not token.valid:
            raise PartnerRefused("token not valid")

    def _open(
        self,
        conn: Connection,
        partner_id: str,
        token: RoamingToken,
        sessions: list[Session],
        reference: str,
        now: datetime,
        event_at: datetime,
    ) -> _Opened:
        """start_for_partner's transaction: replay, or checks, session, record, RemoteStart."""
        seen = find_started(conn, partner_id, reference)
        if seen is not None:
            return _Opened(seen)
        if partner_blocked(conn, partner_id, now):
            raise PartnerRefused("partner blocked: an invoice is overdue")
        session = _free_connector(conn, sessions, now)
        _insert_partner_session(conn, session, token, reference, now, event_at)
        transition = apply_event(conn, session.id, StartAuthorized(), event_at)
        return _Opened(session.id, (transition,))

    async def stop_for_partner(self, partner_id: str, session_id: str) -> None:
        """Ask the partner's session to stop (RemoteStop, or no start if it has not begun).

        Raises:
            PartnerRefused: not a session of this partner, or one that is not running.
        """
        start = await self.records.roaming_start(session_id)
        if start is None or start.partner_id != partner_id:
            raise PartnerRefused(f"no session {session_id} of partner {partner_id}")
        try:
            await self.store.apply(session_id, StopRequested(StopReason.INITIATOR))
        except IllegalTransition as exc:
            raise PartnerRefused(f"session {session_id} is not running ({exc.state})") from None
        log.info("partner %s: session %s asked to stop", partner_id, session_id)

    # --- reservations ------------------------------------------------------------------------

    async def reserve_for_partner(
        self,
        partner_id: str,
        token: RoamingToken,
        charger_id: str,
        connector_id: int | None,
        until: datetime,
        reservation_id: str,
        within: Callable[[Connection, str], object] | None = None,
    ) -> str:
        """Reserve a connector for the partner's token until ``until`` (post-paid).

        Args:
            partner_id: the partner.
            token: the token the driver will present (its uid becomes the reserved idTag).
            charger_id: the charger.
            connector_id: its connector; None: the first free one.
            until: the end of the reservation (aware UTC), within the tariff's limit.
            reservation_id: the partner's id of the reservation (never reused).
            within: called with the session id in the transaction that creates it (a
                command that must see the charger's answer records itself there).

        Returns:
            The session id.

        Raises:
            PartnerRefused: as for a remote start, and: a token that cannot be presented at
                a charger, a time the tariff does not allow, a reservation id already used.
        """
        self._check_token(partner_id, token)
        if not token.idtag_capable:
            raise PartnerRefused("only an RFID token of up to 20 characters can be reserved for")
        if not 1 <= len(reservation_id) <= MAX_REFERENCE:
            raise PartnerRefused(f"a reservation id is 1 to {MAX_REFERENCE} characters")
        now, event_at = self.clock.now(), self.store.clock.now()
        minutes = -(-int((until - now).total_seconds()) // 60)
        sessions = self._reservation_sessions(partner_id, charger_id, connector_id, minutes)
        work = partial(
            self._reserve,
            partner_id=partner_id,
            token=token,
            sessions=sessions,
            until=until,
            reservation_id=reservation_id,
            within=within,
            now=now,
            event_at=event_at,
        )
        try:
            opened = await self.db.write(work)
        except ReservationTaken:
            raise PartnerRefused(f"reservation id {reservation_id} is in use") from None
        self.store.committed(list(opened.transitions))
        log.info(
            "partner %s: reservation %s is session %s on %s until %s",
            partner_id,
            reservation_id,
            opened.session_id,
            charger_id,
            until.isoformat(),
        )
        return opened.session_id

    def _reservation_sessions(
        self, partner_id: str, charger_id: str, connector_id: int | None, minutes: int
    ) -> list[Session]:
        """The candidate reserved sessions, one per connector that may take it."""
        profile = self.cards.profile(charger_id)
        if profile is None:
            raise PartnerRefused(f"unknown charger {charger_id}")
        candidates = [c.id for c in profile.connectors]
        if connector_id is not None:
            if connector_id not in candidates:
                raise PartnerRefused(f"charger {charger_id} has no connector {connector_id}")
            candidates = [connector_id]
        if minutes < 1:
            raise PartnerRefused("the reservation's expiry is in the past")
        session_id = secrets.token_hex(8)
        sessions: list[Session] = []
        for candidate in candidates:
            try:
                session = self.cards.postpaid_session(
                    charger_id,
                    candidate,
                    session_id,
                    partner_payer(partner_id),
                    PARTNER_TAG,
                    reserve_minutes=minutes,
                    reservation_id=1,  # the real one is allocated in the transaction
                )
            except LedgerError as exc:
                raise PartnerRefused(_reservation_limit(exc)) from None
            assert session is not None
            sessions.append(session)
        return sessions

    def _reserve(
        self,
        conn: Connection,
        partner_id: str,
        token: RoamingToken,
        sessions: list[Session],
        until: datetime,
        reservation_id: str,
        within: Callable[[Connection, str], object] | None,
        now: datetime,
        event_at: datetime,
    ) -> _Opened:
        """reserve_for_partner's transaction."""
        if find_reservation(conn, partner_id, reservation_id) is not None:
            raise PartnerRefused(
                f"reservation id {reservation_id} is in use (to change a reservation, cancel "
                "it and reserve under a new id)"
            )
        if partner_blocked(conn, partner_id, now):
            raise PartnerRefused("partner blocked: an invoice is overdue")
        chosen = _free_connector(conn, sessions, now)
        session = replace(chosen, reservation_id=allocate_id(conn, RESERVATION_COUNTER))
        _insert_partner_session(conn, session, token, None, now, event_at)
        insert_reservation(conn, partner_id, reservation_id, session.id, now)
        event = ReservationAuthorized(until, token.uid)
        transition = apply_event(conn, session.id, event, event_at)
        if within is not None:
            within(conn, session.id)
        return _Opened(session.id, (transition,))

    async def cancel_reservation(self, partner_id: str, reservation_id: str) -> str:
        """Cancel the partner's reservation (the tariff's share of the fee is owed).

        Returns:
            The reserved session's id.

        Raises:
            PartnerRefused: no such reservation of the partner, or one that has ended or
                started.
        """
        session_id = await self.db.read(
            partial(find_reservation, partner_id=partner_id, reservation_id=reservation_id)
        )
        if session_id is None:
            raise PartnerRefused(f"no reservation {reservation_id}")
        state = (await self.store.get(session_id)).state
        try:
            if state is not State.RESERVED:  # ended, or in use (a stop is not a cancel)
                raise IllegalTransition(state, "StopRequested")
            await self.store.apply(session_id, StopRequested(StopReason.INITIATOR))
        except IllegalTransition as exc:
            raise PartnerRefused(
                f"reservation {reservation_id} is not active ({exc.state})"
            ) from None
        log.info(
            "partner %s: reservation %s (session %s) cancelled",
            partner_id,
            reservation_id,
            session_id,
        )
        return session_id

    async def start_reserved(
        self, partner_id: str, token: RoamingToken, charger_id: str, connector_id: int | None
    ) -> str | None:
        """Start the partner's reservation held for ``token`` on the charger, if there is one.

        Returns:
            The reserved session's id (asked to start: RemoteStart with the token's uid, which
            the charger's reservation lets through); None: no such reservation.
        """
        profile = self.cards.profile(charger_id)
        if profile is None or not token.idtag_capable or token.partner_id != partner_id:
            return None
        connectors = [c.id for c in profile.connectors if connector_id in (None, c.id)]
        for candidate in connectors:
            work = partial(
                find_reserved_for_tag,
                charger_id=charger_id,
                connector_id=candidate,
                id_tag=token.uid,
            )
            session_id = await self.db.read(work)
            if session_id is None:
                continue
            try:
                await self.store.apply(session_id, StartRequested(token.uid))
            except IllegalTransition:
                return None
            log.info("partner %s: reserved session %s asked to start", partner_id, session_id)
            return session_id
        return None

    # --- receivables -------------------------------------------------------------------------

    async def invoice(
        self,
        receivable_id: int,
        *,
        within: Callable[[Connection, Receivable], None] | None = None,
    ) -> Receivable:
        """Offer the partner a Lightning invoice for a receivable (its CDR's total).

        An ``open`` receivable gets its first invoice; an ``invoiced`` one whose invoice
        expired unpaid gets a new one (the old hash stays in ``payments``, expired, and can
        never be credited); an ``invoiced`` one whose invoice is still payable is returned as
        it is (asking twice makes one invoice). Nothing is recorded while an interval invoice
        of the session may still be paid, or when its amount changed meanwhile (an interval
        paid late shrinks it): the receivable is returned unchanged.

        Args:
            receivable_id: the receivable.
            within: called in the transaction that records a new invoice, with the receivable
                as invoiced (the partner's invoice record and its push are written there).

        Raises:
            PartnerRefused: no such receivable, or one paid or written off.
            BackendError: the lightning backend could not make an invoice (nothing stored).
        """
        found = await self.records.receivable(receivable_id)
        if found is None:
            raise PartnerRefused(f"no receivable {receivable_id}")
        if found.state in (ReceivableState.PAID, ReceivableState.WRITTEN_OFF):
            raise PartnerRefused(f"receivable {receivable_id} is {found.state.value}")
        if found.payment_hash is not None and not await self._replaceable(found.payment_hash):
            return found
        invoice = await self.backend.create_invoice(
            found.amount_msat,
            memo=f"Strom charging session {found.session_id} (CDR), receivable {found.id}",
            expiry_s=self.invoice_expiry_s,
        )
        now = self.clock.now()

        def record(conn: Connection) -> Receivable | None:
            current = load_receivable(conn, receivable_id, lock=True)
            if current is None or current.payment_hash != found.payment_hash:
                return current  # invoiced meanwhile by another call: keep that one
            if current.state not in (ReceivableState.OPEN, ReceivableState.INVOICED):
                return current
            if current.amount_msat != invoice.amount_msat or stream_pending(
                conn, current.session_id
            ):
                return current  # an interval may still be paid, or was: not this amount
            terms = load_terms(conn, current.partner_id)
            row = new_payment_row(
                session_id=current.session_id,
                kind=RECEIVABLE_KIND,
                payment_hash=invoice.payment_hash,
                amount_msat=invoice.amount_msat,
                bolt11=invoice.bolt11,
                expires_at=invoice.expires_at,
                zap_request=None,
                now=now,
            )
            insert_payments(conn, [row])
            invoice_receivable(
                conn,
                receivable_id,
                payment_hash=invoice.payment_hash,
                bolt11=invoice.bolt11,
                now=now,
                terms_days=terms.payment_terms_days,
            )
            invoiced = load_receivable(conn, receivable_id)
            if within is not None and invoiced is not None:
                within(conn, invoiced)
            return invoiced

        stored = await self.db.write(record)
        assert stored is not None
        log.info(
            "receivable %s of partner %s (session %s): invoice %s for %s msat",
            receivable_id,
            stored.partner_id,
            stored.session_id,
            stored.payment_hash,
            stored.amount_msat,
        )
        return stored

    async def _replaceable(self, payment_hash: str) -> bool:
        """Whether the receivable's current invoice expired unpaid (a new one may be made)."""
        row = await self.db.read(partial(load_payment, payment_hash=payment_hash))
        return row is not None and row.state == "expired"

    async def receivable(self, receivable_id: int) -> Receivable | None:
        """One receivable by its id (None: no such receivable)."""
        return await self.records.receivable(receivable_id)

    async def receivable_of(self, session_id: str) -> Receivable | None:
        """The receivable of a partner's session (None: none, or not billed yet)."""
        return await self.records.receivable_of(session_id)

    async def receivables(
        self, partner_id: str | None = None, states: Iterable[ReceivableState] | None = None
    ) -> list[Receivable]:
        """Receivables, oldest first (of one partner, in some states)."""
        return await self.records.receivables(partner_id, None if states is None else list(states))

    async def overdue(self, now: datetime | None = None) -> list[Receivable]:
        """Receivables invoiced and unpaid past their due date (the admin's list)."""
        return await self.records.overdue(now or self.clock.now())

    async def blocked(self, partner_id: str) -> bool:
        """Whether the partner's new starts are refused now."""
        return await self.records.blocked(partner_id, self.clock.now())

    async def write_off(self, receivable_id: int) -> bool:
        """Give up an unpaid receivable (the operator's decision); False if paid or unknown."""
        done = await self.db.write(partial(write_off_receivable, receivable_id=receivable_id))
        if done:
            log.warning("receivable %s written off", receivable_id)
        return done

    async def terms(self, partner_id: str) -> PartnerTerms:
        """The partner's payment terms."""
        return await self.records.terms(partner_id)

    async def set_terms(self, partner_id: str, terms: PartnerTerms) -> None:
        """Set the partner's payment terms (days to pay, whether overdue blocks starts)."""
        check_partner_id(partner_id)
        now = self.clock.now()
        await self.db.write(partial(save_terms, partner_id=partner_id, terms=terms, now=now))


def _reservation_limit(exc: LedgerError) -> str:
    """The tariff's limit on reservation time, for the partner."""
    return f"the reservation is too long: {exc}"


def _insert_partner_session(
    conn: Connection,
    session: Session,
    token: RoamingToken,
    reference: str | None,
    now: datetime,
    event_at: datetime,
) -> None:
    """Store a new session a partner's command opened, with what OCPI keeps of it.

    The token is the partner's (checked by the caller): the record names its partner.
    """
    secret = secrets.token_hex(16)  # nobody holds it: a partner session has no link
    insert_sessions(conn, [new_session_row(session, secret, "partner", None, event_at)])
    start = RoamingStart.of(session.id, token, reference, StartedBy.COMMAND, now)
    insert_roaming_start(conn, start)


def _free_connector(conn: Connection, sessions: list[Session], now: datetime) -> Session:
    """The first session whose connector can take it now (see :func:`check_connector`).

    Raises:
        PartnerRefused: the charger is not connected, or no connector is free (the reason of
            the last one tried).
    """
    charger_id = sessions[0].charger_id
    columns = link_columns(conn, charger_id)
    link = ChargerLink.OFFLINE
    if charger_id in columns:
        link = charger_link(*columns[charger_id], now)
    if link is not ChargerLink.ONLINE:
        raise PartnerRefused(f"charger {charger_id} is {link.value}")
    reason = "no connector"
    for session in sessions:
        try:
            check_connector(conn, charger_id, session.connector_id, exclude=None, link=link)
        except ConnectorUnavailable as exc:
            reason = f"connector {session.connector_id}: {exc.reason}"
            continue
        row = load_connector(conn, charger_id, session.connector_id)
        if row is not None and row.status in FREE_STATUSES:
            return session
        status = "unknown" if row is None else row.status
        reason = f"connector {session.connector_id} is not free ({status})"
    raise PartnerRefused(reason)
