"""Roaming partners' records: tokens, sessions' OCPI side records, receivables and terms.

The SQL of :mod:`strom_core.roaming`. Each function runs inside the caller's transaction (a
service's one-hop write or read); :class:`RoamingStore` runs the reads of their own.

* A token is upserted idempotently: the same token twice changes nothing, and an older
  ``last_updated`` never overwrites a newer one (OCPI pushes can arrive out of order). Uids
  compare as OCPI and OCPP compare them, case-insensitively: a token sent again in another
  case updates the stored one.
* A partner's receivable is opened by :func:`open_receivable` from the session store's
  journal, in the transaction that makes the session's bill final; once per session.
* ``receivable_paid`` is journalled in ``ledger_entries`` under the natural key
  ``<session>:receivable_paid``: once, whichever invoice of the receivable was paid.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_core.cards import tag_key
from strom_core.errors import LedgerError
from strom_core.roaming import (
    DEFAULT_TERMS,
    PartnerTerms,
    Receivable,
    ReceivableState,
    RoamingStart,
    RoamingToken,
    StartedBy,
    TokenType,
    Whitelist,
)
from strom_core.session import State
from strom_storage.db import Database
from strom_storage.schema import (
    ledger_entries,
    partner_invoices,
    receivables,
    roaming_partner_terms,
    roaming_reservations,
    roaming_sessions,
    roaming_tokens,
    sessions,
)

__all__ = [
    "RECEIVABLE_PAID",
    "ReferenceTaken",
    "ReservationTaken",
    "RoamingStore",
    "find_idtag_token",
    "find_reservation",
    "find_reserved_for_tag",
    "find_started",
    "get_token",
    "idtag_tokens",
    "insert_reservation",
    "insert_roaming_start",
    "invoice_receivable",
    "journal_receivable_paid",
    "list_receivables",
    "list_tokens",
    "load_receivable",
    "load_roaming_start",
    "load_terms",
    "mark_receivable_paid",
    "open_receivable",
    "overdue_receivables",
    "partner_blocked",
    "patch_token",
    "receivable_of_session",
    "record_receivable_payment",
    "save_terms",
    "upsert_token",
    "write_off_receivable",
]

RECEIVABLE_PAID = "receivable_paid"  # the ledger kind of a partner's payment of its bill
_PATCHABLE = frozenset(
    {"contract_id", "visual_number", "issuer", "group_id", "valid", "whitelist", "last_updated"}
)


class ReferenceTaken(LedgerError):
    """Another transaction recorded the partner's authorization reference first."""


class ReservationTaken(LedgerError):
    """The partner's reservation id names a reservation already (possibly another process's)."""


# --- tokens ----------------------------------------------------------------------------------


def _token(row: Any) -> RoamingToken:
    return RoamingToken(
        partner_id=row.partner_id,
        uid=row.uid,
        type=TokenType(row.type),
        contract_id=row.contract_id,
        visual_number=row.visual_number,
        issuer=row.issuer,
        group_id=row.group_id,
        valid=bool(row.valid),
        whitelist=Whitelist(row.whitelist),
        last_updated=row.last_updated,
    )


def _token_values(token: RoamingToken) -> dict[str, Any]:
    return {
        "partner_id": token.partner_id,
        "uid": token.uid,
        "type": token.type.value,
        "contract_id": token.contract_id,
        "visual_number": token.visual_number[:64],
        "issuer": token.issuer[:64],
        "group_id": token.group_id[:36],
        "valid": token.valid,
        "whitelist": token.whitelist.value,
        "last_updated": token.last_updated,
    }


def _token_query(partner_id: str, uid: str, token_type: TokenType) -> Any:
    return select(roaming_tokens).where(
        roaming_tokens.c.partner_id == partner_id,
        func.lower(roaming_tokens.c.uid) == uid.lower(),
        roaming_tokens.c.type == TokenType(token_type).value,
    )


def get_token(
    conn: Connection, partner_id: str, uid: str, token_type: TokenType
) -> RoamingToken | None:
    """The partner's token (uid compared case-insensitively), or None."""
    row = conn.execute(_token_query(partner_id, uid, token_type)).first()
    return None if row is None else _token(row)


