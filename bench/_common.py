"""Helpers shared by the benchmarks: a Strom on free 127.0.0.1 ports, a bounded load loop,
percentiles. Benchmarks print figures; nothing here asserts a timing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from strom.app import Strom
    from strom_core.config import StromConfig

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESULT_PREFIX = "BENCH-RESULT "


def quiet() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)


def result(
    name: str,
    strom: float,
    baseline: float,
    unit: str,
    target: str,
    met: bool | None,
    *,
    ratio: float | None = None,
    note: str = "",
) -> None:
    """Print one machine-readable result line (collected by run_all.py)."""
    if ratio is None:
        ratio = strom / baseline if baseline else float("nan")
    print(
        RESULT_PREFIX
        + json.dumps(
            {
                "name": name,
                "strom": strom,
                "baseline": baseline,
                "unit": unit,
                "ratio": ratio,
                "target": target,
                "met": met,
                "note": note,
            }
        ),
        flush=True,
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def write_profiles(folder: Path, ids: list[str], passwords: dict[str, str] | None = None) -> None:
    """One profile file per charger id, from the scaffold's template.

    With ``passwords`` each charger gets a generated OCPP password, as `strom init` and the API
    make them (its hash in the profile); the keys are put into the dict.
    """
    from strom.app import ocpp_password_key
    from strom.scaffold import PROFILE_TOML

    key = ocpp_password_key(folder / "data") if passwords is not None else None
    for charger_id in ids:
        text = PROFILE_TOML.format(charger_id=charger_id)
        if key is not None and passwords is not None:
            made = key.new_password()
            text = text.replace('password_hash = ""', f'password_hash = "{made.password_hash}"')
            passwords[charger_id] = made.key
        (folder / "profiles" / f"{charger_id}.toml").write_text(text)


def strom_config(
    folder: Path,
    *,
    chargers: list[str],
    env: dict[str, str] | None = None,
    passwords: dict[str, str] | None = None,
) -> StromConfig:
    """Write a scaffold with the given chargers and load it on free local ports."""
    from strom.scaffold import write_scaffold

    write_scaffold(folder, charger_id=chargers[0] if chargers else "bench-0")
    if not chargers:
        for path in (folder / "profiles").glob("*.toml"):
            path.unlink()
    write_profiles(folder, chargers if passwords is not None else chargers[1:], passwords)
    return load_strom_config(folder, env)


def load_strom_config(folder: Path, env: dict[str, str] | None = None) -> StromConfig:
    """Load a written configuration on port 0: Strom binds free ports itself and reports them
    (``strom.config.server.public_url``, ``strom.ocpp_port``)."""
    from strom.config import load_config

    config = load_config(
        folder / "strom.toml",
        environ={
            "STROM_SERVER__PORT": "0",
            "STROM_OCPP__HOST": '"127.0.0.1"',
            "STROM_OCPP__PORT": "0",
            "STROM_LOGGING__LEVEL": '"WARNING"',
            **(env or {}),
        },
    )
    return config


@asynccontextmanager
async def running_strom(config: StromConfig, *, unlimited: bool = False) -> AsyncIterator[Strom]:
    """Strom.open + serve until ready; optionally with rate limits out of the way."""
    from lnurl_server.ratelimit import RateLimiter
    from strom.app import Strom

    strom = await Strom.open(config)
    if unlimited:
        strom.front.per_client = RateLimiter(per_minute=1e9, burst=10**9)
        strom.front.per_charger = RateLimiter(per_minute=1e9, burst=10**9)
    stop = asyncio.Event()
    server = asyncio.create_task(strom.serve(stop))
    try:
        await asyncio.wait_for(strom.ready.wait(), 60)
        yield strom
    finally:
        stop.set()
        await server


async def load(
    request: Callable[[int], Awaitable[bool]],
    *,
    connections: int,
    seconds: float,
    max_requests: int,
    warmup_s: float = 0.5,
) -> tuple[float, int, int]:
    """Run ``request`` from ``connections`` workers, bounded by time and count.

    Returns (successful requests per second after warm-up, successes, failures).
    """
    ok = failed = 0
    counted = 0
    issued = 0
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + seconds
    t0 = None

    async def worker() -> None:
        nonlocal ok, failed, counted, issued, t0
        while issued < max_requests:
            now = time.perf_counter()
            if now >= stop_at:
                return
            issued += 1
            good = await request(issued)
            now = time.perf_counter()
            if good:
                ok += 1
                if now >= measure_from:
                    if t0 is None:
                        t0 = now
                    counted += 1
            else:
                failed += 1

    await asyncio.gather(*(worker() for _ in range(connections)))
    end = time.perf_counter()
    if t0 is None or end - t0 <= 0:
        elapsed = end - start
        return (ok / elapsed if elapsed > 0 else 0.0), ok, failed
    return counted / (end - t0), ok, failed


def cpu_count() -> int:
    return os.cpu_count() or 1
