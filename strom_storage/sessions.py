"""Persisting sessions: one event, one database transaction.

:meth:`SessionStore.apply` is the only way a session changes. Inside one transaction it locks
the session row, runs the pure :func:`strom_core.session.apply`, writes the new row guarded by its
``version`` (compare-and-swap), journals the money that moved in ``ledger_entries`` (each entry
unique on its natural key) and queues the effects in the ``outbox``. Either all of it is
committed or none of it is, so a crash at any instant leaves a session, its ledger and the
effects it still owes in agreement.

A session billed by a price schedule (a dynamic tariff) keeps its schedule and per-interval
energy in the row (``price_schedule``, ``interval_wh``); when its bill becomes final the
per-interval bill is journalled in ``ledger_intervals`` next to the consumption entry, each
interval with the schedule's source, ``fetched_at`` and ``rate_source``, so any bill can be
recomputed from the ledger alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection
from dataclasses import asdict, fields
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.engine import Connection

from strom_core.billing import interval_bills
from strom_core.cards import FREE_PAYER, partner_of
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import LedgerError, StorageError
from strom_core.fiat import Conversion, FiatBilling, FiatRate, FiatTerms
from strom_core.prices import PriceInterval, PriceSchedule
from strom_core.session import Session, State, Transition, apply
from strom_core.session_effects import (
    ArmReservationExpiry,
    ArmStartTimeout,
    CancelReservation,
    Effect,
    Notify,
    RemoteStart,
    RemoteStop,
    ReserveNow,
)
from strom_core.session_events import Event, ReservationAccepted
from strom_core.tariff import Tariff
from strom_storage.db import Database
from strom_storage.leases import agent_lease, charger_lease
from strom_storage.outbox import queue_effect, run_session_now
from strom_storage.partner_cdrs import queue_partner_cdr
from strom_storage.roaming import open_receivable
from strom_storage.roaming_commands import end_session_commands
from strom_storage.schema import ledger_entries, ledger_intervals, ledger_rates, sessions

__all__ = [
    "SessionNotFound",
    "SessionStore",
    "apply_event",
    "effect_charger",
    "effect_delay_s",
    "effect_kind",
    "effect_lease",
    "effect_payload",
    "fiat_from_json",
    "fiat_to_json",
    "find_by_id_tag",
    "find_holder",
    "hash_secret",
    "held_connectors",
    "insert_sessions",
    "ledger_totals",
    "load_session",
    "new_session_row",
    "reserved_connectors",
    "row_to_session",
    "schedule_from_json",
    "schedule_to_json",
    "session_to_row",
    "with_transaction",
]

RESERVATION_EXPIRY = "reservation_expiry"  # the outbox kind of a reservation's expiry timer

_SESSION_FIELDS = {f.name for f in fields(Session)} - {
    "tariff",
    "applied",
    "state",
    "schedule",
    "interval_wh",
    "fiat",
}
_LEDGER_INTERVAL = insert(ledger_intervals)
_LEDGER_RATE = insert(ledger_rates)


def _rate_to_json(rate: FiatRate) -> dict[str, Any]:
    return {
        "currency": rate.currency,
        "value": str(rate.value),
        "source": rate.source,
        "at": rate.at.isoformat(),
    }


def _rate_from_json(data: Any) -> FiatRate:
    return FiatRate(
        str(data["currency"]),
        Decimal(data["value"]),
        str(data["source"]),
        datetime.fromisoformat(data["at"]),
    )


def fiat_to_json(fiat: FiatBilling) -> dict[str, Any]:
    """A session's fiat terms and rates as JSON (amounts and rates as exact decimal strings)."""
    terms = fiat.terms
    return {
        "currency": terms.currency,
        "prices": {key: str(amount) for key, amount in terms.prices},
        "convert": terms.convert.value,
        "headroom_percent": terms.headroom_percent,
        "payment_rate": _rate_to_json(fiat.payment_rate),
        "billing_rate": None if fiat.billing_rate is None else _rate_to_json(fiat.billing_rate),
        "fallback": fiat.fallback,
    }


