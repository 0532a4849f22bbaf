"""The owner's first sign-in, for installations without a shell (Umbrel, a container).

Until the first API token exists, nobody can sign in to the admin UI with a token (and an
Umbrel owner cannot run ``strom token create``). The admin UI's sign-in page therefore offers
a *setup password*:

* ``STROM_SETUP_PASSWORD`` when it is set (on Umbrel: the app's password, which Umbrel shows in
  its dashboard). It keeps working after the first sign-in: it is the owner's password.
* Otherwise a random one, made at each start and written to Strom's log, while no API token
  exists; the first sign-in closes it.

A right password gets an admin API token (``owner``, then ``owner-2`` …), listed and revocable
like any other (``strom token list``). Wrong passwords are counted: after
:data:`MAX_FAILURES` within a minute every attempt is refused for the rest of that minute.

``GET /admin/setup`` says whether the setup password is accepted now and where it comes from;
``POST /admin/setup`` with ``{"password": …}`` answers ``{"token": …, "name": …}``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections import deque

import orjson
from aiohttp import web

from cockpit.endpoint import error_response
from cockpit.tokens import Scope, TokenError, TokenStore
from strom_core.clock import SYSTEM_CLOCK, Clock

__all__ = ["MAX_FAILURES", "FirstRun"]

log = logging.getLogger(__name__)

MAX_FAILURES = 5
_WINDOW_S = 60.0
_OWNER = "owner"


class FirstRun:
    """The setup password and the two routes of the first-run page.

    Args:
        tokens: the API tokens (an existing one closes a generated setup password).
        password: the configured setup password (``STROM_SETUP_PASSWORD``); None or empty
            makes one for this run.
        clock: counts wrong attempts.
    """

    def __init__(self, tokens: TokenStore, password: str | None, clock: Clock = SYSTEM_CLOCK):
        self.tokens = tokens
        self.configured = bool(password)
        self.password = password or secrets.token_urlsafe(15)
        self.clock = clock
        self._failures: deque[float] = deque()

    async def first(self) -> bool:
        """Whether no API token was ever made (nobody has signed in with one)."""
        return not await self.tokens.list()

    async def accepting(self) -> bool:
        """Whether the setup password signs in now."""
        return self.configured or await self.first()

    async def announce(self, public_url: str) -> None:
        """Log how the owner signs in the first time (only while nobody has)."""
        if not await self.first():
            return
        where = f"{public_url}/admin/"
        if self.configured:
            log.info(
                "first run: nobody has signed in yet; open %s and enter the setup password "
                "(STROM_SETUP_PASSWORD; on Umbrel the app's password)",
                where,
            )
        else:
            log.warning(
                "first run: nobody has signed in yet; open %s and enter the setup password "
                "%s (made at this start; it works until the first sign-in)",
                where,
                self.password,
            )

    def routes(self) -> list[web.RouteDef]:
        """``GET`` and ``POST /admin/setup``."""
        return [web.get("/admin/setup", self._state), web.post("/admin/setup", self._sign_in)]

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "accepting": await self.accepting(),
                "first": await self.first(),
                "password_from": "environment" if self.configured else "log",
            },
            headers={"Cache-Control": "no-store"},
        )

    def _throttled(self) -> bool:
        now = self.clock.monotonic()
        while self._failures and now - self._failures[0] > _WINDOW_S:
            self._failures.popleft()
        return len(self._failures) >= MAX_FAILURES

    async def _sign_in(self, request: web.Request) -> web.Response:
        if self._throttled():
            return error_response(429, "too_many_requests", "too many wrong passwords; wait")
        try:
            body = orjson.loads(await request.read())
            given = body["password"]
            if not isinstance(given, str):
                raise TypeError("password must be text")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return error_response(400, "bad_request", 'expected {"password": "..."}')
        if not await self.accepting():
            return error_response(
                409, "conflict", "set-up is done: sign in with an API token or your nostr key"
            )
        if not hmac.compare_digest(given.encode(), self.password.encode()):
            self._failures.append(self.clock.monotonic())
            log.warning("first run: a wrong setup password from %s", request.remote)
            return error_response(403, "forbidden", "wrong setup password")
        name, token = await self._new_token()
        log.info("first run: the owner signed in with the setup password (token %r)", name)
        return web.json_response({"token": token, "name": name}, status=201)

    async def _new_token(self) -> tuple[str, str]:
        for number in range(1, 1000):
            name = _OWNER if number == 1 else f"{_OWNER}-{number}"
            try:
                return name, await self.tokens.create(name, Scope.ADMIN)
            except TokenError:
                continue  # taken (or revoked): the next number
        raise web.HTTPConflict(text="no free owner token name")
