"""The fake backend's state: one small SQLite file (NO REAL MONEY is ever involved).

Theory of operation. Everything the fake node knows lives in the file, so it survives a
SIGKILL and another process (``strom fake pay``) can pay an invoice by writing to it:

* ``meta``: the node key and the driver wallet's key (created once, kept forever).
* ``invoices``: invoices the fake node issued for Strom. Settling one stamps it with the next
  ``settle_index``; listeners read everything after the last index they saw, so no
  settlement is missed, whichever process wrote it.
* ``driver_invoices``: invoices of the simulated driver wallet (refunds go there).
* ``payments``: payments the fake node made (to driver invoices), one row per payment hash.
* ``driver_script``: what the driver wallet does with the next payment(s) it receives, or with
  a given invoice: ``fail``, ``hang`` or ``unknown`` (in flight until resolved).

Each public method is one transaction (``BEGIN IMMEDIATE``), run on the store's own thread:
a method whose caller is cancelled still completes or rolls back as a whole. The file is in
WAL mode with ``synchronous=FULL``; another process's commit shows up as a change of
``PRAGMA data_version``, which is what the 200 ms poll reads.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from strom_core.errors import BackendUnavailable

__all__ = [
    "Attempt",
    "FakeStore",
    "IncomingOutcome",
    "InvoiceRow",
    "PaymentRow",
    "ScriptAction",
]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invoices (
    payment_hash TEXT PRIMARY KEY,
    preimage TEXT NOT NULL,
    bolt11 TEXT NOT NULL,
    amount_msat INTEGER NOT NULL,
    memo TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    received_msat INTEGER NOT NULL DEFAULT 0,
    settled_at INTEGER,
    settle_index INTEGER UNIQUE
);
CREATE TABLE IF NOT EXISTS driver_invoices (
    payment_hash TEXT PRIMARY KEY,
    preimage TEXT NOT NULL,
    bolt11 TEXT NOT NULL,
    amount_msat INTEGER NOT NULL,
    memo TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    received_msat INTEGER NOT NULL DEFAULT 0,
    settled_at INTEGER,
    settle_index INTEGER UNIQUE
);
CREATE TABLE IF NOT EXISTS payments (
    payment_hash TEXT PRIMARY KEY,
    bolt11 TEXT NOT NULL,
    amount_msat INTEGER NOT NULL,
    status TEXT NOT NULL,
    fee_msat INTEGER NOT NULL DEFAULT 0,
    preimage TEXT,
    reason TEXT NOT NULL DEFAULT '',
    pre_dispatch INTEGER NOT NULL DEFAULT 0,
    wait INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS driver_script (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_hash TEXT,
    action TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);
"""

_INVOICE_TABLES = ("invoices", "driver_invoices")


class ScriptAction(enum.StrEnum):
    """What the driver wallet does with a payment it receives."""

    FAIL = "fail"
    HANG = "hang"
    UNKNOWN = "unknown"


class IncomingOutcome(enum.StrEnum):
    """The outcome of paying one of the fake node's invoices."""

    PAID = "paid"
    ALREADY_PAID = "already-paid"
    EXPIRED = "expired"
    UNKNOWN_INVOICE = "unknown-invoice"


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    payment_hash: str
    preimage: str
    bolt11: str
    amount_msat: int
    memo: str | None
    created_at: int
    expires_at: int
    state: str
    received_msat: int
    settled_at: int | None
    settle_index: int | None


@dataclass(frozen=True, slots=True)
class PaymentRow:
    payment_hash: str
    bolt11: str
    amount_msat: int
    status: str  # in_flight | succeeded | failed
    fee_msat: int
    preimage: str | None
    reason: str
    pre_dispatch: bool
    wait: bool  # in flight because the payee holds it ("hang"): the payer waits
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Attempt:
    """What the node should try to pay (computed by the backend, applied atomically)."""

    payment_hash: str
    bolt11: str
    amount_msat: int
    fee_msat: int
    max_fee_msat: int
    now: int


