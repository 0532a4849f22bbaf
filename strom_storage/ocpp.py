"""The OCPP records: transactions, unknown stops, meter readings, and the transaction allocator.

The SQL of :class:`strom_services.ocpp_core.DatabaseOcppCore`. Every function is a synchronous
step of the caller's one-hop transaction (``conn``, inside :meth:`strom_storage.db.Database.write`),
so a record and the session it advances commit together.

Transaction references: the core's port speaks of a transaction by a string reference; the
tables keep OCPP 1.6's integer ids (``ocpp_transactions.id`` from the persisted allocator,
``sessions.transaction_id``, ``meter_readings.transaction_id``,
``ocpp_unknown_stops.transaction_id``). :func:`transaction_reference` and
:func:`transaction_number` map between the two here, at the storage edge; the columns keep
their types and existing rows need no migration. A reference that is no decimal integer (an
OCPP 2.0.1 transaction id, once a 2.0.1 package exists) has no row here yet: it is reported as
unknown, never guessed onto another transaction. Supporting 2.0.1 will add a text column.

Authorisation results are stored as OCPP 1.6 spells them (``Accepted``, ``Invalid``,
``ConcurrentTx``…), the values the ``status`` column has always held.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from strom_core.ports import Authorization
from strom_storage.schema import id_allocator, meter_readings, ocpp_transactions, ocpp_unknown_stops

__all__ = [
    "REFUSED",
    "TRANSACTION_COUNTER",
    "StoredTransaction",
    "allocate_id",
    "find_replayed_start",
    "find_transaction",
    "insert_meter_reading",
    "insert_transaction",
    "record_stop",
    "record_unknown_stop",
    "session_of_transaction",
    "transaction_number",
    "transaction_reference",
]

REFUSED: Final = "Refused"  # ``stop_reason`` of a StartTransaction Strom refused (closed at once)
TRANSACTION_COUNTER: Final = "ocpp_transaction"  # the id_allocator row of transaction ids
_MAX_NUMBER: Final = 2**63 - 1  # the widest integer column

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
_SESSION_OF = select(ocpp_transactions.c.session_id).where(
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
    session_id: str | None
    meter_stop_wh: int | None


def find_replayed_start(
    conn: Connection,
    charger_id: str,
    connector_id: int,
    id_tag: str,
    meter_start_wh: int,
    started_at: datetime,
) -> tuple[int, Authorization] | None:
    """The id and status recorded for the same StartTransaction, if it was recorded."""
    row = conn.execute(
        select(ocpp_transactions.c.id, ocpp_transactions.c.status).where(
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
) -> None:
    """Record a StartTransaction; one Strom refused is closed at once (``stop_reason`` Refused).

    The station sends no StopTransaction for a refused transaction, so nothing waits for one.
    """
    refused = status is not Authorization.ACCEPTED
    conn.execute(
        insert(ocpp_transactions).values(
            id=number,
            charger_id=charger_id,
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


def find_transaction(conn: Connection, charger_id: str, number: int) -> StoredTransaction | None:
    """The charger's transaction with that id, if it has one."""
    row = conn.execute(
        select(
            ocpp_transactions.c.id,
            ocpp_transactions.c.charger_id,
            ocpp_transactions.c.session_id,
            ocpp_transactions.c.meter_stop_wh,
        ).where(
            ocpp_transactions.c.id == number,
            ocpp_transactions.c.charger_id == charger_id,
        )
    ).first()
    if row is None:
        return None
    return StoredTransaction(int(row.id), row.charger_id, row.session_id, row.meter_stop_wh)


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
    number: int,
    meter_stop_wh: int,
    stopped_at: datetime,
    reason: str,
    id_tag: str | None,
    received_at: datetime,
) -> None:
    """Keep a StopTransaction for an id the charger never got (the first one of each id)."""
    dialect_insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(
        dialect_insert(ocpp_unknown_stops)
        .values(
            charger_id=charger_id,
            transaction_id=number,
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            reason=reason,
            id_tag=id_tag,
            received_at=received_at,
        )
        .on_conflict_do_nothing(index_elements=["charger_id", "transaction_id"])
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


def session_of_transaction(conn: Connection, charger_id: str, number: int) -> str | None:
    """The session a charger's transaction belongs to (None: refused, or not Strom's)."""
    session_id = conn.scalar(_SESSION_OF, {"number": number, "charger_id": charger_id})
    return None if session_id is None else str(session_id)
