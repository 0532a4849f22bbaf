"""Run every benchmark and print one Markdown table of the figures.

    python bench/run_all.py --small    # seconds-long smoke sizes (CI): under 3 minutes
    python bench/run_all.py --full     # the sizes the targets are stated for

Each benchmark runs as its own process. A missed target is a figure in the table, never a
failure: the exit status is non-zero only when a benchmark crashed or printed nothing usable.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from _common import RESULT_PREFIX  # noqa: E402

Row = dict[str, object]


def ours(stdout: str) -> list[Row]:
    return [
        json.loads(line[len(RESULT_PREFIX) :])
        for line in stdout.splitlines()
        if line.startswith(RESULT_PREFIX)
    ]


def _num(pattern: str, text: str) -> float:
    match = re.search(pattern, text)
    if match is None:
        raise ValueError(f"no match for {pattern!r}")
    return float(match.group(1).replace(",", ""))


def ocpp_rows(stdout: str) -> list[Row]:
    held = _num(r"chargers held\s*:\s*([\d,]+)", stdout)
    rate = _num(r"CALLs answered per second\s*:\s*([\d,.]+)", stdout)
    rss = _num(r"server RSS per charger\s*:\s*([\d.]+) KB", stdout)
    ours_us = _num(r"server CPU per CALL\s*:\s*([\d.]+)", stdout)
    base_us = _num(r"baseline CPU per CALL\s*:\s*([\d.]+)", stdout)
    return [
        {
            "name": f"OCPP server CPU per CALL, {held:,.0f} chargers (µs)",
            "strom": ours_us,
            "baseline": base_us,
            "ratio": ours_us / base_us,
            "target": "<= 1.3x a central system on the ocpp library",
            "met": ours_us <= 1.3 * base_us,
            "unit": "µs",
            "note": "baseline: mobilityhouse ocpp ChargePoint with @on handlers, same load",
        },
        {
            "name": f"OCPP CALLs answered, {held:,.0f} chargers (/s)",
            "strom": rate,
            "baseline": None,
            "ratio": None,
            "target": ">= 3,000 messages/s",
            "met": rate >= 3000,
            "unit": "/s",
        },
        {
            "name": f"OCPP server RSS per charger held, {held:,.0f} (KB)",
            "strom": rss,
            "baseline": None,
            "ratio": None,
            "target": "<= 25 KB (at 10,000)",
            "met": rss <= 25,
            "unit": "KB",
        },
    ]


def agents_rows(stdout: str) -> list[Row]:
    n = _num(r"agents:\s*([\d,]+)", stdout)
    seconds = _num(r"publish every status:\s*([\d.]+) s", stdout)
    rss = _num(r"RSS per agent:\s*([\d.]+) KB", stdout)
    base = _num(r"baseline, no agents:\s*([\d.]+) s", stdout)
    return [
        {
            "name": f"agents: every status published, {n:,.0f} agents (s)",
            "strom": seconds,
            "baseline": base,
            "ratio": seconds / base,
            "note": "baseline: the same events signed and published through the same pool, "
            "no agents",
            "target": "<= 10 s for 10,000",
            "met": seconds * 10_000 / n <= 10,
            "unit": "s",
        },
        {
            "name": f"agents: RSS per agent, {n:,.0f} (KB)",
            "strom": rss,
            "baseline": None,
            "ratio": None,
            "target": "<= 10 KB (at 10,000)",
            "met": rss <= 10,
            "unit": "KB",
        },
    ]


# (script, --small args, --full args, parser, timeout in seconds)
BENCHMARKS: list[tuple[str, list[str], list[str], Callable[[str], list[Row]], float]] = [
    (
        "lnurl_throughput.py",
        ["--seconds", "2", "--connections", "16"],
        ["--seconds", "10", "--connections", "32"],
        ours,
        300,
    ),
    (
        "payment_to_power.py",
        ["--chargers", "10", "--connectors", "5"],
        ["--chargers", "100", "--connectors", "10"],
        ours,
        400,
    ),
    (
        "nostr_intake.py",
        ["--events", "300", "--seconds", "1", "--rounds", "1"],
        ["--events", "2000", "--seconds", "3", "--rounds", "3"],
        ours,
        200,
    ),
    ("storage_hotpath.py", ["--sessions", "300"], ["--sessions", "3000"], ours, 200),
    ("startup.py", ["--chargers", "1000"], ["--chargers", "1000", "--restart"], ours, 300),
    (
        "ocpp_connections.py",
        ["--chargers", "200", "--seconds", "3", "--settle", "1", "--baseline"],
        ["--chargers", "10000", "--seconds", "20", "--baseline"],
        ocpp_rows,
        600,
    ),
    (
        "ocpp_restart.py",
        ["--chargers", "200", "--concurrency", "200"],
        ["--chargers", "10000", "--concurrency", "1000", "--baseline"],
        ours,
        600,
    ),
    ("agents.py", ["--agents", "300"], ["--agents", "10000"], agents_rows, 600),
]


def fmt(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # nan
            return "—"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}"
    return str(value)


def run_one(
    script: str, argv: list[str], parse: Callable[[str], list[Row]], timeout: float
) -> tuple[list[Row], str | None]:
    """Run one benchmark; returns its rows and, if it crashed, why."""
    cmd = [sys.executable, str(BENCH / script), *argv]
    print(f"running bench/{script} {' '.join(argv)}", file=sys.stderr, flush=True)
    t = time.perf_counter()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    except subprocess.TimeoutExpired:
        return [], f"{script}: timed out after {timeout:.0f} s"
    print(f"  ... {time.perf_counter() - t:.1f} s", file=sys.stderr, flush=True)
    if out.returncode != 0:
        return [], f"{script}: exit {out.returncode}\n{out.stderr[-2000:]}"
    try:
        got = parse(out.stdout)
    except (ValueError, json.JSONDecodeError) as exc:
        return [], f"{script}: unreadable output ({exc})\n{out.stdout[-2000:]}"
    return got, None if got else f"{script}: printed no result"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="smoke sizes (default)")
    size.add_argument("--full", action="store_true", help="the sizes targets are stated for")
    parser.add_argument("--lnbits", action="store_true", help="LNbits baseline for the callback")
    parser.add_argument("--only", nargs="*", help="run only these scripts")
    args = parser.parse_args()

    rows: list[Row] = []
    crashed: list[str] = []
    started = time.perf_counter()
    for script, small, full, parse, timeout in BENCHMARKS:
        if args.only and script not in args.only and script.removesuffix(".py") not in args.only:
            continue
        argv = list(full if args.full else small)
        if script == "lnurl_throughput.py" and args.lnbits:
            argv.append("--lnbits")
        got, failure = run_one(script, argv, parse, timeout)
        if failure:
            crashed.append(failure)
        rows.extend(got)

    mode = "--full" if args.full else "--small"
    print(f"Benchmarks ({mode}, {time.perf_counter() - started:.0f} s)\n")
    print("| benchmark | Strom | baseline | ratio | target | met? |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        met = row.get("met")
        print(
            f"| {row['name']} | {fmt(row['strom'])} | {fmt(row.get('baseline'))} | "
            f"{fmt(row.get('ratio'))} | {row['target']} | "
            f"{'yes' if met else 'no' if met is not None else '—'} |"
        )
    notes = [f"- {r['name']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        print("\n" + "\n".join(notes))
    for failure in crashed:
        print(f"\nCRASHED: {failure}", file=sys.stderr)
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
