"""The agent runtime: every charger's agent, wired to Strom's core; what the lead plugs in.

How the composition root uses it::

    runtime = AgentRuntime(config, db=db, sessions=sessions, payments=payments,
                           backend=backend, commands=ocpp.commands, session_key=key,
                           clock=SYSTEM_CLOCK)
    front = FrontDoor(..., identities=runtime)          # nostrPubkey for zaps
    events.subscribe(runtime.on_ocpp_event)             # status follows the chargers
    handlers |= runtime.handlers()                      # "notify" and "zap_receipt" rows
    runtime.on_outbox_due(runner.wake)                  # a relay is back: DMs go now
    ...  # in the service's TaskGroup:
    group.create_task(runtime.run(stop))

``session_key`` is the key :class:`strom_services.payments.PaymentService` derives session secrets
from (:mod:`strom_core.session_secrets`): the agents recompute a zapper's secret when a DM needs a
refund or top-up link, so nothing has to be handed over when a session opens.

The runtime also listens to the session store itself (``sessions.on_committed``): a session
that becomes ``RESERVED``, or stops being so, is noted by its charger's agent, whose status then
shows the connector reserved with its end time, or no longer.

Keys are loaded (or created) when the runtime is built, so :meth:`AgentRuntime.pubkey` answers
before :meth:`AgentRuntime.run` starts. ``run`` imports, once, the agents' own store of an
older installation (:mod:`agent.legacy_store`), starts the relay pool, gives each agent its
state from two bulk queries, subscribes to the agents' inboxes, and runs the pool's reader,
the supervisor, a watch for relays that connect again (every agent then publishes its status
and profile anew) and an hourly clean-up in one TaskGroup until ``stop`` is set.

Several processes (a cluster): built with ``autostart=False``, the runtime knows every charger's
key (any process answers a zap's LNURL with the charger's ``nostrPubkey``) but runs no agent
until told: :meth:`AgentRuntime.start_agents` and :meth:`AgentRuntime.stop_agents` start and stop
agents while it runs, and the relays are asked for exactly the inboxes of the agents running
here, so each DM and zap receipt reaches one process. :mod:`agent.cluster` decides which agents
run here (a lease per agent) and carries the inputs of agents that run elsewhere
(:attr:`AgentRuntime.forward`) to them, and the operator's calls (:meth:`AgentRuntime.operate`,
:mod:`agent.operator_calls`) to the process running the agent (:attr:`AgentRuntime.remote`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent import notifications, zaps
from agent.agent import Agent
from agent.identity import POOL_KEY_NAME, AgentKey, KeyStore, SecretKeys
from agent.legacy_store import import_legacy_store
from agent.nostr_sdk_adapter import check_version
from agent.operator_calls import run_here
from agent.relays import Inbound, PublishResult, RelayPool
from agent.sealing import sealer_from_environ
from agent.services import AgentServices
from agent.settings import AgentSettings
from agent.store import AgentStore
from agent.supervisor import Supervisor
from strom_core.clock import Clock
from strom_core.config import ProfileConfig, StromConfig
from strom_core.errors import AgentUnavailable, RelayError, StromError
from strom_core.ports import (
    ChargerCommands,
    ChargerOffline,
    ChargerOnline,
    ConnectorStatusChanged,
    OcppEvent,
)
from strom_core.session import State, Transition
from strom_core.tariff import Tariff
from strom_lightning import LightningBackend
from strom_nostr.errors import BuildError
from strom_services.effects import Handler, RetryLater
from strom_services.payments import PaymentService
from strom_services.tariffs import TariffBook
from strom_storage.agents import (
    DM_INITIATORS,
    active_zap_sessions,
    charger_snapshots,
    initiator_of,
)
from strom_storage.db import Database
from strom_storage.outbox import OutboxRow, OutboxStore
from strom_storage.sessions import SessionStore

__all__ = ["AgentRuntime", "RemoteCall", "ReservationNote"]

log = logging.getLogger(__name__)

_MAX_ROUTED_P_TAGS = 4


@dataclass(frozen=True, slots=True)
class ReservationNote:
    """A reservation Strom holds on a connector began (``until``) or ended (None)."""

    charger_id: str
    connector_id: int
    holder: str
    until: int | None


RemoteCall = Callable[[str, str, Mapping[str, Any]], Awaitable[Any]]
"""Runs an operator's call (charger id, call, arguments) in the process running the agent."""

