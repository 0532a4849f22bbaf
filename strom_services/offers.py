"""Offers: whether a connector can take a new session now, answered before any invoice exists.

Theory of operation
-------------------
A driver's wallet asks twice before it pays: the payRequest (the sticker's LNURL, the lightning
address, a zap's first step) and, perhaps a minute later, the callback that makes the invoice.
Both are answered from :class:`OfferView`, an in-memory view of every connector (enabled by the
operator, last OCPP status, held by a running session) and of every charger's link (connected,
reconnecting after a restart of Strom, offline). The view is rebuilt from the database after any
committed session transition or OCPP event of this process (:meth:`OfferView.forget`) and at
least every :data:`VIEW_MAX_AGE_S` for other processes' writes; the link is derived from the
``chargers`` table (:func:`strom_core.ports.charger_link`), never from one process's memory.

A connector held by a paid reservation (a ``RESERVED`` session) is busy for everyone else, and
its refusal says until when: "reserved until HH:MM UTC" (profiles have no time zone, so the
time is UTC and the text says so); one whose charger reports it ``Reserved`` (a reservation
Strom did not pay for, an operator's) is refused as reserved too. A reservation itself is
offered only on a connector the charger reports ``Available`` and whose tariff allows
reservations (:meth:`OfferView.reserve_check`).

A charger that is not connected is refused: nothing could start the charge. Refusals are
:class:`ConnectorUnavailable`, whose ``reason`` is the LUD error the wallet shows. An offer is
only a first step: settlement (:mod:`strom_services.payments`) checks the connector again in its own
transaction, and decides who gets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from strom_core.clock import SYSTEM_CLOCK, Clock
from strom_core.config import ProfileConfig
from strom_core.errors import StromError
from strom_core.ports import ChargerLink, charger_link
from strom_core.session import HOLDING_STATES
from strom_core.tariff import Tariff
from strom_storage.chargers import ChargerStore, all_connectors, link_columns, load_connector
from strom_storage.db import Connection
from strom_storage.sessions import SessionStore, find_holder, held_connectors, reserved_connectors

__all__ = [
    "BUSY_STATES",
    "LINK_REFUSALS",
    "TOP_UP_REFUSALS",
    "VIEW_MAX_AGE_S",
    "ConnectorUnavailable",
    "OfferView",
    "check_connector",
    "refuse",
    "reserved_refusal",
]

# The states in which a session holds its connector (a reservation among them).
BUSY_STATES = tuple(sorted(HOLDING_STATES))
RESERVED_STATUS = "Reserved"  # OCPP: the charger holds the connector for an idTag
OFFLINE_STATUSES = {"Unavailable", "Faulted"}
VIEW_MAX_AGE_S = 1.0  # how stale an offer's view of connectors may be (other processes' writes)


class ConnectorUnavailable(StromError):
    """The connector cannot take a new session now; ``reason`` is for the driver.

    ``link`` is the charger's link when that is why (offline or reconnecting), else online.
    """

    def __init__(self, reason: str, link: ChargerLink = ChargerLink.ONLINE) -> None:
        super().__init__(reason)
        self.reason = reason
        self.link = link


LINK_REFUSALS = {
    ChargerLink.OFFLINE: (
        "this charger is offline right now (not connected); nothing was charged — "
        "please try again later"
    ),
    ChargerLink.RECONNECTING: (
        "this charger is reconnecting right now; nothing was charged — please try again in a minute"
    ),
}
TOP_UP_REFUSALS = {
    ChargerLink.OFFLINE: (
        "this charger is offline right now (not connected), so more budget could not be "
        "used or metered; nothing was charged and your session keeps its budget — "
        "try again when it is back"
    ),
    ChargerLink.RECONNECTING: (
        "this charger is reconnecting right now; nothing was charged and your session "
        "keeps its budget — please try again in a minute"
    ),
}


@dataclass(frozen=True, slots=True)
class _ConnectorView:
    """What an offer needs to know of one connector (from the database)."""

    enabled: bool
    status: str
    busy: bool
    reserved_until: datetime | None = None  # held by a Strom reservation until then


@dataclass(frozen=True, slots=True)
class _View:
    connectors: dict[tuple[str, int], _ConnectorView]
    # charger id -> (chargers.online, chargers.reconnect_until)
    links: dict[str, tuple[bool, datetime | None]]

    def link(self, charger_id: str, now: datetime) -> ChargerLink:
        online, until = self.links.get(charger_id, (False, None))
        return charger_link(online, until, now)


def reserved_refusal(until: datetime | None) -> str:
    """The refusal of a reserved connector: until when, in UTC (profiles have no time zone)."""
    if until is None:
        return "this connector is reserved right now; nothing was charged"
    return (
        f"this connector is reserved until {until.astimezone(UTC):%H:%M} UTC; nothing was "
        "charged — please try again after that"
    )


def refuse(
    *,
    enabled: bool,
    status: str,
    busy: bool,
    link: ChargerLink = ChargerLink.ONLINE,
    reserved_until: datetime | None = None,
) -> None:
    """Raise :class:`ConnectorUnavailable` for the first reason that applies, else nothing.

    The order is what a driver needs to hear: out of service, not connected, out of order,
    reserved (by a Strom reservation until ``reserved_until``, or at the charger), in use.
    """
    if not enabled:
        raise ConnectorUnavailable("this connector is out of service; nothing was charged")
    if link is not ChargerLink.ONLINE:
        raise ConnectorUnavailable(LINK_REFUSALS[link], link)
    if status in OFFLINE_STATUSES:
        raise ConnectorUnavailable(
            f"this connector is {status.lower()} right now; nothing was charged"
        )
    if reserved_until is not None or (status == RESERVED_STATUS and not busy):
        raise ConnectorUnavailable(reserved_refusal(reserved_until))
    if busy:
        raise ConnectorUnavailable(
            "this charger is in use by someone else right now; nothing was charged — "
            "please try again when it is free"
        )


class OfferView:
    """The in-memory view offers are answered from (see the module docstring).

    Args:
        sessions: the sessions (which hold a connector).
        chargers: the chargers' run-time state (links, connector status, enabled flags).
        clock: Strom's clock: wall time for reconnect graces, monotonic time for the age of
            the in-memory view.
    """

    def __init__(
        self, sessions: SessionStore, chargers: ChargerStore, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.sessions = sessions
        self.chargers = chargers
        self.db = sessions.db
        self.clock = clock
        self._view: _View | None = None
        self._view_at = 0.0
        self._view_generation = 0
        self._view_lock = asyncio.Lock()
        # Whether a charger can hold reservations now (its live connection's OCPP version
        # carries them); set by the composition root. Unknown: assumed so.
        self.reservable: Callable[[str], bool] = lambda _charger_id: True

    async def check_in_database(self, profile: ProfileConfig, connector_id: int) -> None:
        """Raise :class:`ConnectorUnavailable` unless the connector can take a session now."""
        if connector_id not in {c.id for c in profile.connectors}:
            raise ConnectorUnavailable(f"{profile.name} has no connector {connector_id}")
        now = self.clock.now()

        def check(conn: Connection) -> None:
            columns = link_columns(conn, profile.id)
            link = ChargerLink.OFFLINE
            if profile.id in columns:
                link = charger_link(*columns[profile.id], now)
            check_connector(conn, profile.id, connector_id, exclude=None, link=link)

        await self.db.read(check)

    async def check(self, profile: ProfileConfig, connector_id: int) -> None:
        """:meth:`check_in_database` answered from memory, for offers (payRequest, pages).

        The view of connectors is rebuilt from the database after any committed session
        transition or connector event, a charger connecting or going away among them (see
        :meth:`forget`), and at least every :data:`VIEW_MAX_AGE_S` (for changes made by
        another process). An offer is only a first step: the invoice callback checks again,
        and settlement decides who gets the connector, so a view a moment old never lets two
        sessions in.

        Raises:
            ConnectorUnavailable: the same reasons as :meth:`check_in_database`.
        """
        if connector_id not in {c.id for c in profile.connectors}:
            raise ConnectorUnavailable(f"{profile.name} has no connector {connector_id}")
        view = await self._connector_view()
        found = view.connectors.get((profile.id, connector_id))
        if found is None:
            raise ConnectorUnavailable(f"connector {connector_id} is not known")
        refuse(
            enabled=found.enabled,
            status=found.status,
            busy=found.busy,
            link=view.link(profile.id, self.clock.now()),
            reserved_until=found.reserved_until,
        )

    async def reserve_check(
        self, profile: ProfileConfig, connector_id: int, tariff: Tariff
    ) -> None:
        """:meth:`check`, and whether a reservation may be offered on the connector now.

        Raises:
            ConnectorUnavailable: the reasons of :meth:`check`; a tariff without reservations;
                a connector the charger does not report ``Available`` (a cable plugged in,
                say: the driver there would be shut out).
        """
        await self.check(profile, connector_id)
        if not tariff.offers_reservations or not self.reservable(profile.id):
            raise ConnectorUnavailable("this charger takes no reservations; nothing was charged")
        view = await self._connector_view()
        found = view.connectors.get((profile.id, connector_id))
        if found is None or found.status != "Available":
            raise ConnectorUnavailable(
                "this connector cannot be reserved right now (it is not free at the charger); "
                "nothing was charged"
            )

    async def link_of(self, charger_id: str) -> ChargerLink:
        """The charger's link as offers see it (online, reconnecting, offline)."""
        view = await self._connector_view()
        return view.link(charger_id, self.clock.now())

    async def top_up_check(self, charger_id: str) -> None:
        """Refuse a top-up while the session's charger is not connected.

        The session keeps running on the charger's side, but Strom can neither meter nor stop
        it while the link is down; the driver's budget stays as it is, and what is not used is
        refunded as always.

        Raises:
            ConnectorUnavailable: the charger is offline or reconnecting.
        """
        link = await self.link_of(charger_id)
        if link is not ChargerLink.ONLINE:
            raise ConnectorUnavailable(TOP_UP_REFUSALS[link], link)

    def forget(self, *_: object) -> None:
        """Drop the in-memory connector view; the next offer rebuilds it."""
        self._view_generation += 1
        self._view = None

    async def _connector_view(self) -> _View:
        now = self.clock.monotonic()
        if self._view is not None and now - self._view_at < VIEW_MAX_AGE_S:
            return self._view
        async with self._view_lock:  # one reload for a burst of offers
            if self._view is not None and self.clock.monotonic() - self._view_at < VIEW_MAX_AGE_S:
                return self._view
            generation = self._view_generation
            started = self.clock.monotonic()
            view = await self._load_view()
            if generation == self._view_generation:  # nothing changed while loading
                self._view, self._view_at = view, started
            return view

    async def _load_view(self) -> _View:
        return await self.db.read(_read_view)


