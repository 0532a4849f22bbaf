"""What every agent shares: the pool, the stores, the core services, small caches, the budget.

One :class:`AgentServices` is built by :class:`agent.runtime.AgentRuntime` and handed to each
agent; nothing in it is global, so tests build their own.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.budget import DmBudget
from agent.maps import MapsRecall
from agent.payers import Payers
from agent.relays import PublishResult, RelayPool
from agent.settings import AgentSettings
from agent.store import AgentStore
from strom_core.clock import Clock
from strom_core.ports import ChargerCommands
from strom_core.ports.firmware import FirmwareCommands
from strom_core.ports.prices import PriceSource
from strom_core.ports.reservations import ReservationCommands
from strom_core.ports.station import ConnectionView
from strom_lightning import LightningBackend
from strom_services.payments import PaymentService
from strom_services.power import PowerService
from strom_services.reservations import PayerReservations
from strom_services.tariffs import TariffBook
from strom_storage.db import Database
from strom_storage.sessions import SessionStore

__all__ = ["AgentServices", "DmInboxes"]


class DmInboxes:
    """What the agents know about drivers' DM habits: NIP-17 inbox relays and last scheme.

    Both are bounded LRU caches (a stranger cannot grow them without limit).

    Args:
        max_entries: pubkeys remembered.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._relays: OrderedDict[str, tuple[tuple[str, ...], float]] = OrderedDict()
        self._schemes: OrderedDict[str, str] = OrderedDict()
        self._max = max_entries

    def cached_relays(self, pubkey: str, now: float) -> tuple[str, ...] | None:
        """The inbox relays looked up recently, or None when unknown or stale."""
        entry = self._relays.get(pubkey)
        if entry is None or entry[1] <= now:
            return None
        self._relays.move_to_end(pubkey)
        return entry[0]

    def remember_relays(self, pubkey: str, relays: tuple[str, ...], until: float) -> None:
        """Remember a pubkey's inbox relays (possibly none) until ``until``."""
        self._relays[pubkey] = (relays, until)
        self._relays.move_to_end(pubkey)
        while len(self._relays) > self._max:
            self._relays.popitem(last=False)

    def scheme(self, pubkey: str) -> str | None:
        """The DM scheme this pubkey last wrote to us in."""
        return self._schemes.get(pubkey)

    def remember_scheme(self, pubkey: str, scheme: str) -> None:
        """Remember the scheme of a pubkey's last DM."""
        self._schemes[pubkey] = scheme
        self._schemes.move_to_end(pubkey)
        while len(self._schemes) > self._max:
            self._schemes.popitem(last=False)


@dataclass
class AgentServices:
    """The shared parts every agent uses (see the module docstring)."""

    settings: AgentSettings
    pool: RelayPool
    db: Database
    sessions: SessionStore
    payments: PaymentService
    backend: LightningBackend
    commands: ChargerCommands
    store: AgentStore
    clock: Clock
    """Where every agent reads the time."""
    inboxes: DmInboxes = field(default_factory=DmInboxes)
    random_bytes: Callable[[int], bytes] = os.urandom
    on_status: Callable[[str, PublishResult], None] | None = None
    """Told about every status publication (charger id, result): for health pages, benches."""
    power: PowerService | None = None
    """The chargers' power limits (the operator's ``limit``); set once Strom is built."""
    firmware: FirmwareCommands | None = None
    """Firmware updates (the operator's ``firmware <url>``); set once Strom is built."""
    reservations: ReservationCommands | None = None
    """ReserveNow and CancelReservation (the operator's ``reserve``); set once Strom is built."""
    charger_info: Callable[[str], ConnectionView | None] | None = None
    """What the OCPP server knows of a charger (the operator's ``firmware``: its last
    statuses); set once Strom is built."""
    prices: PriceSource | None = None
    """The energy prices of dynamic tariffs, the source the payments freeze prices from (the
    status event publishes the price in force and the coming intervals); set once Strom is
    built. None: the payments' own source, if any."""
    observer: Callable[[str, str, str], None] | None = None
    """Told what became of every event from a relay (charger id, event id, outcome): metrics."""
    budget: DmBudget = field(init=False)
    """How many DMs from strangers are read and answered (from ``settings``)."""
    payers: Payers = field(init=False)
    """Who paid for a session on which charger (their DMs are not strangers')."""
    payer_reservations: PayerReservations = field(init=False)
    """The payer's ``start`` and ``cancel`` of a reservation (as on the session page)."""
    maps_recall: MapsRecall = field(init=False)
    """Reads the chargers' own listings back from the relays at a start (:mod:`agent.maps`)."""

    @property
    def tariffs(self) -> TariffBook:
        """The tariff in force for each charger (what the status shows, what is charged)."""
        return self.payments.tariffs

    def __post_init__(self) -> None:
        settings = self.settings
        self.budget = DmBudget(
            stranger_dms_per_hour=settings.stranger_dms_per_hour,
            stranger_dm_burst=settings.stranger_dm_burst,
            gift_wraps_per_minute=settings.gift_wraps_per_minute,
            gift_wrap_burst=settings.gift_wrap_burst,
            clock=self.clock,
        )
        self.payers = Payers(self.db, self.clock)
        self.payer_reservations = PayerReservations(self.sessions)
        self.maps_recall = MapsRecall(self.pool.fetch)