def upsert_token(conn: Connection, token: RoamingToken) -> bool:
    """Store a token, or update the stored one unless that one is newer.

    Returns:
        Whether anything was written (False: the stored token is as new or newer).
    """
    stored = conn.execute(_token_query(token.partner_id, token.uid, token.type)).first()
    values = _token_values(token)
    if stored is None:
        conn.execute(insert(roaming_tokens).values(values))
        return True
    if _token(stored) == token or stored.last_updated > token.last_updated:
        return False
    conn.execute(
        update(roaming_tokens)
        .where(
            roaming_tokens.c.partner_id == stored.partner_id,
            roaming_tokens.c.uid == stored.uid,
            roaming_tokens.c.type == stored.type,
        )
        .values(values)
    )
    return True


def patch_token(
    conn: Connection,
    partner_id: str,
    uid: str,
    token_type: TokenType,
    changes: dict[str, Any],
) -> RoamingToken | None:
    """Change some fields of a stored token (``last_updated`` among them, required).

    A patch older than the stored token changes nothing.

    Returns:
        The token as stored afterwards; None: no such token (nothing written).

    Raises:
        ValueError: a field that cannot be patched, no ``last_updated``, or a value the
            token rejects (nothing written).
    """
    unknown = set(changes) - _PATCHABLE
    if unknown:
        raise ValueError(f"these token fields cannot be patched: {', '.join(sorted(unknown))}")
    if "last_updated" not in changes:
        raise ValueError("a token patch must carry last_updated")
    stored = get_token(conn, partner_id, uid, token_type)
    if stored is None:
        return None
    patched = replace(stored, **changes)  # validated by RoamingToken
    upsert_token(conn, patched)
    return get_token(conn, partner_id, uid, token_type)


def list_tokens(conn: Connection, partner_id: str) -> list[RoamingToken]:
    """The partner's tokens, by uid and type."""
    query = (
        select(roaming_tokens)
        .where(roaming_tokens.c.partner_id == partner_id)
        .order_by(roaming_tokens.c.uid, roaming_tokens.c.type)
    )
    return [_token(row) for row in conn.execute(query)]


def idtag_tokens(conn: Connection) -> list[RoamingToken]:
    """Every partner's RFID tokens a charger could present (uid of at most 20 characters)."""
    query = select(roaming_tokens).where(
        roaming_tokens.c.type == TokenType.RFID.value, func.length(roaming_tokens.c.uid) <= 20
    )
    return [_token(row) for row in conn.execute(query)]


def find_idtag_token(conn: Connection, partner_id: str, id_tag: str) -> RoamingToken | None:
    """The partner's RFID token presented as ``id_tag`` (compared as OCPP compares idTags)."""
    return get_token(conn, partner_id, id_tag, TokenType.RFID)


# --- sessions' side records ------------------------------------------------------------------


def insert_roaming_start(conn: Connection, start: RoamingStart) -> None:
    """Record a partner's session's OCPI side (in the transaction that creates the session).

    Raises:
        ReferenceTaken: the partner's authorization reference is recorded already (another
            transaction was first); the caller's transaction must be rolled back.
    """
    try:
        with conn.begin_nested():
            conn.execute(
                insert(roaming_sessions).values(
                    session_id=start.session_id,
                    partner_id=start.partner_id,
                    token_uid=start.token_uid,
                    token_type=start.token_type.value,
                    contract_id=start.contract_id,
                    authorization_reference=start.authorization_reference,
                    started_by=start.started_by.value,
                    created_at=start.created_at,
                )
            )
    except IntegrityError:
        raise ReferenceTaken(
            f"partner {start.partner_id}: authorization reference "
            f"{start.authorization_reference!r} is taken"
        ) from None


def _start(row: Any) -> RoamingStart:
    return RoamingStart(
        session_id=row.session_id,
        partner_id=row.partner_id,
        token_uid=row.token_uid,
        token_type=TokenType(row.token_type),
        contract_id=row.contract_id,
        authorization_reference=row.authorization_reference,
        started_by=StartedBy(row.started_by),
        created_at=row.created_at,
    )


def find_started(conn: Connection, partner_id: str, authorization_reference: str) -> str | None:
    """The session a partner's remote start with this reference opened, if any."""
    query = select(roaming_sessions.c.session_id).where(
        roaming_sessions.c.partner_id == partner_id,
        roaming_sessions.c.authorization_reference == authorization_reference,
    )
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def load_roaming_start(conn: Connection, session_id: str) -> RoamingStart | None:
    """A partner's session's OCPI side record; None: not a partner's session."""
    query = select(roaming_sessions).where(roaming_sessions.c.session_id == session_id)
    row = conn.execute(query).first()
    return None if row is None else _start(row)


