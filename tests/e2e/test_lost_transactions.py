"""A charger that comes back without the driver's transaction never locks the driver's money.

Over real HTTP and a real OCPP websocket (see conftest), with a simulated charger whose
firmware does not keep transactions across a power loss, speaking OCPP 1.6 and 2.0.1. The
orphan grace is 1 s; with the
1-s meter interval of these stacks the check waits two intervals (2 s).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from strom.app import Strom
from strom_lightning import FakeBackend, FakeDriverWallet
from strom_services.orphans import CHECK_KIND
from strom_storage.schema import (
    audit_log,
    meter_readings,
    ocpp_transactions,
    outbox,
    refunds,
    sessions,
)
from tests.e2e.conftest import BOTH_VERSIONS, Stack, running_stack
from tests.e2e.ocpp_frames import remote_stops, stop_accepted, stop_report
from tests.e2e.test_pay_charge_refund import claim_refund

GRACE = {"STROM_SESSIONS__ORPHAN_GRACE_S": "1"}
FORGETFUL = {"persist_transactions": False}


async def charge(stack: Stack, amount_msat: int, energy_wh: int) -> tuple[str, int | str]:
    """Pay and charge until ``energy_wh`` is metered; returns (status url, the charger's
    transaction id)."""
    status_url, _ = await stack.pay(amount_msat)
    status = await stack.wait_state(status_url, "charging")
    while status["energy_wh"] < energy_wh:
        await asyncio.sleep(0.05)
        status = await stack.get(status_url)
    transaction_id = stack.charger.connectors[1].transaction_id
    assert transaction_id is not None
    return status_url, transaction_id


async def reported_energy_wh(stack: Stack, session_id: str) -> int:
    """The highest register the charger reported for the session's transaction, minus
    meterStart."""
    async with stack.strom.db.reader() as conn:
        transaction_id = await conn.scalar(
            select(sessions.c.transaction_id).where(sessions.c.id == session_id)
        )
        highest = await conn.scalar(
            select(func.max(meter_readings.c.register_wh)).where(
                meter_readings.c.transaction_id == transaction_id
            )
        )
        start = await conn.scalar(
            select(ocpp_transactions.c.meter_start_wh).where(
                ocpp_transactions.c.id == transaction_id
            )
        )
    return int(highest) - int(start)


async def pending(stack_or_strom: Stack | Strom, kind: str) -> int:
    strom = stack_or_strom.strom if isinstance(stack_or_strom, Stack) else stack_or_strom
    async with strom.db.reader() as conn:
        count = await conn.scalar(
            select(func.count()).where(outbox.c.kind == kind, outbox.c.state == "pending")
        )
    return int(count or 0)


@BOTH_VERSIONS
async def test_a_charger_that_reboots_without_the_transaction_frees_the_money_and_connector(
    tmp_path: Path, ocpp_version: str
) -> None:
    async with running_stack(
        tmp_path, GRACE, simulator=FORGETFUL, ocpp_version=ocpp_version
    ) as stack:
        status_url, _ = await charge(stack, 3_000_000, 300)
        stack.charger.power_cut()  # comes back Preparing (the car is still plugged in)
        stopped = await stack.wait_state(status_url, "stopped", within_s=20)
        assert stack.charger.connectors[1].transaction_id is None
        assert stopped["stop_reason"] == "charger_lost"
        # Billed from the last reading the charger reported, never more.
        assert stopped["energy_wh"] == await reported_energy_wh(stack, str(stopped["id"]))
        assert 0 < stopped["consumed_msat"] < stopped["paid_msat"]
        assert stopped["refundable_msat"] == stopped["paid_msat"] - stopped["consumed_msat"]
        # The withdraw link pays the remainder at once.
        offer, before = await claim_refund(stack, status_url)
        final = await stack.wait_state(status_url, "refunded")
        assert final["refunded_msat"] == offer["maxWithdrawable"] == stopped["refundable_msat"]
        assert await stack.wallet.received_msat() - before == final["refunded_msat"]
        # The connector takes the next driver's payment and starts.
        next_url, _ = await stack.pay(2_000_000)
        await stack.wait_state(next_url, "charging")
        async with stack.strom.db.reader() as conn:
            actions = list(await conn.scalars(select(audit_log.c.action)))
        assert actions == ["transaction_lost"]
        await stack.ledgers_balance()


@BOTH_VERSIONS
async def test_a_late_stop_transaction_after_the_lost_end_is_billed_once_and_refunds_nothing(
    tmp_path: Path, ocpp_version: str
) -> None:
    async with running_stack(
        tmp_path, GRACE, simulator=FORGETFUL, ocpp_version=ocpp_version
    ) as stack:
        status_url, transaction_id = await charge(stack, 3_000_000, 300)
        stack.charger.power_cut()
        await stack.wait_state(status_url, "stopped", within_s=20)
        await claim_refund(stack, status_url)
        refunded = await stack.wait_state(status_url, "refunded")
        received = await stack.wallet.received_msat()
        before = await stack.strom.sessions.get(str(refunded["id"]))
        # The stop the charger had queued after all, 400 Wh above the bill.
        meter_stop = before.meter_start_wh + before.energy_wh + 400
        action, late = stop_report(stack.charger, transaction_id, meter_stop, "PowerLoss")
        assert stop_accepted(await stack.charger.call(action, late))
        assert stop_accepted(await stack.charger.call(action, late))  # resent: no change
        after = await stack.strom.sessions.get(before.id)
        assert (after.state, after.consumed_msat, after.refunded_msat, after.refundable_msat) == (
            before.state,
            before.consumed_msat,
            before.refunded_msat,
            0,
        )
        assert after.overrun_msat == before.overrun_msat + 100_000  # 400 Wh at 250 sat/kWh
        assert await stack.wallet.received_msat() == received
        async with stack.strom.db.reader() as conn:
            paid_refunds = await conn.scalar(select(func.count()).where(refunds.c.state == "paid"))
        assert paid_refunds == 1
        await stack.ledgers_balance()


@BOTH_VERSIONS
async def test_a_rejected_remote_stop_for_a_forgotten_transaction_ends_it_and_stops_asking(
    tmp_path: Path, ocpp_version: str
) -> None:
    async with running_stack(tmp_path, GRACE, ocpp_version=ocpp_version) as stack:
        status_url, _ = await charge(stack, 3_000_000, 200)
        # Firmware that lost the transaction without rebooting: no stop report will come,
        # no meter values for it; its connector status still says Charging.
        stack.charger.connectors[1].transaction_id = None
        status = await stack.get(status_url)
        withdraw = str(status["withdraw_url"]).replace("lnurlw://", "http://", 1)
        await stack.http.get(withdraw)  # the driver asks to stop: RemoteStop is rejected
        stopped = await stack.wait_state(status_url, "stopped", within_s=30)
        assert stopped["stop_reason"] == "charger_lost"
        for _ in range(200):  # the retried RemoteStop finishes instead of going on for ever
            if not await pending(stack, "remote_stop"):
                break
            await asyncio.sleep(0.05)
        assert await pending(stack, "remote_stop") == 0
        assert 1 <= len(remote_stops(stack.charger)) <= 4
        await claim_refund(stack, status_url)
        await stack.wait_state(status_url, "refunded")
        await stack.ledgers_balance()


@BOTH_VERSIONS
async def test_the_grace_period_survives_a_strom_restart(tmp_path: Path, ocpp_version: str) -> None:
    env = {"STROM_SESSIONS__ORPHAN_GRACE_S": "4"}
    async with running_stack(
        tmp_path, env, simulator=FORGETFUL, ocpp_version=ocpp_version
    ) as stack:
        status_url, _ = await charge(stack, 3_000_000, 200)
        stack.charger.power_cut()
        for _ in range(200):  # it comes back without the transaction: the check is armed
            if await pending(stack, CHECK_KIND):
                break
            await asyncio.sleep(0.05)
        assert await pending(stack, CHECK_KIND) == 1
        stack.charger.stop()  # and stays away while Strom restarts
        await stack.charger.wait_until(lambda: not stack.charger.connected)
        config = stack.strom.config
        status = await stack.get(status_url)
        assert status["state"] == "charging"
    # Strom is down; it starts again from its database, with no charger connected.
    strom = await Strom.open(config)
    stop = asyncio.Event()
    server = asyncio.create_task(strom.serve(stop))
    try:
        await asyncio.wait_for(strom.ready.wait(), 20)
        session_id = str(status["id"])
        for _ in range(400):
            session = await strom.sessions.get(session_id)
            if session.state.value != "charging":
                break
            await asyncio.sleep(0.05)
        assert session.state.value == "stopped"
        assert session.stop_reason == "charger_lost"
        assert isinstance(strom.backend, FakeBackend)
        wallet = FakeDriverWallet(strom.backend)
        offer = await strom.refunds.request(session_id, status_url.split("secret=", 1)[1])
        invoice = await wallet.create_invoice(offer.amount_msat, memo="refund")
        await strom.refunds.claim(session_id, offer.k1, invoice.bolt11)
        for _ in range(200):
            if (await strom.sessions.get(session_id)).state.value == "refunded":
                break
            await asyncio.sleep(0.05)
        assert (await strom.sessions.get(session_id)).state.value == "refunded"
        assert await wallet.received_msat() == session.refundable_msat
    finally:
        stop.set()
        await server
