"""``strom backup``: one archive of an installation, written while Strom runs.

The archive is a gzip-compressed tar with one folder, ``strom-backup/``:

* ``manifest.json`` — the format, Strom's version, when, the database kind and its schema
  revision, and the size and SHA-256 of every other member (checked by ``strom restore``);
* ``config/strom.toml``, ``config/profiles/*.toml``, ``config/relay_config/*.toml`` — as they
  are on disk (profiles hold only password *hashes*);
* ``database/strom.sqlite3`` (SQLite's online backup API: consistent while writers run) or
  ``database/strom.pgdump`` (``pg_dump``'s custom format: one snapshot);
* ``data.sealed`` — everything else in the data folder (the chargers' nostr keys, the server
  key, the fake node's ledger, certificates and macaroons kept there), as a tar sealed with the
  operator's passphrase (:mod:`strom.sealed`). No key is ever written into the archive in clear.

The archive is written beside its final name and renamed into place when complete, mode 0600.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strom import __version__
from strom.sealed import seal
from strom_core.config import StromConfig
from strom_core.errors import ConfigError
from strom_storage import backup as storage

__all__ = [
    "ARCHIVE_ROOT",
    "FORMAT",
    "FORMAT_VERSION",
    "SEALED_MEMBER",
    "BackupSummary",
    "sha256_file",
    "write_backup",
]

FORMAT, FORMAT_VERSION = "strom-backup", 1
ARCHIVE_ROOT = "strom-backup"
SEALED_MEMBER = "data.sealed"
SQLITE_MEMBER, PGDUMP_MEMBER = "database/strom.sqlite3", "database/strom.pgdump"

Say = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup holds (for the command's last lines)."""

    path: Path
    database: str
    schema_revision: str | None
    members: int
    sealed_files: int
    size: int


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file, in hex."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _percent(say: Say, what: str) -> storage.Progress:
    shown = [-1]

    def progress(done: int, total: int) -> None:
        percent = 100 * done // total if total else 100
        if percent // 10 > shown[0]:  # every tenth, not every step
            shown[0] = percent // 10
            say(f"{what}: {percent}% ({done} of {total} pages)")

    return progress


def _database(config: StromConfig, stage: Path, say: Say) -> tuple[dict[str, Any], set[Path]]:
    """Copy the database into ``stage``; returns its manifest entry and the files it covers."""
    url = config.storage.url()
    if url.startswith("postgresql"):
        say("database: pg_dump (one consistent snapshot)…")
        version = storage.postgres_dump(url, stage / PGDUMP_MEMBER)
        revision = storage.postgres_revision(url)
        entry = {"kind": "postgresql", "file": PGDUMP_MEMBER, "pg_dump": version}
        return {**entry, "schema_revision": revision}, set()
    source = Path(url.split(":///", 1)[1])
    if not source.is_file():
        raise ConfigError(f"no database at {source}: is this the strom.toml Strom runs with?")
    storage.copy_sqlite(source, stage / SQLITE_MEMBER, _percent(say, "database"))
    revision = storage.sqlite_revision(stage / SQLITE_MEMBER)
    covered = {source, *(source.with_name(source.name + s) for s in storage.SQLITE_SIDE_FILES)}
    return {"kind": "sqlite", "file": SQLITE_MEMBER, "schema_revision": revision}, covered


def _data_files(data_dir: Path, skip: set[Path]) -> Iterator[Path]:
    for path in sorted(data_dir.rglob("*")):
        if path in skip or not path.is_file() or path.is_symlink():
            continue
        if path.name.endswith(storage.SQLITE_SIDE_FILES) or path.name.endswith(".tmp"):
            continue  # SQLite's side files go with their database; half-written files never
        yield path


def _sealed_tar(data_dir: Path, skip: set[Path], scratch: Path) -> tuple[bytes, int]:
    """The data folder's files (SQLite ones copied consistently) as one gzip tar."""
    buffer = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in _data_files(data_dir, skip):
            name = path.relative_to(data_dir).as_posix()
            source = path
            if storage.is_sqlite_file(path):
                source = scratch / f"sqlite-{count}"
                storage.copy_sqlite(path, source)
            info = tar.gettarinfo(str(source), arcname=name)
            info.mode = path.stat().st_mode & 0o777
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            with source.open("rb") as handle:
                tar.addfile(info, handle)
            count += 1
    return buffer.getvalue(), count


def _copy_config(config: StromConfig, stage: Path) -> None:
    if config.config_path is None:
        raise ConfigError("the configuration was not loaded from a strom.toml")
    (stage / "config").mkdir()
    shutil.copyfile(config.config_path, stage / "config" / "strom.toml")
    for folder, name in (
        (config.paths.profiles, "profiles"),
        (config.paths.relay_config, "relay_config"),
    ):
        target = stage / "config" / name
        target.mkdir()
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                shutil.copyfile(path, target / path.name)


def write_backup(config: StromConfig, target: Path, passphrase: str, say: Say) -> BackupSummary:
    """Write one backup archive of the installation ``config`` describes.

    Args:
        config: the loaded configuration (``strom.toml`` and the environment).
        target: the archive to write (replaced if it exists).
        passphrase: seals the data folder's secrets.
        say: receives progress lines.

    Raises:
        ConfigError: the installation is not where the configuration says.
        StorageError: the database cannot be copied (pg_dump missing or failing…).
    """
    data_dir = config.storage.data_dir
    if not data_dir.is_dir():
        raise ConfigError(f"no data folder at {data_dir}: is this the strom.toml Strom runs with?")
    target = target.absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".strom-backup-", dir=target.parent) as scratch:
        stage = Path(scratch) / ARCHIVE_ROOT
        (stage / "database").mkdir(parents=True)
        _copy_config(config, stage)
        database, covered = _database(config, stage, say)
        say("keys and data files: sealing with the passphrase…")
        plain, sealed_files = _sealed_tar(data_dir, covered, Path(scratch))
        (stage / SEALED_MEMBER).write_bytes(seal(passphrase, plain))
        members = {
            path.relative_to(stage).as_posix(): {
                "sha256": sha256_file(path),
                "size": path.stat().st_size,
            }
            for path in sorted(stage.rglob("*"))
            if path.is_file()
        }
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "strom_version": __version__,
            "python": platform.python_version(),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "database": database,
            "sealed": {"file": SEALED_MEMBER, "files": sealed_files},
            "config": {"data_dir": str(data_dir), "profiles": [p.id for p in config.profiles]},
            "members": members,
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        say("writing the archive…")
        partial = Path(scratch) / "archive.tar.gz"
        with tarfile.open(partial, "w:gz") as tar:
            manifest_name = f"{ARCHIVE_ROOT}/manifest.json"
            tar.add(stage / "manifest.json", arcname=manifest_name, filter=_anonymous)
            for name in members:
                tar.add(stage / name, arcname=f"{ARCHIVE_ROOT}/{name}", filter=_anonymous)
        os.chmod(partial, 0o600)
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    return BackupSummary(
        path=target,
        database=database["kind"],
        schema_revision=database["schema_revision"],
        members=len(members) + 1,
        sealed_files=sealed_files,
        size=target.stat().st_size,
    )


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
