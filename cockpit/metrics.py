"""``/metrics``: Prometheus exposition of what an operator alerts on.

Figures are read when Prometheus scrapes (nothing counts in the hot paths): chargers
configured and online, sessions by state, msat received, refunded and paid in routing fees,
energy delivered, OCPP websocket messages, relay connections, the lightning backend's health
(the node watch's state, the same the admin UI shows; without a watch, ``node_info`` within
3 s, cached 10 s so a scrape storm does not hammer the node), the outbox by state and the live
websocket subscribers. prometheus-client writes the format.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import LiveConfig
from strom_core.errors import StromError
from strom_core.ports.agents import NostrAgents
from strom_core.ports.station import ChargerStation
from strom_lightning import LightningBackend, NodeWatch
from strom_storage.outbox import OutboxStore
from strom_storage.reports import Reports

__all__ = ["CONTENT_TYPE", "Metrics"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BACKEND_CACHE_S = 10.0


class _Snapshot(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


@dataclass
class Metrics:
    """Reads the figures and writes them for Prometheus.

    Attributes:
        config: the configuration in force (the chargers configured).
        reports: sessions and money.
        outbox: the outbox's rows.
        ocpp: the OCPP server (connections, messages).
        agents: the nostr agents (their relays).
        backend: the lightning backend, asked when no node watch is given.
    """

    config: LiveConfig
    reports: Reports
    outbox: OutboxStore
    ocpp: ChargerStation
    agents: NostrAgents
    backend: LightningBackend
    live_subscribers: Callable[[], int] | None = None  # the websocket count, when wired
    node: NodeWatch | None = None  # the node's reachability, when watched
    clock: Clock = SYSTEM_CLOCK  # the backend answer's cache ages on its monotonic clock
    _backend_up: tuple[float, bool] | None = None

    async def _backend_ok(self) -> bool:
        if self.node is not None:
            return self.node.up
        if self._backend_up is not None:
            checked_at, up = self._backend_up
            if self.clock.monotonic() - checked_at < _BACKEND_CACHE_S:
                return up
        try:
            await asyncio.wait_for(self.backend.node_info(), 3.0)
            up = True
        except (StromError, TimeoutError) as exc:
            log.warning("metrics: lightning backend unavailable: %s", exc)
            up = False
        self._backend_up = (self.clock.monotonic(), up)
        return up

    async def _relay_states(self) -> dict[str, str]:
        try:
            return dict(await self.agents.pool.states())
        except Exception as exc:  # an unstarted pool reads as no relays
            log.info("metrics: relay states unavailable: %s", exc)
            return {}

    async def render(self) -> bytes:
        """The exposition text."""
        states = await self.reports.counts_by_state()
        received, refunded, fees, energy = await self.reports.money_totals()
        outbox = await self.outbox.counts()
        relays = await self._relay_states()
        counters = self.ocpp.counters()
        backend_up = await self._backend_ok()

        def gauge(name: str, text: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, text, value=value)

        def counter(name: str, text: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, text, value=value)

        sessions = GaugeMetricFamily("strom_sessions", "Sessions by state", labels=["state"])
        for state, count in sorted(states.items()):
            sessions.add_metric([state], count)
        messages = CounterMetricFamily(
            "strom_ocpp_messages", "OCPP websocket messages", labels=["direction"]
        )
        messages.add_metric(["received"], counters.received)
        messages.add_metric(["sent"], counters.sent)
        relay = GaugeMetricFamily(
            "strom_relay_connected", "1 when the relay is connected", labels=["relay"]
        )
        for url, state in sorted(relays.items()):
            relay.add_metric([url], 1 if state.lower() == "connected" else 0)
        queue = GaugeMetricFamily("strom_outbox", "Outbox rows by state", labels=["state"])
        for state, count in sorted(outbox.items()):
            queue.add_metric([state], count)
        subscribers = self.live_subscribers() if self.live_subscribers is not None else 0
        families: list[Metric] = [
            gauge("strom_chargers", "Chargers configured", len(self.config.current.profiles)),
            gauge(
                "strom_chargers_online", "Chargers connected now", len(self.ocpp.online_chargers())
            ),
            sessions,
            counter("strom_received_msat", "Settled payments, msat", received),
            counter("strom_refunded_msat", "Refunds paid, msat", refunded),
            counter("strom_refund_fees_msat", "Routing fees of refunds, msat", fees),
            counter("strom_energy_wh", "Energy delivered, Wh", energy),
            messages,
            relay,
            gauge(
                "strom_relays_connected",
                "Relays connected",
                sum(1 for s in relays.values() if s.lower() == "connected"),
            ),
            gauge(
                "strom_lightning_backend_up",
                "1 when the lightning backend answers",
                int(backend_up),
            ),
            queue,
            gauge("strom_live_subscribers", "Websocket subscribers", subscribers),
        ]
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Snapshot(families))
        return generate_latest(registry)
