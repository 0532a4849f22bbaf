"""Zap requests validated per second, against raw BIP-340 verification of the same events.

Strom: ``validate_zap_request`` on the zap request JSON as received (``parse_event``: JSON, shape
checks, id recomputation, Schnorr verification; then the NIP-57 tag rules). Baseline, in the
same run over the same events: coincurve's ``PublicKeyXOnly(pubkey).verify(sig, id)`` with the
hex already decoded — only the signature check, which no validator can avoid.

    python bench/nostr_intake.py --events 2000 --seconds 3

Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
from coincurve import PublicKeyXOnly

from strom_nostr.event import parse_event, sign_event, verify_event
from strom_nostr.keys import generate_secret_key, public_key_hex
from strom_nostr.zap_request import validate_zap_request

CHARGER_ID = "bench-0"


def make_requests(count: int, charger_pk: str, now: int) -> list[str]:
    coordinate = f"30522:{charger_pk}:{CHARGER_ID}"
    keys = [generate_secret_key() for _ in range(min(count, 100))]
    out = []
    for n in range(count):
        tags = [
            ["p", charger_pk],
            ["amount", "21000000"],
            ["relays", "wss://relay.example.org", "wss://nos.example.com"],
            ["a", coordinate],
            ["connector", "1"],
        ]
        event = sign_event(
            keys[n % len(keys)], 9734, tags, f"charging {n} {os.urandom(4).hex()}", now - 5
        )
        out.append(event.to_json())
    return out


def timed(fn, items: list, seconds: float, max_calls: int) -> float:
    """Calls per second of fn over items, cycling, bounded by time and count."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while calls < max_calls:
        for item in items:
            fn(item)
        calls += len(items)
        if time.perf_counter() >= deadline:
            break
    return calls / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--max-calls", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; best kept")
    args = parser.parse_args()

    charger_pk = public_key_hex(generate_secret_key())
    coordinate = f"30522:{charger_pk}:{CHARGER_ID}"
    now = int(time.time())
    requests = make_requests(args.events, charger_pk, now)
    events = [parse_event(text) for text in requests]
    raw = [
        (PublicKeyXOnly(bytes.fromhex(e.pubkey)), bytes.fromhex(e.sig), bytes.fromhex(e.id))
        for e in events
    ]

    def strom(text: str) -> None:
        validate_zap_request(
            text,
            amount_msat_query=21_000_000,
            charger_pubkey=charger_pk,
            charger_status_coordinate=coordinate,
            now=now,
            max_age_s=600,
            connector_ids=(1,),
        )

    def baseline(item: tuple[PublicKeyXOnly, bytes, bytes]) -> None:
        key, sig, message = item
        if not key.verify(sig, message):
            raise AssertionError("bad signature")

    def parse_only(text: str) -> None:
        parse_event(text)

    verify_event(events[0])  # warm the key cache, as an agent's steady state would

    best = {"strom": 0.0, "parse": 0.0, "verify": 0.0, "raw": 0.0}
    for _ in range(args.rounds):
        best["raw"] = max(best["raw"], timed(baseline, raw, args.seconds, args.max_calls))
        best["strom"] = max(best["strom"], timed(strom, requests, args.seconds, args.max_calls))
        best["parse"] = max(
            best["parse"], timed(parse_only, requests, args.seconds, args.max_calls)
        )
        best["verify"] = max(
            best["verify"], timed(verify_event, events, args.seconds, args.max_calls)
        )
    print(f"validate_zap_request {best['strom']:9.0f} /s")
    for name in ("parse", "verify"):
        share = best[name] / best["raw"]
        print(f"{name + '_event':20s} {best[name]:9.0f} /s  ({share:.0%} of raw)")
    print(f"coincurve verify     {best['raw']:9.0f} /s")
    print(f"ratio                {best['strom'] / best['raw']:9.1%}")
    _common.result(
        "nostr zap requests validated (/s)",
        best["strom"],
        best["raw"],
        "/s",
        ">= 70 % of raw BIP-340 verify",
        best["strom"] >= 0.7 * best["raw"],
        note="baseline: coincurve PublicKeyXOnly.verify, hex pre-decoded",
    )


if __name__ == "__main__":
    main()
