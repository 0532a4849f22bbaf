"""The soak's verdict: what must hold once Strom has run through the faults and gone quiet.

Read from Strom's database and the fake node after Strom was stopped normally; each check
returns lines naming what broke (empty: it holds).

* **final** — every session is finished: ``refunded`` or ``closed`` once paid, ``expired``
  if never paid (an unpaid invoice that has not expired yet is the one exception: its session
  waits for the expiry sweep); every driver saw their session finish.
* **locked** — nothing is stuck: no outbox effect pending (one given up must say why), no
  refund left ``claimed``, ``paying`` or ``unknown``, no OCPP transaction left open for a
  session that ended (except one the charger lost), no simulated charger still charging.
* **money** — for every session ``paid = consumed + refunded`` (``check_ledger``: nothing
  refundable or in flight is left once finished) and the ledger journal says the same; every
  invoice a driver paid is a settled payment of that driver's session, for the amount paid,
  and nothing else is settled; no payment is flagged; the driver wallet's receipts are
  exactly the refunds Strom recorded paid, msat for msat, none paid twice, and each one paid
  an invoice that the session's own payer made for that session.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from strom_core.config import StromConfig
from strom_core.errors import InvariantViolation
from strom_core.session import POST_STOP_STATES, Session, check_ledger
from strom_lightning import FakeDriverWallet
from strom_storage.db import Connection, Database
from strom_storage.schema import ocpp_transactions, outbox, payments, refunds, sessions
from strom_storage.sessions import ledger_totals, load_session
from tests.soak.drivers import Ride

FINISHED_PAID = frozenset({"refunded", "closed"})
STUCK_REFUNDS = ("claimed", "paying", "unknown")
# An unpaid invoice expires at its expiry + 5 s, checked by a sweep every 15 s.
EXPIRY_SLACK = timedelta(seconds=30)


async def check(
    records: Records, wallet: FakeDriverWallet, rides: list[Ride]
) -> dict[str, list[str]]:
    """Every invariant of the module docstring, by name, with what broke."""
    received = [(s.payment_hash, int(s.amount_msat)) for s in await wallet.received()]
    return {
        "final": final_problems(records, rides),
        "locked": locked_problems(records),
        "money": money_problems(records, rides, received),
    }


def tally(records: Records) -> dict[str, int]:
    """Figures for the summary: sessions by how they ended, and the money."""
    ended = Counter(
        f"sessions {s.state.value}" + (f" ({s.stop_reason})" if s.stop_reason else "")
        for s in records.sessions.values()
    )
    money = {
        "paid msat": sum(s.paid_msat for s in records.sessions.values()),
        "consumed msat": sum(s.consumed_msat for s in records.sessions.values()),
        "refunded msat": sum(s.refunded_msat for s in records.sessions.values()),
        "overrun msat (operator's)": sum(s.overrun_msat for s in records.sessions.values()),
        "sessions lost by their charger": sum(
            s.stop_reason == "charger_lost" for s in records.sessions.values()
        ),
        "refunds paid": sum(r.state == "paid" for r in records.refunds),
        "effects given up": sum(r.state == "dead" for r in records.outbox),
    }
    return {**dict(sorted(ended.items())), **money}


class Records:
    """What the checks read from Strom's database."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.journal: dict[str, dict[str, int]] = {}
        self.payments: list[Any] = []
        self.refunds: list[Any] = []
        self.outbox: list[Any] = []
        self.transactions: list[Any] = []
        self.now = datetime.now(UTC)


async def read(config: StromConfig) -> Records:
    """Read what the checks need from Strom's database (Strom stopped)."""
    db = Database.from_url(config.storage.url())
    try:
        return await _read(db)
    finally:
        await db.close()


async def _read(db: Database) -> Records:
    return await db.read(_read_in)


def _read_in(conn: Connection) -> Records:
    records = Records()
    for session_id in list(conn.scalars(select(sessions.c.id))):
        records.sessions[session_id] = load_session(conn, session_id)
        records.journal[session_id] = ledger_totals(conn, session_id)
    records.payments = list(conn.execute(select(payments)))
    records.refunds = list(conn.execute(select(refunds)))
    records.outbox = list(conn.execute(select(outbox).where(outbox.c.state != "done")))
    records.transactions = list(conn.execute(select(ocpp_transactions)))
    return records


def final_problems(records: Records, rides: list[Ride]) -> list[str]:
    """Sessions and rides left unfinished."""
    problems = []
    open_invoices = {
        p.session_id
        for p in records.payments
        if p.kind == "initial"
        and p.state == "pending"
        and p.expires_at + EXPIRY_SLACK > records.now
    }
    for session in records.sessions.values():
        state = session.state.value
        if session.paid_msat and state not in FINISHED_PAID:
            problems.append(f"session {session.id} at {session.charger_id}: paid, left {state}")
        elif (
            not session.paid_msat
            and state not in ("expired", *FINISHED_PAID)
            and not (state == "awaiting_payment" and session.id in open_invoices)
        ):
            problems.append(f"session {session.id}: never paid, left {state}")
    for ride in rides:
        if ride.outcome not in FINISHED_PAID:
            problems.append(
                f"driver {ride.driver}'s session {ride.session_id} at {ride.charger_id} "
                f"({ride.behaviour}): {ride.outcome or 'no outcome'}"
            )
    return problems


