"""Files chargers upload to Strom (diagnostics, logs): one-time URLs, streamed, kept, listed.

Theory of operation
-------------------
When an operator asks a charger for its diagnostics (or log), Strom makes an upload URL for it:
``<public URL>/ocpp-uploads/<token>/``. The token is 256 random bits; Strom keeps only its
SHA-256, with the charger it was made for and the end of its window (``uploads.window_s``). It
is kept in memory: a restart of Strom voids the URLs it gave out (ask again).

The charger uploads by HTTP ``PUT`` or ``POST`` to that URL, with the file name appended
(``…/<token>/<file name>``) or not; a ``multipart/form-data`` POST carries the name in its
file part. FTP is not served: a charger that only uploads by FTP needs an FTP server of its own.

* A token that is unknown, expired or already used answers 404 and stores nothing. One upload
  at a time per token (409 while one runs); a failed upload releases it, a complete one spends
  it.
* A file name is letters, digits, ``.``, ``_`` and ``-`` (at most 100, not starting with ``.``):
  anything else (``..``, slashes, NUL ...) answers 400. It is stored as
  ``<UTC time>-<name>`` in ``<data_dir>/diagnostics/<charger>/``, never overwriting (``-2``,
  ``-3`` ... are appended), mode 0600, the folders 0700.
* The body is streamed to a hidden partial file and counted: past ``uploads.max_bytes`` the
  upload answers 413 and the partial file is deleted (a Content-Length over the limit is
  refused before reading). Only a complete upload is linked under its final name.

The API lists, downloads and deletes the files (:mod:`cockpit.api.firmware`); files older than
``uploads.retention_days`` are deleted whenever a charger's files are listed or uploaded.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

from aiohttp import BodyPartReader, web

from strom_core.clock import Clock
from strom_core.config import UploadsConfig
from strom_core.ids import is_charger_id
from strom_web.clients import client_of

__all__ = ["UPLOAD_PATH", "ChargerUploads", "StoredFile", "UploadRefused", "safe_name"]

log = logging.getLogger(__name__)

UPLOAD_PATH: Final = "/ocpp-uploads"
_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_CHUNK: Final = 64 * 1024


class UploadRefused(Exception):
    """An upload or file request that is refused: HTTP status and sentence."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str) -> str:
    """``name`` when it is a safe file name (see the module docstring).

    Raises:
        UploadRefused: 400 for any other name.
    """
    if not _NAME.fullmatch(name):
        raise UploadRefused(400, "a file name is 1-100 letters, digits, '.', '_' or '-'")
    return name