class FakeStore:
    """Async access to the fake's SQLite file; see the module docstring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fake-ln-db")
        self._conn: sqlite3.Connection | None = None

    # --- plumbing --------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, partial(fn, *args))
        except (sqlite3.Error, OSError) as exc:
            raise BackendUnavailable(f"fake backend database {self.path}: {exc}") from None
        except RuntimeError as exc:  # the executor was shut down: the store is closed
            raise BackendUnavailable(f"fake backend database {self.path} is closed") from exc

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the store is not open")
        return self._conn

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._db()
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result

    async def open(self) -> None:
        """Open (and create if needed) the file, its schema and the node keys."""
        await self._run(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        self._conn = conn
        conn.executescript(_SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        for key in ("node_key", "driver_key"):
            self._tx(partial(_insert_key, key))

    async def close(self) -> None:
        """Close the file and the store's thread. Idempotent."""
        if self._conn is not None:
            try:
                await self._run(self._close)
            finally:
                self._executor.shutdown(wait=False)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # --- reads -----------------------------------------------------------------------------

    async def meta(self, key: str) -> str:
        row = await self._run(self._one, "SELECT value FROM meta WHERE key = ?", (key,))
        if row is None:
            raise BackendUnavailable(f"fake backend database {self.path} has no {key}")
        return str(row["value"])

    def _one(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db().execute(sql, params).fetchone()
        return row

    async def data_version(self) -> int:
        row = await self._run(self._one, "PRAGMA data_version", ())
        return int(row[0]) if row is not None else 0

    async def invoice(self, payment_hash: str, *, driver: bool = False) -> InvoiceRow | None:
        table = _INVOICE_TABLES[driver]
        row = await self._run(
            self._one,
            f"SELECT * FROM {table} WHERE payment_hash = ?",  # noqa: S608 - a fixed table name
            (payment_hash,),
        )
        return InvoiceRow(**dict(row)) if row is not None else None

    async def max_settle_index(self) -> int:
        row = await self._run(self._one, "SELECT COALESCE(MAX(settle_index), 0) FROM invoices", ())
        return int(row[0]) if row is not None else 0

    async def settled_after(self, settle_index: int) -> list[InvoiceRow]:
        return await self._run(self._settled_after, "invoices", settle_index)

    async def driver_received(self) -> list[InvoiceRow]:
        return await self._run(self._settled_after, "driver_invoices", 0)

    def _settled_after(self, table: str, settle_index: int) -> list[InvoiceRow]:
        rows = self._db().execute(
            f"SELECT * FROM {table} WHERE settle_index > ? ORDER BY settle_index",  # noqa: S608
            (settle_index,),
        )
        return [InvoiceRow(**dict(row)) for row in rows]

    async def payment(self, payment_hash: str) -> PaymentRow | None:
        row = await self._run(
            self._one, "SELECT * FROM payments WHERE payment_hash = ?", (payment_hash,)
        )
        return _payment(row) if row is not None else None

    # --- writes ----------------------------------------------------------------------------

    async def add_invoice(self, row: InvoiceRow, *, driver: bool = False) -> None:
        table = _INVOICE_TABLES[driver]
        await self._run(
            self._tx,
            lambda c: c.execute(
                f"INSERT INTO {table} (payment_hash, preimage, bolt11, amount_msat, memo,"  # noqa: S608
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.payment_hash,
                    row.preimage,
                    row.bolt11,
                    row.amount_msat,
                    row.memo,
                    row.created_at,
                    row.expires_at,
                ),
            ),
        )

    async def pay_incoming(
        self, payment_hash: str, bolt11: str, now: int, amount_msat: int | None = None
    ) -> tuple[IncomingOutcome, InvoiceRow | None]:
        """Pay one of the fake node's own invoices (what a driver's wallet does).

        ``amount_msat`` records another amount as received than the invoice asks (scripting
        an overpayment, or a backend that misreports); the invoice amount when None.
        """
        pay = partial(_pay_incoming, payment_hash, bolt11, now, amount_msat)
        return await self._run(self._tx, pay)

    async def add_script(self, action: ScriptAction, payment_hash: str | None, reason: str) -> None:
        await self._run(
            self._tx,
            lambda c: c.execute(
                "INSERT INTO driver_script (payment_hash, action, reason) VALUES (?, ?, ?)",
                (payment_hash, action.value, reason),
            ),
        )

    async def attempt_payment(self, attempt: Attempt) -> PaymentRow:
        """Pay a driver invoice (what a refund is), following the driver's script."""
        return await self._run(self._tx, partial(_attempt_payment, attempt))

    async def resolve_payment(
        self, payment_hash: str, *, succeed: bool, reason: str, now: int
    ) -> PaymentRow | None:
        """End an in-flight payment: deliver it (the driver is paid) or fail it."""
        return await self._run(self._tx, partial(_resolve, payment_hash, succeed, reason, now))


