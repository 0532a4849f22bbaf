"""The shared outbox: several processes on one PostgreSQL run each effect once, in order.

Theory of operation. A process does not read due rows, it **claims** them: one statement picks
the due rows (the ordering rule of :func:`strom_storage.outbox.due_filter`: a session's later
rows wait while an earlier one is due or being retried), locks them with ``FOR UPDATE SKIP
LOCKED`` — rows another process is claiming at this instant are skipped, not waited for — and
writes ``claimed_by`` (this process) and ``claimed_until`` (the database's ``now()`` plus the
claim time). A claimed row stays ``pending`` while it runs, so it keeps holding back its
session's later rows in every process. Nobody else claims it until its claim expires: a process
that died in the middle of an effect leaves a claim that runs out, and another process takes the
row over and runs it again (every effect is idempotent). With ``living_claimants`` (a
cluster whose processes hold ``process:<id>`` presence leases) a claim holds only while its
claimant is alive: a killed process's rows are taken over within the lease's TTL. The runner
extends the claims of the rows it is running on each pass (:meth:`ClaimingOutboxStore.poll`).

Only the claimant finishes a row: ``done`` and ``failed`` change the row only while
``claimed_by`` is still this process (the fence). A process whose claim ran out and was taken
over finds its result dropped; the new claimant's run counts. A failed row gives up its claim
with its backoff, so any process may retry it.

Rows that must run in one particular process name the lease whose holder runs them (``lease``,
:mod:`strom_storage.leases`): an OCPP command its charger's (``charger:<id>``, the process
holding the connection), a charger agent's DM or zap receipt the agent's (``agent:<id>``, the
process running the agent). With ``only_my_chargers`` a process leaves such a row to the live
holder of that lease; a row whose lease nobody holds (a charger offline everywhere, an agent
moving between processes) is claimed by anyone and handled as the handler decides (an OCPP
command fails as today, an agent's row is retried later).

On SQLite (one process) the same statements work without row locks, on the caller's clock;
the single-process runner keeps using :class:`~strom_storage.outbox.OutboxStore`, which
claims nothing. Not wired into ``strom run`` yet: this is the groundwork of clustering.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Interval, bindparam, func, literal, or_, select, update
from sqlalchemy.engine import Connection

from strom_storage.db import Database
from strom_storage.leases import PROCESS_PREFIX
from strom_storage.outbox import (
    OutboxRow,
    OutboxStore,
    due_filter,
    failure_values,
    next_due,
    to_row,
)
from strom_storage.schema import TS, leases, outbox

__all__ = [
    "CLAIM_S",
    "ClaimingOutboxStore",
    "claim_due",
    "extend_claims",
    "finish_claimed",
    "retry_claimed",
]

log = logging.getLogger(__name__)

CLAIM_S = 120.0  # longer than any effect takes (a charger has 60 s to answer a CALL)


@functools.cache
def _claim_statement(
    dialect: str, *, excluding: bool, only_mine: bool, living_claimants: bool = False
) -> Any:
    postgres = dialect == "postgresql"
    # The database's clock on PostgreSQL (processes' clocks may disagree); SQLite: the caller's.
    clock = func.now(type_=TS) if postgres else bindparam("clock", type_=TS)
    until = clock + bindparam("claim", type_=Interval) if postgres else bindparam("until", TS)
    owner: Any = bindparam("owner")
    free = or_(
        outbox.c.claimed_until.is_(None),
        outbox.c.claimed_until <= clock,
        outbox.c.claimed_by == owner,  # ours, not running now (``exclude``): start it again
    )
    if living_claimants:  # a claim of a process that died (its presence lease ran out) is free
        claimant_alive = (
            select(leases.c.name)
            .where(
                leases.c.name == literal(PROCESS_PREFIX) + outbox.c.claimed_by,
                leases.c.expires_at > clock,
            )
            .exists()
        )
        free = or_(free, ~claimant_alive)
    picked = select(outbox.c.id).where(
        due_filter(bindparam("now", type_=outbox.c.run_after.type)), free
    )
    if excluding:  # rows this process runs right now
        picked = picked.where(outbox.c.id.not_in(bindparam("exclude", expanding=True)))
    if only_mine:
        held_elsewhere = (
            select(leases.c.name)
            .where(
                leases.c.name == outbox.c.lease,
                leases.c.owner != owner,
                leases.c.expires_at > clock,
            )
            .exists()
        )
        picked = picked.where(or_(outbox.c.lease.is_(None), ~held_elsewhere))
    picked = picked.order_by(outbox.c.id).limit(bindparam("limit"))
    if postgres:
        picked = picked.with_for_update(skip_locked=True, of=outbox)
    cte = picked.cte("picked")
    return (
        update(outbox)
        .where(outbox.c.id == cte.c.id)
        .values(claimed_by=owner, claimed_until=until)
        .returning(*outbox.c)
    )


def claim_due(
    conn: Connection,
    owner: str,
    now: datetime,
    *,
    claim_s: float = CLAIM_S,
    limit: int = 100,
    exclude: Collection[int] = (),
    only_my_chargers: bool = False,
    living_claimants: bool = False,
) -> list[OutboxRow]:
    """Claim the due rows no other process holds, oldest first, inside the caller's transaction.

    Args:
        conn: the caller's transaction (commit it before running the rows).
        owner: this process's id.
        now: the time rows are due by (the process clock, as :func:`queue_effect` wrote them).
        claim_s: how long the claim keeps other processes off the rows.
        limit: the most rows claimed.
        exclude: rows this process is running now (already claimed by it).
        only_my_chargers: leave rows whose lease (a charger's, an agent's) another live
            process holds.
        living_claimants: a claim holds only while its claimant's presence lease
            (``process:<id>``) is live: a dead process's rows are taken over within the
            lease's TTL instead of ``claim_s``.

    Returns:
        The claimed rows, by id.

    Raises:
        ValueError: an empty owner or a claim time that is not positive.
    """
    if not owner:
        raise ValueError("a claim needs the owner's process id")
    if not claim_s > 0:
        raise ValueError(f"a claim needs a positive duration, got {claim_s!r}")
    statement = _claim_statement(
        conn.dialect.name,
        excluding=bool(exclude),
        only_mine=only_my_chargers,
        living_claimants=living_claimants,
    )
    params: dict[str, Any] = {"owner": owner, "now": now, "limit": limit}
    if exclude:
        params["exclude"] = list(exclude)
    if conn.dialect.name == "postgresql":
        params["claim"] = timedelta(seconds=claim_s)
    else:
        params["clock"] = now
        params["until"] = now + timedelta(seconds=claim_s)
    rows = conn.execute(statement, params)
    return sorted((to_row(r) for r in rows), key=lambda row: row.id)


def extend_claims(
    conn: Connection, owner: str, ids: Collection[int], claim_s: float, now: datetime
) -> int:
    """Extend this process's claims on ``ids`` (rows it is running); returns how many held.

    ``now`` is the caller's clock, used on SQLite only (PostgreSQL uses its own).
    """
    if not ids:
        return 0
    until: Any = (
        func.now(type_=TS) + literal(timedelta(seconds=claim_s), Interval)
        if conn.dialect.name == "postgresql"
        else literal(now + timedelta(seconds=claim_s), TS)
    )
    result = conn.execute(
        update(outbox)
        .where(
            outbox.c.id.in_(list(ids)),
            outbox.c.state == "pending",
            outbox.c.claimed_by == owner,
        )
        .values(claimed_until=until)
    )
    return int(result.rowcount or 0)


def _claimed(row_id: int, owner: str) -> Any:
    return (outbox.c.id == row_id) & (outbox.c.state == "pending") & (outbox.c.claimed_by == owner)


def finish_claimed(conn: Connection, row_id: int, owner: str, now: datetime) -> bool:
    """Mark a claimed row done, only if ``owner`` still holds its claim (the fence).

    Returns:
        False when another process took the row over (or it finished): nothing was written.
    """
    result = conn.execute(
        update(outbox).where(_claimed(row_id, owner)).values(state="done", done_at=now)
    )
    return result.rowcount == 1


def retry_claimed(
    conn: Connection, row: OutboxRow, owner: str, error: str, now: datetime
) -> bool | None:
    """Reschedule a claimed row with backoff and give up its claim, only if ``owner`` holds it.

    Returns:
        True: rescheduled; False: it became dead; None: the claim was lost, nothing written.
    """
    values = failure_values(row, error, now)
    result = conn.execute(
        update(outbox)
        .where(_claimed(row.id, owner))
        .values(**values, claimed_by=None, claimed_until=None)
    )
    if result.rowcount != 1:
        return None
    return bool(values["state"] != "dead")


class ClaimingOutboxStore(OutboxStore):
    """The outbox for one of several processes: what the effect runner reads, claimed.

    A drop-in for :class:`OutboxStore` in :class:`strom_services.effects.EffectRunner`: its
    reads of due rows claim them, and ``done``/``failed`` are fenced by the claim.

    Args:
        db: the shared database.
        owner: this process's id (unique per process start).
        claim_s: how long a claim keeps other processes off a row; renewed on every pass for
            the rows running, so it only needs to outlast one pass and one effect's stall.
        only_my_chargers: leave rows whose lease another process holds (OCPP commands for
            chargers connected elsewhere, DMs and zap receipts of agents running elsewhere).
        living_claimants: take over the claims of processes whose presence lease ran out.
    """

    def __init__(
        self,
        db: Database,
        owner: str,
        *,
        claim_s: float = CLAIM_S,
        only_my_chargers: bool = False,
        living_claimants: bool = False,
    ) -> None:
        super().__init__(db)
        self.owner = owner
        self.claim_s = claim_s
        self.only_my_chargers = only_my_chargers
        self.living_claimants = living_claimants
        self.lost = 0  # results dropped because another process took the row over

    def _claim(self, conn: Connection, now: datetime, limit: int, exclude: Collection[int]) -> Any:
        extend_claims(conn, self.owner, exclude, self.claim_s, now)
        return claim_due(
            conn,
            self.owner,
            now,
            claim_s=self.claim_s,
            limit=limit,
            exclude=exclude,
            only_my_chargers=self.only_my_chargers,
            living_claimants=self.living_claimants,
        )

    async def due(
        self, now: datetime, limit: int = 100, exclude: frozenset[int] = frozenset()
    ) -> list[OutboxRow]:
        """Claim the due rows (:func:`claim_due`) in a transaction of its own."""
        rows: list[OutboxRow] = await self.db.write(
            lambda conn: self._claim(conn, now, limit, exclude)
        )
        return rows

    async def poll(
        self, now: datetime, limit: int = 100, exclude: frozenset[int] = frozenset()
    ) -> tuple[list[OutboxRow], datetime | None]:
        """Claim the due rows and read when the next row is due, in one transaction.

        The claims of the rows running (``exclude``) are extended in the same transaction.
        """

        def poll(conn: Connection) -> tuple[list[OutboxRow], datetime | None]:
            return self._claim(conn, now, limit, exclude), next_due(conn, after=now)

        return await self.db.write(poll)

    async def done(self, row_id: int, now: datetime) -> None:
        """Mark a row done if this process still holds its claim (else its result is dropped)."""
        if not await self.db.write(lambda conn: finish_claimed(conn, row_id, self.owner, now)):
            self._note_lost(row_id)

    async def failed(self, row: OutboxRow, error: str, now: datetime) -> bool:
        """Reschedule a row this process still holds; returns False when it became dead."""
        outcome = await self.db.write(lambda conn: retry_claimed(conn, row, self.owner, error, now))
        if outcome is None:
            self._note_lost(row.id)
            return True  # not dead: its new claimant decides
        return outcome

    def _note_lost(self, row_id: int) -> None:
        self.lost += 1
        log.warning(
            "outbox row %s: its claim by %s was taken over by another process; "
            "this run's result is dropped",
            row_id,
            self.owner,
        )
