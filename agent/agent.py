"""One charge point's agent: an actor that handles its charger's events one at a time.

Theory of operation
-------------------
Each agent owns one :class:`asyncio.Queue` and is run by one task (its supervisor's). Every
input goes through the queue and is handled to the end before the next one: events from
relays (zap receipts, DMs), OCPP updates (online, offline, connector status), and *jobs*
submitted by the outbox handlers (session DMs, zap receipts to publish). So a charger's state
never races with itself, and a DM ``stop`` and a meter update are applied in arrival order.
Timers (status refresh, progress DMs, profile refresh, the end of a reconnect grace) are
deadlines checked by the same loop, not extra tasks.

A charger that was connected when Strom stopped starts in its *reconnect grace*
(``ocpp.reconnect_grace_s``, from the database): its status keeps the connectors' last known
states, so a map does not show it going offline at every restart of Strom, while offers refuse
it (:mod:`strom_services.payments`). If it is not back when the grace ends, the status shows
it offline.

Reservations: the agent keeps the reservations Strom holds on its connectors (connector ->
holder and end time): a session's, told by the session store after each commit
(:meth:`agent.runtime.AgentRuntime.on_session_committed`), and an operator's ``reserve`` DM's.
They make the connector ``reserved`` with its end time in the status
(:func:`agent.presence.charger_status`), so the status is published again when a reservation
starts and when it ends; at its end time a reservation is dropped even if no one said so (the
charger's own ``Available`` is published then).

Status publication is coalesced: a change marks the status *dirty*, and it is published when
the queue is empty, so a burst of StatusNotifications gives one event. Its ``created_at``
strictly increases, so relays always keep the newest. It is refreshed at half its lifetime.
When a relay connects again (:meth:`Agent.republish`), status and profile are published anew
at once: the relay may have come back empty, and the next refresh can be a day away.

Prices in the status: a charger with a dynamic tariff (time of use, ``[tariff.dynamic]``) asks
the price source (``AgentServices.prices``, the one the payments freeze prices from) for the
next 24 hours before each status publication, and publishes the price in force and the coming
intervals (:func:`agent.presence.charger_status`). At the end of the interval in force the
status is published again (once per interval: the next deadline is the next interval's end).
When the source has no price (:class:`~strom_core.ports.prices.NoPrice`) the status goes out
without an energy price, this is logged once until a price is back, and the source is asked
again at the next publication. A static tariff publishes its price as before.
After the profile, and whenever a status goes out, the agent also publishes what map and
marketplace clients read (a NIP-99 listing, NIP-89 handler events) when :mod:`agent.maps`
says they are due: on a change of their content or a refresh, within a daily budget.

Failures: errors that peers can cause (bad events, refused commands, an unreachable lightning
backend or relay) are handled and logged where they happen. Anything else propagates out of
:meth:`Agent.run`; the supervisor logs it and restarts the agent with backoff. A job's caller
always gets the job's exception.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from math import inf
from typing import Any

from agent import conversations, notifications, zaps
from agent.identity import AgentKey
from agent.maps import MapsSchedule
from agent.presence import (
    SCHEDULE_HOURS,
    charger_profile,
    charger_status,
    connector_state,
    relay_entries,
)
from agent.relays import Inbound, PublishResult
from agent.services import AgentServices
from strom_core.config import ProfileConfig
from strom_core.errors import StromError
from strom_core.ports import ChargerLink, ChargerOffline, ChargerOnline, ConnectorStatusChanged
from strom_core.ports.prices import NoPrice
from strom_core.prices import PriceSchedule
from strom_nostr.discovery import (
    STATUS_KIND,
    ChargerStatus,
    ConnectorStatus,
    dm_relay_list_template,
    profile_template,
    relay_list_template,
    status_template,
)
from strom_nostr.dm import GIFT_WRAP_KIND, NIP04_DM_KIND
from strom_nostr.event import Event
from strom_nostr.maps import (
    HANDLER_ID,
    HANDLER_INFO_KIND,
    HANDLER_RECOMMENDATION_KIND,
    LISTING_KIND,
    Handler,
    Listing,
    handler_info_template,
    handler_recommendation_template,
    listing_template,
)
from strom_nostr.zap_receipt import ZAP_RECEIPT_KIND
from strom_services.effects import RetryLater
from strom_storage.agents import ChargerSnapshot, active_zap_sessions, charger_snapshots

__all__ = ["Agent", "AgentUpdate"]

log = logging.getLogger(__name__)

_RETRY_PUBLISH_S = 30.0
_RECALL_POLL_S = 0.2  # how soon to look again for the listing read back at a start
AgentUpdate = ChargerOnline | ChargerOffline | ConnectorStatusChanged


@dataclass(slots=True)
class _Job:
    work: Callable[[], Awaitable[Any]]
    future: asyncio.Future[Any]


@dataclass(frozen=True, slots=True)
class _Republish:
    """A relay connected again: publish status and profile again."""

    relay_url: str


@dataclass(frozen=True, slots=True)
class _Reservation:
    """A reservation Strom holds on a connector began (``until``) or ended (None)."""

    connector_id: int
    holder: str
    until: int | None


@dataclass(frozen=True, slots=True)
class _NewProfile:
    """The operator changed the charger's profile: use it and publish it."""

    profile: ProfileConfig


