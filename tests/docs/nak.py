"""A stand-in for ``nak event`` (github.com/fiatjaf/nak, a Go program the suite does not
install) that signs with Strom's own nostr code, for the NIP-98 examples in docs/api.md.

It knows only what the docs use, with nak's meaning: ``event`` with ``-k``/``--kind``,
``-t``/``--tag name=value`` (``;`` separates further values), ``-c``/``--content``, ``--sec``
(hex or nsec) and ``--created-at``; it prints the signed event as one line of JSON, as nak
does. Any other use exits 2 naming what it does not know, so a doc that starts using more of
nak fails loudly instead of testing something else.

    python -m tests.docs.nak event -k 27235 -t u=https://… -t method=GET --sec nsec1…
"""

from __future__ import annotations

import argparse
import sys
import time

from strom_nostr.event import sign_event
from strom_nostr.keys import parse_secret_key


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"nak stand-in: {message} (only what the docs use is known)\n")
        sys.exit(2)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="nak")
    commands = parser.add_subparsers(dest="command", required=True)
    event = commands.add_parser("event")
    event.add_argument("-k", "--kind", type=int, default=1)
    event.add_argument("-t", "--tag", action="append", default=[])
    event.add_argument("-c", "--content", default=None)
    event.add_argument("--sec", required=True)
    event.add_argument("--created-at", type=int, default=None)
    args = parser.parse_args(argv)
    tags = []
    for flag in args.tag:
        name, found, value = flag.partition("=")
        tags.append([name, *value.split(";")] if found else [name])
    content = args.content
    if content is None:  # nak's default content, for kind 1 only
        content = "hello from the nostr army knife" if args.kind == 1 else ""
    signed = sign_event(
        parse_secret_key(args.sec),
        args.kind,
        tags,
        content,
        args.created_at if args.created_at is not None else int(time.time()),
    )
    sys.stdout.write(signed.to_json() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
