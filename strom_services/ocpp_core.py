"""The core's side of OCPP: idTag authorisation, transaction records, meter samples.

Implements :class:`strom_core.ports.OcppCore` on the database. Each call is one database transaction
that records what the charger said *and* advances the session it belongs to, so the two can
never disagree after a crash. Rules (see docs/architecture.md):

* An idTag is accepted only if Strom issued it for a paid session on that charger and
  connector that has not started yet (a reserved one among them: the payer may start at the
  charger with the reserved idTag); a tag whose session is already charging is ``IN_USE``
  (OCPP 1.6 ``ConcurrentTx``); so is a card of the charger's operator
  (:class:`strom_core.cards.CardDesk`): its StartTransaction opens a post-paid session, in
  the same commit, which charges and is billed like any other (to nobody, recorded as free,
  or to the card's account). A roaming partner's token that the card desk offers
  (:class:`strom_services.roaming.RoamingCards`) is checked against the database as well
  (the token as stored now, the partner's block: :func:`strom_services.roaming.token_refusal`)
  and its session gets its OCPI record in the same commit; but a token a partner reserved
  the connector for (OCPI RESERVE_NOW) starts that reserved session, not a new one.
  Anything else is ``INVALID``.
* Transaction ids come from the persisted ``id_allocator`` (never from the clock), so they are
  unique and increasing across restarts; every transaction, of either OCPP version, has one
  (the key of the session and the meter readings). An OCPP 1.6 transaction's reference is
  that id as a string (``"17"``); an OCPP 2.0.1 transaction's reference is the transactionId
  its charger chose (at most 36 characters, unique per charger, two chargers may choose the
  same), kept beside the id. :mod:`strom_storage.ocpp` maps references to rows.
* A reference is looked up on its charger, its own reference first, then a 1.6 id among its
  rows without one: a charger speaks one version at a time, so a 2.0.1 ``"17"`` and a 1.6
  id 17 of one charger never mix (its own record comes first), and a 2.0.1 transaction's
  internal id is never taken for a reference.
* A 1.6 StartTransaction resent after a reconnect (same charger, connector, idTag,
  meterStart and timestamp) gets the same id and status and changes nothing; so does a
  2.0.1 start of a reference its charger already has, open, or ended with the start's
  timestamp within its lifetime (:func:`strom_core.ports.within_lifetime`). A StopTransaction
  for a stopped transaction changes nothing.
* A 2.0.1 charger that rebooted may reuse a reference: a start of a reference whose
  transaction ended, timestamped outside that one's lifetime, is a new transaction. The
  ended row is renamed ``<reference>~<id>`` and the new one recorded, in one commit. After
  that a stop or meter sample of the reference timestamped before the new transaction's
  start, within an earlier one's lifetime, is a late message of that earlier one: it changes
  nothing (its transaction ended: stopped and billed, or refused). Any other stop of the
  reference stops the new one, so a charger clock that went back inside one transaction
  still ends it. A stop of an unknown reference is recorded (once) in
  ``ocpp_unknown_stops`` and answered, never guessed onto a connector; a meter sample of an
  unknown reference is dropped (logged).
* The SQL is in :mod:`strom_storage.ocpp`; this module decides.
* A transaction is open until its StopTransaction is recorded (``stopped_at``). A
  StartTransaction that Strom refuses (``Invalid``, ``ConcurrentTx``) is recorded closed at
  once (``stop_reason`` ``Refused``): the station never sends a StopTransaction for it, and
  nothing should wait for one. If one comes anyway, it is recorded and bills nothing.
* A StopTransaction whose meterStop is below a register the charger reported during the
  transaction, or that comes after the session was ended as lost, is recorded for the
  operator (:func:`strom_services.orphans.record_stop_discrepancy`).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from strom_core.cards import CardDesk, CardMode, partner_of
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import IllegalTransition
from strom_core.ports import (
    Authorization,
    MeterSample,
    StartDecision,
    StopDecision,
    within_lifetime,
)
from strom_core.ports.prices import RateSource
from strom_core.session import Session, State, Transition
from strom_core.session_events import MeterReading, TransactionStarted, TransactionStopped
from strom_services.orphans import record_stop_discrepancy
from strom_services.roaming import record_token_start, token_refusal
from strom_storage import ocpp as records
from strom_storage.db import Connection
from strom_storage.roaming import find_reserved_for_tag
from strom_storage.sessions import (
    SessionStore,
    apply_event,
    find_by_id_tag,
    insert_sessions,
    load_session,
    new_session_row,
)

__all__ = ["DatabaseOcppCore"]

log = logging.getLogger(__name__)

_STARTABLE = (State.RESERVED, State.PAID, State.STARTING)
_IN_USE = (State.CHARGING, State.STOPPING)
_METERED = (State.CHARGING, State.STOPPING)


def _start_status(session: Session | None, charger_id: str, connector_id: int) -> Authorization:
    if session is None or session.charger_id != charger_id or session.connector_id != connector_id:
        return Authorization.INVALID
    if session.state in _STARTABLE:
        return Authorization.ACCEPTED
    if session.state in _IN_USE:
        return Authorization.IN_USE
    return Authorization.INVALID


@dataclass(frozen=True, slots=True)
class _Started:
    """What a StartTransaction's transaction recorded (or found recorded, for a replay)."""

    number: int
    reference: str
    status: Authorization
    replayed: bool = False
    session_id: str | None = None
    transitions: tuple[Transition, ...] = ()


