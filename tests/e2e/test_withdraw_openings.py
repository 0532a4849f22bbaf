"""Opening a session's withdraw link, many times at once: one offer, one stop, one wait.

Wallets retry and people tap twice; whoever holds the link must not make Strom write a row or
poll the database per opening. Concurrent openings of one session share one attempt; opening
again while the offer is fresh gives the same ``k1``; a per-session bucket bounds new attempts;
and the wait for an offline charger to confirm the stop has one deadline in all.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select

from strom_storage.schema import refunds
from tests.e2e.conftest import Stack, running_stack

STOP_WAIT_S = 1


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """Strom with the withdraw link's stop wait set to 1 s (the setting; 20 s by default)."""
    env = {"STROM_SESSIONS__WITHDRAW_STOP_WAIT_S": str(STOP_WAIT_S)}
    async with running_stack(tmp_path, env) as running:
        yield running


@contextmanager
def session_reads(secret_checks: int = 0) -> Iterator[tuple[list[str], threading.Event]]:
    """Every statement that reads the sessions or refunds tables, while the block runs.

    Statements of every engine are seen: the one-hop reads run on an engine of their own. The
    event is set once ``secret_checks`` reads of a session's secret hash were seen.
    """
    seen: list[str] = []
    checked = threading.Event()

    def record(*args: Any) -> None:
        statement = str(args[2])
        if statement.lstrip().upper().startswith("SELECT") and (
            "FROM sessions" in statement or "FROM refunds" in statement
        ):
            seen.append(statement)
            if sum("sessions.secret_hash" in read for read in seen) >= secret_checks:
                checked.set()

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen, checked
    finally:
        event.remove(Engine, "before_cursor_execute", record)


async def offer_rows(stack: Stack) -> int:
    async with stack.strom.db.reader() as conn:
        return int(await conn.scalar(select(func.count()).select_from(refunds)) or 0)


def link(status: dict[str, Any]) -> str:
    return str(status["withdraw_url"]).replace("lnurlw://", "http://", 1)


async def test_fifty_openings_of_one_withdraw_link_make_one_offer(stack: Stack) -> None:
    stack.charger.connectors[1].operative = False  # rejected start: all 1,500 sat refundable
    status_url, _ = await stack.pay(1_500_000)
    status = await stack.wait_state(status_url, "start_failed")

    with session_reads(secret_checks=50) as (reads, all_checked):
        # At once, however quickly the one attempt ends: it writes its offer only after every
        # opening has checked its secret (the database's writer is held until then).
        held = asyncio.ensure_future(stack.strom.db.write(lambda _conn: all_checked.wait(10)))
        answers = await asyncio.gather(*(stack.get(link(status)) for _ in range(50)))
        assert await held

    assert all(a.get("tag") == "withdrawRequest" for a in answers), answers
    assert {(a["k1"], a["maxWithdrawable"]) for a in answers} == {(answers[0]["k1"], 1_500_000)}
    assert await offer_rows(stack) == 1
    # One secret check per opening; the session, the offer and the insert once.
    assert len(reads) <= 50 + 10, len(reads)

    # Opening it again while the offer is fresh gives the same k1; past the per-session
    # bucket, a clear refusal. No new row either way.
    again = [await stack.get(link(status)) for _ in range(10)]
    served = [a for a in again if a.get("tag") == "withdrawRequest"]
    refused = [a for a in again if a.get("status") == "ERROR"]
    assert len(served) + len(refused) == 10
    assert {a["k1"] for a in served} == {answers[0]["k1"]}
    assert 3 <= len(served) < 10
    assert {a["reason"] for a in refused} == {
        "this withdraw link was opened too often just now; wait a few seconds and scan it again"
    }
    assert await offer_rows(stack) == 1

    invoice = await stack.wallet.create_invoice(1_500_000)
    claimed = await stack.get(str(answers[7]["callback"]), k1=answers[7]["k1"], pr=invoice.bolt11)
    assert claimed == {"status": "OK"}
    assert (await stack.wait_state(status_url, "refunded"))["refunded_msat"] == 1_500_000
    await stack.ledgers_balance()


async def charging_charger_goes_offline(stack: Stack) -> tuple[str, dict[str, Any]]:
    status_url, _ = await stack.pay(2_000_000)
    status = await stack.wait_state(status_url, "charging")
    stack.charger.stop()  # offline: the stop will not be confirmed
    await stack.charger.wait_until(lambda: not stack.charger.connected)
    return status_url, status


async def test_an_offline_charger_is_waited_for_once_not_per_state(stack: Stack) -> None:
    """The stop wait is one deadline: not once while charging and again while stopping."""
    status_url, status = await charging_charger_goes_offline(stack)

    started = time.monotonic()
    answer = await stack.get(link(status))
    waited = time.monotonic() - started

    assert answer == {
        "status": "ERROR",
        "reason": "the charger has not confirmed the stop yet; scan again in a few seconds",
    }
    assert STOP_WAIT_S <= waited < 1.8 * STOP_WAIT_S, waited
    assert (await stack.get(status_url))["state"] == "stopping"


async def test_fifty_openings_during_the_stop_share_one_wait(stack: Stack) -> None:
    _, status = await charging_charger_goes_offline(stack)

    started = time.monotonic()
    with session_reads() as (reads, _):
        answers = await asyncio.gather(*(stack.get(link(status)) for _ in range(50)))
    waited = time.monotonic() - started

    assert {a.get("reason") for a in answers} == {
        "the charger has not confirmed the stop yet; scan again in a few seconds"
    }
    assert waited < 1.8 * STOP_WAIT_S, waited
    # One secret check per opening, and one waiter reading the session when it changes and
    # about once a second (others: the stop's own transaction, the effect runner). Fifty
    # openings polling on their own would read it hundreds of times.
    assert len(reads) <= 50 + 20, len(reads)
    assert await offer_rows(stack) == 0
    await stack.ledgers_balance()
