"""The OCPP records: transactions, unknown stops, meter readings, and the transaction allocator.

The SQL of :class:`strom_services.ocpp_core.DatabaseOcppCore`. Every function is a synchronous
step of the caller's one-hop transaction (``conn``, inside :meth:`strom_storage.db.Database.write`),
so a record and the session it advances commit together.

Transaction references: the core's port speaks of a transaction by a string reference. Every
transaction has an integer ``id`` from the persisted allocator, the key the other tables use
(``sessions.transaction_id``, ``meter_readings.transaction_id``). An OCPP 1.6 transaction's
reference is that id as a decimal string (:func:`transaction_reference`,
:func:`transaction_number`); an OCPP 2.0.1 transaction's reference is the transactionId its
charger chose, kept in ``charger_reference`` (at most 36 characters, unique per charger).

Finding a transaction by reference (:func:`find_transaction`): the charger's own reference
first, then, among its rows without one (1.6 rows), the canonical decimal id. A charger speaks
one version at a time, so a 2.0.1 charger's ``"17"`` is its own transaction ``"17"``; it reaches
a 1.6 row 17 of that charger only when the charger has no transaction of its own of that name.
The internal id of a 2.0.1 row is never a reference: ``"42"`` does not find the 2.0.1 row whose
id is 42. An unknown stop is kept under its reference: in ``transaction_id`` when it is a
canonical decimal number (every 1.6 id), in ``charger_reference`` otherwise, once per charger.

A reference reused after a reboot (see :mod:`strom_core.ports.ocpp`): the ended row's
``charger_reference`` becomes ``<reference>~<id>`` (:func:`archive_reference`, at most
:data:`MAX_ARCHIVED` characters: the column is wider than a reference), so the new row takes
the reference; :func:`find_archived` lists the charger's earlier rows of a reference.

Authorisation results are stored as OCPP 1.6 spells them (``Accepted``, ``Invalid``,
``ConcurrentTx``…), the values the ``status`` column has always held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import String, and_, bindparam, cast, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from strom_core.ports import Authorization
from strom_storage.schema import id_allocator, meter_readings, ocpp_transactions, ocpp_unknown_stops

__all__ = [
    "MAX_ARCHIVED",
    "MAX_REFERENCE",
    "REFUSED",
    "TRANSACTION_COUNTER",
    "StoredTransaction",
    "allocate_id",
    "archive_reference",
    "archived_reference",
    "check_charger_reference",
    "find_archived",
    "find_replayed_start",
    "find_transaction",
    "insert_meter_reading",
    "insert_transaction",
    "record_stop",
    "record_unknown_stop",
    "reference_of",
    "storable_reference",
    "transaction_number",
    "transaction_reference",
]

REFUSED: Final = "Refused"  # ``stop_reason`` of a StartTransaction Strom refused (closed at once)
TRANSACTION_COUNTER: Final = "ocpp_transaction"  # the id_allocator row of transaction ids
_MAX_NUMBER: Final = 2**63 - 1  # the widest integer column
MAX_REFERENCE: Final = 36  # OCPP 2.0.1 transactionId: string, at most 36 characters
MAX_ARCHIVED: Final = 64  # ``<reference>~<id>``: 36 + 1 + at most 19 digits
_ARCHIVED: Final = "~"  # no identifierString character: no charger chooses it

_STORED: Final = {
    Authorization.ACCEPTED: "Accepted",
    Authorization.BLOCKED: "Blocked",
    Authorization.EXPIRED: "Expired",
    Authorization.INVALID: "Invalid",
    Authorization.IN_USE: "ConcurrentTx",
}
_READ: Final = {stored: authorization for authorization, stored in _STORED.items()}


def transaction_reference(number: int) -> str:
    """The port's reference of a stored transaction id: its decimal string."""
    return str(number)


def transaction_number(reference: str) -> int | None:
    """The stored id a reference stands for, or None when it is no stored kind of id.

    Only the canonical decimal form (as :func:`transaction_reference` writes it) is read:
    ``"007"`` or ``"+7"`` are other references than ``"7"``, never the same transaction.
    """
    if not reference.isascii() or not reference.isdigit() or reference != str(int(reference)):
        return None
    number = int(reference)
    return number if number <= _MAX_NUMBER else None


def check_charger_reference(reference: str) -> None:
    """Refuse a charger-chosen reference no transaction can have.

    Raises:
        ValueError: when it is empty or longer than :data:`MAX_REFERENCE` characters.
    """
    if not 0 < len(reference) <= MAX_REFERENCE:
        raise ValueError(
            f"a charger's transaction reference has 1 to {MAX_REFERENCE} characters, "
            f"got {len(reference)}"
        )