@dataclass(frozen=True, slots=True)
class _Stopped:
    """What a StopTransaction's transaction recorded (logged after the commit)."""

    known: bool
    replayed: bool = False
    session_id: str | None = None
    transitions: tuple[Transition, ...] = ()
    not_applied: str | None = None  # why the session did not take the stop

    @property
    def cost_msat(self) -> int | None:
        """The session's final bill, when this stop billed it."""
        billed = [t.session.consumed_msat for t in self.transitions if t.changed]
        return billed[-1] if billed else None


def _stop_in(
    conn: Connection,
    charger_id: str,
    transaction: str,
    event: TransactionStopped,
    id_tag: str | None,
    received_at: datetime,
    event_at: datetime,
) -> _Stopped:
    """StopTransaction's transaction: record the stop and bill the session in one commit."""
    row = records.find_transaction(conn, charger_id, transaction)
    if row is None:
        records.record_unknown_stop(
            conn,
            charger_id=charger_id,
            reference=transaction,
            meter_stop_wh=event.meter_stop_wh,
            stopped_at=event.at,
            reason=event.reason,
            id_tag=id_tag,
            received_at=received_at,
        )
        return _Stopped(known=False)
    if row.meter_stop_wh is not None or _of_earlier(conn, charger_id, transaction, row, event.at):
        return _Stopped(known=True, replayed=True)
    records.record_stop(conn, row.number, event.meter_stop_wh, event.at, event.reason)
    if row.session_id is None:
        return _Stopped(known=True)
    try:
        transition = apply_event(conn, row.session_id, event, event_at)
    except IllegalTransition as exc:  # nothing of the session was written; the record stays
        return _Stopped(known=True, session_id=row.session_id, not_applied=str(exc))
    if transition.changed:
        record_stop_discrepancy(
            conn, transition.session, transaction, event.meter_stop_wh, received_at
        )
    return _Stopped(known=True, session_id=row.session_id, transitions=(transition,))


def _partner_reservation(
    conn: Connection, charger_id: str, connector_id: int | None, id_tag: str
) -> Session | None:
    """A partner's reserved session on the connector held for this token, if any.

    A partner's reservation keeps its own idTag; the charger holds the connector for the
    token's uid, so the token presented there starts that session (no second session).
    """
    session_id = find_reserved_for_tag(conn, charger_id, connector_id, id_tag, _STARTABLE)
    return None if session_id is None else load_session(conn, session_id)


def _open_card_session(
    conn: Connection, session: Session, id_tag: str, now: datetime, event_at: datetime
) -> Session | None:
    """Store a card's (or a partner token's) post-paid session; None: the partner is refused."""
    partner = partner_of(session.payer)
    if partner is not None:
        refusal = token_refusal(conn, partner, id_tag, now)
        if refusal is not None:
            log.info("partner %s token %s refused at the start: %s", partner, id_tag, refusal)
            return None
    secret = secrets.token_hex(16)  # nobody holds it: a card session has no link
    initiator = "card" if partner is None else "partner"
    insert_sessions(conn, [new_session_row(session, secret, initiator, None, event_at)])
    if partner is not None:
        record_token_start(conn, session, id_tag, now)  # admitted just above: its OCPI record
    return session


def _meter_in(conn: Connection, sample: MeterSample, event_at: datetime) -> list[Transition] | None:
    """A meter sample's transaction: keep the sample, re-bill its session if it is metered.

    Returns None when the charger has no transaction of that reference (nothing written).
    """
    row = records.find_transaction(conn, sample.charger_id, sample.transaction)
    if row is None or _of_earlier(conn, sample.charger_id, sample.transaction, row, sample.at):
        return None
    records.insert_meter_reading(
        conn,
        charger_id=sample.charger_id,
        connector_id=sample.connector_id,
        number=row.number,
        register_wh=sample.register_wh,
        sampled_at=sample.at,
    )
    if row.session_id is None or load_session(conn, row.session_id).state not in _METERED:
        return []
    event = MeterReading(sample.register_wh, sample.at)
    return [apply_event(conn, row.session_id, event, event_at)]


