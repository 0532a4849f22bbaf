"""Checking charger passwords: fast for generated keys, bounded for slow ones.

Theory of operation: a keyed hash (``hmac-sha256$``, a generated key) is checked inline in
microseconds. A scrypt hash (a chosen password) costs about 50 ms of CPU: it runs in a thread,
at most ``MAX_CONCURRENT_HASHES`` at once, and a success is remembered for the life of the
process (an HMAC of the password under a per-process key, never the password), so a reconnect
is a fast check. Every wrong password counts against its source in the
:class:`~ocpp_server.backoff.SourceBackoff`; a source may start a slow check only when the
back-off allows it, waiting while its own slow checks run and refused while it is backed off.
A slow check runs in its own task to its end even when the handshake that asked for it times
out meanwhile, so its result is not lost; :meth:`PasswordChecks.aclose` cancels those left
when the server stops.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import hmac
import logging
import secrets
from typing import Final

from ocpp_server.backoff import SourceBackoff
from ocpp_server.passwords import KeyedHash, PasswordKey, ScryptHash
from ocpp_server.settings import ChargerAuth

__all__ = ["MAX_CONCURRENT_HASHES", "Check", "PasswordChecks"]

log = logging.getLogger("ocpp_server")

MAX_CONCURRENT_HASHES: Final = 4


class Check(enum.Enum):
    """The verdict on a presented password."""

    OK = "ok"
    WRONG = "wrong"
    BACKED_OFF = "backed off"


class PasswordChecks:
    """The server's password checks (see the module docstring).

    Args:
        key: checks keyed hashes (the server's password key).
        backoff: the per-source back-off of wrong passwords.
    """

    def __init__(self, key: PasswordKey, backoff: SourceBackoff) -> None:
        self.key = key
        self._backoff = backoff
        self._cache_key = secrets.token_bytes(32)
        self._cache: dict[str, tuple[str, bytes]] = {}
        self._hash_slots = asyncio.Semaphore(MAX_CONCURRENT_HASHES)
        self._slow_check_ended = asyncio.Condition()
        self._slow_checks: set[asyncio.Task[bool]] = set()
        self._foreign_key_warned: set[str] = set()

    async def aclose(self) -> None:
        """Cancel the slow checks still running (the server stops)."""
        checks = list(self._slow_checks)
        for task in checks:
            task.cancel()
        # gather returns their CancelledErrors; our own cancellation propagates.
        await asyncio.gather(*checks, return_exceptions=True)

    async def check(self, auth: ChargerAuth, password: bytes, source: str) -> tuple[Check, float]:
        """Check a charger's password; a backed-off source may not cost a slow check.

        Args:
            auth: the charger, with a password hash.
            password: what it presented.
            source: its source address key (:func:`ocpp_server.backoff.source_of`).

        Returns:
            The verdict, and for BACKED_OFF the seconds until the source may try again.
        """
        stored = auth.parsed_hash
        if isinstance(stored, KeyedHash):
            if self.key.matches(stored, password):
                return Check.OK, 0.0
            if not self.key.made_this(stored):
                self._warn_foreign_key(auth.charger_id)
            self._wrong(auth.charger_id, source, self._backoff.record_failure(source))
            return Check.WRONG, 0.0
        if not isinstance(stored, ScryptHash) or auth.password_hash is None:
            return Check.OK, 0.0  # pragma: no cover - the caller admits password-less chargers
        tag = hmac.new(self._cache_key, password, hashlib.sha256).digest()
        cached = self._cache.get(auth.charger_id)
        if cached is not None and cached[0] == auth.password_hash:
            # A password this hash accepted before: constant-time check, no scrypt.
            if hmac.compare_digest(cached[1], tag):
                return Check.OK, 0.0
            self._wrong(auth.charger_id, source, self._backoff.record_failure(source))
            return Check.WRONG, 0.0
        retry_after = await self._reserve_slow_check(source)
        if retry_after > 0:
            return Check.BACKED_OFF, retry_after
        # The check runs to its end even when the handshake that asked for it times out
        # meanwhile (a queue of slow checks after a restart): a right password is remembered,
        # so the charger's next attempt is cheap, and the timeout is no wrong password.
        check = asyncio.create_task(
            self._slow_check(auth.charger_id, auth.password_hash, stored, password, tag, source),
            name=f"ocpp-password-{auth.charger_id}",
        )
        self._slow_checks.add(check)
        check.add_done_callback(self._slow_check_done)
        ok = await asyncio.shield(check)
        return (Check.OK if ok else Check.WRONG), 0.0

    async def _slow_check(
        self,
        charger_id: str,
        password_hash: str,
        stored: ScryptHash,
        password: bytes,
        tag: bytes,
        source: str,
    ) -> bool:
        ok: bool | None = None
        try:
            async with self._hash_slots:
                ok = await asyncio.to_thread(stored.matches, password)
        finally:
            # Only a check that ran and failed counts: not one stopped with the server.
            failures = self._backoff.release(source, failed=ok is False)
            async with self._slow_check_ended:
                self._slow_check_ended.notify_all()
        if ok:
            self._cache[charger_id] = (password_hash, tag)
        else:
            self._wrong(charger_id, source, failures)
        return ok

    def _slow_check_done(self, task: asyncio.Task[bool]) -> None:
        self._slow_checks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a password check failed", exc_info=task.exception())

    async def _reserve_slow_check(self, source: str) -> float:
        """Wait until ``source`` may start a slow check; >0: it is backed off for so long.

        The wait is bounded by the websocket handshake's own timeout.
        """
        # Asking under the condition's lock: a check cannot end unnoticed between the answer
        # "busy" and the wait.
        async with self._slow_check_ended:
            while True:
                reservation = self._backoff.reserve(source)
                if reservation.granted:
                    return 0.0
                if reservation.backed_off:
                    return reservation.retry_after
                await self._slow_check_ended.wait()

    def _wrong(self, charger_id: str, source: str, failures: int) -> None:
        """Log a wrong password: each of the first few per source, then at every doubling."""
        free = self._backoff.free_failures
        if failures <= free or failures & (failures - 1) == 0:
            retry_after = self._backoff.retry_after(source)
            log.warning(
                "cp_id=%s: wrong password from %s (%d so far from there%s)",
                charger_id,
                source,
                failures,
                f"; slow checks refused for {retry_after:.0f} s" if retry_after else "",
            )

    def _warn_foreign_key(self, charger_id: str) -> None:
        if charger_id not in self._foreign_key_warned:
            self._foreign_key_warned.add(charger_id)
            log.error(
                "cp_id=%s: its password hash was made under another server password key, so "
                "no password matches it; make a new password for this charger",
                charger_id,
            )
