"""The session and charger reads the services use, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from strom_core.session import State
from strom_core.session_events import PaymentSettled, RemoteStartAccepted, TransactionStarted
from strom_storage.chargers import ChargerStore, all_connectors, link_columns, load_connector
from strom_storage.db import Connection, Database
from strom_storage.sessions import (
    SessionStore,
    find_holder,
    hash_secret,
    held_connectors,
    with_transaction,
)
from tests.storage.test_session_store import T0, make

BUSY = (State.PAID, State.STARTING, State.CHARGING, State.STOPPING)


async def _charging(db: Database, store: SessionStore | None = None) -> SessionStore:
    store = store or await make(db)
    await store.apply("s1", PaymentSettled("h" * 64, 5_000_000))
    await store.apply("s1", RemoteStartAccepted())
    await store.apply("s1", TransactionStarted(7, 1_000, T0))
    return store


async def test_the_secret_hash_of_a_session(db: Database) -> None:
    store = await make(db)
    assert await store.secret_hash("s1") == hash_secret("x" * 32)
    assert await store.secret_hash("nope") is None


async def test_the_holder_of_a_connector(db: Database) -> None:
    store = await make(db)
    assert await store.holder("cp1", 1, BUSY) is None  # awaiting payment holds nothing
    await _charging(db, store)
    assert await store.holder("cp1", 1, BUSY) == "s1"
    assert await store.holder("cp1", 1, BUSY, exclude="s1") is None
    assert await store.holder("cp1", 2, BUSY) is None
    assert await store.holder("cp1", 1, BUSY, initiator_pubkey="p" * 64) is None

    def in_one_read(conn: Connection) -> None:
        assert find_holder(conn, "cp1", 1, BUSY) == "s1"
        assert held_connectors(conn, BUSY) == {("cp1", 1)}
        assert held_connectors(conn, (State.CLOSED,)) == set()

    await db.read(in_one_read)


async def test_the_sessions_that_hold_a_transaction(db: Database) -> None:
    await _charging(db)

    def in_one_read(conn: Connection) -> None:
        [session] = with_transaction(conn, "cp1", 1, (State.CHARGING,))
        assert (session.id, session.transaction_id) == ("s1", 7)
        assert [s.id for s in with_transaction(conn, "cp1", None, BUSY)] == ["s1"]
        assert with_transaction(conn, "cp1", 2, BUSY) == []
        assert with_transaction(conn, "cp1", 1, (State.STOPPING,)) == []

    await db.read(in_one_read)


async def test_connectors_and_links_in_a_transaction(db: Database) -> None:
    await make(db)
    chargers = ChargerStore(db)
    await chargers.set_status("cp1", 1, "Charging", "NoError", T0)
    await chargers.set_online("cp1", True, T0)

    def in_one_read(conn: Connection) -> None:
        connector = load_connector(conn, "cp1", 1)
        assert connector is not None
        assert (connector.enabled, connector.status) == (True, "Charging")
        assert load_connector(conn, "cp1", 9) is None
        assert [c.connector_id for c in all_connectors(conn)] == [1]
        assert link_columns(conn) == {"cp1": (True, None)}
        assert link_columns(conn, "nope") == {}

    await db.read(in_one_read)
    await chargers.begin_reconnect_grace(T0, 60)
    online, until = (await db.read(lambda conn: link_columns(conn, "cp1")))["cp1"]
    assert not online
    assert until == T0 + timedelta(seconds=60)
