"""Fuzz targets count their cases; the totals are printed at the end of the run.

``STROM_FUZZ_SCALE`` multiplies every target's example count (default 1, sized for CI).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, running_stack

CASES: Counter[str] = Counter()
SCALE = float(os.environ.get("STROM_FUZZ_SCALE", "1"))


def examples(n: int) -> int:
    """A target's example count, scaled."""
    return max(1, int(n * SCALE))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not CASES:
        return
    terminalreporter.section("fuzz cases run")
    for target, count in sorted(CASES.items()):
        terminalreporter.write_line(f"{target:40s} {count:8,}")
    terminalreporter.write_line(f"{'total':40s} {sum(CASES.values()):8,}")


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A whole Strom with a simulated charger (see ``tests/e2e/conftest.py``)."""
    async with running_stack(tmp_path) as running:
        yield running