_Input = Inbound | AgentUpdate | _Job | _Republish | _NewProfile | _Reservation


class Agent:
    """The actor of one charge point.

    Args:
        services: what all agents share.
        profile: the charger's profile.
        key: the charger's key.
        snapshot: its run-time state from the database (loaded by :meth:`run` when None).
        active_sessions: its charging zap sessions (progress DMs), loaded when None.
    """

    __slots__ = (
        "_active",
        "_charger_status",
        "_closed",
        "_connectors",
        "_dirty",
        "_inbox",
        "_job",
        "_last_maps_at",
        "_last_metadata_at",
        "_last_status_at",
        "_maps",
        "_maps_recall",
        "_maps_recalled",
        "_next_maps_at",
        "_next_metadata_at",
        "_next_price_at",
        "_next_progress_at",
        "_next_status_at",
        "_no_price_logged",
        "_online",
        "_preloaded",
        "_price_schedule",
        "_price_unknown",
        "_reconnect_until",
        "_reserved",
        "key",
        "last_status",
        "maps_decided",
        "profile",
        "services",
    )

    def __init__(
        self,
        services: AgentServices,
        profile: ProfileConfig,
        key: AgentKey,
        *,
        snapshot: ChargerSnapshot | None = None,
        active_sessions: list[str] | None = None,
    ) -> None:
        self.services = services
        self.profile = profile
        self.key = key
        self.last_status: PublishResult | None = None
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        self._job: _Job | None = None  # the job running now
        self._closed: str | None = None  # why it stopped for good (moved to another process)
        self._preloaded = (snapshot, active_sessions)
        self._online = False
        self._reconnect_until: float | None = None  # the end of a reconnect grace (clock)
        self._connectors: dict[int, tuple[str, bool]] = {}
        self._charger_status = ""
        self._reserved: dict[int, tuple[str, int]] = {}  # connector -> (holder, until)
        self._active: set[str] = set()
        self._dirty = True
        self._last_status_at = 0
        self._last_metadata_at = 0
        self._next_status_at = 0.0
        self._next_price_at = float("inf")  # the end of the dynamic price in force
        self._price_schedule: PriceSchedule | None = None
        self._price_unknown = False
        self._no_price_logged = False
        self._next_metadata_at = 0.0
        self._next_progress_at = float("inf")
        self._maps = MapsSchedule(per_day=services.settings.maps_events_per_day)
        self._next_maps_at = float("inf")
        self._last_maps_at = 0
        self._maps_recalled = False
        self._maps_recall: asyncio.Future[list[Event]] | None = None
        # Set once the first listing decision after the start is made (tests wait for it).
        self.maps_decided = asyncio.Event()

    @property
    def charger_id(self) -> str:
        """The charger's id."""
        return self.profile.id

    @property
    def pubkey(self) -> str:
        """The charger's public key (hex)."""
        return self.key.pubkey

    def preload(self, snapshot: ChargerSnapshot, active_sessions: list[str]) -> None:
        """Give the agent its state from a bulk read, so its start needs no query of its own."""
        self._preloaded = (snapshot, active_sessions)

    # --- input ------------------------------------------------------------------------------

    def submit(self, item: Inbound | AgentUpdate) -> None:
        """Queue an event from a relay or an OCPP update (never blocks)."""
        self._inbox.put_nowait(item)

    def republish(self, relay_url: str) -> None:
        """A relay connected again and may have lost everything: publish status and profile.

        Queued like any input (never blocks); a burst of reconnects gives one status event.
        """
        self._inbox.put_nowait(_Republish(relay_url))

    def note_reservation(self, connector_id: int, holder: str, until: int | None) -> None:
        """Note a reservation Strom holds on a connector: until ``until``, or ended (None).

        ``holder`` is the session id (or the operator's tag); an end is noted only for the
        holder. Queued (never blocks); the status is published again when it changes.
        """
        self._inbox.put_nowait(_Reservation(connector_id, holder, until))

    @property
    def reservations(self) -> dict[int, tuple[str, int]]:
        """Connector id -> (holder, end in unix seconds) of the reservations Strom holds."""
        return dict(self._reserved)

    def holds_reservation(self, holder: str) -> bool:
        """Whether a reservation of ``holder`` is noted on one of the connectors."""
        return any(held == holder for held, _ in self._reserved.values())

    def change_profile(self, profile: ProfileConfig) -> None:
        """Use a changed profile from the next input on, and publish status and profile again.

        Raises:
            ValueError: the profile is another charger's.
        """
        if profile.id != self.charger_id:
            raise ValueError(f"profile {profile.id} is not for charger {self.charger_id}")
        self._inbox.put_nowait(_NewProfile(profile))

    async def call(self, work: Callable[[], Awaitable[Any]], *, timeout_s: float = 60.0) -> Any:
        """Run ``work`` inside the actor, in order with everything else; return its result.

        Raises:
            RetryLater: the agent did not get to it within ``timeout_s`` (it is restarting), or
                it was stopped here (:meth:`abandon`).
            Exception: whatever ``work`` raised.
        """
        if self._closed is not None:
            raise RetryLater(f"agent {self.charger_id}: {self._closed}")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait(_Job(work, future))
        try:
            async with asyncio.timeout(timeout_s):  # not wait_for: 3.11's may drop a cancel
                return await future
        except TimeoutError:
            raise RetryLater(f"agent {self.charger_id} is busy or restarting") from None

    # --- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Handle the agent's events forever (until cancelled)."""
        await self._load()
        while True:
            if self._dirty and self._inbox.empty():
                await self.publish_status()
            await self._run_timers()
            item = await self._next_item()
            if item is not None:
                await self._handle(item)

    async def _load(self) -> None:
        snapshot, active = self._preloaded
        self._preloaded = (None, None)  # a restart reads the database again
        services = self.services
        if snapshot is None:
            snapshot = (await charger_snapshots(services.db, [self.charger_id])).get(
                self.charger_id, ChargerSnapshot()
            )
        if active is None:
            active = (await active_zap_sessions(services.db, [self.charger_id])).get(
                self.charger_id, []
            )
        self._online = snapshot.online
        self._reconnect_until = None
        if not snapshot.online and snapshot.reconnect_until is not None:
            until = snapshot.reconnect_until.timestamp()
            if until > services.clock.unix():
                self._reconnect_until = until
        self._connectors = dict(snapshot.connectors or {})
        self._reserved = {
            connector_id: (holder, until)
            for connector_id, (holder, until) in (snapshot.reservations or {}).items()
        }
        self._active = set(active)
        self._dirty = True
        self._next_metadata_at = services.clock.unix() + services.settings.metadata_delay_s
        if self._maps_recall is None:  # read back while the first status goes out
            self._maps_recall = services.maps_recall.request(self.pubkey)
        if self._active:
            self._schedule_progress()

    def _next_deadline(self) -> float:
        grace = float("inf") if self._reconnect_until is None else self._reconnect_until
        reservation_end = min((until for _, until in self._reserved.values()), default=inf)
        return min(
            self._next_status_at,
            self._next_metadata_at,
            self._next_progress_at,
            self._next_maps_at,
            self._next_price_at,
            grace,
            reservation_end,
        )

    async def _next_item(self) -> _Input | None:
        if not self._inbox.empty():
            return self._inbox.get_nowait()
        delay = self._next_deadline() - self.services.clock.unix()
        if self._dirty:
            delay = 0.0
        if delay <= 0:
            return None
        try:
            async with asyncio.timeout(delay):
                return await self._inbox.get()
        except TimeoutError:
            return None

    async def _handle(self, item: _Input) -> None:
        if isinstance(item, _Job):
            await self._run_job(item)
        elif isinstance(item, _Republish):
            self._on_republish()
        elif isinstance(item, _NewProfile):
            self.profile = item.profile
            self._on_republish()
        elif isinstance(item, Inbound):
            await self._on_inbound(item)
        elif isinstance(item, _Reservation):
            self._on_reservation(item)
        else:
            self._on_update(item)

    def abandon(self, reason: str) -> None:
        """Tell the callers of every job not yet finished to retry later (elsewhere).

        For an agent about to stop because another process takes it over: the outbox rows
        waiting on it are retried, and run where the agent runs then; later calls are refused
        the same way.
        """
        self._closed = reason
        jobs = [self._job] if self._job is not None else []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, _Job):
                jobs.append(item)
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(RetryLater(f"agent {self.charger_id}: {reason}"))

    async def _run_job(self, job: _Job) -> None:
        if job.future.done():  # the caller gave up waiting
            return
        self._job = job
        try:
            result = await job.work()
        except asyncio.CancelledError:  # shutting down: the caller is told, nothing failed
            job.future.cancel()
            raise
        except (StromError, RetryLater) as exc:  # expected: the caller decides
            if not job.future.done():  # the caller may have given up meanwhile
                job.future.set_exception(exc)
        except BaseException as exc:  # unexpected: the caller learns, the agent restarts
            if not job.future.done():
                job.future.set_exception(exc)
            raise
        else:
            if not job.future.done():
                job.future.set_result(result)
        finally:
            self._job = None

    async def _on_inbound(self, inbound: Inbound) -> None:
        kind = inbound.event.kind
        if kind == ZAP_RECEIPT_KIND:
            outcome = await zaps.consume_receipt(self, inbound.event)
        elif kind in (NIP04_DM_KIND, GIFT_WRAP_KIND):
            outcome = await conversations.handle_dm(self, inbound.event, inbound.relay_url)
        else:
            outcome = "ignored"
        observer = self.services.observer
        if observer is not None:
            observer(self.charger_id, inbound.event.id, outcome)

    def _on_update(self, update: AgentUpdate) -> None:
        before = self._published_states()
        if isinstance(update, ChargerOnline):
            self._online = True
            self._reconnect_until = None
        elif isinstance(update, ChargerOffline):
            self._online = False
            self._reconnect_until = None
        elif update.connector_id == 0:
            self._charger_status = update.status
        else:
            enabled = self._connectors.get(update.connector_id, ("", True))[1]
            self._connectors[update.connector_id] = (update.status, enabled)
        if self._published_states() != before:
            self._dirty = True

    def _on_reservation(self, item: _Reservation) -> None:
        before = self._published_states()
        held = self._reserved.get(item.connector_id)
        if item.until is not None:
            self._reserved[item.connector_id] = (item.holder, item.until)
        elif held is not None and held[0] == item.holder:
            del self._reserved[item.connector_id]
        if self._published_states() != before:
            self._dirty = True

    def _reservation_ends(self) -> dict[int, int]:
        """Connector id -> end of the reservation Strom holds on it (those not yet over)."""
        now = self.services.clock.unix()
        return {c: until for c, (_, until) in self._reserved.items() if until > now}

    def _on_republish(self) -> None:
        self._dirty = True
        settings = self.services.settings
        self._next_metadata_at = min(
            self._next_metadata_at, self.services.clock.unix() + settings.metadata_delay_s
        )

    def _shown_online(self) -> bool:
        """Connected, or still within its reconnect grace: connectors keep their last state."""
        return self._online or self._reconnect_until is not None

    def _published_states(self) -> tuple[tuple[str, int | None], ...]:
        ends = self._reservation_ends()
        states = []
        for connector in self.profile.connectors:
            status, enabled = self._connectors.get(connector.id, ("Unknown", True))
            until = ends.get(connector.id)
            state = connector_state(
                self._shown_online(),
                status,
                enabled,
                self._charger_status,
                reserved=until is not None,
            )
            states.append((state.value, until if state is ConnectorStatus.RESERVED else None))
        return tuple(states)

    # --- state the handlers change ----------------------------------------------------------

    @property
    def online(self) -> bool:
        """Whether the charger is connected."""
        return self._online

    @property
    def link(self) -> ChargerLink:
        """Connected, reconnecting (within its grace after a restart of Strom) or offline."""
        if self._online:
            return ChargerLink.ONLINE
        if self._reconnect_until is not None:
            return ChargerLink.RECONNECTING
        return ChargerLink.OFFLINE

    @property
    def connectors(self) -> dict[int, tuple[str, bool]]:
        """Connector id -> (OCPP status, enabled), as last known."""
        return dict(self._connectors)

    def set_enabled(self, connector_id: int, enabled: bool) -> None:
        """Record an operator's enable/disable; the status is re-published."""
        status = self._connectors.get(connector_id, ("Unknown", True))[0]
        self._connectors[connector_id] = (status, enabled)
        self._dirty = True

    def mark_dirty(self) -> None:
        """Re-publish the status soon (after a price change)."""
        self._dirty = True

    def session_started(self, session_id: str) -> None:
        """A zap session started charging: send it progress DMs."""
        self._active.add(session_id)
        self._schedule_progress()

    def session_ended(self, session_id: str) -> None:
        """A zap session stopped: no more progress DMs."""
        self._active.discard(session_id)
        if not self._active:
            self._next_progress_at = float("inf")

    def _schedule_progress(self) -> None:
        interval = self.services.settings.progress_interval_s
        if interval > 0 and self._next_progress_at == float("inf"):
            self._next_progress_at = self.services.clock.unix() + interval

    # --- publishing -------------------------------------------------------------------------

    async def publish_status(self) -> PublishResult:
        """Sign and publish the status event now."""
        services = self.services
        settings = services.settings
        self._dirty = False
        await self._refresh_prices()
        result = await services.pool.publish_built(self._sign_status)
        self.last_status = result
        half = settings.status_ttl_s / 2
        if result.accepted:
            self._next_status_at = services.clock.unix() + half - random.uniform(0, half / 5)  # noqa: S311
        else:
            self._next_status_at = services.clock.unix() + _RETRY_PUBLISH_S
        if services.on_status is not None:
            services.on_status(self.charger_id, result)
        if self._last_metadata_at:  # at a start the listing goes out after the profile
            await self.publish_maps()
        return result

    async def _refresh_prices(self) -> None:
        """Get a dynamic tariff's coming prices for the status (module docstring)."""
        self._next_price_at = float("inf")
        self._price_schedule = None
        self._price_unknown = False
        services = self.services
        await services.payments.warm_rate(self.profile)  # a fiat price's sats (presence)
        if not self.profile.tariff.dynamic:
            return
        source = services.prices or services.payments.prices
        now = services.clock.now()
        start = now.replace(minute=0, second=0, microsecond=0)
        try:
            if source is None:
                raise NoPrice("no price source")
            schedule = await source.schedule(self.charger_id, start, SCHEDULE_HOURS + 1)
            in_force = schedule.price_at(now)
            if in_force is None:
                raise NoPrice(f"the schedule of {schedule.source} does not cover now")
        except NoPrice as exc:
            self._price_unknown = True
            if not self._no_price_logged:
                self._no_price_logged = True
                log.warning(
                    "charger %s: status published without a price: %s",
                    self.charger_id,
                    exc.reason,
                )
            return
        self._no_price_logged = False
        self._price_schedule = schedule
        self._next_price_at = in_force.end.timestamp()

    def _status(self) -> ChargerStatus:
        services = self.services
        settings = services.settings
        return charger_status(
            self.profile,
            host=settings.host,
            page_url=f"{settings.public_url}/c/{self.charger_id}",
            online=self._shown_online(),
            connectors=self._connectors,
            charger_status_text=self._charger_status,
            reserved_until=self._reservation_ends(),
            schedule=self._price_schedule,
            at=services.clock.now(),
            price_unknown=self._price_unknown,
            shown=services.payments.shown_tariff(self.profile),
        )

    def _sign_status(self) -> Event:
        services = self.services
        created_at = max(int(services.clock.unix()), self._last_status_at + 1)
        status = self._status()
        self._last_status_at = created_at
        return self.key.sign_template(
            status_template(status, created_at=created_at, ttl_s=services.settings.status_ttl_s)
        )

    async def publish_maps(self) -> None:
        """Publish the listing and the handler events if they are due (:mod:`agent.maps`)."""
        services = self.services
        schedule = self._maps
        if not self._maps_recalled:  # what an earlier run left on the relays counts
            if self._maps_recall is None:
                self._maps_recall = services.maps_recall.request(self.pubkey)
            if not self._maps_recall.done():  # never wait for it: DMs and updates go on
                self._next_maps_at = min(self._next_maps_at, services.clock.unix() + _RECALL_POLL_S)
                return
            self._maps_recalled = True
            self._recall_maps(self._maps_recall.result())
        now = services.clock.unix()
        # Addressable events: of two in one second a relay keeps the lower id, so a new version
        # must be dated after the last one.
        created_at = max(int(now), self._last_maps_at + 1)
        listing = listing_template(
            Listing(
                self._status(),
                published_at=schedule.first_published_at(now),
                image=self.profile.branding.picture,
            ),
            created_at=created_at,
        )
        retry = float("inf")
        pool = services.pool
        due = schedule.listing_due(listing, now), schedule.handlers_due(now)
        if any(due):
            self._last_maps_at = created_at
        if due[0]:
            result = await pool.publish_built(partial(self.key.sign_template, listing))
            if result.accepted:
                schedule.listing_published(listing, now)
            else:
                retry = now + _RETRY_PUBLISH_S
        if due[1]:
            handler = Handler(
                name="Strom",
                about="EV chargers paid with Lightning: live status, prices and pay links.",
                url_pattern=f"{services.settings.public_url}/c/<bech32>",
            )
            hint = next(iter(pool.write_relays), "")
            accepted = True
            for template in (
                handler_info_template(handler, created_at=created_at),
                handler_recommendation_template(
                    self.pubkey, relay_hint=hint, created_at=created_at
                ),
            ):
                result = await pool.publish_built(partial(self.key.sign_template, template))
                accepted = accepted and result.accepted
            if accepted:
                schedule.handlers_published(now)
            else:
                retry = now + _RETRY_PUBLISH_S
        self._next_maps_at = min(retry, schedule.next_due(listing, now))
        self.maps_decided.set()

    def _recall_maps(self, events: list[Event]) -> None:
        def newest(kind: int, identifier: str) -> Event | None:
            mine = [e for e in events if e.kind == kind and e.tag_values("d")[:1] == [identifier]]
            return max(mine, key=lambda e: (e.created_at, e.id), default=None)

        listing = newest(LISTING_KIND, self.charger_id)
        info = newest(HANDLER_INFO_KIND, HANDLER_ID)
        recommendation = newest(HANDLER_RECOMMENDATION_KIND, str(STATUS_KIND))
        handlers_at = None
        if info is not None and recommendation is not None:
            handlers_at = min(info.created_at, recommendation.created_at)
        self._maps.recall(listing, handlers_at, self.services.clock.unix())
        self._last_maps_at = max([self._last_maps_at, *(e.created_at for e in events)])
        if listing is not None:
            at = listing.created_at
            log.info("charger %s: its listing of %d is on the relays", self.charger_id, at)

    async def publish_metadata(self) -> bool:
        """Publish profile (kind 0), relay list (10002) and DM inbox list (10050)."""
        services = self.services
        pool = services.pool
        # Replaceable events: a relay keeps the newest, and of two in one second the one with
        # the lower id. A change published in the same second as the last version must win.
        now = max(int(services.clock.unix()), self._last_metadata_at + 1)
        first = self._last_metadata_at == 0
        self._last_metadata_at = now
        templates = [
            profile_template(
                charger_profile(self.profile, host=services.settings.host), created_at=now
            ),
            relay_list_template(relay_entries(pool.read_relays, pool.write_relays), created_at=now),
            dm_relay_list_template(list(pool.read_relays), created_at=now),
        ]
        accepted = True
        for template in templates:
            result = await pool.publish_built(partial(self.key.sign_template, template))
            accepted = accepted and result.accepted
        if not first:  # a refresh: the relays may have lost them
            self._maps.refresh()
        await self.publish_maps()
        return accepted

    def _mark_ended(self, now: float) -> None:
        """Reservations and a dynamic price whose end passed make the status dirty."""
        over = [c for c, (_, until) in self._reserved.items() if until <= now]
        if over:
            for connector_id in over:  # its end passed: whatever ended it, it is over
                del self._reserved[connector_id]
            self._dirty = True
        if now >= self._next_price_at:  # the price in force ends: publish the next one
            self._next_price_at = float("inf")
            self._dirty = True

    async def _run_timers(self) -> None:
        now = self.services.clock.unix()
        self._mark_ended(now)
        if self._reconnect_until is not None and now >= self._reconnect_until:
            before = self._published_states()
            self._reconnect_until = None  # not back in time: shown offline from now on
            log.info("charger %s: not back within its reconnect grace", self.charger_id)
            if self._published_states() != before:
                self._dirty = True
        if now >= self._next_status_at:
            await self.publish_status()
        if now >= self._next_metadata_at:
            ok = await self.publish_metadata()
            delay = self.services.settings.profile_refresh_s if ok else _RETRY_PUBLISH_S
            self._next_metadata_at = self.services.clock.unix() + delay
        if now >= self._next_maps_at:
            self._next_maps_at = float("inf")
            await self.publish_maps()
        if now >= self._next_progress_at:
            self._next_progress_at = float("inf")
            await notifications.send_progress(self, sorted(self._active))
            if self._active:
                self._schedule_progress()
