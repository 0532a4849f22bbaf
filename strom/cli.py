"""The ``strom`` command line.

Exit status: 0 success, 1 a runtime failure (database unreachable, port taken), 2 a usage or
configuration error. Errors are one readable line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from strom import __version__
from strom.cli_upkeep import add_upkeep_commands, config_arg
from strom.config import StromConfig, load_config
from strom.scaffold import ScaffoldError, write_scaffold
from strom_core.errors import ConfigError, StorageError, StromError

__all__ = ["main"]

log = logging.getLogger("strom")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _error(text: str) -> None:
    sys.stderr.write(f"strom: error: {text}\n")


def _setup_logging(level: str, file: Path | None = None) -> None:
    """Log to stderr, or to ``file`` (rewritten; Python's warnings go there too)."""
    target: dict[str, Any] = {"stream": sys.stderr}
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        target = {"filename": file, "filemode": "w", "encoding": "utf-8"}
        logging.captureWarnings(True)
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        **target,
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
    from agent.identity import npub_of
    from strom.app import write_charger_password

    npub = npub_of(folder / "data", "example-1")
    password = write_charger_password(load_config(config), "example-1")
    _print(f"wrote {config}")
    _print(f"      {folder / 'profiles' / 'example-1.toml'} (one example charge point)")
    _print(f"      {folder / 'relay_config' / 'relays.toml'} (the embedded nostr relay)")
    _print(f"      {folder / 'data'}/ (database and keys; owner-only: back it up)")
    _print(f"charger example-1 has its own nostr key: {npub}")
    _print_password("example-1", password.key, password.key_hex)
    _print(f"next: strom run -c {config}")
    return EXIT_OK


def _print_password(charger_id: str, key: str, key_hex: str) -> None:
    _print(f"charger {charger_id}: OCPP password (AuthorizationKey), shown once, only its hash")
    _print("is stored; enter it in the charger's OCPP settings (Basic auth, user = charger id):")
    _print(f"  {key}")
    _print(f"  hex, for ChangeConfiguration AuthorizationKey: {key_hex}")


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
    if args.cluster:  # the same as [cluster] enabled = true
        cluster = config.cluster.model_copy(update={"enabled": True})
        config = config.model_copy(update={"cluster": cluster})
    _setup_logging(config.logging.level)
    asyncio.run(_run(config))
    return EXIT_OK


def cmd_container(args: argparse.Namespace) -> int:
    """Run Strom as its container image does: initialise the folder on first start, then run.

    The folder (--dir, or $STROM_HOME) gets strom.toml, profiles/, relay_config/ and data/ when
    it has no strom.toml yet (nothing is overwritten); every setting comes from STROM_*
    variables. Then Strom runs as with `strom run -c <folder>/strom.toml`.
    """
    from strom.scaffold import initialise_if_empty

    folder: Path = args.dir
    created = initialise_if_empty(folder)
    config = load_config(folder / "strom.toml")
    _setup_logging(config.logging.level)
    if created:
        log.info(
            "first start: initialised %s (strom.toml, profiles/, relay_config/, data/)", folder
        )
    asyncio.run(_run(config))
    return EXIT_OK


async def _upgrade(config: StromConfig) -> None:
    from strom_storage.db import Database

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


async def _with_tokens(config: StromConfig, work: Callable[..., Any]) -> Any:
    from cockpit.tokens import TokenStore
    from strom_storage.db import Database

    db = Database.from_url(config.storage.url())
    try:
        await db.upgrade()
        return await work(TokenStore(db))
    finally:
        await db.close()


def cmd_token_create(args: argparse.Namespace) -> int:
    """Create an API token for scripts and the admin UI; it is printed once, stored hashed.

    Use it as "Authorization: Bearer <token>". A read-only token (--read-only) may read
    everything but change nothing (for dashboards and monitoring).
    """
    from cockpit.tokens import Scope

    config = _load(args)
    scope = Scope.READ if args.read_only else Scope.ADMIN
    token = asyncio.run(_with_tokens(config, lambda store: store.create(args.name, scope)))
    sys.stderr.write(
        f"token {args.name!r} ({scope.value}) created; it is shown once, keep it safe:\n"
    )
    _print(token)
    return EXIT_OK


def cmd_token_list(args: argparse.Namespace) -> int:
    """List API tokens (names, scopes, last use; never the tokens)."""
    config = _load(args)
    tokens = asyncio.run(_with_tokens(config, lambda store: store.list()))
    if not tokens:
        _print("no API tokens (create one with: strom token create NAME)")
    for info in tokens:
        used = info.last_used_at.isoformat(timespec="seconds") if info.last_used_at else "never"
        state = f"revoked {info.revoked_at:%Y-%m-%d}" if info.revoked_at else "live"
        _print(f"{info.name}\t{info.scope.value}\t{state}\tlast used {used}")
    return EXIT_OK


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke an API token at once (requests with it get 401)."""
    config = _load(args)
    if not asyncio.run(_with_tokens(config, lambda store: store.revoke(args.name))):
        _error(f"no live token named {args.name!r} (see: strom token list)")
        return EXIT_FAILURE
    _print(f"token {args.name!r} revoked")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole story on the embedded defaults: pay, charge, stop, refund."""
    from strom.demo import DemoOptions, run_demo

    log_file = None if args.verbose else args.dir / "strom.log"  # the terminal gets the story
    _setup_logging("INFO", log_file)
    options = DemoOptions(
        folder=args.dir,
        log_file=log_file,
        once=args.once,
        http_port=args.port,
        ocpp_port=args.ocpp_port,
        speed=args.speed,
        budget_sat=args.budget_sat,
        ocpp_version=args.ocpp_version,
        dynamic=args.dynamic,
    )
    return asyncio.run(run_demo(options))


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a simulated charge point (OCPP 1.6 or 2.0.1) against a central system."""
    from ocpp_server import options_from_args, run_simulator

    _setup_logging("INFO")
    return asyncio.run(run_simulator(options_from_args(args)))


def cmd_fake_pay(args: argparse.Namespace) -> int:
    """Pay an invoice of the fake lightning backend (no real money), as a driver's wallet would."""
    from strom_lightning import FakeConfig, fake_pay

    config = _load(args)
    if not isinstance(config.lightning, FakeConfig):
        _error(f'lightning.backend is {config.lightning.backend!r}; `fake pay` needs "fake"')
        return EXIT_USAGE
    db_file = config.storage.data_dir / config.lightning.db_file
    receipt = asyncio.run(fake_pay(db_file, args.bolt11))
    _print(str(receipt))
    return EXIT_OK if receipt.ok else EXIT_FAILURE


def cmd_keys_show(args: argparse.Namespace) -> int:
    """Show a charger's nostr identity (npub); the secret key only with --nsec."""
    from agent.identity import export_nsec, npub_of

    config = _load(args)
    try:
        config.profile(args.charger)
    except KeyError:
        _error(f"no charger {args.charger!r} in {config.paths.profiles}")
        return EXIT_USAGE
    data_dir = config.storage.data_dir
    _print(npub_of(data_dir, args.charger))
    if args.nsec:
        sys.stderr.write(
            "strom: warning: whoever holds this nsec can sign as the charger; keep it secret\n"
        )
        _print(export_nsec(data_dir, args.charger))
    return EXIT_OK


def _read_chosen_password(charger_id: str) -> str:
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass(f"OCPP password for {charger_id} (16-40 bytes): ")
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ; nothing was changed")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_charger_password(args: argparse.Namespace) -> int:
    """Give a charger a new OCPP password (its AuthorizationKey for HTTP Basic auth).

    The hash is written into profiles/<charger>.toml (comments kept) and the password is
    printed once. By default Strom generates a 120-bit key; --set reads one you chose (from
    the terminal, or the first line of stdin), stored with scrypt. Strom uses it from its next
    start.
    """
    from strom.app import write_charger_password

    config = _load(args)
    chosen = _read_chosen_password(args.charger) if args.set else None
    password = write_charger_password(config, args.charger, chosen=chosen)
    path = config.paths.profiles / f"{args.charger}.toml"
    if chosen is None:
        _print_password(args.charger, password.key, password.key_hex)
    else:
        _print(f"charger {args.charger}: your password is set (hashed with scrypt)")
        _print(f"  hex, for ChangeConfiguration AuthorizationKey: {password.key_hex}")
    _print(f"wrote the hash to {path}; restart Strom for the running server to use it")
    return EXIT_OK


def cmd_lightning_pin_cert(args: argparse.Namespace) -> int:
    """Trust the TLS certificate your LND presents now (after LND renewed it at a restart).

    Shows the certificate's SHA-256 fingerprint (compare it on the node: openssl x509 -in
    tls.cert -noout -fingerprint -sha256) and, if the node accepts Strom's macaroon over it,
    which node it is; after you confirm (or with --yes) it writes the certificate where
    strom.toml points (tls_cert_path, or the cert= of the URI in lndconnect_path), keeping the
    old file as .bak. A running Strom takes it up at its next retry, without a restart.
    """
    from strom_lightning import LndConfig
    from strom_lightning import pin as pinning
    from strom_lightning.lnd_credentials import cert_location, load_lnd_credentials

    config = _load(args)
    lnd = config.lightning
    if not isinstance(lnd, LndConfig):
        _error(f"lightning.backend is {lnd.backend!r}; `lightning pin-cert` is for LND")
        return EXIT_USAGE
    data_dir = config.storage.data_dir
    location = cert_location(lnd, data_dir=data_dir)
    target = pinning.pin_target(location)  # an inline URI or no pin: say so before anything
    credentials = load_lnd_credentials(lnd, data_dir=data_dir, cert=location.kind != "file")
    try:
        presented = asyncio.run(pinning.presented_certificate(credentials.base_url))
    except StromError as exc:
        _error(f"lnd: {exc}")
        return EXIT_FAILURE
    _print(f"LND at {credentials.base_url} presents a certificate with the SHA-256 fingerprint")
    _print(f"  {presented.fingerprint}")
    pinned = pinning.pinned_fingerprint(location, credentials)
    if pinned == presented.fingerprint:
        _print(f"it is the one pinned in {target} already; nothing to do")
        return EXIT_OK
    _print(f"pinned now in {target}:\n  {pinned or '(none: the file is missing or unreadable)'}")
    try:
        info = asyncio.run(pinning.identify_node(credentials, presented.pem))
        _print(f"the node accepts Strom's macaroon over it: {pinning.describe(info)}")
    except StromError as exc:
        _print(f"WARNING: the node does not answer getinfo with Strom's macaroon: {exc}")
    if not args.yes and not _confirm(f"trust it and write it to {target}?"):
        _print("nothing written")
        return EXIT_USAGE
    written = pinning.write_pin(location, presented)
    _print(f"pinned: wrote {written} (the old one is {written.name}.bak beside it)")
    _print("a running Strom takes it up at its next retry (within a minute); no restart needed")
    return EXIT_OK


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        _error("no terminal to confirm on: compare the fingerprint, then run again with --yes")
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


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
    config_arg(run)
    run.add_argument(
        "--cluster",
        action="store_true",
        help="one of several processes on one PostgreSQL (as [cluster] enabled = true)",
    )
    run.set_defaults(func=cmd_run)

    container = commands.add_parser(
        "container",
        help="the container's entry: initialise an empty folder, then run",
        description=cmd_container.__doc__,
    )
    container.add_argument(
        "--dir",
        type=Path,
        default=Path(os.environ.get("STROM_HOME") or "/srv/strom"),
        help="the installation folder (default: $STROM_HOME or /srv/strom)",
    )
    container.set_defaults(func=cmd_container)

    from ocpp_server.sim_model import OCPP_VERSIONS

    demo = commands.add_parser(
        "demo", help="run the whole story locally", description=cmd_demo.__doc__
    )
    demo.add_argument("--dir", type=Path, default=Path("demo-data"), help="demo folder (created)")
    demo.add_argument("--once", action="store_true", help="exit after the story (0 = success)")
    demo.add_argument("--port", type=int, default=8080, help="HTTP port (a free one if taken)")
    demo.add_argument("--ocpp-port", type=int, default=9000, help="OCPP port (a free one if taken)")
    demo.add_argument("--speed", type=float, default=60.0, help="meter speed-up factor")
    demo.add_argument("--budget-sat", type=int, default=2000, help="the driver's prepayment")
    demo.add_argument(
        "--ocpp",
        dest="ocpp_version",
        choices=OCPP_VERSIONS,
        default="1.6",
        help="the OCPP version the simulated charger speaks (default: 1.6)",
    )
    demo.add_argument(
        "--dynamic",
        action="store_true",
        help="a dynamic tariff: a recorded day of prices played fast, billed per interval",
    )
    demo.add_argument(
        "--verbose", action="store_true", help="service logs on the terminal (default: a file)"
    )
    demo.set_defaults(func=cmd_demo)

    simulate = commands.add_parser(
        "simulate", help="run a simulated charge point", description=cmd_simulate.__doc__
    )
    from ocpp_server import add_arguments

    add_arguments(simulate)
    simulate.set_defaults(func=cmd_simulate)

    fake = commands.add_parser(
        "fake", help="the fake lightning backend", description="Fake backend."
    )
    fake_commands = fake.add_subparsers(dest="fake_command", metavar="COMMAND", required=True)
    pay = fake_commands.add_parser(
        "pay", help="pay a fake invoice", description=cmd_fake_pay.__doc__
    )
    config_arg(pay)
    pay.add_argument("bolt11", help="the invoice (lnbcrt…)")
    pay.set_defaults(func=cmd_fake_pay)

    keys = commands.add_parser("keys", help="chargers' nostr keys", description="Nostr keys.")
    keys_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND", required=True)
    show = keys_commands.add_parser(
        "show", help="print a charger's npub", description=cmd_keys_show.__doc__
    )
    config_arg(show)
    show.add_argument("charger", help="charger id")
    show.add_argument("--nsec", action="store_true", help="also print the secret key (nsec)")
    show.set_defaults(func=cmd_keys_show)

    charger = commands.add_parser("charger", help="charger set-up", description="Charger tasks.")
    charger_commands = charger.add_subparsers(
        dest="charger_command", metavar="COMMAND", required=True
    )
    password = charger_commands.add_parser(
        "password", help="new OCPP password", description=cmd_charger_password.__doc__
    )
    config_arg(password)
    password.add_argument("charger", help="charger id")
    password.add_argument(
        "--set", action="store_true", help="use a password you choose (prompt or stdin)"
    )
    password.set_defaults(func=cmd_charger_password)

    token = commands.add_parser(
        "token", help="API tokens", description="API tokens for the REST API and admin UI."
    )
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND", required=True)
    create = token_commands.add_parser(
        "create", help="create a token (printed once)", description=cmd_token_create.__doc__
    )
    config_arg(create)
    create.add_argument("name", help="a name for the token, e.g. the script using it")
    create.add_argument("--read-only", action="store_true", help="may read but not change")
    create.set_defaults(func=cmd_token_create)
    listing = token_commands.add_parser(
        "list", help="list tokens", description=cmd_token_list.__doc__
    )
    config_arg(listing)
    listing.set_defaults(func=cmd_token_list)
    revoke = token_commands.add_parser(
        "revoke", help="revoke a token", description=cmd_token_revoke.__doc__
    )
    config_arg(revoke)
    revoke.add_argument("name", help="the token's name")
    revoke.set_defaults(func=cmd_token_revoke)

    lightning = commands.add_parser(
        "lightning", help="the lightning node", description="Lightning node tasks."
    )
    lightning_commands = lightning.add_subparsers(
        dest="lightning_command", metavar="COMMAND", required=True
    )
    pin_cert = lightning_commands.add_parser(
        "pin-cert",
        help="trust the TLS certificate LND presents now",
        description=cmd_lightning_pin_cert.__doc__,
    )
    config_arg(pin_cert)
    pin_cert.add_argument(
        "--yes", action="store_true", help="write it without asking (compare the fingerprint)"
    )
    pin_cert.set_defaults(func=cmd_lightning_pin_cert)

    add_upkeep_commands(commands)  # backup, restore, doctor

    db = commands.add_parser("db", help="database maintenance", description="Database tasks.")
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade", help="apply schema migrations", description=cmd_db_upgrade.__doc__
    )
    config_arg(upgrade)
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