def _reused(row: records.StoredTransaction, at: datetime) -> bool:
    """Whether a start at ``at`` of this recorded transaction's reference is a new one."""
    return (
        row.ended
        and row.stopped_at is not None
        and not within_lifetime(row.started_at, row.stopped_at, at)
    )


def _of_earlier(
    conn: Connection, charger_id: str, reference: str, row: records.StoredTransaction, at: datetime
) -> bool:
    """Whether a message at ``at`` is a late one of an earlier transaction of the reference.

    An earlier, ended transaction whose reference the charger reused after a reboot: the
    message predates ``row`` (the latest) and lies within that one's lifetime.
    """
    if at >= row.started_at or row.charger_reference is None:
        return False
    return any(
        earlier.stopped_at is not None
        and within_lifetime(earlier.started_at, earlier.stopped_at, at)
        for earlier in records.find_archived(conn, charger_id, reference)
    )


def _find_started(
    conn: Connection,
    charger_id: str,
    connector_id: int,
    id_tag: str,
    meter_start_wh: int,
    timestamp: datetime,
    transaction: str | None,
) -> _Started | None:
    """The recorded answer to a replayed start: 1.6 by its five values, 2.0.1 by reference.

    A 2.0.1 start that reuses the reference of an ended transaction is no replay: the ended
    one is archived here (same commit as the new record) and None returned.
    """
    if transaction is not None:
        own = records.find_transaction(conn, charger_id, transaction)
        if own is None or own.charger_reference is None:  # a 1.6 id is not a 2.0.1 start
            return None
        if _reused(own, timestamp):
            records.archive_reference(conn, own)
            log.info(
                "cp_id=%s: transaction %s started again at %s, after its earlier one ended: "
                "a new transaction (the earlier one is kept as %s)",
                charger_id,
                transaction,
                timestamp.isoformat(),
                records.archived_reference(transaction, own.number),
            )
            return None
        return _Started(own.number, own.reference, own.status, replayed=True)
    replay = records.find_replayed_start(
        conn, charger_id, connector_id, id_tag, meter_start_wh, timestamp
    )
    if replay is None:
        return None
    number, status = replay
    return _Started(number, records.transaction_reference(number), status, replayed=True)


