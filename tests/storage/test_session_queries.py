"""The session and charger reads the services use, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from strom_core.session import State
from strom_core.session_events import PaymentSettled, RemoteStartAccepted, TransactionStarted
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.sessions import SessionStore, hash_secret
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
    async with db.reader() as tx:
        assert await store.holder("cp1", 1, BUSY, tx=tx) == "s1"
        assert await store.held_connectors(tx, BUSY) == {("cp1", 1)}
        assert await store.held_connectors(tx, (State.CLOSED,)) == set()


async def test_the_sessions_that_hold_a_transaction(db: Database) -> None:
    store = await _charging(db)
    async with db.reader() as tx:
        [session] = await store.with_transaction(tx, "cp1", 1, (State.CHARGING,))
        assert (session.id, session.transaction_id) == ("s1", 7)
        assert [s.id for s in await store.with_transaction(tx, "cp1", None, BUSY)] == ["s1"]
        assert await store.with_transaction(tx, "cp1", 2, BUSY) == []
        assert await store.with_transaction(tx, "cp1", 1, (State.STOPPING,)) == []


async def test_connectors_and_links_in_a_transaction(db: Database) -> None:
    await make(db)
    chargers = ChargerStore(db)
    await chargers.set_status("cp1", 1, "Charging", "NoError", T0)
    await chargers.set_online("cp1", True, T0)
    async with db.reader() as tx:
        connector = await chargers.connector(tx, "cp1", 1)
        assert connector is not None
        assert (connector.enabled, connector.status) == (True, "Charging")
        assert await chargers.connector(tx, "cp1", 9) is None
        assert [c.connector_id for c in await chargers.all_connectors(tx)] == [1]
        assert await chargers.link_columns(tx) == {"cp1": (True, None)}
        assert await chargers.link_columns(tx, "nope") == {}
    await chargers.begin_reconnect_grace(T0, 60)
    async with db.reader() as tx:
        online, until = (await chargers.link_columns(tx, "cp1"))["cp1"]
    assert not online
    assert until == T0 + timedelta(seconds=60)