def fiat_from_json(data: Any) -> FiatBilling:
    """The record :func:`fiat_to_json` wrote."""
    terms = FiatTerms(
        currency=str(data["currency"]),
        prices=tuple((key, Decimal(amount)) for key, amount in sorted(data["prices"].items())),
        convert=Conversion(data["convert"]),
        headroom_percent=int(data["headroom_percent"]),
    )
    billing = data.get("billing_rate")
    return FiatBilling(
        terms=terms,
        payment_rate=_rate_from_json(data["payment_rate"]),
        billing_rate=None if billing is None else _rate_from_json(billing),
        fallback=bool(data.get("fallback", False)),
    )


def schedule_to_json(schedule: PriceSchedule) -> dict[str, Any]:
    """A price schedule as JSON (times ISO 8601 UTC, prices integer msat/kWh)."""
    return {
        "source": schedule.source,
        "fetched_at": schedule.fetched_at.isoformat(),
        "rate_source": schedule.rate_source,
        "intervals": [
            [i.start.isoformat(), i.end.isoformat(), i.energy_msat_per_kwh]
            for i in schedule.intervals
        ],
    }


def schedule_from_json(data: Any) -> PriceSchedule:
    """The schedule :func:`schedule_to_json` wrote."""
    return PriceSchedule(
        intervals=tuple(
            PriceInterval(datetime.fromisoformat(start), datetime.fromisoformat(end), int(price))
            for start, end, price in data["intervals"]
        ),
        source=str(data["source"]),
        fetched_at=datetime.fromisoformat(data["fetched_at"]),
        rate_source=str(data.get("rate_source", "")),
    )


class SessionNotFound(LedgerError):
    """No session with that id (or idTag)."""


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a session secret or k1; only hashes are stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


def session_to_row(session: Session) -> dict[str, Any]:
    """The ``sessions`` columns for a session (not including the bookkeeping columns)."""
    row = {name: getattr(session, name) for name in _SESSION_FIELDS}
    row["state"] = session.state.value
    row["tariff"] = asdict(session.tariff)
    row["applied"] = sorted(session.applied)
    row["price_schedule"] = None if session.schedule is None else schedule_to_json(session.schedule)
    row["interval_wh"] = list(session.interval_wh)
    row["fiat"] = None if session.fiat is None else fiat_to_json(session.fiat)
    return row


def new_session_row(
    session: Session, secret: str, initiator: str, initiator_pubkey: str | None, now: datetime
) -> dict[str, Any]:
    """The whole ``sessions`` row of a new session; only the secret's hash is kept."""
    return {
        **session_to_row(session),
        "version": 0,
        "secret_hash": hash_secret(secret),
        "initiator": initiator,
        "initiator_pubkey": initiator_pubkey,
        "created_at": now,
        "updated_at": now,
    }


def row_to_session(row: Any) -> Session:
    """Rebuild a :class:`Session` from a ``sessions`` row."""
    data = row._mapping
    return Session(
        **{name: data[name] for name in _SESSION_FIELDS},
        state=State(data["state"]),
        tariff=Tariff(**data["tariff"]),
        applied=frozenset(data["applied"]),
        schedule=None
        if data["price_schedule"] is None
        else schedule_from_json(data["price_schedule"]),
        interval_wh=tuple(int(wh) for wh in data["interval_wh"] or ()),
        fiat=None if data["fiat"] is None else fiat_from_json(data["fiat"]),
    )


def effect_kind(effect: Effect) -> str:
    """The outbox ``kind`` of an effect."""
    return {
        RemoteStart: "remote_start",
        RemoteStop: "remote_stop",
        ArmStartTimeout: "start_timeout",
        ReserveNow: "reserve_now",
        CancelReservation: "cancel_reservation",
        ArmReservationExpiry: RESERVATION_EXPIRY,
        Notify: "notify",
    }[type(effect)]


