"""``strom restore``: rebuild an installation from a ``strom backup`` archive.

In order, and nothing is written before every check has passed: the manifest is read and every
member's size and SHA-256 checked (an archive with a member missing, added or changed is
refused); the schema revision must be one this Strom knows; the sealed data files are opened
with the passphrase. Then the folder is laid out as ``strom init`` lays it out —
``strom.toml``, ``profiles/``, ``relay_config/``, ``data/`` (mode 0700, key files 0600) — and
the database is restored: the SQLite file into ``data/``, or the dump into the empty PostgreSQL
database that ``--database-url``, the restored ``strom.toml`` or ``STROM_STORAGE__DATABASE_URL``
names. ``strom run -c DIR/strom.toml`` then starts it (and applies newer migrations, if any).

The restored ``strom.toml`` keeps its comments; only the paths that pointed elsewhere
(``data_dir``, ``[paths]``) are set to the restored folders, and the database URL to the one
restored into.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import tomlkit

from strom.backup import ARCHIVE_ROOT, FORMAT, FORMAT_VERSION, SEALED_MEMBER, sha256_file
from strom.config import load_config
from strom.sealed import open_sealed
from strom_core.errors import ConfigError
from strom_storage import backup as storage

__all__ = ["RestoreSummary", "read_manifest", "restore_backup"]

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class RestoreSummary:
    """What was restored where."""

    config: Path
    database: str
    schema_revision: str | None
    profiles: tuple[str, ...]
    sealed_keys: bool


def _member_name(info: tarfile.TarInfo) -> str:
    path = PurePosixPath(info.name)
    if path.is_absolute() or ".." in path.parts or path.parts[:1] != (ARCHIVE_ROOT,):
        raise ConfigError(f"the archive holds a member outside {ARCHIVE_ROOT}/: {info.name!r}")
    return PurePosixPath(*path.parts[1:]).as_posix()


def _unpack(archive: Path, stage: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for info in tar:
                name = _member_name(info)
                if info.isdir():
                    continue
                if not info.isfile():
                    raise ConfigError(f"the archive holds a link or device: {info.name!r}")
                source = tar.extractfile(info)
                assert source is not None
                target = stage / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except FileNotFoundError:
        raise ConfigError(f"{archive}: no such file") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ConfigError(f"{archive}: not a readable backup archive ({exc})") from None


def read_manifest(archive: Path, stage: Path) -> dict[str, Any]:
    """Unpack ``archive`` into ``stage`` and check it against its manifest.

    Raises:
        ConfigError: not a Strom backup, or a member is missing, extra or changed.
    """
    _unpack(archive, stage)
    try:
        manifest: dict[str, Any] = json.loads((stage / "manifest.json").read_text())
    except (OSError, ValueError):
        raise ConfigError(f"{archive}: no manifest.json: not a strom backup") from None
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{archive}: not a strom backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{archive}: backup format {manifest.get('format_version')} (from Strom "
            f"{manifest.get('strom_version')}); this Strom reads format {FORMAT_VERSION}"
        )
    members: dict[str, dict[str, Any]] = manifest["members"]
    present = {p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()}
    present.discard("manifest.json")
    if present != set(members):
        odd = sorted(present.symmetric_difference(members))
        raise ConfigError(f"{archive}: members differ from the manifest: {', '.join(odd)}")
    for name, entry in members.items():
        if sha256_file(stage / name) != entry["sha256"]:
            raise ConfigError(f"{archive}: {name} is damaged (its SHA-256 is not the manifest's)")
    return manifest


def _check_folder(folder: Path, force: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} is a file, not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not force:
        raise ConfigError(
            f"{folder} is not empty: restore into a new folder, or give --force to write over "
            "what is there"
        )


def _check_revision(manifest: dict[str, Any]) -> str | None:
    revision: str | None = manifest["database"].get("schema_revision")
    if revision is not None and revision not in storage.known_revisions():
        raise ConfigError(
            f"the backup's database is at schema revision {revision}, which this Strom does not "
            f"know: it comes from a newer Strom ({manifest.get('strom_version')}); restore it "
            "with that version or newer"
        )
    return revision


def _check_postgres_target(url: str) -> None:
    if not url.startswith("postgresql"):
        raise ConfigError(
            "this backup holds a PostgreSQL database: give --database-url "
            "postgresql+asyncpg://user@host/db (an empty database) or set "
            "STROM_STORAGE__DATABASE_URL"
        )
    storage.require_client("pg_restore")
    if not storage.postgres_is_empty(url):
        raise ConfigError(
            "the database to restore into already holds tables: create a new, empty one "
            "(createdb …) so that nothing of another installation mixes with the backup"
        )


def _unpack_data(plain: bytes, data_dir: Path) -> bool:
    """Write the data files; returns whether key files are sealed with STROM_MASTER_KEY."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    master_sealed = False
    with tarfile.open(fileobj=io.BytesIO(plain), mode="r:gz") as tar:
        for info in tar:
            path = PurePosixPath(info.name)
            if not info.isfile() or path.is_absolute() or ".." in path.parts:
                raise ConfigError(f"the sealed part holds an unexpected member {info.name!r}")
            target = data_dir / path
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            source = tar.extractfile(info)
            assert source is not None
            content = source.read()
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, info.mode & 0o600 or 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(content)
            os.chmod(target, info.mode & 0o777)
            if path.parts[0] == "keys":
                target.parent.chmod(0o700)
                master_sealed = master_sealed or content.startswith(b"sealed1:")
    return master_sealed