@dataclass(slots=True)
class _Grant:
    charger_id: str
    expires_at: datetime
    busy: bool = False


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One uploaded file: its stored name, size and when it was written."""

    name: str
    size: int
    modified: datetime


class ChargerUploads:
    """Upload URLs for chargers, and the files they uploaded.

    Args:
        root: the folder of the files (``<data_dir>/diagnostics``).
        settings: the upload limits, read at each use (a reload replaces them).
        public_url: Strom's public base URL, read at each use.
        clock: the time of tokens and file names.
    """

    def __init__(
        self,
        root: Path,
        settings: Callable[[], UploadsConfig],
        public_url: Callable[[], str],
        clock: Clock,
    ) -> None:
        self._root = root
        self._settings = settings
        self._public_url = public_url
        self._clock = clock
        self._grants: dict[str, _Grant] = {}

    # --- tokens -------------------------------------------------------------------------------

    def grant(self, charger_id: str) -> str:
        """A new one-time upload URL for the charger (ending in ``/``)."""
        now = self._clock.now()
        self._grants = {h: g for h, g in self._grants.items() if g.expires_at > now}
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=self._settings().window_s)
        self._grants[_digest(token)] = _Grant(charger_id, expires)
        return f"{self._public_url().rstrip('/')}{UPLOAD_PATH}/{token}/"

    def _take(self, token: str) -> tuple[str, _Grant]:
        digest = _digest(token)
        grant = self._grants.get(digest)
        if grant is None or grant.expires_at <= self._clock.now():
            self._grants.pop(digest, None)
            raise UploadRefused(404, "unknown, used or expired upload URL")
        if grant.busy:
            raise UploadRefused(409, "an upload to this URL is running")
        grant.busy = True
        return digest, grant

    # --- files --------------------------------------------------------------------------------

    def folder(self, charger_id: str) -> Path:
        """The folder of one charger's files.

        Raises:
            UploadRefused: 400 for an id that is no charger id.
        """
        if not is_charger_id(charger_id):
            raise UploadRefused(400, "not a charger id")
        return self._root / charger_id

    def files(self, charger_id: str) -> list[StoredFile]:
        """The charger's files, newest first (after deleting those past retention)."""
        self.prune(charger_id)
        folder = self.folder(charger_id)
        if not folder.is_dir():
            return []
        found = []
        for path in folder.iterdir():
            if path.name.startswith(".") or not path.is_file():
                continue
            stat = path.stat()
            modified = datetime.fromtimestamp(stat.st_mtime, tz=self._clock.now().tzinfo)
            found.append(StoredFile(path.name, stat.st_size, modified))
        return sorted(found, key=lambda f: (f.modified, f.name), reverse=True)

    def path(self, charger_id: str, name: str) -> Path:
        """The path of one stored file.

        Raises:
            UploadRefused: 400 for an unsafe name, 404 when there is no such file.
        """
        path = self.folder(charger_id) / safe_name(name)
        if not path.is_file():
            raise UploadRefused(404, f"no file {name!r} of charger {charger_id}")
        return path

    def delete(self, charger_id: str, name: str) -> None:
        """Delete one stored file.

        Raises:
            UploadRefused: 400 for an unsafe name, 404 when there is no such file.
        """
        self.path(charger_id, name).unlink()
        log.info("cp_id=%s: uploaded file %s deleted", charger_id, name)

    def prune(self, charger_id: str) -> int:
        """Delete the charger's files older than the retention; returns how many."""
        days = self._settings().retention_days
        folder = self.folder(charger_id)
        if days == 0 or not folder.is_dir():
            return 0
        cutoff = (self._clock.now() - timedelta(days=days)).timestamp()
        deleted = 0
        for path in folder.iterdir():
            if path.is_file() and not path.name.startswith(".") and path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                deleted += 1
        if deleted:
            log.info("cp_id=%s: %d uploaded file(s) past retention deleted", charger_id, deleted)
        return deleted

    # --- the upload ---------------------------------------------------------------------------

    async def receive(self, token: str, name: str | None, chunks: AsyncIterator[bytes]) -> str:
        """Store one upload under a one-time token; returns the stored name.

        Raises:
            UploadRefused: 404 (token), 409 (busy), 400 (name) or 413 (size); nothing is kept.
        """
        digest, grant = self._take(token)
        try:
            stored = await self._store(grant.charger_id, name, chunks)
        finally:
            grant.busy = False
        self._grants.pop(digest, None)  # spent
        return stored

    async def _store(self, charger_id: str, name: str | None, chunks: AsyncIterator[bytes]) -> str:
        wanted = safe_name(name) if name else "upload.bin"
        folder = self.folder(charger_id)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = folder / f".partial-{secrets.token_hex(8)}"
        limit = self._settings().max_bytes
        size = 0
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise UploadRefused(413, f"the file is larger than {limit} bytes")
                    out.write(chunk)
            stored = self._link(partial, folder, wanted)
        finally:
            partial.unlink(missing_ok=True)
        log.info("cp_id=%s: uploaded file %s stored (%d bytes)", charger_id, stored, size)
        self.prune(charger_id)
        return stored

    def _link(self, partial: Path, folder: Path, wanted: str) -> str:
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%SZ")
        base = f"{stamp}-{wanted}"
        for attempt in range(1, 1000):
            stored = base if attempt == 1 else f"{base}-{attempt}"
            with contextlib.suppress(FileExistsError):
                os.link(partial, folder / stored)  # never replaces a file
                return stored
        raise UploadRefused(409, "too many files of that name")  # pragma: no cover

    # --- HTTP -----------------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """``PUT``/``POST`` ``/ocpp-uploads/{token}[/{name}]``."""
        return [
            web.route(method, f"{UPLOAD_PATH}/{{token}}{tail}", self._handle)
            for method in ("PUT", "POST")
            for tail in ("", "/", "/{name}")
        ]

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        name = request.match_info.get("name") or None
        try:
            limit = self._settings().max_bytes
            if request.content_length is not None and request.content_length > limit:
                raise UploadRefused(413, f"the file is larger than {limit} bytes")
            if request.content_type == "multipart/form-data":
                part = await _file_part(request)
                name = name or part.filename
                stored = await self.receive(token, name, _part_chunks(part))
            else:
                stored = await self.receive(token, name, request.content.iter_chunked(_CHUNK))
        except UploadRefused as exc:
            log.warning(
                "upload from %s refused (%d): %s",
                client_of(request).address,
                exc.status,
                exc,
            )
            return web.Response(status=exc.status, text=f"{exc}\n")
        return web.Response(status=201, text=f"stored as {stored}\n")


async def _file_part(request: web.Request) -> BodyPartReader:
    reader = await request.multipart()
    async for part in reader:
        if isinstance(part, BodyPartReader) and part.filename is not None:
            return part
    raise UploadRefused(400, "the form has no file")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(_CHUNK):
        yield chunk


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
