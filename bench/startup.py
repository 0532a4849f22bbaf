"""Time from ``Strom.open`` to serving (``strom.ready``) with N configured chargers vs none.

Each case runs in a fresh child process on a fresh data folder (a first start: the database is
created and migrated, the chargers synced, the agents' keys made); ``--restart`` times a second
start on the same folder too. Imports are not counted (they are the same for both).

    python bench/startup.py --chargers 1000

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common


async def one_start(folder: Path, chargers: int, fresh: bool) -> dict[str, float]:
    from strom.app import Strom

    _common.quiet()
    ids = [f"bench-{n:05d}" for n in range(chargers)]
    if fresh:
        t = time.perf_counter()
        _common.strom_config(folder, chargers=ids)
        write_s = time.perf_counter() - t
    else:
        write_s = 0.0
    t0 = time.perf_counter()
    config = _common.load_strom_config(folder)
    tload = time.perf_counter()
    strom = await Strom.open(config)
    t1 = time.perf_counter()
    stop = asyncio.Event()
    server = asyncio.create_task(strom.serve(stop))
    await asyncio.wait_for(strom.ready.wait(), 120)
    t2 = time.perf_counter()
    stop.set()
    await server
    return {
        "load_s": tload - t0,
        "open_s": t1 - tload,
        "ready_s": t2 - t0,
        "write_s": write_s,
        "chargers": len(config.profiles),
    }


def child(folder: str, chargers: int, fresh: bool) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", folder, "--chargers", str(chargers)]
    if not fresh:
        cmd.append("--again")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=_common.REPO)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        raise RuntimeError(f"start with {chargers} chargers failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chargers", type=int, default=1000)
    parser.add_argument("--restart", action="store_true", help="also time a second start")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--again", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = asyncio.run(one_start(Path(args.child), args.chargers, not args.again))
        print(json.dumps(figures))
        return

    rows = {}
    for n in (0, args.chargers):
        with tempfile.TemporaryDirectory() as tmp:
            rows[(n, "first")] = child(tmp, n, True)
            if args.restart:
                rows[(n, "again")] = child(tmp, n, False)
    for (n, kind), r in rows.items():
        print(
            f"{n:6d} chargers, {kind} start: load config {r['load_s']:.3f} s, "
            f"open {r['open_s']:.3f} s, ready {r['ready_s']:.3f} s "
            f"({int(r['chargers'])} profiles loaded; config written in {r['write_s']:.2f} s)"
        )
    strom = rows[(args.chargers, "first")]["ready_s"]
    base = rows[(0, "first")]["ready_s"]
    _common.result(
        f"startup, {args.chargers} chargers (s)",
        strom,
        base,
        "s",
        "< 3 s",
        strom < 3.0,
        note="baseline: the same start with no charger configured",
    )


if __name__ == "__main__":
    main()
