"""The database reads and writes of the agents, on the core's schema (no tables of their own).

Replay protection lives here too: every event an agent acts on is first *claimed* in
``nostr_events`` (its id is the primary key), so a replayed event finds its id taken and is
ignored, across restarts and across relays.

Each function is one transaction, run in one hop (:meth:`Database.write` or
:meth:`Database.read`) by a synchronous function of a ``Connection`` defined next to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from strom_core.session import Session, State
from strom_storage.audit import record_in
from strom_storage.db import Database
from strom_storage.ocpp import allocate_id
from strom_storage.schema import (
    audit_log,
    chargers,
    connectors,
    nostr_events,
    payments,
    sessions,
)
from strom_storage.sessions import row_to_session

__all__ = [
    "DM_INITIATORS",
    "OPEN_STATES",
    "ChargerSnapshot",
    "Initiator",
    "active_zap_sessions",
    "audit",
    "charger_snapshots",
    "claim_event",
    "initiator_of",
    "last_audit_detail",
    "latest_session_of",
    "next_id",
    "open_sessions",
    "payers_since",
    "release_event",
    "set_connector_enabled",
    "zap_relays_of",
    "zap_request_of",
]

DM_INITIATORS = ("zap", "dm")
"""Initiators whose sessions are told by DM: a zap, or an invoice a DM asked for."""

OPEN_STATES = (
    State.RESERVED,
    State.PAID,
    State.STARTING,
    State.CHARGING,
    State.STOPPING,
    State.STOPPED,
    State.START_FAILED,
    State.REFUND_PENDING,
)
"""Sessions an operator still cares about: running, or holding money to refund."""


@dataclass(frozen=True, slots=True)
class ChargerSnapshot:
    """What the database knows about a charger at run time."""

    online: bool = False
    # connector id -> (OCPP status, enabled by the operator)
    connectors: dict[int, tuple[str, bool]] | None = None
    # The end of its reconnect grace after a restart of Strom (it was connected then), if any.
    reconnect_until: datetime | None = None
    # connector id -> (session id, end in unix seconds) of its reserved sessions
    reservations: dict[int, tuple[str, int]] | None = None


@dataclass(frozen=True, slots=True)
class Initiator:
    """Who started a session."""

    charger_id: str
    initiator: str
    pubkey: str | None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# The statements every DM, zap and notification runs, built once.
_CLAIM = insert(nostr_events)
_RELEASE = delete(nostr_events).where(nostr_events.c.event_id == bindparam("event_id"))
_INITIATOR = select(sessions.c.charger_id, sessions.c.initiator, sessions.c.initiator_pubkey).where(
    sessions.c.id == bindparam("session_id")
)
_LATEST_SESSION = (
    select(sessions)
    .where(
        sessions.c.charger_id == bindparam("charger_id"),
        sessions.c.initiator_pubkey == bindparam("pubkey"),
        sessions.c.state.not_in([State.AWAITING_PAYMENT.value, State.EXPIRED.value]),
    )
    .order_by(sessions.c.created_at.desc())
    .limit(1)
)
_ZAP_REQUEST = select(payments.c.zap_request).where(
    payments.c.payment_hash == bindparam("payment_hash")
)
_ZAP_REQUESTS_OF_SESSION = select(payments.c.zap_request).where(
    payments.c.session_id == bindparam("session_id"), payments.c.zap_request.is_not(None)
)


def _claim(conn: Connection, event_id: str, kind: int, pubkey: str, at: datetime) -> None:
    conn.execute(_CLAIM, {"event_id": event_id, "kind": kind, "pubkey": pubkey, "received_at": at})


async def claim_event(db: Database, event_id: str, kind: int, pubkey: str, now: float) -> bool:
    """Record an event as processed; False when it was already (a replay)."""
    try:
        await db.write(partial(_claim, event_id=event_id, kind=kind, pubkey=pubkey, at=_utc(now)))
    except IntegrityError:
        return False
    return True


async def release_event(db: Database, event_id: str) -> None:
    """Forget a claim, so the event is processed when it comes again (after a backend error)."""
    await db.write(lambda conn: conn.execute(_RELEASE, {"event_id": event_id}))


def _snapshots(conn: Connection, wanted: list[str] | None) -> dict[str, ChargerSnapshot]:
    query_chargers = select(chargers.c.id, chargers.c.online, chargers.c.reconnect_until)
    query_connectors = select(
        connectors.c.charger_id,
        connectors.c.connector_id,
        connectors.c.status,
        connectors.c.enabled,
    )
    if wanted is not None:
        query_chargers = query_chargers.where(chargers.c.id.in_(wanted))
        query_connectors = query_connectors.where(connectors.c.charger_id.in_(wanted))
    links = {
        row.id: (bool(row.online), row.reconnect_until) for row in conn.execute(query_chargers)
    }
    states: dict[str, dict[int, tuple[str, bool]]] = {}
    for row in conn.execute(query_connectors):
        states.setdefault(row.charger_id, {})[row.connector_id] = (
            str(row.status),
            bool(row.enabled),
        )
    query_reserved = select(
        sessions.c.id, sessions.c.charger_id, sessions.c.connector_id, sessions.c.reserved_until
    ).where(sessions.c.state == State.RESERVED.value, sessions.c.reserved_until.is_not(None))
    if wanted is not None:
        query_reserved = query_reserved.where(sessions.c.charger_id.in_(wanted))
    held: dict[str, dict[int, tuple[str, int]]] = {}
    for row in conn.execute(query_reserved):
        until = int(row.reserved_until.timestamp())  # aware UTC (the column type's)
        held.setdefault(row.charger_id, {})[row.connector_id] = (row.id, until)
    return {
        charger_id: ChargerSnapshot(
            links.get(charger_id, (False, None))[0],
            states.get(charger_id, {}),
            links.get(charger_id, (False, None))[1],
            held.get(charger_id, {}),
        )
        for charger_id in set(links) | set(states) | set(held)
    }


async def charger_snapshots(
    db: Database, charger_ids: Iterable[str] | None = None
) -> dict[str, ChargerSnapshot]:
    """Online flag, reconnect grace and connector states of chargers (all when None)."""
    wanted = None if charger_ids is None else list(charger_ids)
    return await db.read(partial(_snapshots, wanted=wanted))


def _initiator(conn: Connection, session_id: str) -> Initiator | None:
    row = conn.execute(_INITIATOR, {"session_id": session_id}).first()
    return None if row is None else Initiator(row.charger_id, row.initiator, row.initiator_pubkey)


async def initiator_of(db: Database, session_id: str) -> Initiator | None:
    """The charger and initiator of a session, or None for an unknown session."""
    return await db.read(partial(_initiator, session_id=session_id))


def _latest_session(conn: Connection, charger_id: str, pubkey: str) -> Session | None:
    row = conn.execute(_LATEST_SESSION, {"charger_id": charger_id, "pubkey": pubkey}).first()
    return None if row is None else row_to_session(row)


async def latest_session_of(db: Database, charger_id: str, pubkey: str) -> Session | None:
    """The newest paid session this pubkey started on this charger, if any."""
    return await db.read(partial(_latest_session, charger_id=charger_id, pubkey=pubkey))


def _payers(conn: Connection, since: datetime) -> list[tuple[str, str, datetime]]:
    rows = conn.execute(
        select(sessions.c.charger_id, sessions.c.initiator_pubkey, sessions.c.updated_at).where(
            sessions.c.updated_at >= since,
            sessions.c.initiator_pubkey.is_not(None),
            sessions.c.state.not_in([State.AWAITING_PAYMENT.value, State.EXPIRED.value]),
        )
    )
    return [(row.charger_id, row.initiator_pubkey, row.updated_at) for row in rows]


async def payers_since(db: Database, since: datetime) -> list[tuple[str, str, datetime]]:
    """(charger id, payer pubkey, updated_at) of zap-paid sessions changed since ``since``."""
    return await db.read(partial(_payers, since=since))


def _open_sessions(conn: Connection, charger_id: str, limit: int) -> list[Session]:
    rows = conn.execute(
        select(sessions)
        .where(
            sessions.c.charger_id == charger_id,
            sessions.c.state.in_([state.value for state in OPEN_STATES]),
        )
        .order_by(sessions.c.created_at.desc())
        .limit(limit)
    )
    return [row_to_session(row) for row in rows]


async def open_sessions(db: Database, charger_id: str, limit: int = 20) -> list[Session]:
    """Sessions of a charger that run or still hold money, newest first."""
    return await db.read(partial(_open_sessions, charger_id=charger_id, limit=limit))


def _active_zap_sessions(conn: Connection, wanted: list[str] | None) -> dict[str, list[str]]:
    query = select(sessions.c.charger_id, sessions.c.id).where(
        sessions.c.state == State.CHARGING.value,
        sessions.c.initiator.in_(DM_INITIATORS),
        sessions.c.initiator_pubkey.is_not(None),
    )
    if wanted is not None:
        query = query.where(sessions.c.charger_id.in_(wanted))
    found: dict[str, list[str]] = {}
    for row in conn.execute(query):
        found.setdefault(row.charger_id, []).append(row.id)
    return found


async def active_zap_sessions(
    db: Database, charger_ids: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Charging sessions started by a zap or a DM, by charger (progress DMs after a restart)."""
    wanted = None if charger_ids is None else list(charger_ids)
    return await db.read(partial(_active_zap_sessions, wanted=wanted))