# --- reservations ----------------------------------------------------------------------------


def insert_reservation(
    conn: Connection, partner_id: str, reservation_id: str, session_id: str, now: datetime
) -> None:
    """Record that the partner's ``reservation_id`` names ``session_id`` (in its transaction).

    Raises:
        ReservationTaken: the partner used this reservation id before; the caller's
            transaction must be rolled back.
    """
    try:
        with conn.begin_nested():
            conn.execute(
                insert(roaming_reservations).values(
                    partner_id=partner_id,
                    reservation_id=reservation_id,
                    session_id=session_id,
                    created_at=now,
                )
            )
    except IntegrityError:
        raise ReservationTaken(
            f"partner {partner_id}: reservation id {reservation_id!r} is taken"
        ) from None


def find_reservation(conn: Connection, partner_id: str, reservation_id: str) -> str | None:
    """The session the partner's ``reservation_id`` names, if any."""
    query = select(roaming_reservations.c.session_id).where(
        roaming_reservations.c.partner_id == partner_id,
        roaming_reservations.c.reservation_id == reservation_id,
    )
    found = conn.execute(query).scalar()
    return None if found is None else str(found)


def find_reserved_for_tag(
    conn: Connection,
    charger_id: str,
    connector_id: int | None,
    id_tag: str,
    states: Collection[State] = (State.RESERVED,),
) -> str | None:
    """The partner reservation on this connector for the token ``id_tag``, if any.

    A partner's reserved session has its own idTag; the charger holds the connector for the
    token's uid, which is what the driver presents (compared as OCPP compares idTags).
    ``states``: the session's states looked at (a reservation asked to start is ``PAID``);
    ``connector_id`` None: any connector of the charger (an Authorize names none).
    """
    query = (
        select(sessions.c.id, roaming_sessions.c.token_uid)
        .join(roaming_reservations, roaming_reservations.c.session_id == sessions.c.id)
        .join(roaming_sessions, roaming_sessions.c.session_id == sessions.c.id)
        .where(
            sessions.c.charger_id == charger_id,
            sessions.c.state.in_([state.value for state in states]),
        )
    )
    if connector_id is not None:
        query = query.where(sessions.c.connector_id == connector_id)
    for row in conn.execute(query):
        if tag_key(row.token_uid) == tag_key(id_tag):
            return str(row.id)
    return None


# --- receivables -----------------------------------------------------------------------------


def _receivable(row: Any) -> Receivable:
    return Receivable(
        id=int(row.id),
        partner_id=row.partner_id,
        session_id=row.session_id,
        amount_msat=int(row.amount_msat),
        state=ReceivableState(row.state),
        created_at=row.created_at,
        payment_hash=row.payment_hash,
        bolt11=row.bolt11,
        invoiced_at=row.invoiced_at,
        due_at=row.due_at,
        paid_at=row.paid_at,
    )


def open_receivable(
    conn: Connection, session_id: str, partner_id: str, amount_msat: int, now: datetime
) -> bool:
    """Open the partner's receivable of a session's final bill (once per session).

    Called in the transaction that journals the bill (the session row is locked there). The
    interval invoices of a streamed session paid so far are subtracted
    (``bill = paid intervals + receivable``, see :mod:`strom_storage.partner_invoices`). A
    bill of 0 (or one paid in full by the intervals) opens nothing: there is nothing to invoice.

    Returns:
        Whether a receivable was opened now.
    """
    # A streamed session: the interval invoices paid while it charged are not owed again.
    amount_msat -= _paid_intervals_msat(conn, session_id)
    if amount_msat <= 0 or receivable_of_session(conn, session_id) is not None:
        return False
    conn.execute(
        insert(receivables).values(
            partner_id=partner_id,
            session_id=session_id,
            amount_msat=amount_msat,
            state=ReceivableState.OPEN.value,
            created_at=now,
        )
    )
    return True


def _paid_intervals_msat(conn: Connection, session_id: str) -> int:
    query = select(func.coalesce(func.sum(partner_invoices.c.amount_msat), 0)).where(
        partner_invoices.c.session_id == session_id,
        partner_invoices.c.kind == "INTERVAL",
        partner_invoices.c.receivable_id.is_(None),
        partner_invoices.c.status == "PAID",
    )
    return int(conn.execute(query).scalar_one())


