"""The benchmarks still run: ``bench/run_all.py --small`` as CI's smoke run.

Figures are never asserted here (speed is measured by the benchmarks, not by tests); this only
proves that every benchmark starts, finishes and prints its row, so none of them rots.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "LNURL payRequest",
    "LNURL callback",
    "payment to RemoteStart",
    "zap receipt to RemoteStart",
    "nostr zap requests validated",
    "storage hot path",
    "startup, 1000 chargers",
    "OCPP CALLs answered",
    "OCPP server CPU per CALL",
    "OCPP restart:",
    "agents: every status published",
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_benchmark_runs_at_smoke_size_and_prints_its_row() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--small"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    print(run.stdout)  # the table goes into the CI log
    assert run.returncode == 0, run.stderr[-4000:]
    table = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    for row in ROWS:
        assert any(line.startswith(f"| {row}") for line in table), (row, run.stdout)
