"""Who is calling: an API token (``Bearer``) or a NIP-98 event signed by an admin npub.

* ``Authorization: Bearer strom_…`` — a live token from ``strom token create``; its scope
  (admin or read) decides what it may do.
* ``Authorization: Nostr <base64 event>`` — NIP-98, checked by
  :func:`strom_nostr.http_auth.check_http_auth` against the request as the client addressed
  it (``server.public_url`` + path and query), then: the signer must be one of
  ``nostr.admin_npubs`` (else 403), and the event id must be new (it is claimed in
  ``nostr_events``, so a replay is refused across restarts too; the retention sweep forgets
  a claim once the event is too old to pass the ±60 s check, :data:`WINDOW_S`).

Missing or invalid credentials are a 401; valid credentials without the right are a 403.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from cockpit.tokens import Scope, TokenStore
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_nostr.http_auth import HttpAuthError, check_http_auth
from strom_nostr.keys import decode_npub, encode_npub
from strom_storage.agents import claim_event
from strom_storage.db import Database

__all__ = ["WINDOW_S", "AuthFailed", "Authenticator", "Forbidden", "Principal"]

_TOUCH_EVERY = timedelta(minutes=1)
WINDOW_S = 60
"""How far a NIP-98 event's ``created_at`` may be from the server's clock (NIP-98: 60 s)."""


class AuthFailed(Exception):
    """No valid credentials (HTTP 401)."""


class Forbidden(Exception):
    """Valid credentials without the right to do this (HTTP 403)."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller."""

    actor: str  # "token:<name>" or an npub, as written to the audit log
    scope: Scope
    method: str  # "token" or "nip98"

    def require_admin(self, what: str) -> None:
        """Raise Forbidden unless the caller may change things.

        Raises:
            Forbidden: a read-only token.
        """
        if self.scope is not Scope.ADMIN:
            raise Forbidden(f"{self.actor} is read-only and may not {what}")


class Authenticator:
    """Checks credentials.

    Args:
        db: for replay claims of NIP-98 events.
        tokens: the token table.
        admin_npubs: who may sign NIP-98 requests.
        public_url: the base URL clients address (``server.public_url``).
        clock: the time NIP-98 events are checked against, and tokens marked used at.
    """

    def __init__(
        self,
        db: Database,
        tokens: TokenStore,
        admin_npubs: tuple[str, ...],
        public_url: str,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.db = db
        self.tokens = tokens
        self.admins = frozenset(decode_npub(npub) for npub in admin_npubs)
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self._touched: dict[str, datetime] = {}

    async def authenticate(
        self, header: str | None, *, method: str, path_qs: str, body: bytes | None
    ) -> Principal:
        """The caller of a request.

        Args:
            header: the ``Authorization`` header, if any.
            method: the HTTP method.
            path_qs: the raw path and query as received.
            body: the request body.

        Raises:
            AuthFailed: no, unknown, revoked, malformed, stale or replayed credentials.
            Forbidden: a NIP-98 event signed by a key that is not an admin.
        """
        if not header:
            raise AuthFailed("missing Authorization header (Bearer token or NIP-98 Nostr event)")
        scheme = header.split(" ", 1)[0].lower()
        if scheme == "bearer":
            return await self._token(header[len("bearer ") :].strip())
        if scheme == "nostr":
            return await self._nip98(header, method=method, path_qs=path_qs, body=body)
        raise AuthFailed("unsupported Authorization scheme; use Bearer or Nostr")

    async def _token(self, token: str) -> Principal:
        info = await self.tokens.check(token)
        if info is None:
            raise AuthFailed("unknown or revoked API token")
        now = self.clock.now()
        last = self._touched.get(info.name)
        if last is None or now - last > _TOUCH_EVERY:
            self._touched[info.name] = now
            await self.tokens.touch(info.name)
        return Principal(actor=f"token:{info.name}", scope=info.scope, method="token")

    async def _nip98(
        self, header: str, *, method: str, path_qs: str, body: bytes | None
    ) -> Principal:
        now = self.clock.unix()
        try:
            event = check_http_auth(
                header,
                url=self.public_url + path_qs,
                method=method,
                body=body,
                now=int(now),
                window_s=WINDOW_S,
            )
        except HttpAuthError as exc:
            raise AuthFailed(f"NIP-98: {exc.reason}") from None
        npub = encode_npub(event.pubkey)
        if event.pubkey not in self.admins:
            raise Forbidden(f"{npub} is not an admin of this Strom (nostr.admin_npubs)")
        if not await claim_event(self.db, event.id, event.kind, event.pubkey, now):
            raise AuthFailed("NIP-98: this event was used already (replay)")
        return Principal(actor=npub, scope=Scope.ADMIN, method="nip98")
