"""The races run against a whole Strom (``tests/e2e/conftest.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lnurl_server.ratelimit import RateLimiter
from tests.e2e.conftest import Stack, running_stack


@pytest.fixture
async def stack(tmp_path: Path, ocpp_version: str) -> AsyncIterator[Stack]:
    """A whole Strom whose invoice rate limits let a hundred callers in at once."""
    async with running_stack(tmp_path, ocpp_version=ocpp_version) as running:
        unlimited = RateLimiter(per_minute=10**9, burst=10**9)
        running.strom.front.per_client = running.strom.front.per_charger = unlimited
        yield running
