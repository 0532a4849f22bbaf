"""The keys of a cluster: in the database, sealed with the master key, the same in every process.

Theory of operation: several Strom processes on one PostgreSQL must sign as the same charger
(whichever runs its agent), answer a zap's LNURL with the same ``nostrPubkey``, and derive the
same session secrets and OCPP password hashes from the same server key. Key files under each
machine's data folder cannot give that, so in a cluster the keys live in the ``shared_keys``
table (:mod:`strom_storage.shared_keys`), each sealed with ``STROM_MASTER_KEY`` (required: the
database is shared with more people and backups than a key file) under the same derivation and
associated data as a sealed key file.

:meth:`SharedKeyStore.prepare` loads the keys of the names given in one read; for each name
without a row it proposes one — the existing key file of that name if this machine has one (an
installation that becomes a cluster keeps its chargers' identities), else a new random key —
and inserts the proposals that still have no row (insert-if-absent). Processes racing to
create a key all read back the one that was stored first. :meth:`SharedKeyStore.ensure` then
answers from memory (the agent runtime asks synchronously); a name not prepared is a
programming error. A key file that differs from the stored key is reported and not used.

One process (and SQLite) keeps using key files (:class:`agent.identity.KeyStore`) exactly as
before; this store is only for clusters.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from pathlib import Path

from agent.identity import KeyStore
from agent.sealing import MASTER_KEY_ENV, Sealer, sealer_from_environ
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import ConfigError
from strom_nostr.errors import InvalidKey
from strom_nostr.keys import generate_secret_key, parse_secret_key
from strom_storage.db import Database
from strom_storage.shared_keys import SharedKeyRows

__all__ = ["SharedKeyStore"]

log = logging.getLogger(__name__)

_SEAL_PURPOSE = "charger key"  # as key files: a sealed file's text opens here too


class SharedKeyStore:
    """Keys shared by the processes of a cluster (implements ``SecretKeys``).

    Args:
        db: the database the processes share.
        sealer: seals the keys; it must have a master key.
        files: this machine's key files, imported once when the database has no key yet;
            None imports nothing.
        clock: stamps new rows.

    Raises:
        ConfigError: no master key.
    """

    def __init__(
        self,
        db: Database,
        sealer: Sealer,
        *,
        files: KeyStore | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not sealer.encrypts:
            raise ConfigError(
                f"several processes share their keys through the database: set {MASTER_KEY_ENV} "
                "(the same in every process; e.g. the output of `openssl rand -hex 32`)"
            )
        self._rows = SharedKeyRows(db)
        self._sealer = sealer
        self._files = files
        self._clock = clock
        self._keys: dict[str, bytes] = {}

    @classmethod
    async def open(
        cls,
        db: Database,
        names: Collection[str],
        *,
        data_dir: Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> SharedKeyStore:
        """A store sealed with ``STROM_MASTER_KEY`` from ``environ``, with ``names`` prepared.

        Args:
            db: the shared database.
            names: the keys to load (or create): charger ids, ``_pool``, ``_server``.
            data_dir: the data folder whose key files are imported once (None: none).
            environ: where the master key is read (``os.environ`` when None).

        Raises:
            ConfigError: no master key, a stored key that does not open with it, or an
                unusable key file.
            StorageError: the database cannot be reached.
        """
        files = None if data_dir is None else KeyStore.from_environ(data_dir, environ)
        store = cls(db, sealer_from_environ(environ, purpose=_SEAL_PURPOSE), files=files)
        await store.prepare(names)
        return store

    def ensure(self, name: str) -> bytes:
        """The key of ``name`` (prepared before).

        Raises:
            ConfigError: ``name`` was not prepared.
        """
        try:
            return self._keys[name]
        except KeyError:
            raise ConfigError(f"key {name!r} was not loaded from the database") from None

    async def prepare(self, names: Collection[str]) -> None:
        """Load the keys of ``names``, creating (or importing) those the database lacks.

        Raises:
            ConfigError: a stored key does not open, or a key file is unusable.
            StorageError: the database cannot be reached.
        """
        wanted = sorted(set(names) - set(self._keys))
        if not wanted:
            return
        stored = await self._rows.read(wanted)
        missing = [name for name in wanted if name not in stored]
        proposed = {name: self._propose(name) for name in missing}
        if proposed:
            sealed = {
                name: self._sealer.seal(f"key of {name}", secret.hex())
                for name, secret in proposed.items()
            }
            stored |= await self._rows.insert_absent(sealed, self._clock.now())
        for name in wanted:
            secret = self._open(name, stored[name])
            if name in proposed and proposed[name] == secret:
                log.info("key %s stored in the database for every process", name)
            self._keys[name] = secret
        self._check_files(wanted, proposed)

    def _propose(self, name: str) -> bytes:
        existing = None if self._files is None else self._files.load(name)
        return existing if existing is not None else generate_secret_key()

    def _open(self, name: str, text: str) -> bytes:
        try:
            return parse_secret_key(self._sealer.open(f"key of {name}", text))
        except InvalidKey:
            raise ConfigError(f"the stored key {name} is damaged") from None

    def _check_files(self, names: list[str], proposed: Mapping[str, bytes]) -> None:
        if self._files is None:
            return
        for name in names:
            if name in proposed:
                continue  # loaded while proposing; a lost race is reported below
            try:
                existing = self._files.load(name)
            except ConfigError as exc:
                log.warning("key file of %s ignored: %s", name, exc)
                continue
            if existing is not None and existing != self._keys[name]:
                log.warning(
                    "key file of %s differs from the key in the database; the database's is used",
                    name,
                )
        for name, secret in proposed.items():
            if secret != self._keys[name] and self._files.load(name) is not None:
                log.warning(
                    "key file of %s differs from the key another process stored; that one is used",
                    name,
                )
