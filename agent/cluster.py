"""Each charger's agent in exactly one process of a cluster.

Theory of operation
-------------------
* **Who runs an agent.** The process holding the lease ``agent:<charger id>``
  (:mod:`strom_storage.leases`). A :class:`strom_cluster.keeper.LeaseKeeper` in every process
  shares the agents fairly among the live processes (at most ``ceil(agents / processes)``
  each) and moves them within the lease TTL (10 s by default) plus one tick when a process
  dies; when it gains leases the runtime starts those agents
  (:meth:`agent.runtime.AgentRuntime.start_agents`), when it loses or sheds them it stops them
  first. The relay subscriptions follow: a process asks the relays only for the inboxes of the
  agents it runs, so each DM and zap receipt reaches one process (and, should two briefly
  overlap — a stalled process not yet aware it lost its lease — the claim of each event id in
  the database lets only one act on it).
* **Outbox rows** of an agent (a session DM, a zap receipt) name its lease (``outbox.lease``),
  so the shared outbox leaves them to its process; one claimed elsewhere while the agent moves
  is retried later.
* **Inputs from elsewhere.** A charger's OCPP connection lives in one process and its agent
  maybe in another; session transitions (reservations) are committed wherever a request
  landed. Such inputs are **forwarded over the bus**: the runtime hands an input for an agent
  it does not run to :attr:`~agent.runtime.AgentRuntime.forward`, which publishes it on the
  topic ``agent-inputs``; every process receives it and the one running the agent applies it.
  One topic for every kind keeps one publisher's inputs for a charger in order (``online``
  before its connector statuses). The bus delivers at most once: an input lost (a process
  disconnected from the bus, an agent moving at that instant) is made good from the database,
  which has the state before the input is sent (the OCPP event sink records it first): an agent
  that starts reads its charger's state (``charger_snapshots``) after it began queuing inputs,
  and the status is re-published on its refresh. Rebuilding from the database on every input
  instead would cost a read per status change in the process running the agent and still need
  a signal to know when to read.
* **The operator's calls** (the API's "last status", "publish now", an enabled connector or a new
  price to show) are answered at any process: one that does not run the agent sends the call
  (:mod:`agent.operator_calls`) over the bus to the holder of ``agent:<charger id>``
  (:meth:`ClusteredAgents.ask`), which runs it and answers (:meth:`ClusteredAgents.handle`,
  served on the subject ``agents``). An owner that no longer runs the agent says so and the
  owner is looked up once more; no owner, or no reply, is :class:`AgentMoving` ("try again in
  a few seconds") — for "publish now" the outcome is then unknown, as with any lost reply.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from agent.operator_calls import (
    CALLS,
    SUBJECT,
    BadAgentCall,
    decode_request,
    decode_result,
    encode_error,
    encode_request,
    encode_result,
    result_json,
    shortened,
)
from agent.runtime import AgentInput, AgentRuntime, ReservationNote
from strom_cluster.keeper import LeaseBook, LeaseKeeper
from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.errors import AgentMoving, AgentUnavailable, BusError, NoReply
from strom_core.ports import ChargerOffline, ChargerOnline, ConnectorStatusChanged
from strom_core.ports.cluster import Bus
from strom_services.effects import RetryLater
from strom_storage.leases import AGENT_PREFIX, agent_lease

__all__ = [
    "INPUTS_TOPIC",
    "MOVING",
    "SUBJECT",
    "ClusteredAgents",
    "decode_input",
    "encode_input",
]

log = logging.getLogger(__name__)

INPUTS_TOPIC = "agent-inputs"
MOVING = "the charger's agent is moving to another process; try again in a few seconds"
_MAX_QUEUED = 10_000  # inputs waiting for the bus; beyond, they are dropped (the database has them)


def encode_input(item: AgentInput) -> bytes:
    """An agent's input as a bus payload (JSON)."""
    body: dict[str, Any]
    if isinstance(item, ChargerOnline):
        body = {"type": "online", "at": item.at.isoformat()}
    elif isinstance(item, ChargerOffline):
        body = {"type": "offline", "at": item.at.isoformat(), "reason": item.reason}
    elif isinstance(item, ConnectorStatusChanged):
        body = {
            "type": "status",
            "connector_id": item.connector_id,
            "status": item.status,
            "error_code": item.error_code,
            "at": item.at.isoformat(),
            "info": item.info,
        }
    else:
        body = {
            "type": "reservation",
            "connector_id": item.connector_id,
            "holder": item.holder,
            "until": item.until,
        }
    return json.dumps({"charger_id": item.charger_id, **body}).encode()