def _read_view(conn: Connection) -> _View:
    """The view of every connector and charger link, in one read."""
    busy = held_connectors(conn, BUSY_STATES)
    reserved = reserved_connectors(conn)
    links = link_columns(conn)
    return _View(
        connectors={
            (row.charger_id, row.connector_id): _ConnectorView(
                row.enabled,
                row.status,
                (row.charger_id, row.connector_id) in busy,
                reserved.get((row.charger_id, row.connector_id)),
            )
            for row in all_connectors(conn)
        },
        links=links,
    )


def check_connector(
    conn: Connection,
    charger_id: str,
    connector_id: int,
    exclude: str | None,
    link: ChargerLink = ChargerLink.ONLINE,
) -> None:
    """Check a connector inside the caller's one-hop transaction (settlement: ``link`` online).

    Args:
        conn: the caller's transaction.
        charger_id: the charger.
        connector_id: the connector.
        exclude: a session not to count as holding the connector (the one settling).
        link: the charger's link, when the caller wants it checked.

    Raises:
        ConnectorUnavailable: unknown, disabled, out of order, not connected or busy.
    """
    row = load_connector(conn, charger_id, connector_id)
    if row is None:
        raise ConnectorUnavailable(f"connector {connector_id} is not known")
    refuse(enabled=row.enabled, status=row.status, busy=False, link=link)
    holder = find_holder(conn, charger_id, connector_id, BUSY_STATES, exclude=exclude)
    until = None
    if holder is not None:
        until = reserved_connectors(conn, charger_id, exclude=exclude).get(
            (charger_id, connector_id)
        )
    refuse(enabled=True, status=row.status, busy=holder is not None, reserved_until=until)