async def zap_request_of(db: Database, payment_hash: str) -> dict[str, Any] | None:
    """The stored zap request of a payment (``{"description", "relays"}``), or None."""
    value = await db.read(lambda conn: conn.scalar(_ZAP_REQUEST, {"payment_hash": payment_hash}))
    return value if isinstance(value, dict) else None


def _zap_relays(conn: Connection, session_id: str) -> tuple[str, ...]:
    relays: list[str] = []
    for value in conn.scalars(_ZAP_REQUESTS_OF_SESSION, {"session_id": session_id}):
        if isinstance(value, dict):
            relays += [url for url in value.get("relays", []) if isinstance(url, str)]
    return tuple(dict.fromkeys(relays))


async def zap_relays_of(db: Database, session_id: str) -> tuple[str, ...]:
    """The relays named by the zap request that paid a session (where its payer listens)."""
    return await db.read(partial(_zap_relays, session_id=session_id))


def _set_enabled(conn: Connection, charger_id: str, connector_id: int, enabled: bool) -> None:
    conn.execute(
        update(connectors)
        .where(connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id)
        .values(enabled=enabled)
    )


async def set_connector_enabled(
    db: Database, charger_id: str, connector_id: int, *, enabled: bool
) -> None:
    """Set the operator's enabled flag of a connector (new sessions refuse a disabled one)."""
    await db.write(
        partial(_set_enabled, charger_id=charger_id, connector_id=connector_id, enabled=enabled)
    )


async def next_id(db: Database, counter: str) -> int:
    """Take the next value of a persisted counter of ``id_allocator`` (never given twice)."""
    return await db.write(partial(allocate_id, name=counter))


def _last_audit(conn: Connection, action: str, target: str) -> dict[str, Any] | None:
    row = conn.execute(
        select(audit_log.c.detail)
        .where(audit_log.c.action == action, audit_log.c.target == target)
        .order_by(audit_log.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else dict(row.detail)


async def last_audit_detail(db: Database, action: str, target: str) -> dict[str, Any] | None:
    """The detail of the newest audited ``action`` on ``target``, if any."""
    return await db.read(partial(_last_audit, action=action, target=target))


async def audit(
    db: Database, *, actor: str, action: str, target: str, detail: dict[str, Any], now: float
) -> None:
    """Write one operator action to ``audit_log`` (:func:`strom_storage.audit.record_in`)."""
    await db.write(
        partial(record_in, actor=actor, action=action, target=target, detail=detail, now=_utc(now))
    )
