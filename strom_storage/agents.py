"""The database reads and writes of the agents, on the core's schema (no tables of their own).

Replay protection lives here too: every event an agent acts on is first *claimed* in
``nostr_events`` (its id is the primary key), so a replayed event finds its id taken and is
ignored, across restarts and across relays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from strom_core.session import Session, State
from strom_storage.db import Database
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
    "OPEN_STATES",
    "ChargerSnapshot",
    "Initiator",
    "active_zap_sessions",
    "audit",
    "charger_snapshots",
    "claim_event",
    "initiator_of",
    "latest_session_of",
    "open_sessions",
    "payers_since",
    "release_event",
    "set_connector_enabled",
    "zap_relays_of",
    "zap_request_of",
]

OPEN_STATES = (
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


@dataclass(frozen=True, slots=True)
class Initiator:
    """Who started a session."""

    charger_id: str
    initiator: str
    pubkey: str | None


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


async def claim_event(db: Database, event_id: str, kind: int, pubkey: str, now: float) -> bool:
    """Record an event as processed; False when it was already (a replay)."""
    try:
        async with db.transaction() as conn:
            await conn.execute(
                insert(nostr_events).values(
                    event_id=event_id, kind=kind, pubkey=pubkey, received_at=_utc(now)
                )
            )
    except IntegrityError:
        return False
    return True


async def release_event(db: Database, event_id: str) -> None:
    """Forget a claim, so the event is processed when it comes again (after a backend error)."""
    async with db.transaction() as conn:
        await conn.execute(delete(nostr_events).where(nostr_events.c.event_id == event_id))


async def charger_snapshots(
    db: Database, charger_ids: Iterable[str] | None = None
) -> dict[str, ChargerSnapshot]:
    """Online flag, reconnect grace and connector states of chargers (all when None)."""
    wanted = None if charger_ids is None else list(charger_ids)
    async with db.reader() as conn:
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
            row.id: (bool(row.online), row.reconnect_until)
            for row in await conn.execute(query_chargers)
        }
        states: dict[str, dict[int, tuple[str, bool]]] = {}
        for row in await conn.execute(query_connectors):
            states.setdefault(row.charger_id, {})[row.connector_id] = (
                str(row.status),
                bool(row.enabled),
            )
    return {
        charger_id: ChargerSnapshot(
            links.get(charger_id, (False, None))[0],
            states.get(charger_id, {}),
            links.get(charger_id, (False, None))[1],
        )
        for charger_id in set(links) | set(states)
    }


async def initiator_of(db: Database, session_id: str) -> Initiator | None:
    """The charger and initiator of a session, or None for an unknown session."""
    async with db.reader() as conn:
        row = (
            await conn.execute(
                select(
                    sessions.c.charger_id, sessions.c.initiator, sessions.c.initiator_pubkey
                ).where(sessions.c.id == session_id)
            )
        ).first()
    if row is None:
        return None
    return Initiator(row.charger_id, row.initiator, row.initiator_pubkey)


async def latest_session_of(db: Database, charger_id: str, pubkey: str) -> Session | None:
    """The newest paid session this pubkey started on this charger, if any."""
    async with db.reader() as conn:
        row = (
            await conn.execute(
                select(sessions)
                .where(
                    sessions.c.charger_id == charger_id,
                    sessions.c.initiator_pubkey == pubkey,
                    sessions.c.state.not_in([State.AWAITING_PAYMENT.value, State.EXPIRED.value]),
                )
                .order_by(sessions.c.created_at.desc())
                .limit(1)
            )
        ).first()
    return None if row is None else row_to_session(row)


async def payers_since(db: Database, since: datetime) -> list[tuple[str, str, datetime]]:
    """(charger id, payer pubkey, updated_at) of zap-paid sessions changed since ``since``."""
    async with db.reader() as conn:
        rows = await conn.execute(
            select(sessions.c.charger_id, sessions.c.initiator_pubkey, sessions.c.updated_at).where(
                sessions.c.updated_at >= since,
                sessions.c.initiator_pubkey.is_not(None),
                sessions.c.state.not_in([State.AWAITING_PAYMENT.value, State.EXPIRED.value]),
            )
        )
        return [(row.charger_id, row.initiator_pubkey, row.updated_at) for row in rows]


async def open_sessions(db: Database, charger_id: str, limit: int = 20) -> list[Session]:
    """Sessions of a charger that run or still hold money, newest first."""
    async with db.reader() as conn:
        rows = await conn.execute(
            select(sessions)
            .where(
                sessions.c.charger_id == charger_id,
                sessions.c.state.in_([state.value for state in OPEN_STATES]),
            )
            .order_by(sessions.c.created_at.desc())
            .limit(limit)
        )
        return [row_to_session(row) for row in rows]


async def active_zap_sessions(
    db: Database, charger_ids: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """Charging sessions started by a zap, by charger (for progress DMs after a restart)."""
    query = select(sessions.c.charger_id, sessions.c.id).where(
        sessions.c.state == State.CHARGING.value,
        sessions.c.initiator == "zap",
        sessions.c.initiator_pubkey.is_not(None),
    )
    if charger_ids is not None:
        query = query.where(sessions.c.charger_id.in_(list(charger_ids)))
    found: dict[str, list[str]] = {}
    async with db.reader() as conn:
        for row in await conn.execute(query):
            found.setdefault(row.charger_id, []).append(row.id)
    return found


async def zap_request_of(db: Database, payment_hash: str) -> dict[str, Any] | None:
    """The stored zap request of a payment (``{"description", "relays"}``), or None."""
    async with db.reader() as conn:
        value = await conn.scalar(
            select(payments.c.zap_request).where(payments.c.payment_hash == payment_hash)
        )
    return value if isinstance(value, dict) else None


async def zap_relays_of(db: Database, session_id: str) -> tuple[str, ...]:
    """The relays named by the zap request that paid a session (where its payer listens)."""
    async with db.reader() as conn:
        values = await conn.scalars(
            select(payments.c.zap_request).where(
                payments.c.session_id == session_id, payments.c.zap_request.is_not(None)
            )
        )
        relays: list[str] = []
        for value in values:
            if isinstance(value, dict):
                relays += [url for url in value.get("relays", []) if isinstance(url, str)]
    return tuple(dict.fromkeys(relays))


async def set_connector_enabled(
    db: Database, charger_id: str, connector_id: int, *, enabled: bool
) -> None:
    """Set the operator's enabled flag of a connector (new sessions refuse a disabled one)."""
    async with db.transaction() as conn:
        await conn.execute(
            update(connectors)
            .where(connectors.c.charger_id == charger_id, connectors.c.connector_id == connector_id)
            .values(enabled=enabled)
        )


async def audit(
    db: Database, *, actor: str, action: str, target: str, detail: dict[str, Any], now: float
) -> None:
    """Write one operator action to ``audit_log``."""
    async with db.transaction() as conn:
        await conn.execute(
            insert(audit_log).values(
                at=_utc(now), actor=actor, action=action, target=target[:100], detail=detail
            )
        )