def _write_config(source: Path, target: Path, kind: str, database_url: str | None) -> None:
    document = tomlkit.parse(source.read_text(encoding="utf-8"))
    for section, key, value in (
        ("storage", "data_dir", "data"),
        ("paths", "profiles", "profiles"),
        ("paths", "relay_config", "relay_config"),
    ):
        table = document.get(section)
        if table is not None and key in table and table[key] != value:
            table[key] = value
    storage_table = document.get("storage")
    if database_url is not None:
        if storage_table is None:
            storage_table = tomlkit.table()
            document["storage"] = storage_table
        storage_table["database_url"] = database_url
    elif kind == "sqlite" and storage_table is not None and storage_table.get("database_url"):
        storage_table["database_url"] = ""  # SQLite lives in the restored data folder
    target.write_text(tomlkit.dumps(document), encoding="utf-8")


def restore_backup(
    archive: Path,
    folder: Path,
    passphrase: str,
    say: Say,
    *,
    force: bool = False,
    database_url: str | None = None,
) -> RestoreSummary:
    """Rebuild an installation from ``archive`` in ``folder``.

    Args:
        archive: a file written by ``strom backup``.
        folder: where to rebuild it (created; must be empty unless ``force``).
        passphrase: the passphrase the backup was sealed with.
        say: receives progress lines.
        force: write into a folder that is not empty.
        database_url: PostgreSQL backups: the empty database to restore into (written into
            the restored strom.toml); default the one the restored configuration names.

    Raises:
        ConfigError: the archive is damaged, the passphrase wrong, the folder not empty, or a
            PostgreSQL backup has no database to go to.
        StorageError: the database cannot be restored.
    """
    folder = folder.absolute()
    _check_folder(folder, force)
    with tempfile.TemporaryDirectory(prefix="strom-restore-") as scratch:
        stage = Path(scratch)
        say(f"checking {archive}…")
        manifest = read_manifest(archive, stage)
        kind = manifest["database"]["kind"]
        revision = _check_revision(manifest)
        if database_url is not None and not database_url.startswith("postgresql+asyncpg://"):
            raise ConfigError("--database-url: expected postgresql+asyncpg://user@host/db")
        if kind == "sqlite" and database_url is not None:
            raise ConfigError("--database-url is for PostgreSQL backups; this one is SQLite")
        say("opening the sealed keys…")
        plain = open_sealed(passphrase, (stage / SEALED_MEMBER).read_bytes())
        staged = stage / "config" / "strom.toml"
        _write_config(staged, staged, kind, database_url)
        if kind == "postgresql":
            _check_postgres_target(load_config(staged).storage.url())
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copytree(stage / "config", folder, dirs_exist_ok=True)
        config = load_config(folder / "strom.toml")
        master_sealed = _unpack_data(plain, config.storage.data_dir)
        dump = stage / manifest["database"]["file"]
        if kind == "sqlite":
            target = config.storage.data_dir / "strom.sqlite3"
            for suffix in ("", *storage.SQLITE_SIDE_FILES):
                target.with_name(target.name + suffix).unlink(missing_ok=True)
            say("database: restoring the SQLite file…")
            storage.copy_sqlite(dump, target)
        else:
            say("database: pg_restore into the empty database…")
            storage.postgres_restore(config.storage.url(), dump)
    return RestoreSummary(
        config=folder / "strom.toml",
        database=kind,
        schema_revision=revision,
        profiles=tuple(p.id for p in config.profiles),
        sealed_keys=master_sealed,
    )
