"""Faults from outside: the lightning node down, a charger's link lost mid-session (with a
charger speaking OCPP 1.6 and one speaking 2.0.1).

Each ends with the ledger invariant checked for every session.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import func, select

from strom_lightning import FakeBackend
from strom_storage.schema import ledger_entries, payments, sessions
from tests.e2e.conftest import BOTH_VERSIONS, Stack
from tests.e2e.ocpp_frames import is_stop_report, stop_accepted
from tests.faults.conftest import node_is


async def count(stack: Stack, table: Any) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def test_with_the_lightning_node_down_the_wallet_is_told_and_nothing_starts(
    stack: Stack, expect_errors: list[object]
) -> None:
    backend = stack.strom.backend
    assert isinstance(backend, FakeBackend)
    offer = await stack.get(stack.pay_url)
    before = (await count(stack, sessions), await count(stack, payments))
    async with backend.outage():
        response = await stack.http.get(
            httpx.URL(str(offer["callback"])).copy_merge_params({"amount": "1500000"})
        )
        answer = response.json()
        assert answer["status"] == "ERROR"
        assert "lightning" in answer["reason"].lower()  # says what is wrong, in words
        assert "pr" not in answer
    assert (await count(stack, sessions), await count(stack, payments)) == before
    assert stack.charger.connectors[1].transaction_id is None  # nothing started
    await node_is(stack.strom.node, up=True)  # the watch finds it back by itself
    status_url, _ = await stack.pay(1_500_000)  # paying works again, without a restart
    await stack.wait_state(status_url, "charging")
    await stack.ledgers_balance()


@BOTH_VERSIONS
async def test_a_charger_that_loses_its_link_mid_session_is_metered_on_and_billed_once(
    stack: Stack,
) -> None:
    sent: list[dict[str, Any]] = []
    original = stack.charger.call

    async def recording(action: str, payload: Any) -> dict[str, Any]:
        if is_stop_report(action, payload):
            sent.append({"action": action, "payload": dict(payload)})
        return await original(action, payload)

    stack.charger.call = recording  # type: ignore[method-assign]
    status_url, _ = await stack.pay(3_000_000)
    status = await stack.wait_state(status_url, "charging")
    stack.charger.drop_connection()  # the network goes; the charger keeps charging
    await stack.charger.wait_until(lambda: not stack.charger.connected, 10)
    await stack.charger.wait_until(lambda: stack.charger.connected, 10)
    energy = status["energy_wh"]
    while status["energy_wh"] <= energy + 200:  # metered on after the reconnect
        await asyncio.sleep(0.05)
        status = await stack.get(status_url)
    await stack.charger.unplug(1)  # the driver ends it at the charger
    stopped = await stack.wait_state(status_url, "stopped", "closed")
    # The charger did not get the answer (say) and sends the same stop report again.
    assert len(sent) == 1
    assert stop_accepted(await original(sent[0]["action"], sent[0]["payload"]))
    again = await stack.get(status_url)
    assert (again["consumed_msat"], again["energy_wh"]) == (
        stopped["consumed_msat"],
        stopped["energy_wh"],
    )  # billed once
    async with stack.strom.db.reader() as conn:
        consumptions = await conn.scalar(
            select(func.count())
            .select_from(ledger_entries)
            .where(
                ledger_entries.c.session_id == stopped["id"], ledger_entries.c.kind == "consumption"
            )
        )
    assert consumptions == 1
    await stack.ledgers_balance()
