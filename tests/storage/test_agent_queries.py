"""The agents' repository (strom_storage.agents): claims of nostr events (replay protection),
what the agents read of chargers and connectors, and the operator's writes through a DM
(SQLite and PostgreSQL)."""

from __future__ import annotations

from strom_core.config import ConnectorConfig, LocationConfig, ProfileConfig, TariffConfig
from strom_core.session_events import StopReason, StopRequested
from strom_storage import agents
from strom_storage.audit import entries
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from tests.storage.test_reservations import UNTIL, reserved

PROFILE = ProfileConfig(
    id="cp1",
    name="Test charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(ConnectorConfig(id=1, max_power_kw=11), ConnectorConfig(id=2, max_power_kw=22)),
    tariff=TariffConfig(per_kwh_sat=250),
)
EVENT_ID = "ab" * 32
PUBKEY = "cd" * 32


async def test_an_event_is_claimed_once_and_again_only_after_its_release(db: Database) -> None:
    assert await agents.claim_event(db, EVENT_ID, 4, PUBKEY, now=1_765_000_000)
    assert not await agents.claim_event(db, EVENT_ID, 4, PUBKEY, now=1_765_000_001)  # a replay

    await agents.release_event(db, EVENT_ID)  # the backend failed: let it be processed again
    assert await agents.claim_event(db, EVENT_ID, 4, PUBKEY, now=1_765_000_002)


async def test_snapshots_show_each_connector_and_the_operators_enabled_flag(db: Database) -> None:
    await ChargerStore(db).sync((PROFILE,))
    await agents.set_connector_enabled(db, "cp1", 2, enabled=False)

    snapshot = (await agents.charger_snapshots(db))["cp1"]
    assert snapshot.online is False
    assert snapshot.connectors is not None
    assert {connector: enabled for connector, (_, enabled) in snapshot.connectors.items()} == {
        1: True,
        2: False,
    }
    assert await agents.charger_snapshots(db, ["nobody"]) == {}


async def test_an_operators_action_is_written_to_the_audit_log(db: Database) -> None:
    await agents.audit(
        db, actor="nostr:" + PUBKEY, action="price", target="cp1", detail={"sat": 300}, now=1e9
    )
    async with db.reader() as conn:
        written = await entries(conn, "price")
    assert [(e.actor, e.target, e.detail) for e in written] == [
        ("nostr:" + PUBKEY, "cp1", {"sat": 300})
    ]


async def test_unknown_sessions_and_payments_read_as_nothing(db: Database) -> None:
    assert await agents.initiator_of(db, "no-such-session") is None
    assert await agents.zap_request_of(db, "00" * 32) is None
    assert await agents.zap_relays_of(db, "no-such-session") == ()
    assert await agents.open_sessions(db, "cp1") == []


async def test_snapshots_carry_the_reserved_sessions_and_their_ends(db: Database) -> None:
    """What an agent loads at its start: each connector held by a reserved session, with the
    session and the end of its reservation (the status shows them after a restart)."""
    store = await reserved(db, "s1")
    snapshot = (await agents.charger_snapshots(db, ["cp1"]))["cp1"]
    assert snapshot.reservations == {1: ("s1", int(UNTIL.timestamp()))}
    await store.apply("s1", StopRequested(StopReason.INITIATOR), now=UNTIL)  # cancelled
    assert (await agents.charger_snapshots(db))["cp1"].reservations == {}


async def test_reservation_ids_are_taken_once_and_the_newest_audit_row_is_read(
    db: Database,
) -> None:
    first = await agents.next_id(db, "ocpp_reservation")
    assert await agents.next_id(db, "ocpp_reservation") == first + 1
    assert await agents.last_audit_detail(db, "reserve", "cp1/1") is None
    for number in (1, 2):
        await agents.audit(
            db, actor="x", action="reserve", target="cp1/1", detail={"n": number}, now=1e9
        )
    await agents.audit(db, actor="x", action="reserve", target="cp1/2", detail={"n": 3}, now=1e9)
    assert await agents.last_audit_detail(db, "reserve", "cp1/1") == {"n": 2}
