"""The ``strom`` command line.

Exit status: 0 success, 1 a runtime failure (database unreachable, port taken), 2 a usage or
configuration error. Errors are one readable line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from strom import __version__
from strom.config import StromConfig, load_config
from strom.errors import ConfigError, StorageError, StromError
from strom.scaffold import ScaffoldError, write_scaffold

__all__ = ["main"]

log = logging.getLogger("strom")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _error(text: str) -> None:
    sys.stderr.write(f"strom: error: {text}\n")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path("strom.toml"),
        help="the strom.toml to use (default: ./strom.toml)",
    )


def _load(args: argparse.Namespace) -> StromConfig:
    return load_config(args.config)


# --- commands ----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace) -> int:
    """Write a working configuration."""
    folder: Path = args.dir
    try:
        config = write_scaffold(folder, force=args.force)
    except ScaffoldError as exc:
        _error(str(exc))
        return EXIT_USAGE
    _print(f"wrote {config}")
    _print(f"      {folder / 'profiles' / 'example-1.toml'} (one example charge point)")
    _print(f"      {folder / 'relay_config' / 'relays.toml'} (the embedded nostr relay)")
    _print(f"      {folder / 'data'}/ (database and keys; owner-only)")
    _print(f"next: strom run -c {config}")
    return EXIT_OK


async def _run(config: StromConfig) -> None:
    from strom.app import Strom  # the composition root loads the servers only when running

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stopper(stop, sig))
    strom = await Strom.open(config)
    await strom.serve(stop)


def _stopper(stop: asyncio.Event, sig: signal.Signals) -> Callable[[], None]:
    def handler() -> None:
        log.info("received %s, shutting down", sig.name)
        stop.set()

    return handler


def cmd_run(args: argparse.Namespace) -> int:
    """Start the service."""
    config = _load(args)
    _setup_logging(config.logging.level)
    asyncio.run(_run(config))
    return EXIT_OK


async def _upgrade(config: StromConfig) -> None:
    from strom.storage.db import Database

    db = Database.from_url(config.storage.url())
    try:
        await db.upgrade()
    finally:
        await db.close()


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply database migrations."""
    config = _load(args)
    _setup_logging(config.logging.level)
    asyncio.run(_upgrade(config))
    _print("database schema is up to date")
    return EXIT_OK


# --- parser ------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command."""
    parser = argparse.ArgumentParser(
        prog="strom",
        description=(
            "Sell EV charging for Bitcoin: Lightning (LNURL, nostr zaps) in front of "
            "OCPP 1.6J charge points."
        ),
    )
    parser.add_argument("--version", action="version", version=f"strom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    init = commands.add_parser(
        "init", help="write a working configuration", description=cmd_init.__doc__
    )
    init.add_argument("dir", nargs="?", type=Path, default=Path("."), help="target folder")
    init.add_argument("--force", action="store_true", help="overwrite an existing strom.toml")
    init.set_defaults(func=cmd_init)

    run = commands.add_parser("run", help="start the service", description=cmd_run.__doc__)
    _config_arg(run)
    run.set_defaults(func=cmd_run)

    db = commands.add_parser("db", help="database maintenance", description="Database tasks.")
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade", help="apply schema migrations", description=cmd_db_upgrade.__doc__
    )
    _config_arg(upgrade)
    upgrade.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``strom`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _error(exc.message)
        return EXIT_USAGE
    except StorageError as exc:
        _error(str(exc))
        return EXIT_FAILURE
    except OSError as exc:  # e.g. a port already in use
        _error(f"{exc.strerror or exc}")
        return EXIT_FAILURE
    except StromError as exc:
        _error(str(exc))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
