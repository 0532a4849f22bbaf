"""Requests per second of Strom's LNURL-pay front door against an aiohttp ceiling.

Starts each server in its own child process (pinned to CPU 0 where there are two CPUs) and
drives it from this process (CPU 1) with an aiohttp client over N keep-alive connections, for a
bounded time and a bounded number of requests, only to 127.0.0.1:

* ``ceiling``: a trivial aiohttp JSON endpoint (the framework's ceiling);
* ``payRequest``: Strom's ``GET /lnurlp/<charger>/1``;
* ``callback``: Strom's ``GET /lnurlp/<charger>/1/callback?amount=…`` (each makes an invoice
  with the fake backend and commits the session to SQLite before answering). Strom runs with
  its rate limiters replaced by unlimited ones, so the figure is the work, not the limit;
* with ``--lnbits``: LNbits (FakeWallet) ``POST /api/v1/payments`` invoice creation as the
  callback baseline (its ``lnurlp`` extension is not installed offline).

    python bench/lnurl_throughput.py --connections 32 --seconds 10

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

CHARGERS = 20  # callbacks spread over this many chargers (sessions never block each other)


def pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and _common.cpu_count() > 1:
        os.sched_setaffinity(0, {cpu})


async def serve_ceiling() -> None:
    from aiohttp import web

    body = {"tag": "payRequest", "callback": "http://127.0.0.1/x", "minSendable": 1000}

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body)

    app = web.Application()
    app.router.add_get("/ceiling", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    print(json.dumps({"base": f"http://127.0.0.1:{port}"}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


async def serve_strom(profile: bool) -> None:
    _common.quiet()
    with tempfile.TemporaryDirectory() as tmp:
        ids = [f"bench-{n}" for n in range(CHARGERS)]
        config = _common.strom_config(Path(tmp), chargers=ids)
        async with _common.running_strom(config, unlimited=True) as strom:
            # As if every charger were connected: offers refuse a charger that is not.
            for charger_id in ids:
                await strom.chargers.set_online(charger_id, True, datetime.now(UTC))
            strom.payments.forget_view()
            base = strom.config.server.public_url  # on the port Strom bound
            print(json.dumps({"base": base, "chargers": ids}), flush=True)
            if profile:
                import cProfile

                prof = cProfile.Profile()
                prof.enable()
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
            if profile:
                prof.disable()
                import io
                import pstats

                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("cumulative").print_stats(30)
                out2 = io.StringIO()
                pstats.Stats(prof, stream=out2).sort_stats("tottime").print_stats(25)
                sys.stderr.write(out.getvalue() + out2.getvalue())


def start(kind: str, profile: bool = False) -> tuple[subprocess.Popen[str], dict]:
    cmd = [sys.executable, __file__, "--serve", kind]
    if profile:
        cmd.append("--profile")
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=_common.REPO
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"{kind} server did not start")
    return proc, json.loads(line)


def stop(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure(urls: list[str], args: argparse.Namespace, *, key: str) -> tuple[float, int, int]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def one(n: int) -> bool:
            async with http.get(urls[n % len(urls)]) as response:
                if response.status != 200:
                    return False
                body = await response.json(content_type=None)
                return key in body

        return await _common.load(
            one, connections=args.connections, seconds=args.seconds, max_requests=args.max_requests
        )


async def measure_lnbits(args: argparse.Namespace) -> tuple[float, int, int] | None:
    import aiohttp

    sys.path.insert(0, str(_common.REPO))
    try:
        from tests.peers.lnbits import LNbitsPeer
    except Exception as exc:
        print(f"lnbits: unavailable ({exc})")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            peer = await asyncio.to_thread(LNbitsPeer.start, Path(tmp))
        except Exception as exc:
            print(f"lnbits: could not start ({exc})")
            return None
        try:
            url, key = peer_invoice_endpoint(peer)
            connector = aiohttp.TCPConnector(limit=args.connections)
            async with aiohttp.ClientSession(connector=connector) as http:
                # LNbits limits every client to 200 requests a minute by default; lift it
                # the way its admin UI does, so the figure is the work, not the limit.
                async with http.patch(
                    f"{peer.url}/admin/api/v1/settings",
                    json={"lnbits_rate_limit_no": 10**9},
                    headers={"Authorization": f"Bearer {peer.token}"},
                ) as response:
                    if response.status != 200:
                        print(f"lnbits: rate limit not lifted ({response.status})")

                async def one(n: int) -> bool:
                    async with http.post(
                        url,
                        json={"out": False, "amount": 1000 + n % 1000, "memo": "bench"},
                        headers={"X-Api-Key": key},
                    ) as response:
                        return response.status in (200, 201)

                return await _common.load(
                    one,
                    connections=args.connections,
                    seconds=args.seconds,
                    max_requests=args.max_requests,
                )
        finally:
            peer.stop()


def peer_invoice_endpoint(peer) -> tuple[str, str]:
    """(URL of POST /api/v1/payments, the Strom wallet's invoice key) of a running peer."""
    return f"{peer.url}/api/v1/payments", peer.strom.inkey


async def drive(args: argparse.Namespace) -> None:
    pin(1)
    figures: dict[str, tuple[float, int, int]] = {}

    proc, info = start("ceiling")
    try:
        figures["ceiling"] = await measure([info["base"] + "/ceiling"], args, key="tag")
    finally:
        stop(proc)

    proc, info = start("strom", profile=args.profile)
    try:
        base, ids = info["base"], info["chargers"]
        figures["payRequest"] = await measure(
            [f"{base}/lnurlp/{c}/1" for c in ids], args, key="callback"
        )
        figures["callback"] = await measure(
            [f"{base}/lnurlp/{c}/1/callback?amount=2000000" for c in ids], args, key="pr"
        )
    finally:
        stop(proc)

    lnbits = await measure_lnbits(args) if args.lnbits else None

    for name, (rate, ok, failed) in figures.items():
        print(f"{name:12s} {rate:9.0f} req/s  ({ok} ok, {failed} failed)")
    if lnbits is not None:
        rate, ok, failed = lnbits
        print(f"{'lnbits inv.':12s} {rate:9.0f} req/s  ({ok} ok, {failed} failed)")

    ceiling = figures["ceiling"][0]
    pay = figures["payRequest"][0]
    _common.result(
        "LNURL payRequest (req/s)",
        pay,
        ceiling,
        "req/s",
        ">= 35 % of aiohttp ceiling",
        pay >= 0.35 * ceiling,
        note="baseline: trivial aiohttp JSON endpoint",
    )
    cb = figures["callback"][0]
    _common.result(
        "LNURL callback (invoices/s)",
        cb,
        lnbits[0] if lnbits else float("nan"),
        "req/s",
        "~1,000 invoices/s",
        cb >= 900,
        note="baseline: LNbits POST /api/v1/payments (FakeWallet)"
        if lnbits
        else "no LNbits baseline in this run",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=200_000)
    parser.add_argument("--lnbits", action="store_true", help="also measure LNbits")
    parser.add_argument("--profile", action="store_true", help="cProfile the Strom server")
    parser.add_argument("--serve", choices=["ceiling", "strom"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        pin(0)
        if args.serve == "ceiling":
            asyncio.run(serve_ceiling())
        else:
            asyncio.run(serve_strom(args.profile))
        return
    t = time.perf_counter()
    asyncio.run(drive(args))
    print(f"total {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