def _locked(query: Any, conn: Connection, lock: bool) -> Any:
    return query.with_for_update() if lock and conn.dialect.name == "postgresql" else query


def load_receivable(
    conn: Connection, receivable_id: int, *, lock: bool = False
) -> Receivable | None:
    """One receivable (its row locked for the transaction with ``lock``), or None."""
    query = _locked(select(receivables).where(receivables.c.id == receivable_id), conn, lock)
    row = conn.execute(query).first()
    return None if row is None else _receivable(row)


def receivable_of_session(
    conn: Connection, session_id: str, *, lock: bool = False
) -> Receivable | None:
    """The receivable of a partner's session (locked with ``lock``), or None."""
    query = _locked(select(receivables).where(receivables.c.session_id == session_id), conn, lock)
    row = conn.execute(query).first()
    return None if row is None else _receivable(row)


def invoice_receivable(
    conn: Connection,
    receivable_id: int,
    *,
    payment_hash: str,
    bolt11: str,
    now: datetime,
    terms_days: int,
) -> None:
    """Record the invoice offered for a receivable (``invoiced``).

    The due date is set by the first invoice (``now`` + the partner's payment terms) and kept
    when an expired invoice is replaced: a new invoice does not give more time to pay.
    """
    row = load_receivable(conn, receivable_id)
    assert row is not None
    conn.execute(
        update(receivables)
        .where(receivables.c.id == receivable_id)
        .values(
            state=ReceivableState.INVOICED.value,
            payment_hash=payment_hash,
            bolt11=bolt11,
            invoiced_at=now,
            due_at=row.due_at or now + timedelta(days=terms_days),
        )
    )


def mark_receivable_paid(
    conn: Connection, receivable_id: int, payment_hash: str, now: datetime
) -> None:
    """Record the receivable ``paid`` by the invoice with ``payment_hash``."""
    conn.execute(
        update(receivables)
        .where(receivables.c.id == receivable_id)
        .values(state=ReceivableState.PAID.value, payment_hash=payment_hash, paid_at=now)
    )


def record_receivable_payment(
    conn: Connection, session_id: str, payment_hash: str, received_msat: int, now: datetime
) -> Receivable | None:
    """A settled invoice of a session's receivable: ``paid`` and journalled, once.

    Any invoice of the receivable counts (an earlier one replaced after it expired cannot be
    paid, but if a node ever settled one, the money is the partner's payment all the same).

    Returns:
        The receivable as it was, when this call recorded its payment; None when it was paid
        already (a second payment is not credited: the caller reports it) or is unknown.
    """
    found = receivable_of_session(conn, session_id, lock=True)
    if found is None or found.state is ReceivableState.PAID:
        return None
    mark_receivable_paid(conn, found.id, payment_hash, now)
    journal_receivable_paid(conn, session_id, received_msat, now)
    return found


def write_off_receivable(conn: Connection, receivable_id: int) -> bool:
    """Give up an unpaid receivable (the operator's decision); False if it is paid or unknown."""
    result = conn.execute(
        update(receivables)
        .where(
            receivables.c.id == receivable_id,
            receivables.c.state.in_([ReceivableState.OPEN.value, ReceivableState.INVOICED.value]),
        )
        .values(state=ReceivableState.WRITTEN_OFF.value)
    )
    return bool(result.rowcount)


def journal_receivable_paid(
    conn: Connection, session_id: str, amount_msat: int, now: datetime
) -> None:
    """Journal a partner's payment of a session's bill (natural key: once per session)."""
    conn.execute(
        insert(ledger_entries).values(
            session_id=session_id,
            kind=RECEIVABLE_PAID,
            natural_key=f"{session_id}:{RECEIVABLE_PAID}",
            amount_msat=amount_msat,
            created_at=now,
        )
    )


def list_receivables(
    conn: Connection,
    partner_id: str | None = None,
    states: Collection[ReceivableState] | None = None,
) -> list[Receivable]:
    """Receivables (of one partner, in some states), oldest first."""
    query = select(receivables).order_by(receivables.c.id)
    if partner_id is not None:
        query = query.where(receivables.c.partner_id == partner_id)
    if states is not None:
        query = query.where(receivables.c.state.in_([s.value for s in states]))
    return [_receivable(row) for row in conn.execute(query)]


