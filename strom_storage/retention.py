"""Retention: the rows that only record history are deleted when nothing needs them any more.

Theory of operation
-------------------
Some tables grow with every DM, meter value and scan of a withdraw link. Each of them has
exactly one rule in :data:`RULES`: the table's primary key and a condition that says which rows
are finished with. Adding a table is one line there (and, usually, an index for its condition).

* ``nostr_events`` — the claims that make each event act once. An event older than its
  freshness window is refused for its age, so a claim is kept exactly as long as a replay could
  still pass that check: per kind, the window its owner declares
  (:attr:`RetentionPolicy.claim_windows_s`); a kind nobody declared keeps the longest of them.
* ``outbox`` — effects that ran (``done``), and, much later, those given up (``dead``, which
  operators investigate). Nothing looks for an old row: each cause enqueues under a state guard.
* ``meter_readings`` — readings of sessions the charger reported stopped (or of transactions
  that belong to no session). The bill is final at the stop and stored on the session; a
  refund moves the session's balance and never reads a reading. Readings of a session that is
  still running are never touched, however old.
* ``refunds`` — withdraw offers (``offered``) whose k1 expired unused; a day later, so a late
  wallet still hears "expired". Claimed, paying, paid, failed and unknown refunds are money
  records and stay forever, as do sessions, payments and ledger entries.
* ``ocpp_unknown_stops`` — StopTransactions Strom could not match, for the operator to look at.
* ``dm_journal`` — the signed DMs the agents keep so that a DM sent again after a crash is the
  very same event; the outbox gives up on a DM within hours, so a week later none is needed.
* ``imported_secrets`` — session secrets imported from an older installation, once their
  refund window has passed.
* ``status_history`` — the availability timeline's changes (a connector's status, a
  charger's connection), after ``status_history_days``; of the changes older than that, each
  connector's (and each charger link's) newest stays: it is the state in force at the cutoff,
  which an availability report of a window starting there needs. A connector that has not
  changed for years thus keeps its one row.
* ``ocpi_log`` — the record of OCPI requests in and out, for the operator, after
  ``ocpi_log_days``.

The sweep (:meth:`Retention.sweep`) deletes in batches of :data:`BATCH` rows, one short write
transaction (one :meth:`Database.write`) each, so it never holds SQLite's single writer for
long: a payment or a meter value waiting for the writer goes between two batches.
:meth:`Retention.run` sweeps every few minutes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Column, Delete, and_, delete, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import RetentionConfig
from strom_core.errors import StorageError
from strom_core.session import POST_STOP_STATES
from strom_storage.agent_journal import JOURNAL_RETENTION
from strom_storage.db import Database
from strom_storage.schema import (
    dm_journal,
    imported_secrets,
    meter_readings,
    nostr_events,
    ocpi_log,
    ocpp_transactions,
    ocpp_unknown_stops,
    outbox,
    refunds,
    sessions,
    status_history,
)

__all__ = ["BATCH", "OFFER_GRACE", "RULES", "Retention", "RetentionPolicy", "Rule"]

log = logging.getLogger(__name__)

BATCH = 500
"""Rows deleted per write transaction."""

OFFER_GRACE = timedelta(days=1)
"""How long an expired withdraw offer is kept, so a wallet coming back late hears "expired"."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of history is kept.

    Attributes:
        claim_windows_s: per nostr event kind, how long after it was claimed a replay could
            still pass its freshness check (declared by the parts that claim events).
        outbox_days: done outbox rows (0: forever).
        outbox_dead_days: dead outbox rows (0: forever).
        meter_readings_days: readings of stopped sessions (0: forever).
        unknown_stops_days: unmatched StopTransactions (0: forever).
        status_history_days: availability changes, but each connector's last one before the
            cutoff (0: forever).
        ocpi_log_days: the log of OCPI requests (0: forever).
    """

    claim_windows_s: Mapping[int, int] = field(default_factory=dict)
    outbox_days: int = 30
    outbox_dead_days: int = 365
    meter_readings_days: int = 90
    unknown_stops_days: int = 90
    status_history_days: int = 400
    ocpi_log_days: int = 30

    @classmethod
    def from_config(
        cls, config: RetentionConfig, claim_windows_s: Mapping[int, int]
    ) -> RetentionPolicy:
        """The policy of ``[retention]`` plus the claim windows of the event kinds."""
        return cls(
            claim_windows_s=dict(claim_windows_s),
            outbox_days=config.outbox_days,
            outbox_dead_days=config.outbox_dead_days,
            meter_readings_days=config.meter_readings_days,
            unknown_stops_days=config.unknown_stops_days,
            status_history_days=config.status_history_days,
            ocpi_log_days=config.ocpi_log_days,
        )


Condition = ColumnElement[bool]


def _days(now: datetime, days: int) -> datetime | None:
    return None if days <= 0 else now - timedelta(days=days)


def _stale_claims(policy: RetentionPolicy, now: datetime) -> Condition | None:
    windows = policy.claim_windows_s
    if not windows:
        return None  # nobody said how long: keep everything
    per_kind = [
        and_(nostr_events.c.kind == kind, nostr_events.c.received_at < now - timedelta(seconds=s))
        for kind, s in sorted(windows.items())
    ]
    longest = now - timedelta(seconds=max(windows.values()))
    others = and_(nostr_events.c.kind.not_in(list(windows)), nostr_events.c.received_at < longest)
    return or_(*per_kind, others)


def _finished_effects(policy: RetentionPolicy, now: datetime) -> Condition | None:
    done, dead = _days(now, policy.outbox_days), _days(now, policy.outbox_dead_days)
    finished = [
        and_(outbox.c.state == state, outbox.c.done_at < before)
        for state, before in (("done", done), ("dead", dead))
        if before is not None
    ]
    return or_(*finished) if finished else None


def _readings_of_stopped_sessions(policy: RetentionPolicy, now: datetime) -> Condition | None:
    before = _days(now, policy.meter_readings_days)
    if before is None:
        return None
    running = (
        select(ocpp_transactions.c.id)
        .join(sessions, sessions.c.id == ocpp_transactions.c.session_id)
        .where(
            ocpp_transactions.c.id == meter_readings.c.transaction_id,
            ocpp_transactions.c.charger_id == meter_readings.c.charger_id,
            sessions.c.state.not_in([state.value for state in POST_STOP_STATES]),
        )
        .exists()
    )
    return and_(meter_readings.c.sampled_at < before, ~running)


def _expired_offers(_policy: RetentionPolicy, now: datetime) -> Condition | None:
    return and_(refunds.c.state == "offered", refunds.c.expires_at < now - OFFER_GRACE)


def _old_unknown_stops(policy: RetentionPolicy, now: datetime) -> Condition | None:
    before = _days(now, policy.unknown_stops_days)
    return None if before is None else ocpp_unknown_stops.c.received_at < before


def _old_journal_entries(_policy: RetentionPolicy, now: datetime) -> Condition | None:
    return dm_journal.c.created_at < now - JOURNAL_RETENTION


def _expired_imported_secrets(_policy: RetentionPolicy, now: datetime) -> Condition | None:
    return imported_secrets.c.expires_at < now


def _superseded_status_changes(policy: RetentionPolicy, now: datetime) -> Condition | None:
    before = _days(now, policy.status_history_days)
    if before is None:
        return None
    # The state in force at the cutoff: each connector's (and link's) last change before it.
    in_force = (
        select(func.max(status_history.c.id))
        .where(status_history.c.at < before)
        .group_by(status_history.c.charger_id, status_history.c.connector_id)
        .correlate(None)
    )
    return and_(status_history.c.at < before, status_history.c.id.not_in(in_force))


def _old_ocpi_requests(policy: RetentionPolicy, now: datetime) -> Condition | None:
    before = _days(now, policy.ocpi_log_days)
    return None if before is None else ocpi_log.c.at < before


@dataclass(frozen=True, slots=True)
class Rule:
    """Which rows of one table are finished with.

    Attributes:
        key: the table's primary key column (batches are chosen by it).
        finished: the condition for ``now`` under a policy; None keeps every row.
    """

    key: Column[object]
    finished: Callable[[RetentionPolicy, datetime], Condition | None]

    @property
    def table(self) -> str:
        """The table's name."""
        return str(self.key.table.name)


