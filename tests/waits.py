"""Waiting on a condition instead of sleeping a fixed time and hoping it has happened."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, *, within_s: float = 10.0
) -> None:
    """Return as soon as ``condition()`` holds (checked every 10 ms); fail after ``within_s``.

    Raises:
        AssertionError: it did not hold within ``within_s`` (the message says ``what``).
    """
    try:
        async with asyncio.timeout(within_s):
            while True:
                holds = condition()
                if not isinstance(holds, bool):
                    holds = await holds
                if holds:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within {within_s:g} s: {what}") from None