def locked_problems(records: Records) -> list[str]:
    """Effects, refunds and transactions left holding something."""
    problems = []
    for row in records.outbox:
        if row.state == "pending":
            problems.append(f"outbox {row.kind} #{row.id} (session {row.session_id}) pending")
        elif not row.last_error:
            problems.append(f"outbox {row.kind} #{row.id} given up without a reason")
    for row in records.refunds:
        if row.state in STUCK_REFUNDS:
            problems.append(f"refund {row.id} of session {row.session_id} left {row.state}")
    for row in records.transactions:
        session = records.sessions.get(row.session_id or "")
        if row.stopped_at is not None or session is None:
            continue
        ended = session.state.value in (*FINISHED_PAID, "stopped", "start_failed")
        if ended and session.stop_reason != "charger_lost":
            problems.append(
                f"transaction {row.id} at {row.charger_id} still open, its session "
                f"{session.id} {session.state.value} ({session.stop_reason or 'no stop reason'})"
            )
    return problems


def money_problems(
    records: Records, rides: list[Ride], received: list[tuple[str, int]]
) -> list[str]:
    """The ledger of every session, the drivers' payments, and the wallet's refunds."""
    problems = []
    settled: Counter[str] = Counter()
    for p in records.payments:
        if p.state == "settled":
            settled[p.session_id] += int(p.amount_msat)
        if p.state == "flagged":
            problems.append(f"payment {p.payment_hash} of session {p.session_id} flagged")
    for session in records.sessions.values():
        problems += _ledger_problems(session, settled[session.id], records.journal[session.id])
    problems += _payment_problems(records, rides)
    problems += _refund_problems(records, rides, received)
    return problems


def _ledger_problems(session: Session, settled: int, journal: dict[str, int]) -> list[str]:
    problems = []
    try:
        check_ledger(session)
    except InvariantViolation as exc:
        problems.append(str(exc))
    if session.paid_msat != settled:
        problems.append(f"session {session.id}: paid {session.paid_msat}, settled {settled}")
    expected = {"payment": session.paid_msat, "refund": session.refunded_msat}
    if session.state in POST_STOP_STATES:  # the bill is journaled when the charge stops
        expected["consumption"] = session.consumed_msat
    for kind, amount in expected.items():
        if journal.get(kind, 0) != amount:
            problems.append(
                f"session {session.id}: journal {kind} {journal.get(kind, 0)} != {amount}"
            )
    if session.energy_wh > 0 and session.consumed_msat <= 0 and session.paid_msat:
        problems.append(f"session {session.id}: charged {session.energy_wh} Wh, billed nothing")
    return problems


def _payment_problems(records: Records, rides: list[Ride]) -> list[str]:
    problems = []
    by_hash = {p.payment_hash: p for p in records.payments}
    paid_hashes = {ride.payment_hash for ride in rides if ride.payment_hash}
    for ride in rides:
        if not ride.payment_hash:
            continue
        row = by_hash.get(ride.payment_hash)
        if row is None or row.state != "settled":
            state = "unknown to Strom" if row is None else row.state
            problems.append(f"driver {ride.driver} paid {ride.payment_hash[:12]}: {state}")
        elif (row.session_id, int(row.amount_msat)) != (ride.session_id, ride.paid_msat):
            problems.append(
                f"driver {ride.driver} paid {ride.paid_msat} for session {ride.session_id}; "
                f"Strom settled {row.amount_msat} for session {row.session_id}"
            )
    for p in records.payments:
        if p.state == "settled" and p.payment_hash not in paid_hashes:
            problems.append(f"payment {p.payment_hash[:12]} settled but no driver paid it")
    return problems


def _refund_problems(
    records: Records, rides: list[Ride], received: list[tuple[str, int]]
) -> list[str]:
    problems = []
    paid = [(r.payment_hash, int(r.amount_msat)) for r in records.refunds if r.state == "paid"]
    for payment_hash, count in Counter(h for h, _ in paid).items():
        if count > 1:
            problems.append(f"refund invoice {payment_hash[:12]} recorded paid {count} times")
    for payment_hash, count in Counter(h for h, _ in received).items():
        if count > 1:
            problems.append(f"refund invoice {payment_hash[:12]} received {count} times")
    if Counter(received) != Counter(paid):
        missing = Counter(paid) - Counter(received)
        extra = Counter(received) - Counter(paid)
        problems.append(
            f"wallet receipts != refunds paid: not received {sorted(missing)}, "
            f"received but not recorded {sorted(extra)}"
        )
    refunded = sum(s.refunded_msat for s in records.sessions.values())
    total = sum(amount for _, amount in received)
    if total != refunded:
        problems.append(f"wallet received {total} msat, sessions refunded {refunded} msat")
    invoices_of = {ride.session_id: ride.refund_hashes for ride in rides}
    for row in records.refunds:
        if row.state == "paid" and row.payment_hash not in invoices_of.get(row.session_id, ()):
            problems.append(
                f"refund {row.id} of session {row.session_id} paid invoice "
                f"{row.payment_hash[:12]}, which its payer did not make for it"
            )
    return problems
