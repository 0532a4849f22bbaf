"""Orphaned transactions: a charger lost the session's transaction; Strom notices and ends it.

Theory of operation
-------------------
A charger that loses power may come back without the transaction it was running: firmware
that keeps no transactions across a power loss exists. It never sends a StopTransaction for
it, so the session would stay ``charging`` or ``stopping`` for ever — the driver's remaining
budget locked, RemoteStop rejected and retried, the connector refused to every new payer.

What the charger reports decides, read with OCPP 1.6's StatusNotification semantics:

* ``Available`` (free for a new user), ``Preparing`` ("no ongoing transaction (yet)": a charger
  that rebooted with the cable still in reports this) and ``Finishing`` ("a transaction has
  stopped") say the connector has **no** transaction (:data:`NO_TRANSACTION`). ``Charging``,
  ``SuspendedEV`` and ``SuspendedEVSE`` say it has one. ``Unavailable``, ``Faulted`` and
  ``Reserved`` say nothing about it.
* While a session holds a transaction open, Strom *suspects* it when the charger reports a
  no-transaction status on the session's connector, when the charger boots, or when it
  rejects RemoteStopTransaction for it (OCPP 1.6: Rejected means it has no such ongoing
  transaction). The suspicion is an outbox timer (kind ``orphan_check``), written in the same
  database transaction as the status that raised it: it survives a restart and a crash.
* The timer fires after the grace period: ``sessions.orphan_grace_s``, and at least two meter
  intervals, so that a charger still running the transaction has sent meter values meanwhile.
  Chargers often send a queued StopTransaction right after booting; a StopTransaction within
  the grace ends the session as usual and the timer then finds nothing to do. Otherwise
  :func:`verdict` looks at what the charger reported during the grace:

  - meter values for the transaction arrived: the charger still reports it. While the
    connector shows no transaction, look again after another grace period; else leave it.
  - no meter values, and the connector's latest status has no transaction: **lost**.
  - no meter values after a rejected RemoteStop, whatever the status: **lost** (it refuses
    to stop the transaction and reports nothing of it).
  - otherwise (a boot or status suspicion, and the connector shows a transaction again): leave
    it; the next suspicion arms a new timer.

* Lost: :class:`strom_core.session.TransactionLost` ends the session in one database transaction,
  billed up to the last reading the charger reported (never more), stop reason
  ``charger_lost``; its remainder is refundable at once (withdraw link, the zapper's DM). The
  connector is free for the next driver. An ``audit_log`` row (actor ``charger:<id>``) tells
  the operator, naming the transaction as the charger does (``transaction``: an OCPP 1.6 id,
  or the transactionId an OCPP 2.0.1 charger chose; ``transaction_id``: Strom's own number).
  A StopTransaction that still comes later is recorded and never billed again (see
  :mod:`strom_core.session`).

A charger that rejects RemoteStop while it keeps reporting meter values for the transaction
is a different case (still charging, or confused): Strom keeps asking, within the outbox's
retry limit, and the overrun past the budget is the operator's.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime
from functools import partial
from typing import Any

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.crashpoints import crashpoint
from strom_core.errors import IllegalTransition
from strom_core.ports import ChargerBooted, ConnectorStatusChanged
from strom_core.ports.prices import RateSource
from strom_core.session import Session, State, Transition
from strom_core.session_events import LOST_KEY, TransactionLost
from strom_services.effects import Handler
from strom_storage import audit
from strom_storage.chargers import ChargerStore, set_connector_status
from strom_storage.db import Connection
from strom_storage.ocpp import reference_of
from strom_storage.outbox import OutboxRow, pending_with_prefix, queue_effect, run_session_now
from strom_storage.sessions import SessionStore, apply_event, load_session, with_transaction

__all__ = [
    "CHECK_KIND",
    "NO_TRANSACTION",
    "OrphanWatch",
    "Trigger",
    "Verdict",
    "record_stop_discrepancy",
    "verdict",
]

log = logging.getLogger(__name__)

CHECK_KIND = "orphan_check"

# OCPP 1.6 ChargePointStatus values that say the connector has no ongoing transaction.
NO_TRANSACTION = frozenset({"Available", "Preparing", "Finishing"})

_OPEN = (State.CHARGING, State.STOPPING)


class Trigger(enum.StrEnum):
    """What raised the suspicion that a charger lost a transaction."""

    STATUS = "status"  # a no-transaction status on the session's connector
    BOOT = "boot"  # the charger booted
    STOP_REJECTED = "stop_rejected"  # RemoteStopTransaction rejected


class Verdict(enum.Enum):
    """What the orphan check decides when its grace period is over."""

    LOST = "lost"  # end the session, billed up to the last reading
    WATCH_AGAIN = "watch_again"  # readings still come: look again after another grace period
    ALIVE = "alive"  # the charger reports the transaction: leave it


def verdict(trigger: Trigger, status: str | None, metered_during_grace: bool) -> Verdict:
    """Decide from what the charger reported during the grace period (see module docstring).

    Args:
        trigger: what raised the suspicion.
        status: the connector's latest reported status (None: never reported).
        metered_during_grace: whether meter values for the transaction arrived meanwhile.
    """
    idle = status in NO_TRANSACTION
    if metered_during_grace:
        return Verdict.WATCH_AGAIN if idle else Verdict.ALIVE
    if idle or trigger is Trigger.STOP_REJECTED:
        return Verdict.LOST
    return Verdict.ALIVE


def _snapshot(session: Session) -> dict[str, Any]:
    last = session.last_reading_at
    return {"register_wh": session.register_wh, "last_reading_at": last and last.isoformat()}


def _key_prefix(session_id: str) -> str:
    return f"{CHECK_KIND}:{session_id}:"


class OrphanWatch:
    """Arms orphan checks from what chargers report, and ends sessions whose charger lost them.

    Args:
        store: the session store.
        chargers: connector state (the latest status each connector reported).
        grace_s: ``sessions.orphan_grace_s``.
        clock: Strom's clock (aware UTC).
        rates: the BTC rates the final bill of a tariff converted at billing uses
            (:mod:`strom_core.fiat`); None: it falls back to the payment's rate.
    """

    def __init__(
        self,
        store: SessionStore,
        chargers: ChargerStore,
        *,
        grace_s: int,
        clock: Clock = SYSTEM_CLOCK,
        rates: RateSource | None = None,
    ) -> None:
        self.rates = rates
        self.store = store
        self.db = store.db
        self.chargers = chargers
        self.grace_s = grace_s
        self.clock = clock

    def handlers(self) -> dict[str, Handler]:
        """The outbox handler of the orphan check."""
        return {CHECK_KIND: self.check}

    # --- suspicions ---------------------------------------------------------------------

    async def connector_status(self, event: ConnectorStatusChanged) -> None:
        """Record a connector's status; a no-transaction status suspects its open sessions.

        Both in one database transaction, so a recorded status never lacks its timer.
        """
        now = self.clock.now()

        def record(conn: Connection) -> int:
            set_connector_status(
                conn,
                event.charger_id,
                event.connector_id,
                event.status,
                event.error_code,
                event.at,
            )
            if event.status not in NO_TRANSACTION:
                return 0
            open_sessions = with_transaction(conn, event.charger_id, event.connector_id, _OPEN)
            return sum(
                self._arm(conn, session, Trigger.STATUS, event.status, now)
                for session in open_sessions
            )

        if await self.db.write(record):
            crashpoint("orphan.armed")

    async def booted(self, event: ChargerBooted) -> None:
        """A charger booted: suspect every transaction Strom holds open on it."""
        now = self.clock.now()

        def suspect(conn: Connection) -> int:
            return sum(
                self._arm(conn, session, Trigger.BOOT, "", now)
                for session in with_transaction(conn, event.charger_id, None, _OPEN)
            )

        if await self.db.write(suspect):
            crashpoint("orphan.armed")

    async def stop_rejected(self, session_id: str) -> None:
        """The charger rejected RemoteStopTransaction for the session's transaction."""
        now = self.clock.now()

        def suspect(conn: Connection) -> int:
            session = load_session(conn, session_id)
            if session.state not in _OPEN or session.transaction_id is None:
                return 0
            return self._arm(conn, session, Trigger.STOP_REJECTED, "", now)

        if await self.db.write(suspect):
            crashpoint("orphan.armed")

    def _arm(
        self, conn: Connection, session: Session, trigger: Trigger, status: str, now: datetime
    ) -> int:
        """Queue an orphan check unless one is pending for the session; returns 1 if queued."""
        if pending_with_prefix(conn, CHECK_KIND, _key_prefix(session.id)):
            return 0
        self._queue(conn, session, trigger, status, now)
        return 1

    def _queue(
        self, conn: Connection, session: Session, trigger: Trigger, status: str, now: datetime
    ) -> None:
        # At least two meter intervals: a charger still charging has reported readings.
        delay = max(self.grace_s, 2 * session.meter_interval_s)
        queue_effect(
            conn,
            key=f"{_key_prefix(session.id)}{session.transaction_id}:{now.isoformat()}",
            kind=CHECK_KIND,
            # Not bound to the session's row order: a RemoteStop retried for ever (the very
            # case this ends) must not hold the check back.
            session_id=None,
            payload={
                "session_id": session.id,
                "transaction_id": session.transaction_id,
                "trigger": trigger.value,
                "status": status,
                **_snapshot(session),
            },
            now=now,
            delay_s=delay,
        )
        assert session.transaction_id is not None
        log.info(
            "charger %s connector %s: %s%s while session %s holds transaction %s open; "
            "ended as lost unless it reports the transaction (StopTransaction, meter values "
            "or a charging status) within %d s",
            session.charger_id,
            session.connector_id,
            trigger.value,
            f" {status}" if status else "",
            session.id,
            reference_of(conn, session.charger_id, session.transaction_id),
            delay,
        )

    # --- the check ----------------------------------------------------------------------

    async def check(self, row: OutboxRow) -> None:
        """The orphan check's outbox handler: decide, then end, re-arm or leave the session."""
        payload = row.payload
        session_id = str(payload["session_id"])
        session = await self.store.get(session_id)
        if session.state not in _OPEN or session.transaction_id != payload["transaction_id"]:
            return  # it ended meanwhile (a StopTransaction came)
        trigger = Trigger(payload["trigger"])
        status = await self.chargers.status(session.charger_id, session.connector_id)
        metered = _snapshot(session) != {
            "register_wh": payload["register_wh"],
            "last_reading_at": payload["last_reading_at"],
        }
        decided = verdict(trigger, status, metered)
        if decided is Verdict.ALIVE:
            number = session.transaction_id
            assert number is not None
            reference = await self.db.read(
                partial(reference_of, charger_id=session.charger_id, number=number)
            )
            log.info(
                "session %s: charger %s still reports transaction %s (status %s%s)",
                session_id,
                session.charger_id,
                reference,
                status,
                ", meter values" if metered else "",
            )
            return
        if decided is Verdict.WATCH_AGAIN:
            # This row is still pending: no dedupe.
            again = partial(
                self._queue,
                session=session,
                trigger=trigger,
                status=status or "",
                now=self.clock.now(),
            )
            await self.db.write(again)
            return
        crashpoint("orphan.before_end")
        await self._end(session, trigger, status)

    async def _end(self, session: Session, trigger: Trigger, status: str | None) -> None:
        transaction_id = session.transaction_id
        assert transaction_id is not None
        now = self.clock.now()
        rates = () if self.rates is None else self.rates.fresh_rates()

        def end(conn: Connection) -> tuple[Transition, str]:
            lost = TransactionLost(transaction_id, rates=rates)
            transition = apply_event(conn, session.id, lost, now)
            reference = reference_of(conn, session.charger_id, transaction_id)
            ended = transition.session
            # A RemoteStop still being retried has nothing left to do: let it finish now.
            run_session_now(conn, session.id, ["remote_stop"], now)
            _audit(
                conn,
                session.charger_id,
                "transaction_lost",
                session.id,
                {
                    "transaction": reference,
                    "transaction_id": transaction_id,
                    "connector_id": session.connector_id,
                    "trigger": trigger.value,
                    "status": status,
                    "billed_wh": ended.energy_wh,
                    "consumed_msat": ended.consumed_msat,
                    "refundable_msat": ended.refundable_msat,
                },
                now,
            )
            return transition, reference

        try:
            transition, reference = await self.db.write(end)
        except IllegalTransition as exc:  # it ended meanwhile
            log.info("session %s: %s", session.id, exc)
            return
        ended = transition.session
        self.store.committed([transition])
        log.warning(
            "charger %s connector %s: transaction %s lost (%s, status %s, no StopTransaction "
            "within the grace period): session %s ended, billed %d Wh up to the last reading, "
            "%d msat refundable",
            session.charger_id,
            session.connector_id,
            reference,
            trigger.value,
            status,
            session.id,
            ended.energy_wh,
            ended.refundable_msat,
        )