class DatabaseOcppCore:
    """:class:`strom_core.ports.OcppCore` backed by the session store.

    Each call is one :meth:`strom_storage.db.Database.write` (or ``read``): one synchronous
    function doing all of its statements; the session's listeners hear of its transitions
    after the commit.

    Args:
        store: the session store.
        clock: Strom's clock (when a record was received).
        cards: the operator's cards; None: none (only Strom's own idTags are accepted).
        rates: the BTC rates a stop hands to the final bill of a tariff converted at billing
            (:mod:`strom_core.fiat`); None: such a bill falls back to the payment's rate.
    """

    def __init__(
        self,
        store: SessionStore,
        clock: Clock = SYSTEM_CLOCK,
        cards: CardDesk | None = None,
        rates: RateSource | None = None,
    ) -> None:
        self.store = store
        self.db = store.db
        self.clock = clock
        self.cards = cards
        self.rates = rates

    async def authorize(self, charger_id: str, id_tag: str) -> Authorization:
        """Authorise an idTag (see module docstring for the rule)."""
        session = await self.db.read(partial(find_by_id_tag, id_tag=id_tag))
        card = (
            None
            if session is not None or self.cards is None
            else self.cards.card(charger_id, id_tag)
        )
        if card is not None and card.mode is CardMode.PARTNER:
            now = self.clock.now()
            refusal = await self.db.read(
                partial(token_refusal, partner_id=card.account, id_tag=id_tag, now=now)
            )
            if refusal is not None:
                log.info("charger %s: partner token %s refused: %s", charger_id, id_tag, refusal)
                return Authorization.INVALID
        if card is not None:
            return Authorization.ACCEPTED
        if session is None:  # a token a partner reserved a connector here for
            session = await self.db.read(
                partial(
                    _partner_reservation, charger_id=charger_id, connector_id=None, id_tag=id_tag
                )
            )
        if session is None or session.charger_id != charger_id:
            return Authorization.INVALID
        if session.state in _STARTABLE:
            return Authorization.ACCEPTED
        if session.state in _IN_USE:
            return Authorization.IN_USE
        return Authorization.INVALID

    async def start_transaction(
        self,
        charger_id: str,
        connector_id: int,
        id_tag: str,
        meter_start_wh: int,
        timestamp: datetime,
        *,
        transaction: str | None = None,
    ) -> StartDecision:
        """Record a started transaction; replays return the first answer.

        Args:
            charger_id: the charger.
            connector_id: its connector.
            id_tag: the idTag the transaction started with.
            meter_start_wh: the energy register at the start.
            timestamp: when the charger started it.
            transaction: the charger's own transactionId (OCPP 2.0.1); None (1.6): allocated.

        Raises:
            ValueError: when ``transaction`` is empty or longer than 36 characters.
        """
        if transaction is not None:
            records.check_charger_reference(transaction)
        created_at, event_at = self.clock.now(), self.store.clock.now()
        card_session = (
            None
            if self.cards is None
            else self.cards.card_session(charger_id, connector_id, id_tag, secrets.token_hex(8))
        )

        def start(conn: Connection) -> _Started:
            replay = _find_started(
                conn, charger_id, connector_id, id_tag, meter_start_wh, timestamp, transaction
            )
            if replay is not None:
                return replay
            number = records.allocate_id(conn, records.TRANSACTION_COUNTER)
            session = find_by_id_tag(conn, id_tag) or _partner_reservation(
                conn, charger_id, connector_id, id_tag
            )
            if session is None and card_session is not None:  # the operator's card: post-paid
                session = _open_card_session(conn, card_session, id_tag, created_at, event_at)
            status = _start_status(session, charger_id, connector_id)
            session_id = (
                session.id if session is not None and status is Authorization.ACCEPTED else None
            )
            records.insert_transaction(
                conn,
                number=number,
                charger_id=charger_id,
                connector_id=connector_id,
                id_tag=id_tag,
                status=status,
                session_id=session_id,
                meter_start_wh=meter_start_wh,
                started_at=timestamp,
                created_at=created_at,
                charger_reference=transaction,
            )
            reference = (
                records.transaction_reference(number) if transaction is None else transaction
            )
            if session_id is None:
                return _Started(number, reference, status)
            event = TransactionStarted(number, meter_start_wh, timestamp)
            transition = apply_event(conn, session_id, event, event_at)
            return _Started(
                number, reference, status, session_id=session_id, transitions=(transition,)
            )

        started = await self.db.write(start)
        if started.replayed:
            return StartDecision(started.reference, started.status, True)
        self.store.committed(list(started.transitions))
        log.info(
            "charger %s connector %s: transaction %s (id %s) for idTag %s: %s (session %s)",
            charger_id,
            connector_id,
            started.reference,
            started.number,
            id_tag,
            started.status.value,
            started.session_id,
        )
        return StartDecision(started.reference, started.status)

    async def stop_transaction(
        self,
        charger_id: str,
        transaction: str,
        meter_stop_wh: int,
        timestamp: datetime,
        reason: str,
        id_tag: str | None,
    ) -> StopDecision:
        """Record a stopped transaction; the session's final bill is made in the same commit."""
        if not records.storable_reference(transaction):
            log.warning(
                "charger %s: stop of transaction %r, which no charger of Strom can have, "
                "not matched",
                charger_id,
                transaction[:40],
            )
            return StopDecision(known=False)
        rates = () if self.rates is None else self.rates.fresh_rates()
        event = TransactionStopped(meter_stop_wh, timestamp, reason, rates=rates)
        received_at, event_at = self.clock.now(), self.store.clock.now()
        stopped = await self.db.write(
            partial(
                _stop_in,
                charger_id=charger_id,
                transaction=transaction,
                event=event,
                id_tag=id_tag,
                received_at=received_at,
                event_at=event_at,
            )
        )
        if not stopped.known:
            log.warning(
                "charger %s: StopTransaction for unknown transaction %s recorded, not matched",
                charger_id,
                transaction,
            )
            return StopDecision(known=False)
        if stopped.replayed:
            return StopDecision(known=True, replayed=True)
        if stopped.not_applied is not None:
            log.warning(
                "charger %s transaction %s: stop not applied to session %s: %s",
                charger_id,
                transaction,
                stopped.session_id,
                stopped.not_applied,
            )
        self.store.committed(list(stopped.transitions))
        return StopDecision(known=True, cost_msat=stopped.cost_msat)

    async def record_meter(self, sample: MeterSample) -> None:
        """Store a meter sample and re-bill the session it belongs to."""
        event_at = self.store.clock.now()
        transitions = await self.db.write(partial(_meter_in, sample=sample, event_at=event_at))
        if transitions is None:
            log.info(
                "charger %s: sample of transaction %r, which it never started, dropped",
                sample.charger_id,
                sample.transaction[:40],
            )
            return
        self.store.committed(transitions)