AgentInput = ChargerOnline | ChargerOffline | ConnectorStatusChanged | ReservationNote
"""What reaches a charger's agent from the rest of Strom (and, in a cluster, over the bus)."""


class AgentRuntime:
    """All agents of this process over one relay pool (implements ``ChargerIdentities``).

    Args:
        config: the whole configuration (profiles, relays, public URL, admin npubs).
        db: the database.
        sessions: the session store.
        payments: the payment service (its ``settle`` is the one settlement step).
        backend: the lightning backend (asked before a zap receipt is believed).
        commands: commands to chargers (the OCPP server's).
        session_key: the key session secrets are derived from
            (:func:`strom_core.session_secrets.derive_session_key`).
        settings: agent settings; from ``config`` when None.
        keys: the key store; ``<data_dir>/keys`` sealed with ``STROM_MASTER_KEY`` when None
            (a cluster gives :class:`agent.shared_keys.SharedKeyStore`, prepared).
        pool: the relay pool; built from ``config.relays`` when None.
        environ: where ``STROM_MASTER_KEY`` is read (``os.environ`` when None).
        clock: where the agents read the time (the composition root's
            :data:`~strom_core.clock.SYSTEM_CLOCK`).
        autostart: run every charger's agent (one process); False runs none until
            :meth:`start_agents` (a cluster).

    Raises:
        ConfigError: a key file cannot be used, or the nostr-sdk version is wrong.
    """

    def __init__(
        self,
        config: StromConfig,
        *,
        db: Database,
        sessions: SessionStore,
        payments: PaymentService,
        backend: LightningBackend,
        commands: ChargerCommands,
        session_key: bytes,
        settings: AgentSettings | None = None,
        keys: SecretKeys | None = None,
        pool: RelayPool | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Clock,
        autostart: bool = True,
    ) -> None:
        check_version()
        data_dir = config.storage.data_dir
        settings = settings or AgentSettings.from_config(config)
        keys = keys or KeyStore.from_environ(data_dir, environ)
        if pool is None:
            pool = RelayPool(config.relays, auth_secret=keys.ensure(POOL_KEY_NAME), clock=clock)
        self.services = AgentServices(
            settings=settings,
            pool=pool,
            db=db,
            sessions=sessions,
            payments=payments,
            backend=backend,
            commands=commands,
            store=AgentStore(db, session_key),
            clock=clock,
        )
        self.supervisor = Supervisor(
            clock=clock,
            restart_backoff_s=settings.restart_backoff_s,
            max_restart_backoff_s=settings.max_restart_backoff_s,
        )
        self._keys = keys
        self._autostart = autostart
        self._profiles: dict[str, ProfileConfig] = {}
        self._agent_keys: dict[str, AgentKey] = {}
        self._by_pubkey: dict[str, Agent] = {}
        self._starting: dict[str, Agent] = {}
        self._membership = asyncio.Lock()  # one start or stop of agents at a time
        self.forward: Callable[[AgentInput], None] | None = None
        """Where inputs for agents not running here go (a cluster's bus); None drops them."""
        self.remote: RemoteCall | None = None
        """Where the operator's calls for agents not running here go; None: they are refused."""
        for profile in config.profiles:
            self._know(profile)
            if autostart:
                agent = self._new_agent(profile.id)
                self.supervisor.add(agent)
                self._by_pubkey[agent.pubkey] = agent
        self._data_dir = data_dir
        self._environ = environ
        self._import_lock = asyncio.Lock()
        self._imported = False
        self.ready = asyncio.Event()
        self._outbox_due: list[Callable[[], None]] = []
        self._background: set[asyncio.Task[None]] = set()
        sessions.on_committed(self.on_session_committed)  # reservations shown in the status

    def _know(self, profile: ProfileConfig) -> None:
        self._profiles[profile.id] = profile
        if profile.id not in self._agent_keys:
            self._agent_keys[profile.id] = AgentKey(self._keys.ensure(profile.id))

    def _new_agent(self, charger_id: str) -> Agent:
        return Agent(self.services, self._profiles[charger_id], self._agent_keys[charger_id])

    def _local(self, charger_id: str) -> Agent | None:
        """The charger's agent if it runs (or is starting) in this process."""
        return self.supervisor.get(charger_id) or self._starting.get(charger_id)

    def on_outbox_due(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` when outbox rows were made due now (the effect runner looks again).

        A relay that comes back makes the DMs and receipts waiting out a backoff due at once;
        the effect runner is built after the runtime (it runs the runtime's handlers), so it
        registers here.
        """
        self._outbox_due.append(wake)

    # --- what the rest of Strom asks ---------------------------------------------------------

    def pubkey(self, charger_id: str) -> str | None:
        """The charger's public key (hex), or None for a charger without an agent."""
        key = self._agent_keys.get(charger_id)
        return None if key is None else key.pubkey

    def charger_ids(self) -> list[str]:
        """Every charger that has an agent (here or, in a cluster, in another process)."""
        return list(self._profiles)

    def runs(self, charger_id: str) -> bool:
        """Whether the charger's agent runs in this process."""
        return self._local(charger_id) is not None

    @property
    def pool(self) -> RelayPool:
        """The relay pool."""
        return self.services.pool

    @property
    def tariffs(self) -> TariffBook:
        """The tariff in force for each charger."""
        return self.services.tariffs

    def tariff_for(self, profile: ProfileConfig) -> Tariff:
        """The tariff a new session of this charger gets (the tariff in force)."""
        return self.services.tariffs.in_force(profile)

    def agent(self, charger_id: str) -> Agent:
        """The agent of a charger.

        Raises:
            AgentUnavailable: no agent runs for it.
        """
        agent = self._local(charger_id)
        if agent is None:
            raise AgentUnavailable(f"no agent for charger {charger_id} in this process")
        return agent

    # --- the operator's calls: here, or in the process running the agent ------------------------

    async def operate(self, charger_id: str, call: str, **args: Any) -> Any:
        """Run one of :data:`agent.operator_calls.CALLS` on the charger's agent, wherever it runs.

        Raises:
            AgentUnavailable: no agent runs for the charger (here, with one process).
            AgentMoving: in a cluster, the process running it did not answer.
            RetryLater: the agent did not get to it (it is restarting or stopping).
        """
        agent = self._local(charger_id)
        if agent is not None:
            return await run_here(agent, call, args)
        if self.remote is not None and charger_id in self._profiles:
            return await self.remote(charger_id, call, args)
        raise AgentUnavailable(f"no agent for charger {charger_id} in this process")

    async def status_of(self, charger_id: str) -> PublishResult | None:
        """The agent's last status publication (None before the first); see :meth:`operate`."""
        result: PublishResult | None = await self.operate(charger_id, "status")
        return result

    async def publish_status(self, charger_id: str) -> PublishResult:
        """Sign and publish the charger's status event now; see :meth:`operate`."""
        result: PublishResult = await self.operate(charger_id, "publish_status")
        return result

    async def set_enabled(self, charger_id: str, connector_id: int, enabled: bool) -> None:
        """Show an operator's enable/disable of a connector in the status; see :meth:`operate`."""
        await self.operate(charger_id, "set_enabled", connector_id=connector_id, enabled=enabled)

    async def mark_dirty(self, charger_id: str) -> None:
        """Re-publish the charger's status soon (a new price); see :meth:`operate`."""
        await self.operate(charger_id, "mark_dirty")

    def add_status_listener(self, listener: Callable[[str, PublishResult], None]) -> None:
        """Tell ``listener`` about every status publication from now on, after earlier ones."""
        previous = self.services.on_status

        def on_status(charger_id: str, result: PublishResult) -> None:
            if previous is not None:
                previous(charger_id, result)
            listener(charger_id, result)

        self.services.on_status = on_status

    async def apply_profile(self, profile: ProfileConfig) -> None:
        """A charger was added or its profile changed while Strom runs.

        A new charger gets its key and its agent, which starts at once, and the relays are
        asked for its inbox too; a known one uses the new profile from its next input on.
        Either way its status and profile are published again.
        """
        known = profile.id in self._profiles
        if profile.id not in self._agent_keys:
            await self._keys.prepare([profile.id])
        self._know(profile)
        agent = self._local(profile.id)
        if agent is not None:
            agent.change_profile(profile)
            return
        if known or not self._autostart:  # a cluster: the agent starts where its lease is
            return
        agent = self._new_agent(profile.id)
        self._by_pubkey[agent.pubkey] = agent
        self.supervisor.add(agent)
        if self.ready.is_set():
            await self.services.pool.watch(list(self._by_pubkey))
        log.info("charger %s: agent added (%s)", profile.id, agent.pubkey)

    async def on_ocpp_event(self, event: OcppEvent) -> None:
        """A ``CoreEventSink`` subscriber: charger online/offline and connector status."""
        if isinstance(event, ChargerOnline | ChargerOffline | ConnectorStatusChanged):
            self._route(event)

    def _route(self, item: AgentInput) -> None:
        """Give an input to the charger's agent here, or forward it to its process."""
        if self._local(item.charger_id) is not None:
            self.deliver(item)
        elif self.forward is not None and item.charger_id in self._profiles:
            self.forward(item)

    def deliver(self, item: AgentInput) -> None:
        """Give an input to the charger's agent if it runs here (else it is dropped).

        In a cluster, the inputs forwarded by other processes arrive here.
        """
        agent = self._local(item.charger_id)
        if agent is None:
            return
        if isinstance(item, ReservationNote):
            if item.until is not None or agent.holds_reservation(item.holder):
                agent.note_reservation(item.connector_id, item.holder, item.until)
        else:
            agent.submit(item)

    def on_session_committed(self, transition: Transition) -> None:
        """A session store listener: a reservation began or ended; its charger's agent notes it.

        The agent then shows the connector ``reserved`` with its end (or no longer) in the
        status (:meth:`agent.agent.Agent.note_reservation`). Never blocks, never raises.
        """
        session = transition.session
        if session.state is State.RESERVED and session.reserved_until is not None:
            until: int | None = int(session.reserved_until.timestamp())
        elif self._local(session.charger_id) is not None or session.reserved_until is not None:
            until = None  # ended, if it was noted (elsewhere: only a session once reserved)
        else:
            return
        self._route(ReservationNote(session.charger_id, session.connector_id, session.id, until))

    # --- outbox handlers -----------------------------------------------------------------------

    def handlers(self) -> dict[str, Handler]:
        """The outbox handlers to register with the effect runner."""
        return {"notify": self.on_notify, "zap_receipt": self.on_zap_receipt}

    async def on_notify(self, row: OutboxRow) -> None:
        """Outbox ``notify``: DM the payer of a zap or DM session (no-op for LNURL sessions).

        Idempotent on the row's key (see :mod:`agent.notifications`).

        Raises:
            RetryLater: no relay took the DM, or the agent is restarting.
        """
        what = row.payload.get("what")
        if row.session_id is None or not isinstance(what, str):
            return
        who = await initiator_of(self.services.db, row.session_id)
        if who is None or who.initiator not in DM_INITIATORS or not who.pubkey:
            return
        agent = self._local(who.charger_id)
        if agent is None:
            if not self._autostart and who.charger_id in self._profiles:
                raise RetryLater(f"the agent of {who.charger_id} runs elsewhere or is moving")
            log.warning("session %s: no agent for charger %s", row.session_id, who.charger_id)
            return
        await self._import_old_store()
        session_id, pubkey = row.session_id, who.pubkey
        await agent.call(lambda: notifications.deliver(agent, row.key, session_id, what, pubkey))

    async def on_zap_receipt(self, row: OutboxRow) -> None:
        """Outbox ``zap_receipt`` (queued by ``PaymentService.settle``): publish the receipt.

        Raises:
            RetryLater: no relay accepted it.
        """
        payload = row.payload
        request = payload.get("zap_request") or {}
        description = request.get("description")
        if not isinstance(description, str):
            log.error("outbox row %s: zap_receipt without a zap request", row.key)
            return
        paid_at = int(datetime.fromisoformat(str(payload["paid_at"])).timestamp())
        try:
            result = await self.publish_zap_receipt(
                str(payload["charger_id"]), description, str(payload["bolt11"]), paid_at
            )
        except BuildError as exc:
            log.error("outbox row %s: cannot build the zap receipt: %s", row.key, exc)
            return
        except AgentUnavailable as exc:
            if self._autostart:
                raise
            raise RetryLater(str(exc)) from None  # it runs elsewhere, or is moving
        if not result.accepted:
            raise RetryLater(f"no relay accepted zap receipt {result.event_id}")

    async def publish_zap_receipt(
        self,
        charger_id: str,
        zap_request_json: str,
        bolt11: str,
        paid_at: int,
        preimage: str | None = None,
    ) -> PublishResult:
        """Sign (with the charger's key) and publish the kind-9735 receipt of a paid zap.

        Published to the zap request's relays and the agents' write relays; publishing it
        twice gives the same event id.

        Raises:
            AgentUnavailable: no agent for the charger.
            BuildError: the invoice does not commit to the request (or a wrong preimage).
            RetryLater: the agent is restarting.
        """
        agent = self.agent(charger_id)
        result: PublishResult = await agent.call(
            lambda: zaps.publish_receipt(agent, zap_request_json, bolt11, paid_at, preimage)
        )
        return result

    # --- agents starting and stopping while Strom runs (a cluster) -----------------------------

    async def start_agents(self, charger_ids: Collection[str]) -> list[str]:
        """Start the agents of these chargers here, and listen to their inboxes.

        Inputs that arrive while they start are queued; each agent loads its state from the
        database (one bulk read), then handles them. Chargers without a profile, or whose agent
        runs here already, are skipped.

        Returns:
            The chargers whose agents started.
        """
        async with self._membership:
            new = {
                charger_id: self._new_agent(charger_id)
                for charger_id in charger_ids
                if charger_id in self._profiles and self._local(charger_id) is None
            }
            if not new:
                return []
            self._starting.update(new)  # inputs are queued from now on
            try:
                db = self.services.db
                snapshots = await charger_snapshots(db, list(new))
                active = await active_zap_sessions(db, list(new))
            finally:
                for charger_id in new:
                    del self._starting[charger_id]
            for charger_id, agent in new.items():
                snapshot = snapshots.get(charger_id)
                if snapshot is not None:
                    agent.preload(snapshot, active.get(charger_id, []))
                self.supervisor.add(agent)
                self._by_pubkey[agent.pubkey] = agent
            await self._watch()
        log.info("%d agent(s) started here: %s", len(new), ", ".join(sorted(new)))
        return sorted(new)

    async def stop_agents(self, charger_ids: Collection[str]) -> list[str]:
        """Stop the agents of these chargers here, and stop listening to their inboxes.

        Jobs waiting on them (DMs, zap receipts) are told to retry later; events received but
        not handled are left to the relays (the next owner's subscription looks back, and
        handled events are claimed in the database).

        Returns:
            The chargers whose agents stopped.
        """
        async with self._membership:
            stopping = [c for c in charger_ids if self.supervisor.get(c) is not None]
            for charger_id in stopping:
                agent = self.supervisor.agents[charger_id]
                self._by_pubkey.pop(agent.pubkey, None)
                agent.abandon("stopped here (another process runs it)")
                await self.supervisor.remove(charger_id)
                agent.abandon("stopped here (another process runs it)")
            if stopping:
                await self._watch()
        if stopping:
            log.info("%d agent(s) stopped here: %s", len(stopping), ", ".join(sorted(stopping)))
        return sorted(stopping)

    async def _watch(self) -> None:
        """Ask the relays for the inboxes of the agents running here (once the pool runs)."""
        if not self.ready.is_set():
            return  # run() subscribes them when it starts the pool
        try:
            await self.services.pool.watch(list(self._by_pubkey))
        except RelayError as exc:  # the reconnect watch subscribes again
            log.warning("cannot change the inbox subscriptions: %s", exc)

    # --- running -------------------------------------------------------------------------------

    async def _import_old_store(self) -> None:
        """Import ``<data_dir>/agent/agent.sqlite3`` of an older installation, once."""
        async with self._import_lock:
            if self._imported:
                return
            await import_legacy_store(
                self._data_dir,
                self.services.store,
                old_sealer=sealer_from_environ(self._environ, purpose="session secret"),
                retention_s=self.services.settings.secret_retention_s,
                now=self.services.clock.unix(),
            )
            self._imported = True

    async def _deliver(self, inbound: Inbound) -> None:
        for pubkey in dict.fromkeys(inbound.event.tag_values("p")[:_MAX_ROUTED_P_TAGS]):
            agent = self._by_pubkey.get(pubkey)
            if agent is not None:
                agent.submit(inbound)

    async def _preload(self) -> None:
        db = self.services.db
        snapshots = await charger_snapshots(db)
        active = await active_zap_sessions(db)
        for charger_id, agent in self.supervisor.agents.items():
            snapshot = snapshots.get(charger_id)
            if snapshot is not None:
                agent.preload(snapshot, active.get(charger_id, []))

    def _relay_back(self, relay_url: str) -> None:
        log.info(
            "relay %s is back: %d agent(s) publish status and profile again",
            relay_url,
            len(self.supervisor),
        )
        for agent in self.supervisor.agents.values():
            agent.republish(relay_url)
        task = asyncio.get_running_loop().create_task(self._retry_outbox_now(relay_url))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _retry_outbox_now(self, relay_url: str) -> None:
        """Session DMs and zap receipts waiting out a backoff go now, not minutes later."""
        now = self.services.clock.now()
        try:
            moved = await OutboxStore(self.services.db).run_now(self.handlers(), now)
        except StromError as exc:
            log.warning(
                "relay %s is back, but the outbox could not be rescheduled: %s", relay_url, exc
            )
            return
        if moved:
            log.info("relay %s is back: %d DM(s)/receipt(s) retried now", relay_url, moved)
            for wake in self._outbox_due:
                wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Run every agent until ``stop`` is set, then disconnect.

        Raises:
            SealError: the old agent store's secrets do not open (see :mod:`agent.legacy_store`).
            StorageError: the old agent store cannot be read or renamed.
        """
        await self._import_old_store()
        pool = self.services.pool
        await pool.start()
        try:
            await self._preload()
            await pool.watch(list(self._by_pubkey))
            async with asyncio.TaskGroup() as group:
                reader = group.create_task(pool.run(self._deliver), name="relay-inbox")
                group.create_task(self.supervisor.run(stop), name="agents")
                reconnects = group.create_task(
                    pool.follow_reconnects(self._relay_back), name="relay-reconnects"
                )
                log.info("%d agent(s) running", len(self.supervisor))
                self.ready.set()
                await stop.wait()
                reader.cancel()
                reconnects.cancel()
        finally:
            self.ready.clear()
            await pool.stop()
