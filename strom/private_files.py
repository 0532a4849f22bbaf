"""Files that hold private keys: mode 0600 in folders of mode 0700, replaced atomically.

A file accessible by other users is refused (as ssh refuses such a key); a write goes to a
file beside the target which is then renamed over it, so a reader sees the old or the new.
"""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

from strom_core.errors import ConfigError

__all__ = ["make_private_folder", "read_private", "write_private"]


def make_private_folder(folder: Path, what: str) -> None:
    """Create ``folder`` (and its parents) with mode 0700.

    Raises:
        ConfigError: it cannot be made; ``what`` names it.
    """
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if stat.S_IMODE(folder.stat().st_mode) != 0o700:
            folder.chmod(0o700)
    except OSError as exc:
        raise ConfigError(f"{folder}: cannot create {what}: {exc}") from None


def read_private(path: Path) -> bytes | None:
    """The bytes of a private file, None when it does not exist.

    Raises:
        ConfigError: it is accessible by other users, or unreadable.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: holds a private key and is accessible by other users "
            f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (mode 0600) atomically: a reader sees the old or the new."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