def record_stop_discrepancy(
    conn: Connection,
    session: Session,
    transaction: str,
    meter_stop_wh: int,
    now: datetime,
) -> None:
    """Tell the operator when a StopTransaction disagrees with the session's bill.

    ``transaction`` is the stopped transaction's reference, as the charger names it.
    Called in the StopTransaction's database transaction with the session after the stop:
    a meterStop below a register the charger reported during the transaction (billed up to
    that register, a charger fault), or a StopTransaction after the session ended as lost
    (recorded; energy beyond the bill is the operator's overrun).
    """
    if LOST_KEY in session.applied:
        late_wh = meter_stop_wh - session.meter_start_wh
        log.warning(
            "charger %s: StopTransaction %s came after session %s was ended as lost: "
            "meterStop %d Wh (%d Wh billed, %+d Wh); the bill stays, overrun now %d msat",
            session.charger_id,
            transaction,
            session.id,
            meter_stop_wh,
            session.energy_wh,
            late_wh - session.energy_wh,
            session.overrun_msat,
        )
        action = "late_stop_after_lost"
    elif meter_stop_wh < session.register_wh:
        log.warning(
            "charger %s: StopTransaction %s meterStop %d Wh is below the register %d Wh it "
            "reported during the transaction (session %s): a charger fault; billed up to %d Wh",
            session.charger_id,
            transaction,
            meter_stop_wh,
            session.register_wh,
            session.id,
            session.register_wh,
        )
        action = "meter_stop_below_register"
    else:
        return
    _audit(
        conn,
        session.charger_id,
        action,
        session.id,
        {
            "transaction": transaction,
            "transaction_id": session.transaction_id,
            "meter_start_wh": session.meter_start_wh,
            "meter_stop_wh": meter_stop_wh,
            "register_wh": session.register_wh,
            "billed_wh": session.energy_wh,
            "overrun_msat": session.overrun_msat,
        },
        now,
    )


def _audit(
    conn: Connection,
    charger_id: str,
    action: str,
    target: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    audit.record_in(
        conn, actor=f"charger:{charger_id}", action=action, target=target, detail=detail, now=now
    )
