"""The sealed part of a backup: the data folder's secrets, encrypted with a passphrase.

Format (version 1): one line ``strom-sealed 1 <parameters as JSON>`` (ended by a newline),
then the ciphertext and its 16-byte tag. The key is derived from the operator's passphrase
with scrypt (OpenSSL's, through :func:`hashlib.scrypt`; N = 2**17, r = 8, p = 1: about
128 MiB and a fraction of a second, so every guess costs an attacker as much), with a random
16-byte salt; the cipher is ChaCha20-Poly1305 (pycryptodomex) with a random 12-byte nonce.
The header line is the associated data, so its parameters cannot be changed without the tag
failing. A wrong passphrase and a damaged file are told apart only by the tag, so both say
"does not open".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from Cryptodome.Cipher import ChaCha20_Poly1305

from strom_core.errors import ConfigError

__all__ = [
    "MIN_PASSPHRASE_CHARS",
    "PASSPHRASE_ENV",
    "SealedError",
    "open_sealed",
    "read_passphrase",
    "seal",
]

PASSPHRASE_ENV = "STROM_BACKUP_PASSPHRASE"  # noqa: S105 - the variable's name
MIN_PASSPHRASE_CHARS = 12
_MAGIC = b"strom-sealed 1 "
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_MAX_SCRYPT_N = 2**20
_TAG_BYTES = 16


class SealedError(ConfigError):
    """The sealed part does not open: a wrong passphrase, or a damaged archive."""


def _key(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    if not (1 < n <= _MAX_SCRYPT_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise SealedError("the sealed part names scrypt parameters Strom does not accept")
    memory = 128 * r * n + 2**20 * 16
    return hashlib.scrypt(passphrase.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=32)


def seal(passphrase: str, plaintext: bytes) -> bytes:
    """Encrypt ``plaintext`` under ``passphrase`` (see the module docstring for the format)."""
    salt, nonce = os.urandom(16), os.urandom(12)
    header: dict[str, Any] = {
        "kdf": "scrypt",
        **_SCRYPT,
        "salt": base64.b64encode(salt).decode(),
        "cipher": "chacha20-poly1305",
        "nonce": base64.b64encode(nonce).decode(),
    }
    line = _MAGIC + json.dumps(header, sort_keys=True).encode() + b"\n"
    cipher = ChaCha20_Poly1305.new(key=_key(passphrase, salt, **_SCRYPT), nonce=nonce)
    cipher.update(line)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return line + ciphertext + tag


def open_sealed(passphrase: str, blob: bytes) -> bytes:
    """Decrypt what :func:`seal` wrote.

    Raises:
        SealedError: a wrong passphrase, or the sealed part is damaged.
    """
    line, newline, body = blob.partition(b"\n")
    if not line.startswith(_MAGIC) or not newline or len(body) < _TAG_BYTES:
        raise SealedError("the sealed part of the backup is damaged (no header)")
    try:
        header = json.loads(line[len(_MAGIC) :])
        salt = base64.b64decode(header["salt"])
        nonce = base64.b64decode(header["nonce"])
        n, r, p = int(header["n"]), int(header["r"]), int(header["p"])
        kinds = (header["kdf"], header["cipher"])
    except (ValueError, KeyError, TypeError):
        raise SealedError("the sealed part of the backup is damaged (bad header)") from None
    if kinds != ("scrypt", "chacha20-poly1305") or len(nonce) != 12:
        raise SealedError(f"the sealed part uses {kinds}, which this Strom does not know")
    cipher = ChaCha20_Poly1305.new(key=_key(passphrase, salt, n, r, p), nonce=nonce)
    cipher.update(line + newline)
    try:
        return cipher.decrypt_and_verify(body[:-_TAG_BYTES], body[-_TAG_BYTES:])
    except ValueError:
        raise SealedError(
            "the keys in the backup do not open with this passphrase "
            "(a wrong passphrase, or the archive is damaged)"
        ) from None


def read_passphrase(
    file: Path | None, *, confirm: bool, environ: Mapping[str, str] | None = None
) -> str:
    """The passphrase: from ``file``, else ``STROM_BACKUP_PASSPHRASE``, else a prompt.

    Args:
        file: a file whose first line is the passphrase (``--passphrase-file``).
        confirm: ask twice at a prompt (when sealing).
        environ: the environment (default ``os.environ``).

    Raises:
        ConfigError: none given and no terminal to ask on, the file is unreadable, the two
            entries differ, or the passphrase is shorter than 12 characters.
    """
    env = os.environ if environ is None else environ
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--passphrase-file {file}: cannot read it: {exc}") from None
        passphrase = text[0] if text else ""
    elif env.get(PASSPHRASE_ENV):
        passphrase = env[PASSPHRASE_ENV]
    elif sys.stdin.isatty():
        import getpass

        passphrase = getpass.getpass("backup passphrase: ")
        if confirm and getpass.getpass("again: ") != passphrase:
            raise ConfigError("the two passphrases differ")
    else:
        raise ConfigError(
            "the keys in a backup are sealed with a passphrase: give --passphrase-file FILE, "
            f"set {PASSPHRASE_ENV}, or run it on a terminal to be asked"
        )
    if len(passphrase) < MIN_PASSPHRASE_CHARS:
        raise ConfigError(
            f"the backup passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters"
        )
    return passphrase