def decode_input(payload: bytes) -> AgentInput:
    """The input in a bus payload.

    Raises:
        ValueError: not a payload of :func:`encode_input`.
    """
    try:
        body = json.loads(payload)
        charger_id = str(body["charger_id"])
        kind = body["type"]
        if kind == "online":
            return ChargerOnline(charger_id, datetime.fromisoformat(body["at"]))
        if kind == "offline":
            return ChargerOffline(
                charger_id, datetime.fromisoformat(body["at"]), str(body["reason"])
            )
        if kind == "status":
            return ConnectorStatusChanged(
                charger_id,
                int(body["connector_id"]),
                str(body["status"]),
                str(body["error_code"]),
                datetime.fromisoformat(body["at"]),
                str(body["info"]),
            )
        if kind == "reservation":
            until = body["until"]
            return ReservationNote(
                charger_id,
                int(body["connector_id"]),
                str(body["holder"]),
                None if until is None else int(until),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not an agent input: {exc}") from None
    raise ValueError(f"not an agent input: unknown type {kind!r}")


class ClusteredAgents:
    """Runs here the agents whose leases this process holds, and forwards the others' inputs.

    What the composition root does in a cluster::

        runtime = AgentRuntime(config, ..., keys=shared_keys, autostart=False)
        agents = ClusteredAgents(runtime, bus=node.bus, leases=LeaseStore(db),
                                 process_id=node.process_id, ttl_s=10)
        node.serve(agent.cluster.SUBJECT, agents.handle)  # the operator's calls from elsewhere
        events.subscribe(runtime.on_ocpp_event)      # as with one process
        ...  # in the service's TaskGroup, next to runtime.run(stop):
        group.create_task(agents.run(stop))

    Args:
        runtime: the agent runtime, built with ``autostart=False``.
        bus: the bus between the processes.
        leases: the lease store (:class:`strom_storage.leases.LeaseStore`).
        process_id: this process's id (unique per process start).
        ttl_s: the agent leases' TTL: how long a dead process's agents wait to move.
        slack: how far above its fair share a process may stay before it hands agents over.
        clock: the keeper's clock.
    """

    def __init__(
        self,
        runtime: AgentRuntime,
        *,
        bus: Bus,
        leases: LeaseBook,
        process_id: str,
        ttl_s: float = 10.0,
        slack: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.runtime = runtime
        self.process_id = process_id
        self._bus = bus
        self._leases = leases
        self.keeper = LeaseKeeper(
            leases,
            process_id,
            prefix=AGENT_PREFIX,
            names=lambda: [agent_lease(charger_id) for charger_id in runtime.charger_ids()],
            on_gained=self._gained,
            on_lost=self._lost,
            ttl_s=ttl_s,
            slack=slack,
            clock=clock,
        )
        self._outgoing: asyncio.Queue[AgentInput] = asyncio.Queue(_MAX_QUEUED)
        self._dropped = 0
        runtime.forward = self._forward
        runtime.remote = self.ask

    async def _gained(self, names: list[str]) -> None:
        await self.runtime.start_agents([name.removeprefix(AGENT_PREFIX) for name in names])

    async def _lost(self, names: list[str]) -> None:
        await self.runtime.stop_agents([name.removeprefix(AGENT_PREFIX) for name in names])

    def _forward(self, item: AgentInput) -> None:
        try:
            self._outgoing.put_nowait(item)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("bus too slow: %d agent input(s) dropped", self._dropped)

    # --- the operator's calls --------------------------------------------------------------------

    async def ask(self, charger_id: str, call: str, args: Mapping[str, Any]) -> Any:
        """Run an operator's call on the charger's agent in the process that runs it.

        Raises:
            AgentMoving: no process holds the agent's lease, or its process did not answer.
            RetryLater: the agent did not get to it (it is restarting or stopping there).
            BadAgentCall: the owner refused the call (it does not know it, or its arguments).
        """
        payload = encode_request(call, charger_id, args)
        for _ in range(2):  # an owner that has just handed the agent over: look once more
            owner = await self._owner(charger_id)
            if owner is None or owner == self.process_id:  # here: starting or stopping now
                raise AgentMoving(MOVING)
            try:
                answer = await self._bus.request(owner, SUBJECT, payload, CALLS[call].timeout_s)
            except NoReply as exc:
                log.info("charger %s: %s got no answer from %s: %s", charger_id, call, owner, exc)
                raise AgentMoving(MOVING) from None
            kind, value = result_json(answer)
            if kind is None:
                return decode_result(call, value)
            if kind == "busy":
                raise RetryLater(value)
            if kind != "elsewhere":  # "refused": processes of different versions, say
                raise BadAgentCall(f"{owner} refused {call} for {charger_id}: {value}")
        raise AgentMoving(MOVING)

    async def _owner(self, charger_id: str) -> str | None:
        name = agent_lease(charger_id)
        leases = await self._leases.live_with_prefix(name)
        return next((lease.owner for lease in leases if lease.name == name), None)

    async def handle(self, subject: str, payload: bytes) -> bytes:
        """Answer another process's call for an agent running here (the subject ``agents``).

        A payload that is not a call of :data:`agent.operator_calls.CALLS` is answered
        ``refused`` and reaches no agent.
        """
        try:
            call, charger_id, args = decode_request(payload)
        except BadAgentCall as exc:
            log.warning("refused an agent call from the bus: %s", exc)
            return encode_error("refused", str(exc))
        try:
            agent = self.runtime.agent(charger_id)
        except AgentUnavailable as exc:
            return encode_error("elsewhere", str(exc))
        try:
            result = await call.run(agent, **args)
        except RetryLater as exc:
            return encode_error("busy", str(exc))
        reply = encode_result(result)
        if len(reply) > self._bus.max_payload:  # relays' long answers: cut them to fit
            reply = encode_result(shortened(result))
        return reply

    async def run(self, stop: asyncio.Event) -> None:
        """Once the runtime is ready, keep this process's share of agents until ``stop``.

        Then every agent here stops and its lease is released, so the others take them over
        at once rather than after the TTL.
        """
        if not await _first(self.runtime.ready, stop):
            return
        subscription = await self._bus.subscribe(INPUTS_TOPIC)
        try:
            async with asyncio.TaskGroup() as group:
                reader = group.create_task(self._receive(subscription), name="agent-inputs-in")
                sender = group.create_task(self._send(), name="agent-inputs-out")
                await self.keeper.run(stop)
                reader.cancel()
                sender.cancel()
        finally:
            await subscription.aclose()

    async def _receive(self, subscription: Any) -> None:
        async for payload in subscription:
            try:
                item = decode_input(payload)
            except ValueError as exc:
                log.warning("dropped a bus message on %s: %s", INPUTS_TOPIC, exc)
                continue
            self.runtime.deliver(item)

    async def _send(self) -> None:
        while True:
            item = await self._outgoing.get()
            try:
                await self._bus.publish(INPUTS_TOPIC, encode_input(item))
            except BusError as exc:  # lost: its agent reads the state from the database
                log.warning("charger %s: input not forwarded: %s", item.charger_id, exc)


async def _first(ready: asyncio.Event, stop: asyncio.Event) -> bool:
    """Wait until ``ready`` or ``stop`` is set; True when ready."""
    waiters = [asyncio.ensure_future(ready.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
    return ready.is_set() and not stop.is_set()