# --- transactions (run on the store thread, inside BEGIN IMMEDIATE) --------------------------


def _insert_key(key: str, c: sqlite3.Connection) -> None:
    # INSERT OR IGNORE: two processes opening a fresh file agree on the first key written.
    c.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, secrets.token_hex(32)))


def _payment(row: sqlite3.Row) -> PaymentRow:
    values = dict(row)
    values["pre_dispatch"] = bool(values["pre_dispatch"])
    values["wait"] = bool(values["wait"])
    return PaymentRow(**values)


def _settle(c: sqlite3.Connection, table: str, payment_hash: str, amount: int, now: int) -> None:
    c.execute(
        f"UPDATE {table} SET state = 'settled', received_msat = ?, settled_at = ?,"  # noqa: S608
        f" settle_index = (SELECT COALESCE(MAX(settle_index), 0) + 1 FROM {table})"
        " WHERE payment_hash = ?",
        (amount, now, payment_hash),
    )


def _pay_incoming(
    payment_hash: str, bolt11: str, now: int, amount_msat: int | None, c: sqlite3.Connection
) -> tuple[IncomingOutcome, InvoiceRow | None]:
    row = c.execute("SELECT * FROM invoices WHERE payment_hash = ?", (payment_hash,)).fetchone()
    if row is None or row["bolt11"] != bolt11:
        return IncomingOutcome.UNKNOWN_INVOICE, None
    if row["state"] == "settled":
        return IncomingOutcome.ALREADY_PAID, InvoiceRow(**dict(row))
    if now >= row["expires_at"]:
        return IncomingOutcome.EXPIRED, InvoiceRow(**dict(row))
    received = row["amount_msat"] if amount_msat is None else amount_msat
    _settle(c, "invoices", payment_hash, received, now)
    row = c.execute("SELECT * FROM invoices WHERE payment_hash = ?", (payment_hash,)).fetchone()
    return IncomingOutcome.PAID, InvoiceRow(**dict(row))


def _take_script(c: sqlite3.Connection, payment_hash: str) -> tuple[str, str] | None:
    row = c.execute(
        "SELECT id, action, reason FROM driver_script WHERE payment_hash = ? ORDER BY id LIMIT 1",
        (payment_hash,),
    ).fetchone()
    if row is None:
        row = c.execute(
            "SELECT id, action, reason FROM driver_script WHERE payment_hash IS NULL"
            " ORDER BY id LIMIT 1"
        ).fetchone()
    if row is None:
        return None
    c.execute("DELETE FROM driver_script WHERE id = ?", (row["id"],))
    return str(row["action"]), str(row["reason"])


