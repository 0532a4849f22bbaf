"""Each charge point's own nostr key: created on first need, kept under the data folder.

Theory of operation: the key of charger ``<id>`` lives in ``<data_dir>/keys/<id>.key``, created
with mode 0600 in a folder of mode 0700. The file holds the secret as 64 hex characters, or,
when ``STROM_MASTER_KEY`` is set, sealed with ChaCha20-Poly1305 (see :mod:`agent.sealing`) with
the charger id as associated data. A key file readable by others is refused, as ssh refuses a
private key with loose permissions. Creation is atomic: the key is written to a temporary file
and linked into place, so two processes racing to create it agree on one key.

Losing a key file means the charger gets a new identity (new npub, its old status events age
out); back up ``keys/`` with the database. ``strom keys show <charger> [--nsec]`` prints the
npub (and, only when asked, the nsec) through :func:`npub_of` and :func:`export_nsec`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from coincurve import PrivateKey

from agent.sealing import Sealer, sealer_from_environ
from strom_core.errors import ConfigError
from strom_core.ids import is_charger_id
from strom_nostr.errors import BuildError, InvalidKey, MalformedEvent
from strom_nostr.event import Event, EventTemplate, make_tags, serialize
from strom_nostr.keys import encode_npub, encode_nsec, generate_secret_key, parse_secret_key

__all__ = [
    "POOL_KEY_NAME",
    "SERVER_KEY_NAME",
    "AgentKey",
    "KeyStore",
    "SecretKeys",
    "ensure_key",
    "export_nsec",
    "npub_of",
]

log = logging.getLogger(__name__)

POOL_KEY_NAME = "_pool"
"""The relay pool's own key (answers NIP-42 AUTH); no charger id can start with ``_``."""

SERVER_KEY_NAME = "_server"
"""Strom's own 32 random bytes (not a nostr identity): the composition root derives one key per
purpose from it (session secrets, the key OCPP passwords are hashed under)."""

_KEY_DIR = "keys"
_SEAL_PURPOSE = "charger key"


class AgentKey:
    """A charger's key pair with a cached signer (signing is the hot path of publishing).

    Args:
        secret: the 32-byte secret key.

    Raises:
        InvalidKey: the secret is not a valid key.
    """

    __slots__ = ("_private", "pubkey", "secret")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != 32:
            raise InvalidKey("a secret key is 32 bytes")
        try:
            self._private = PrivateKey(secret)
        except ValueError as exc:
            raise InvalidKey("secret key is out of range") from exc
        self.secret = secret
        self.pubkey: str = self._private.public_key_xonly.format().hex()

    @property
    def npub(self) -> str:
        """The public key as ``npub1…``."""
        return encode_npub(self.pubkey)

    def sign(
        self, kind: int, tags: Iterable[Sequence[str]], content: str, created_at: int
    ) -> Event:
        """Sign an event with this key (BIP-340, fresh auxiliary randomness).

        Raises:
            BuildError: a field is invalid.
        """
        try:
            frozen = make_tags(tags)
            digest = hashlib.sha256(
                serialize(self.pubkey, created_at, kind, frozen, content)
            ).digest()
            sig: bytes = self._private.sign_schnorr(digest, os.urandom(32))
            return Event(digest.hex(), self.pubkey, created_at, kind, frozen, content, sig.hex())
        except MalformedEvent as exc:
            raise BuildError(f"cannot sign: {exc.reason}") from exc

    def sign_template(self, template: EventTemplate) -> Event:
        """Sign a builder's template."""
        return self.sign(template.kind, template.tags, template.content, template.created_at)


class SecretKeys(Protocol):
    """Where the chargers' keys (and the pool's and the server's) come from."""

    def ensure(self, name: str) -> bytes:
        """The secret key of ``name``, created if it has none."""
        ...

    async def prepare(self, names: Collection[str]) -> None:
        """Make the keys of ``names`` ready for :meth:`ensure` (created if they have none)."""
        ...


def _check_name(name: str) -> None:
    if name not in (POOL_KEY_NAME, SERVER_KEY_NAME) and not is_charger_id(name):
        raise ConfigError(f"not a charger id: {name!r}")