RULES: tuple[Rule, ...] = (
    Rule(nostr_events.c.event_id, _stale_claims),
    Rule(outbox.c.id, _finished_effects),
    Rule(meter_readings.c.id, _readings_of_stopped_sessions),
    Rule(refunds.c.id, _expired_offers),
    Rule(ocpp_unknown_stops.c.id, _old_unknown_stops),
    Rule(dm_journal.c.key, _old_journal_entries),
    Rule(imported_secrets.c.session_id, _expired_imported_secrets),
    Rule(status_history.c.id, _superseded_status_changes),
    Rule(ocpi_log.c.id, _old_ocpi_requests),
)
"""One rule per table that grows with traffic (see the module docstring)."""


def _delete(conn: Connection, statement: Delete) -> int:
    """One batch: run the ``DELETE`` and say how many rows went."""
    return int(conn.execute(statement).rowcount or 0)


class Retention:
    """Deletes finished rows by :data:`RULES`.

    Args:
        db: the database.
        policy: how long each kind of history is kept.
        interval_s: time between two sweeps of :meth:`run`.
        clock: the current time.
        rules: the rules (all of :data:`RULES` by default).
    """

    def __init__(
        self,
        db: Database,
        policy: RetentionPolicy,
        *,
        interval_s: float = 300.0,
        clock: Clock = SYSTEM_CLOCK,
        rules: tuple[Rule, ...] = RULES,
    ) -> None:
        self.db = db
        self.policy = policy
        self.interval_s = interval_s
        self.clock = clock
        self.rules = rules
        self.on_sweep: Callable[[dict[str, int]], None] | None = None
        """Told the rows deleted by every sweep of :meth:`run` (for health pages and tests)."""

    async def sweep(self, now: datetime | None = None) -> dict[str, int]:
        """Delete every finished row, in batches; returns the rows deleted per table."""
        now = now or self.clock.now()
        removed: dict[str, int] = {}
        for rule in self.rules:
            condition = rule.finished(self.policy, now)
            if condition is None:
                continue
            total = 0
            while True:
                # correlate(None): the batch is its own query, not tied to the DELETE's table.
                batch = select(rule.key).where(condition).limit(BATCH).correlate(None)
                statement = delete(rule.key.table).where(rule.key.in_(batch.scalar_subquery()))
                deleted = await self.db.write(partial(_delete, statement=statement))
                total += deleted
                if deleted < BATCH:
                    break
                await asyncio.sleep(0)  # let waiting writers in between two batches
            if total:
                removed[rule.table] = total
        return removed

    async def run(self) -> None:
        """Sweep every ``interval_s`` until cancelled; a database error waits for the next."""
        while True:
            try:
                removed = await self.sweep()
            except StorageError as exc:
                log.warning("retention sweep failed, trying again later: %s", exc)
            else:
                if removed:
                    summary = ", ".join(f"{n} from {table}" for table, n in removed.items())
                    log.info("retention: deleted %s", summary)
                if self.on_sweep is not None:
                    self.on_sweep(removed)
            await asyncio.sleep(self.interval_s)