def _outcome(c: sqlite3.Connection, a: Attempt) -> tuple[str, str, bool, str | None, bool]:
    """(status, reason, pre_dispatch, preimage, wait) for a new attempt."""
    own = c.execute("SELECT 1 FROM invoices WHERE payment_hash = ?", (a.payment_hash,)).fetchone()
    if own is not None:
        return "failed", "the invoice is the fake node's own: no self-payments", True, None, False
    dest = c.execute(
        "SELECT * FROM driver_invoices WHERE payment_hash = ?", (a.payment_hash,)
    ).fetchone()
    if dest is None or dest["bolt11"] != a.bolt11:
        return (
            "failed",
            "no route: the fake node can only pay invoices of its driver wallet",
            True,
            None,
            False,
        )
    if dest["state"] == "settled":
        return "failed", "the payee rejected it: the invoice is already paid", False, None, False
    if a.fee_msat > a.max_fee_msat:
        reason = f"the route costs {a.fee_msat} msat, more than the {a.max_fee_msat} msat allowed"
        return "failed", reason, True, None, False
    script = _take_script(c, a.payment_hash)
    if script is not None:
        action, reason = script
        if action == ScriptAction.FAIL:
            return "failed", reason or "the payee rejected the payment", False, None, False
        return "in_flight", reason, False, None, action == ScriptAction.HANG
    _settle(c, "driver_invoices", a.payment_hash, a.amount_msat, a.now)
    return "succeeded", "", False, str(dest["preimage"]), False


def _attempt_payment(a: Attempt, c: sqlite3.Connection) -> PaymentRow:
    existing = c.execute(
        "SELECT * FROM payments WHERE payment_hash = ?", (a.payment_hash,)
    ).fetchone()
    if existing is not None and existing["status"] != "failed":
        return _payment(existing)  # paid or in flight: never pay twice
    status, reason, pre_dispatch, preimage, wait = _outcome(c, a)
    c.execute(
        "INSERT INTO payments (payment_hash, bolt11, amount_msat, status, fee_msat, preimage,"
        " reason, pre_dispatch, wait, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (payment_hash) DO UPDATE SET bolt11 = excluded.bolt11,"
        " amount_msat = excluded.amount_msat, status = excluded.status,"
        " fee_msat = excluded.fee_msat, preimage = excluded.preimage, reason = excluded.reason,"
        " pre_dispatch = excluded.pre_dispatch, wait = excluded.wait,"
        " updated_at = excluded.updated_at",
        (
            a.payment_hash,
            a.bolt11,
            a.amount_msat,
            status,
            a.fee_msat if status != "failed" else 0,
            preimage,
            reason,
            int(pre_dispatch),
            int(wait),
            a.now,
            a.now,
        ),
    )
    row = c.execute("SELECT * FROM payments WHERE payment_hash = ?", (a.payment_hash,)).fetchone()
    return _payment(row)


def _resolve(
    payment_hash: str, succeed: bool, reason: str, now: int, c: sqlite3.Connection
) -> PaymentRow | None:
    row = c.execute("SELECT * FROM payments WHERE payment_hash = ?", (payment_hash,)).fetchone()
    if row is None:
        return None
    if row["status"] != "in_flight":
        return _payment(row)
    if succeed:
        dest = c.execute(
            "SELECT preimage FROM driver_invoices WHERE payment_hash = ?", (payment_hash,)
        ).fetchone()
        _settle(c, "driver_invoices", payment_hash, row["amount_msat"], now)
        c.execute(
            "UPDATE payments SET status = 'succeeded', preimage = ?, wait = 0, updated_at = ?"
            " WHERE payment_hash = ?",
            (dest["preimage"], now, payment_hash),
        )
    else:
        c.execute(
            "UPDATE payments SET status = 'failed', reason = ?, fee_msat = 0, wait = 0,"
            " updated_at = ? WHERE payment_hash = ?",
            (reason or "the payee failed the payment", now, payment_hash),
        )
    row = c.execute("SELECT * FROM payments WHERE payment_hash = ?", (payment_hash,)).fetchone()
    return _payment(row)
