"""Weeks of traffic on a synthetic clock: the history tables level off, money records all stay.

Every day, sessions go through their whole life on the real services (invoice, settlement,
OCPP start, meter values, stop, withdraw offers, a refund claim paid through the outbox), DMs
and zap requests are claimed, a charger reports a stop nobody knows, and one effect is given
up. One session charges the whole time on the other connector. The sweep runs each night.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import Table, event, func, select

from agent.settings import AgentSettings
from strom_core.clock import SYSTEM_CLOCK
from strom_core.config import (
    ConnectorConfig,
    LocationConfig,
    ProfileConfig,
    SessionsConfig,
    TariffConfig,
)
from strom_core.ports import MeterSample
from strom_core.session import State
from strom_core.session_events import RemoteStartAccepted
from strom_core.session_secrets import SessionSecrets
from strom_lightning._mint import mint_invoice
from strom_services.ocpp_core import DatabaseOcppCore
from strom_services.payments import OpenedSession, PaymentService
from strom_services.refunds import RefundService, min_refund
from strom_services.tariffs import TariffBook
from strom_storage.agents import claim_event
from strom_storage.chargers import ChargerStore
from strom_storage.db import Database
from strom_storage.outbox import MAX_ATTEMPTS, OutboxRow, OutboxStore, queue_effect
from strom_storage.retention import Retention, RetentionPolicy
from strom_storage.schema import (
    ledger_entries,
    meter_readings,
    nostr_events,
    ocpp_transactions,
    ocpp_unknown_stops,
    outbox,
    payments,
    refunds,
    sessions,
)
from strom_storage.sessions import SessionStore, ledger_totals
from strom_storage.tariffs import TariffRepository
from tests.agent.fakes import NODE_KEY, MemoryLightning

DAYS = 24
LEVEL_FROM = 12  # the longest rule keeps a week; the counts are flat from here on
SESSIONS_PER_DAY = 2
DMS_PER_DAY = 8
POLICY = RetentionPolicy(
    claim_windows_s={
        **AgentSettings(public_url="http://x").claim_windows_s(),
        9734: 720,
        27235: 120,
    },
    outbox_days=3,
    outbox_dead_days=7,
    meter_readings_days=5,
    unknown_stops_days=5,
)
GROWING = (nostr_events, outbox, meter_readings, ocpp_unknown_stops)
MONEY = (sessions, payments, ledger_entries, ocpp_transactions)
PROFILE = ProfileConfig(
    id="cp1",
    name="Long-run charger",
    location=LocationConfig(lat=52.5, lon=13.4),
    connectors=(
        ConnectorConfig(id=1, max_power_kw=Decimal(11)),
        ConnectorConfig(id=2, max_power_kw=Decimal(11)),
    ),
    tariff=TariffConfig(per_kwh_sat=Decimal(300)),
)


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class StromClock:
    """:class:`strom_core.clock.Clock` over the test's clock, for the parts that take one."""

    clock: Clock

    def now(self) -> datetime:
        return self.clock.now

    def unix(self) -> float:
        return self.clock.now.timestamp()

    def monotonic(self) -> float:
        return self.clock.now.timestamp()


