"""SIGKILL Strom at kill points across a paid session; nothing paid is lost or paid twice.

CI runs a bounded campaign with a charger speaking OCPP 1.6 (every named point once, then a
fixed sample of the generic commit points; ``STROM_CRASH_POINTS`` sets how many), a seeded
sample of the reservation story's points (``STROM_CRASH_POINTS_RESERVATION``), and a
seeded sample of it with a charger speaking OCPP 2.0.1 (``STROM_CRASH_POINTS_201``: the points
where the versions differ first, see :func:`version_sample`). ``python -m tests.crash.harness
--points N --random M [--ocpp 2.0.1]`` runs longer ones.
See ``tests/crash/harness.py`` for what is checked.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from strom_core.crashpoints import POINTS, _target
from tests.crash.harness import (
    all_points,
    campaign,
    refund_problems,
    reservation_sample,
    run_point,
    session_problems,
    version_sample,
)

ROOT = Path(__file__).resolve().parents[2]
COUNT = int(os.environ.get("STROM_CRASH_POINTS", "12"))
RANDOM = random.Random(2026)
# Two kills at a time drawn from a seeded generator, wherever the story is then.
KILLS = [*campaign(COUNT, seed=2026), *(f"random:{RANDOM.uniform(0.5, 6):.2f}" for _ in range(2))]
COUNT_201 = int(os.environ.get("STROM_CRASH_POINTS_201", "4"))
KILLS_201 = [*version_sample(COUNT_201, seed=2026), f"random:{RANDOM.uniform(0.5, 6):.2f}"]
COUNT_RESERVATION = int(os.environ.get("STROM_CRASH_POINTS_RESERVATION", "2"))
KILLS_RESERVATION = reservation_sample(COUNT_RESERVATION, seed=2026)
RUNS = [
    *(pytest.param("1.6", point, id=f"1.6-{point}") for point in KILLS),
    *(pytest.param("1.6", point, id=f"1.6-{point}") for point in KILLS_RESERVATION),
    *(pytest.param("2.0.1", point, id=f"2.0.1-{point}") for point in KILLS_201),
]


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize(("ocpp_version", "point"), RUNS)
async def test_killed_at_a_point_strom_recovers_and_keeps_every_promise(
    ocpp_version: str, point: str, tmp_path: Path
) -> None:
    outcome = await run_point(tmp_path, point, ocpp_version)
    assert outcome.problems == [], (outcome, (tmp_path / "strom.log").read_text()[-4000:])
    assert outcome.killed == 1, f"{point} was never reached: the story does not pass it"


def test_the_campaign_has_at_least_fifty_distinct_points_and_every_name_is_in_the_code() -> None:
    assert len(set(all_points())) >= 50
    code = "\n".join(
        path.read_text()
        for package in ROOT.glob("*/__init__.py")
        if package.parent.name != "tests"
        for path in package.parent.rglob("*.py")
    )
    for name in POINTS:
        assert f'crashpoint("{name}")' in code, name


def test_an_unknown_crash_point_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown crash point"):
        _target("db.befor_commit")
    assert _target("db.after_commit:7") == ("db.after_commit", 7)
    assert _target(None) is None


def test_the_checks_see_a_paid_session_left_unfinished_and_a_refund_paid_twice() -> None:
    """The harness's verdict can fail: its checks on hand-made broken records."""
    stuck = SimpleNamespace(
        id="s1",
        state=SimpleNamespace(value="charging"),
        paid_msat=2_000,
        consumed_msat=0,
        refunded_msat=0,
        refundable_msat=2_000,
        overrun_msat=0,
        energy_wh=0,
    )
    problems = session_problems(stuck, settled_msat=3_000)
    assert any("left in charging" in p for p in problems)
    assert any("paid 2000 != 3000" in p for p in problems)
    twice = [SimpleNamespace(id=i, payment_hash="h", state="paid") for i in ("r1", "r2")]
    assert refund_problems(twice) == ["a refund invoice was recorded as paid twice"]