def effect_payload(effect: Effect) -> dict[str, Any]:
    """The outbox payload (JSON) of an effect: its fields, times as ISO 8601 strings."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in asdict(effect).items()
    }


def effect_charger(effect: Effect) -> str | None:
    """The charger an effect must reach over its OCPP connection (None: it runs anywhere)."""
    if isinstance(effect, RemoteStart | RemoteStop | ReserveNow | CancelReservation):
        return effect.charger_id
    return None


def effect_lease(effect: Effect, charger_id: str) -> str | None:
    """The lease whose holder runs an effect of a session at ``charger_id`` (None: anyone).

    An OCPP command runs where the charger is connected (``charger:<id>``); a DM to the
    session's payer where the charger's agent runs (``agent:<id>``).
    """
    target = effect_charger(effect)
    if target is not None:
        return charger_lease(target)
    if isinstance(effect, Notify):
        return agent_lease(charger_id)
    return None


def effect_delay_s(effect: Effect, now: datetime) -> float:
    """How long after ``now`` an effect becomes due (a timer's wait; 0 for the rest)."""
    if isinstance(effect, ArmStartTimeout):
        return effect.seconds
    if isinstance(effect, ArmReservationExpiry):
        return max(0.0, (effect.until - now).total_seconds())
    return 0


# The hot statements, built once (SQLAlchemy then compiles each once per dialect and reuses it).
_BY_ID = select(sessions).where(sessions.c.id == bindparam("session_id"))
_BY_ID_FOR_UPDATE = _BY_ID.with_for_update()
_BY_ID_TAG = select(sessions).where(sessions.c.id_tag == bindparam("id_tag"))
_SECRET_HASH = select(sessions.c.secret_hash).where(sessions.c.id == bindparam("session_id"))
_UPDATE_IF_VERSION = update(sessions).where(
    sessions.c.id == bindparam("session_id"), sessions.c.version == bindparam("old_version")
)
_LEDGER_ENTRY = insert(ledger_entries)


def insert_sessions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store new sessions (rows from :func:`new_session_row`) in one statement."""
    conn.execute(insert(sessions), rows)


def load_session(conn: Connection, session_id: str, *, lock: bool = False) -> Session:
    """Load one session inside the caller's transaction.

    Args:
        conn: the caller's transaction.
        session_id: the session.
        lock: lock its row for the rest of the transaction (``FOR UPDATE`` on PostgreSQL;
            SQLite has one writer).

    Raises:
        SessionNotFound: no such session.
    """
    query = _BY_ID_FOR_UPDATE if lock and conn.dialect.name == "postgresql" else _BY_ID
    row = conn.execute(query, {"session_id": session_id}).first()
    if row is None:
        raise SessionNotFound(f"no session {session_id}")
    return row_to_session(row)


def find_by_id_tag(conn: Connection, id_tag: str) -> Session | None:
    """The session that owns an idTag, if any, inside the caller's transaction."""
    row = conn.execute(_BY_ID_TAG, {"id_tag": id_tag}).first()
    return None if row is None else row_to_session(row)


def find_holder(
    conn: Connection,
    charger_id: str,
    connector_id: int,
    states: Collection[State],
    *,
    initiator_pubkey: str | None = None,
    exclude: str | None = None,
) -> str | None:
    """The id of a session in one of ``states`` on the connector, if any (see :meth:`holder`)."""
    query = select(sessions.c.id).where(
        sessions.c.charger_id == charger_id,
        sessions.c.connector_id == connector_id,
        sessions.c.state.in_([s.value for s in states]),
    )
    if initiator_pubkey is not None:
        query = query.where(sessions.c.initiator_pubkey == initiator_pubkey)
    if exclude is not None:
        query = query.where(sessions.c.id != exclude)
    found = conn.execute(query.limit(1)).scalar()
    return None if found is None else str(found)


def held_connectors(conn: Connection, states: Collection[State]) -> set[tuple[str, int]]:
    """Every (charger, connector) with a session in one of ``states``."""
    rows = conn.execute(
        select(sessions.c.charger_id, sessions.c.connector_id).where(
            sessions.c.state.in_([s.value for s in states])
        )
    )
    return {(row.charger_id, row.connector_id) for row in rows}


def reserved_connectors(
    conn: Connection, charger_id: str | None = None, *, exclude: str | None = None
) -> dict[tuple[str, int], datetime]:
    """Every (charger, connector) held by a ``RESERVED`` session, with its end time."""
    query = select(sessions.c.charger_id, sessions.c.connector_id, sessions.c.reserved_until).where(
        sessions.c.state == State.RESERVED.value, sessions.c.reserved_until.is_not(None)
    )
    if charger_id is not None:
        query = query.where(sessions.c.charger_id == charger_id)
    if exclude is not None:
        query = query.where(sessions.c.id != exclude)
    return {(row.charger_id, row.connector_id): row.reserved_until for row in conn.execute(query)}


def with_transaction(
    conn: Connection, charger_id: str, connector_id: int | None, states: Collection[State]
) -> list[Session]:
    """The charger's sessions in one of ``states`` that hold an OCPP transaction."""
    query = select(sessions).where(
        sessions.c.charger_id == charger_id,
        sessions.c.state.in_([s.value for s in states]),
        sessions.c.transaction_id.is_not(None),
    )
    if connector_id is not None:
        query = query.where(sessions.c.connector_id == connector_id)
    return [row_to_session(row) for row in conn.execute(query)]


def apply_event(conn: Connection, session_id: str, event: Event, now: datetime) -> Transition:
    """Apply one event to a stored session inside the caller's transaction.

    Locks the row, runs the pure table, writes the new row guarded by its version, journals
    the money that moved and queues the effects (see the module docstring). The caller passes
    the result to :meth:`SessionStore.committed` after its commit.

    Raises:
        SessionNotFound: no such session.
        IllegalTransition: the event is not allowed now; nothing was written.
        LedgerError: the event would break the ledger; nothing was written.
        StorageError: the row changed under this transaction (retry).
    """
    query = _BY_ID_FOR_UPDATE if conn.dialect.name == "postgresql" else _BY_ID
    row = conn.execute(query, {"session_id": session_id}).first()
    if row is None:
        raise SessionNotFound(f"no session {session_id}")
    old = row_to_session(row)
    version = row._mapping["version"]
    transition = apply(old, event)
    if not transition.changed:
        return transition
    new = transition.session
    result = conn.execute(
        _UPDATE_IF_VERSION,  # the SET clause: the columns given here
        {
            **session_to_row(new),
            "version": version + 1,
            "updated_at": now,
            "session_id": session_id,
            "old_version": version,
        },
    )
    if result.rowcount != 1:
        raise StorageError(f"session {session_id} changed concurrently; retry")
    _journal(conn, old, new, event, now)
    if old.state is State.RESERVED and new.state is not State.RESERVED:
        # The reservation ended before its time (started, cancelled, refused): its expiry
        # timer runs now, finds a stale timer and is done, instead of waiting for the end.
        run_session_now(conn, session_id, [RESERVATION_EXPIRY], now)
    for index, effect in enumerate(transition.effects):
        queue_effect(
            conn,
            key=f"{session_id}:{version + 1}:{index}",
            kind=effect_kind(effect),
            payload=effect_payload(effect),
            session_id=session_id,
            now=now,
            delay_s=effect_delay_s(effect, now),
            charger_id=effect_charger(effect),
            lease=effect_lease(effect, new.charger_id),
        )
    answered = old.state is not new.state or isinstance(event, ReservationAccepted)
    if answered and partner_of(new.payer) is not None:
        # A roaming partner's command waiting for this session ends with this transition.
        end_session_commands(conn, session_id, old.state, new.state, event, now)
    return transition


class SessionStore:
    """Sessions, their payments and their ledger, on the database.

    Each statement is written once, as a synchronous function of a ``Connection`` (the
    module-level functions), which a service runs inside one :meth:`Database.write` or
    :meth:`Database.read` with the rest of its transaction. The methods here run the same
    functions, each in a transaction of its own.

    Args:
        db: the database.
        clock: the time stamped on rows when the caller gives none.
    """

    def __init__(self, db: Database, clock: Clock = SYSTEM_CLOCK) -> None:
        self.db = db
        self.clock = clock
        # Called after a commit that changed a session (e.g. wake the effect runner, push the
        # change to live pages). Listeners must not raise.
        self.listeners: list[Callable[[Transition], None]] = []

    def on_committed(self, listener: Callable[[Transition], None]) -> None:
        """Call ``listener`` with every transition that changed a session, after its commit.

        Listeners run in the order they registered and must not raise.
        """
        self.listeners.append(listener)

    def committed(self, transitions: list[Transition]) -> None:
        """Tell the listeners about transitions that were just committed."""
        for transition in transitions:
            if transition.changed:
                for listener in self.listeners:
                    listener(transition)

    async def create(
        self,
        session: Session,
        *,
        secret: str,
        initiator: str,
        initiator_pubkey: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Store a new session (awaiting payment) in its own transaction."""
        row = new_session_row(session, secret, initiator, initiator_pubkey, now or self.clock.now())
        await self.db.write(lambda conn: insert_sessions(conn, [row]))

    async def get(self, session_id: str) -> Session:
        """Load one session (:func:`load_session`) in a read of its own.

        Raises:
            SessionNotFound: no such session.
        """
        return await self.db.read(partial(load_session, session_id=session_id))

    async def secret_hash(self, session_id: str) -> str | None:
        """The stored hash of a session's secret; None for an unknown session."""
        found = await self.db.read(
            lambda conn: conn.scalar(_SECRET_HASH, {"session_id": session_id})
        )
        return None if found is None else str(found)

    async def holder(
        self,
        charger_id: str,
        connector_id: int,
        states: Collection[State],
        *,
        initiator_pubkey: str | None = None,
        exclude: str | None = None,
    ) -> str | None:
        """The id of a session in one of ``states`` on the connector, if any (:func:`find_holder`).

        Args:
            charger_id: the charger.
            connector_id: the connector.
            states: the states that count (e.g. the ones that hold a connector).
            initiator_pubkey: only a session started by this nostr key.
            exclude: a session that does not count.
        """
        work = partial(
            find_holder,
            charger_id=charger_id,
            connector_id=connector_id,
            states=states,
            initiator_pubkey=initiator_pubkey,
            exclude=exclude,
        )
        return await self.db.read(work)

    async def apply(
        self, session_id: str, event: Event, *, now: datetime | None = None
    ) -> Transition:
        """Apply one event to a stored session in one transaction (:func:`apply_event`).

        Raises:
            SessionNotFound: no such session.
            IllegalTransition: the event is not allowed now; nothing was written.
            LedgerError: the event would break the ledger; nothing was written.
        """
        at = now or self.clock.now()
        transition = await self.db.write(lambda conn: apply_event(conn, session_id, event, at))
        self.committed([transition])
        return transition


def _journal(conn: Connection, old: Session, new: Session, event: Event, now: datetime) -> None:
    """Write the money that moved in this transition to ``ledger_entries``."""
    entries: list[tuple[str, str, int]] = []
    if new.paid_msat != old.paid_msat:
        entries.append(("payment", f"{new.id}:{event.key}", new.paid_msat - old.paid_msat))
    if new.refunded_msat != old.refunded_msat:
        entries.append(("refund", f"{new.id}:{event.key}", new.refunded_msat - old.refunded_msat))
    if new.refund_fee_msat != old.refund_fee_msat:
        delta = new.refund_fee_msat - old.refund_fee_msat
        entries.append(("refund_fee", f"{new.id}:{event.key}:fee", delta))
    if new.state in (State.STOPPED, State.CLOSED) and old.state in (
        State.CHARGING,
        State.STOPPING,
    ):
        entries.append(("consumption", f"{new.id}:consumption", new.consumed_msat))
        _journal_intervals(conn, new, now)
        _journal_rate(conn, new, now)
        if new.postpaid:  # the card's bill: given away, or owed by its account or partner
            kind = "free" if new.payer == FREE_PAYER else "receivable"
            entries.append((kind, f"{new.id}:{kind}", new.postpaid_msat))
            partner = partner_of(new.payer)
            if partner is not None:  # a roaming partner's bill: to be invoiced to it
                open_receivable(conn, new.id, partner, new.postpaid_msat, now)
                queue_partner_cdr(conn, new.id, partner, now)  # ... and told to it (its CDR)
    elif (
        new.consumed_msat
        and new.state in (State.START_FAILED, State.CLOSED)
        and old.state in (State.RESERVED, State.PAID, State.STARTING)
    ):
        # A reservation nobody charged on ended: the fee share kept is its consumption (once:
        # the natural key is the same as a charged session's).
        entries.append(("consumption", f"{new.id}:consumption", new.consumed_msat))
    else:
        entries.extend(_reservation_owed(conn, old, new, now))
    for kind, key, amount in entries:
        conn.execute(
            _LEDGER_ENTRY,
            {
                "session_id": new.id,
                "kind": kind,
                "natural_key": key,
                "amount_msat": amount,
                "created_at": now,
            },
        )


def _reservation_owed(
    conn: Connection, old: Session, new: Session, now: datetime
) -> list[tuple[str, str, int]]:
    """A post-paid reservation nobody charged on ended: the kept fee share is owed (once).

    Its partner's receivable is opened with it; no CDR is sent (a CDR describes a charge,
    see docs/ocpi-settlement.md).
    """
    if not (
        new.postpaid_msat
        and new.reserved
        and new.state is State.CLOSED
        and old.state in (State.RESERVED, State.PAID, State.STARTING)
    ):
        return []
    kind = "free" if new.payer == FREE_PAYER else "receivable"
    partner = partner_of(new.payer)
    if partner is not None:
        open_receivable(conn, new.id, partner, new.postpaid_msat, now)
    return [(kind, f"{new.id}:{kind}", new.postpaid_msat)]


def _journal_intervals(conn: Connection, session: Session, now: datetime) -> None:
    """Journal the final per-interval bill of a session billed by a schedule (once)."""
    schedule = session.schedule
    if schedule is None:
        return
    rows = [
        {
            "session_id": session.id,
            "natural_key": f"{session.id}:interval:{bill.start.isoformat()}",
            "interval_start": bill.start,
            "interval_end": bill.end,
            "energy_wh": bill.energy_wh,
            "energy_msat_per_kwh": bill.energy_msat_per_kwh,
            "cost_msat": bill.cost_msat,
            "source": schedule.source[:64],
            "fetched_at": schedule.fetched_at,
            "rate_source": schedule.rate_source[:64],
            "created_at": now,
        }
        for bill in interval_bills(schedule, session.interval_wh)
    ]
    if rows:
        conn.execute(_LEDGER_INTERVAL, rows)


def _journal_rate(conn: Connection, session: Session, now: datetime) -> None:
    """Journal the exchange rate of a final bill with fiat components (once).

    With the fiat terms and the msat prices they gave, and the session's metered energy,
    time and idle time, the bill can be recomputed from this row alone.
    """
    fiat = session.fiat
    if fiat is None:
        return
    rate = fiat.billed_rate
    basis = fiat.terms.convert.value + ("_fallback" if fiat.fallback else "")
    conn.execute(
        _LEDGER_RATE,
        {
            "session_id": session.id,
            "natural_key": f"{session.id}:rate",
            "basis": basis,
            "currency": rate.currency,
            "rate": str(rate.value),
            "rate_source": rate.source[:120],
            "rate_at": rate.at,
            "terms": fiat_to_json(fiat),
            "prices_msat": fiat.terms.to_msat(rate),
            "energy_wh": session.energy_wh,
            "elapsed_s": session.elapsed_s,
            "idle_s": session.idle_seconds,
            "created_at": now,
        },
    )


def ledger_totals(conn: Connection, session_id: str) -> dict[str, int]:
    """Sum of journal entries by kind for one session (for audits and tests)."""
    rows = conn.execute(
        select(ledger_entries.c.kind, func.sum(ledger_entries.c.amount_msat))
        .where(ledger_entries.c.session_id == session_id)
        .group_by(ledger_entries.c.kind)
    )
    return {kind: int(total) for kind, total in rows}
