"""Best-effort pushes to partners: EVSE status changes and their sessions as they run.

Theory of operation
-------------------
* **EVSE status** (mod_locations, Receiver PATCH): on every connector status change (the
  OCPP core's :class:`~strom_core.ports.ConnectorStatusChanged`) each registered, unblocked
  partner listing a ``locations`` RECEIVER endpoint gets
  ``PATCH {locations}/{cc}/{pid}/{location_id}/{evse_uid}`` with ``{"status",
  "last_updated"}``; a charger that goes offline makes its EVSEs ``UNKNOWN``. A partner that
  answers HTTP 404 (it never stored the Location: a Receiver can PATCH only what it has) gets
  the whole Location instead, ``PUT {locations}/{cc}/{pid}/{location_id}``.
* **A partner's session** (mod_sessions, Receiver PUT): the partner owning the session gets
  ``PUT {sessions}/{cc}/{pid}/{session_id}`` with the whole Session on every change of its
  state (created, started, ended: ``COMPLETED``) at once, and on meter updates at most once
  per ``session_update_interval_s`` per session; an update held back is sent when the
  interval is over (so the last one always goes), unless a newer one replaces it first. The
  Session is read from the database when it is sent, so it is always the newest.

Pushes are keyed by what they update (partner and EVSE, partner and session); a key's pushes
go one after another in order, and a newer push waiting for a key replaces an older one
(only the newest state matters, and nothing arrives out of order). Each push is tried
``attempts`` times with a doubling pause; then it is dropped with a warning. That is enough:
a status or session push only saves the partner a GET, which it can do at any time (the
Sender interfaces serve the same objects), and the CDR, which is money, is not pushed here
but by a durable effect (:mod:`ocpi_server.cdrs`). Nothing here is persisted: a push lost in a
crash is repaired by the next change or the partner's next GET.

Every push goes through :class:`~ocpi_server.client.OcpiClient` (logged in ``ocpi_log``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ocpi_server.catalogue import Catalogue, NoRate
from ocpi_server.client import OcpiClient, OcpiRequestFailed
from ocpi_server.listing import exact
from ocpi_server.objects import evse_patch, evse_uid
from ocpi_server.protocol import InterfaceRole, ModuleId
from strom_core.cards import partner_of
from strom_core.ports import ChargerOffline, ConnectorStatusChanged, OcppEvent
from strom_core.session import POST_STOP_STATES, State, Transition
from strom_storage.ocpi import OcpiPartnerRow, OcpiStore
from strom_storage.ocpi_views import OcpiViews

__all__ = ["Pushes", "below", "receiver_url"]

log = logging.getLogger(__name__)

HTTP_NOT_FOUND = 404  # a Receiver that does not know the object PATCHed


def receiver_url(row: OcpiPartnerRow, module: ModuleId) -> str | None:
    """The partner's RECEIVER endpoint of ``module`` exactly as it gave it, or None.

    A POST goes to it as it is (some platforms route ``…/cdrs/`` only); paths below it are
    joined after stripping a trailing slash (:func:`below`).
    """
    for endpoint in row.endpoints:
        if endpoint.get("identifier") == module.value and (
            endpoint.get("role") == InterfaceRole.RECEIVER.value
        ):
            url = endpoint.get("url")
            return url if isinstance(url, str) else None
    return None


def below(url: str, *parts: str) -> str:
    """``url`` with path segments appended (one slash between each)."""
    return "/".join([url.rstrip("/"), *parts])


@dataclass(slots=True)
class _Push:
    """One push waiting: what to send, and not before when (monotonic seconds)."""

    partner_id: int
    body: dict[str, Any] | None  # None: read the session when sending
    charger_id: str = ""
    connector_id: int = 0
    session_id: str = ""
    not_before: float = 0.0


_Key = tuple[str, int, str]


class Pushes:
    """The status and session pushes (see the module docstring).

    Args:
        store: the partners.
        client: requests to partners.
        catalogue: the objects pushed.
        views: the partners' sessions.
        token_of: the token Strom uses on a partner.
        session_interval_s: the least time between two meter-update pushes of one session.
        attempts: how often one push is tried.
        backoff_s: the pause after the first failed try (doubled after each).
        monotonic: the clock of the throttle.
    """

    def __init__(
        self,
        store: OcpiStore,
        client: OcpiClient,
        catalogue: Catalogue,
        views: OcpiViews,
        token_of: Callable[[OcpiPartnerRow], str],
        *,
        session_interval_s: float = 60.0,
        attempts: int = 3,
        backoff_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.client = client
        self.catalogue = catalogue
        self.views = views
        self.token_of = token_of
        self.session_interval_s = session_interval_s
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.monotonic = monotonic
        self._pending: dict[_Key, _Push] = {}
        self._kicks: dict[_Key, asyncio.Event] = {}
        self._running: set[_Key] = set()
        self._wake = asyncio.Event()
        self._sessions: dict[str, tuple[State, float]] = {}  # last state queued, when sent
        self.sent = 0  # pushes a partner accepted (for tests and metrics)

    # --- what happens ---------------------------------------------------------------------------

    async def on_event(self, event: OcppEvent) -> None:
        """A subscriber of the OCPP core's events: status changes become EVSE PATCHes."""
        changes: list[tuple[int, str | None]]
        if isinstance(event, ConnectorStatusChanged) and event.connector_id > 0:
            changes = [(event.connector_id, event.status)]
        elif isinstance(event, ChargerOffline):
            profile = self.catalogue.profile(event.charger_id)
            changes = [(c.id, None) for c in profile.connectors] if profile else []
        else:
            return
        profile = self.catalogue.profile(event.charger_id)
        if profile is None or not changes:
            return
        known = {c.id for c in profile.connectors}
        partners = [
            p
            for p in await self.store.all()
            if p.state == "registered"
            and not p.blocked
            and receiver_url(p, ModuleId.LOCATIONS) is not None
        ]
        for partner in partners:
            for connector_id, status in changes:
                if connector_id in known:
                    key = ("evse", partner.id, f"{event.charger_id}\0{connector_id}")
                    body = evse_patch(status, event.at)
                    self._queue(key, _Push(partner.id, body, event.charger_id, connector_id))

    def on_transition(self, transition: Transition) -> None:
        """A listener of committed session changes: a partner's session is pushed to it."""
        session_ = transition.session
        partner = partner_of(session_.payer)
        if partner is None or not partner.isdigit():
            return  # not an OCPI partner's session
        now = self.monotonic()
        last = self._sessions.get(session_.id)
        if last is None or last[0] is not session_.state or session_.state in POST_STOP_STATES:
            not_before = now  # a change of state: at once
        else:
            not_before = last[1] + self.session_interval_s
        sent_at = last[1] if last is not None else float("-inf")
        if session_.state in POST_STOP_STATES:
            self._sessions.pop(session_.id, None)  # its last push: nothing to remember
        else:
            self._sessions[session_.id] = (session_.state, sent_at)
        key = ("session", int(partner), session_.id)
        self._queue(key, _Push(int(partner), None, session_id=session_.id, not_before=not_before))

    def _queue(self, key: _Key, push: _Push) -> None:
        waiting = self._pending.get(key)
        if waiting is not None:  # the newer replaces it, and is due no later than it was
            push.not_before = min(push.not_before, waiting.not_before)
        self._pending[key] = push
        kick = self._kicks.get(key)
        if kick is not None:
            kick.set()
        self._wake.set()

    # --- sending --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Send pushes until cancelled; each key's pushes in order, keys concurrently."""
        async with asyncio.TaskGroup() as group:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for key in list(self._pending):
                    if key not in self._running:
                        self._running.add(key)
                        group.create_task(self._drain(key), name=f"ocpi-push:{key[0]}")

    async def _drain(self, key: _Key) -> None:
        kick = self._kicks.setdefault(key, asyncio.Event())
        try:
            while (push := self._pending.get(key)) is not None:
                wait = push.not_before - self.monotonic()
                if wait > 0:
                    kick.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await kick.wait()  # a newer push may be due sooner
                    continue
                del self._pending[key]
                await self._try(key, push)
        finally:
            self._running.discard(key)
            self._kicks.pop(key, None)
            if key in self._pending:
                self._wake.set()

    async def _try(self, key: _Key, push: _Push) -> None:
        for attempt in range(self.attempts):
            try:
                await self._send(push)
                return
            except OcpiRequestFailed as exc:
                if attempt + 1 == self.attempts or key in self._pending:
                    log.warning("ocpi: push %s to partner %s dropped: %s", key[0], key[1], exc)
                    return  # given up, or a newer push of the same thing replaces it
                log.info("ocpi: push %s to partner %s failed, retrying: %s", key[0], key[1], exc)
                await asyncio.sleep(self.backoff_s * 2**attempt)

    async def _send(self, push: _Push) -> None:
        partner = await self.store.get(push.partner_id)
        if partner is None or partner.state != "registered":
            return
        if push.body is not None:
            url = receiver_url(partner, ModuleId.LOCATIONS)
            if url is None:
                return
            await self._send_status(partner, url, push)
        else:
            if not await self._send_session(partner, push.session_id):
                return
            self._sessions_sent(push.session_id)
        self.sent += 1

    async def _send_status(self, partner: OcpiPartnerRow, url: str, push: _Push) -> None:
        """PATCH the EVSE; a partner that does not know the Location gets all of it (PUT)."""
        assert push.body is not None
        party = self.catalogue.party
        where = below(url, party.country_code, party.party_id, push.charger_id)
        uid = evse_uid(push.charger_id, push.connector_id)
        token = self.token_of(partner)
        try:
            await self.client.request(
                "PATCH", below(where, uid), token, partner_id=partner.id, body=push.body
            )
        except OcpiRequestFailed as exc:
            if exc.http_status != HTTP_NOT_FOUND:
                raise
            found = await self.catalogue.location(push.charger_id)
            if found is None:
                return
            await self.client.request(
                "PUT", where, token, partner_id=partner.id, body=exact(found.obj)
            )

    async def _send_session(self, partner: OcpiPartnerRow, session_id: str) -> bool:
        url = receiver_url(partner, ModuleId.SESSIONS)
        found = await self.views.partner_session(session_id)
        if url is None or found is None or found.start.partner_id != str(partner.id):
            return False
        try:
            made = await self.catalogue.session_object(partner, found)
        except NoRate as exc:
            log.warning("ocpi: session %s not pushed: %s", session_id, exc.message)
            return False
        if made is None:
            return False
        party = self.catalogue.party
        target = below(url, party.country_code, party.party_id, session_id)
        await self.client.request(
            "PUT", target, self.token_of(partner), partner_id=partner.id, body=exact(made.obj)
        )
        return True

    def _sessions_sent(self, session_id: str) -> None:
        last = self._sessions.get(session_id)
        if last is not None:
            self._sessions[session_id] = (last[0], self.monotonic())