class KeyStore:
    """The key files under ``<data_dir>/keys``.

    Args:
        data_dir: Strom's data folder.
        sealer: encrypts key files; :func:`agent.sealing.sealer_from_environ` by default.
    """

    def __init__(self, data_dir: Path, *, sealer: Sealer | None = None) -> None:
        self.folder = Path(data_dir) / _KEY_DIR
        self.sealer = sealer or sealer_from_environ(None, purpose=_SEAL_PURPOSE)

    @classmethod
    def from_environ(cls, data_dir: Path, environ: Mapping[str, str] | None = None) -> KeyStore:
        """A key store sealed with ``STROM_MASTER_KEY`` from ``environ`` when it is set."""
        return cls(data_dir, sealer=sealer_from_environ(environ, purpose=_SEAL_PURPOSE))

    def path(self, name: str) -> Path:
        """The key file of a charger (or of the pool)."""
        _check_name(name)
        return self.folder / f"{name}.key"

    def load(self, name: str) -> bytes | None:
        """The secret key of ``name``, or None when it has none yet.

        Raises:
            ConfigError: the file is readable by others, damaged, or sealed with another key.
        """
        path = self.path(name)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            return None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path}: key file is accessible by other users "
                f"(mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
            )
        text = self.sealer.open(f"key of {name}", path.read_text().strip())
        try:
            return parse_secret_key(text)
        except InvalidKey:
            raise ConfigError(f"{path}: not a valid key file") from None

    async def prepare(self, names: Collection[str]) -> None:
        """Nothing to prepare: files are read (and created) on demand by :meth:`ensure`."""

    def ensure(self, name: str) -> bytes:
        """The secret key of ``name``, created (and stored) if it has none.

        Raises:
            ConfigError: as :meth:`load`, or the folder cannot be written.
        """
        existing = self.load(name)
        if existing is not None:
            return existing
        self._make_folder()
        secret = generate_secret_key()
        stored = self.sealer.seal(f"key of {name}", secret.hex())
        final = self.path(name)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (stored + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, final)  # fails if another process won the race
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
        loaded = self.load(name)
        assert loaded is not None
        if loaded == secret and name.startswith("_"):
            log.info("key %s created in %s", name, self.folder)
        elif loaded == secret:
            log.info("charger %s: new nostr identity %s", name, encode_npub(_pub(secret)))
        return loaded

    def _make_folder(self) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(self.folder.stat().st_mode) != 0o700:
                self.folder.chmod(0o700)
        except OSError as exc:
            raise ConfigError(f"{self.folder}: cannot create the key folder: {exc}") from None


def _pub(secret: bytes) -> str:
    return AgentKey(secret).pubkey


def ensure_key(
    data_dir: Path, charger_id: str, *, environ: Mapping[str, str] | None = None
) -> bytes:
    """The charger's secret key, created on first need.

    Args:
        data_dir: Strom's data folder.
        charger_id: the charger.
        environ: where to read ``STROM_MASTER_KEY`` (``os.environ`` if None).

    Returns:
        The 32-byte secret key.

    Raises:
        ConfigError: a bad charger id, a key file readable by others, or a sealed key file
            that does not open with the master key.
    """
    return KeyStore.from_environ(data_dir, environ).ensure(charger_id)


def npub_of(data_dir: Path, charger_id: str, *, environ: Mapping[str, str] | None = None) -> str:
    """The charger's public key as ``npub1…`` (the key is created if it has none).

    Raises:
        ConfigError: as :func:`ensure_key`.
    """
    return encode_npub(_pub(ensure_key(data_dir, charger_id, environ=environ)))


def export_nsec(
    data_dir: Path, charger_id: str, *, environ: Mapping[str, str] | None = None
) -> str:
    """The charger's secret key as ``nsec1…``, for backup or import into a nostr client.

    Whoever holds it can sign as the charger (status, zap receipts, DMs): the CLI shows it only
    with an explicit flag.

    Raises:
        ConfigError: as :func:`ensure_key`.
    """
    return encode_nsec(ensure_key(data_dir, charger_id, environ=environ))
