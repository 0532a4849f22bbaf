"""The ``strom backup``, ``strom restore`` and ``strom doctor`` commands.

Progress goes to stderr, the result to stdout; exit status as in :mod:`strom.cli` (0 success,
1 a failure, 2 a usage or configuration error), and ``doctor`` exits 1 when it found a serious
problem.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from strom.config import load_config
from strom_core.errors import ConfigError

__all__ = ["add_upkeep_commands", "cmd_backup", "cmd_doctor", "cmd_restore", "config_arg"]

EXIT_OK, EXIT_FAILURE = 0, 1


def _print(text: str) -> None:
    sys.stdout.write(text + "\n")


def _progress(text: str) -> None:
    sys.stderr.write(f"strom: {text}\n")
    sys.stderr.flush()


def cmd_backup(args: argparse.Namespace) -> int:
    """Write one archive of this installation while Strom runs.

    It holds the database (a consistent copy), strom.toml, profiles, relay configuration,
    and the data folder's keys sealed with a passphrase (--passphrase-file,
    STROM_BACKUP_PASSPHRASE, or asked on the terminal). Keep the passphrase apart from the
    archive: without it the keys cannot be restored.
    """
    from strom.backup import write_backup
    from strom.sealed import read_passphrase

    config = load_config(args.config)
    passphrase = read_passphrase(args.passphrase_file, confirm=True)
    summary = write_backup(config, args.file, passphrase, _progress)
    _print(
        f"wrote {summary.path} ({summary.size} bytes): {summary.database} database at schema "
        f"{summary.schema_revision}, {summary.sealed_files} sealed data files "
        f"(restore with: strom restore {summary.path} NEW_FOLDER)"
    )
    return EXIT_OK


def cmd_restore(args: argparse.Namespace) -> int:
    """Rebuild an installation from a backup archive in DIR (empty unless --force).

    It checks the archive against its manifest, unseals the keys with the passphrase, restores the
    database (SQLite into DIR/data; PostgreSQL into the empty database --database-url or the
    restored strom.toml names) and writes strom.toml, profiles/ and relay_config/.
    """
    from strom.restore import restore_backup
    from strom.sealed import read_passphrase

    if args.database_url is not None and not args.database_url.startswith("postgresql+asyncpg"):
        raise ConfigError("--database-url: expected postgresql+asyncpg://user@host/db")
    passphrase = read_passphrase(args.passphrase_file, confirm=False)
    summary = restore_backup(
        args.file,
        args.dir,
        passphrase,
        _progress,
        force=args.force,
        database_url=args.database_url,
    )
    chargers = ", ".join(summary.profiles) or "none"
    _print(f"restored a {summary.database} installation into {summary.config.parent}")
    _print(f"  schema {summary.schema_revision}; chargers: {chargers}")
    if summary.sealed_keys:
        _print("  the key files are sealed with STROM_MASTER_KEY: start it with the same one")
    _print(f"next: strom run -c {summary.config}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    """Check an installation and print every problem in plain words.

    It looks at the public URL, TLS certificates, the lightning node and its macaroon,
    relays, chargers never seen or without a password. Exits 1 when a problem is serious,
    0 otherwise.
    """
    from strom.doctor import SERIOUS, examine, render

    config = load_config(args.config)
    findings = asyncio.run(examine(config, timeout_s=args.timeout))
    for line in render(findings):
        _print(line)
    return EXIT_FAILURE if any(f.severity == SERIOUS for f in findings) else EXIT_OK


def config_arg(parser: argparse.ArgumentParser) -> None:
    """The ``-c/--config`` option every command that works on an installation takes."""
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path("strom.toml"),
        help="the strom.toml to use (default: ./strom.toml)",
    )


def _passphrase_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--passphrase-file",
        type=Path,
        help="read the passphrase from this file's first line "
        "(else STROM_BACKUP_PASSPHRASE, else a prompt)",
    )


def add_upkeep_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``backup``, ``restore`` and ``doctor`` to the ``strom`` command's sub-commands."""
    backup = commands.add_parser(
        "backup", help="write a backup archive (while running)", description=cmd_backup.__doc__
    )
    config_arg(backup)
    backup.add_argument("file", type=Path, help="the archive to write, e.g. strom-backup.tar.gz")
    _passphrase_arg(backup)
    backup.set_defaults(func=cmd_backup)

    restore = commands.add_parser(
        "restore", help="rebuild an installation from a backup", description=cmd_restore.__doc__
    )
    restore.add_argument("file", type=Path, help="the archive strom backup wrote")
    restore.add_argument("dir", type=Path, help="the folder to rebuild the installation in")
    _passphrase_arg(restore)
    restore.add_argument(
        "--force", action="store_true", help="write into DIR even if it is not empty"
    )
    restore.add_argument(
        "--database-url",
        help="PostgreSQL backups: the empty database to restore into "
        "(postgresql+asyncpg://user@host/db)",
    )
    restore.set_defaults(func=cmd_restore)

    doctor = commands.add_parser(
        "doctor", help="check an installation for problems", description=cmd_doctor.__doc__
    )
    config_arg(doctor)
    doctor.add_argument(
        "--timeout", type=float, default=10.0, help="seconds to wait for each remote (10)"
    )
    doctor.set_defaults(func=cmd_doctor)