@dataclass
class Site:
    db: Database
    clock: Clock
    store: SessionStore
    backend: MemoryLightning
    payments: PaymentService
    ocpp: DatabaseOcppCore
    refunds: RefundService
    outbox: OutboxStore

    async def paid_session(
        self, connector: int, zap: bool, amount_msat: int = 5_000_000
    ) -> OpenedSession:
        opened = await self.payments.open_session(
            PROFILE,
            connector,
            amount_msat,
            description_hash=os.urandom(32),
            initiator="zap" if zap else "lnurl",
            initiator_pubkey=os.urandom(32).hex() if zap else None,
            zap_request={"description": "{}", "relays": []} if zap else None,
            zap_request_id=os.urandom(32).hex() if zap else None,
        )
        self.backend.mark_paid(opened.invoice.payment_hash)
        assert await self.payments.settle(opened.invoice.payment_hash)
        await self.store.apply(opened.session_id, RemoteStartAccepted())
        return opened

    async def start(self, opened: OpenedSession, connector: int) -> int:
        session = await self.store.get(opened.session_id)
        decision = await self.ocpp.start_transaction(
            "cp1", connector, session.id_tag, 0, self.clock.now
        )
        return int(decision.transaction)

    async def reading(self, connector: int, transaction_id: int, wh: int, minute: int) -> None:
        at = self.clock.now + timedelta(minutes=minute)
        await self.ocpp.record_meter(MeterSample("cp1", connector, str(transaction_id), wh, at))

    async def whole_session(self, zap: bool, claim_refund: bool) -> str:
        opened = await self.paid_session(1, zap)
        transaction_id = await self.start(opened, 1)
        for minute in range(1, 5):
            await self.reading(1, transaction_id, 500 * minute, minute)
        stopped_at = self.clock.now + timedelta(minutes=5)
        await self.ocpp.stop_transaction(
            "cp1", str(transaction_id), 2_500, stopped_at, "Local", None
        )
        offer = await self.refunds.request(opened.session_id, opened.secret)
        await self.refunds.request(opened.session_id, opened.secret)  # a wallet scans twice
        if claim_refund:
            await self.refunds.claim(opened.session_id, offer.k1, self.wallet_invoice(offer))
        return opened.session_id

    def wallet_invoice(self, offer: object) -> str:
        amount = min_refund(offer.amount_msat)  # type: ignore[attr-defined]
        return mint_invoice(
            private_key_hex=NODE_KEY,
            network="bcrt",
            amount_msat=amount,
            payment_hash=os.urandom(32).hex(),
            payment_secret=os.urandom(32).hex(),
            created_at=int(self.clock.now.timestamp()),
            expiry_s=3600,
            memo="refund",
            description_hash=None,
        )

    async def run_effects(self) -> None:
        """What the effect runner does: every due row runs (refunds are paid) and is done."""
        while rows := await self.outbox.due(self.clock.now, limit=1000):
            for row in rows:
                if row.kind == "pay_refund":
                    await self.refunds.pay(row)
                await self.outbox.done(row.id, self.clock.now)

    async def give_up_one_effect(self, day: int) -> None:
        await self.db.write(
            lambda conn: queue_effect(
                conn,
                key=f"hopeless:{day}",
                kind="notify",
                payload={},
                session_id=None,
                now=self.clock.now,
            )
        )
        async with self.db.reader() as conn:
            row_id = await conn.scalar(
                select(outbox.c.id).where(outbox.c.idempotency_key == f"hopeless:{day}")
            )
        row = OutboxRow(int(row_id), f"hopeless:{day}", "notify", {}, None, MAX_ATTEMPTS - 1)
        assert not await self.outbox.failed(row, "no relay took it", self.clock.now)

    async def claims(self, count: int) -> None:
        now = self.clock.now.timestamp()
        for index in range(count):
            kind = (4, 1059, 9735, 27235)[index % 4]
            assert await claim_event(self.db, os.urandom(32).hex(), kind, "p" * 64, now)


async def _counts(db: Database, tables: tuple[Table, ...]) -> dict[str, int]:
    async with db.reader() as conn:
        return {
            table.name: int(await conn.scalar(select(func.count()).select_from(table)) or 0)
            for table in tables
        }


async def _history(db: Database, running_transaction: int) -> dict[str, int]:
    """Rows of the growing tables, but for the readings of the session that still charges."""
    counts = await _counts(db, GROWING)
    async with db.reader() as conn:
        counts["meter_readings"] -= int(
            await conn.scalar(
                select(func.count())
                .select_from(meter_readings)
                .where(meter_readings.c.transaction_id == running_transaction)
            )
            or 0
        )
    return counts


