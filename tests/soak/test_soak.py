"""The soak at a small size: kills of Strom and of chargers, one charger that forgets its
transaction on reboot; every session ends final, nothing is locked, the wallet's receipts
are the refunds, and no charger is blocked.

CI runs 35 s of faults (3 chargers, 12 paid sessions, 3 Strom kills, 3 charger faults; about
a minute and a half of wall time). ``STROM_SOAK_MINUTES=15`` runs the full size here, and
``STROM_SOAK_SEED`` another schedule; ``python -m tests.soak.harness`` runs either with its
progress on the terminal. See ``tests/soak/harness.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from strom_core.session import State
from tests.soak.drivers import Ride
from tests.soak.harness import INVARIANTS, SoakReport, run_soak
from tests.soak.invariants import Records, final_problems, locked_problems, money_problems
from tests.soak.plan import SoakSize

SEED = int(os.environ.get("STROM_SOAK_SEED", "2026"))
MINUTES = float(os.environ.get("STROM_SOAK_MINUTES", "0"))
SIZE = SoakSize.full(MINUTES) if MINUTES else SoakSize.ci()
TIMEOUT_S = int(SIZE.seconds + SIZE.quiet_s) + 300  # + the last sessions, drain, stop


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S)
async def test_through_kills_of_strom_and_chargers_every_session_ends_and_every_msat_is_accounted(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    report = await run_soak(tmp_path, SIZE, SEED, say=lines.append)
    context = _context(report, tmp_path, lines)
    # Every invariant, each with its own message.
    assert report.problems["strom"] == [], f"Strom died by itself\n{context}"
    assert report.problems["final"] == [], f"a session did not end final\n{context}"
    assert report.problems["locked"] == [], f"something is left locked\n{context}"
    assert report.problems["money"] == [], f"the money does not add up\n{context}"
    assert report.problems["blocked"] == [], f"a charger is blocked\n{context}"
    assert set(report.problems) == set(INVARIANTS)
    # And the soak did what it is for: Strom died, chargers rebooted, one forgot a transaction.
    stats = report.stats
    assert stats["strom kills"] >= SIZE.strom_kills, f"Strom was not killed\n{context}"
    assert stats["transactions forgotten by a reboot"] >= 1, f"nothing forgotten\n{context}"
    assert stats["sessions lost by their charger"] >= 1, f"no session lost\n{context}"
    assert stats["paid sessions"] >= 2 * SIZE.chargers, f"too few sessions\n{context}"


def test_the_checks_see_a_stuck_session_a_stuck_effect_and_a_refund_to_a_stranger() -> None:
    """The soak's verdict can fail: its checks on hand-made broken records."""
    records = Records()
    stuck = _session("s1", State.CHARGING, paid=3_000, refundable=3_000)
    done = _session("s2", State.REFUNDED, paid=2_000, consumed=500, refunded=1_500)
    records.sessions = {"s1": stuck, "s2": done}
    records.journal = {"s1": {"payment": 3_000}, "s2": {"payment": 2_000, "refund": 1_500}}
    records.payments = [_row(payment_hash="p1", session_id="s1", amount_msat=3_000)]
    records.payments += [_row(payment_hash="p2", session_id="s2", amount_msat=2_000)]
    for payment in records.payments:
        payment.__dict__.update(state="settled", kind="initial")
    records.refunds = [
        _row(id="r1", session_id="s2", state="paid", payment_hash="x", amount_msat=1_500),
        _row(id="r2", session_id="s1", state="paying", payment_hash="y", amount_msat=1),
    ]
    records.outbox = [_row(id=7, kind="remote_stop", session_id="s1", state="pending")]
    rides = [
        Ride(0, "soak-1", "withdraw", "s1", "p1", 3_000, outcome="gave up: stuck in charging"),
        Ride(1, "soak-2", "withdraw", "s2", "p2", 2_000, {"mine"}, outcome="refunded"),
    ]
    final = final_problems(records, rides)
    assert "session s1 at soak-1: paid, left charging" in final
    assert any("gave up" in line for line in final)
    locked = locked_problems(records)
    assert "outbox remote_stop #7 (session s1) pending" in locked
    assert "refund r2 of session s1 left paying" in locked
    money = money_problems(records, rides, received=[])
    assert any("which its payer did not make for it" in line for line in money)
    assert "wallet received 0 msat, sessions refunded 1500 msat" in money
    assert any("journal consumption 0 != 500" in line for line in money)


def _session(session_id: str, state: State, **msat: int) -> Any:
    amounts = {f"{name}_msat": msat.get(name, 0) for name in AMOUNTS}
    return SimpleNamespace(
        id=session_id,
        charger_id="soak-1",
        state=state,
        energy_wh=0,
        stop_reason="",
        payer="",  # prepaid, as every soak session
        postpaid=False,
        postpaid_msat=0,
        schedule=None,  # static prices: no per-interval energy to check
        interval_wh=(),
        **amounts,
    )


AMOUNTS = [
    "paid",
    "consumed",
    "refunded",
    "refundable",
    "refund_in_flight",
    "refund_fee",
    "overrun",
]


def _row(**columns: Any) -> Any:
    return SimpleNamespace(**columns)


def _context(report: SoakReport, folder: Path, lines: list[str]) -> str:
    log = folder / "strom.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    progress = "\n".join(lines[-40:])
    return f"{report.summary()}\n--- progress ---\n{progress}\n--- strom.log (end) ---\n{tail}"