def storable_reference(reference: str) -> bool:
    """Whether a stop of this reference can be kept (a decimal id, or one of 1 to 36 chars)."""
    return transaction_number(reference) is not None or 0 < len(reference) <= MAX_REFERENCE


# The statements of every meter sample, built once (SQLAlchemy then compiles each once per
# dialect and reuses it).
_READINGS = {
    name: dialect_insert(meter_readings)
    .values(
        charger_id=bindparam("charger_id"),
        connector_id=bindparam("connector_id"),
        transaction_id=bindparam("number"),
        register_wh=bindparam("register_wh"),
        sampled_at=bindparam("sampled_at"),
    )
    .on_conflict_do_nothing()
    for name, dialect_insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_COLUMNS = (
    ocpp_transactions.c.id,
    ocpp_transactions.c.charger_id,
    ocpp_transactions.c.charger_reference,
    ocpp_transactions.c.status,
    ocpp_transactions.c.session_id,
    ocpp_transactions.c.meter_stop_wh,
    ocpp_transactions.c.started_at,
    ocpp_transactions.c.stopped_at,
)
# A charger's transaction by reference: its own reference, or a 1.6 row's id (at most 2 rows).
_FIND = select(*_COLUMNS).where(
    ocpp_transactions.c.charger_id == bindparam("charger_id"),
    or_(
        ocpp_transactions.c.charger_reference == bindparam("reference"),
        and_(
            ocpp_transactions.c.charger_reference.is_(None),
            ocpp_transactions.c.id == bindparam("number"),
        ),
    ),
)
# A charger's earlier transactions of a reference: ``<reference>~<id>``.
_ARCHIVE = select(*_COLUMNS).where(
    ocpp_transactions.c.charger_id == bindparam("charger_id"),
    ocpp_transactions.c.charger_reference
    == bindparam("reference", type_=String) + _ARCHIVED + cast(ocpp_transactions.c.id, String),
)
_REFERENCE_OF = select(ocpp_transactions.c.charger_reference).where(
    ocpp_transactions.c.id == bindparam("number"),
    ocpp_transactions.c.charger_id == bindparam("charger_id"),
)


def allocate_id(conn: Connection, name: str) -> int:
    """Take the next value of a persisted monotonic counter (starts at 1)."""
    row = conn.execute(
        update(id_allocator)
        .where(id_allocator.c.name == name)
        .values(next_value=id_allocator.c.next_value + 1)
        .returning(id_allocator.c.next_value)
    ).first()
    if row is not None:
        return int(row[0]) - 1
    conn.execute(insert(id_allocator).values(name=name, next_value=2))
    return 1


@dataclass(frozen=True, slots=True)
class StoredTransaction:
    """One row of ``ocpp_transactions``."""

    number: int
    charger_id: str
    charger_reference: str | None
    status: Authorization
    session_id: str | None
    meter_stop_wh: int | None
    started_at: datetime
    stopped_at: datetime | None  # its stop; its start for one Strom refused

    @property
    def ended(self) -> bool:
        """Whether no stop is expected any more: stopped, or refused (closed at once)."""
        return self.meter_stop_wh is not None or self.status is not Authorization.ACCEPTED

    @property
    def reference(self) -> str:
        """The port's reference: the charger's own (2.0.1), else the decimal id (1.6)."""
        if self.charger_reference is not None:
            return self.charger_reference
        return transaction_reference(self.number)


def find_replayed_start(
    conn: Connection,
    charger_id: str,
    connector_id: int,
    id_tag: str,
    meter_start_wh: int,
    started_at: datetime,
) -> tuple[int, Authorization] | None:
    """The id and status recorded for the same OCPP 1.6 StartTransaction, if it was recorded."""
    row = conn.execute(
        select(ocpp_transactions.c.id, ocpp_transactions.c.status).where(
            ocpp_transactions.c.charger_reference.is_(None),
            ocpp_transactions.c.charger_id == charger_id,
            ocpp_transactions.c.connector_id == connector_id,
            ocpp_transactions.c.id_tag == id_tag,
            ocpp_transactions.c.meter_start_wh == meter_start_wh,
            ocpp_transactions.c.started_at == started_at,
        )
    ).first()
    if row is None:
        return None
    return int(row.id), _READ[row.status]


def insert_transaction(
    conn: Connection,
    *,
    number: int,
    charger_id: str,
    connector_id: int,
    id_tag: str,
    status: Authorization,
    session_id: str | None,
    meter_start_wh: int,
    started_at: datetime,
    created_at: datetime,
    charger_reference: str | None = None,
) -> None:
    """Record a started transaction; one Strom refused is closed at once (``stop_reason`` Refused).

    The station sends no StopTransaction for a refused transaction, so nothing waits for one.
    ``charger_reference`` is the charger's own transactionId (OCPP 2.0.1), None for 1.6.
    """
    refused = status is not Authorization.ACCEPTED
    conn.execute(
        insert(ocpp_transactions).values(
            id=number,
            charger_id=charger_id,
            charger_reference=charger_reference,
            connector_id=connector_id,
            id_tag=id_tag,
            status=_STORED[status],
            session_id=session_id,
            meter_start_wh=meter_start_wh,
            started_at=started_at,
            stopped_at=started_at if refused else None,
            stop_reason=REFUSED if refused else None,
            created_at=created_at,
        )
    )


def find_transaction(conn: Connection, charger_id: str, reference: str) -> StoredTransaction | None:
    """The charger's transaction a reference names, if it has one (see the module docstring)."""
    rows = conn.execute(
        _FIND,
        {
            "charger_id": charger_id,
            "reference": reference,
            "number": transaction_number(reference),
        },
    ).all()
    row = next((r for r in rows if r.charger_reference is not None), rows[0] if rows else None)
    return None if row is None else _stored(row)


def _stored(row: Any) -> StoredTransaction:  # a Row of _COLUMNS
    return StoredTransaction(
        int(row.id),
        row.charger_id,
        row.charger_reference,
        _READ[row.status],
        row.session_id,
        row.meter_stop_wh,
        row.started_at,
        row.stopped_at,
    )


def archived_reference(reference: str, number: int) -> str:
    """The name an ended transaction keeps once its charger reused its reference."""
    return f"{reference}{_ARCHIVED}{number}"


def archive_reference(conn: Connection, transaction: StoredTransaction) -> None:
    """Free a charger's reference for its new transaction: the ended one is renamed.

    Raises:
        ValueError: when the transaction has no reference of its charger's (an OCPP 1.6 row).
    """
    if transaction.charger_reference is None:
        raise ValueError(f"transaction {transaction.number} has no charger reference to archive")
    conn.execute(
        update(ocpp_transactions)
        .where(ocpp_transactions.c.id == transaction.number)
        .values(
            charger_reference=archived_reference(transaction.charger_reference, transaction.number)
        )
    )


def find_archived(conn: Connection, charger_id: str, reference: str) -> list[StoredTransaction]:
    """The charger's earlier transactions of a reference it reused, oldest first."""
    rows = conn.execute(_ARCHIVE, {"charger_id": charger_id, "reference": reference}).all()
    return sorted((_stored(row) for row in rows), key=lambda t: t.number)


def reference_of(conn: Connection, charger_id: str, number: int) -> str:
    """The port's reference of a charger's stored transaction id (what a RemoteStop sends)."""
    own = conn.scalar(_REFERENCE_OF, {"number": number, "charger_id": charger_id})
    return transaction_reference(number) if own is None else str(own)


def record_stop(
    conn: Connection, number: int, meter_stop_wh: int, stopped_at: datetime, reason: str
) -> None:
    """Record the StopTransaction of a known transaction."""
    conn.execute(
        update(ocpp_transactions)
        .where(ocpp_transactions.c.id == number)
        .values(meter_stop_wh=meter_stop_wh, stopped_at=stopped_at, stop_reason=reason)
    )


def record_unknown_stop(
    conn: Connection,
    *,
    charger_id: str,
    reference: str,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str,
    id_tag: str | None,
    received_at: datetime,
) -> None:
    """Keep a stop of a reference the charger never got (the first one of each reference).

    A decimal reference goes to ``transaction_id``, any other to ``charger_reference`` (see
    the module docstring); the caller checked it with :func:`storable_reference`.
    """
    number = transaction_number(reference)
    key = "transaction_id" if number is not None else "charger_reference"
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(ocpp_unknown_stops)
        .values(
            charger_id=charger_id,
            transaction_id=number,
            charger_reference=None if number is not None else reference,
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            reason=reason,
            id_tag=id_tag,
            received_at=received_at,
        )
        .on_conflict_do_nothing(index_elements=["charger_id", key])
    )


def insert_meter_reading(
    conn: Connection,
    *,
    charger_id: str,
    connector_id: int,
    number: int,
    register_wh: int,
    sampled_at: datetime,
) -> None:
    """Keep a meter sample (a repeated one is kept once)."""
    conn.execute(
        _READINGS[conn.dialect.name],
        {
            "charger_id": charger_id,
            "connector_id": connector_id,
            "number": number,
            "register_wh": register_wh,
            "sampled_at": sampled_at,
        },
    )