def _no_fsync(db: Database) -> None:
    """This test is about row counts, not durability: SQLite need not wait for the disk."""
    if db.dialect == "sqlite":

        def pragma(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA synchronous=OFF")

        event.listen(db.engine.sync_engine, "connect", pragma)


async def _money(db: Database) -> dict[str, int]:
    counts = await _counts(db, MONEY)
    async with db.reader() as conn:
        counts["refunds that moved money"] = int(
            await conn.scalar(
                select(func.count()).select_from(refunds).where(refunds.c.state != "offered")
            )
            or 0
        )
    return counts


async def test_weeks_of_traffic_level_off_and_keep_every_money_record(db: Database) -> None:
    _no_fsync(db)
    await db.engine.dispose()  # connections open from now on skip the fsync
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    await ChargerStore(db).sync((PROFILE,))
    await ChargerStore(db).set_online("cp1", True, clock.now)  # offers need it connected
    store = SessionStore(db)
    backend = MemoryLightning()
    config = SessionsConfig()
    site = Site(
        db=db,
        clock=clock,
        store=store,
        backend=backend,
        payments=PaymentService(
            store,
            backend,
            config,
            meter_interval_s=60,
            clock=StromClock(clock),
            session_secrets=SessionSecrets(bytes(32)),
            tariffs=TariffBook(TariffRepository(db), SYSTEM_CLOCK),
        ),
        ocpp=DatabaseOcppCore(store, clock=StromClock(clock)),
        refunds=RefundService(store, backend, config, network="bcrt", clock=StromClock(clock)),
        outbox=OutboxStore(db),
    )
    retention = Retention(db, POLICY, clock=StromClock(clock))
    long_session = await site.paid_session(2, zap=True, amount_msat=400_000_000)
    long_transaction = await site.start(long_session, 2)
    stopped: list[str] = []
    levels: dict[int, dict[str, int]] = {}
    for day in range(DAYS):
        for index in range(SESSIONS_PER_DAY):
            stopped.append(await site.whole_session(zap=index == 0, claim_refund=index == 1))
        await site.reading(2, long_transaction, 1_000 * (day + 1), 30)
        await site.ocpp.stop_transaction("cp1", str(900_000 + day), 1, clock.now, "Local", None)
        await site.claims(DMS_PER_DAY)
        await site.run_effects()
        await site.give_up_one_effect(day)
        clock.now += timedelta(hours=23)
        money = await _money(db)
        await retention.sweep()
        assert await _money(db) == money, f"day {day}: the sweep deleted a money record"
        levels[day] = await _history(db, long_transaction)
        clock.now += timedelta(hours=1)

    # Level: the longest rule here is a week (dead effects); after it, the counts are flat.
    assert levels[DAYS - 1] == levels[LEVEL_FROM], levels
    # Claims: gift wraps are kept two days, the other kinds minutes to a week.
    assert levels[LEVEL_FROM]["nostr_events"] < 4 * DMS_PER_DAY
    # Every money record is there, and every session balances.
    money = await _money(db)
    assert money["sessions"] == money["payments"] == DAYS * SESSIONS_PER_DAY + 1
    assert money["refunds that moved money"] == DAYS
    for session_id in stopped:
        session = await store.get(session_id)
        assert session.state in (State.STOPPED, State.REFUNDED)
        totals = await db.read(partial(ledger_totals, session_id=session_id))
        assert totals.get("payment", 0) == session.paid_msat
    # The running session kept every reading, the oldest included.
    async with db.reader() as conn:
        kept = await conn.scalar(
            select(func.count())
            .select_from(meter_readings)
            .where(meter_readings.c.transaction_id == long_transaction)
        )
    assert kept == DAYS
    assert (await store.get(long_session.session_id)).state is State.CHARGING
    # Withdraw offers of the last day are all that is left of the offers (a wallet scans twice).
    offers = (await _counts(db, (refunds,)))["refunds"] - money["refunds that moved money"]
    assert offers <= 2 * SESSIONS_PER_DAY
