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

import pytest

from tests.soak.harness import INVARIANTS, SoakReport, run_soak
from tests.soak.plan import SoakSize

SEED = int(os.environ.get("STROM_SOAK_SEED", "2026"))
MINUTES = float(os.environ.get("STROM_SOAK_MINUTES", "0"))
SIZE = SoakSize.full(MINUTES) if MINUTES else SoakSize.ci()
TIMEOUT_S = int(SIZE.seconds) + 420


@pytest.mark.slow
@pytest.mark.timeout(TIMEOUT_S)
async def test_through_kills_of_strom_and_chargers_every_session_ends_and_every_msat_is_accounted(
    tmp_path: Path,
) -> None:
    lines: list[str] = []
    report = await run_soak(tmp_path, SIZE, SEED, say=lines.append)
    context = _context(report, tmp_path, lines)
    # The soak did what it is for: Strom died, chargers rebooted, one forgot a transaction.
    stats = report.stats
    assert stats["strom kills"] >= SIZE.strom_kills, f"Strom was not killed\n{context}"
    assert stats["transactions forgotten by a reboot"] >= 1, f"nothing forgotten\n{context}"
    assert stats["sessions lost by their charger"] >= 1, f"no session lost\n{context}"
    assert stats["paid sessions"] >= 2 * SIZE.chargers, f"too few sessions\n{context}"
    # Every invariant, each with its own message.
    assert report.problems["strom"] == [], f"Strom died by itself\n{context}"
    assert report.problems["final"] == [], f"a session did not end final\n{context}"
    assert report.problems["locked"] == [], f"something is left locked\n{context}"
    assert report.problems["money"] == [], f"the money does not add up\n{context}"
    assert report.problems["blocked"] == [], f"a charger is blocked\n{context}"
    assert set(report.problems) == set(INVARIANTS)


def _context(report: SoakReport, folder: Path, lines: list[str]) -> str:
    log = folder / "strom.log"
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    progress = "\n".join(lines[-40:])
    return f"{report.summary()}\n--- progress ---\n{progress}\n--- strom.log (end) ---\n{tail}"
