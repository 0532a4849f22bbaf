"""Fuzz targets count their cases in :mod:`tests.fuzz.counts`; the totals are printed at the
end of the run (``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack, running_stack
from tests.fuzz.counts import CASES, SCALE, examples
from tests.ocpp.conftest import start_harness  # an OCPP server on 127.0.0.1, in-memory core

__all__ = ["CASES", "SCALE", "examples", "start_harness"]


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """A whole Strom with a simulated charger (see ``tests/e2e/conftest.py``)."""
    async with running_stack(tmp_path) as running:
        yield running