def overdue_receivables(
    conn: Connection, now: datetime, partner_id: str | None = None
) -> list[Receivable]:
    """Receivables invoiced and unpaid past their due date, oldest due first."""
    query = (
        select(receivables)
        .where(
            receivables.c.state == ReceivableState.INVOICED.value,
            receivables.c.due_at < now,
        )
        .order_by(receivables.c.due_at, receivables.c.id)
    )
    if partner_id is not None:
        query = query.where(receivables.c.partner_id == partner_id)
    return [_receivable(row) for row in conn.execute(query)]


# --- partners' terms -------------------------------------------------------------------------


def load_terms(conn: Connection, partner_id: str) -> PartnerTerms:
    """The partner's terms; :data:`~strom_core.roaming.DEFAULT_TERMS` if none were set."""
    query = select(roaming_partner_terms).where(roaming_partner_terms.c.partner_id == partner_id)
    row = conn.execute(query).first()
    if row is None:
        return DEFAULT_TERMS
    return PartnerTerms(bool(row.block_when_overdue), int(row.payment_terms_days))


def save_terms(conn: Connection, partner_id: str, terms: PartnerTerms, now: datetime) -> None:
    """Set the partner's terms (replacing earlier ones)."""
    values = {
        "block_when_overdue": terms.block_when_overdue,
        "payment_terms_days": terms.payment_terms_days,
        "updated_at": now,
    }
    table = roaming_partner_terms
    changed = conn.execute(update(table).where(table.c.partner_id == partner_id).values(values))
    if not changed.rowcount:
        conn.execute(insert(table).values(partner_id=partner_id, **values))


def partner_blocked(conn: Connection, partner_id: str, now: datetime) -> bool:
    """Whether the partner may start nothing new: an overdue receivable, and terms that block."""
    if not load_terms(conn, partner_id).block_when_overdue:
        return False
    return bool(overdue_receivables(conn, now, partner_id))


class RoamingStore:
    """Reads of the roaming tables in transactions of their own (the writes are one-hop)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def tokens(self, partner_id: str) -> list[RoamingToken]:
        """The partner's tokens (:func:`list_tokens`)."""
        return await self.db.read(partial(list_tokens, partner_id=partner_id))

    async def token(self, partner_id: str, uid: str, token_type: TokenType) -> RoamingToken | None:
        """One token (:func:`get_token`)."""
        work = partial(get_token, partner_id=partner_id, uid=uid, token_type=token_type)
        return await self.db.read(work)

    async def idtag_tokens(self) -> list[RoamingToken]:
        """The tokens a charger could present (:func:`idtag_tokens`)."""
        return await self.db.read(idtag_tokens)

    async def roaming_start(self, session_id: str) -> RoamingStart | None:
        """A partner's session's side record (:func:`load_roaming_start`)."""
        return await self.db.read(partial(load_roaming_start, session_id=session_id))

    async def receivable(self, receivable_id: int) -> Receivable | None:
        """One receivable (:func:`load_receivable`)."""
        return await self.db.read(partial(load_receivable, receivable_id=receivable_id))

    async def receivable_of(self, session_id: str) -> Receivable | None:
        """A session's receivable (:func:`receivable_of_session`)."""
        return await self.db.read(partial(receivable_of_session, session_id=session_id))

    async def receivables(
        self, partner_id: str | None = None, states: Collection[ReceivableState] | None = None
    ) -> list[Receivable]:
        """Receivables (:func:`list_receivables`)."""
        work = partial(list_receivables, partner_id=partner_id, states=states)
        return await self.db.read(work)

    async def overdue(self, now: datetime, partner_id: str | None = None) -> list[Receivable]:
        """Overdue receivables (:func:`overdue_receivables`)."""
        work = partial(overdue_receivables, now=now, partner_id=partner_id)
        return await self.db.read(work)

    async def terms(self, partner_id: str) -> PartnerTerms:
        """The partner's terms (:func:`load_terms`)."""
        return await self.db.read(partial(load_terms, partner_id=partner_id))

    async def blocked(self, partner_id: str, now: datetime) -> bool:
        """Whether the partner is blocked (:func:`partner_blocked`)."""
        return await self.db.read(partial(partner_blocked, partner_id=partner_id, now=now))
